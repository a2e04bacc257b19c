-- 15_tier_guard: the member's tier columns and tier_change.member_id carry no
-- foreign keys (1.1, 30_ledger.sql). A tier that a member holds in any tier
-- column cannot be deleted, renumbered, moved to another program or truncated
-- (LY043, 52_tier_guard.sql); a tier nobody holds can go; check_invariants()
-- reports what the keys used to refuse.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL client_min_messages = warning;
SELECT plan(23);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT loyalty.member_id('tap15', ref) $$;
CREATE FUNCTION pg_temp.t(prog text, tcode text) RETURNS bigint LANGUAGE sql AS $$
    SELECT t.id FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
     WHERE p.code = prog AND t.code = tcode $$;
-- the tiers of tap15, as "code,code,..."
CREATE FUNCTION pg_temp.tiers() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(t.code, ',' ORDER BY t.threshold) FROM loyalty.tier t
      JOIN loyalty.program p ON p.id = t.program_id WHERE p.code = 'tap15' $$;
-- Make the tier `spare` held by member a through column `col` (NULL: not held),
-- try to delete it, undo everything: the SQLSTATE of the attempt, or 'deleted'.
CREATE FUNCTION pg_temp.delete_held_through(col text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    outcome text;
BEGIN
    BEGIN
        IF col IS NOT NULL THEN
            EXECUTE format('UPDATE loyalty.member SET %I = $1 WHERE id = $2', col)
              USING pg_temp.t('tap15', 'spare'), pg_temp.m('a');
        END IF;
        BEGIN
            DELETE FROM loyalty.tier WHERE id = pg_temp.t('tap15', 'spare');
            outcome := 'deleted';
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE;
        END;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    RETURN outcome;
END $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tap15', 'Tier guard');
    PERFORM loyalty.add_tier('tap15', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap15', 'silver', 'Silver', 100);
    PERFORM loyalty.add_tier('tap15', 'gold', 'Gold', 500);
    PERFORM loyalty.add_tier('tap15', 'spare', 'Nobody', 5000);
    PERFORM loyalty.add_tier('tap15', 'unused', 'Nobody either', 9000);
    PERFORM loyalty.create_program('tap15_other', 'Another program');
    PERFORM loyalty.add_tier('tap15_other', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap15', 'a', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap15', 'b', '2026-01-01 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('a'), 600, 'a1', '2026-01-10 00:00:00+00');   -- gold
    PERFORM loyalty.earn(pg_temp.m('b'), 150, 'b1', '2026-01-10 00:00:00+00');   -- silver
END$$;

SELECT is((SELECT t.code FROM loyalty.member m JOIN loyalty.tier t ON t.id = m.tier_id WHERE m.id = pg_temp.m('a')),
          'gold', 'a holds gold');

-- ---- held tiers stay ----------------------------------------------------------
SELECT throws_ok($$DELETE FROM loyalty.tier WHERE id = pg_temp.t('tap15', 'gold')$$,
                 'LY043', 'tier "gold" (id ' || pg_temp.t('tap15', 'gold') || ') is held by 1 member(s)',
                 'deleting a tier a member holds -> LY043');
-- one statement over a held and an unheld tier: the error undoes the statement
SELECT throws_ok($$DELETE FROM loyalty.tier WHERE id IN (pg_temp.t('tap15', 'unused'), pg_temp.t('tap15', 'silver'))$$,
                 'LY043', NULL, 'deleting a held and an unheld tier in one statement -> LY043');
SELECT is(pg_temp.tiers(), 'base,silver,gold,spare,unused', 'the failed deletes deleted nothing');
SELECT throws_ok($$UPDATE loyalty.tier SET id = id + 1000 WHERE id = pg_temp.t('tap15', 'gold')$$,
                 'LY043', NULL, 'changing the id of a held tier -> LY043');
SELECT throws_ok($$UPDATE loyalty.tier SET program_id = (SELECT id FROM loyalty.program WHERE code = 'tap15_other')
                    WHERE id = pg_temp.t('tap15', 'silver')$$,
                 'LY043', NULL, 'moving a held tier to another program -> LY043');
SELECT throws_ok($$TRUNCATE loyalty.tier CASCADE$$, 'LY043', NULL, 'TRUNCATE tier CASCADE with members -> LY043');
SELECT lives_ok($$UPDATE loyalty.tier SET name = 'Gold!', id = id WHERE id = pg_temp.t('tap15', 'gold')$$,
                'other columns of a held tier can change (id set to itself too)');
SELECT is(pg_temp.delete_held_through(c), 'LY043', format('a tier held only through %s cannot be deleted', c))
  FROM unnest(ARRAY['tier_id', 'earned_tier_id', 'grace_tier_id', 'pinned_tier_id', 'granted_tier_id']) c;
SELECT is(pg_temp.delete_held_through(NULL), 'deleted', 'the same delete of spare, held by nobody, succeeds (and is undone)');
SELECT is(pg_temp.tiers(), 'base,silver,gold,spare,unused', 'still every tier');

-- ---- tiers nobody holds go ------------------------------------------------------
SELECT lives_ok($$DELETE FROM loyalty.tier WHERE id = pg_temp.t('tap15', 'unused')$$,
                'a tier nobody holds can be deleted');
SELECT lives_ok($$UPDATE loyalty.tier SET id = id + 1000 WHERE id = pg_temp.t('tap15', 'spare')$$,
                'a tier nobody holds can be renumbered');
SELECT is(pg_temp.tiers(), 'base,silver,gold,spare', 'only the unheld tier is gone');

-- ---- check_invariants() stands for the foreign keys -----------------------------
SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold before tampering');

SAVEPOINT tamper;
-- each tier column naming no tier, or a tier of another program
UPDATE loyalty.member
   SET tier_id = (SELECT id FROM loyalty.tier t WHERE t.code = 'base'
                     AND t.program_id = (SELECT id FROM loyalty.program WHERE code = 'tap15_other')),
       earned_tier_id = -1, grace_tier_id = -2, pinned_tier_id = -3, granted_tier_id = -4
 WHERE id = pg_temp.m('b');
SELECT results_eq(
    $$SELECT member_id, detail FROM loyalty.check_invariants()
       WHERE invariant = 'every tier column names a tier of the member''s program' ORDER BY detail$$,
    $$SELECT pg_temp.m('b'), d FROM unnest(ARRAY[
        'earned_tier_id -1 is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15'),
        'grace_tier_id -2 is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15'),
        'granted_tier_id -4 is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15'),
        'pinned_tier_id -3 is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15'),
        'tier_id ' || (SELECT id FROM loyalty.tier t WHERE t.code = 'base'
                          AND t.program_id = (SELECT id FROM loyalty.program WHERE code = 'tap15_other'))
                   || ' is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15')]) d
       ORDER BY d$$,
    'check_invariants() reports every tier column that names no tier of the member''s program');
