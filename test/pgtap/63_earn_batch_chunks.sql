-- 63_earn_batch_chunks: earn_batch over more rows than one chunk (it reads 4000 rows at a
-- time, locks and reads each chunk's members ahead in three statements, and writes its
-- entries and lots straight into the tables) gives what earn gives row by row: twin
-- programs, one fed by earn_batch, the other by earn per row, compared row for row.
-- Members run across chunk boundaries; some replay a purchase made before the batch as
-- their first row, some repeat a key inside the batch, some already have window state,
-- some are promoted mid-batch, some have lots expire before a later row. A key reused
-- with other arguments in the last chunk fails the batch with its row number, nothing
-- written. With insert triggers on the ledger tables the batch takes the INSERT path
-- and the triggers see every row.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(16);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.ref(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT external_ref FROM loyalty.member WHERE id = mid $$;
CREATE FUNCTION pg_temp.nentries(prog text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog $$;
CREATE FUNCTION pg_temp.batch_error(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; ctx text;
BEGIN
    PERFORM count(*) FROM loyalty.earn_batch(rel);
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, ctx = PG_EXCEPTION_CONTEXT;
    RETURN st || ' ' || substring(ctx FROM 'earn_batch row [^\n]*');
END $$;

-- 900 members in each program; every fifth earned 40 (key pre<i>) on 2025-06-01 before
-- the batch: it has window state and a key the batch replays as its first row.
DO $$
DECLARE prog text; i int;
BEGIN
    FOREACH prog IN ARRAY ARRAY['tap63a', 'tap63b'] LOOP
        PERFORM loyalty.create_program(prog, 'Chunks', '{"expiry": {"policy": "rolling", "months": 12}, "timezone": "UTC"}');
        PERFORM loyalty.add_tier(prog, 'base', 'Base', 0);
        PERFORM loyalty.add_tier(prog, 'gold', 'Gold', 400, 2);
        FOR i IN 1..900 LOOP
            PERFORM loyalty.enroll(prog, 'm' || lpad(i::text, 3, '0'), '2025-01-01');
        END LOOP;
        FOR i IN 5..900 BY 5 LOOP
            PERFORM loyalty.earn(pg_temp.m(prog, 'm' || lpad(i::text, 3, '0')), 40, 'pre' || i, '2025-06-01');
        END LOOP;
    END LOOP;
END $$;

-- Member i buys 1 + i % 17 times from 2025-07-01 on (8108 rows: three chunks); every
-- eleventh buys in 2026-08 (its 2025-06 lot expired on 2026-06-01); every seventh
-- sends its first purchase twice; every fifth resends pre<i>.
CREATE TABLE pg_temp.rows (ref text, amount numeric, idempotency_key text, at timestamptz);
INSERT INTO pg_temp.rows
SELECT 'm' || lpad(i::text, 3, '0'), 10 + (i * 7 + j * 3) % 50, 'b' || i || '-' || j,
       CASE WHEN i % 11 = 0 THEN timestamptz '2026-08-01' ELSE timestamptz '2025-07-01' END
         + (j * 5 + i % 3) * interval '1 day'
  FROM generate_series(1, 900) i, generate_series(1, 1 + i % 17) j;
INSERT INTO pg_temp.rows
SELECT ref, amount, idempotency_key, at FROM pg_temp.rows
 WHERE substr(ref, 2)::int % 7 = 0 AND idempotency_key LIKE '%-1';
INSERT INTO pg_temp.rows SELECT 'm' || lpad(i::text, 3, '0'), 40, 'pre' || i, '2025-06-01'
  FROM generate_series(5, 900, 5) i;
CREATE TABLE pg_temp.batch_a AS
SELECT pg_temp.m('tap63a', ref) AS member, amount, idempotency_key, at FROM pg_temp.rows;

CREATE TABLE pg_temp.out_a AS SELECT * FROM loyalty.earn_batch('pg_temp.batch_a');

CREATE TABLE pg_temp.out_b (n bigint, idempotency_key text, r loyalty.receipt);
DO $$
DECLARE x record; i bigint := 0;
BEGIN
    FOR x IN SELECT pg_temp.m('tap63b', ref) AS member, amount, idempotency_key, at
               FROM pg_temp.rows ORDER BY 1, at, idempotency_key LOOP
        i := i + 1;
        INSERT INTO pg_temp.out_b VALUES (i, x.idempotency_key,
            loyalty.earn(x.member, x.amount, x.idempotency_key, x.at));
    END LOOP;
END $$;

SELECT is((SELECT count(*) FROM pg_temp.out_a), 8416::bigint,
          '8108 purchases, 128 repeated within the batch, 180 replays of earlier ones: one receipt each');
SELECT is((SELECT count(*) FILTER (WHERE replayed) FROM pg_temp.out_a), 308::bigint,
          '128 + 180 receipts are replays');
SELECT results_eq(
    $$SELECT n, idempotency_key, pg_temp.ref(member_id), points, available, pending, tier, replayed
        FROM pg_temp.out_a ORDER BY n$$,
    $$SELECT n, idempotency_key, pg_temp.ref((r).member_id), (r).points, (r).available, (r).pending,
             (r).tier, (r).replayed FROM pg_temp.out_b ORDER BY n$$,
    'receipts equal earn row by row across chunks');
CREATE FUNCTION pg_temp.entries(prog text) RETURNS TABLE (ref text, kind text, points bigint, at timestamptz,
    key text, request jsonb, amount numeric, qualifying numeric, qualifying_at timestamptz, detail jsonb,
    available_after bigint, pending_after bigint, tier_after text)
LANGUAGE sql AS $$
    SELECT m.external_ref, e.kind::text, e.points, e.at, e.idempotency_key, e.request, e.amount, e.qualifying,
           e.qualifying_at, e.detail - 'lots', e.available_after, e.pending_after, e.tier_after
      FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog
     ORDER BY m.external_ref, e.id $$;
SELECT results_eq($$SELECT * FROM pg_temp.entries('tap63a')$$, $$SELECT * FROM pg_temp.entries('tap63b')$$,
                  'ledger entries equal earn row by row');
SELECT ok((SELECT count(*) FROM pg_temp.entries('tap63a') WHERE kind = 'expire') > 0,
          'some members'' 2025-06 lots expired before their 2026-08 rows');
CREATE FUNCTION pg_temp.lots(prog text) RETURNS TABLE (ref text, points bigint, remaining bigint,
    at timestamptz, available_at timestamptz, expires_at timestamptz, source_lot bigint, state "char")
LANGUAGE sql AS $$
    SELECT m.external_ref, l.points, l.remaining, l.at, l.available_at, l.expires_at, l.source_lot, l.state
      FROM loyalty.lot l JOIN loyalty.member m ON m.id = l.member_id
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = prog
     ORDER BY m.external_ref, l.id $$;
SELECT results_eq($$SELECT * FROM pg_temp.lots('tap63a')$$, $$SELECT * FROM pg_temp.lots('tap63b')$$,
                  'lots equal earn row by row');
CREATE FUNCTION pg_temp.members(prog text) RETURNS TABLE (ref text, available bigint, pending bigint,
    lifetime_earned bigint, expired bigint, qualifying numeric, lifetime_spend numeric, lifetime_visits bigint,
    tier text, last_activity_at timestamptz, last_entry_at timestamptz, next_transition_at timestamptz,
    q_start timestamptz, q_oldest timestamptz, q_asof timestamptz, tier_review_at timestamptz)
LANGUAGE sql AS $$
    SELECT m.external_ref, m.available, m.pending, m.lifetime_earned, m.expired, m.qualifying, m.lifetime_spend,
           m.lifetime_visits, t.code, m.last_activity_at, m.last_entry_at, m.next_transition_at,
           m.q_start, m.q_oldest, m.q_asof, m.tier_review_at
      FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
      JOIN loyalty.tier t ON t.id = m.tier_id WHERE p.code = prog ORDER BY m.external_ref $$;
SELECT results_eq($$SELECT * FROM pg_temp.members('tap63a')$$, $$SELECT * FROM pg_temp.members('tap63b')$$,
                  'member rows (balances, window state, tier) equal earn row by row');
-- by hand: m017 has no earlier purchase and buys 1 + 17 % 17 = 1 time: 10 + (119 + 3) % 50 = 32
SELECT results_eq($$SELECT available, qualifying, tier FROM pg_temp.members('tap63a') WHERE ref = 'm017'$$,
                  $$VALUES (32::bigint, 32::numeric, 'base'::text)$$, 'm017 by hand: one purchase of 32');
SELECT results_eq(
    $$SELECT pg_temp.ref(member_id), from_tier, to_tier, at FROM loyalty.tier_change
       WHERE member_id IN (SELECT id FROM loyalty.member WHERE program_id =
             (SELECT id FROM loyalty.program WHERE code = 'tap63a')) AND from_tier IS NOT NULL ORDER BY 1, id$$,
    $$SELECT pg_temp.ref(member_id), from_tier, to_tier, at FROM loyalty.tier_change
       WHERE member_id IN (SELECT id FROM loyalty.member WHERE program_id =
             (SELECT id FROM loyalty.program WHERE code = 'tap63b')) AND from_tier IS NOT NULL ORDER BY 1, id$$,
    'tier changes equal earn row by row');
SELECT ok((SELECT count(*) FROM pg_temp.members('tap63a') WHERE tier = 'gold') > 0, 'some members reached gold mid-batch');
SELECT ok((SELECT bool_and(e.recorded_at BETWEEN now() AND clock_timestamp())
             FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
             JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = 'tap63a'),
          'entries written straight into the table still get recorded_at (its default)');

-- A key of the batch reused with another amount, in the last chunk: the whole batch
-- fails with that row's number; nothing is written.
CREATE TABLE pg_temp.bad AS
SELECT member, amount, 'again-' || idempotency_key AS idempotency_key, at FROM pg_temp.batch_a;
INSERT INTO pg_temp.bad SELECT pg_temp.m('tap63a', 'm899'), 999, 'b899-1', '2025-07-08';
SELECT is(pg_temp.batch_error('pg_temp.bad'),
          (SELECT format('LY020 earn_batch row %s (member %s, idempotency_key b899-1)', n, member)
             FROM (SELECT row_number() OVER (ORDER BY member, at, idempotency_key) AS n, member, idempotency_key
                     FROM pg_temp.bad) r WHERE idempotency_key = 'b899-1'),
          'a key reused with another amount in the third chunk: LY020 with its row number');
SELECT is(pg_temp.nentries('tap63a'), pg_temp.nentries('tap63b'), 'the failed batch wrote nothing');

-- Insert triggers on the ledger tables: the batch writes through INSERT, the triggers
-- fire once per entry and per lot, and the result is still earn's.
CREATE TABLE pg_temp.fired (tbl text, kind text);
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO pg_temp.fired VALUES (TG_TABLE_NAME, to_jsonb(NEW) ->> 'kind'); RETURN NULL; END $$;
CREATE TRIGGER tap63_entry AFTER INSERT ON loyalty.entry FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
CREATE TRIGGER tap63_lot AFTER INSERT ON loyalty.lot FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
CREATE TABLE pg_temp.trows (ref text, amount numeric, idempotency_key text, at timestamptz);
INSERT INTO pg_temp.trows VALUES ('m001', 20, 't1', '2026-09-01'), ('m002', 30, 't2', '2026-09-01'),
                                 ('m002', 30, 't3', '2026-09-02');
CREATE TABLE pg_temp.tbatch AS SELECT pg_temp.m('tap63a', ref) AS member, amount, idempotency_key, at FROM pg_temp.trows;
SELECT is((SELECT count(*) FROM loyalty.earn_batch('pg_temp.tbatch')), 3::bigint, 'trigger batch: 3 receipts');
-- m001's two lots of July 2025 and m002's three expired in July 2026: one expire entry
-- per expiry date before their September purchases
SELECT results_eq($$SELECT tbl, kind, count(*) FROM pg_temp.fired GROUP BY 1, 2 ORDER BY 1, 2$$,
                  $$VALUES ('entry'::text, 'earn'::text, 3::bigint), ('entry', 'expire', 5), ('lot', NULL, 3)$$,
                  'the insert triggers fired for each entry (3 earns, 5 expiries) and each of the 3 lots');
DROP TRIGGER tap63_entry ON loyalty.entry;
DROP TRIGGER tap63_lot ON loyalty.lot;
DO $$
DECLARE x record;
BEGIN
    FOR x IN SELECT pg_temp.m('tap63b', ref) AS member, amount, idempotency_key, at FROM pg_temp.trows
              ORDER BY 1, at, idempotency_key LOOP
        PERFORM loyalty.earn(x.member, x.amount, x.idempotency_key, x.at);
    END LOOP;
END $$;
SELECT results_eq($$SELECT * FROM pg_temp.entries('tap63a')$$, $$SELECT * FROM pg_temp.entries('tap63b')$$,
                  'through INSERT too: entries equal earn row by row');

SELECT * FROM finish();
ROLLBACK;
