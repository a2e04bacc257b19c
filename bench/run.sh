#!/usr/bin/env bash
# bench/run.sh: every benchmark case of loyalty against its plain-SQL floor, one command.
#
# Installs what it needs (gnuplot-nox for the chart), builds and installs the extension,
# starts a throwaway cluster (scripts/lib.sh), runs each case and its floor in the same
# cluster (alternating rounds for the pgbench cases, floor then extension for the bulk
# ones), and writes bench/out/report.md, bench/out/chart.png (ratio per case against its
# target) and bench/out/results.tsv. A full run also copies the report and chart to
# docs/bench/ (what the README links). The ratio is the result; absolute numbers are noise
# on a busy machine.
# Expiry and tier re-evaluation also get a second reference, measured in the same run right
# after the issue's floor: the "same-rows floor", plain SQL that writes the rows the
# extension writes for that work (ledger entries, draws, closed lots, member rows; tier
# changes, outbox events) on copies of its tables with the same indexes and foreign keys,
# in the extension's batches (bench/bulk/ledger_floor_*.sql, *_same_rows.sql). Its rows in
# the report carry no target: the issue's targets stay on the issue's floors.
#
# Usage: bash bench/run.sh [--smoke] [--no-build] [--no-publish]
#   --smoke       tiny sizes, seconds per case: checks that every case runs and reports
#                 (CI's "bench" stage); never publishes
#   --no-build    use the installed extension
#   --no-publish  leave docs/bench/ alone
# Sizes (environment): MEMBERS=100000 CLIENTS=4 SECONDS_PER_RUN=20 ROUNDS=3 (pgbench cases),
#   BULK=1000000 BULK_MEMBERS=100000 TIER_MEMBERS=1000000 MAINT_BATCH=50 (bulk cases),
#   TIER_BATCH=1000 (members per run_maintenance call in the tiers case);
#   ONLY_OPS=1 runs the pgbench and storage cases only; CASES="earn rules redeem hot storage
#   bulk expiry tiers" (any subset, default all) runs the named cases only (the memory case
#   goes with bulk and expiry). A run with CASES set never publishes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO_ROOT"

smoke=0; build=1; publish=1
for a in "$@"; do
    case $a in
        --smoke) smoke=1; publish=0 ;;
        --no-build) build=0 ;;
        --no-publish) publish=0 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $a" >&2; exit 2 ;;
    esac
done
MEMBERS=${MEMBERS:-100000}; CLIENTS=${CLIENTS:-4}; SECS=${SECONDS_PER_RUN:-20}; ROUNDS=${ROUNDS:-3}
BULK=${BULK:-1000000}; BULK_MEMBERS=${BULK_MEMBERS:-100000}; TIER_MEMBERS=${TIER_MEMBERS:-1000000}
MAINT_BATCH=${MAINT_BATCH:-50}
# tier reviews are set-based per run_maintenance call (src/tier_review.c): a call's fixed
# cost (its passes, rollups) is paid per batch, so they run in larger batches
TIER_BATCH=${TIER_BATCH:-1000}
CASES=${CASES:-}
[ "${ONLY_OPS:-0}" = 1 ] && CASES=${CASES:-earn rules redeem hot storage}
[ -n "$CASES" ] && publish=0
want() { [ -z "$CASES" ] || [[ " $CASES " == *" $1 "* ]]; }
if [ "$smoke" = 1 ]; then
    MEMBERS=200; SECS=1; ROUNDS=1; BULK=2000; BULK_MEMBERS=200; TIER_MEMBERS=500
fi
PGBENCH="$PG_BIN/pgbench"
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1)
OUT=bench/out
mkdir -p "$OUT"
rm -f "$OUT"/report.md "$OUT"/chart.png "$OUT"/results.tsv
LOG="$OUT/run.log"; : >"$LOG"

if [ "$build" = 1 ]; then
    ensure_deps
    build_install
fi
# what the bench itself needs (the test suite does not): bc for ratios, gnuplot for the chart
LOYALTY_DEPS=(bc gnuplot-nox)
ensure_deps
cluster_start
"$PG_BIN/createdb" bench
export PGDATABASE=bench
"${PSQL[@]}" -c 'CREATE EXTENSION loyalty'

