-- operations: earn, award, redeem, adjust, transfer, idempotency.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- 10 points per unit, floor; silver (1000 qualifying points) earns double.
SELECT loyalty.create_program('ops', 'Operations', '{"points_per_unit": 10}') IS NOT NULL AS created;
SELECT loyalty.add_tier('ops', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.add_tier('ops', 'silver', 'Silver', 1000, 2) IS NOT NULL AS added;
SELECT loyalty.create_program('ops_other', 'Another program') IS NOT NULL AS created;
SELECT loyalty.add_tier('ops_other', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.enroll('ops', 'alice', '2024-01-01 00:00+00') AS alice \gset
SELECT loyalty.enroll('ops', 'bob', '2024-01-01 00:00+00') AS bob \gset
SELECT loyalty.enroll('ops_other', 'carol', '2024-01-01 00:00+00') AS carol \gset

-- earn: 12.34 * 10 = 123.4, floored to 123.
SELECT points, available, pending, tier, replayed
  FROM loyalty.earn(:alice, 12.34, 'e1', '2024-01-02 10:00+00');
SELECT id AS e1 FROM loyalty.entry WHERE member_id = :alice AND idempotency_key = 'e1' \gset
-- The same call again (a later `at`, as a retry with at = now() would have):
-- the original receipt, replayed.
SELECT entry_id = :e1 AS same_entry, points, available, pending, tier, replayed
  FROM loyalty.earn(:alice, 12.34, 'e1', '2024-01-09 10:00+00');
-- The same key with another amount, or for another operation: LY020.
SELECT * FROM loyalty.earn(:alice, 99, 'e1', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.redeem(:alice, 10, 'e1', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE

-- Bad input: amount (LY031), key (LY021), time (LY033, LY034), attrs (LY035).
SELECT * FROM loyalty.earn(:alice, 0, 'bad', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, -5, 'bad', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 'NaN', 'bad', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 10, NULL, '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 10, '', '2024-01-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 10, 'bad', 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 10, 'bad', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.earn(:alice, 10, 'bad', '2024-01-02 10:00+00', '[1]');
\echo :LAST_ERROR_SQLSTATE

-- 100 * 10 = 1000 at the base multiplier; qualifying reaches 1123, so alice
-- is promoted by this earn and earns double from the next one on.
SELECT points, available, pending, tier, replayed
  FROM loyalty.earn(:alice, 100, 'e2', '2024-01-03 10:00+00');
SELECT points, available, pending, tier, replayed
  FROM loyalty.earn(:alice, 10, 'e3', '2024-01-04 10:00+00', '{"store": "paris-1"}');
-- 0.04 * 10 * 2 = 0.8, floored to 0: an entry with no points.
SELECT points, available, pending, tier, replayed
  FROM loyalty.earn(:alice, 0.04, 'e4', '2024-01-04 11:00+00');

-- award: available at once, not qualifying.
SELECT points, available, pending, tier, replayed
  FROM loyalty.award(:alice, 50, 'birthday', 'a1', '2024-01-05 10:00+00');
SELECT * FROM loyalty.award(:alice, 0, 'birthday', 'bad', '2024-01-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.award(:alice, 50, '', 'bad', '2024-01-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.award(:alice, 50, NULL, 'bad', '2024-01-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE

-- redeem: points are negative in the receipt.
SELECT points, available, pending, tier, replayed
  FROM loyalty.redeem(:alice, 300, 'r1', '2024-01-06 10:00+00', 'coffee mug');
SELECT * FROM loyalty.redeem(:alice, 5000, 'r2', '2024-01-06 11:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.redeem(:alice, 0, 'r2', '2024-01-06 11:00+00');
\echo :LAST_ERROR_SQLSTATE

-- adjust: positive or negative, with a reason.
SELECT points, available, pending, tier, replayed
  FROM loyalty.adjust(:alice, 25, 'goodwill', 'adj1', '2024-01-07 10:00+00');
SELECT points, available, pending, tier, replayed
  FROM loyalty.adjust(:alice, -98, 'double-scanned receipt', 'adj2', '2024-01-07 11:00+00');
SELECT * FROM loyalty.adjust(:alice, 0, 'nothing', 'bad', '2024-01-07 11:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.adjust(:alice, 5, '', 'bad', '2024-01-07 11:00+00');
\echo :LAST_ERROR_SQLSTATE

-- transfer: the sender's receipt; bob receives the points available at once.
SELECT points, available, pending, tier, replayed
  FROM loyalty.transfer(:alice, :bob, 400, 't1', '2024-01-08 10:00+00');
SELECT points, available, pending, tier, replayed
  FROM loyalty.transfer(:alice, :bob, 400, 't1', '2024-01-08 10:00+00');
SELECT * FROM loyalty.transfer(:alice, :alice, 10, 'bad', '2024-01-08 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.transfer(:alice, :carol, 10, 'bad', '2024-01-08 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.transfer(:alice, :bob, 601, 'bad', '2024-01-08 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.transfer(:alice, :bob, 0, 'bad', '2024-01-08 10:00+00');
\echo :LAST_ERROR_SQLSTATE

-- Balances: 1398 credited (123 + 1000 + 200 + 0 + 50 + 25), 798 debited
-- (300 + 98 + 400), 600 left; qualifying counts earned points only.
SELECT * FROM loyalty.balance(:alice, '2024-01-31 00:00+00');
SELECT * FROM loyalty.balance(:bob, '2024-01-31 00:00+00');
-- As of an earlier time, later entries are not counted.
SELECT available, lifetime_earned, tier, qualifying FROM loyalty.balance(:alice, '2024-01-03 12:00+00');

-- The statement, in business-time order; none of the failed calls wrote anything.
SELECT at, kind, points, idempotency_key, detail ->> 'reason' AS reason
  FROM loyalty.statement(:alice);
SELECT at, kind, points, idempotency_key FROM loyalty.statement(:bob);
SELECT at, kind, points FROM loyalty.statement(:alice, '2024-01-05 00:00+00', '2024-01-07 00:00+00');
SELECT count(*) AS violations FROM loyalty.check_invariants();
