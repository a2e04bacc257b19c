#!/usr/bin/env bash
# test/dump/run.sh: pg_dump -Fc / pg_restore round trip of a loyalty database.
#
#   1. every table and sequence of the extension is registered with pg_extension_config_dump
#      (pg_extension.extconfig vs the extension's members in pg_depend): a table added
#      without it would silently lose its rows in every backup;
#   2. database loyalty_dump_src gets a program with tiers, a plan, a reward, members,
#      ledger, lots, a subscription, vouchers and two signing keys (test/upgrade/workload_*
#      and workload.sql), is dumped with pg_dump -Fc and restored into loyalty_dump_dst;
#   3. every extension table and sequence has the same contents in both, and
#      check_invariants() is clean on the restored database;
#   4. operations keep working after the restore (after_restore.sql): new ids do not clash,
#      old vouchers verify, and the same operations give the same results on both.
#
# Run as the "dump" stage of scripts/test.sh, or alone (starts its own throwaway cluster):
#   PG_BIN=... LOYALTY_PGPORT=... bash test/dump/run.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${PGHOST:-}" ]; then
    # shellcheck source=scripts/lib.sh
    . "$here/../../scripts/lib.sh"
    cluster_start || exit 1
fi
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1)
out=${LOYALTY_DUMP_OUT:-$(mktemp -d)}
mkdir -p "$out"
chmod 777 "$out" 2>/dev/null
src=loyalty_dump_src dst=loyalty_dump_dst
fail=0

step() {  # step DESCRIPTION COMMAND...: run quietly, show the output only on failure
    local what=$1; shift
    if ! "$@" >"$out/step.log" 2>&1; then
        echo "FAIL $what"; sed 's/^/    /' "$out/step.log" | tail -n 30
        return 1
    fi
}

contents() {  # contents DB: every extension table's rows and every sequence's state
    # each row prefixed by its table, so that a diff line says where it belongs
    "${psql[@]}" -At -d "$1" -f "$here/tables.sql" | "${psql[@]}" -At -d "$1" |
        awk '/^== /{t = $2; print; next} {print t ": " $0}'
}

for db in $src $dst; do
    "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1
done
"$PG_BIN/createdb" $src || exit 1
step "install loyalty and load the data" \
    "${psql[@]}" -d $src -c "CREATE EXTENSION loyalty" -f "$here/../upgrade/workload_1.sql" \
                 -f "$here/../upgrade/workload_2.sql" -f "$here/workload.sql" || exit 1

# 1. registration: a member table or sequence missing from extconfig loses its rows in a dump
missing=$("${psql[@]}" -At -d $src -c "
    SELECT string_agg(c.oid::regclass::text || CASE c.relkind WHEN 'S' THEN ' (sequence)' ELSE '' END,
                      ', ' ORDER BY c.oid::regclass::text)
      FROM pg_extension e
      JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                      AND d.classid = 'pg_class'::regclass
      JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p', 'S')
     WHERE e.extname = 'loyalty' AND c.oid <> ALL (coalesce(e.extconfig, '{}')::oid[])
       -- the report rollups are derived from the ledger: not dumped, a restore starts them
       -- empty (high-water mark 0, the reports read the ledger) and run_rollups refills them
       AND c.relname NOT LIKE 'rollup\\_%'")
if [ -n "$missing" ]; then
    fail=1
    echo "FAIL not registered with pg_extension_config_dump, so pg_dump would drop their rows: $missing"
    echo "     add SELECT pg_catalog.pg_extension_config_dump('loyalty.NAME', ''); next to the CREATE"
else
    echo "ok   every extension table and sequence is registered with pg_extension_config_dump"
fi

# 2. dump and restore
step "pg_dump -Fc $src" "$PG_BIN/pg_dump" -Fc -f "$out/loyalty.dump" $src || exit 1
"$PG_BIN/createdb" $dst || exit 1
step "pg_restore into $dst" "$PG_BIN/pg_restore" --exit-on-error -d $dst "$out/loyalty.dump" || fail=1
echo "ok   pg_dump -Fc and pg_restore ($(stat -c %s "$out/loyalty.dump") bytes)"

# 3. contents and invariants
contents $src >"$out/contents.src"
contents $dst >"$out/contents.dst"
if diff -q "$out/contents.src" "$out/contents.dst" >/dev/null; then
    echo "ok   restored contents identical: $(grep -c '^== ' "$out/contents.dst") tables and sequences," \
         "$(grep -vc '^== ' "$out/contents.dst") rows"
else
    fail=1
    echo "FAIL restored contents differ ('-' in $src only, '+' in $dst only; '== name' starts each table):"
    diff -U 0 --label "$src" --label "$dst" "$out/contents.src" "$out/contents.dst" | grep -v '^@@' | head -n 100
fi
bad=$("${psql[@]}" -At -d $dst -c "SELECT count(*) FROM loyalty.check_invariants()")
if [ "$bad" = 0 ]; then
    echo "ok   check_invariants() clean on the restored database"
else
    fail=1; echo "FAIL check_invariants() on the restored database:"
    "${psql[@]}" -d $dst -c "SELECT * FROM loyalty.check_invariants()"
fi

# 4. operations after the restore, identical on both databases
for db in $src $dst; do
    step "operations on $db after the restore" "${psql[@]}" -At -d $db -f "$here/after_restore.sql" || fail=1
    cp "$out/step.log" "$out/after.$db"
done
if diff -q "$out/after.$src" "$out/after.$dst" >/dev/null &&
   [ "$(head -n 1 "$out/after.$dst")" = t ]; then
    echo "ok   operations after the restore: fresh ids, old vouchers valid, replays replay" \
         "(same results as on the original)"
else
    fail=1
    echo "FAIL operations after the restore differ from the same operations on the original:"
    diff -U 0 --label "$src" --label "$dst" "$out/after.$src" "$out/after.$dst" | grep -v '^@@' | head -n 40
fi
# what the operations left (without wall-clock columns), and the ledger's rules
"${psql[@]}" -At -d $src -f "$here/../upgrade/fingerprint.sql" >"$out/final.src"
"${psql[@]}" -At -d $dst -f "$here/../upgrade/fingerprint.sql" >"$out/final.dst"
if diff -q "$out/final.src" "$out/final.dst" >/dev/null && ! grep -q '^invariant' "$out/final.dst"; then
    echo "ok   after more operations: same balances, entries, lots and vouchers on both, check_invariants() clean"
else
    fail=1
    echo "FAIL after more operations the two databases differ or break an invariant"
    diff -U 0 --label "$src" --label "$dst" "$out/final.src" "$out/final.dst" | grep -v '^@@' | head -n 60
fi

if [ "$fail" = 0 ]; then
    for db in $src $dst; do "$PG_BIN/dropdb" "$db" >/dev/null 2>&1; done
    [ -n "${LOYALTY_DUMP_OUT:-}" ] || rm -rf "$out"
    echo "dump: passed"
else
    echo "dump: FAILED (files kept in $out)"
fi
exit "$fail"
