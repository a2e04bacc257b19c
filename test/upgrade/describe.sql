-- describe.sql: a text description of everything the loyalty extension owns, one fact per
-- line, each line starting with the object it is about, so that a diff between two
-- databases reads on its own ("function loyalty.earn(...) | config | ...").
-- Used by test/upgrade/run.sh (upgraded 1.0 -> current vs fresh install) and
-- test/dump/run.sh. Multi-line texts (function bodies, view definitions) are split into
-- lines in their own order; everything else is sorted.
--
-- Run with: psql -X -At -f test/upgrade/describe.sql
\set ON_ERROR_STOP 1
SET search_path = pg_catalog;
SET lc_messages = 'C';
SET extra_float_digits = 0;

WITH ext AS (
    SELECT oid, extnamespace, extconfig, extcondition FROM pg_extension WHERE extname = 'loyalty'
),
-- every object that is a member of the extension (what DROP EXTENSION would drop)
member AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rel AS (
    SELECT c.*, c.oid::regclass::text AS name
      FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
fn AS (
    SELECT p.*, p.oid::regprocedure::text AS sig
      FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
),
typ AS (
    SELECT t.*, format_type(t.oid, NULL) AS name
      FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
),
facts(obj, ord, line) AS (
    -- the extension itself
    SELECT 'extension loyalty', 0, 'schema ' || extnamespace::regnamespace::text FROM ext
    UNION ALL
    SELECT 'schema ' || n.nspname, 1, 'owner ' || pg_get_userbyid(n.nspowner) || ' acl ' || coalesce(n.nspacl::text, '(default)')
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
    -- every member object, by its description: catches kinds not detailed below
    -- (casts, operators, event triggers...)
    UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid), 0, 'is a member of the extension'
      FROM member m
    -- pg_dump: which tables and sequences keep their rows, with which filter
    UNION ALL
    SELECT 'config dump ' || c.oid::regclass::text, 0,
           'condition ' || quote_literal(coalesce(ext.extcondition[i], ''))
      FROM ext, generate_subscripts(ext.extconfig, 1) AS i, pg_class c
     WHERE c.oid = ext.extconfig[i]
    -- functions and procedures
    UNION ALL
    SELECT 'function ' || sig, a.ord, a.line
      FROM fn, LATERAL (VALUES
          (1, 'kind ' || prokind::text),
          (2, 'arguments ' || pg_get_function_arguments(fn.oid)),
          (3, 'result ' || coalesce(pg_get_function_result(fn.oid), '(none)')),
          (4, 'language ' || (SELECT lanname FROM pg_language WHERE oid = prolang)),
          (5, 'volatility ' || provolatile::text || ' parallel ' || proparallel::text || ' strict ' || proisstrict
               || ' leakproof ' || proleakproof || ' security definer ' || prosecdef),
          (6, 'cost ' || procost || ' rows ' || prorows),
          (7, 'config ' || coalesce(proconfig::text, '(none)')),
          (8, 'owner ' || pg_get_userbyid(proowner)),
          (9, 'acl ' || coalesce(proacl::text, '(default)')),
          (10, 'probin ' || coalesce(probin, '(none)')),
          (11, 'support ' || prosupport::text)
      ) AS a(ord, line)
    UNION ALL
    -- the body, line by line (for C functions: the symbol; for BEGIN ATOMIC: as deparsed)
    SELECT 'function ' || sig, 100 + l.n::int, 'body | ' || l.line
      FROM fn, LATERAL regexp_split_to_table(
               CASE WHEN prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(fn.oid) ELSE prosrc END,
               E'\n') WITH ORDINALITY AS l(line, n)
    -- aggregates
    UNION ALL
    SELECT 'function ' || fn.sig, 20, 'aggregate ' || a.aggtransfn::text || ' ' || a.aggfinalfn::text
           || ' ' || format_type(a.aggtranstype, NULL) || ' ' || coalesce(a.agginitval, '(null)')
      FROM fn JOIN pg_aggregate a ON a.aggfnoid = fn.oid
    -- relations: tables, views, sequences, composite types' relations
    UNION ALL
    SELECT 'relation ' || name, a.ord, a.line
      FROM rel, LATERAL (VALUES
          (1, 'kind ' || relkind::text || ' persistence ' || relpersistence::text),
          (2, 'owner ' || pg_get_userbyid(relowner)),
          (3, 'acl ' || coalesce(relacl::text, '(default)')),
          (4, 'options ' || coalesce(reloptions::text, '(none)')),
          (5, 'row level security ' || relrowsecurity || ' forced ' || relforcerowsecurity),
          (6, 'replica identity ' || relreplident::text),
          (7, 'partition key ' || coalesce(pg_get_partkeydef(rel.oid), '(none)'))
      ) AS a(ord, line)
    UNION ALL
    -- columns, by name (the order is checked on its own line below)
    SELECT 'relation ' || rel.name, 10,
           'column ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END
           || CASE a.attgenerated WHEN 's' THEN ' generated stored' ELSE '' END
           || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                   THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END
           || coalesce(' acl ' || a.attacl::text, '')
      FROM rel
      JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
    UNION ALL
    -- column order matters to SELECT *, INSERT without a column list and row types: an
    -- upgrade adds columns at the end, so a fresh install must declare them last too
    SELECT 'relation ' || rel.name, 11, 'column order '
           || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
      FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
     GROUP BY rel.name
    UNION ALL
    SELECT 'relation ' || rel.name, 12, 'inherits ' || i.inhparent::regclass::text
      FROM rel JOIN pg_inherits i ON i.inhrelid = rel.oid
    UNION ALL
    -- constraints (on tables and on domains)
    SELECT coalesce('relation ' || rel.name, 'type ' || format_type(co.contypid, NULL)), 20,
           'constraint ' || quote_ident(co.conname) || ' ' || pg_get_constraintdef(co.oid)
           || CASE WHEN co.condeferrable THEN ' deferrable' ELSE '' END
           || CASE WHEN co.convalidated THEN '' ELSE ' not valid' END
      FROM pg_constraint co
      LEFT JOIN rel ON rel.oid = co.conrelid
     WHERE rel.oid IS NOT NULL OR co.contypid IN (SELECT oid FROM typ)
    UNION ALL
    -- indexes (including those behind constraints: their names matter to ON CONFLICT users)
    SELECT 'relation ' || rel.name, 30, 'index ' || pg_get_indexdef(i.indexrelid)
      FROM rel JOIN pg_index i ON i.indrelid = rel.oid
    UNION ALL
    -- triggers
    SELECT 'relation ' || rel.name, 40, 'trigger ' || pg_get_triggerdef(tg.oid)
           || CASE tg.tgenabled WHEN 'O' THEN '' ELSE ' (enabled: ' || tg.tgenabled::text || ')' END
      FROM rel JOIN pg_trigger tg ON tg.tgrelid = rel.oid AND NOT tg.tgisinternal
    UNION ALL
    -- rules other than a view's own
    SELECT 'relation ' || rel.name, 45, 'rule ' || pg_get_ruledef(r.oid)
      FROM rel JOIN pg_rewrite r ON r.ev_class = rel.oid AND r.rulename <> '_RETURN'
    UNION ALL
    -- row-level security policies
    SELECT 'relation ' || rel.name, 50, 'policy ' || quote_ident(p.polname)
           || ' for ' || p.polcmd::text || CASE WHEN p.polpermissive THEN ' permissive' ELSE ' restrictive' END
           || ' to ' || (SELECT string_agg(CASE r WHEN 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
                           FROM unnest(p.polroles) AS r)
           || coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
           || coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
      FROM rel JOIN pg_policy p ON p.polrelid = rel.oid
    UNION ALL
    -- extended statistics
    SELECT 'relation ' || rel.name, 55, 'statistics ' || pg_get_statisticsobjdef(s.oid)
      FROM rel JOIN pg_statistic_ext s ON s.stxrelid = rel.oid
    UNION ALL
    -- views and materialized views: the definition, line by line
    SELECT 'relation ' || rel.name, 100 + l.n::int, 'definition | ' || l.line
      FROM rel, LATERAL regexp_split_to_table(pg_get_viewdef(rel.oid, true), E'\n') WITH ORDINALITY AS l(line, n)
     WHERE rel.relkind IN ('v', 'm')
    UNION ALL
    -- sequences: parameters and the column that owns them
    SELECT 'relation ' || rel.name, 60,
           'sequence ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
           || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache
           || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
      FROM rel JOIN pg_sequence s ON s.seqrelid = rel.oid
    UNION ALL
    SELECT 'relation ' || rel.name, 61,
           'owned by ' || d.refobjid::regclass::text || '.' || quote_ident(a.attname)
      FROM rel
      JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = rel.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     WHERE rel.relkind = 'S'
    -- types: enums (labels in order), domains, composites, ranges
    UNION ALL
    SELECT 'type ' || typ.name, 1, 'kind ' || typ.typtype::text || ' owner ' || pg_get_userbyid(typ.typowner)
           || ' acl ' || coalesce(typ.typacl::text, '(default)')
      FROM typ
    UNION ALL
    SELECT 'type ' || typ.name, 2, 'labels ' || string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
      FROM typ JOIN pg_enum e ON e.enumtypid = typ.oid
     GROUP BY typ.name
    UNION ALL
    SELECT 'type ' || typ.name, 3, 'domain over ' || format_type(typ.typbasetype, typ.typtypmod)
           || CASE WHEN typ.typnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || typ.typdefault, '')
      FROM typ WHERE typ.typtype = 'd'
    UNION ALL
    SELECT 'type ' || typ.name, 4, 'range of ' || format_type(r.rngsubtype, NULL)
      FROM typ JOIN pg_range r ON r.rngtypid = typ.oid
    -- comments on every member object and on its columns
    UNION ALL
    SELECT 'comment on ' || pg_describe_object(d.classoid, d.objoid, d.objsubid), 0, d.description
      FROM pg_description d
     WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM member)
        OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = (SELECT extnamespace FROM ext))
        OR (d.classoid = 'pg_constraint'::regclass AND d.objoid IN
                (SELECT co.oid FROM pg_constraint co JOIN rel ON rel.oid = co.conrelid))
        OR (d.classoid = 'pg_trigger'::regclass AND d.objoid IN
                (SELECT tg.oid FROM pg_trigger tg JOIN rel ON rel.oid = tg.tgrelid))
    -- default privileges in the extension's schema
    UNION ALL
    SELECT 'default privileges in schema ' || n.nspname, 0,
           'for ' || pg_get_userbyid(da.defaclrole) || ' on ' || da.defaclobjtype::text || ' ' || da.defaclacl::text
      FROM pg_default_acl da JOIN pg_namespace n ON n.oid = da.defaclnamespace, ext
     WHERE da.defaclnamespace = ext.extnamespace
    -- roles the extension's privileges mention, with their memberships (roles are per
    -- cluster; what differs between two databases is what was granted to them)
    UNION ALL
    SELECT 'role ' || r.rolname, 0,
           'member of ' || coalesce((SELECT string_agg(pg_get_userbyid(m.roleid), ', ' ORDER BY 1)
                                       FROM pg_auth_members m WHERE m.member = r.oid), '(nothing)')
      FROM pg_roles r WHERE r.rolname LIKE 'loyalty%'
)
SELECT obj || ' | ' || line
  FROM facts
 ORDER BY obj COLLATE "C", ord, line COLLATE "C";
