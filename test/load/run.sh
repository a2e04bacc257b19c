#!/usr/bin/env bash
# Concurrent load and crash safety (issue 9). Starts a throwaway cluster (scripts/lib.sh),
# loads two programs with tiers and expiry and their members (test/load/setup.sql), then:
#
#   1. load     CLIENTS pgbench sessions for LOAD_SECS doing mixed operations on overlapping
#               members (earn, award, redeem, refund, transfer, replays and bad replays of
#               earlier keys; test/load/load.sql -> lt.step). Each client journals every
#               outcome after the call returned. Checks: no serialization/deadlock error and
#               no failed or aborted client; the journal and the ledger agree (every
#               acknowledged call once, as its receipt said; nothing nobody asked for);
#               check_invariants() is empty; nothing half-done.
#   2. crash A  the same load plus a loop of run_maintenance(business now) for a few
#               seconds, then `pg_ctl stop -m immediate`, restart, checks.
#      crash B  earn_batch over BULK purchases (one transaction) killed midway: none of it
#               may be visible after restart.
#      crash C  CALL loyalty.maintain(far future, small batches) with the load running,
#               killed midway; after restart maintenance completes the rest, and a second
#               run right after finds nothing left to do.
#   3. prints "N passed, M failed" (N/M = checks) and exits non-zero on any failure.
#
#   bash test/load/run.sh          # CI size: 6 clients x 20 s, 20000 members, under 3 minutes
#   bash test/load/run.sh --long   # 16 clients x 300 s, 100000 members, bigger bulk and crashes
#   MEMBERS, HOT, CLIENTS, LOAD_SECS, CRASH_SECS, BULK override either size.
#
# Environment: LOYALTY_PGPORT (default 54341; names the unix socket only, no TCP),
# LOYALTY_KEEP_CLUSTER=1 to keep the data directory. Needs the extension installed.
#
# Durability settings. lib.sh runs clusters with fsync, full_page_writes and
# synchronous_commit off, which is fine for functional tests and wrong here:
#  - synchronous_commit = off lets COMMIT return before its WAL is written out of the
#    server's own WAL buffers, so an immediate stop (which discards shared memory) loses
#    acknowledged transactions. It must be on for "acknowledged => in the ledger" to hold.
#  - fsync and full_page_writes matter only if the operating system itself crashes: an
#    immediate stop kills the server processes, but what they wrote stays in the kernel's
#    page cache and reaches the disk anyway. This test cannot crash the OS, so with them off
#    it would still pass; we turn them on anyway so the cluster runs as production would
#    and the throughput printed is that of durable commits.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$HERE/../../scripts/lib.sh"

MODE=ci
case "${1:-}" in
    --long) MODE=long ;;
    "") ;;
    *) echo "usage: $0 [--long]" >&2; exit 2 ;;
esac
# sizes (each can be set in the environment)
if [ "$MODE" = long ]; then
    : "${MEMBERS:=100000}" "${HOT:=5000}" "${CLIENTS:=16}" "${LOAD_SECS:=300}" "${CRASH_SECS:=30}" "${BULK:=100000}"
else
    : "${MEMBERS:=20000}" "${HOT:=600}" "${CLIENTS:=6}" "${LOAD_SECS:=20}" "${CRASH_SECS:=6}" "${BULK:=20000}"
fi
JOBS=$(nproc 2>/dev/null || echo 2); [ "$JOBS" -gt "$CLIENTS" ] && JOBS=$CLIENTS
HOT=$(( HOT / 2 * 2 ))   # even, so a transfer partner two indexes away is in the same program
# business time: 3 days per real second from 2026-11-20, so pending points are released,
# one-month lots expire and a year end (tier reviews) passes while the test runs
SPEED=259200
BASE="'2026-11-20 00:00+00'"

export LOYALTY_PGPORT=${LOYALTY_PGPORT:-54341}
PGBENCH="$PG_BIN/pgbench"
T_START=$(now_ms)
passed=0
failed=0
CRASHES=0
OPS_TOTAL=0

