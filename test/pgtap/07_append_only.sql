-- 07_append_only: the ledger tables entry, lot_draw and tier_change refuse
-- UPDATE, DELETE and TRUNCATE (LY060), for every role including superusers.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL client_min_messages = warning;
SELECT plan(16);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap07%' AND m.external_ref = ref $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tap07', 'Append only');
    PERFORM loyalty.add_tier('tap07', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap07', 'a', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('a'), 100, 'start', 'a1', '2026-01-10 00:00:00+00');
    PERFORM loyalty.redeem(pg_temp.m('a'), 30, 'r1', '2026-01-11 00:00:00+00');
END$$;

-- Rows exist in each table, so that the row triggers fire.
SELECT is(ROW((SELECT count(*) FROM loyalty.entry WHERE member_id = pg_temp.m('a')),
                  (SELECT count(*) FROM loyalty.lot_draw WHERE member_id = pg_temp.m('a')),
                  (SELECT count(*) > 0 FROM loyalty.tier_change WHERE member_id = pg_temp.m('a')))::text,
          '(2,1,t)', 'entry, lot_draw and tier_change hold rows for the member');

SELECT throws_ok($$UPDATE loyalty.entry SET points = points + 1 WHERE member_id = pg_temp.m('a')$$,
                 'LY060', NULL, 'UPDATE entry -> LY060');
SELECT throws_ok($$DELETE FROM loyalty.entry WHERE member_id = pg_temp.m('a') AND kind = 'redeem'$$,
                 'LY060', NULL, 'DELETE entry -> LY060');
-- entry is referenced by lot and lot_draw, so only TRUNCATE ... CASCADE gets as far as the trigger.
SELECT throws_ok($$TRUNCATE loyalty.entry CASCADE$$,
                 'LY060', NULL, 'TRUNCATE entry -> LY060');

SELECT throws_ok($$UPDATE loyalty.lot_draw SET points = points + 1 WHERE member_id = pg_temp.m('a')$$,
                 'LY060', NULL, 'UPDATE lot_draw -> LY060');
SELECT throws_ok($$DELETE FROM loyalty.lot_draw WHERE member_id = pg_temp.m('a')$$,
                 'LY060', NULL, 'DELETE lot_draw -> LY060');
SELECT throws_ok($$TRUNCATE loyalty.lot_draw$$,
                 'LY060', NULL, 'TRUNCATE lot_draw -> LY060');

SELECT throws_ok($$UPDATE loyalty.tier_change SET reason = 'edited' WHERE member_id = pg_temp.m('a')$$,
                 'LY060', NULL, 'UPDATE tier_change -> LY060');
SELECT throws_ok($$DELETE FROM loyalty.tier_change WHERE member_id = pg_temp.m('a')$$,
                 'LY060', NULL, 'DELETE tier_change -> LY060');
SELECT throws_ok($$TRUNCATE loyalty.tier_change$$,
                 'LY060', NULL, 'TRUNCATE tier_change -> LY060');

-- No foreign key leads from the ledger to member (30_ledger.sql): cascading from
-- member leaves the ledger as it is, and check_invariants() reports the orphans.
SAVEPOINT no_members;
TRUNCATE loyalty.member CASCADE;
SELECT is((SELECT array_agg(DISTINCT invariant ORDER BY invariant) FROM loyalty.check_invariants()),
          '{"every entry belongs to a member","every tier change belongs to a member"}',
          'TRUNCATE member CASCADE leaves the ledger; check_invariants() reports its rows');
ROLLBACK TO SAVEPOINT no_members;
SELECT throws_ok($$UPDATE loyalty.entry SET reason = 'x' WHERE member_id = pg_temp.m('a') AND kind = 'award'$$,
                 'LY060', NULL, 'UPDATE of a single column of one entry -> LY060');

SELECT is((SELECT string_agg(kind || ':' || points, ',' ORDER BY id) FROM loyalty.entry WHERE member_id = pg_temp.m('a')),
          'award:100,redeem:-30', 'entries unchanged');
SELECT is((SELECT sum(points)::bigint FROM loyalty.lot_draw WHERE member_id = pg_temp.m('a')),
          30::bigint, 'lot_draw unchanged');
SELECT is((SELECT (available, pending, lifetime_earned, redeemed, expired)::text
             FROM loyalty.balance(pg_temp.m('a'), '2026-02-01 00:00:00+00')),
          '(70,0,100,30,0)', 'balance unchanged');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
