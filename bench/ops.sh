#!/usr/bin/env bash
# bench/ops.sh: the single-operation benchmarks of loyalty against their plain-SQL floor.
#
# Each case runs the extension and its floor in the same cluster, in alternating
# rounds (floor, extension, extension, floor, ...), and reports the median tps of
# each and their ratio. The ratio is the result; absolute numbers depend on the
# machine. Cases:
#   earn    random members, CLIENTS clients          floor: one statement writing ledger row, lot, balance
#   redeem  a credit, then a debit drawing 3 lots     floor: one statement per touched row
#   hot     CLIENTS*2 clients on one member           floor: the same on one row
#   storage bytes per earn (ledger + lot + indexes)   floor: its tables and indexes
#
# Usage: bench/ops.sh [--quick] ; env MEMBERS, CLIENTS, SECONDS_PER_RUN, ROUNDS override.
# Writes bench/out/ops.md and prints it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO_ROOT"

MEMBERS=${MEMBERS:-100000}; CLIENTS=${CLIENTS:-4}; SECS=${SECONDS_PER_RUN:-20}; ROUNDS=${ROUNDS:-3}
if [ "${1:-}" = "--quick" ]; then MEMBERS=2000; SECS=3; ROUNDS=1; fi
PGBENCH="$PG_BIN/pgbench"
mkdir -p bench/out
out=bench/out/ops.md

ensure_deps
build_install
cluster_start
createdb bench
export PGDATABASE=bench
psql -X -q -c 'CREATE EXTENSION loyalty'
log "loading $MEMBERS members (4 lots each) and the floor tables"
psql -X -q -v ON_ERROR_STOP=1 -v members="$MEMBERS" -f bench/ops/setup.sql >/dev/null

tps() {  # tps SCRIPT CLIENTS [extra pgbench args]
    local script=$1 c=$2; shift 2
    "$PGBENCH" -n -c "$c" -j 2 -T "$SECS" -D members="$MEMBERS" -f "bench/ops/$script" "$@" 2>&1 \
        | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A result
for case in earn redeem hot; do
    c=$CLIENTS; [ "$case" = hot ] && c=$((CLIENTS * 2))
    ext=(); flo=()
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            flo+=("$(tps "${case}_floor.sql" "$c")"); ext+=("$(tps "$case.sql" "$c")")
        else
            ext+=("$(tps "$case.sql" "$c")"); flo+=("$(tps "${case}_floor.sql" "$c")")
        fi
        log "$case round $r: extension ${ext[-1]} tps, floor ${flo[-1]} tps"
    done
    e=$(printf '%s\n' "${ext[@]}" | median); f=$(printf '%s\n' "${flo[@]}" | median)
    result[$case]="$e $f"
done

# storage: bytes added per earn, the extension's ledger + lots vs the floor's
size() { psql -X -At -c "SELECT sum(pg_total_relation_size(c)) FROM unnest('{$1}'::regclass[]) c"; }
n=$((MEMBERS < 20000 ? 20000 : MEMBERS))
b0=$(size loyalty.entry,loyalty.lot); "$PGBENCH" -n -c 2 -j 2 -t $((n / 2)) -D members="$MEMBERS" -f bench/ops/earn.sql >/dev/null 2>&1; b1=$(size loyalty.entry,loyalty.lot)
f0=$(size floor_entry,floor_lot); "$PGBENCH" -n -c 2 -j 2 -t $((n / 2)) -D members="$MEMBERS" -f bench/ops/earn_floor.sql >/dev/null 2>&1; f1=$(size floor_entry,floor_lot)
invariants=$(psql -X -At -c 'SELECT count(*) FROM loyalty.check_invariants()')

{
    echo "# loyalty: single operations against the plain-SQL floor"
    echo
    echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), $MEMBERS members, $CLIENTS clients, ${SECS}s x $ROUNDS rounds per side, fsync off (CPU-bound: the hardest case for the ratio)."
    echo
    echo "| case | extension tps | floor tps | ratio | target |"
    echo "|---|---|---|---|---|"
    for case in earn redeem hot; do
        read -r e f <<<"${result[$case]}"
        target='>= 0.85x'; [ "$case" = redeem ] && target='>= 0.8x'; [ "$case" = hot ] && target='>= 0.8x'
        printf '| %s | %.0f | %.0f | %.2fx | %s |\n' "$case" "$e" "$f" "$(echo "$e / $f" | bc -l)" "$target"
    done
    printf '| storage per earn | %.0f B | %.0f B | %.2fx | <= 1.3x |\n' \
        "$(echo "($b1 - $b0) / $n" | bc -l)" "$(echo "($f1 - $f0) / $n" | bc -l)" \
        "$(echo "($b1 - $b0) / ($f1 - $f0)" | bc -l)"
    echo
    echo "check_invariants() after the run: $invariants violations."
} > "$out"
cat "$out"
[ "$invariants" = 0 ]
