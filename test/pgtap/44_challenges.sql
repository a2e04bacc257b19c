-- 44: challenges and badges: calendar months and weeks in a non-UTC time zone (at
-- their boundaries, across DST), fixed windows, purchases / spend / distinct stores /
-- streaks of weeks with a gap, attrs and min_amount matching, completion exactly once
-- per period (late purchases, refunds that dip below and climb back), badges held
-- once, refunds reducing progress, hostile definitions.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(96);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = 'tap44' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.e(ref text, amount numeric, k text, t timestamptz, attrs jsonb) RETURNS text
    LANGUAGE sql AS $$ SELECT pg_temp.rc(loyalty.earn(pg_temp.m(ref), amount, k, t, attrs)) $$;
-- progress / completed? of one challenge in the period containing t
CREATE FUNCTION pg_temp.pr(ref text, c text, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s', progress, (completed_at IS NOT NULL)::text)
      FROM loyalty.challenge_progress(pg_temp.m(ref), t) WHERE challenge = c $$;
CREATE FUNCTION pg_temp.awards(ref text, c text) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(idempotency_key ORDER BY id), '{}') FROM loyalty.entry
     WHERE member_id = pg_temp.m(ref) AND kind = 'award' AND reason = 'challenge ' || c $$;

SELECT loyalty.create_program('tap44', 'Challenges', '{"timezone": "America/New_York"}');
SELECT loyalty.add_tier('tap44', 'base', 'Base', 0);
SELECT ok(loyalty.add_challenge('tap44', 'three-a-month',
          '{"goal": "purchases", "target": 3, "period": "month", "match": {"attrs": {"m": 1}},
            "reward": {"points": 100, "badge": "regular"}}', 'Three visits a month') > 0, 'add_challenge: monthly purchases');
SELECT ok(loyalty.add_challenge('tap44', 'tour',
          '{"goal": "stores", "target": 3, "period": "lifetime", "match": {"attrs": {"s": 1}}, "reward": {"badge": "explorer"}}') > 0,
          'add_challenge: three distinct stores, a badge only');
SELECT ok(loyalty.add_challenge('tap44', 'streak',
          '{"goal": "streak_weeks", "target": 3, "period": "lifetime", "match": {"attrs": {"w": 1}}, "reward": {"points": 30}}') > 0,
          'add_challenge: three consecutive weeks');
SELECT ok(loyalty.add_challenge('tap44', 'big-week',
          '{"goal": "spend", "target": 50, "period": "week", "match": {"attrs": {"channel": "app"}}, "reward": {"points": 5}}') > 0,
          'add_challenge: spend 50 in the app in a week');
SELECT ok(loyalty.add_challenge('tap44', 'spring',
          '{"goal": "purchases", "target": 2, "period": {"from": "2026-03-01 00:00-05", "to": "2026-04-01 00:00-04"},
            "match": {"attrs": {"f": 1}, "min_amount": 5}, "reward": {"badge": "regular"}}') > 0,
          'add_challenge: a fixed window, the same badge as three-a-month');

SELECT loyalty.enroll('tap44', r, '2026-01-01') FROM unnest(ARRAY['eve', 'fay', 'gus', 'hal', 'ivy']) r;

-- ---- calendar months in New York, exactly once per month ----
SELECT is(pg_temp.e('eve', 10, 'e1', '2026-01-10 12:00-05', '{"m": 1}'), '10/10/0/base/f', 'e1');
SELECT is(pg_temp.e('eve', 10, 'e2', '2026-01-20 12:00-05', '{"m": 1}'), '10/20/0/base/f', 'e2');
SELECT is(pg_temp.e('eve', 10, 'e3', '2026-02-01 03:00+00', '{"m": 1}'), '10/130/0/base/f',
          'e3: 1 February in UTC, still 31 January in New York: the third January purchase pays 100');
SELECT results_eq($$SELECT progress, period_start, period_end, completed_at
                      FROM loyalty.challenge_progress(pg_temp.m('eve'), '2026-01-31 23:59:59-05') WHERE challenge = 'three-a-month'$$,
                  $$VALUES (3::numeric, '2026-01-01 05:00+00'::timestamptz, '2026-02-01 05:00+00'::timestamptz, '2026-02-01 03:00+00'::timestamptz)$$,
                  'January in New York: 3 of 3, completed by e3');
SELECT is(pg_temp.e('eve', 10, 'e4', '2026-02-01 05:00+00', '{"m": 1}'), '10/140/0/base/f', 'e4: midnight 1 February in New York');
SELECT results_eq($$SELECT progress, period_start, period_end, completed_at IS NULL
                      FROM loyalty.challenge_progress(pg_temp.m('eve'), '2026-02-01 00:00-05') WHERE challenge = 'three-a-month'$$,
                  $$VALUES (1::numeric, '2026-02-01 05:00+00'::timestamptz, '2026-03-01 05:00+00'::timestamptz, true)$$,
                  'February starts a new period: 1 of 3');
SELECT is(pg_temp.e('eve', 10, 'e5', '2026-01-25 12:00-05', '{"m": 1}'), '10/150/0/base/f',
          'e5: a late January purchase does not pay January again');
SELECT is(pg_temp.pr('eve', 'three-a-month', '2026-01-15'), '4/true', 'January: 4 purchases, completed once');
SELECT is(pg_temp.e('eve', 10, 'e6', '2026-02-10 12:00-05', '{"m": 1}'), '10/160/0/base/f', 'e6');
SELECT is(pg_temp.e('eve', 10, 'e7', '2026-02-20 12:00-05', '{"m": 1}'), '10/270/0/base/f', 'e7 completes February: 100 more');
SELECT is(pg_temp.awards('eve', 'three-a-month'), ARRAY['e3/challenge/three-a-month', 'e7/challenge/three-a-month'],
          'one award per month, keyed from the purchase that completed it');
SELECT results_eq($$SELECT badge, challenge, awarded_at FROM loyalty.member_badges(pg_temp.m('eve'))$$,
                  $$VALUES ('regular', 'three-a-month', '2026-02-01 03:00+00'::timestamptz)$$,
                  'the badge is held once, from the first completion');
SELECT is((SELECT format('%s/%s', r.points, r.replayed) FROM loyalty.earn(pg_temp.m('eve'), 10, 'e7', '2026-02-20 12:00-05', '{"m": 1}') r),
          '10/t', 'e7 again is a replay');
SELECT is(pg_temp.awards('eve', 'three-a-month'), ARRAY['e3/challenge/three-a-month', 'e7/challenge/three-a-month'],
          'and pays nothing again');

-- ---- distinct stores; a refund reduces progress, a completed challenge stays completed ----
SELECT is(pg_temp.e('fay', 10, 'f1', '2026-01-05', '{"s": 1, "store": "s1"}'), '10/10/0/base/f', 'f1 at s1');
SELECT is(pg_temp.e('fay', 10, 'f2', '2026-01-06', '{"s": 1, "store": "s1"}'), '10/20/0/base/f', 'f2 at s1 again');
SELECT is(pg_temp.e('fay', 10, 'f3', '2026-01-07', '{"s": 1, "store": "s2"}'), '10/30/0/base/f', 'f3 at s2');
SELECT is(pg_temp.e('fay', 10, 'f4', '2026-01-08', '{"s": 1}'), '10/40/0/base/f', 'f4 without a store');
SELECT is(pg_temp.pr('fay', 'tour', '2026-01-08'), '2/false', 'two distinct stores');
SELECT is(pg_temp.e('fay', 10, 'f5', '2026-01-09', '{"s": 1, "store": 7}'), '10/50/0/base/f', 'f5 at store 7: a badge, no points');
SELECT is(pg_temp.pr('fay', 'tour', '2026-01-09'), '3/true', 'three stores: completed');
SELECT is((SELECT string_agg(badge, ',') FROM loyalty.member_badges(pg_temp.m('fay'))), 'explorer', 'badge explorer');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('fay'), 'f5', NULL, 'rf5', '2026-01-10')), '-10/40/0/base/f', 'refund f5');
SELECT is(pg_temp.pr('fay', 'tour', '2026-01-10'), '2/true', 'back to two stores; the challenge stays completed');
SELECT is(pg_temp.e('fay', 10, 'f6', '2026-01-11', '{"s": 1, "store": "s3"}'), '10/50/0/base/f', 'f6 at a third store again');
SELECT results_eq($$SELECT progress, completed_at FROM loyalty.challenge_progress(pg_temp.m('fay'), '2026-01-11') WHERE challenge = 'tour'$$,
                  $$VALUES (3::numeric, '2026-01-09 00:00+00'::timestamptz)$$, 'three again, still completed by f5, not again');
