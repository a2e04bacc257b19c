-- bench/bulk/ledger_floor_setup.sql: the tables of the "same-rows floor" of the expiry and
-- tier re-evaluation cases (bench/bulk/*_same_rows.sql): plain SQL that writes the rows the
-- extension writes for that work (a ledger entry per member and expiry instant, a draw per
-- lot, the lot closed, the member row updated; a tier change, an outbox event and the member
-- row per changed tier), in the extension's batches, without any loyalty function.
--
-- fl_X is loyalty.X with its columns, types, defaults, CHECKs, NOT NULLs and indexes (LIKE
-- ... INCLUDING ALL: partial and BRIN indexes too), its storage parameters (fillfactor,
-- which LIKE does not copy) and its foreign keys, pointed at the fl_ copies: a change to the
-- extension's tables carries over without editing this file. Ids come from sequences of
-- their own (the extension's sequences are not drawn from). Not copied: the append-only
-- triggers (BEFORE UPDATE OR DELETE: the floors only insert into those tables), row level
-- security (the bench runs as a superuser, which bypasses it) and the foreign keys other
-- tables hold onto loyalty.member (checked only when a member id changes or a member goes).
-- Run once, after bench/bulk/setup.sql created the programs; ledger_floor_load.sql copies a
-- program's members and their rows in before each case.
DO $$
DECLARE
    t text;
    opts text[];
    r record;
BEGIN
    FOREACH t IN ARRAY ARRAY['program', 'tier', 'member', 'entry', 'lot', 'lot_draw', 'tier_change', 'outbox'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE loyalty.%I INCLUDING ALL)', 'fl_' || t, t);
        SELECT c.reloptions INTO opts FROM pg_class c WHERE c.oid = format('loyalty.%I', t)::regclass;
        IF opts IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I SET (%s)', 'fl_' || t, array_to_string(opts, ', '));
        END IF;
        FOR r IN SELECT a.attname FROM pg_attrdef d
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                  WHERE d.adrelid = format('loyalty.%I', t)::regclass
                    AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
        LOOP
            EXECUTE format('CREATE SEQUENCE %I', format('fl_%s_%s_seq', t, r.attname));
            EXECUTE format('ALTER TABLE %I ALTER %I SET DEFAULT nextval(%L)', 'fl_' || t, r.attname,
                           format('fl_%s_%s_seq', t, r.attname));
        END LOOP;
    END LOOP;
    -- the foreign keys, in the same order (they reference only the tables above)
    FOR r IN SELECT c.conrelid::regclass AS rel, c.conname, pg_get_constraintdef(c.oid) AS def
               FROM pg_constraint c
              WHERE c.contype = 'f'
                AND c.conrelid IN (SELECT format('loyalty.%I', x)::regclass
                                     FROM unnest(ARRAY['program', 'tier', 'member', 'entry', 'lot',
                                                       'lot_draw', 'tier_change', 'outbox']) x)
              ORDER BY c.conrelid, c.conname
    LOOP
        IF r.def !~ 'REFERENCES loyalty\.(program|tier|member|entry|lot|lot_draw|tier_change|outbox)\(' THEN
            RAISE EXCEPTION 'ledger_floor_setup: % references a table with no fl_ copy: %', r.rel, r.def;
        END IF;
        EXECUTE format('ALTER TABLE %I ADD %s', 'fl_' || (SELECT relname FROM pg_class WHERE oid = r.rel),
                       regexp_replace(r.def, 'REFERENCES loyalty\.(\w+)\(', 'REFERENCES fl_\1('));
    END LOOP;
END
$$;
INSERT INTO fl_program SELECT * FROM loyalty.program;
INSERT INTO fl_tier SELECT * FROM loyalty.tier;