# results.tsv: case, target text, direction (hi: ratio >= target, lo: ratio <= target,
# mem: growth below target kB, ref: a reference with no target, never met or not met),
# target number, extension figure, floor figure, unit, ratio, note
res() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/results.tsv"; }
ratio() { echo "scale=4; $1 / $2" | bc -l; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
q() { "${PSQL[@]}" -At -c "$1"; }

# ---------------------------------------------------------------- pgbench cases
log "loading $MEMBERS members (4 lots each) and the floor tables"
"${PSQL[@]}" -v members="$MEMBERS" -f bench/ops/setup.sql >/dev/null

failed_tx=0
tps() {  # tps SCRIPT CLIENTS: prints tps; adds failed transactions to failed_tx
    local script=$1 c=$2 out f
    out=$("$PGBENCH" -n -c "$c" -j 2 -T "$SECS" -D members="$MEMBERS" -f "bench/ops/$script" 2>&1) || true
    echo "$out" >>"$LOG"
    f=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
    f=$((${f:-0} + $(grep -c 'ERROR' <<<"$out" || true)))
    failed_tx=$((failed_tx + f))
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -n 1
}

pgbench_case() {  # pgbench_case NAME SCRIPT CLIENTS TARGET
    local name=$1 script=$2 c=$3 target=$4 r e f ext=() flo=()
    failed_tx=0
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            flo+=("$(tps "${script}_floor.sql" "$c")"); ext+=("$(tps "$script.sql" "$c")")
        else
            ext+=("$(tps "$script.sql" "$c")"); flo+=("$(tps "${script}_floor.sql" "$c")")
        fi
        log "$name round $r: extension ${ext[-1]} tps, floor ${flo[-1]} tps"
    done
    e=$(printf '%s\n' "${ext[@]}" | median); f=$(printf '%s\n' "${flo[@]}" | median)
    res "$name" ">= ${target}x" hi "$target" "$e" "$f" tps "$(ratio "$e" "$f")" \
        "$c clients; $failed_tx failed transactions"
}

want earn && pgbench_case "earn, random members" earn "$CLIENTS" 0.85
if ! want rules; then
    :
elif [ -n "$(q "SELECT to_regproc('loyalty.add_rule')")" ]; then
    if "${PSQL[@]}" -f bench/ops/rules_setup.sql >>"$LOG" 2>&1; then
        pgbench_case "earn, 20 rules, 5-line basket" earn_rules "$CLIENTS" 0.7
    else
        res "earn, 20 rules, 5-line basket" ">= 0.7x" hi 0.7 - - tps - \
            "skipped: add_rule rejected the bench's rule definitions (see bench/out/run.log)"
    fi
else
    res "earn, 20 rules, 5-line basket" ">= 0.7x" hi 0.7 - - tps - "skipped: no rules engine"
fi
want redeem && pgbench_case "redeem from 3 lots" redeem "$CLIENTS" 0.8
want hot && pgbench_case "hot member" hot $((CLIENTS * 2)) 0.8

# storage: bytes per earn, ledger + lots with their indexes, against the floor's entry and
# lot tables with theirs. Both sides grow freshly created relations in a database of their
# own: measured on the tables of the other cases, the figure moved with the free space
# those left (the floor's bytes per earn ranged 242 to 364 across runs of the same code).
# A warm-up of a fifth of the earns per side, then VACUUM of the four tables (free-space
# and visibility maps exist on both sides before the count), then ROUNDS rounds of the
# same number of earns per side in alternating order. Bytes per earn: the growth of all
# forks, indexes and TOAST, over the entry rows written (a failed earn lowers nothing).
if want storage; then
sdb=bench_storage
n=$((MEMBERS < 20000 ? 20000 : MEMBERS)); [ "$smoke" = 1 ] && n=1000
per=$(( (n / ROUNDS + 1) / 2 ))   # earns per client per round, 2 clients
"$PG_BIN/createdb" "$sdb"
PGDATABASE=$sdb "${PSQL[@]}" -c 'CREATE EXTENSION loyalty' -v members="$MEMBERS" \
    -f bench/ops/storage_setup.sql >/dev/null
sq() { PGDATABASE=$sdb q "$1"; }
declare -A srel=([ext]="loyalty.entry,loyalty.lot" [floor]="floor_entry,floor_lot")
declare -A srows=([ext]="loyalty.entry" [floor]="floor_entry")
declare -A sscript=([ext]=earn [floor]=earn_floor)
sstate() {  # sstate SIDE: "bytes rows"
    sq "SELECT (SELECT sum(pg_total_relation_size(c)) FROM unnest('{${srel[$1]}}'::regclass[]) c)
               || ' ' || (SELECT count(*) FROM ${srows[$1]})"
}
# the same random seed on both sides: both earn for the same members in the same order, so
# their B-trees split alike (with other members each run, B-tree fill moved the figures by
# several percent from run to run)
searns() {  # searns SIDE EARNS_PER_CLIENT ROUND
    "$PGBENCH" -n -c 2 -j 2 -t "$2" --random-seed="$3" -D members="$MEMBERS" \
        -f "bench/ops/${sscript[$1]}.sql" "$sdb" >>"$LOG" 2>&1
}
declare -A sbytes=([ext]=0 [floor]=0) snrows=([ext]=0 [floor]=0)
searns floor $(( (n / 5 + 1) / 2 )) 1000; searns ext $(( (n / 5 + 1) / 2 )) 1000
sq "VACUUM loyalty.entry, loyalty.lot, floor_entry, floor_lot" >/dev/null
rr=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="floor ext"; else order="ext floor"; fi
    declare -A rb=()
    for sd in $order; do
        read -r b0 c0 < <(sstate "$sd")
        searns "$sd" "$per" "$r"
        read -r b1 c1 < <(sstate "$sd")
        sbytes[$sd]=$((sbytes[$sd] + b1 - b0)); snrows[$sd]=$((snrows[$sd] + c1 - c0))
        rb[$sd]=$(echo "scale=1; ($b1 - $b0) / ($c1 - $c0)" | bc)
    done
    rr+=("$(ratio "${rb[ext]}" "${rb[floor]}")")
    log "storage round $r: extension ${rb[ext]} B/earn, floor ${rb[floor]} B/earn"
done
e=$(echo "${sbytes[ext]} / ${snrows[ext]}" | bc); f=$(echo "${sbytes[floor]} / ${snrows[floor]}" | bc)
sinv=$(sq 'SELECT count(*) FROM loyalty.check_invariants()')
res "storage per earn" "<= 1.3x" lo 1.3 "$e" "$f" "bytes" "$(ratio "$e" "$f")" \
    "${snrows[ext]} and ${snrows[floor]} earns in $ROUNDS alternating rounds on fresh tables (after $((2 * ((n / 5 + 1) / 2))) per side and VACUUM), ledger + lots + indexes; round ratios $(printf '%.3f ' "${rr[@]}"); check_invariants(): $sinv"
"$PG_BIN/dropdb" "$sdb"
fi

# ---------------------------------------------------------------- bulk cases
if want bulk || want expiry || want tiers; then
log "loading bulk data: $BULK purchases over $BULK_MEMBERS members, $TIER_MEMBERS tier members"
"${PSQL[@]}" -v bulk="$BULK" -v bulk_members="$BULK_MEMBERS" -v tier_members="$TIER_MEMBERS" \
    -f bench/bulk/setup.sql >/dev/null
q "CREATE TABLE bench_flag (done boolean NOT NULL); INSERT INTO bench_flag VALUES (false)" >/dev/null
if want expiry || want tiers; then
    "${PSQL[@]}" -f bench/bulk/ledger_floor_setup.sql >/dev/null
fi
# rows written so far, for the same-rows floor's sanity check: expire entries, lot draws,
# closed lots, tier changes, tier_changed events, in the extension's tables (PREFIX loyalty.)
# or the same-rows floor's (PREFIX fl_)
rowcounts() {
    q "SELECT (SELECT count(*) FROM ${1}entry WHERE kind = 'expire') || ' ' ||
              (SELECT count(*) FROM ${1}lot_draw) || ' ' ||
              (SELECT count(*) FROM ${1}lot WHERE state = 'x') || ' ' ||
              (SELECT count(*) FROM ${1}tier_change) || ' ' ||
              (SELECT count(*) FROM ${1}outbox WHERE kind = 'tier_changed')"
}
# rowdiff BEFORE AFTER: the five counts written in between
rowdiff() { local a=($1) b=($2) i o=(); for i in 0 1 2 3 4; do o+=($((b[i] - a[i]))); done; echo "${o[*]}"; }

# timed APPNAME SQLFILE|-c SQL...: runs psql, prints "ms rss0_kB rssmax_kB" on stdout; the
# backend's anonymous RSS (RssAnon: private memory, not shared buffers) is sampled every
# 0.2 s from /proc while it runs. The backend's CPU time (user + system, ms) at the end of
# the session goes to $OUT/APPNAME.cpu (bench/bulk/backend_cpu.sql).
timed() {
    local app=$1; shift
    local t0 t1 pid="" bpid rss r0="" rmax=0 tmp
    tmp=$(mktemp)
    t0=$(now_ms)
    PGAPPNAME=$app "${PSQL[@]}" "$@" -f bench/bulk/backend_cpu.sql >"$tmp" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        bpid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = '$app' LIMIT 1" 2>/dev/null || true)
        if [ -n "$bpid" ] && [ -r "/proc/$bpid/status" ]; then
            rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$bpid/status" 2>/dev/null || true)
            if [ -n "$rss" ]; then
                [ -n "$r0" ] || r0=$rss
                [ "$rss" -le "$rmax" ] || rmax=$rss
            fi
        fi
        sleep 0.2
    done
    wait "$pid" || { cat "$tmp" >&2; rm -f "$tmp"; echo "error: $app failed" >&2; return 1; }
    t1=$(now_ms)
    cat "$tmp" >>"$LOG"; grep -h 'NOTICE' "$tmp" >"$OUT/$app.notice" || true
    sed -n 's/^backend_cpu_ms=//p' "$tmp" >"$OUT/$app.cpu"
    rm -f "$tmp"
    echo "$((t1 - t0)) ${r0:-0} $rmax"
}
mb() { echo "scale=1; $1 / 1024" | bc; }

mem_earn=""; mem_expiry=""
# bulk earn: earn_batch over the staging table, against INSERT ... SELECT
# (the expiry case needs its lots: it runs whenever expiry does)
if want bulk || want expiry; then
log "bulk earn: floor"
read -r fms _ _ < <(timed bench_floor_earn -f bench/bulk/earn_floor.sql)
log "bulk earn: earn_batch"
read -r ems er0 ermax < <(timed bench_earn_batch -c "SELECT count(*) FROM loyalty.earn_batch('bench_staging')")
res "bulk earn ($BULK purchases)" "<= 1.5x" lo 1.5 "$ems" "$fms" ms "$(ratio "$ems" "$fms")" \
    "earn_batch; backend RssAnon $(mb "$er0") -> max $(mb "$ermax") MB"
mem_earn="$er0 $ermax"
fi

# expiry: every purchase's lot is due; run_maintenance in batches against set-based UPDATEs
if want expiry; then
log "expiry: copying the bulk program's members and rows for the same-rows floor"
"${PSQL[@]}" -v program=bulk -f bench/bulk/ledger_floor_load.sql >/dev/null
xe0=$(rowcounts loyalty.); xf0=$(rowcounts fl_)
log "expiry: floor"
read -r fms _ _ < <(timed bench_floor_expiry -f bench/bulk/expiry_floor.sql)
log "expiry: same-rows floor in batches of $MAINT_BATCH"
read -r sms _ _ < <(timed bench_rows_expiry -v now=2026-03-01 -v batch="$MAINT_BATCH" -f bench/bulk/expiry_same_rows.sql)
# the report rollups of the bulk earn's entries are the earn's work, not expiry's: roll them
# up first (the first call records the candidate high-water mark, the second rolls it up)
q "SELECT loyalty.run_rollups()" >/dev/null; q "SELECT loyalty.run_rollups()" >/dev/null
log "expiry: run_maintenance in batches of $MAINT_BATCH, with a lock probe"
q "UPDATE bench_flag SET done = false" >/dev/null
PGAPPNAME=bench_probe "${PSQL[@]}" -v program=bulk -v now=2026-03-01 -f bench/bulk/probe.sql >"$OUT/probe.notice" 2>&1 &
probe=$!
read -r ems xr0 xrmax < <(timed bench_expiry -v now=2026-03-01 -v batch="$MAINT_BATCH" -f bench/bulk/maintain.sql)
q "UPDATE bench_flag SET done = true" >/dev/null
wait "$probe" || true
maxb=$(sed -n 's/.*max_batch_ms=\([0-9.]*\).*/\1/p' "$OUT/bench_expiry.notice")
slow=$(sed -n 's/.*waited_over_100ms=\([0-9]*\).*/\1/p' "$OUT/probe.notice")
locks=$(sed -n 's/.*probe locks=\([0-9]*\).*/\1/p' "$OUT/probe.notice")
maxw=$(sed -n 's/.*max_wait_ms=\([0-9.]*\).*/\1/p' "$OUT/probe.notice")
expired=$(q "SELECT count(*) FROM loyalty.lot l JOIN loyalty.member m ON m.id = l.member_id JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = 'bulk' AND l.state = 'x'")
res "expiry ($BULK lots, $BULK_MEMBERS members)" "<= 1.5x" lo 1.5 "$ems" "$fms" ms "$(ratio "$ems" "$fms")" \
    "$expired lots closed; longest batch ${maxb:-?} ms; probe on the next due member: ${slow:-?} of ${locks:-?} locks waited > 100 ms, longest wait ${maxw:-?} ms; RssAnon $(mb "$xr0") -> max $(mb "$xrmax") MB"
read -r xe_ent xe_drw xe_cls _ _ <<<"$(rowdiff "$xe0" "$(rowcounts loyalty.)")"
read -r xf_ent xf_drw xf_cls _ _ <<<"$(rowdiff "$xf0" "$(rowcounts fl_)")"
maxs=$(sed -n 's/.*max_batch_ms=\([0-9.]*\).*/\1/p' "$OUT/bench_rows_expiry.notice")
same="same rows"
[ "$xe_ent $xe_drw $xe_cls" = "$xf_ent $xf_drw $xf_cls" ] || same="**row counts differ**"
res "expiry vs the same rows in plain SQL (batches of $MAINT_BATCH)" "(reference)" ref - "$ems" "$sms" ms "$(ratio "$ems" "$sms")" \
    "bench/bulk/expiry_same_rows.sql: $xf_ent expire entries, $xf_drw lot draws, $xf_cls lots closed (extension: $xe_ent, $xe_drw, $xe_cls: $same); longest batch ${maxs:-?} ms"
mem_expiry="$xr0 $xrmax"
fi

# tier re-evaluation: promote every tier member in 2025 (earn_batch), review as of 2027
if want tiers; then
log "tiers: promoting $TIER_MEMBERS members"
q "SELECT count(*) FROM loyalty.earn_batch('bench_tier_staging')" >/dev/null
# the report rollups of the promoting purchases are earn_batch's, not the review's: done first
# (twice: a run rolls up to the mark the previous run set)
q "SELECT loyalty.run_rollups()" >/dev/null
q "SELECT loyalty.run_rollups()" >/dev/null
q "VACUUM ANALYZE loyalty.member" >/dev/null
log "tiers: copying the tiers program's members and rows for the same-rows floor"
"${PSQL[@]}" -v program=tiers -f bench/bulk/ledger_floor_load.sql >/dev/null
te0=$(rowcounts loyalty.); tf0=$(rowcounts fl_)
log "tiers: floor"
read -r fms _ _ < <(timed bench_floor_tiers -f bench/bulk/tiers_floor.sql)
log "tiers: same-rows floor in batches of $TIER_BATCH"
read -r sms _ _ < <(timed bench_rows_tiers -v now=2027-01-02 -v batch="$TIER_BATCH" -f bench/bulk/tiers_same_rows.sql)
log "tiers: run_maintenance in batches of $TIER_BATCH"
read -r ems tr0 trmax < <(timed bench_tiers -v now=2027-01-02 -v batch="$TIER_BATCH" -f bench/bulk/maintain.sql)
based=$(q "SELECT count(*) FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id JOIN loyalty.tier t ON t.id = m.tier_id WHERE p.code = 'tiers' AND t.code = 'base'")
maxt=$(sed -n 's/.*max_batch_ms=\([0-9.]*\).*/\1/p' "$OUT/bench_tiers.notice")
res "tier re-evaluation ($TIER_MEMBERS members)" "<= 1.5x" lo 1.5 "$ems" "$fms" ms "$(ratio "$ems" "$fms")" \
    "$based of $TIER_MEMBERS members back to base; batches of $TIER_BATCH, longest ${maxt:-?} ms; RssAnon $(mb "$tr0") -> max $(mb "$trmax") MB; backend CPU $(cat "$OUT/bench_tiers.cpu") ms, floor's $(cat "$OUT/bench_floor_tiers.cpu") ms"
read -r te_ent te_drw _ te_chg te_evt <<<"$(rowdiff "$te0" "$(rowcounts loyalty.)")"
read -r _ _ _ tf_chg tf_evt <<<"$(rowdiff "$tf0" "$(rowcounts fl_)")"
maxs=$(sed -n 's/.*max_batch_ms=\([0-9.]*\).*/\1/p' "$OUT/bench_rows_tiers.notice")
same="same rows"
[ "$te_chg $te_evt" = "$tf_chg $tf_evt" ] || same="**row counts differ**"
# run_maintenance as of 2027-01-02 would also expire anything else due by then; the
# pgbench members' lots are dated so that nothing is (bench/ops/setup.sql): the note
# shows what the extension's run expired besides the reviews (0 expected)
res "tier re-evaluation vs the same rows in plain SQL (batches of $TIER_BATCH)" "(reference)" ref - "$ems" "$sms" ms "$(ratio "$ems" "$sms")" \
    "bench/bulk/tiers_same_rows.sql: $tf_chg tier changes, $tf_evt tier_changed events (extension: $te_chg, $te_evt: $same); longest batch ${maxs:-?} ms; backend CPU $(cat "$OUT/bench_rows_tiers.cpu") ms; expire entries and draws written by the extension's run besides the reviews: $te_ent and $te_drw"
fi

# memory: growth of the backend's private memory over the bulk earn and the expiry
for m in "bulk earn:$mem_earn" "expiry:$mem_expiry"; do
    [ -n "${m#*:}" ] || continue
    read -r r0 rmax <<<"${m#*:}"
    res "memory, ${m%%:*}" "flat (< +64 MB)" mem 65536 "$rmax" "$r0" "kB" "$(ratio "$rmax" "$((r0 > 0 ? r0 : 1))")" \
        "backend RssAnon, max during the run / at its start: grew $(mb $((rmax - r0))) MB"
done
fi   # bulk cases

invariants=$(q 'SELECT count(*) FROM loyalty.check_invariants()')

# ---------------------------------------------------------------- report and chart
verdict() {  # verdict DIR TARGET RATIO NOTE EXT FLOOR
    case $4 in skipped*) echo "skipped"; return ;; esac
    if [ "$1" = ref ]; then echo "reference"; return; fi
    if [ "$1" = mem ]; then
        [ "$(echo "$6 - $5 < $2" | bc -l)" = 1 ] && echo "met" || echo "**not met**"
    elif [ "$1" = hi ]; then
        [ "$(echo "$3 >= $2" | bc -l)" = 1 ] && echo "met" || echo "**not met**"
    else
        [ "$(echo "$3 <= $2" | bc -l)" = 1 ] && echo "met" || echo "**not met**"
    fi
}
{
    echo "# loyalty benchmark: each case against its plain-SQL floor"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/Mem:/ {print $2}') GiB;"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), fsync off, shared_buffers 128MB (scripts/lib.sh)."
    echo "Sizes: $MEMBERS members, $CLIENTS clients, ${SECS}s x $ROUNDS alternating rounds per side (pgbench cases);"
    echo "$BULK purchases over $BULK_MEMBERS members, $TIER_MEMBERS tier members, maintenance batches of $MAINT_BATCH members (bulk cases)."
    [ "$smoke" = 1 ] && echo && echo "**Smoke run (tiny sizes): checks that the cases run; the numbers mean nothing.**"
    echo
    echo "| case | target | extension | floor | ratio | verdict | notes |"
    echo "|---|---|---:|---:|---:|---|---|"
    while IFS=$'\t' read -r name ttext dir tnum e f unit r note; do
        if [ "$r" = - ]; then
            echo "| $name | $ttext | - | - | - | skipped | $note |"
        else
            printf '| %s | %s | %s %s | %s %s | %.3fx | %s | %s |\n' "$name" "$ttext" "$e" "$unit" "$f" "$unit" \
                "$r" "$(verdict "$dir" "$tnum" "$r" "$note" "$f" "$e")" "$note"
        fi
    done <"$OUT/results.tsv"
    echo
    echo "Ratios: tps cases are extension / floor (higher is better); time, bytes and memory cases are"
    echo "extension / floor (lower is better). check_invariants() after the run: $invariants violations."
    echo "Rows with the target \"(reference)\" compare the extension with plain SQL that writes the same rows"
    echo "in the same batches (bench/bulk/*_same_rows.sql on copies of its tables): no target, no verdict."
    echo
    echo "![ratio per case against its target](chart.png)"
} >"$OUT/report.md"

