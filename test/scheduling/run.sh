#!/usr/bin/env bash
# test/scheduling/run.sh: run_maintenance on a schedule, from pg_cron and from the built-in
# background worker. Each part starts its own throwaway cluster (scripts/lib.sh
# cluster_start with LOYALTY_EXTRA_CONF), because both need shared_preload_libraries.
#
#   1. pg_cron: shared_preload_libraries = 'pg_cron,loyalty' and no loyalty.* setting:
#      no maintenance worker exists and due lots stay due; then
#      cron.schedule('* * * * *', 'CALL loyalty.maintain()') expires them (within ~1 min);
#      the job run succeeded, balances are exact, check_invariants() is clean.
#   2. the worker: loyalty.maintenance_database set, interval 0: the worker is there but
#      idle (nothing expires); interval 1 s by ALTER SYSTEM + reload (SIGHUP): it expires
#      everything while two sessions CALL loyalty.maintain() concurrently and pg_cron may
#      run too: every lot expired exactly once, invariants clean, the log says what it did;
#      the extension dropped: errors are logged and retried with a growing backoff, and
#      maintenance resumes when it is back; pg_terminate_backend (SIGTERM) stops it and
#      the postmaster starts it again.
#
# Needs pg_cron (Debian postgresql-15-cron, in LOYALTY_DEPS). When PG_BIN is a private
# copy of PostgreSQL without it, pg_cron's files are copied there from the system install.
# Run as the "scheduling" stage of scripts/test.sh, or alone:
#   PG_BIN=... LOYALTY_PGPORT=... bash test/scheduling/run.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
unset PGHOST PGPORT PGDATABASE
fail=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fail=1; }
q()    { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$@"; }
wait_for() {  # wait_for DB SECONDS SQL: until the query returns t
    local db=$1 secs=$2 sql=$3 i
    for ((i = 0; i < secs * 4; i++)); do
        [ "$(q "$db" -c "$sql" 2>/dev/null)" = t ] && return 0
        sleep 0.25
    done
    return 1
}
log_has() { grep -q -- "$1" "$LOYALTY_SERVER_LOG"; }

# pg_cron in the PostgreSQL we test against
pkglib=$("$PG_CONFIG" --pkglibdir) share=$("$PG_CONFIG" --sharedir)
if [ ! -f "$pkglib/pg_cron.so" ] && [ -f /usr/lib/postgresql/15/lib/pg_cron.so ] &&
   [ "$pkglib" != /usr/lib/postgresql/15/lib ]; then
    log "copying pg_cron from /usr/lib/postgresql/15 into $pkglib"
    cp /usr/lib/postgresql/15/lib/pg_cron.so "$pkglib/" &&
        cp /usr/share/postgresql/15/extension/pg_cron* "$share/extension/" || true
fi
have_cron=1
if [ ! -f "$pkglib/pg_cron.so" ]; then
    bad "pg_cron is not installed in $pkglib (apt-get install postgresql-15-cron)"
    have_cron=0
fi

n1=200 n2=1000
due_left="SELECT count(*) = 0 FROM loyalty.member WHERE next_transition_at <= now()"
exact() {  # exact DB N: balances and ledger after maintenance
    local db=$1 n=$2 got
    got=$(q "$db" -c "SELECT sum(expired) || '/' || sum(available) || '/' ||
                             (SELECT count(*) FROM loyalty.entry WHERE kind = 'expire') || '/' ||
                             (SELECT count(*) FROM loyalty.check_invariants())
                        FROM loyalty.member")
    if [ "$got" = "$((n * (n + 1) / 2))/$((5 * n))/$n/0" ]; then
        ok "$db: expired $((n * (n + 1) / 2)) points in $n expire entries (one per member), $((5 * n)) left, invariants clean"
    else
        bad "$db: expired/available/expire entries/invariant violations = $got, expected $((n * (n + 1) / 2))/$((5 * n))/$n/0"
    fi
}

# ---------------------------------------------------------------------------
# 1. pg_cron
# ---------------------------------------------------------------------------
if [ "$have_cron" = 1 ]; then
    echo "-- pg_cron (cluster with shared_preload_libraries = 'pg_cron,loyalty', loyalty unconfigured)"
    LOYALTY_EXTRA_CONF="shared_preload_libraries = 'pg_cron,loyalty'
cron.database_name = 'loyalty_cron'
cron.host = '@SOCK@'
max_worker_processes = 16" cluster_start || exit 1
    "$PG_BIN/createdb" loyalty_cron
    q loyalty_cron -c "CREATE EXTENSION loyalty" -v n=$n1 -f "$here/setup.sql" >/dev/null || bad "setup"
    sleep 2
    if [ "$(q loyalty_cron -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'loyalty maintenance'")" = 0 ] &&
       [ "$(q loyalty_cron -c "SELECT count(*) FROM loyalty.member WHERE expired > 0")" = 0 ]; then
        ok "loyalty preloaded but unconfigured: no maintenance worker, due lots untouched"
    else
        bad "loyalty preloaded but unconfigured: a worker runs or something expired"
    fi
    q loyalty_cron -c "CREATE EXTENSION pg_cron" \
      -c "SELECT cron.schedule('loyalty-maintenance', '* * * * *', 'CALL loyalty.maintain()')" >/dev/null ||
        bad "cron.schedule"
    t0=$(now_ms)
    if wait_for loyalty_cron 90 "$due_left"; then
        ok "pg_cron ran CALL loyalty.maintain() after $(( ($(now_ms) - t0) / 1000 )) s"
    else
        bad "pg_cron did not run maintenance within 90 s"
        q loyalty_cron -c "SELECT status, return_message FROM cron.job_run_details" | tail -n 5
    fi
    wait_for loyalty_cron 10 "SELECT count(*) > 0 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')" || true
    st=$(q loyalty_cron -c "SELECT string_agg(DISTINCT status || ' ' || return_message, ', ') FROM cron.job_run_details
                             WHERE status IN ('succeeded', 'failed')")
    [ "$st" = "succeeded CALL" ] && ok "cron.job_run_details: $st" || bad "cron.job_run_details: $st"
    exact loyalty_cron $n1
    cluster_stop
fi

# ---------------------------------------------------------------------------
# 2. the background worker
# ---------------------------------------------------------------------------
echo "-- background worker (shared_preload_libraries = '${have_cron:+pg_cron,}loyalty')"
pre="'loyalty'"
[ "$have_cron" = 1 ] && pre="'pg_cron,loyalty'"
LOYALTY_EXTRA_CONF="shared_preload_libraries = $pre
loyalty.maintenance_database = 'loyalty_bgw'
loyalty.maintenance_interval = 0
cron.database_name = 'loyalty_bgw'
cron.host = '@SOCK@'
max_worker_processes = 16" cluster_start || exit 1
data=$LOYALTY_CLUSTER_DIR/data
# the worker starts with the cluster; its database does not exist yet (FATAL, retried):
# create it, then restart so that it connects at once
"$PG_BIN/createdb" loyalty_bgw
q loyalty_bgw -c "CREATE EXTENSION loyalty" -v n=$n2 -f "$here/setup.sql" >/dev/null || bad "setup"
as_pg "$PG_BIN/pg_ctl" -D "$data" -w -m fast restart -l "$LOYALTY_SERVER_LOG" >/dev/null || bad "restart"
if wait_for loyalty_bgw 10 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'loyalty maintenance'"; then
    sleep 2
    if [ "$(q loyalty_bgw -c "SELECT count(*) FROM loyalty.member WHERE expired > 0")" = 0 ]; then
        ok "interval 0: the worker is connected and idle, due lots untouched"
    else
        bad "interval 0: something expired"
    fi
else
    bad "no loyalty maintenance worker in pg_stat_activity"; tail -n 20 "$LOYALTY_SERVER_LOG"
fi

[ "$have_cron" = 1 ] && q loyalty_bgw -c "CREATE EXTENSION pg_cron" \
    -c "SELECT cron.schedule('loyalty-maintenance', '* * * * *', 'CALL loyalty.maintain(now(), 11)')" >/dev/null
# SIGHUP: interval 1 s, small batches; two sessions run maintenance at the same time
q loyalty_bgw -c "ALTER SYSTEM SET loyalty.maintenance_batch_size = 50" \
    -c "ALTER SYSTEM SET loyalty.maintenance_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
pids=()
for s in 1 2; do
    ( for _ in $(seq 1 15); do q loyalty_bgw -c "CALL loyalty.maintain(now(), 7)" || exit 1; done ) &
    pids+=($!)
done
manual_ok=1
for p in "${pids[@]}"; do wait "$p" || manual_ok=0; done
[ "$manual_ok" = 1 ] && ok "two sessions ran CALL loyalty.maintain() 15 times each beside the worker, no error" ||
    bad "a concurrent CALL loyalty.maintain() failed"
if wait_for loyalty_bgw 60 "$due_left"; then
    ok "nothing due is left"
else
    bad "due lots left after 60 s"
fi
exact loyalty_bgw $n2
log_has "loyalty maintenance interval is now 1 s" && ok "SIGHUP: the worker took the new interval" ||
    bad "no 'interval is now 1 s' in the log"
if log_has 'loyalty maintenance: {"members": '; then
    ok "the worker logged its runs, e.g. $(grep -o 'loyalty maintenance: {.*' "$LOYALTY_SERVER_LOG" | head -n 1)"
else
    bad "no maintenance run of the worker in the log (the manual sessions may have done everything)"
fi

# errors: the extension dropped, the worker backs off; back again, it resumes
q loyalty_bgw -c "DROP EXTENSION loyalty CASCADE" >/dev/null
for _ in $(seq 1 60); do log_has "failed (2 in a row), retrying in 4 s" && break; sleep 0.25; done
# (a run that overlaps the DROP may fail on a missing table instead: any failure counts)
if log_has "failed (1 in a row), retrying in 2 s: " &&
   log_has "in a row), retrying in [0-9]* s: extension loyalty is not installed in database" &&
   log_has "failed (2 in a row), retrying in 4 s"; then
    ok "extension dropped: the worker logs $(grep -o 'failed ([0-9]* in a row).*not installed.*' "$LOYALTY_SERVER_LOG" | head -n 1), backing off 2 s, then 4 s"
else
    bad "no backoff after errors"; grep loyalty "$LOYALTY_SERVER_LOG" | tail -n 10
fi
q loyalty_bgw -c "CREATE EXTENSION loyalty" -v n=20 -f "$here/setup.sql" >/dev/null
for _ in $(seq 1 80); do log_has "loyalty maintenance succeeded again" && break; sleep 0.25; done
if log_has "loyalty maintenance succeeded again" && wait_for loyalty_bgw 10 "$due_left"; then
    ok "$(grep -o 'loyalty maintenance succeeded again.*' "$LOYALTY_SERVER_LOG" | head -n 1); the new members' lots expired"
    exact loyalty_bgw 20
else
    bad "maintenance did not resume after the extension came back"
fi

# SIGTERM: the worker stops; the postmaster starts it again (bgw_restart_time 10 s)
q loyalty_bgw -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'loyalty maintenance'" >/dev/null
if wait_for loyalty_bgw 5 "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'loyalty maintenance'" &&
   wait_for loyalty_bgw 20 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'loyalty maintenance'"; then
    ok "SIGTERM stops the worker; the postmaster restarts it"
else
    bad "the worker did not stop on SIGTERM or did not come back"
fi
if grep -E 'TRAP:|terminated by signal [0-9]+: (Segm|Abort)|PANIC' "$LOYALTY_SERVER_LOG"; then
    bad "the server log shows a crash"
fi
t0=$(now_ms)
cluster_stop
ok "cluster stopped in $(( $(now_ms) - t0 )) ms"

[ "$fail" = 0 ] && echo "scheduling: passed" || echo "scheduling: FAILED"
exit "$fail"
