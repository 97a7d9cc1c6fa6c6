#!/usr/bin/env bash
# RSS of a server receiving zip bombs (issue #19): N concurrent gzip bodies of 64 KiB that
# decompress to 64 MiB each, sent to POST /v1/projects; each must get 413 and RSS stay flat.
#   load/zipbomb.sh [N]   (default 50; needs curl, python3 and target/release/switchyard)
set -euo pipefail
N=${1:-50}
PORT=${PORT:-18991}
BIN=${BIN:-target/release/switchyard}
DIR=$(mktemp -d)
SWITCHYARD_SERVER_DATA_DIR=$DIR SWITCHYARD_SERVER_BIND=127.0.0.1:$PORT SWITCHYARD_LOG_LEVEL=warn \
  SWITCHYARD_RATELIMIT_AUTH_REQUESTS=100000 "$BIN" serve &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
python3 - "$DIR/bomb.gz" <<'PY'
import gzip, sys
with gzip.open(sys.argv[1], "wb", compresslevel=9) as f:
    f.write(b'{"name": "x", "description": "')
    f.write(b" " * (64 << 20))
    f.write(b'"}')
PY
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"ops@example.com","password":"zip-wall-test-42"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
rss() { awk '/VmRSS/ {print $2 " KiB"}' /proc/$SERVER/status; }
echo "bomb: $(stat -c %s "$DIR/bomb.gz") bytes on the wire, 64 MiB inflated"
echo "RSS before: $(rss)"
for i in $(seq "$N"); do
  curl -s -o /dev/null -w "%{http_code}\n" "http://127.0.0.1:$PORT/v1/projects" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -H 'content-encoding: gzip' --data-binary @"$DIR/bomb.gz" &
done | sort | uniq -c   # the pipe closes once every curl has answered
echo "RSS after $N concurrent bombs: $(rss)"
