-- Security over the catalog: every object of the extension is classified in
-- loyalty.access_rules() and has exactly the privileges it says; every function
-- pins its search_path; nobody but the owner writes a table or reads a key.
-- Then the three roles, used for real.
BEGIN;
SELECT plan(46);

-- Every function and procedure the extension owns (pg_depend deptype 'e').
CREATE TEMP VIEW ext_fn AS
SELECT p.oid, p.oid::regprocedure::text AS sig, p.prokind, p.prosecdef, p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty';
CREATE TEMP VIEW ext_rel AS
SELECT c.oid, c.oid::regclass::text AS name, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty';
CREATE TEMP VIEW rules AS
SELECT r.*, CASE WHEN r.kind = 'function' THEN to_regprocedure(r.object)::oid
                 ELSE to_regclass(r.object)::oid END AS oid
  FROM loyalty.access_rules() r;
CREATE TEMP TABLE roles (short text, role name);
INSERT INTO roles VALUES ('admin', 'loyalty_admin'), ('app', 'loyalty_app'), ('report', 'loyalty_report');

-- ---------------------------------------------------------------------------
-- The classification is complete: a function merged without a row fails here.
-- ---------------------------------------------------------------------------
SELECT ok((SELECT count(*) FROM ext_fn) >= 49, 'the extension owns its functions (sanity: at least 49)');
SELECT is_empty($$SELECT sig FROM ext_fn WHERE oid NOT IN (SELECT oid FROM rules WHERE kind = 'function' AND oid IS NOT NULL)$$,
                'every function of the extension is classified in loyalty.access_rules() (98_security.sql)');
SELECT is_empty($$SELECT name FROM ext_rel WHERE relkind IN ('r', 'p', 'v', 'm', 'f')
                     AND oid NOT IN (SELECT oid FROM rules WHERE kind IN ('table', 'view') AND oid IS NOT NULL)$$,
                'every table and view of the extension is classified');
SELECT is_empty($$SELECT object FROM rules WHERE oid IS NULL$$, 'no row of the classification names a missing object');
SELECT is_empty($$SELECT object FROM rules WHERE kind = 'table' AND oid NOT IN (SELECT oid FROM ext_rel WHERE relkind IN ('r', 'p'))
                  UNION ALL
                  SELECT object FROM rules WHERE kind = 'view' AND oid NOT IN (SELECT oid FROM ext_rel WHERE relkind = 'v')
                  UNION ALL
                  SELECT object FROM rules WHERE kind = 'function' AND oid NOT IN (SELECT oid FROM ext_fn)$$,
                'every classified object is of the kind it is listed as, and belongs to the extension');
SELECT is_empty($$SELECT object FROM rules WHERE NOT roles <@ '{admin,app,report}'
                     OR (kind = 'function') <> (definer IS NOT NULL)
                     OR tenant_key NOT IN ('tenant', 'program_id', 'program_id_or_null', 'member_id')$$,
                'the classification uses only the three roles, and definer for functions only');

-- ---------------------------------------------------------------------------
-- Functions: search_path, SECURITY DEFINER, EXECUTE
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT sig FROM ext_fn
                   WHERE NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
                     AND sig <> 'loyalty.maintain(timestamp with time zone,integer)'$$,
                'every function pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT prokind::text || coalesce(array_length(proconfig, 1), 0) FROM ext_fn
            WHERE sig = 'loyalty.maintain(timestamp with time zone,integer)'),
          'p0', 'the one exception is the procedure maintain (it commits, so it cannot have SET; it qualifies its operators)');
SELECT is_empty($$SELECT sig FROM ext_fn
                   WHERE proconfig @> ARRAY['enable_seqscan=off'] AND NOT proconfig @> ARRAY['jit=off']$$,
                'every function that disables sequential scans also disables JIT (a disabled scan is costed above jit_above_cost)');
SELECT is_empty($$SELECT sig FROM ext_fn WHERE prosecdef AND prokind = 'p'$$, 'no procedure is SECURITY DEFINER');
SELECT is_empty($$SELECT f.sig FROM ext_fn f JOIN rules r ON r.oid = f.oid WHERE f.prosecdef IS DISTINCT FROM r.definer$$,
                'each function is SECURITY DEFINER exactly when classified so');
SELECT is_empty($$SELECT sig FROM ext_fn WHERE has_function_privilege('public', oid, 'EXECUTE')$$,
                'no function is executable by PUBLIC');