ok()   { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
# check NAME VALUE EXPECTED [DETAIL]
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got $2, expected $3${4:+ ($4)}"; fi; }
finish() {
    log "total $(( ($(now_ms) - T_START) / 1000 )) s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && exit 0 || exit 1
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

if ! cluster_start; then
    echo "0 passed, 1 failed"; exit 1
fi
DATA=$LOYALTY_CLUSTER_DIR/data
WORK=$LOYALTY_CLUSTER_DIR/work
mkdir -p "$WORK"; chmod 777 "$WORK"
export PGDATABASE=loyalty_load

pg_restart_clean() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 120 restart -l "$LOYALTY_SERVER_LOG" >/dev/null; }
pg_kill()  { as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1; }
pg_start() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" -w -t 300 start -l "$LOYALTY_SERVER_LOG" >/dev/null; }

# ---------------------------------------------------------------- durable cluster
q -d postgres -c 'ALTER SYSTEM SET fsync = on' -c 'ALTER SYSTEM SET full_page_writes = on' \
  -c 'ALTER SYSTEM SET synchronous_commit = on' -c "ALTER SYSTEM SET max_connections = 100" \
  -c 'ALTER SYSTEM SET log_min_messages = log'
if ! pg_restart_clean; then fail "cluster restarts with durable settings"; finish; fi
check "cluster runs with fsync, full_page_writes and synchronous_commit on" \
    "$(q -d postgres -c "SELECT string_agg(setting, ',' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit')")" \
    "on,on,on"

# ---------------------------------------------------------------- setup
createdb -h "$PGHOST" -U postgres loyalty_load || { fail "createdb"; finish; }
t=$(now_ms)
log "setup: 2 programs, $MEMBERS members, one seed purchase each"
if ! q -v members="$MEMBERS" -v base="$BASE" -v speed="$SPEED" -f "$HERE/setup.sql" >/dev/null ||
   ! q -f "$HERE/verify.sql" >/dev/null; then
    fail "setup"; finish
fi
# one committed purchase per member at the start of business time: every member has a lot
# to release and expire later (maintenance work for crash C)
q -c "SELECT count(loyalty.earn(member_id, 20 + idx % 50, 'seed-' || idx, (SELECT base FROM lt.clock))) FROM lt.mem" >/dev/null ||
    { fail "seed purchases"; finish; }
q -c 'VACUUM ANALYZE' >/dev/null
log "setup took $(( ($(now_ms) - t) / 1000 )) s"

# verify PHASE ALLOWED: run lt.verify and count each check
verify() {
    local phase=$1 allowed=$2 line name bad example
    while IFS='|' read -r name bad example; do
        [ -n "$name" ] || continue
        if [ "$bad" = -1 ]; then printf '    %s: %s: %s\n' "$phase" "$name" "$example"; continue; fi
        check "$phase: $name" "$bad" 0 "$example"
    done < <(q -c "SELECT name, bad, coalesce(example, '') FROM lt.verify($allowed)" 2>&1 || echo "lt.verify() ran|error|")
}

# pgbench_summary FILE: "processed failed retried aborted"
pgbench_summary() {
    local f=$1 processed failed_tx retried aborted
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f" | head -1)
    failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$f" | head -1)
    retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$f" | head -1)
    aborted=$(grep -c 'aborted in command' "$f")
    echo "${processed:-0} ${failed_tx:-?} ${retried:-0} $aborted"
}

# ---------------------------------------------------------------- 1. load
log "1. load: $CLIENTS clients x $LOAD_SECS s on $HOT overlapping members (5 hot ones)"
"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$LOAD_SECS" --max-tries=10 \
    -D phase=L -D hot="$HOT" -f "$HERE/load.sql" >"$WORK/load.out" 2>&1
rc=$?
read -r processed failed_tx retried aborted < <(pgbench_summary "$WORK/load.out")
tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/load.out" | head -1)
check "load: pgbench exits 0" "$rc" 0 "$(grep -m3 -i 'error\|abort' "$WORK/load.out" | tr '\n' ' ')"
check "load: no client aborted (only documented errors reach a caller)" "$aborted" 0 \
    "$(grep -m1 'aborted in command' "$WORK/load.out")"
check "load: no failed transaction" "$failed_tx" 0
check "load: no serialization or deadlock retry" "$retried" 0
journal_n=$(q -c "SELECT count(*) FROM lt.journal WHERE phase = 'L'")
check "load: one journal row per completed step" "$journal_n" "$processed"
OPS_TOTAL=$((OPS_TOTAL + processed))
q -c "SELECT op, sqlstate, count(*) FROM lt.journal WHERE phase = 'L' GROUP BY 1, 2 ORDER BY 1, 2" |
    awk -F'|' '{printf "%s %s %s; ", $1, $2, $3} END {print ""}' | sed 's/^/    outcomes: /'
printf '    load: %s operations in %s s by %s sessions: %s operations/s\n' "$processed" "$LOAD_SECS" "$CLIENTS" "${tps%.*}"
verify load 0

# ---------------------------------------------------------------- crash helpers
UNJOURNALED=0     # calls that may have committed without their journal row (one per client per crash)
EXT_LINE=0

# start_load PHASE SECS: background pgbench with the file journal
start_load() {
    : >"$WORK/ext.$1"; chmod 666 "$WORK/ext.$1"
    "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$2" --max-tries=10 \
        -D phase="$1" -D hot="$HOT" -D extfile="$WORK/ext.$1" -f "$HERE/crash.sql" >"$WORK/$1.out" 2>&1 &
    LOAD_PID=$!
}
# start_maint_loop PHASE: run_maintenance(business now, 500 members) again and again
start_maint_loop() {
    ( while q -c "SELECT loyalty.run_maintenance(lt.bnow(), 500)" >>"$WORK/maint.$1" 2>/dev/null; do :; done ) &
    MAINT_PID=$!
}
# crash PHASE: kill the server the hard way, restart it, load the file journal
crash() {
    local phase=$1 state
    if [ -n "${LOAD_PID:-}" ]; then
        check "$phase: the load was running when the server was killed" \
            "$(kill -0 "$LOAD_PID" 2>/dev/null && echo yes || echo no)" yes
    fi
    pg_kill
    state=$(as_pg "$PG_BIN/pg_controldata" -D "$DATA" | sed -n 's/^Database cluster state: *//p')
    check "$phase: the server was killed without a shutdown checkpoint" "$state" "in production"
    CRASHES=$((CRASHES + 1))
    [ -n "${LOAD_PID:-}" ] && { wait "$LOAD_PID" 2>/dev/null; LOAD_PID=; }
    [ -n "${MAINT_PID:-}" ] && { wait "$MAINT_PID" 2>/dev/null; MAINT_PID=; }
    if ! pg_start; then
        fail "$phase: the server restarts after the crash"; tail -20 "$LOYALTY_SERVER_LOG"; finish
    fi
    ok "$phase: the server restarts after the crash"
}
load_ext() {
    local f="$WORK/ext.$1" n
    [ -s "$f" ] || { echo 0; return; }
    n=$(awk -v base="$EXT_LINE" '{print base + NR "," $0}' "$f" | q -c "\copy lt.ext FROM STDIN (FORMAT csv)" && wc -l <"$f")
    EXT_LINE=$((EXT_LINE + n))
    echo "$n"
}
# maint_twice PHASE NOW: maintenance after restart does the rest, then nothing
maint_twice() {
    local phase=$1 now=$2 r1 r2
    r1=$(q -c "SELECT loyalty.run_maintenance($now)")
    r2=$(q -c "SELECT loyalty.run_maintenance($now)")
    printf '    %s: maintenance after restart: %s; again: %s\n' "$phase" "$r1" "$r2"
    check "$phase: a second maintenance run right after expires and releases nothing" \
        "$(q -c "SELECT (('$r2'::jsonb)->>'expire_entries')::int + (('$r2'::jsonb)->>'expired_lots')::int + (('$r2'::jsonb)->>'released_lots')::int")" 0 "$r2"
    while IFS='|' read -r name bad example; do
        check "$phase: $name" "$bad" 0 "$example"
    done < <(q -c "SELECT name, bad, coalesce(example, '') FROM lt.due($now)")
    MAINT_R1=$r1
}

# ---------------------------------------------------------------- 2A. crash mid-load
log "2A. crash mid-load: $CLIENTS clients + a maintenance loop, killed after $CRASH_SECS s"
start_load CA 600     # killed by the crash long before
start_maint_loop CA
sleep "$CRASH_SECS"
jbefore=$(q -c "SELECT count(*) FROM lt.journal WHERE phase = 'CA'")
maint_runs=$(wc -l <"$WORK/maint.CA")
maint_alive=$(kill -0 "$MAINT_PID" 2>/dev/null && echo yes || echo no)
crash CA
check "CA: operations were acknowledged before the crash" "$( [ "$jbefore" -gt 0 ] && echo yes || echo "no ($jbefore)")" yes
check "CA: the maintenance loop was running when the server was killed" "$maint_alive" yes "$maint_runs runs done"
n=$(load_ext CA); jn=$(q -c "SELECT count(*) FROM lt.journal WHERE phase = 'CA'")
printf '    CA: %s calls acknowledged (file journal), %s in the journal table, %s maintenance runs\n' "$n" "$jn" "$maint_runs"
OPS_TOTAL=$((OPS_TOTAL + n))
UNJOURNALED=$((UNJOURNALED + CLIENTS))
verify CA "$UNJOURNALED"
T_CA=$(q -c "SELECT quote_literal(lt.bnow())")
maint_twice CA "$T_CA"
verify CA-after-maintenance "$UNJOURNALED"

# ---------------------------------------------------------------- 2B. crash mid-bulk
log "2B. crash mid-bulk: earn_batch over $BULK purchases (one transaction), killed midway"
q -c "CREATE TABLE lt.bulk AS SELECT m.member_id AS member, 7::numeric AS amount,
                                     'bulk-' || m.idx AS idempotency_key, lt.bnow() AS at
                                FROM lt.mem m WHERE m.idx <= $BULK"
seq0=$(q -c "SELECT last_value FROM loyalty.entry_id_seq")
q -c "SELECT count(*) FROM loyalty.earn_batch('lt.bulk')" >"$WORK/bulk.out" 2>&1 &
BULK_PID=$!
target=$((BULK / 3)); progress=0
for _ in $(seq 1 600); do
    progress=$(( $(q -c "SELECT last_value FROM loyalty.entry_id_seq") - seq0 ))
    [ "$progress" -ge "$target" ] && break
    kill -0 "$BULK_PID" 2>/dev/null || break
    sleep 0.1
done
running=$(kill -0 "$BULK_PID" 2>/dev/null && echo yes || echo no)
crash CB
wait "$BULK_PID" 2>/dev/null
check "CB: the bulk transaction was still running when the server was killed" "$running" yes "progress $progress"
printf '    CB: killed after %s of %s earns\n' "$progress" "$BULK"
verify CB "$UNJOURNALED"
# the same bulk again, committed: its keys are free (nothing of the killed one is left), and
# every member now has a lot for crash C's maintenance to expire
t=$(now_ms)
check "CB: the same bulk, run again and committed, writes every earn anew" \
    "$(q -c "SELECT count(*) FILTER (WHERE NOT replayed) || '/' || count(*)
               FROM loyalty.earn_batch('lt.bulk')")" "$BULK/$BULK"
printf '    CB: committed bulk of %s earns in %s ms\n' "$BULK" "$(( $(now_ms) - t ))"
q -c "UPDATE lt.state SET bulk_committed = $BULK"
verify CB-committed "$UNJOURNALED"

# ---------------------------------------------------------------- 2C. crash mid-maintenance
T_FAR=$(q -c "SELECT quote_literal(lt.bnow() + interval '400 days')")
due0=$(q -c "SELECT count(*) FROM loyalty.member WHERE next_transition_at <= $T_FAR")
log "2C. crash mid-maintenance: CALL maintain($T_FAR, 100) over $due0 members, with the load"
start_load CC 600
sleep 1
q -c "CALL loyalty.maintain($T_FAR, 100)" >"$WORK/maintain.out" 2>&1 &
MAINT_PID=$!
due=$due0
for _ in $(seq 1 1200); do
    due=$(q -c "SELECT count(*) FROM loyalty.member WHERE next_transition_at <= $T_FAR")
    [ "$due" -le $((due0 * 2 / 3)) ] && break
    kill -0 "$MAINT_PID" 2>/dev/null || break
    sleep 0.1
done
running=$(kill -0 "$MAINT_PID" 2>/dev/null && echo yes || echo no)
crash CC
check "CC: maintain was still running when the server was killed" "$running" yes "$due of $due0 members due"
printf '    CC: killed with %s of %s members still due\n' "$due" "$due0"
n=$(load_ext CC); jn=$(q -c "SELECT count(*) FROM lt.journal WHERE phase = 'CC'")
check "CC: operations were acknowledged before the crash" "$( [ "$n" -gt 0 ] && echo yes || echo "no ($n)")" yes
printf '    CC: %s calls acknowledged (file journal), %s in the journal table\n' "$n" "$jn"
OPS_TOTAL=$((OPS_TOTAL + n))
UNJOURNALED=$((UNJOURNALED + CLIENTS))
verify CC "$UNJOURNALED"
maint_twice CC "$T_FAR"
check "CC: maintenance after the restart had work left (the crash was mid-maintenance)" \
    "$(q -c "SELECT (('$MAINT_R1'::jsonb)->>'members')::int > 0")" t
verify CC-after-maintenance "$UNJOURNALED"

# ---------------------------------------------------------------- summary
entries=$(q -c "SELECT count(*) FROM loyalty.entry")
printf '    summary: %s acknowledged operations by %s sessions, %s crashes survived, %s ledger entries, %s s\n' \
    "$OPS_TOTAL" "$CLIENTS" "$CRASHES" "$entries" "$(( ($(now_ms) - T_START) / 1000 ))"
finish
