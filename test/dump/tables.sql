-- tables.sql: for every table and sequence of the extension, a statement that prints its
-- rows in a stable order (run its output with psql to get the contents).
SELECT format('\echo == %s', c.oid::regclass) || E'\n' ||
       CASE c.relkind
           WHEN 'S' THEN format('SELECT last_value, is_called FROM %s;', c.oid::regclass)
           ELSE format('COPY (SELECT * FROM %s ORDER BY %s) TO STDOUT;', c.oid::regclass,
                       (SELECT string_agg(a.attnum::text, ', ' ORDER BY a.attnum)
                          FROM pg_attribute a
                          JOIN pg_type t ON t.oid = a.atttypid
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           -- json has no ordering; the other columns order the rows
                           AND t.typname <> 'json'))
       END
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
 WHERE e.extname = 'loyalty' AND c.relkind IN ('r', 'p', 'S')
   AND c.relname NOT LIKE 'rollup\_%'   -- derived from the ledger, not dumped (92_rollups.sql)
 ORDER BY c.oid::regclass::text;