SELECT is_empty($$SELECT f.sig, ro.role FROM ext_fn f JOIN rules r ON r.oid = f.oid CROSS JOIN roles ro
                   WHERE has_function_privilege(ro.role, f.oid, 'EXECUTE') <> (ro.short = ANY (r.roles))$$,
                'each role can execute exactly the functions classified for it');
SELECT ok((SELECT bool_and(prosecdef) FROM ext_fn f JOIN rules r ON r.oid = f.oid
            WHERE r.object ~ '^loyalty\.(earn|award|redeem|reverse|adjust|transfer|subscribe|renew|cancel_subscription|set_tier|enroll|redeem_reward|use_voucher|cancel_voucher|create_program|add_tier|add_plan|add_reward|anonymise_member|run_maintenance)\('),
          'the money and settings functions are SECURITY DEFINER (no role writes the tables itself)');
SELECT ok((SELECT NOT bool_or(prosecdef) FROM ext_fn f JOIN rules r ON r.oid = f.oid
            WHERE r.object ~ '^loyalty\.(balance|statement|tier_history|tier_progress|member_id|program_kpis|cohort_retention|member_value|expiring_points|report_program|check_invariants)\('),
          'the reading functions run with the caller''s rights, so row-level security applies to them');

-- ---------------------------------------------------------------------------
-- Tables and views
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT c.name, ro.role, p.priv FROM ext_rel c CROSS JOIN roles ro
                   CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
                   WHERE c.relkind IN ('r', 'p', 'v') AND has_table_privilege(ro.role, c.oid, p.priv)$$,
                'no role may INSERT, UPDATE, DELETE, TRUNCATE, REFERENCE or TRIGGER any table or view');
SELECT is_empty($$SELECT c.name, ro.role FROM ext_rel c CROSS JOIN roles ro
                   WHERE c.relkind = 'S' AND has_sequence_privilege(ro.role, c.oid, 'USAGE, UPDATE, SELECT')$$,
                'no role may use a sequence');
SELECT is_empty($$SELECT c.name, ro.role FROM ext_rel c JOIN rules r ON r.oid = c.oid CROSS JOIN roles ro
                   WHERE has_table_privilege(ro.role, c.oid, 'SELECT') <> (ro.short = ANY (r.roles))$$,
                'each role can SELECT exactly the tables and views classified for it');
SELECT is_empty($$SELECT ro.role FROM roles ro
                   WHERE has_table_privilege(ro.role, 'loyalty.voucher_key', 'SELECT')
                      OR has_table_privilege(ro.role, 'loyalty.voucher', 'SELECT')
                      OR has_column_privilege(ro.role, 'loyalty.voucher_key', 'secret', 'SELECT')$$,
                'no role reads voucher keys or voucher codes');
SELECT is_empty($$SELECT name FROM ext_rel WHERE relkind IN ('r', 'p', 'v') AND has_table_privilege('public', oid, 'SELECT, INSERT, UPDATE, DELETE')$$,
                'PUBLIC has no privilege on any table or view');
SELECT is_empty($$SELECT c.name FROM ext_rel c JOIN rules r ON r.oid = c.oid
                   WHERE r.tenant_key IS NOT NULL
                     AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                              AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid))$$,
                'every tenant table has row-level security enabled and forced, with a policy');
SELECT is_empty($$SELECT c.name FROM ext_rel c JOIN rules r ON r.oid = c.oid
                   WHERE r.kind = 'table' AND r.tenant_key IS NULL AND r.roles <> '{}'$$,
                'a table without row-level security is readable by no role');
SELECT is_empty($$SELECT name FROM ext_rel WHERE relkind = 'v' AND NOT coalesce(reloptions @> '{security_invoker=true}', false)$$,
                'every view runs with the caller''s rights (security_invoker), so row-level security applies');
SELECT is_empty($$SELECT name FROM ext_rel c JOIN rules r ON r.oid = c.oid WHERE r.audit IS NOT NULL
                     AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'audit_settings')$$,
                'every settings table has its audit trigger');

-- ---------------------------------------------------------------------------
-- The roles themselves
-- ---------------------------------------------------------------------------
SELECT is((SELECT string_agg(format('%s:%s%s%s%s%s%s', rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb,
                                    rolreplication, rolbypassrls), ',' ORDER BY rolname)
             FROM pg_roles WHERE rolname IN (SELECT role FROM roles)),
          'loyalty_admin:ffffff,loyalty_app:ffffff,loyalty_report:ffffff',
          'the three roles exist, cannot log in and have no attributes');
SELECT is_empty($$SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member
                   WHERE r.rolname IN (SELECT role FROM roles)$$,
                'the three roles are members of no role');
