#!/usr/bin/env bash
# Model-based random tests (issue 9): start a throwaway cluster, run a few seeds of
# test/model/run.py against the installed extension, print "N passed, M failed" (N/M = seeds).
#
#   bash test/model/run.sh                 # CI size: the default seeds, 1000 operations each
#   MODEL_SEEDS="1 2 3" MODEL_OPS=5000 bash test/model/run.sh
#
# Needs the extension installed (make install) and python3 with psycopg2 (Debian package
# python3-psycopg2, installed here when missing and running as root).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$HERE/../../scripts/lib.sh"

SEEDS=${MODEL_SEEDS:-"1 2 3 4 5"}
OPS=${MODEL_OPS:-1000}

# The system interpreter is the one the Debian package serves.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        log "installing python3-psycopg2"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq python3-psycopg2 >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq python3-psycopg2 >/dev/null; }
    fi
    if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
        echo "error: python3-psycopg2 is missing (apt-get install python3-psycopg2)" >&2
        echo "0 passed, $(wc -w <<<"$SEEDS") failed"
        exit 1
    fi
fi

export LOYALTY_PGPORT=${LOYALTY_PGPORT:-54339}
if ! cluster_start; then
    echo "0 passed, $(wc -w <<<"$SEEDS") failed"
    exit 1
fi

passed=0
failed=0
for seed in $SEEDS; do
    start=$(now_ms)
    out=$("$PY" "$HERE/run.py" --seed "$seed" --ops "$OPS" 2>&1)
    rc=$?
    ms=$(( $(now_ms) - start ))
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok   seed %s (%s operations, %d ms)\n' "$seed" "$OPS" "$ms"
    else
        failed=$((failed + 1))
        printf 'FAIL seed %s (%d ms)\n' "$seed" "$ms"
        grep -v '^[0-9]* passed, [0-9]* failed$' <<<"$out" | sed 's/^/    /'
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
