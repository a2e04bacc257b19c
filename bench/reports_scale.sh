#!/usr/bin/env bash
# Scale measurement of the reporting views and functions (issue 7).
#
# Usage: bench/reports_scale.sh [--no-build] [MEMBERS]      (default 1000000 members)
#
# Starts a throwaway PostgreSQL 15 cluster (scripts/lib.sh), generates MEMBERS members and
# about 20 ledger entries per member with consistent lots and balances (bench/reports_scale.sql,
# set-based inserts), VACUUM ANALYZEs, builds the report rollups (run_rollups, as run_maintenance
# does), then runs every report under EXPLAIN (ANALYZE, BUFFERS),
# twice (the second run, with warm caches, is the one reported). Prints a table of execution
# times; the full plans go to $LOYALTY_BENCH_LOG (default /tmp/reports_scale.log).
#
# The cluster gets shared_buffers = 2GB (lib.sh's 128MB test setting is far below what a
# server holding 20M ledger entries would run with); everything else as lib.sh sets it.
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO_ROOT" || exit 1

do_build=1
members=1000000
for arg in "$@"; do
    case $arg in
        --no-build) do_build=0 ;;
        ''|*[!0-9]*) echo "usage: $0 [--no-build] [MEMBERS]" >&2; exit 2 ;;
        *) members=$arg ;;
    esac
done
LOG=${LOYALTY_BENCH_LOG:-/tmp/reports_scale.log}
: >"$LOG"

if [ "$do_build" = 1 ]; then
    ensure_deps || exit 1
    build_install || exit 1
fi
cluster_start || exit 1
as_pg "$PG_BIN/psql" -qX -c "ALTER SYSTEM SET shared_buffers = '2GB'" \
                        -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
                        -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" >/dev/null || exit 1
as_pg "$PG_BIN/pg_ctl" -D "$LOYALTY_CLUSTER_DIR/data" -l "$LOYALTY_SERVER_LOG" -w restart >/dev/null || exit 1

psql_q() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }

psql_q -q -c 'CREATE EXTENSION loyalty' || exit 1

log "generating $members members (about $((members * 20)) ledger entries)"
t0=$(now_ms)
psql_q -q -v members="$members" -f bench/reports_scale.sql >>"$LOG" || exit 1
t1=$(now_ms)
log "generated in $(( (t1 - t0) / 1000 )) s; VACUUM ANALYZE"
psql_q -q -c 'VACUUM ANALYZE' || exit 1
t2=$(now_ms)
log "vacuum analyze in $(( (t2 - t1) / 1000 )) s"

# The report rollups (92_rollups.sql): the first run records the high-water mark candidate,
# the second rolls everything below it up (the backfill a first run_maintenance does).
log "run_rollups (backfill)"
psql_q -At -c 'SELECT loyalty.run_rollups()' >>"$LOG" || exit 1
psql_q -At -c 'SELECT loyalty.run_rollups()' || exit 1
t3=$(now_ms)
log "rollups in $(( (t3 - t2) / 1000 )) s"
psql_q -q -c 'VACUUM ANALYZE loyalty.rollup_day, loyalty.rollup_member_year, loyalty.rollup_cohort' || exit 1

psql_q -At -F ' ' -c "
    SELECT 'members', count(*) FROM loyalty.member
    UNION ALL SELECT 'entries', count(*) FROM loyalty.entry
    UNION ALL SELECT 'lots', count(*) FROM loyalty.lot
    UNION ALL SELECT 'live lots', count(*) FROM loyalty.lot WHERE state <> 'x'
    UNION ALL SELECT 'rollup_day rows', count(*) FROM loyalty.rollup_day
    UNION ALL SELECT 'rollup_member_year rows', count(*) FROM loyalty.rollup_member_year
    UNION ALL SELECT 'rollup_cohort rows', count(*) FROM loyalty.rollup_cohort
    UNION ALL SELECT 'rollups MB', (pg_total_relation_size('loyalty.rollup_day') + pg_total_relation_size('loyalty.rollup_member_year')
                                    + pg_total_relation_size('loyalty.rollup_cohort')) / 1048576
    UNION ALL SELECT 'database MB', pg_database_size(current_database()) / 1048576" || exit 1

