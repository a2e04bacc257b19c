# shellcheck shell=bash
# Helpers shared by scripts/demo.sh and scripts/test.sh. Source this file; do not run it.
#
#   ensure_deps     install the Debian packages the build and the tests need (root only)
#   build_install   make && make install against PostgreSQL 15 (-Werror when CI=true)
#   cluster_start   start a throwaway PostgreSQL 15 cluster on a private unix socket;
#                   exports PGHOST PGPORT PGUSER PGDATABASE; stopped and removed on EXIT
#   cluster_stop    stop and remove it now (also what the EXIT trap runs)
#
# Environment knobs: LOYALTY_PGPORT (default 54329), LOYALTY_KEEP_CLUSTER=1 (leave the
# data directory behind for inspection), CI=true (warnings are errors),
# LOYALTY_EXTRA_CONF (lines appended to postgresql.conf, @SOCK@ replaced by the socket
# directory: e.g. shared_preload_libraries for test/scheduling/run.sh).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
export PG_CONFIG

LOYALTY_DEPS=(python3-psycopg2 postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
              libtap-parser-sourcehandler-pgtap-perl libssl-dev make gcc postgresql-15-cron)

# Repository root: the directory above this file.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }

# Milliseconds since the epoch, for the timings the scripts print.
now_ms() { date +%s%3N; }

ensure_deps() {
    local missing=() p
    for p in "${LOYALTY_DEPS[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        return 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || return 1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
    # The postgresql-common package creates a default cluster (main) and starts it; we
    # never use it, and stopping it is not our business either: leave it as the package set it up.
}

build_install() {
    local jobs
    jobs=$(nproc 2>/dev/null || echo 2)
    (
        cd "$REPO_ROOT" || exit 1
        if [ "${CI:-}" = "true" ]; then
            # Environment, not command line: the Makefile appends its -W flags with +=.
            export PG_CFLAGS="${PG_CFLAGS:+$PG_CFLAGS }-Werror"
        fi
        log "building loyalty${PG_CFLAGS:+ (PG_CFLAGS=$PG_CFLAGS)}"
        make -s -j"$jobs" PG_CONFIG="$PG_CONFIG" || { echo "error: make failed" >&2; exit 1; }
        log "installing loyalty into $("$PG_CONFIG" --pkglibdir)"
        make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || { echo "error: make install failed" >&2; exit 1; }
    )
}

# Run a command as the owner of the cluster: postgres when we are root, else ourselves.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

LOYALTY_CLUSTER_DIR=

cluster_stop() {
    local dir=$LOYALTY_CLUSTER_DIR
    [ -n "$dir" ] || return 0
    LOYALTY_CLUSTER_DIR=
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ "${LOYALTY_KEEP_CLUSTER:-0}" = 1 ]; then
        log "cluster kept in $dir"
    else
        rm -rf "$dir"
    fi
}

# Returns non-zero (after saying why) when the cluster cannot be started.
cluster_start() {
    local dir port base
    if [ -n "$LOYALTY_CLUSTER_DIR" ]; then
        echo "error: a cluster is already running in $LOYALTY_CLUSTER_DIR" >&2; return 1
    fi
    port=${LOYALTY_PGPORT:-54329}
    base=${LOYALTY_TMPDIR:-${TMPDIR:-/tmp}}
    # The socket path must stay short (about 100 bytes) and, as root, be reachable by postgres.
    if [ ${#base} -gt 60 ] ||
       { [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$base" 2>/dev/null; }; then
        base=/tmp
    fi
    if [ "$(id -u)" -eq 0 ] && ! getent passwd postgres >/dev/null; then
        echo "error: no postgres user (is postgresql-15 installed?)" >&2; return 1
    fi
    dir=$(mktemp -d "$base/loyalty-pg.XXXXXX") || return 1
    LOYALTY_CLUSTER_DIR=$dir
    trap 'cluster_stop' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir "$dir/sock"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir"
        chmod 755 "$dir"
    fi

    log "initdb in $dir/data"
    if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        echo "error: initdb failed" >&2
        cluster_stop; return 1
    fi

    # Only a private unix socket: no TCP listener, so nothing else can connect and no
    # port on the machine can clash. The port only names the socket file.
    as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# --- throwaway test cluster (scripts/lib.sh) ---
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
max_prepared_transactions = 10
shared_buffers = 128MB
timezone = 'UTC'
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
CONF
    if [ -n "${LOYALTY_EXTRA_CONF:-}" ]; then
        printf '%s\n' "${LOYALTY_EXTRA_CONF//@SOCK@/$dir/sock}" | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    fi

    log "starting PostgreSQL 15 on $dir/sock, port $port"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
        cat "$dir/server.log" >&2 || true
        echo "error: pg_ctl start failed" >&2
        cluster_stop; return 1
    fi

    export PGHOST="$dir/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
    unset PGPASSWORD PGSERVICE PGHOSTADDR PGOPTIONS 2>/dev/null || true
    LOYALTY_SERVER_LOG="$dir/server.log"
    export LOYALTY_SERVER_LOG
}
