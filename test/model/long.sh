#!/usr/bin/env bash
# The model-based test at length (issue 9): many seeds, in parallel processes, each seed in
# its own database (so its own programs and members), against one throwaway cluster.
#
#   MODEL_OPS=1000000 bash test/model/long.sh            # a million operations in all
#   MODEL_OPS=200000 MODEL_PER_SEED=5000 MODEL_JOBS=2 MODEL_FIRST_SEED=1000 bash test/model/long.sh
#
# MODEL_OPS        operations in all (default 1000000), split into seeds of MODEL_PER_SEED
#                  operations (default 5000: members and their balance checks grow with a
#                  seed's length, so many medium seeds cover more per second than one long one)
# MODEL_JOBS       parallel processes (default: the number of cores)
# MODEL_FIRST_SEED the first seed (default 1000; CI runs 1-5)
# MODEL_MINUTES    stop starting new seeds after this many minutes (default: no limit); the
#                  operations actually run are reported
# Every failing seed is printed with its replay command; the last line is "N passed, M failed"
# (seeds). Needs the extension installed and python3-psycopg2, like run.sh.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$HERE/../../scripts/lib.sh"

TOTAL=${MODEL_OPS:-1000000}
PER=${MODEL_PER_SEED:-5000}
JOBS=${MODEL_JOBS:-$(nproc 2>/dev/null || echo 2)}
FIRST=${MODEL_FIRST_SEED:-1000}
MINUTES=${MODEL_MINUTES:-0}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NSEEDS=$(( (TOTAL + PER - 1) / PER ))

if [ -z "${PGHOST:-}" ]; then
    export LOYALTY_PGPORT=${LOYALTY_PGPORT:-54349}
    cluster_start || { echo "0 passed, $NSEEDS failed"; exit 1; }
fi
out=$(mktemp -d)
start=$(now_ms)
deadline=$(( MINUTES > 0 ? start + MINUTES * 60000 : 0 ))
log "$NSEEDS seeds x $PER operations from seed $FIRST, $JOBS processes${MINUTES:+, at most $MINUTES minutes}"

worker() {  # worker J: seeds FIRST+J, FIRST+J+JOBS, ...
    local j=$1 i seed rc
    for (( i = j; i < NSEEDS; i += JOBS )); do
        if [ "$deadline" -gt 0 ] && [ "$(now_ms)" -ge "$deadline" ]; then break; fi
        seed=$((FIRST + i))
        "$PY" "$HERE/run.py" --seed "$seed" --ops "$PER" >"$out/seed.$seed" 2>&1
        rc=$?
        echo "$seed $rc" >>"$out/done.$j"
    done
}
for (( j = 0; j < JOBS; j++ )); do worker "$j" & done
wait

passed=0 failed=0
for f in "$out"/done.*; do
    [ -f "$f" ] || continue
    while read -r seed rc; do
        if [ "$rc" = 0 ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "FAIL seed $seed: python3 test/model/run.py --seed $seed --ops $PER"
            grep -v '^[0-9]* passed, [0-9]* failed$' "$out/seed.$seed" | sed 's/^/    /' | tail -20
        fi
    done <"$f"
done
secs=$(( ($(now_ms) - start) / 1000 ))
# what was exercised, summed over the seeds (the per-seed counts run.py prints)
cat "$out"/seed.* 2>/dev/null | sed -n 's/^seed [0-9]*: ok, [0-9]* operations (\(.*\))$/\1/p' | tr ',' '\n' |
    awk '{ $1 = $1; n = $NF; $NF = ""; sub(/ $/, ""); c[$0] += n } END { for (k in c) printf "  %s %d\n", k, c[k] }' |
    sort >"$out/counts"
log "operation counts over all seeds:"
cat "$out/counts" >&2
ops=$(( (passed + failed) * PER ))
log "$((passed + failed)) seeds, $ops operations (seeds $FIRST-$((FIRST + NSEEDS - 1)) planned), $secs s, $JOBS processes"
rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
