-- setup: the extension installs its schema, tables, types and functions.
-- (pg_regress runs with --load-extension=loyalty.)
SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
  FROM pg_extension WHERE extname = 'loyalty';

-- Every function and procedure in the schema, with its signature (one line
-- each, unaligned, so a new function adds a line instead of re-padding all).
\pset format unaligned
SELECT format('%s %s(%s) -> %s', CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
              p.proname, pg_get_function_identity_arguments(p.oid),
              coalesce(pg_get_function_result(p.oid), 'void')) AS signature
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
 ORDER BY p.proname, pg_get_function_identity_arguments(p.oid);
\pset format aligned

-- Every function pins its search_path.
SELECT p.proname
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
 ORDER BY c.relname;

-- Tables, sequences and the receipt type.
SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'S', 'v', 'c')
 ORDER BY c.relname;

SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'loyalty.receipt'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

-- The ledger tables are append-only.
SELECT tgrelid::regclass AS table_name, tgname
  FROM pg_trigger
 WHERE NOT tgisinternal AND tgrelid IN ('loyalty.entry'::regclass, 'loyalty.lot_draw'::regclass,
                   'loyalty.tier_change'::regclass)
 ORDER BY 1, 2;

-- pg_dump keeps the user data: every table ...
SELECT c::regclass AS dumped_table
  FROM pg_extension, unnest(extconfig) AS c
 WHERE extname = 'loyalty' AND c::regclass::text NOT LIKE '%seq'
 ORDER BY c::regclass::text;
-- ... and every sequence the tables draw ids from, or a restored database
-- would hand out ids that are already taken.
SELECT c.oid::regclass AS sequence_not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'S'
   AND c.oid NOT IN (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'loyalty')
 ORDER BY c.relname;
