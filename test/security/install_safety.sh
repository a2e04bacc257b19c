#!/usr/bin/env bash
# Install safety: CREATE EXTENSION loyalty in fresh databases prepared by a
# hostile role, and the upgrade from 1.0. Run by scripts/test.sh (stage
# "security") against the cluster it started (PGHOST, PGPORT, PGUSER exported),
# or by hand with those set. Prints "ok N - ..." / "not ok N - ..." lines and
# exits non-zero when anything failed.
#
#   1. the generated install and upgrade scripts have no CREATE OR REPLACE and
#      no IF NOT EXISTS (CVE-2022-2625: they could adopt a planted object);
#   2. a database where a hostile role planted public.earn, public.now(),
#      operators and types shadowing pg_catalog's (with search_path
#      public, pg_catalog) and pg_temp trojans (temp tables and types named
#      like ours, a pg_temp.nextval): installation and every operation use
#      only our objects; nothing planted ever runs;
#   3. a schema "loyalty" created beforehand by another role: refused (LY152);
#   4. a role loyalty_report that can log in, or loyalty_app member of another
#      role: refused (LY150), nothing installed;
#   5. the 1.0 -> 1.1 upgrade ends with exactly the privileges, SECURITY
#      DEFINER flags, search_path settings, policies and view options of a
#      fresh 1.1 install.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -z "${2:-}" ] || printf '#   %s\n' "$2"; }
check() {  # check DESCRIPTION EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "expected [$2], got [$3]"; fi
}
sql() { local db=$1; shift; "${PSQL[@]}" -d "$db" "$@"; }

