#!/usr/bin/env bash
# The soak benchmark (docs/benchmarks.md, "Soak"): one all-in-one server
# on a fresh data directory stores ORDERS orders (about nine events each:
# 120,000 orders ≥ 1,000,000 events) from a closed loop, printing the
# server's resident memory and Go heap every SAMPLE; then it is stopped and
# started again on the same directory, and the time to SERVING is printed;
# last, `custody rebuild` of the stopped server counts the events stored.
#
#   make build && scripts/soak.sh            # ORDERS=120000 SAMPLE=10s
#
# It uses 127.0.0.1:7070 and :7071; run it where those are free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ORDERS=${ORDERS:-120000}
SAMPLE=${SAMPLE:-10s}
DATA=${DATA:-$(mktemp -d /tmp/custody-soak.XXXX)}
LOG=${LOG:-$DATA.log}

ready() { curl -sf http://127.0.0.1:7071/readyz >/dev/null; }
start() {
  bin/custody run --data-dir "$DATA" >>"$LOG" 2>&1 &
  PID=$!
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }

echo "data: $DATA, server log: $LOG"
start
until ready; do sleep 0.1; done
bin/custodyctl --data-dir "$DATA" bench --orders "$ORDERS" --concurrency 64 --sample-every "$SAMPLE"
rss() { curl -sf http://127.0.0.1:7071/metrics | awk '/^process_resident_memory_bytes/ {printf "%.0f MiB", $2/1048576}'; }
echo "after the run: RSS $(rss)"
stop

t0=$(date +%s.%N)
start
until ready; do sleep 0.05; done
t1=$(date +%s.%N)
echo "restart to SERVING: $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s; RSS after the restart $(rss)"
stop

bin/custody rebuild --data-dir "$DATA"