SELECT is((SELECT count(*) FROM loyalty.member_badges(pg_temp.m('fay'))), 1::bigint, 'one badge');

-- ---- streaks of weeks (Monday to Sunday in New York), with a gap ----
SELECT is(pg_temp.e('gus', 10, 'g1', '2026-03-02 10:00-05', '{"w": 1}'), '10/10/0/base/f', 'g1: week of 2 March');
SELECT is(pg_temp.e('gus', 10, 'g2', '2026-03-08 23:30-04', '{"w": 1}'), '10/20/0/base/f',
          'g2: Sunday night in New York (Monday in UTC, first day of DST): still the week of 2 March');
SELECT is(pg_temp.e('gus', 10, 'g3', '2026-03-16 09:00-04', '{"w": 1}'), '10/30/0/base/f', 'g3: the week of 9 March had none');
SELECT is(pg_temp.pr('gus', 'streak', '2026-03-16'), '1/false', 'the gap broke the streak');
SELECT is(pg_temp.e('gus', 10, 'g4', '2026-03-24 09:00-04', '{"w": 1}'), '10/40/0/base/f', 'g4: week of 23 March');
SELECT is(pg_temp.pr('gus', 'streak', '2026-03-24'), '2/false', 'two weeks in a row');
SELECT is(pg_temp.e('gus', 10, 'g5', '2026-03-31 09:00-04', '{"w": 1}'), '10/80/0/base/f', 'g5: the third week in a row pays 30');
SELECT is(pg_temp.awards('gus', 'streak'), ARRAY['g5/challenge/streak'], 'the streak award');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('gus'), 'g4', NULL, 'rg4', '2026-04-01')), '-10/70/0/base/f', 'refund g4');
SELECT is(pg_temp.pr('gus', 'streak', '2026-04-01'), '1/true', 'the middle week is gone: longest run 1, completed stays');

