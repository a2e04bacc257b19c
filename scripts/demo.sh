#!/usr/bin/env bash
# The README's demo: build and install loyalty, start a throwaway PostgreSQL 15 cluster,
# simulate a year of a coffee shop's loyalty program (scripts/demo.sql) and print a report.
# The cluster lives in a temporary directory and is removed when the script exits.
#
# Usage: scripts/demo.sh [--no-build]
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

do_build=1
case ${1:-} in
    --no-build) do_build=0 ;;
    "") ;;
    *) echo "usage: scripts/demo.sh [--no-build]" >&2; exit 2 ;;
esac

t0=$(now_ms)
if [ "$do_build" = 1 ]; then
    ensure_deps
    build_install
fi
t1=$(now_ms)
cluster_start
"$PG_BIN/createdb" loyalty_demo
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d loyalty_demo -c 'CREATE EXTENSION loyalty'
t2=$(now_ms)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d loyalty_demo -f scripts/demo.sql
t3=$(now_ms)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
    printf "\ndemo done: build %.1f s, cluster %.1f s, demo.sql %.1f s, total %.1f s\n",
           (b - a) / 1000, (c - b) / 1000, (d - c) / 1000, (d - a) / 1000 }'
