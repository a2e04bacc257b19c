-- 09_tier_downgrade: the downgrade and grace_days settings. The contract:
-- downgrade never / period_end (re-evaluate at the end of each window period)
-- / one_step (drop at most one tier per evaluation); grace_days: days a member
-- keeps a tier after falling below it; run_maintenance "re-evaluates tiers
-- whose window or grace ended".
--
-- The assertions hold whichever figure the period-end evaluation uses (the
-- period that just ended, or the new one): every member here qualifies only
-- in 2026 (calendar_year window, UTC), so by 2028-01-02 every period-end
-- evaluation of either kind has seen a figure of 0.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(11);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap09%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.hist(ref text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(to_tier, ',' ORDER BY at, id) FROM loyalty.tier_change WHERE member_id = pg_temp.m(ref) $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tap09_never', 'never',
            '{"tier_window": "calendar_year", "downgrade": "never"}');
    PERFORM loyalty.create_program('tap09_pe', 'period_end',
            '{"tier_window": "calendar_year", "downgrade": "period_end"}');
    PERFORM loyalty.create_program('tap09_one', 'one_step',
            '{"tier_window": "calendar_year", "downgrade": "one_step"}');
    PERFORM loyalty.create_program('tap09_grace', 'period_end with grace',
            '{"tier_window": "calendar_year", "downgrade": "period_end", "grace_days": 400}');
    PERFORM loyalty.add_tier(code, 'base', 'Base', 0) FROM loyalty.program WHERE code LIKE 'tap09%';
    PERFORM loyalty.add_tier(code, 'silver', 'Silver', 100) FROM loyalty.program WHERE code LIKE 'tap09%';
    PERFORM loyalty.add_tier(code, 'gold', 'Gold', 500) FROM loyalty.program WHERE code LIKE 'tap09%';
    PERFORM loyalty.enroll('tap09_never', 'pn', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap09_pe', 'pe', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap09_one', 'po', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap09_grace', 'pg', '2026-01-01 00:00:00+00');
END$$;

-- Everyone earns 600 on 2026-03-01 and goes base -> gold.
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m(r), 600, 'e1', '2026-03-01 00:00:00+00')).tier, ',' ORDER BY r)
             FROM unnest(ARRAY['pe', 'pg', 'pn', 'po']) r),
          'gold,gold,gold,gold', 'everyone promoted to gold in 2026');

SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-01-02 00:00:00+00');
                  SELECT loyalty.run_maintenance('2028-01-02 00:00:00+00')$$,
                'maintenance after the ends of 2026 and 2027');
SELECT is(pg_temp.hist('pn'), 'base,gold', 'never: still gold');
SELECT is(pg_temp.hist('pe'), 'base,gold,base', 'period_end: dropped to base (qualifying 0)');
SELECT ok((SELECT at FROM loyalty.tier_change WHERE member_id = pg_temp.m('pe') ORDER BY at DESC, id DESC LIMIT 1)
          IN ('2027-01-01 00:00:00+00', '2028-01-01 00:00:00+00'),
          'period_end: the drop is dated at the end of a window period');
SELECT is(pg_temp.hist('pg'), 'base,gold', 'grace 400 days: still gold on 2028-01-02');

SELECT lives_ok($$SELECT loyalty.run_maintenance('2029-01-02 00:00:00+00');
                  SELECT loyalty.run_maintenance('2030-01-02 00:00:00+00')$$,
                'maintenance after the ends of 2028 and 2029');
SELECT is(pg_temp.hist('po'), 'base,gold,silver,base', 'one_step: gold -> silver -> base, one tier per evaluation');
SELECT is(pg_temp.hist('pg'), 'base,gold,base', 'grace 400 days: dropped once the grace ended');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('pe'), 1, 'e2', '2030-01-03 00:00:00+00')),
          '1/601/0/base/f', 'period_end: operations see the lower tier');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
