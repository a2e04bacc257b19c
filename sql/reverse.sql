-- reverse: refunds take back points in proportion to the money refunded.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- One point per unit, rounded; one program per negative_balance policy.
SELECT loyalty.create_program('rev_deny', 'Deny', '{"rounding": "round", "negative_balance": "deny"}') IS NOT NULL AS created;
SELECT loyalty.create_program('rev_allow', 'Allow', '{"rounding": "round", "negative_balance": "allow"}') IS NOT NULL AS created;
SELECT loyalty.create_program('rev_clamp', 'Clamp', '{"rounding": "round", "negative_balance": "clamp"}') IS NOT NULL AS created;
SELECT loyalty.create_program('rev_pend', 'Pending', '{"pending_days": 2}') IS NOT NULL AS created;
SELECT loyalty.add_tier(p, 'base', 'Base', 0) IS NOT NULL AS added
  FROM unnest(ARRAY['rev_deny', 'rev_allow', 'rev_clamp', 'rev_pend']) AS p;
SELECT loyalty.enroll('rev_deny', 'ann', '2024-02-01 00:00+00') AS ann \gset
SELECT loyalty.enroll('rev_deny', 'ben', '2024-02-01 00:00+00') AS ben \gset
SELECT loyalty.enroll('rev_allow', 'cat', '2024-02-01 00:00+00') AS cat \gset
SELECT loyalty.enroll('rev_clamp', 'dan', '2024-02-01 00:00+00') AS dan \gset
SELECT loyalty.enroll('rev_pend', 'eve', '2024-02-01 00:00+00') AS eve \gset

-- A purchase of 100.00 refunded in three parts: 30, then 33.33 (63.33 in
-- all: round(63.33) - 30 = 33 points), then the rest (100 - 63 = 37).
SELECT points, available FROM loyalty.earn(:ann, 100.00, 'p1', '2024-02-01 10:00+00');
SELECT points, available, pending, replayed FROM loyalty.reverse(:ann, 'p1', 30, 'rf1', '2024-02-02 10:00+00');
SELECT points, available, pending, replayed FROM loyalty.reverse(:ann, 'p1', 33.33, 'rf2', '2024-02-03 10:00+00');
SELECT points, available, pending, replayed FROM loyalty.reverse(:ann, 'p1', 33.33, 'rf2', '2024-02-03 10:00+00');
SELECT points, available, pending, replayed FROM loyalty.reverse(:ann, 'p1', NULL, 'rf3', '2024-02-04 10:00+00');
-- Already fully refunded: LY051.
SELECT * FROM loyalty.reverse(:ann, 'p1', 1, 'rf4', '2024-02-04 11:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ann, 'p1', NULL, 'rf4', '2024-02-04 11:00+00');
\echo :LAST_ERROR_SQLSTATE

-- original_key must be an earn of this member (LY005); amount > 0 (LY031);
-- no more than the purchase (LY051).
SELECT points, available FROM loyalty.award(:ann, 5, 'welcome', 'w1', '2024-02-05 10:00+00');
SELECT points, available FROM loyalty.earn(:ann, 40, 'p2', '2024-02-05 11:00+00');
SELECT * FROM loyalty.reverse(:ann, 'nope', 1, 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ann, 'w1', 1, 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ben, 'p2', 1, 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ann, 'p2', 0, 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ann, 'p2', 'NaN', 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.reverse(:ann, 'p2', 40.01, 'rf5', '2024-02-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
-- 145 credited, 100 reversed; qualifying is 140 earned - 100 reversed.
SELECT * FROM loyalty.balance(:ann, '2024-02-06 00:00+00');

-- deny: ben spent 40 of the 50; a full refund would need 50: LY011,
-- nothing written.  A refund of 10 fits.
SELECT points, available FROM loyalty.earn(:ben, 50, 'p1', '2024-02-01 10:00+00');
SELECT points, available FROM loyalty.redeem(:ben, 40, 'r1', '2024-02-02 10:00+00');
SELECT * FROM loyalty.reverse(:ben, 'p1', NULL, 'rf1', '2024-02-03 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT points, available, pending FROM loyalty.reverse(:ben, 'p1', 10, 'rf2', '2024-02-03 10:00+00');
SELECT available, lifetime_earned, redeemed, qualifying FROM loyalty.balance(:ben, '2024-02-04 00:00+00');

-- allow: the balance goes negative, and the debt is paid by the next earn.
SELECT points, available FROM loyalty.earn(:cat, 50, 'p1', '2024-02-01 10:00+00');
SELECT points, available FROM loyalty.redeem(:cat, 40, 'r1', '2024-02-02 10:00+00');
SELECT points, available, pending FROM loyalty.reverse(:cat, 'p1', NULL, 'rf1', '2024-02-03 10:00+00');
SELECT available, lifetime_earned, redeemed, expired FROM loyalty.balance(:cat, '2024-02-04 00:00+00');
SELECT points, available FROM loyalty.earn(:cat, 100, 'p2', '2024-02-05 10:00+00');
SELECT * FROM loyalty.redeem(:cat, 61, 'r2', '2024-02-06 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT available, lifetime_earned, redeemed, expired FROM loyalty.balance(:cat, '2024-02-07 00:00+00');

-- clamp: only the 10 left are taken back.
SELECT points, available FROM loyalty.earn(:dan, 50, 'p1', '2024-02-01 10:00+00');
SELECT points, available FROM loyalty.redeem(:dan, 40, 'r1', '2024-02-02 10:00+00');
SELECT points, available, pending FROM loyalty.reverse(:dan, 'p1', NULL, 'rf1', '2024-02-03 10:00+00');
SELECT available, lifetime_earned, redeemed, expired FROM loyalty.balance(:dan, '2024-02-04 00:00+00');

-- Pending points of the purchase go first: eve's 80 are pending until
-- 2024-02-03 10:00; refunding half takes 40 of them, not her 20 available.
SELECT points, available, pending FROM loyalty.award(:eve, 20, 'welcome', 'w1', '2024-02-01 09:00+00');
SELECT points, available, pending FROM loyalty.earn(:eve, 80, 'p1', '2024-02-01 10:00+00');
SELECT points, available, pending FROM loyalty.reverse(:eve, 'p1', 40, 'rf1', '2024-02-02 10:00+00');
SELECT available, pending FROM loyalty.balance(:eve, '2024-02-03 09:59:59+00');
SELECT available, pending FROM loyalty.balance(:eve, '2024-02-03 10:00+00');

SELECT m.external_ref, s.at, s.kind, s.points, s.idempotency_key
  FROM loyalty.member m, loyalty.statement(m.id) s
 WHERE m.id IN (:ann, :ben, :cat, :dan, :eve)
 ORDER BY m.external_ref, s.at, s.entry_id;
SELECT count(*) AS violations FROM loyalty.check_invariants();