mid=$(( members / 2 + 1 ))
queries=(
    "liability|SELECT * FROM loyalty.liability"
    "tier_distribution|SELECT * FROM loyalty.tier_distribution"
    "program_kpis_30d|SELECT * FROM loyalty.program_kpis_30d"
    "program_kpis (1 year)|SELECT * FROM loyalty.program_kpis('bench', now() - interval '1 year', now())"
    "program_kpis (12 whole months)|SELECT * FROM loyalty.program_kpis('bench', date_trunc('month', now()) - interval '12 months', date_trunc('month', now()))"
    "program_kpis (all time)|SELECT * FROM loyalty.program_kpis('bench', '-infinity', 'infinity')"
    "cohort_retention (month)|SELECT count(*) FROM loyalty.cohort_retention('bench')"
    "cohort_retention (quarter)|SELECT count(*) FROM loyalty.cohort_retention('bench', 'quarter')"
    "cohort_retention (week)|SELECT count(*) FROM loyalty.cohort_retention('bench', 'week')"
    "member_value (all members)|SELECT count(*) FROM loyalty.member_value('bench')"
    "member_summary (all members)|SELECT count(*), sum(available) FROM loyalty.member_summary"
    "expiring_points 7 days, program|SELECT count(*) FROM loyalty.expiring_points('7 days', 'bench')"
    "expiring_points 30 days, program|SELECT count(*) FROM loyalty.expiring_points('30 days', 'bench')"
    "member_summary, one member|SELECT * FROM loyalty.member_summary WHERE member_id = $mid"
    "member_summary, by external_ref|SELECT * FROM loyalty.member_summary WHERE program = 'bench' AND external_ref = 'cust-$mid'"
    "balance(), one member (reference)|SELECT * FROM loyalty.balance($mid)"
)
# LOYALTY_BENCH_DIRECT=1: the same reports from the ledger alone (what 1.0 did), to compare
if [ "${LOYALTY_BENCH_DIRECT:-0}" = 1 ]; then
    queries+=(
        "DIRECT program_kpis (1 year)|SELECT * FROM loyalty.program_kpis('bench', now() - interval '1 year', now())"
        "DIRECT cohort_retention (month)|SELECT count(*) FROM loyalty.cohort_retention('bench')"
    )
fi

printf '\n%-36s %12s %12s\n' "report" "cold ms" "warm ms"
for q in "${queries[@]}"; do
    name=${q%%|*}
    sql=${q#*|}
    times=()
    for run in 1 2; do
        opts=
        [[ $name == DIRECT* ]] && opts='-c loyalty.reports_direct=on'
        out=$(PGOPTIONS=$opts psql_q -At -c "EXPLAIN (ANALYZE, BUFFERS) $sql") || exit 1
        { echo "=== $name (run $run): $sql"; echo "$out"; echo; } >>"$LOG"
        times+=("$(sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' <<<"$out")")
    done
    printf '%-36s %12s %12s\n' "$name" "${times[0]}" "${times[1]}"
done

# The generator must produce data the extension could have written: check it (skip with
# LOYALTY_BENCH_CHECK=0; it takes about a minute per 250k members).
if [ "${LOYALTY_BENCH_CHECK:-1}" = 1 ]; then
    log "check_invariants"
    violations=$(psql_q -At -c 'SELECT count(*) FROM loyalty.check_invariants()') || exit 1
    echo "check_invariants() violations: $violations"
    [ "$violations" = 0 ] || { log "the generated data breaks the invariants"; exit 1; }
fi
log "plans in $LOG"
