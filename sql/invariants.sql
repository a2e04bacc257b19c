-- invariants: the ledger is append-only, and check_invariants() finds
-- balances that disagree with it.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- Everything the earlier files did is consistent.
SELECT count(*) AS violations FROM loyalty.check_invariants();
-- available + pending = lifetime_earned - redeemed - expired, for everyone.
SELECT count(*) AS members,
       count(*) FILTER (WHERE b.available + b.pending
                              <> b.lifetime_earned - b.redeemed - b.expired) AS broken
  FROM loyalty.member m, loyalty.balance(m.id, '2030-01-01 00:00+00') b;

SELECT loyalty.create_program('inv', 'Invariants') IS NOT NULL AS created;
SELECT loyalty.add_tier('inv', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.enroll('inv', 'ivy', '2024-01-01 00:00+00') AS ivy \gset
SELECT points, available FROM loyalty.earn(:ivy, 100, 'p1', '2024-01-02 00:00+00');
SELECT points, available FROM loyalty.redeem(:ivy, 40, 'r1', '2024-01-03 00:00+00');

-- The ledger refuses UPDATE, DELETE and TRUNCATE: LY060.
UPDATE loyalty.entry SET points = 1000 WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM loyalty.entry WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE loyalty.entry CASCADE;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM loyalty.lot_draw WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
UPDATE loyalty.lot_draw SET points = 1 WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE loyalty.lot_draw;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM loyalty.tier_change WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
UPDATE loyalty.tier_change SET to_tier = 'gold' WHERE member_id = :ivy;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE loyalty.tier_change;
\echo :LAST_ERROR_SQLSTATE
SELECT kind, points FROM loyalty.statement(:ivy);

-- Tampering with a member's balance columns or a lot is found.
BEGIN;
UPDATE loyalty.member SET available = available + 5 WHERE id = :ivy;
SELECT invariant, detail FROM loyalty.check_invariants() WHERE member_id = :ivy ORDER BY 1, 2;
ROLLBACK;
BEGIN;
UPDATE loyalty.lot SET remaining = remaining - 1 WHERE member_id = :ivy;
SELECT invariant, detail FROM loyalty.check_invariants() WHERE member_id = :ivy ORDER BY 1, 2;
ROLLBACK;
SELECT count(*) AS violations FROM loyalty.check_invariants();