DBS=(sec_hostile sec_schema sec_role sec_upgrade)
cleanup() {
    local db
    for db in "${DBS[@]}"; do "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1; done
    # restore the roles in case a step stopped half-way
    sql postgres -c "DO \$\$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'loyalty_report') THEN ALTER ROLE loyalty_report NOLOGIN; END IF;
        IF EXISTS (SELECT FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member
                    WHERE r.rolname = 'loyalty_app' AND a.roleid = 'pg_read_server_files'::regrole) THEN
            REVOKE pg_read_server_files FROM loyalty_app; END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sec_mallory') THEN
            REVOKE ALL ON SCHEMA public FROM sec_mallory; END IF;
      END \$\$" >/dev/null 2>&1
    sql postgres -c "DROP ROLE IF EXISTS sec_mallory" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup

# ---- 1. the scripts ---------------------------------------------------------
for f in sql/loyalty--1.1.sql sql/loyalty--1.0--1.1.sql; do
    if [ ! -s "$f" ]; then notok "$f exists (run make)"; continue; fi
    # IF NOT EXISTS followed by "(" is PL/pgSQL's test, not DDL
    hits=$(grep -Eino 'create[[:space:]]+or[[:space:]]+replace|if[[:space:]]+not[[:space:]]+exists[[:space:]]+[^[:space:](]' "$f")
    check "$f: no CREATE OR REPLACE, no IF NOT EXISTS" "" "$hits"
done

# ---- 2. hostile objects -----------------------------------------------------
sql postgres -c "CREATE ROLE sec_mallory NOLOGIN"
"$PG_BIN/createdb" sec_hostile
sql sec_hostile <<'SQL'
GRANT CREATE ON SCHEMA public TO sec_mallory;
SET ROLE sec_mallory;
CREATE TABLE public.trojan_log (what text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.trojan_log TO PUBLIC;
CREATE FUNCTION public.trojan(what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO public.trojan_log (what) VALUES (what) $$;
-- functions named like ours and like pg_catalog's
CREATE FUNCTION public.earn(bigint, numeric, text, timestamptz DEFAULT now(), jsonb DEFAULT '{}')
    RETURNS text LANGUAGE sql AS $$ SELECT public.trojan('public.earn'); SELECT 'trojan' $$;
CREATE FUNCTION public.run_maintenance(timestamptz, integer) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT public.trojan('public.run_maintenance'); SELECT '{"members": 0}'::jsonb $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT public.trojan('public.now'); SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION public.nextval(regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT public.trojan('public.nextval'); SELECT 1::bigint $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql
    AS $$ SELECT public.trojan('public.lower'); SELECT $1 $$;
CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql
    AS $$ SELECT public.trojan('public.format'); SELECT $1 $$;
CREATE FUNCTION public.to_regprocedure(text) RETURNS regprocedure LANGUAGE sql
    AS $$ SELECT public.trojan('public.to_regprocedure'); SELECT NULL::regprocedure $$;
-- operators shadowing pg_catalog's
CREATE FUNCTION public.t_eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT public.trojan('public.=(text,text)'); SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.t_eq);
CREATE FUNCTION public.i_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT public.trojan('public.=(bigint,bigint)'); SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.i_eq);
CREATE FUNCTION public.i_lt(bigint, integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT public.trojan('public.<(bigint,integer)'); SELECT false $$;
CREATE OPERATOR public.< (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.i_lt);
CREATE FUNCTION public.i_plus(bigint, bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT public.trojan('public.+(bigint,bigint)'); SELECT 0::bigint $$;
CREATE OPERATOR public.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.i_plus);
-- types named like the ones we use
CREATE DOMAIN public.jsonb AS text;
CREATE DOMAIN public.regrole AS text;
CREATE DOMAIN public.timestamptz AS text;
RESET ROLE;
SQL
# Install and use the extension with the hostile search_path, plus pg_temp trojans.
out=$(sql sec_hostile 2>&1 <<'SQL'
SET search_path = public, pg_catalog;
CREATE TEMP TABLE program (id int);
CREATE TEMP TABLE member (id int);
CREATE TEMP TABLE voucher_key (id int, secret bytea);
CREATE TEMP TABLE regrole (x int);                  -- its row type is pg_temp.regrole
CREATE FUNCTION pg_temp.nextval(regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT public.trojan('pg_temp.nextval'); SELECT 1::bigint $$;
CREATE FUNCTION pg_temp.rotate_voucher_key() RETURNS integer LANGUAGE sql
    AS $$ SELECT public.trojan('pg_temp.rotate_voucher_key'); SELECT 1 $$;
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('h', 'H', '{"pending_days": 1}');
SELECT loyalty.add_tier('h', 'base', 'Base', 0);
SELECT loyalty.add_tier('h', 'gold', 'Gold', 100, 2);
SELECT loyalty.add_reward('h', 'mug', 'Mug', 5);
SELECT loyalty.enroll('h', 'c1', '2026-01-01 00:00:00+00');
SELECT loyalty.enroll('h', 'c2', '2026-01-01 00:00:00+00');
SELECT (loyalty.earn(1, 150, 'k1', '2026-01-01 00:00:00+00')).points;
SELECT (loyalty.earn(1, 10, 'k2', '2026-01-02 00:00:00+00')).points;
SELECT (loyalty.redeem(1, 20, 'k3', '2026-01-03 00:00:00+00')).available;
SELECT (loyalty.transfer(1, 2, 30, 'k4', '2026-01-03 00:00:00+00')).available;
SELECT (loyalty.redeem_reward(1, 'mug', 'k5', '2026-01-04 00:00:00+00')).available;
SELECT (loyalty.adjust(2, -5, 'fix', 'k6', '2026-01-04 00:00:00+00')).available;
SELECT loyalty.set_tier(2, 'gold', 'infinity', 'vip', '2026-01-05 00:00:00+00');
SELECT available FROM loyalty.balance(1, '2026-02-01 00:00:00+00');
SELECT count(*) FROM loyalty.statement(1);
SELECT tier FROM loyalty.tier_progress(2, '2026-02-01 00:00:00+00');
SELECT available FROM loyalty.member_summary WHERE member_id = 2;
SELECT points_issued FROM loyalty.program_kpis('h', '2026-01-01', '2026-02-01');
SELECT loyalty.anonymise_member(2, 'erasure request');
SELECT count(*) FROM loyalty.check_invariants();
SELECT count(*) FROM loyalty.audit_log;
CALL loyalty.maintain('2026-03-01 00:00:00+00', 10);
SQL
)
rc=$?
check "hostile database: CREATE EXTENSION and every operation succeed" 0 "$rc"
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out" | head -n 20
# The purchase that crosses gold earns at the old multiplier (150), the next at
# gold's (10 x 2 = 20); 170 - 20 redeemed - 30 transferred - 5 (mug) = 115;
# member 2: 30 - 5 = 25; statement: 2 earns, redeem, transfer, mug = 5 entries;
# issued in January 150 + 20; audit: program, 2 tiers, reward, adjust, set_tier,
# anonymise = 7 rows.
check "hostile database: every result is ours" \
    "1 1 2 1 1 2 150 20 150 120 115 25 gold 115 5 gold 25 170 t 0 7" "$(echo $out)"
check "hostile database: nothing planted ever ran" "0" \
    "$(sql sec_hostile -c "SELECT count(*) FROM public.trojan_log")"
check "hostile database: our columns have pg_catalog's types" \
    "pg_catalog.timestamptz pg_catalog.jsonb pg_catalog.regrole" \
    "$(sql sec_hostile -c "SELECT string_agg(t.typnamespace::regnamespace || '.' || t.typname, ' ' ORDER BY a.attname)
                             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                            WHERE a.attrelid = 'loyalty.program'::regclass AND a.attname IN ('settings', 'tenant', 'created_at')")"
check "hostile database: the roles got their privileges, the planted role none" "t f" \
    "$(sql sec_hostile -c "SELECT has_function_privilege('loyalty_app', 'loyalty.earn(bigint,numeric,text,timestamptz,jsonb)', 'EXECUTE'),
                                  has_function_privilege('sec_mallory', 'loyalty.earn(bigint,numeric,text,timestamptz,jsonb)', 'EXECUTE')" | tr '\n' ' ' | sed 's/ $//; s/|/ /')"

# ---- 3. a schema "loyalty" created by someone else -------------------------
"$PG_BIN/createdb" sec_schema
sql sec_schema -c "GRANT CREATE ON DATABASE sec_schema TO sec_mallory" \
               -c "SET ROLE sec_mallory" -c "CREATE SCHEMA loyalty" -c "RESET ROLE"
out=$(sql sec_schema -c "CREATE EXTENSION loyalty" 2>&1)
case $out in
    *'schema "loyalty" is not safe'*|*'is not a member of extension'*|*'already exists'*)
        ok "a schema loyalty created beforehand by another role: CREATE EXTENSION refuses" ;;
    *) notok "a schema loyalty created beforehand by another role: CREATE EXTENSION refuses" "$out" ;;
esac
check "... and nothing is installed" "0" "$(sql sec_schema -c "SELECT count(*) FROM pg_extension WHERE extname = 'loyalty'")"

# ---- 4. roles of our names that are not safe --------------------------------
"$PG_BIN/createdb" sec_role
sql postgres -c "ALTER ROLE loyalty_report LOGIN"
out=$(sql sec_role -v VERBOSITY=verbose -c "CREATE EXTENSION loyalty" 2>&1)
sql postgres -c "ALTER ROLE loyalty_report NOLOGIN"
case $out in
    *LY150*'role "loyalty_report" exists and is not safe'*) ok "a loyalty_report that can log in: CREATE EXTENSION refuses (LY150)" ;;
    *) notok "a loyalty_report that can log in: CREATE EXTENSION refuses (LY150)" "$out" ;;
