-- 08_balance_statement: balance columns and their identity, next expiry,
-- statement order, kinds and from/to filtering, balances as of past times.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(38);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap08%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.nx(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(to_char(next_expiry, 'YYYY-MM-DD HH24:MI:SS'), '-') || ' ' || coalesce(next_expiry_points, 0)::text
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.st(mid bigint, f timestamptz DEFAULT '-infinity', t timestamptz DEFAULT 'infinity')
    RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(kind || ':' || points, ',' ORDER BY n)
      FROM (SELECT kind, points, row_number() OVER () AS n FROM loyalty.statement(mid, f, t)) s $$;

-- Rolling 12-month expiry, UTC, no pending.
DO $$BEGIN
    PERFORM loyalty.create_program('tap08', 'Balance', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap08', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap08', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['b', 'c']) r;
    -- Two lots with the same expiry instant, 2027-01-10 10:00Z (a1 is the older).
    PERFORM loyalty.award(pg_temp.m('b'), 20, 'welcome', 'a1', '2026-01-10 10:00:00+00');
    PERFORM loyalty.award(pg_temp.m('b'), 30, 'birthday', 'a2', '2026-01-10 10:00:00+00');
    -- Earn lot e1: 100, expires 2027-02-01.
    PERFORM loyalty.earn(pg_temp.m('b'), 100, 'e1', '2026-02-01 00:00:00+00');
    -- redeem 10: from a1 (same expiry as a2, older) -> a1 10, a2 30, e1 100
    PERFORM loyalty.redeem(pg_temp.m('b'), 10, 'r1', '2026-03-01 00:00:00+00');
    -- adjust -5: from a1 -> a1 5, a2 30, e1 100
    PERFORM loyalty.adjust(pg_temp.m('b'), -5, 'typo in receipt', 'ad1', '2026-04-01 00:00:00+00');
    -- refund half of e1: 50 points from e1 -> a1 5, a2 30, e1 50
    PERFORM loyalty.reverse(pg_temp.m('b'), 'e1', 50, 'rv1', '2026-04-15 00:00:00+00');
    -- transfer 10 to c: a1 5, a2 5 -> a1 0, a2 25, e1 50
    PERFORM loyalty.transfer(pg_temp.m('b'), pg_temp.m('c'), 10, 'tx1', '2026-06-01 00:00:00+00');
END$$;

-- true when the statement detail of the entry with key k lists every lot it
-- drew from (lot id and points), under "lots" or "drawn"
CREATE FUNCTION pg_temp.detail_lists_draws(mid bigint, k text) RETURNS boolean LANGUAGE sql AS $$
    SELECT count(*) > 0 AND bool_and(EXISTS (
               SELECT FROM loyalty.statement(mid) s,
                      jsonb_array_elements(coalesce(s.detail->'drawn', s.detail->'lots')) x
                WHERE s.entry_id = d.entry_id
                  AND (x->>'lot')::bigint = d.lot_id AND (x->>'points')::bigint = d.points))
      FROM loyalty.lot_draw d JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
     WHERE e.member_id = mid AND e.idempotency_key = k $$;

-- ---------------------------------------------------------------------------
-- Balance as of different times
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-01-10 09:59:59+00'), '0/0/0/0/0/base',
          'before the first entry');
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-01-10 10:00:00+00'), '50/0/50/0/0/base',
          'an entry dated exactly at `at` is counted');
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-02-28 23:59:59+00'), '150/0/150/0/0/base',
          'between earn and redeem');
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-03-01 00:00:00+00'), '140/0/150/10/0/base',
          'at the redeem');
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-04-01 00:00:00+00'), '135/0/150/15/0/base',
          'negative adjust counts as redeemed');
-- lifetime 150 - 50 reversed = 100
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-04-15 00:00:00+00'), '85/0/100/15/0/base',
          'reversed points come off lifetime_earned');
-- 100 - 25 - 0 = 75
SELECT is(pg_temp.bal(pg_temp.m('b'), '2026-06-01 00:00:00+00'), '75/0/100/25/0/base',
          'transfer_out counts as redeemed');
SELECT is(pg_temp.bal(pg_temp.m('c'), '2026-06-01 00:00:00+00'), '10/0/10/0/0/base',
          'transfer_in counts as earned for the receiver');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('b'), '2026-03-01 00:00:00+00')), 100::numeric,
          'qualifying: the earn (awards do not qualify)');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('b'), '2026-05-01 00:00:00+00')), 50::numeric,
          'qualifying after refunding half');

-- ---------------------------------------------------------------------------
-- next_expiry / next_expiry_points
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.nx(pg_temp.m('b'), '2026-01-15 00:00:00+00'), '2027-01-10 10:00:00 50',
          'two lots with one expiry instant: points summed');
SELECT is(pg_temp.nx(pg_temp.m('b'), '2026-03-15 00:00:00+00'), '2027-01-10 10:00:00 40',
          'next_expiry_points after a redeem');
SELECT is(pg_temp.nx(pg_temp.m('b'), '2026-07-01 00:00:00+00'), '2027-01-10 10:00:00 25',
          'next_expiry_points after adjust and transfer');
SELECT is(pg_temp.nx(pg_temp.m('c'), '2026-07-01 00:00:00+00'), '2027-01-10 10:00:00 10',
          'receiver: next expiry is the sender''s');
SELECT is(pg_temp.bal(pg_temp.m('b'), '2027-01-10 10:00:00+00'), '50/0/100/25/25/base',
          'at the expiry instant: 25 expired');
