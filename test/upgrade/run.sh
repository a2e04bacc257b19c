#!/usr/bin/env bash
# test/upgrade/run.sh: the 1.0 -> current upgrade gives the same extension as a fresh install.
#
#   1. database loyalty_up_old: CREATE EXTENSION loyalty VERSION '1.0', workload_1.sql (1.0 API
#      only), ALTER EXTENSION loyalty UPDATE, workload_2.sql;
#   2. database loyalty_up_new: CREATE EXTENSION loyalty (current version), the same two
#      workloads;
#   3. the catalog descriptions of both (describe.sql: functions, tables, columns, constraints,
#      indexes, triggers, views, sequences, types, policies, ACLs, comments, pg_dump config)
#      must be identical, and so must the data the workload left (fingerprint.sql), with
#      check_invariants() clean in both.
#
# Run as the "upgrade" stage of scripts/test.sh (which starts the cluster), or alone:
#   PG_BIN=... LOYALTY_PGPORT=... bash test/upgrade/run.sh   (starts its own throwaway cluster)
# Exit status 0 when everything matches.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${PGHOST:-}" ]; then
    # shellcheck source=scripts/lib.sh
    . "$here/../../scripts/lib.sh"
    cluster_start || exit 1
fi
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1)
out=${LOYALTY_UPGRADE_OUT:-$(mktemp -d)}
mkdir -p "$out"
target=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$here/../../loyalty.control")
old=loyalty_up_old new=loyalty_up_new
fail=0

step() {  # step DESCRIPTION COMMAND...: run quietly, show the output only on failure
    local what=$1; shift
    if ! "$@" >"$out/step.log" 2>&1; then
        echo "FAIL $what"; sed 's/^/    /' "$out/step.log" | tail -n 30
        return 1
    fi
}

for db in $old $new; do
    "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1
    "$PG_BIN/createdb" "$db" || exit 1
done

# The 1.0 workload runs on 1.0 objects with the new shared library (the library is
# shared: a 1.0 database sees it from make install until its ALTER EXTENSION UPDATE).
# If that fails, the catalog is still compared; the data only when both workloads ran.
data_ok=1
step "install 1.0 in $old" "${psql[@]}" -d $old -c "CREATE EXTENSION loyalty VERSION '1.0'" || exit 1
step "workload part 1 on 1.0 objects with the new shared library (a 1.0 database between
     make install and ALTER EXTENSION UPDATE: keep old C symbols, guard new tables and columns)" \
    "${psql[@]}" -d $old -f "$here/workload_1.sql" || { fail=1; data_ok=0; }
step "ALTER EXTENSION loyalty UPDATE TO '$target'" \
    "${psql[@]}" -d $old -c "ALTER EXTENSION loyalty UPDATE TO '$target'" || { echo "upgrade: FAILED"; exit 1; }
if [ "$data_ok" = 1 ]; then
    step "workload part 2 after the upgrade" "${psql[@]}" -d $old -f "$here/workload_2.sql" || { fail=1; data_ok=0; }
fi
step "fresh install of $target in $new" "${psql[@]}" -d $new -c "CREATE EXTENSION loyalty" || exit 1
step "workload parts 1 and 2 on the fresh install" \
    "${psql[@]}" -d $new -f "$here/workload_1.sql" -f "$here/workload_2.sql" || { fail=1; data_ok=0; }

v=$("${psql[@]}" -At -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'loyalty'")
if [ "$v" != "$target" ]; then
    echo "FAIL the upgraded database reports version '$v', not '$target'"; fail=1
fi

# Catalog: one fact per line; a diff line names the object it is about.
"${psql[@]}" -At -d $old -f "$here/describe.sql" >"$out/catalog.upgraded" || fail=1
"${psql[@]}" -At -d $new -f "$here/describe.sql" >"$out/catalog.fresh" || fail=1
if diff -q "$out/catalog.upgraded" "$out/catalog.fresh" >/dev/null; then
    echo "ok   catalog: upgraded 1.0 -> $target is identical to a fresh $target install ($(wc -l <"$out/catalog.fresh") facts)"
else
    fail=1
    echo "FAIL catalog: upgraded 1.0 -> $target differs from a fresh $target install"
    echo "     '-' lines: only after the upgrade (sql/loyalty/ lacks it, or the upgrade left an old version)"
    echo "     '+' lines: only in a fresh install (sql/upgrade/1.0--$target/ is missing the ALTER/CREATE or symlink)"
    diff -U 0 --label "upgraded 1.0 -> $target ($old)" --label "fresh $target ($new)" \
        "$out/catalog.upgraded" "$out/catalog.fresh" | grep -v '^@@' | head -n "${LOYALTY_DIFF_LINES:-300}"
fi

# Behaviour: the same workload gives the same rows, and the ledger's rules hold.
if [ "$data_ok" = 1 ]; then
"${psql[@]}" -At -F ' | ' -d $old -f "$here/fingerprint.sql" >"$out/data.upgraded" || fail=1
"${psql[@]}" -At -F ' | ' -d $new -f "$here/fingerprint.sql" >"$out/data.fresh" || fail=1
if grep -q '^invariant violated' "$out/data.upgraded" "$out/data.fresh"; then
    fail=1
    echo "FAIL check_invariants() reports violations:"; grep -h '^invariant violated' "$out/data.upgraded" "$out/data.fresh"
else
    echo "ok   check_invariants() clean on both databases"
fi
if diff -q "$out/data.upgraded" "$out/data.fresh" >/dev/null; then
    echo "ok   data: the workload run across the upgrade left the same balances, entries, lots," \
         "tier changes and vouchers as on a fresh install ($(wc -l <"$out/data.fresh") rows)"
else
    fail=1
    echo "FAIL data: the workload run across the upgrade differs from the same workload on a fresh install"
    diff -U 0 --label "upgraded ($old)" --label "fresh ($new)" "$out/data.upgraded" "$out/data.fresh" |
        grep -v '^@@' | head -n 100
fi
else
    echo "FAIL data: not compared (a workload failed above)"
fi

if [ "$fail" = 0 ]; then
    for db in $old $new; do "$PG_BIN/dropdb" "$db" >/dev/null 2>&1; done
    [ -n "${LOYALTY_UPGRADE_OUT:-}" ] || rm -rf "$out"
    echo "upgrade: passed"
else
    echo "upgrade: FAILED (descriptions kept in $out)"
fi
exit "$fail"
