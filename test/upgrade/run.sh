#!/usr/bin/env bash
# test/upgrade/run.sh: the 1.0 -> current upgrade, done the supported way (README "Upgrading"),
# gives the same extension as a fresh install.
#
#   1. the 1.0 release is built from git history ($LOYALTY_OLD_REV, default aa391db: the last
#      1.0 commit) and its loyalty.so replaces the installed one (which is saved);
#   2. database loyalty_up_old: CREATE EXTENSION loyalty VERSION '1.0', workload_1.sql (1.0 API
#      only), run in new sessions, so on the real 1.0 library;
#   3. the upgrade: the current loyalty.so is put back (a new file renamed over the old one,
#      as make install / a package upgrade does), ALTER EXTENSION loyalty UPDATE, then
#      workload_2.sql in new sessions, which load the current library;
#   4. database loyalty_up_new: CREATE EXTENSION loyalty (current version), the same two
#      workloads;
#   5. the catalog descriptions of both (describe.sql: functions, tables, columns, constraints,
#      indexes, triggers, views, sequences, types, policies, ACLs, comments, pg_dump config)
#      must be identical, and so must the data the workload left (fingerprint.sql), with
#      check_invariants() clean in both.
# The current loyalty.so is always restored on exit, also on failure or interrupt.
#
# Run as the "upgrade" stage of scripts/test.sh (which starts the cluster), or alone:
#   PG_BIN=... LOYALTY_PGPORT=... bash test/upgrade/run.sh   (starts its own throwaway cluster)
# It needs write access to $(pg_config --pkglibdir) and the git history of the repository.
# Exit status 0 when everything matches.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${PGHOST:-}" ]; then
    # shellcheck source=scripts/lib.sh
    . "$root/scripts/lib.sh"
    cluster_start || exit 1
fi
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1)
out=${LOYALTY_UPGRADE_OUT:-$(mktemp -d)}
mkdir -p "$out"
target=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$root/loyalty.control")
old_rev=${LOYALTY_OLD_REV:-aa391db}
old=loyalty_up_old new=loyalty_up_new
fail=0

step() {  # step DESCRIPTION COMMAND...: run quietly, show the output only on failure
    local what=$1; shift
    if ! "$@" >"$out/step.log" 2>&1; then
        echo "FAIL $what"; sed 's/^/    /' "$out/step.log" | tail -n 30
        return 1
    fi
}

# ---- the shared library: 1.0 for part 1, the current one back afterwards, always ----
libdir=$("$PG_CONFIG" --pkglibdir) || exit 1
lib=$libdir/loyalty.so
saved=$out/loyalty.so.current
build=$(mktemp -d)
swapped=0

put_lib() {  # put_lib FILE: a new file renamed over loyalty.so; a backend that has the old
             # one mapped keeps its copy (never overwrite a loaded library in place)
    local tmp="$libdir/.loyalty.so.upgrade-test.$$"
    if install -m 755 "$1" "$tmp" && mv -f "$tmp" "$lib"; then return 0; fi
    rm -f "$tmp"; return 1
}
restore_lib() {
    if [ "$swapped" = 1 ]; then
        if put_lib "$saved" && cmp -s "$saved" "$lib"; then
            swapped=0
        else
            echo "FAIL could not restore the current library: copy $saved to $lib by hand" >&2
            return 1
        fi
    fi
}
cleanup() {  # replaces lib.sh's EXIT trap, so stops the cluster it started (run alone)
    local rc=$?
    restore_lib || rc=1
    rm -rf "$build"
    if declare -F cluster_stop >/dev/null; then cluster_stop; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if "${psql[@]}" -At -d postgres -c "SHOW shared_preload_libraries" | grep -qw loyalty; then
    echo "FAIL loyalty is in shared_preload_libraries: sessions would not load the 1.0 library"
    exit 1
fi
[ -f "$lib" ] || { echo "FAIL $lib is not installed (make install first)"; exit 1; }
# Proof that a session ran on the library we mean: the inode of the loyalty.so it has mapped
# (Linux /proc; elsewhere not checked). Appended to a workload run, so it is its last line.
maps_sql="SELECT coalesce((SELECT split_part(l, ' ', 5) FROM regexp_split_to_table(
            pg_read_file('/proc/' || pg_backend_pid() || '/maps'), E'\\n') AS l
          WHERE l LIKE '%/loyalty.so%' LIMIT 1), 'none')"
ran_on() {  # ran_on WHAT: the session whose output is in step.log had $lib (as now) mapped
    local want got
    [ -r /proc/self/maps ] || return 0
    want=$(stat -c %i "$lib") got=$(tail -n 1 "$out/step.log")
    if [ "$got" != "$want" ]; then
        echo "FAIL $1 did not run on the library installed for it (mapped inode $got, $lib is $want)"
        return 1
    fi
}
# a shallow clone lacks the release commit: deepen it (needs the remote), or say why not
if ! git -C "$root" cat-file -e "$old_rev^{commit}" 2>/dev/null; then
    git -C "$root" fetch --quiet --unshallow >/dev/null 2>&1 ||
        git -C "$root" fetch --quiet origin "$old_rev" >/dev/null 2>&1 || true
    git -C "$root" cat-file -e "$old_rev^{commit}" 2>/dev/null ||
        { echo "FAIL the 1.0 release commit $old_rev is not in this clone's history (a shallow clone? run: git fetch --unshallow)"; exit 1; }
fi
# shellcheck disable=SC2016  # $1..$4 are the inner shell's arguments
step "build the 1.0 release ($old_rev) from git history" \
    bash -c 'git -C "$1" archive "$2" | tar -x -C "$3" && make -s -C "$3" PG_CONFIG="$4" loyalty.so' \
    _ "$root" "$old_rev" "$build" "$PG_CONFIG" || exit 1
[ "$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$build/loyalty.control")" = 1.0 ] ||
    { echo "FAIL $old_rev is not a 1.0 release (its loyalty.control)"; exit 1; }

for db in $old $new; do
    "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1
    "$PG_BIN/createdb" "$db" || exit 1
done

# 1.0 in service: the 1.0 objects with the 1.0 library.
cp -p "$lib" "$saved" || exit 1
swapped=1
step "install the 1.0 loyalty.so" put_lib "$build/loyalty.so" || exit 1
data_ok=1
step "install 1.0 in $old" "${psql[@]}" -d $old -c "CREATE EXTENSION loyalty VERSION '1.0'" || exit 1
if ! step "workload part 1 on 1.0 (1.0 objects, 1.0 library)" \
        "${psql[@]}" -At -d $old -f "$here/workload_1.sql" -c "$maps_sql" ||
   ! ran_on "workload part 1 (1.0)"; then
    fail=1; data_ok=0
fi

# The upgrade, as README "Upgrading" says: new binaries, then ALTER EXTENSION UPDATE before
# the application uses the extension again; every later session loads the new library.
step "install the current loyalty.so" restore_lib || exit 1
step "ALTER EXTENSION loyalty UPDATE TO '$target'" \
    "${psql[@]}" -d $old -c "ALTER EXTENSION loyalty UPDATE TO '$target'" || { echo "upgrade: FAILED"; exit 1; }
if [ "$data_ok" = 1 ]; then
    if ! step "workload part 2 after the upgrade" \
            "${psql[@]}" -At -d $old -f "$here/workload_2.sql" -c "$maps_sql" ||
       ! ran_on "workload part 2 ($target)"; then
        fail=1; data_ok=0
    fi
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