SELECT is(pg_temp.nx(pg_temp.m('b'), '2027-01-10 10:00:00+00'), '2027-02-01 00:00:00 50',
          'then the next expiry is the earn lot');
SELECT is(pg_temp.nx(pg_temp.m('b'), '2027-02-01 00:00:00+00'), '- 0',
          'nothing left to expire');

-- ---------------------------------------------------------------------------
-- A later operation writes the expire entry; statement shows everything in
-- business-time order.
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.award(pg_temp.m('b'), 1, 'late', 'a3', '2027-01-15 00:00:00+00')$$,
                'award after the expiry instant');
SELECT is(pg_temp.st(pg_temp.m('b')),
          'award:20,award:30,earn:100,redeem:-10,adjust:-5,reverse:-50,transfer_out:-10,expire:-25,award:1',
          'statement: all kinds in business-time order');
SELECT is(pg_temp.st(pg_temp.m('c')), 'transfer_in:10', 'receiver statement');
SELECT results_eq($$SELECT at FROM loyalty.statement(pg_temp.m('b'))$$,
                  $$SELECT at FROM loyalty.statement(pg_temp.m('b')) ORDER BY at$$,
                  'statement is sorted by at');
SELECT is((SELECT at FROM loyalty.statement(pg_temp.m('b')) WHERE kind = 'expire'),
          '2027-01-10 10:00:00+00'::timestamptz, 'expire entry dated at the expiry instant');
SELECT is((SELECT string_agg(coalesce(idempotency_key, '-'), ',' ORDER BY at, entry_id) FROM loyalty.statement(pg_temp.m('b'))
            WHERE kind <> 'expire'),
          'a1,a2,e1,r1,ad1,rv1,tx1,a3', 'statement shows the idempotency keys');
SELECT ok((SELECT bool_and(recorded_at IS NOT NULL AND entry_id IS NOT NULL) FROM loyalty.statement(pg_temp.m('b'))),
          'statement rows have entry_id and recorded_at');
SELECT ok(pg_temp.detail_lists_draws(pg_temp.m('b'), 'r1'),
          'redeem detail lists the lots drawn');
SELECT ok((SELECT detail::text LIKE '%typo in receipt%' FROM loyalty.statement(pg_temp.m('b')) WHERE kind = 'adjust'),
          'adjust detail carries the reason');

-- from/to filtering
SELECT is(pg_temp.st(pg_temp.m('b'), '2026-02-15 00:00:00+00', '2026-05-01 00:00:00+00'),
          'redeem:-10,adjust:-5,reverse:-50', 'statement between two times');
SELECT is(pg_temp.st(pg_temp.m('b'), '2026-05-01 00:00:00+00'),
          'transfer_out:-10,expire:-25,award:1', 'statement from a time on');
SELECT is(pg_temp.st(pg_temp.m('b'), '-infinity', '2026-01-31 00:00:00+00'),
          'award:20,award:30', 'statement up to a time');
SELECT is(pg_temp.st(pg_temp.m('b'), '2028-01-01 00:00:00+00'), NULL, 'statement of an empty range');

-- ---------------------------------------------------------------------------
-- Identity available + pending = lifetime_earned - redeemed - expired at many
-- times, with pending points too.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap08_p', 'Pending', '{"pending_days": 7, "expiry": {"policy": "rolling", "months": 2}}');
    PERFORM loyalty.add_tier('tap08_p', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap08_p', 'p', '2026-01-01 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('p'), 100, 'e1', '2026-01-01 00:00:00+00');  -- available 01-08, expires 03-08
    PERFORM loyalty.earn(pg_temp.m('p'), 50, 'e2', '2026-01-05 00:00:00+00');   -- available 01-12, expires 03-12
    PERFORM loyalty.redeem(pg_temp.m('p'), 30, 'r1', '2026-01-10 00:00:00+00'); -- from e1 -> 70
END$$;
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-01-06 00:00:00+00'), '0/150/150/0/0/base',
          'pending points are counted as pending');
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-01-10 00:00:00+00'), '70/50/150/30/0/base',
          'one lot released, one still pending');
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-03-08 00:00:00+00'), '50/0/150/30/70/base',
          'first lot expired');
SELECT is_empty($$SELECT t FROM generate_series('2025-12-31 00:00:00+00'::timestamptz, '2026-04-01', '12 hours') t,
                       LATERAL loyalty.balance(pg_temp.m('p'), t) b
                  WHERE b.available + b.pending <> b.lifetime_earned - b.redeemed - b.expired
                 UNION ALL
                 SELECT t FROM generate_series('2026-01-01 00:00:00+00'::timestamptz, '2027-03-01', '1 day') t,
                       LATERAL loyalty.balance(pg_temp.m('b'), t) b
                  WHERE b.available + b.pending <> b.lifetime_earned - b.redeemed - b.expired$$,
                'identity available + pending = lifetime_earned - redeemed - expired at every time');

SELECT throws_ok($$SELECT * FROM loyalty.balance(-1, '2026-01-01 00:00:00+00')$$,
                 'LY002', NULL, 'balance of an unknown member -> LY002');
SELECT throws_ok($$SELECT * FROM loyalty.balance(NULL, '2026-01-01 00:00:00+00')$$,
                 'LY034', NULL, 'balance of NULL -> LY034');
SELECT throws_ok($$SELECT * FROM loyalty.statement(-1)$$,
                 'LY002', NULL, 'statement of an unknown member -> LY002');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