ROLLBACK TO SAVEPOINT tamper;

-- a held tier deleted with the guard off (replica role skips ordinary triggers)
SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
DELETE FROM loyalty.tier WHERE id = pg_temp.t('tap15', 'gold');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT array_agg(member_id || ' ' || detail ORDER BY detail) FROM loyalty.check_invariants()),
          ARRAY[pg_temp.m('a') || ' earned_tier_id ' || (SELECT tier_id FROM loyalty.member WHERE id = pg_temp.m('a'))
                || ' is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15'),
                pg_temp.m('a') || ' tier_id ' || (SELECT tier_id FROM loyalty.member WHERE id = pg_temp.m('a'))
                || ' is not a tier of program ' || (SELECT id FROM loyalty.program WHERE code = 'tap15')],
          'check_invariants() reports the members of a deleted tier');
ROLLBACK TO SAVEPOINT tamper;

-- a member deleted by hand (nothing in the extension deletes members): its tier
-- changes stay, and so do its entries and lots
SELECT pg_temp.m('b') AS b \gset
SAVEPOINT tamper;
DELETE FROM loyalty.member WHERE id = :b;
SELECT results_eq(
    $$SELECT member_id, invariant, count(*) FROM loyalty.check_invariants() GROUP BY 1, 2 ORDER BY 2$$,
    format($$VALUES (%1$s::bigint, 'every entry belongs to a member', 1::bigint),
                    (%1$s, 'every tier change belongs to a member', 2::bigint)$$, :b),
    'check_invariants() reports the tier changes (and entries) of a deleted member');
ROLLBACK TO SAVEPOINT tamper;

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
