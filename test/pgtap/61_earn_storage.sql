-- 61_earn_storage: what an earn stores since 1.1 (issue 8). The request keeps
-- only the attrs ({} without them: the amount is in entry.amount), yet replays
-- still tell the same arguments from different ones (LY020, with the original
-- request in full in the detail), including for an earn written by 1.0 with the
-- full request. Entry, lot and member row are written by one statement: all
-- three agree with the receipt. An earn's detail keeps only what its entry and
-- the defaults do not say ("tier" when not tier_after, "multiplier" and
-- "points_per_unit" when not 1), and no request or detail is NULL, not {};
-- statement() shows all of it, as 1.0 stored it.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(31);

DO $$
BEGIN
    PERFORM loyalty.create_program('tap61', 'Storage', '{"expiry": {"policy": "rolling", "months": 12}, "timezone": "UTC"}');
    PERFORM loyalty.add_tier('tap61', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap61', 'gold', 'Gold', 100, 2);
END $$;
SELECT loyalty.enroll('tap61', 's1', '2026-01-01') AS m \gset

-- error detail of a statement, or 'no error'
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; d text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || d;
END $$;

-- 12.50 at 1 point per unit: 12 points (rounding down), base tier
SELECT is((loyalty.earn(:m, 12.50, 'k1', '2026-02-01 10:00+00')).points, 12::bigint, 'earn: 12 points');
SELECT is((SELECT request FROM loyalty.entry WHERE member_id = :m AND idempotency_key = 'k1'), NULL::jsonb,
          'no attrs: no request is stored (NULL)');
SELECT is((SELECT amount FROM loyalty.entry WHERE member_id = :m AND idempotency_key = 'k1'), 12.50,
          'the amount is in its column, scale kept');
SELECT is((SELECT detail FROM loyalty.entry WHERE member_id = :m AND idempotency_key = 'k1'), NULL::jsonb,
          'a plain earn stores no detail (NULL): its tier is tier_after, multiplier and points_per_unit 1');
SELECT is((SELECT s.detail - 'lots' FROM loyalty.statement(:m) s WHERE s.idempotency_key = 'k1'),
          '{"tier": "base", "multiplier": 1, "points_per_unit": 1, "amount": 12.50}'::jsonb,
          'statement() shows the plain earn''s detail in full');
SELECT is((SELECT row(r.entry_id, r.points, r.available, r.replayed)::text
             FROM loyalty.earn(:m, 12.5, 'k1', '2026-02-01 10:00+00') r),
          (SELECT row(e.id, 12, 12, true)::text FROM loyalty.entry e WHERE e.member_id = :m AND e.idempotency_key = 'k1'),
          'a replay with an equal amount (12.5 = 12.50) returns the original receipt');
SELECT is(pg_temp.err(format($$SELECT loyalty.earn(%s, 13, 'k1', '2026-02-01 10:00+00')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {}, "amount": 12.50}; this call is earn with {"attrs": {}, "amount": 13}.',
          'another amount: LY020, the original request shown in full');
SELECT is(pg_temp.err(format($$SELECT loyalty.earn(%s, 12.50, 'k1', '2026-02-01 10:00+00', '{"category": "food"}')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {}, "amount": 12.50}; this call is earn with {"attrs": {"category": "food"}, "amount": 12.50}.',
          'the same amount with attrs: LY020');
SELECT is(pg_temp.err(format($$SELECT loyalty.award(%s, 12, 'bonus', 'k1', '2026-02-01 10:00+00')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {}, "amount": 12.50}; this call is award with {"points": 12, "reason": "bonus"}.',
          'another operation on an earn''s key: LY020');

-- with attrs
SELECT is((loyalty.earn(:m, 20, 'k2', '2026-02-02 10:00+00', '{"category": "food", "store": 7}')).points, 20::bigint,
          'earn with attrs: 20 points');
SELECT is((SELECT request FROM loyalty.entry WHERE member_id = :m AND idempotency_key = 'k2'),
          '{"attrs": {"category": "food", "store": 7}}'::jsonb, 'attrs are stored, the amount is not');
SELECT is((loyalty.earn(:m, 20.0, 'k2', '2026-02-02 10:00+00', '{"store": 7, "category": "food"}')).replayed, true,
          'the same attrs in another order and an equal amount: a replay');
SELECT is(pg_temp.err(format($$SELECT loyalty.earn(%s, 20, 'k2', '2026-02-02 10:00+00', '{"category": "toys", "store": 7}')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {"store": 7, "category": "food"}, "amount": 20}; this call is earn with {"attrs": {"store": 7, "category": "toys"}, "amount": 20}.',
          'other attrs: LY020');
SELECT is(pg_temp.err(format($$SELECT loyalty.earn(%s, 20, 'k2', '2026-02-02 10:00+00')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {"store": 7, "category": "food"}, "amount": 20}; this call is earn with {"attrs": {}, "amount": 20}.',
          'no attrs where there were some: LY020');

-- an earn written by 1.0 keeps its full request: replays compare it as before
INSERT INTO loyalty.entry (member_id, kind, points, at, idempotency_key, request, amount, qualifying, qualifying_at,
                           available_after, pending_after, tier_after)
VALUES (:m, 'earn', 0, '2026-01-15 10:00+00', 'old', '{"amount": 0.5, "attrs": {"category": "food"}}', 0.5, 0,
        '2026-01-15 10:00+00', 0, 0, 'base');
SELECT is((loyalty.earn(:m, 0.50, 'old', '2026-01-15 10:00+00', '{"category": "food"}')).replayed, true,
          'a 1.0 earn (full request) replays');
SELECT is(pg_temp.err(format($$SELECT loyalty.earn(%s, 0.5, 'old', '2026-01-15 10:00+00')$$, :m)),
          'LY020: The key was first used by earn with {"attrs": {"category": "food"}, "amount": 0.5}; this call is earn with {"attrs": {}, "amount": 0.5}.',
          'a 1.0 earn with other arguments: LY020');

-- entry, lot and member row, written by one statement, agree with the receipt
SELECT loyalty.earn(:m, 80, 'k3', '2026-03-01 10:00+00') AS r \gset
SELECT is((SELECT row(e.kind, e.points, e.available_after, e.pending_after, e.tier_after, e.detail)::text
             FROM loyalty.entry e WHERE e.member_id = :m AND e.idempotency_key = 'k3'),
          row('earn', 80, 112, 0, 'gold', '{"tier": "base", "promoted_to": "gold"}'::jsonb)::text,
          'the entry: 80 points, receipt 112 available, promoted to gold by its 112 qualifying; the tier held before kept');
SELECT is((SELECT s.detail - 'lots' FROM loyalty.statement(:m) s WHERE s.idempotency_key = 'k3'),
          '{"tier": "base", "multiplier": 1, "promoted_to": "gold", "points_per_unit": 1, "amount": 80}'::jsonb,
          'statement(): the promoting earn in full');
SELECT is((SELECT row(l.points, l.remaining, l.state, l.available_at, l.expires_at)::text
             FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = :m AND e.idempotency_key = 'k3'),
          row(80, 80, 'a', '2026-03-01 10:00+00'::timestamptz, '2027-03-01 10:00+00'::timestamptz)::text,
          'its lot: 80 available, expires in 12 months');
SELECT is((SELECT row(available, pending, lifetime_earned, lifetime_visits, last_entry_at, last_activity_at)::text
             FROM loyalty.member WHERE id = :m),
          row(112, 0, 112, 3, '2026-03-01 10:00+00'::timestamptz, '2026-03-01 10:00+00'::timestamptz)::text,
          'the member row: balance, lifetime figures, last entry');
SELECT is((SELECT t.code FROM loyalty.member mm JOIN loyalty.tier t ON t.id = mm.tier_id WHERE mm.id = :m), 'gold',
          'the member holds gold');
-- an award goes through the same statement
SELECT is((SELECT row(r.points, r.available, r.tier)::text FROM loyalty.award(:m, 8, 'goodwill', 'k4', '2026-03-02 10:00+00') r),
          row(8, 120, 'gold')::text, 'award: 8 more, 120 available');
SELECT is((SELECT count(*) FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = :m AND e.idempotency_key = 'k4' AND l.points = 8), 1::bigint, 'award: its lot of 8');
SELECT is((SELECT available FROM loyalty.member WHERE id = :m), 120::bigint, 'award: the member row');

-- at gold (x2) in a program of 2.5 points per unit: both stored, the tier is tier_after
SELECT is((loyalty.earn(:m, 10, 'k5', '2026-03-03 10:00+00')).points, 20::bigint, 'earn at gold: 10 x 2 = 20 points');
SELECT is((SELECT detail FROM loyalty.entry WHERE member_id = :m AND idempotency_key = 'k5'),
          '{"multiplier": 2}'::jsonb, 'a multiplier other than 1 is stored');
SELECT is((SELECT s.detail - 'lots' FROM loyalty.statement(:m) s WHERE s.idempotency_key = 'k5'),
          '{"tier": "gold", "multiplier": 2, "points_per_unit": 1, "amount": 10}'::jsonb,
          'statement(): the gold earn in full');
DO $$
BEGIN
    PERFORM loyalty.create_program('tap61b', 'Rate', '{"points_per_unit": 2.50, "timezone": "UTC"}');
    PERFORM loyalty.add_tier('tap61b', 'base', 'Base', 0, 1.0);
END $$;
SELECT loyalty.enroll('tap61b', 's2', '2026-01-01') AS m2 \gset
SELECT is((loyalty.earn(:m2, 4, 'r1', '2026-02-01 10:00+00')).points, 10::bigint, '4 at 2.50 per unit: 10 points');
SELECT is((SELECT detail FROM loyalty.entry WHERE member_id = :m2 AND idempotency_key = 'r1'),
          '{"multiplier": 1.0, "points_per_unit": 2.50}'::jsonb,
          'values that are not written 1 are stored as they are (1.0 is not 1)');
-- an earn written by 1.0 (its detail in full) reads the same through statement()
INSERT INTO loyalty.entry (member_id, kind, points, at, idempotency_key, amount, qualifying, qualifying_at,
                           detail, available_after, pending_after, tier_after)
VALUES (:m2, 'earn', 0, '2026-01-20 10:00+00', 'v10', 0.25, 0, '2026-01-20 10:00+00',
        '{"tier": "base", "multiplier": 1.0, "points_per_unit": 2.50}', 0, 0, 'base');
SELECT is((SELECT s.detail FROM loyalty.statement(:m2) s WHERE s.idempotency_key = 'v10'),
          '{"tier": "base", "multiplier": 1.0, "points_per_unit": 2.50, "amount": 0.25}'::jsonb,
          'statement(): a 1.0 earn''s detail as it was stored');

SELECT is((SELECT count(*) FROM loyalty.check_invariants()), 0::bigint, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
