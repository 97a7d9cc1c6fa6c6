#!/usr/bin/env bash
# Cross-instance fan-out through one Redis or through a three-master Redis Cluster (issue #17):
# two instances on PostgreSQL, the publisher on the first, 1000 subscribers on the second, so
# every delivery crosses Redis; one channel, then 30 (spread over the shards on the cluster).
#   load/scaleout.sh single|cluster [RATE] [SUBS]
# Needs redis-server and redis-cli, PostgreSQL at $PG (trust auth), and the release build
# (`cargo build --release --workspace`). Every process it starts is stopped at exit.
set -euo pipefail
MODE=${1:-single}
RATE=${2:-300}
SUBS=${3:-1000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BIN=${BIN:-target/release/switchyard}
LOAD=${LOAD:-target/release/load}
DIR=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT

DB=sy_scaleout_$$
psql "$PG/postgres" -qc "CREATE DATABASE $DB"
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$DIR"' EXIT

REDIS_ENV=()
if [ "$MODE" = cluster ]; then
  SEEDS=()
  for port in 17101 17102 17103; do
    redis-server --port $port --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$DIR/nodes-$port.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$DIR" --loglevel warning &
    PIDS+=($!)
    SEEDS+=("redis://127.0.0.1:$port")
  done
  sleep 0.5
  redis-cli --cluster create 127.0.0.1:17101 127.0.0.1:17102 127.0.0.1:17103 \
    --cluster-replicas 0 --cluster-yes >/dev/null
  until redis-cli -p 17101 cluster info | grep -q cluster_state:ok; do sleep 0.2; done
  REDIS_ENV=(SWITCHYARD_REDIS_CLUSTER_URLS="$(IFS=,; echo "${SEEDS[*]}")")
else
  redis-server --port 17100 --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
  PIDS+=($!)
  sleep 0.3
  REDIS_ENV=(SWITCHYARD_REDIS_URL=redis://127.0.0.1:17100)
fi

"$BIN" keygen --out "$DIR/key.pem" >/dev/null
for i in 1 2; do
  mkdir -p "$DIR/node$i"
  env "${REDIS_ENV[@]}" SWITCHYARD_DATABASE_URL="$PG/$DB" SWITCHYARD_AUTH_KEY_FILES="$DIR/key.pem" \
    SWITCHYARD_SERVER_DATA_DIR="$DIR/node$i" SWITCHYARD_SERVER_BIND=127.0.0.1:1808$i \
    SWITCHYARD_WS_MAX_CONNECTIONS_PER_USER=100000 SWITCHYARD_WS_FRAMES_PER_SEC=100000 \
    SWITCHYARD_RATELIMIT_AUTH_REQUESTS=100000 SWITCHYARD_LOG_LEVEL=warn SWITCHYARD_SERVER_WEB_DIR= \
    "$BIN" serve &
  PIDS+=($!)
done
for i in 1 2; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:1808$i/health/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:1808$i/health/ready" >/dev/null || { echo "instance $i is not ready" >&2; exit 1; }
done
# CPU seconds (user + system) a set of processes used; Redis's share shows its headroom.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
REDIS_PIDS=("${PIDS[@]:0:${#PIDS[@]}-2}")
NODE_PIDS=("${PIDS[@]: -2}")
HZ=$(getconf CLK_TCK)
run() {
  local r0 n0
  r0=$(ticks "${REDIS_PIDS[@]}"); n0=$(ticks "${NODE_PIDS[@]}")
  "$LOAD" fanout --url http://127.0.0.1:18081 --sub-url http://127.0.0.1:18082 \
    --subs "$SUBS" --rate "$RATE" --seconds 10 "$@"
  awk -v r=$(( $(ticks "${REDIS_PIDS[@]}") - r0 )) -v n=$(( $(ticks "${NODE_PIDS[@]}") - n0 )) -v hz="$HZ" \
    'BEGIN { printf "cpu: redis %.2f s, instances %.2f s\n", r / hz, n / hz }'
}
echo "== $MODE: one channel"
run
echo "== $MODE: 30 channels"
run --channels 30
echo "== $MODE: bus-bound (${BUS_RATE:-3000}/s over 30 channels, 1 subscriber each)"
SUBS=30 RATE=${BUS_RATE:-3000} run --channels 30
