#!/usr/bin/env bash
# Bulk load (issue 3): `COPY lineitem FROM STDIN` of TPC-H lineitem at
# scale factor 1 (6,001,215 rows, 766 MB of CSV), through psql's \copy,
# into Tarn and into PostgreSQL 15 on the same machine. Both acknowledge
# the COPY only once it is durable (Tarn: WAL fsync; PostgreSQL: WAL fsync).
# Then how long Tarn takes to fold the rows into Lance (VACUUM), and a scan.
#
# The data comes from tpchgen-cli (the TPC-H generator of tpchgen-rs), which
# this script installs into a venv under $BENCH_DIR.
#
#   bash bench/copy.sh          # SF=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SF=${SF:-1}

data=$BENCH_DIR/tpch-sf$SF/lineitem.csv
if [ ! -s "$data" ]; then
    log "generating TPC-H lineitem SF$SF"
    python3 -m venv "$BENCH_DIR/venv" >/dev/null
    "$BENCH_DIR/venv/bin/pip" install -q tpchgen-cli
    "$BENCH_DIR/venv/bin/tpchgen-cli" csv -s "$SF" --tables lineitem --output-dir "$BENCH_DIR/tpch-sf$SF"
fi
rows=$(( $(wc -l <"$data") - 1 ))

start_postgres
start_tarn --flush-rows 10000000

ddl="CREATE TABLE lineitem (
    l_orderkey bigint NOT NULL, l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL, l_linenumber int NOT NULL,
    l_quantity numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL,
    l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL,
    l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL,
    l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL)"
q1="SELECT l_returnflag, l_linestatus, sum(l_quantity), sum(l_extendedprice), avg(l_discount), count(*)
    FROM lineitem WHERE l_shipdate <= date '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY 1, 2"

# The loaded rows must be the same on both sides, not only as many.
check="SELECT sum(l_orderkey), sum(l_extendedprice), sum(l_discount * l_quantity), sum(length(l_comment)),
    max(l_shipinstruct), min(l_shipmode), max(l_receiptdate), count(DISTINCT l_returnflag || l_linestatus)
    FROM lineitem"
declare -A r
# Tarn first: after its load it is idle, while PostgreSQL keeps working after
# its own (checkpoint writes, autovacuum and analyze of the new rows), which
# would otherwise run during the other load.
for t in tarn pg; do
    sql $t "$ddl"
    # Start each load with no dirty pages left from the one before.
    sync
    log "$t: COPY $rows rows"
    start=$(date +%s%N)
    psql -X -q -v ON_ERROR_STOP=1 $(conn $t) -c "\\copy lineitem FROM '$data' WITH (FORMAT csv, HEADER)"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    r[$t.copy]=$(( rows * 1000 / ms ))
    r[$t.copy_s]=$(awk -v ms=$ms 'BEGIN {printf "%.1f", ms / 1000}')
    start=$(date +%s%N); sql $t "VACUUM lineitem"; r[$t.vacuum]=$(( ($(date +%s%N) - start) / 1000000 ))
    r[$t.q1]=$(query_ms $t "$q1" 3)
    r[$t.count]=$(psql -X -At $(conn $t) -c "SELECT count(*) FROM lineitem")
    r[$t.check]=$(psql -X -At $(conn $t) -c "$check")
done
[ "${r[pg.count]}" = "$rows" ] && [ "${r[tarn.count]}" = "$rows" ] || { echo "row counts differ: pg ${r[pg.count]}, tarn ${r[tarn.count]}, file $rows" >&2; exit 1; }
[ "${r[pg.check]}" = "${r[tarn.check]}" ] || { echo "loaded data differs: pg ${r[pg.check]}, tarn ${r[tarn.check]}" >&2; exit 1; }
log "same data on both sides: ${r[tarn.check]}"

echo
echo "Bulk load, TPC-H lineitem SF$SF ($rows rows), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
header "measure"
row "COPY FROM STDIN, CSV (rows/s)" "${r[pg.copy]}" "${r[tarn.copy]}" higher
row "  the same, wall time (s)" "${r[pg.copy_s]}" "${r[tarn.copy_s]}" lower
row "VACUUM after the load (ms; Tarn: fold into Lance)" "${r[pg.vacuum]}" "${r[tarn.vacuum]}" lower
row "TPC-H Q1 after the load (ms)" "${r[pg.q1]}" "${r[tarn.q1]}" lower
