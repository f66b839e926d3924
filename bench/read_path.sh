#!/usr/bin/env bash
# The read path (issue 4), Tarn against PostgreSQL 15 on the same machine:
#   - streaming `SELECT *` of a 5-million-row single-int table and of a
#     2-million-row (int8, float8, text, timestamp) table, with text and with
#     binary results, in rows/s as a client receives and decodes them
#     (psycopg 3's C decoder: the same client work on both sides)
#   - `pgbench -M prepared` of a primary-key lookup, transactions/s
# "Tarn gain" is Tarn's rate ÷ PostgreSQL's: above 1 means Tarn is faster.
#
#   bash bench/read_path.sh        # INT_ROWS=5000000 WIDE_ROWS=2000000 DURATION=15
set -euo pipefail
source "$(dirname "$0")/lib.sh"
INT_ROWS=${INT_ROWS:-5000000}
WIDE_ROWS=${WIDE_ROWS:-2000000}
DURATION=${DURATION:-15}
KEYS=${KEYS:-100000}

# psycopg 3 from the compat suites' venv (compat/setup.sh makes it).
bash "$ROOT/compat/setup.sh" >/dev/null
py=${TARN_COMPAT_CACHE:-$HOME/.cache/tarn-compat}/venv/bin/python

start_postgres
start_tarn
for t in pg tarn; do
    sql $t "CREATE TABLE ints (v int)"
    sql $t "INSERT INTO ints SELECT g FROM generate_series(1, $INT_ROWS) g"
    sql $t "CREATE TABLE wide (id int8, x float8, label text, at timestamp)"
    sql $t "INSERT INTO wide SELECT g, g * 0.25, 'label ' || g, to_timestamp(1767225600 + g)::timestamp FROM generate_series(1, $WIDE_ROWS) g"
    sql $t "CREATE TABLE kv (id bigint PRIMARY KEY, v text)"
    sql $t "INSERT INTO kv SELECT g, 'value ' || g FROM generate_series(1, $KEYS) g"
    sql $t "VACUUM"
done
work=$BENCH_DIR/scripts; mkdir -p "$work"
printf '\\set id random(1, %d)\nSELECT v FROM kv WHERE id = :id;\n' "$KEYS" >"$work/lookup.sql"

# rows_per_s pg|tarn table text|binary → rows/s of the best of 3 runs
rows_per_s() {
    local dsn
    case $1 in
        pg) dsn="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" ;;
        tarn) dsn="host=127.0.0.1 port=$TARN_PORT user=tarn dbname=tarn" ;;
    esac
    "$py" - "$dsn" "$2" "$3" <<'PY'
import sys, time, psycopg
dsn, table, fmt = sys.argv[1:]
best = 0
with psycopg.connect(dsn) as conn:
    for _ in range(3):
        cur = conn.cursor(binary=(fmt == "binary"))
        start = time.perf_counter()
        cur.execute(f"SELECT * FROM {table}")
        n = len(cur.fetchall())
        best = max(best, n / (time.perf_counter() - start))
print(int(best))
PY
}

declare -A r
for t in pg tarn; do
    for table in ints wide; do
        for fmt in text binary; do
            log "$t: SELECT * FROM $table, $fmt"
            r[$t.$table.$fmt]=$(rows_per_s $t $table $fmt)
        done
    done
    log "$t: pgbench primary-key lookup, 1 and 8 clients, ${DURATION}s"
    r[$t.pk.1]=$(pgbench_tps $t 1 "$work/lookup.sql" "$DURATION")
    r[$t.pk.8]=$(pgbench_tps $t 8 "$work/lookup.sql" "$DURATION")
done

echo
echo "Read path, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
header "measure"
row "SELECT * of $INT_ROWS ints, text (rows/s)" "${r[pg.ints.text]}" "${r[tarn.ints.text]}" higher
row "SELECT * of $INT_ROWS ints, binary (rows/s)" "${r[pg.ints.binary]}" "${r[tarn.ints.binary]}" higher
row "SELECT * of $WIDE_ROWS (int8, float8, text, timestamp), text (rows/s)" "${r[pg.wide.text]}" "${r[tarn.wide.text]}" higher
row "the same, binary (rows/s)" "${r[pg.wide.binary]}" "${r[tarn.wide.binary]}" higher
row "pgbench -M prepared PK lookup, 1 client (tps)" "${r[pg.pk.1]}" "${r[tarn.pk.1]}" higher
row "pgbench -M prepared PK lookup, 8 clients (tps)" "${r[pg.pk.8]}" "${r[tarn.pk.8]}" higher