SELECT ok((SELECT bool_and(has_schema_privilege(role, 'loyalty', 'USAGE') AND NOT has_schema_privilege(role, 'loyalty', 'CREATE'))
             FROM roles), 'each role may use the schema, none may create in it');

-- ---------------------------------------------------------------------------
-- The install and upgrade scripts (as installed) never replace or skip objects
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE scripts AS
SELECT f, pg_read_file((SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/extension/' || f) AS body
  FROM unnest(ARRAY['loyalty--1.1.sql', 'loyalty--1.0--1.1.sql']) f;
SELECT is((SELECT count(*)::int FROM scripts WHERE length(body) > 1000), 2, 'both scripts are read');
-- (IF NOT EXISTS followed by a parenthesis is PL/pgSQL's test, not DDL)
SELECT is_empty($$SELECT f, m[1] FROM scripts, regexp_matches(body, '(create\s+or\s+replace|if\s+not\s+exists\s+[^\s(])', 'gi') m$$,
                'no CREATE OR REPLACE and no IF NOT EXISTS in the install and upgrade scripts');

-- ---------------------------------------------------------------------------
-- The roles at work (a program with no tenant: any role may use it)
-- ---------------------------------------------------------------------------
SELECT loyalty.create_program('sec50', 'Security', '{}');
SELECT loyalty.add_tier('sec50', 'base', 'Base', 0);
SELECT loyalty.add_reward('sec50', 'mug', 'Mug', 5);
SELECT loyalty.enroll('sec50', 'm1') AS m1 \gset
SELECT loyalty.earn(:m1, 20, 'e1', '2026-01-01 00:00:00+00');

SET LOCAL ROLE loyalty_app;
SELECT is((SELECT points FROM loyalty.earn(:m1, 10, 'e2', '2026-01-02 00:00:00+00')), 10::bigint, 'app: earn works');
SELECT is((SELECT available FROM loyalty.balance(:m1, '2026-01-03 00:00:00+00')), 30::bigint, 'app: balance works');
SELECT is((SELECT count(*)::int FROM loyalty.statement(:m1)), 2, 'app: statement works');
SELECT ok((SELECT voucher_code FROM loyalty.redeem_reward(:m1, 'mug', 'r1', '2026-01-03 00:00:00+00')) IS NOT NULL,
          'app: redeem_reward works');
SELECT throws_ok(format($$INSERT INTO loyalty.entry (member_id, kind, points, at, available_after, pending_after, tier_after)
                          VALUES (%s, 'award', 1000, now(), 1000, 0, 'base')$$, :m1),
                 '42501', NULL, 'app: cannot write the ledger directly');
SELECT throws_ok(format($$UPDATE loyalty.member SET available = 1000 WHERE id = %s$$, :m1), '42501', NULL,
                 'app: cannot update balances directly');
SELECT throws_ok($$SELECT * FROM loyalty.voucher_key$$, '42501', NULL, 'app: cannot read voucher keys');
SELECT throws_ok(format($$SELECT loyalty.adjust(%s, 500, 'gift', 'a1')$$, :m1), '42501', NULL,
                 'app: cannot adjust (admin)');
SELECT throws_ok($$SELECT loyalty.create_program('sec50x', 'X', '{"points_per_unit": 100}')$$, '42501', NULL,
                 'app: cannot create programs or change settings (admin)');
SELECT throws_ok($$SELECT loyalty.bind_program('sec50', NULL)$$, '42501', NULL, 'app: cannot bind programs');
RESET ROLE;

SET LOCAL ROLE loyalty_report;
SELECT is((SELECT available::int FROM loyalty.member_summary WHERE member_id = :m1), 25, 'report: member_summary works');
SELECT is((SELECT points_issued FROM loyalty.program_kpis('sec50', '2026-01-01', '2026-02-01')), 30::bigint,
          'report: program_kpis works');
SELECT throws_ok(format($$SELECT loyalty.earn(%s, 10, 'e3')$$, :m1), '42501', NULL, 'report: cannot earn');
RESET ROLE;

SET LOCAL ROLE loyalty_admin;
SELECT is((SELECT points FROM loyalty.adjust(:m1, -5, 'goodwill correction', 'a2', '2026-01-04 00:00:00+00')), -5::bigint,
          'admin: adjust works');
SELECT throws_ok(format($$SELECT loyalty.earn(%s, 10, 'e4')$$, :m1), '42501', NULL, 'admin: cannot earn (app)');
SELECT throws_ok($$SELECT loyalty.rotate_voucher_key()$$, '42501', NULL, 'admin: cannot rotate the signing keys (owner)');
RESET ROLE;

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
