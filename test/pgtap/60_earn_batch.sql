-- 60_earn_batch: earn_batch gives the receipts and ledger rows that earn gives
-- row by row in the batch's order (member, at, idempotency_key): two identical
-- programs, one fed by earn_batch, the other by earn per row, compared row for
-- row; replays (of an earlier earn and within the batch), promotion, a sweep that
-- expires lots mid-batch, mixed members; a bad row fails the whole batch with its
-- row number and writes nothing.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(40);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;
-- member id -> its external_ref, so two programs' rows compare
CREATE FUNCTION pg_temp.ref(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT external_ref FROM loyalty.member WHERE id = mid $$;
CREATE FUNCTION pg_temp.nentries(prog text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog $$;
-- SQLSTATE and context of a failing batch
CREATE FUNCTION pg_temp.batch_error(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; ctx text;
BEGIN
    PERFORM count(*) FROM loyalty.earn_batch(rel);
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, ctx = PG_EXCEPTION_CONTEXT;
    RETURN st || ' ' || substring(ctx FROM 'earn_batch row [^\n]*');
END $$;

-- Two identical programs: A is fed by earn_batch, B by earn row by row.
DO $$
DECLARE prog text;
BEGIN
    FOREACH prog IN ARRAY ARRAY['tap60a', 'tap60b'] LOOP
        PERFORM loyalty.create_program(prog, 'Batch', '{"expiry": {"policy": "rolling", "months": 12}, "timezone": "UTC"}');
        PERFORM loyalty.add_tier(prog, 'base', 'Base', 0);
        PERFORM loyalty.add_tier(prog, 'gold', 'Gold', 100, 2);
        PERFORM loyalty.enroll(prog, 'x1', '2025-01-01');
        PERFORM loyalty.enroll(prog, 'x2', '2025-01-01');
        PERFORM loyalty.enroll(prog, 'x3', '2025-01-01');
        -- an earlier purchase the batch replays
        PERFORM loyalty.earn(pg_temp.m(prog, 'x1'), 30, 'k0', '2025-12-01');
    END LOOP;
END $$;

-- The batch, in no particular order. x1: 30 (k0, before) then 60 (k1) -> 90; 60 (k2)
-- -> 150: gold; 10 (k3) in 2027: the three lots have expired by then (150 points, one
-- expire entry per expiry date) and the review of 2026 dropped x1 back to base (default
-- window and downgrade), so 10 points. k0 and k1 appear twice: replays.
CREATE TABLE pg_temp.rows (ord int, ref text, amount numeric, idempotency_key text, at timestamptz, attrs jsonb);
INSERT INTO pg_temp.rows VALUES
    (1, 'x3', 200, 'z', '2026-02-01', '{"store": "s1"}'),
    (2, 'x1', 10, 'k3', '2027-02-01', NULL),
    (3, 'x1', 60, 'k1', '2026-01-01', '{}'),
    (4, 'x2', 12.5, 'k1', '2026-03-01', '{}'),
    (5, 'x1', 30, 'k0', '2025-12-01', '{}'),
    (6, 'x1', 60, 'k2', '2026-01-05', '{}'),
    (7, 'x1', 60, 'k1', '2026-01-01', '{}');
CREATE TABLE pg_temp.batch_a AS
SELECT pg_temp.m('tap60a', ref) AS member, amount, idempotency_key, at, attrs FROM pg_temp.rows;

CREATE TABLE pg_temp.out_a AS SELECT * FROM loyalty.earn_batch('pg_temp.batch_a');

-- B: earn per row, in the batch's documented order
CREATE TABLE pg_temp.out_b (n bigint, idempotency_key text, r loyalty.receipt);
DO $$
DECLARE x record; i bigint := 0;
BEGIN
    FOR x IN SELECT pg_temp.m('tap60b', ref) AS member, amount, idempotency_key, at, attrs
               FROM pg_temp.rows ORDER BY 1, at, idempotency_key LOOP
        i := i + 1;
        INSERT INTO pg_temp.out_b VALUES (i, x.idempotency_key,
            loyalty.earn(x.member, x.amount, x.idempotency_key, x.at, x.attrs));
    END LOOP;
END $$;

-- Receipts, by hand first.
SELECT is((SELECT count(*) FROM pg_temp.out_a), 7::bigint, 'one receipt per row');
SELECT results_eq(
    $$SELECT n, idempotency_key, pg_temp.ref(member_id), points, available, pending, tier, replayed
        FROM pg_temp.out_a ORDER BY n$$,
    $$VALUES (1::bigint, 'k0'::text, 'x1'::text, 30::bigint, 30::bigint, 0::bigint, 'base'::text, true),
             (2, 'k1', 'x1', 60, 90, 0, 'base', false),
             (3, 'k1', 'x1', 60, 90, 0, 'base', true),
             (4, 'k2', 'x1', 60, 150, 0, 'gold', false),
             (5, 'k3', 'x1', 10, 10, 0, 'base', false),
             (6, 'k1', 'x2', 12, 12, 0, 'base', false),
             (7, 'z', 'x3', 200, 200, 0, 'gold', false)$$,
    'receipts in member, at, key order: replays, promotion, expiry before k3, mixed members');
SELECT is((SELECT entry_id FROM pg_temp.out_a WHERE n = 1),
          (SELECT id FROM loyalty.entry WHERE member_id = pg_temp.m('tap60a', 'x1') AND idempotency_key = 'k0'),
          'a replay of an earlier earn returns its entry');
SELECT is((SELECT entry_id FROM pg_temp.out_a WHERE n = 3), (SELECT entry_id FROM pg_temp.out_a WHERE n = 2),
          'a replay within the batch returns the entry the batch wrote');

-- The same as earn row by row: receipts, entries, lots, draws, members, tier changes.
SELECT results_eq(
    $$SELECT n, idempotency_key, pg_temp.ref(member_id), points, available, pending, tier, replayed
        FROM pg_temp.out_a ORDER BY n$$,
    $$SELECT n, idempotency_key, pg_temp.ref((r).member_id), (r).points, (r).available, (r).pending,
             (r).tier, (r).replayed FROM pg_temp.out_b ORDER BY n$$,
    'receipts equal earn row by row');
CREATE FUNCTION pg_temp.entries(prog text) RETURNS TABLE (ref text, kind text, points bigint, at timestamptz,
    key text, request jsonb, amount numeric, qualifying numeric, qualifying_at timestamptz, detail jsonb,
    available_after bigint, pending_after bigint, tier_after text)
LANGUAGE sql AS $$
    SELECT m.external_ref, e.kind::text, e.points, e.at, e.idempotency_key, e.request, e.amount, e.qualifying,
           e.qualifying_at, e.detail - 'lots', e.available_after, e.pending_after, e.tier_after
      FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog
     ORDER BY m.external_ref, e.id $$;
SELECT results_eq($$SELECT * FROM pg_temp.entries('tap60a')$$, $$SELECT * FROM pg_temp.entries('tap60b')$$,
                  'ledger entries equal earn row by row (kinds, points, requests, details, receipts)');
SELECT is((SELECT count(*) FROM pg_temp.entries('tap60a') WHERE kind = 'expire'), 3::bigint,
          'the batch expired x1''s three lots before its 2027 purchase');
CREATE FUNCTION pg_temp.lots(prog text) RETURNS TABLE (ref text, points bigint, remaining bigint,
    available_at timestamptz, expires_at timestamptz, state "char")
LANGUAGE sql AS $$
    SELECT m.external_ref, l.points, l.remaining, l.available_at, l.expires_at, l.state
      FROM loyalty.lot l JOIN loyalty.member m ON m.id = l.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog
     ORDER BY m.external_ref, l.id $$;
SELECT results_eq($$SELECT * FROM pg_temp.lots('tap60a')$$, $$SELECT * FROM pg_temp.lots('tap60b')$$,
                  'lots equal earn row by row');
SELECT results_eq(
    $$SELECT pg_temp.ref(d.member_id), d.points, d.at FROM loyalty.lot_draw d
       WHERE pg_temp.ref(d.member_id) IS NOT NULL AND d.member_id IN (SELECT id FROM loyalty.member
             WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'tap60a')) ORDER BY 1, d.lot_id$$,
    $$SELECT pg_temp.ref(d.member_id), d.points, d.at FROM loyalty.lot_draw d
       WHERE d.member_id IN (SELECT id FROM loyalty.member
             WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'tap60b')) ORDER BY 1, d.lot_id$$,
    'expiry draws equal earn row by row');
CREATE FUNCTION pg_temp.members(prog text) RETURNS TABLE (ref text, available bigint, pending bigint,
    lifetime_earned bigint, expired bigint, qualifying numeric, lifetime_spend numeric, lifetime_visits bigint,
    tier text, last_activity_at timestamptz, next_transition_at timestamptz)
LANGUAGE sql AS $$
    SELECT m.external_ref, m.available, m.pending, m.lifetime_earned, m.expired, m.qualifying, m.lifetime_spend,
           m.lifetime_visits, t.code, m.last_activity_at, m.next_transition_at
      FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
      JOIN loyalty.tier t ON t.id = m.tier_id WHERE p.code = prog ORDER BY m.external_ref $$;
SELECT results_eq($$SELECT * FROM pg_temp.members('tap60a')$$, $$SELECT * FROM pg_temp.members('tap60b')$$,
                  'member balances and tier state equal earn row by row');
SELECT results_eq(
    $$SELECT ref, available, pending, lifetime_earned, expired, tier FROM pg_temp.members('tap60a')$$,
    $$VALUES ('x1'::text, 10::bigint, 0::bigint, 160::bigint, 150::bigint, 'base'::text),
             ('x2', 12, 0, 12, 0, 'base'), ('x3', 200, 0, 200, 0, 'gold')$$,
    'balances by hand: x1 earned 30 + 60 + 60 + 10, 150 expired');
SELECT results_eq(
    $$SELECT pg_temp.ref(member_id), from_tier, to_tier, at FROM loyalty.tier_change
       WHERE member_id IN (SELECT id FROM loyalty.member WHERE program_id =
             (SELECT id FROM loyalty.program WHERE code = 'tap60a')) AND from_tier IS NOT NULL ORDER BY 1, id$$,
    $$SELECT pg_temp.ref(member_id), from_tier, to_tier, at FROM loyalty.tier_change
       WHERE member_id IN (SELECT id FROM loyalty.member WHERE program_id =
             (SELECT id FROM loyalty.program WHERE code = 'tap60b')) AND from_tier IS NOT NULL ORDER BY 1, id$$,
    'tier changes equal earn row by row');

-- Replaying the whole batch: every receipt replayed, nothing written.
SELECT is((SELECT count(*) FROM loyalty.earn_batch('pg_temp.batch_a') WHERE replayed), 7::bigint,
          'the same batch again: seven replays');
SELECT is(pg_temp.nentries('tap60a'), pg_temp.nentries('tap60b'), 'a replayed batch writes no entry');
SELECT results_eq(
    $$SELECT n, entry_id, points, available, tier FROM loyalty.earn_batch('pg_temp.batch_a') ORDER BY n$$,
    $$SELECT n, entry_id, points, available, tier FROM pg_temp.out_a ORDER BY n$$,
    'a replayed batch returns the original receipts');

-- A bad row fails the whole batch, with its row number; nothing is written.
CREATE TABLE pg_temp.bad AS SELECT * FROM pg_temp.batch_a WHERE false;
INSERT INTO pg_temp.bad VALUES
    (pg_temp.m('tap60a', 'x2'), 5, 'ok1', '2026-04-01', '{}'),
    (pg_temp.m('tap60a', 'x2'), 5, 'ok2', '2026-04-02', '{}'),
    (pg_temp.m('tap60a', 'x2'), -1, 'neg', '2026-04-03', '{}'),
    (pg_temp.m('tap60a', 'x3'), 5, 'ok3', '2026-04-01', '{}');
SELECT is(pg_temp.batch_error('pg_temp.bad'),
          format('LY031 earn_batch row 3 (member %s, idempotency_key neg)', pg_temp.m('tap60a', 'x2')),
          'a negative amount: LY031 with row 3, its member and key');
SELECT is(pg_temp.nentries('tap60a'), pg_temp.nentries('tap60b'), 'the failed batch wrote nothing');
SELECT throws_ok($$SELECT * FROM loyalty.earn_batch('pg_temp.bad')$$, 'LY031', NULL,
                 'the row''s own SQLSTATE reaches the caller');

UPDATE pg_temp.bad SET amount = 5 WHERE idempotency_key = 'neg';
UPDATE pg_temp.bad SET amount = 7 WHERE idempotency_key = 'ok3';
INSERT INTO pg_temp.bad VALUES (pg_temp.m('tap60a', 'x3'), 999, 'z', '2026-02-01', '{"store": "s1"}');
SELECT is(pg_temp.batch_error('pg_temp.bad'),
          format('LY020 earn_batch row 4 (member %s, idempotency_key z)', pg_temp.m('tap60a', 'x3')),
          'a key used with other arguments: LY020 at its row (x3: z is dated first)');
DELETE FROM pg_temp.bad WHERE idempotency_key = 'z';
INSERT INTO pg_temp.bad VALUES (-5, 5, 'ghost', '2026-02-01', '{}');
SELECT is(pg_temp.batch_error('pg_temp.bad'), 'LY002 earn_batch row 1 (member -5, idempotency_key ghost)',
          'an unknown member: LY002 at its row (member order puts it first)');
UPDATE pg_temp.bad SET member = NULL WHERE idempotency_key = 'ghost';
SELECT is(pg_temp.batch_error('pg_temp.bad'), 'LY034 earn_batch row 5 (member NULL, idempotency_key ghost)',
          'a null member: LY034 at its row (nulls sort last)');
UPDATE pg_temp.bad SET member = pg_temp.m('tap60a', 'x2'), idempotency_key = NULL WHERE idempotency_key = 'ghost';
SELECT is(substr(pg_temp.batch_error('pg_temp.bad'), 1, 5), 'LY021', 'a null key: LY021');
DELETE FROM pg_temp.bad WHERE idempotency_key IS NULL;
SELECT is(pg_temp.nentries('tap60a'), pg_temp.nentries('tap60b'), 'failed batches wrote nothing');

-- The fixed batch goes through.
SELECT results_eq($$SELECT idempotency_key, points, available FROM loyalty.earn_batch('pg_temp.bad') ORDER BY n$$,
                  $$VALUES ('ok1'::text, 5::bigint, 17::bigint), ('ok2', 5, 22), ('neg', 5, 27), ('ok3', 14, 214)$$,
                  'the corrected batch: x2 from 12 in at order, then x3 (gold: 7 x 2)');

-- Input shapes.
CREATE TABLE pg_temp.minimal (member bigint, amount numeric, idempotency_key text);
INSERT INTO pg_temp.minimal VALUES (pg_temp.m('tap60a', 'x2'), 3, 'min1');
SELECT is((SELECT points FROM loyalty.earn_batch('pg_temp.minimal')), 3::bigint, 'at and attrs are optional');
SELECT is((SELECT at FROM loyalty.entry WHERE idempotency_key = 'min1'), now(), 'no at column: now()');
SELECT is((SELECT request FROM loyalty.entry WHERE idempotency_key = 'min1'), NULL::jsonb,
          'no attrs column: no request (an earn keeps its amount in amount only, and no attrs as NULL)');
CREATE TABLE pg_temp.wrong (member bigint, points bigint, idempotency_key text);
SELECT throws_ok($$SELECT * FROM loyalty.earn_batch('pg_temp.wrong')$$, 'LY170', NULL,
                 'a relation without amount: LY170');
SELECT throws_ok($$SELECT * FROM loyalty.earn_batch(NULL)$$, 'LY034', NULL, 'NULL purchases: LY034');
CREATE TABLE pg_temp.empty (member bigint, amount numeric, idempotency_key text);
SELECT is((SELECT count(*) FROM loyalty.earn_batch('pg_temp.empty')), 0::bigint, 'an empty batch: no receipts');
-- The caller must be able to read the purchases (checked for the role outside any
-- SECURITY DEFINER wrapper): a role without SELECT on the table is refused, nothing read.
CREATE ROLE tap60_nobody IN ROLE loyalty_app;   -- may call earn_batch, may not read the table
GRANT USAGE ON SCHEMA loyalty TO tap60_nobody;
CREATE TABLE public.tap60_private (member bigint, amount numeric, idempotency_key text);
INSERT INTO public.tap60_private VALUES (pg_temp.m('tap60a', 'x2'), 1, 'private1');
SET LOCAL ROLE tap60_nobody;
SELECT throws_ok($$SELECT * FROM loyalty.earn_batch('public.tap60_private')$$, '42501',
                 'permission denied for relation tap60_private', 'no SELECT on the purchases: 42501');
RESET ROLE;
SELECT is((SELECT count(*) FROM loyalty.entry WHERE idempotency_key = 'private1'), 0::bigint,
          'nothing was written for the refused batch');
-- Referrals in a batch: a referee's later row must qualify the referral as earn per
-- row does (the batch's cached member keeps referred_by). Twin programs, the same
-- terms (referrer 100, referee 50, min 20); e: 10 then 25 (the second qualifies),
-- f: 30 then 40 (the first qualifies, the second leaves it alone), g: 5 then 8 (open).
-- Stamp cards read their own rows per purchase: a card of 3 filled by one member's
-- four rows completes once in both (one stamp left over); segments' purchase_day
-- rollup sums e's two purchases of 3 February into one day.
DO $$
DECLARE prog text; rcode text;
BEGIN
    FOREACH prog IN ARRAY ARRAY['tap60ra', 'tap60rb'] LOOP
        PERFORM loyalty.create_program(prog, 'Batch referrals', '{"timezone": "UTC"}');
        PERFORM loyalty.add_tier(prog, 'base', 'Base', 0);
        PERFORM loyalty.set_referral_terms(prog, 100, 50, 20);
        PERFORM loyalty.add_stamp_card(prog, 'visits', 3, '{}', '{"points": 7}', 'Visits');
        PERFORM loyalty.add_segment(prog, 'frequent', '{"frequency": {"days": 30, "min": 2}}');
        PERFORM loyalty.enroll(prog, 'r', '2026-01-01');
        rcode := (SELECT referral_code FROM loyalty.member WHERE id = pg_temp.m(prog, 'r'));
        PERFORM loyalty.enroll(prog, 'e', '2026-01-02', rcode);
        PERFORM loyalty.enroll(prog, 'f', '2026-01-02', rcode);
        PERFORM loyalty.enroll(prog, 'g', '2026-01-02', rcode);
    END LOOP;
END $$;
CREATE TABLE pg_temp.rrows (ref text, amount numeric, idempotency_key text, at timestamptz);
INSERT INTO pg_temp.rrows VALUES
    ('e', 10, 'e1', '2026-02-01'), ('e', 25, 'e2', '2026-02-02'), ('e', 30, 'e3', '2026-02-03'),
    ('e', 4, 'e4', '2026-02-03 12:00'),
    ('f', 30, 'f1', '2026-02-01'), ('f', 40, 'f2', '2026-02-02'),
    ('g', 5, 'g1', '2026-02-01'), ('g', 8, 'g2', '2026-02-02');
CREATE TABLE pg_temp.rbatch AS
SELECT pg_temp.m('tap60ra', ref) AS member, amount, idempotency_key, at FROM pg_temp.rrows;
SELECT is((SELECT count(*) FROM loyalty.earn_batch('pg_temp.rbatch')), 8::bigint, 'referral batch: 8 receipts');
DO $$
DECLARE x record;
BEGIN
    FOR x IN SELECT pg_temp.m('tap60rb', ref) AS member, amount, idempotency_key, at FROM pg_temp.rrows
              ORDER BY 1, at, idempotency_key LOOP
        PERFORM loyalty.earn(x.member, x.amount, x.idempotency_key, x.at);
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.referrals(prog text) RETURNS TABLE (referee text, status text, purchase text,
    qualified_at timestamptz, pay_at timestamptz, min_purchase numeric, referrer_points bigint,
    referee_points bigint, cancellations int) LANGUAGE sql AS $$
    SELECT m.external_ref, r.status, e.idempotency_key, r.qualified_at, r.pay_at, r.min_purchase,
           r.referrer_points, r.referee_points, r.cancellations
      FROM loyalty.referral r JOIN loyalty.member m ON m.id = r.referee_id
      JOIN loyalty.program p ON p.id = r.program_id
      LEFT JOIN loyalty.entry e ON e.member_id = r.referee_id AND e.id = r.purchase_entry_id
     WHERE p.code = prog ORDER BY 1 $$;
SELECT results_eq($$SELECT referee, status, purchase FROM pg_temp.referrals('tap60rb')$$,
                  $$VALUES ('e'::text, 'qualified'::text, 'e2'::text), ('f', 'qualified', 'f1'), ('g', 'open', NULL)$$,
                  'earn per row: e qualifies on its second purchase, f on its first, g not');
SELECT results_eq($$SELECT * FROM pg_temp.referrals('tap60ra')$$, $$SELECT * FROM pg_temp.referrals('tap60rb')$$,
                  'earn_batch: the same referral rows as earn per row');
SELECT results_eq(
    $$SELECT m.external_ref, s.card, s.stamps, s.completed, m.available
        FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id,
             LATERAL loyalty.stamp_cards(m.id) s WHERE p.code = 'tap60ra' ORDER BY 1$$,
    $$SELECT m.external_ref, s.card, s.stamps, s.completed, m.available
        FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id,
             LATERAL loyalty.stamp_cards(m.id) s WHERE p.code = 'tap60rb' ORDER BY 1$$,
    'earn_batch: the same stamp cards and balances as earn per row');
SELECT is((SELECT format('%s/%s', s.stamps, s.completed) FROM loyalty.stamp_cards(pg_temp.m('tap60ra', 'e')) s), '1/1',
          'e''s four rows in the batch complete the card once, one stamp over');
CREATE FUNCTION pg_temp.days(prog text) RETURNS TABLE (ref text, day date, category text, purchases int, spend numeric)
    LANGUAGE sql AS $$
    SELECT m.external_ref, d.day, d.category, d.purchases, d.spend
      FROM loyalty.purchase_day d JOIN loyalty.member m ON m.id = d.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog ORDER BY 1, 2, 3 $$;
SELECT is((SELECT (purchases, spend) FROM pg_temp.days('tap60ra') WHERE ref = 'e' AND day = '2026-02-03'),
          (2, 34::numeric), 'purchase_day: e''s two batch rows of 3 February in one day, 34 spent');
SELECT results_eq($$SELECT * FROM pg_temp.days('tap60ra')$$, $$SELECT * FROM pg_temp.days('tap60rb')$$,
                  'earn_batch: the same purchase_day rollup as earn per row');

SELECT is((SELECT count(*) FROM loyalty.check_invariants()), 0::bigint, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