# chart: one bar per case (its ratio), its target as a mark; the same-rows references as grey
# bars without a mark
awk -F'\t' '$8 != "-" && $3 != "mem" {i++; n = $1; sub(/ vs the same rows in plain SQL.*/, " vs the same rows", n)
    printf "%d\t\"%s\"\t%s\t%s\t%s\n", i, n, $8, ($3 == "ref" ? 0 : $4), ($3 == "hi" ? 1 : $3 == "ref" ? 3 : 2)}' \
    "$OUT/results.tsv" >"$OUT/chart.dat"
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP 2>>"$LOG" || log "gnuplot failed (see $LOG)"
set terminal pngcairo size 1100,560 noenhanced font 'sans,9'
set output '$OUT/chart.png'
set title 'loyalty vs plain-SQL floor: ratio per case (bars) and target (red marks)'
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set offsets 0, 0, graph 0.3, 0   # headroom for the key
set ylabel 'extension / floor'
set xtics rotate by -25 left
set grid ytics
set key top left
plot '$OUT/chart.dat' using 1:(\$5 == 1 ? \$3 : 1/0):xtic(2) with boxes lc rgb '#4a7ebb' title 'throughput ratio (higher is better)', \
     '' using 1:(\$5 == 2 ? \$3 : 1/0) with boxes lc rgb '#e0a030' title 'time / bytes / memory ratio (lower is better)', \
     '' using 1:(\$5 == 3 ? \$3 : 1/0) with boxes lc rgb '#a0a0a0' title 'against the same rows in plain SQL (reference, no target)', \
     '' using 1:(\$5 == 3 ? 1/0 : \$4) with points pt 7 ps 1.5 lc rgb 'red' title 'target', \
     '' using 1:3:(sprintf('%.2f', \$3)) with labels offset 0,0.8 notitle
GP
else
    log "gnuplot not installed: no chart"
fi

cat "$OUT/report.md"
if [ "$publish" = 1 ]; then
    mkdir -p docs/bench
    cp "$OUT/report.md" docs/bench/report.md
    [ -f "$OUT/chart.png" ] && cp "$OUT/chart.png" docs/bench/chart.png
    log "published to docs/bench/report.md and docs/bench/chart.png"
fi
[ "$invariants" = 0 ]