esac
sql postgres -c "GRANT pg_read_server_files TO loyalty_app"
out=$(sql sec_role -v VERBOSITY=verbose -c "CREATE EXTENSION loyalty" 2>&1)
sql postgres -c "REVOKE pg_read_server_files FROM loyalty_app"
case $out in
    *LY150*'role "loyalty_app" exists and is not safe'*) ok "a loyalty_app member of another role: CREATE EXTENSION refuses (LY150)" ;;
    *) notok "a loyalty_app member of another role: CREATE EXTENSION refuses (LY150)" "$out" ;;
esac
check "... and nothing is installed" "0" "$(sql sec_role -c "SELECT count(*) FROM pg_extension WHERE extname = 'loyalty'")"
check "with the roles safe again, it installs" "1.1" \
    "$(sql sec_role -c "CREATE EXTENSION loyalty" -c "SELECT extversion FROM pg_extension WHERE extname = 'loyalty'")"

# ---- 5. the upgrade ends where a fresh install does --------------------------
"$PG_BIN/createdb" sec_upgrade
if sql sec_upgrade -c "CREATE EXTENSION loyalty VERSION '1.0'" -c "ALTER EXTENSION loyalty UPDATE TO '1.1'"; then
    ok "1.0 installs and updates to 1.1"
else
    notok "1.0 installs and updates to 1.1"
fi
catalog="
SELECT 'f ' || p.oid::regprocedure || ' ' || p.prosecdef || ' ' || coalesce(p.proacl::text, '-') || ' '
       || coalesce(p.proconfig::text, '-')
  FROM pg_proc p WHERE p.pronamespace = 'loyalty'::regnamespace
UNION ALL
SELECT 'r ' || c.oid::regclass || ' ' || coalesce(c.relacl::text, '-') || ' ' || c.relrowsecurity || c.relforcerowsecurity
       || ' ' || coalesce(c.reloptions::text, '-')
  FROM pg_class c WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'v')
UNION ALL
SELECT 'p ' || polrelid::regclass || ' ' || polname || ' ' || pg_get_expr(polqual, polrelid) FROM pg_policy
UNION ALL
SELECT 't ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1"
fresh=$(sql sec_role -c "$catalog")
upgraded=$(sql sec_upgrade -c "$catalog")
if [ "$fresh" = "$upgraded" ]; then
    ok "after the upgrade: the same privileges, definer flags, search_paths, policies, triggers as a fresh install"
else
    notok "after the upgrade: the same privileges, definer flags, search_paths, policies, triggers as a fresh install" \
          "$(diff <(echo "$fresh") <(echo "$upgraded") | head -n 20 | tr '\n' ' ')"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
