#!/usr/bin/env bash
# Build and install loyalty, start a throwaway PostgreSQL 15 cluster and run every test suite:
#   regress    pg_regress tests (REGRESS in the Makefile: sql/*.sql against expected/*.out)
#   isolation  isolation specs (ISOLATION in the Makefile: test/specs/*.spec, test/expected/*.out)
#   pgtap      pgTAP files test/pgtap/**/*.sql, each run by pg_prove in a fresh database
#              where CREATE EXTENSION pgtap; CREATE EXTENSION loyalty; is already done
#   model      model-based random tests (test/model/run.py): seeded operation sequences
#              compared with an independent Python model (MODEL_SEEDS, MODEL_OPS)
#   load       concurrent load and crash safety (test/load/run.sh, its own durable cluster)
#   fuzz       libFuzzer on the voucher code and settings parsers (test/fuzz/run.sh, no backend),
#              and random settings documents against create_program (test/fuzz/fuzz_settings.py);
#              FUZZ_SECONDS per target
#   security   install safety (test/security/install_safety.sh): CREATE EXTENSION in fresh
#              databases prepared by a hostile role, hostile roles and schema, the upgrade's
#              privileges
#   bench      bench/run.sh --smoke: every benchmark case at tiny size, in its own cluster;
#              checks that each runs and the report is written, asserts no timing
#   upgrade    1.0 + ALTER EXTENSION UPDATE == fresh install: catalog and data (test/upgrade/run.sh)
#   dump       pg_dump -Fc / pg_restore round trip of every extension table (test/dump/run.sh)
#   scheduling run_maintenance from pg_cron and the background worker (test/scheduling/run.sh,
#              its own clusters with shared_preload_libraries)
#
# Usage: scripts/test.sh [--no-build] [regress|isolation|pgtap|all ...] [test/pgtap/FILE.sql ...]
#   With no stage, all of them run. Naming pgTAP files runs only those (and implies pgtap).
#   --no-build skips ensure_deps and make/make install (use the installed extension).
# The last line printed is always "N passed, M failed", N and M counting pg_regress tests,
# isolation tests and pgTAP files (a failed build counts as one failure). Exit status is 0
# only when nothing failed.
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

STAGE_TIMEOUT=${LOYALTY_STAGE_TIMEOUT:-1500}   # seconds, per pg_regress/isolation run
FILE_TIMEOUT=${LOYALTY_FILE_TIMEOUT:-600}      # seconds, per pgTAP file

