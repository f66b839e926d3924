# Shared by the bench/*.sh scripts: start a PostgreSQL 15 and a release Tarn
# side by side on this machine, run SQL and pgbench against either.
#
#   PG_BIN       PostgreSQL 15 server binaries (default /usr/lib/postgresql/15/bin)
#   TARN_BIN     the tarn binary (default: $CARGO_TARGET_DIR/release/tarn, built if missing)
#   BENCH_DIR    scratch space for both data directories (default /tmp/tarn-bench)
#
# PostgreSQL runs with its defaults (fsync=on, synchronous_commit=on): the
# same durability Tarn gives (fsync of the WAL before acknowledging).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_DIR=${BENCH_DIR:-/tmp/tarn-bench}
PG_PORT=${PG_PORT:-55432}
TARN_PORT=${TARN_PORT:-55433}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tarn-target}
TARN_BIN=${TARN_BIN:-$CARGO_TARGET_DIR/release/tarn}

log() { echo "== $*" >&2; }

start_postgres() {
    local data=$BENCH_DIR/pg
    rm -rf "$data"; mkdir -p "$BENCH_DIR"
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses root: the cluster belongs to the postgres user.
        install -d -o postgres -g postgres "$data" "$BENCH_DIR/pg-sock"
        runas() { su postgres -s /bin/bash -c "$*"; }
    else
        mkdir -p "$data" "$BENCH_DIR/pg-sock"
        runas() { bash -c "$*"; }
    fi
    runas "$PG_BIN/initdb -D $data -U postgres --auth=trust" >/dev/null
    runas "$PG_BIN/pg_ctl -D $data -l $BENCH_DIR/pg-sock/pg.log -w -o '-p $PG_PORT -k $BENCH_DIR/pg-sock -c listen_addresses=127.0.0.1' start" >/dev/null
    trap stop_all EXIT
    log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT (fsync=on, synchronous_commit=on)"
}

start_tarn() {
    if [ ! -x "$TARN_BIN" ]; then
        log "building tarn (release)"
        (cd "$ROOT" && cargo build --release --locked)
    fi
    rm -rf "$BENCH_DIR/tarn"
    "$TARN_BIN" serve --data-dir "$BENCH_DIR/tarn" --listen "127.0.0.1:$TARN_PORT" "$@" >"$BENCH_DIR/tarn.log" 2>&1 &
    TARN_PID=$!
    trap stop_all EXIT
    for _ in $(seq 1 100); do
        pg_isready -q -h 127.0.0.1 -p "$TARN_PORT" && break
        sleep 0.1
    done
    log "Tarn $("$TARN_BIN" --version 2>/dev/null | awk '{print $2}') on port $TARN_PORT ($TARN_BIN)"
}

stop_all() {
    [ -n "${TARN_PID:-}" ] && kill "$TARN_PID" 2>/dev/null && wait "$TARN_PID" 2>/dev/null
    if [ -d "$BENCH_DIR/pg" ]; then
        runas "$PG_BIN/pg_ctl -D $BENCH_DIR/pg -m fast stop" >/dev/null 2>&1 || true
    fi
}

# conn pg|tarn → psql/pgbench connection arguments
conn() {
    case $1 in
        pg) echo "-h 127.0.0.1 -p $PG_PORT -U postgres postgres" ;;
        tarn) echo "-h 127.0.0.1 -p $TARN_PORT -U tarn tarn" ;;
    esac
}

# sql pg|tarn "statements"
sql() { psql -X -q -v ON_ERROR_STOP=1 $(conn "$1") -c "$2" >/dev/null; }

# pgbench_tps pg|tarn clients script-file seconds → transactions/s
pgbench_tps() {
    local target=$1 clients=$2 script=$3 secs=$4 jobs=$(( $2 < 2 ? $2 : 2 ))
    "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$jobs" -T "$secs" -f "$script" $(conn "$target") 2>"$BENCH_DIR/pgbench.err" \
        | awk '/^tps = / {printf "%.0f", $3}' || { cat "$BENCH_DIR/pgbench.err" >&2; return 1; }
}

# query_ms pg|tarn "query" runs → the median wall time in ms, as psql's \timing reports it
query_ms() {
    local target=$1 query=$2 runs=${3:-5}
    { echo '\timing on'; for _ in $(seq 1 "$runs"); do echo "$query;"; done; } \
        | psql -X -q -v ON_ERROR_STOP=1 $(conn "$target") \
        | awk '/^Time: / {print $2}' | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'
}

# row label pg-value tarn-value higher|lower → one result line with the Tarn/PostgreSQL ratio
row() {
    local ratio
    ratio=$(awk -v p="$2" -v t="$3" -v better="$4" 'BEGIN { if (p == 0 || t == 0) print "n/a"; else if (better == "higher") printf "%.2fx", t / p; else printf "%.2fx", p / t }')
    printf '| %-58s | %12s | %12s | %8s |\n' "$1" "$2" "$3" "$ratio"
}

header() {
    printf '| %-58s | %12s | %12s | %8s |\n' "$1" "PostgreSQL 15" "Tarn" "Tarn gain"
    printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 60))" "$(printf -- '-%.0s' $(seq 1 14))" "$(printf -- '-%.0s' $(seq 1 14))" "$(printf -- '-%.0s' $(seq 1 10))"
}

# The write benches' single-row INSERT: its table, and a pgbench script of it.
INS_TABLE="CREATE TABLE ins (id bigserial PRIMARY KEY, c int NOT NULL, v bigint)"
write_insert_script() { echo 'INSERT INTO ins (c, v) VALUES (:client_id, :client_id * 7);' >"$1"; }
