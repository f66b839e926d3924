#!/usr/bin/env bash
# The write path (issue 3), Tarn against PostgreSQL 15 on the same machine:
#   - single-row autocommit INSERT transactions/s, 1 and 8 clients
#   - UPDATE-by-primary-key transactions/s, 1 and 8 clients
#   - an analytical scan right after heavy updates, and after VACUUM
# Every transaction is durable before it is acknowledged on both sides.
# "Tarn gain" is Tarn's rate ÷ PostgreSQL's (or PostgreSQL's time ÷ Tarn's):
# above 1 means Tarn is faster.
#
#   bash bench/write_path.sh            # DURATION=15 seconds per pgbench run, SCAN_ROWS=2000000
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-15}
SCAN_ROWS=${SCAN_ROWS:-2000000}
ACCOUNTS=${ACCOUNTS:-100000}

start_postgres
start_tarn
work=$BENCH_DIR/scripts; mkdir -p "$work"
write_insert_script "$work/insert.sql"
printf '\\set id random(1, %d)\nUPDATE acct SET balance = balance + 1 WHERE id = :id;\n' "$ACCOUNTS" >"$work/update.sql"

for t in pg tarn; do
    sql $t "$INS_TABLE"
    sql $t "CREATE TABLE acct (id bigint PRIMARY KEY, balance bigint NOT NULL)"
    sql $t "INSERT INTO acct SELECT g, 0 FROM generate_series(1, $ACCOUNTS) g"
    sql $t "CREATE TABLE scan_t (id bigint PRIMARY KEY, grp bigint, x float8, label text)"
    sql $t "INSERT INTO scan_t SELECT g, g % 100, g * 0.5, 'row ' || g FROM generate_series(1, $SCAN_ROWS) g"
    sql $t "VACUUM"
done

declare -A r
for t in pg tarn; do
    for c in 1 8; do
        log "$t: INSERT, $c client(s), ${DURATION}s"
        r[$t.ins.$c]=$(pgbench_tps $t $c "$work/insert.sql" "$DURATION")
        log "$t: UPDATE by key, $c client(s), ${DURATION}s"
        r[$t.upd.$c]=$(pgbench_tps $t $c "$work/update.sql" "$DURATION")
    done
done

scan="SELECT grp, count(*), sum(x), max(length(label)) FROM scan_t GROUP BY grp ORDER BY grp LIMIT 1"
for t in pg tarn; do
    r[$t.scan0]=$(query_ms $t "$scan")
    log "$t: updating every row of scan_t in 10 statements"
    for k in $(seq 0 9); do sql $t "UPDATE scan_t SET x = x + 1 WHERE id % 10 = $k"; done
    r[$t.scan1]=$(query_ms $t "$scan")
    log "$t: VACUUM scan_t"
    start=$(date +%s%N); sql $t "VACUUM scan_t"; r[$t.vacuum]=$(( ($(date +%s%N) - start) / 1000000 ))
    r[$t.scan2]=$(query_ms $t "$scan")
done

echo
echo "Write path, $(nproc) cores, $(date -u +%Y-%m-%d), ${DURATION}s per pgbench run"
echo
header "measure"
row "INSERT single row, autocommit, 1 client (tps)" "${r[pg.ins.1]}" "${r[tarn.ins.1]}" higher
row "INSERT single row, autocommit, 8 clients (tps)" "${r[pg.ins.8]}" "${r[tarn.ins.8]}" higher
row "UPDATE by primary key, $ACCOUNTS rows, 1 client (tps)" "${r[pg.upd.1]}" "${r[tarn.upd.1]}" higher
row "UPDATE by primary key, $ACCOUNTS rows, 8 clients (tps)" "${r[pg.upd.8]}" "${r[tarn.upd.8]}" higher
row "scan+aggregate $SCAN_ROWS rows, freshly loaded (ms)" "${r[pg.scan0]}" "${r[tarn.scan0]}" lower
row "same scan right after updating every row (ms)" "${r[pg.scan1]}" "${r[tarn.scan1]}" lower
row "VACUUM of that table (ms)" "${r[pg.vacuum]}" "${r[tarn.vacuum]}" lower
row "same scan after VACUUM (ms)" "${r[pg.scan2]}" "${r[tarn.scan2]}" lower