-- ---- spend per week, attrs match, partial refunds ----
SELECT is(pg_temp.e('hal', 30, 'h1', '2026-03-02 12:00-05', '{"channel": "app"}'), '30/30/0/base/f', 'h1: 30 in the app');
SELECT is(pg_temp.e('hal', 100, 'h2', '2026-03-03 12:00-05', '{"channel": "store"}'), '100/130/0/base/f', 'h2: in a store, does not count');
SELECT is(pg_temp.e('hal', 19.99, 'h3', '2026-03-04 12:00-05', '{"channel": "app"}'), '19/149/0/base/f', 'h3: 19.99');
SELECT is(pg_temp.pr('hal', 'big-week', '2026-03-04'), '49.99/false', '49.99 of 50');
SELECT is(pg_temp.e('hal', 0.01, 'h4', '2026-03-08 23:59-04', '{"channel": "app"}'), '0/154/0/base/f',
          'h4: one cent on the last minute of the week (New York) completes it: 5 points');
SELECT is(pg_temp.e('hal', 60, 'h5', '2026-03-09 00:00-04', '{"channel": "app"}'), '60/219/0/base/f', 'h5: a new week, completed again');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('hal'), 'h5', 10, 'rh5', '2026-03-10')), '-10/209/0/base/f', 'refund 10 of h5');
SELECT is(pg_temp.pr('hal', 'big-week', '2026-03-10'), '50/true', 'spend 50, still completed');
SELECT is(pg_temp.awards('hal', 'big-week'), ARRAY['h4/challenge/big-week', 'h5/challenge/big-week'], 'once per week');

-- ---- a fixed window at its edges; two challenges, one badge ----
SELECT is(pg_temp.e('ivy', 10, 'i1', '2026-02-28 23:59:59-05', '{"f": 1, "m": 1}'), '10/10/0/base/f', 'i1: a second before the window');
SELECT is(pg_temp.e('ivy', 10, 'i2', '2026-03-01 00:00-05', '{"f": 1, "m": 1}'), '10/20/0/base/f', 'i2: its first instant');
SELECT is(pg_temp.e('ivy', 4, 'i6', '2026-03-02 00:00-05', '{"f": 1}'), '4/24/0/base/f', 'i6: under min_amount 5');
SELECT is(pg_temp.pr('ivy', 'spring', '2026-03-02'), '1/false', 'one purchase in the window counts');
SELECT is(pg_temp.e('ivy', 10, 'i5', '2026-03-10 12:00-04', '{"m": 1}'), '10/34/0/base/f', 'i5');
SELECT is(pg_temp.e('ivy', 10, 'i3', '2026-03-31 23:59:59-04', '{"f": 1, "m": 1}'), '10/144/0/base/f',
          'i3: the last second of the window completes spring and March');
