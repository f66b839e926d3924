#!/usr/bin/env bash
# Single-row autocommit INSERT at 1 client, PostgreSQL 15 and Tarn taking
# turns: ROUNDS rounds of SECS seconds each side, so that drift in this
# machine's speed (it moves rates by ±5% from minute to minute) falls on both
# alike. Prints each round and the ratio of the means (Tarn ÷ PostgreSQL;
# above 1 means Tarn is faster). Both acknowledge a commit once it is durable.
#
#   bash bench/insert_rounds.sh          # ROUNDS=4 SECS=5 CLIENTS=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-4}
SECS=${SECS:-5}
CLIENTS=${CLIENTS:-1}

script=$BENCH_DIR/insert_rounds.sql
start_postgres
start_tarn
write_insert_script "$script"
for t in pg tarn; do sql $t "$INS_TABLE"; done

sum_pg=0 sum_tarn=0
echo
echo "INSERT single row, autocommit, $CLIENTS client(s), $ROUNDS rounds of ${SECS}s, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| round | PostgreSQL 15 (tps) | Tarn (tps) | Tarn gain |"
echo "|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
    p=$(pgbench_tps pg "$CLIENTS" "$script" "$SECS")
    t=$(pgbench_tps tarn "$CLIENTS" "$script" "$SECS")
    sum_pg=$((sum_pg + p)); sum_tarn=$((sum_tarn + t))
    echo "| $r | $p | $t | $(awk -v p="$p" -v t="$t" 'BEGIN { printf "%.2fx", t / p }') |"
done
echo "| mean | $((sum_pg / ROUNDS)) | $((sum_tarn / ROUNDS)) | $(awk -v p="$sum_pg" -v t="$sum_tarn" 'BEGIN { printf "%.3fx", t / p }') |"