do_build=1
stages=()
tap_only=()
for arg in "$@"; do
    case $arg in
        --no-build) do_build=0 ;;
        regress|isolation|pgtap|model|load|fuzz|security|bench|upgrade|dump|scheduling) stages+=("$arg") ;;
        all) stages+=(regress isolation pgtap model load fuzz security bench upgrade dump scheduling) ;;
        *.sql) tap_only+=("$arg") ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ ${#tap_only[@]} -gt 0 ]; then
    stages+=(pgtap)
fi
if [ ${#stages[@]} -eq 0 ]; then
    stages=(regress isolation pgtap model load fuzz security bench upgrade dump scheduling)
fi
want() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

total_pass=0
total_fail=0
summary=()       # lines of the final table
failed_names=()  # what failed, for the summary

record() {  # record STAGE PASSED FAILED SECONDS [failed names...]
    local stage=$1 p=$2 f=$3 secs=$4; shift 4
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    summary+=("$(printf '%-10s %4d passed, %4d failed  %7s s%s' "$stage" "$p" "$f" "$secs" \
                 "${*:+   failed: $*}")")
    local n; for n in "$@"; do failed_names+=("$stage/$n"); done
}

elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

finish() {
    echo
    echo "======================== summary ========================"
    local l; for l in "${summary[@]}"; do echo "$l"; done
    if [ ${#failed_names[@]} -gt 0 ]; then
        echo "failed: ${failed_names[*]}"
    fi
    echo "total time: $(elapsed "$t_start") s"
    echo "$total_pass passed, $total_fail failed"
    [ "$total_fail" -eq 0 ]
}

# Names listed in a Makefile variable (REGRESS, ISOLATION), as make sees them.
make_list() {
    # shellcheck disable=SC2016  # $($*) is for make, not the shell
    make --no-print-directory -s -f Makefile -f <(printf 'print-%%:\n\t@echo $($*)\n') \
        PG_CONFIG="$PG_CONFIG" "print-$1"
}

show_file() {  # show_file FILE: print a file (capped) between markers
    local f=$1 max=4000 n
    [ -f "$f" ] || return 0
    n=$(wc -l <"$f")
    echo "-------------------- $f ($n lines) --------------------"
    head -n "$max" "$f"
    [ "$n" -le "$max" ] || echo "... ($((n - max)) more lines in $f)"
    echo "-------------------- end of $f --------------------"
}

# Parse "test NAME ... ok|FAILED" lines of a pg_regress log into PASSED/FAILED name lists.
# A listed test with no line (pg_regress stopped early) counts as failed.
parse_regress_log() {  # parse_regress_log LOG NAMES...
    local log=$1; shift
    local name status
    passed=(); failed=()
    for name in "$@"; do
        status=$(sed -n -E "s/^(test +| +)${name} +\.\.\. +(ok|FAILED|failed \(ignored\)).*/\2/p" "$log" | tail -n 1)
        case $status in
            ok|"failed (ignored)") passed+=("$name") ;;
            *) failed+=("$name") ;;
        esac
    done
}

# One pg_regress-driven stage: regress or isolation.
run_pgxs_stage() {  # run_pgxs_stage STAGE VAR SRCDIR SRCEXT EXPDIR DIFFS...
    local stage=$1 var=$2 srcdir=$3 ext=$4 expdir=$5; shift 5
    local diffs=("$@") t0 names runnable=() missing=() n log rc
    t0=$(now_ms)
    read -r -a names <<<"$(make_list "$var")"
    echo
    echo "======================== $stage: ${#names[@]} tests ========================"
    for n in "${names[@]}"; do
        if [ ! -f "$srcdir/$n.$ext" ]; then
            echo "test $n: missing $srcdir/$n.$ext"; missing+=("$n")
        elif ! compgen -G "$expdir/$n.out" >/dev/null && ! compgen -G "$expdir/${n}_[0-9].out" >/dev/null; then
            echo "test $n: missing $expdir/$n.out"; missing+=("$n")
        else
            runnable+=("$n")
        fi
    done
    passed=(); failed=()
    if [ ${#runnable[@]} -gt 0 ]; then
        log=$(mktemp)
        local other=ISOLATION
        [ "$var" = ISOLATION ] && other=REGRESS
        # Only this stage's list; the other emptied so that make runs just one of them.
        timeout -k 10 "$STAGE_TIMEOUT" \
            make --no-print-directory installcheck PG_CONFIG="$PG_CONFIG" \
                "$var=${runnable[*]}" "$other=" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -ne 124 ] || echo "$stage: timed out after $STAGE_TIMEOUT s"
        parse_regress_log "$log" "${runnable[@]}"
        if [ "$rc" -ne 0 ] && [ ${#failed[@]} -eq 0 ]; then
            # make failed but every test said ok: count the run itself as a failure.
            failed+=("(${stage} run exited $rc)")
        fi
        rm -f "$log"
        if [ ${#failed[@]} -gt 0 ]; then
            local d; for d in "${diffs[@]}"; do show_file "$d"; done
        fi
    fi
    failed+=("${missing[@]}")
    record "$stage" "${#passed[@]}" "${#failed[@]}" "$(elapsed "$t0")" "${failed[@]}"
}

run_pgtap_stage() {
    local t0 files=() f i=0 db tmpl=loyalty_tap_template out rc
    t0=$(now_ms)
    if [ ${#tap_only[@]} -gt 0 ]; then
        files=("${tap_only[@]}")
    elif [ -d test/pgtap ]; then
        mapfile -t files < <(find test/pgtap -name '*.sql' -type f | LC_ALL=C sort)
    fi
    echo
    echo "======================== pgtap: ${#files[@]} files ========================"
    passed=(); failed=()
    if [ ${#files[@]} -eq 0 ]; then
        record pgtap 0 0 "$(elapsed "$t0")"
        return
    fi
    "$PG_BIN/dropdb" --if-exists "$tmpl" >/dev/null 2>&1
    if ! "$PG_BIN/createdb" "$tmpl" ||
       ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$tmpl" \
            -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION loyalty'; then
        echo "pgtap: could not prepare a database with pgtap and loyalty; every file fails"
        record pgtap 0 "${#files[@]}" "$(elapsed "$t0")" "${files[@]##*/}"
        return
    fi
    for f in "${files[@]}"; do
        i=$((i + 1))
        db="loyalty_tap_$i"
        if [ ! -f "$f" ]; then
            echo "$f: no such file"; failed+=("${f#test/pgtap/}"); continue
        fi
        "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1
        if ! "$PG_BIN/createdb" -T "$tmpl" "$db"; then
            failed+=("${f#test/pgtap/}"); continue
        fi
        out=$(timeout -k 10 "$FILE_TIMEOUT" \
                  pg_prove --psql-bin "$PG_BIN/psql" -d "$db" --failures --comments "$f" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ]; then
            # Just the verdict line; the full pg_prove report only for failures.
            printf '%s\n' "$out" | grep -E '\.\. ' | head -n 1
            passed+=("$f")
        else
            printf '%s\n' "$out"
            [ "$rc" -ne 124 ] || echo "$f: timed out after $FILE_TIMEOUT s"
            failed+=("${f#test/pgtap/}")
        fi
        "$PG_BIN/dropdb" --if-exists "$db" >/dev/null 2>&1
    done
    "$PG_BIN/dropdb" --if-exists "$tmpl" >/dev/null 2>&1
    record pgtap "${#passed[@]}" "${#failed[@]}" "$(elapsed "$t0")" "${failed[@]}"
}

run_model_stage() {
    local t0 seed out passed=() failed=()
    t0=$(now_ms)
    echo
    echo "======================== model: seeds ${MODEL_SEEDS:-1 2 3 4 5} ========================"
    for seed in ${MODEL_SEEDS:-1 2 3 4 5}; do
        if out=$(/usr/bin/python3 test/model/run.py --seed "$seed" --ops "${MODEL_OPS:-1000}" 2>&1); then
            passed+=("seed$seed"); echo "ok   seed $seed (${MODEL_OPS:-1000} operations)"
        else
            failed+=("seed$seed"); echo "FAIL seed $seed"; sed 's/^/    /' <<<"$out" | tail -n 40
        fi
    done
    record model "${#passed[@]}" "${#failed[@]}" "$(elapsed "$t0")" "${failed[@]}"
}

run_fuzz_stage() {
    local t0
    t0=$(now_ms)
    echo
    echo "======================== fuzz: parsers (libFuzzer), settings via SQL, ${FUZZ_SECONDS:-15} s each ========================"
    local passed=() failed=()
    if bash test/fuzz/run.sh "${FUZZ_SECONDS:-15}"; then passed+=(libfuzzer); else failed+=(libfuzzer); fi
    createdb fuzz 2>/dev/null
    if PGDATABASE=fuzz /usr/bin/python3 test/fuzz/fuzz_settings.py --seconds "${FUZZ_SECONDS:-15}" --seed "${FUZZ_SEED:-1}"; then
        passed+=(settings)
    else
        failed+=(fuzz_settings)
    fi
    record fuzz "${#passed[@]}" "${#failed[@]}" "$(elapsed "$t0")" "${failed[@]}"
}

run_load_stage() {
    local t0 out
    t0=$(now_ms)
    echo
    echo "======================== load: sessions, crashes ========================"
    # its own cluster (durable settings), so run it in a subshell with its own trap
    if (unset LOYALTY_CLUSTER_DIR; bash test/load/run.sh); then
        record load 1 0 "$(elapsed "$t0")"
    else
        record load 0 1 "$(elapsed "$t0")" load_and_crash
    fi
}

run_security_stage() {
    local t0
    t0=$(now_ms)
    echo
    echo "======================== security: install safety ========================"
    if PG_BIN="$PG_BIN" bash test/security/install_safety.sh; then
        record security 1 0 "$(elapsed "$t0")"
    else
        record security 0 1 "$(elapsed "$t0")" install_safety
    fi
}

run_bench_stage() {
    local t0 rows
    t0=$(now_ms)
    echo
    echo "======================== bench: every case at smoke size ========================"
    # its own cluster, like load; the extension is already built and installed
    if (unset LOYALTY_CLUSTER_DIR; bash bench/run.sh --smoke --no-build) &&
       rows=$(grep -c '^| ' bench/out/report.md) && [ "$rows" -ge 11 ] && [ -s bench/out/chart.png ]; then
        record bench 1 0 "$(elapsed "$t0")"
    else
        record bench 0 1 "$(elapsed "$t0")" bench_smoke
    fi
}

# A stage that is one script: passes when it exits 0 (upgrade, dump, scheduling).
run_script_stage() {  # run_script_stage STAGE SCRIPT
    local t0
    t0=$(now_ms)
    echo
    echo "======================== $1: $2 ========================"
    if PG_BIN="$PG_BIN" bash "$2"; then
        record "$1" 1 0 "$(elapsed "$t0")"
    else
        record "$1" 0 1 "$(elapsed "$t0")" "$2"
    fi
}

t_start=$(now_ms)
if [ "$do_build" = 1 ]; then
    t0=$(now_ms)
    ensure_deps || { record deps 0 1 "$(elapsed "$t0")" ensure_deps; finish; exit 1; }
    if ! build_install; then
        record build 0 1 "$(elapsed "$t0")" make
        finish
        exit 1
    fi
    summary+=("$(printf '%-10s %-28s %7s s' build ok "$(elapsed "$t0")")")
fi

if ! cluster_start; then
    record cluster 0 1 "$(elapsed "$t_start")" cluster_start
    finish
    exit 1
fi
# Stale results of an earlier run must not be shown as this run's.
rm -rf results output_iso regression.diffs regression.out

want regress && run_pgxs_stage regress REGRESS sql sql expected regression.diffs
want isolation && run_pgxs_stage isolation ISOLATION test/specs spec test/expected \
    output_iso/regression.diffs test/output_iso/regression.diffs
want pgtap && run_pgtap_stage
want model && run_model_stage
want load && run_load_stage
want fuzz && run_fuzz_stage
want security && run_security_stage
want bench && run_bench_stage
want upgrade && run_script_stage upgrade test/upgrade/run.sh
want dump && run_script_stage dump test/dump/run.sh
want scheduling && run_script_stage scheduling test/scheduling/run.sh

if grep -qE 'terminated by signal|PANIC|TRAP:' "$LOYALTY_SERVER_LOG" 2>/dev/null; then
    echo
    echo "server log shows a crash:"
    grep -E -B2 -A8 'terminated by signal|PANIC|TRAP:' "$LOYALTY_SERVER_LOG" | head -n 80
fi

finish