SELECT is(pg_temp.e('ivy', 10, 'i4', '2026-04-01 00:00-04', '{"f": 1, "m": 1}'), '10/154/0/base/f', 'i4: the window has ended');
SELECT results_eq($$SELECT progress, period_start, period_end, completed_at
                      FROM loyalty.challenge_progress(pg_temp.m('ivy'), '2026-04-02') WHERE challenge = 'spring'$$,
                  $$VALUES (2::numeric, '2026-03-01 05:00+00'::timestamptz, '2026-04-01 04:00+00'::timestamptz,
                            '2026-04-01 03:59:59+00'::timestamptz)$$, 'spring: 2 of 2, its window');
SELECT results_eq($$SELECT badge, challenge FROM loyalty.member_badges(pg_temp.m('ivy'))$$,
                  $$VALUES ('regular', 'three-a-month')$$, 'one badge, from the first challenge that gave it');

-- ---- the readers ----
SELECT is((SELECT count(*) FROM loyalty.challenge_progress(pg_temp.m('ivy'), '2026-04-02')), 5::bigint,
          'challenge_progress lists every active challenge');
SELECT throws_ok($$SELECT * FROM loyalty.challenge_progress(-1)$$, 'LY002', NULL, 'unknown member -> LY002');
SELECT throws_ok($$SELECT * FROM loyalty.challenge_progress(pg_temp.m('ivy'), 'infinity')$$, 'LY033', NULL, 'infinite at -> LY033');
SELECT throws_ok($$SELECT * FROM loyalty.member_badges(NULL)$$, 'LY034', NULL, 'NULL member -> LY034');

-- ---- hostile definitions: each its SQLSTATE, nothing written ----
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '[1]')$$, 'LY035', NULL, 'not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": ')$$, '22P02', NULL, 'bad JSON -> 22P02');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', NULL)$$, 'LY034', NULL, 'NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "visits", "target": 1, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'unknown goal -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 0, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'target 0 -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "spend", "target": -5, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'negative target -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 2.5, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'fractional purchases -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": "3", "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'target as a string -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "year", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'unknown period -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'no period -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": {"from": "soon", "to": "later"}, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'period not timestamps -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": {"from": "2026-02-01", "to": "2026-01-01"}, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'period ending before it starts -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "streak_weeks", "target": 3, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'a streak inside a month -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": 1}, "bonus": 2}')$$,
                 'LY123', NULL, 'unknown key -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "match": {"attrs": [1]}, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'match attrs not an object -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month"}')$$,
                 'LY122', NULL, 'no reward -> LY122');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {}}')$$,
                 'LY122', NULL, 'empty reward -> LY122');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": -5}}')$$,
                 'LY122', NULL, 'negative points -> LY122');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"reward": "x"}}')$$,
                 'LY122', NULL, 'a catalog reward is not a challenge reward -> LY122');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"badge": ""}}')$$,
                 'LY122', NULL, 'empty badge -> LY122');
SELECT throws_ok($$SELECT loyalty.add_challenge('nope', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": 1}}')$$,
                 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'tour', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": 1}}')$$,
                 'LY041', NULL, 'duplicate code -> LY041');
SELECT is((SELECT count(*) FROM loyalty.challenge), 5::bigint, 'no hostile definition wrote anything');

UPDATE loyalty.challenge_progress SET purchases = purchases + 1 WHERE member_id = pg_temp.m('fay');
SELECT results_eq($$SELECT invariant FROM loyalty.check_engagement()$$, $$VALUES ('challenge_progress')$$,
                  'check_engagement sees progress that its credits do not explain');
UPDATE loyalty.challenge_progress SET purchases = purchases - 1 WHERE member_id = pg_temp.m('fay');
SELECT is_empty('SELECT * FROM loyalty.check_engagement()', 'engagement invariants hold');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "spend", "target": 1e400, "period": "month", "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'target 1e400 -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": {"from": "2026-01-01", "to": "infinity"}, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'an endless fixed period -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": {"from": "2026-01-01", "to": "300000-01-01"}, "reward": {"points": 1}}')$$,
                 'LY123', NULL, 'a period out of timestamp range -> LY123');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', repeat('x', 100000), '{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": 1}}')$$,
                 'LY037', NULL, 'a 100 000-byte code -> LY037');
SELECT throws_ok($$SELECT loyalty.add_challenge('tap44', 'x', '{"goal": "purchases", "target": 3, "period": "month", "reward": {"badge": 5}}')$$,
                 'LY122', NULL, 'badge not a string -> LY122');
SELECT throws_ok($$SELECT * FROM loyalty.challenge_progress(pg_temp.m('ivy'), NULL)$$, 'LY034', NULL, 'at NULL -> LY034');
SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
