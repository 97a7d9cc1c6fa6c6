#!/usr/bin/env bash
# RSS of a server refusing oversized uploads (issue #18): a 100 MiB file is streamed to
# POST /v1/sessions/{id}/files (limit files.max_file_bytes, 10 MiB), once with its
# Content-Length (refused before the body is read) and N times at once chunked (no length:
# refused when the count passes the limit); then one 9 MiB upload that is accepted and
# downloaded. RSS must not grow by more than a few MiB.
#   load/upload_rss.sh [N]   (default 8; needs curl, python3 and target/release/switchyard)
set -euo pipefail
N=${1:-8}
PORT=${PORT:-18992}
BIN=${BIN:-target/release/switchyard}
DIR=$(mktemp -d)
SWITCHYARD_SERVER_DATA_DIR=$DIR SWITCHYARD_SERVER_BIND=127.0.0.1:$PORT SWITCHYARD_LOG_LEVEL=warn \
  SWITCHYARD_RATELIMIT_AUTH_REQUESTS=100000 "$BIN" serve &
SERVER=$!
trap 'kill $SERVER; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
BASE=http://127.0.0.1:$PORT
TOKEN=$(curl -sf "$BASE/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"ops@example.com","password":"upload-wall-test-42"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
SID=$(curl -sf "$BASE/v1/sessions" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
python3 -c "import sys; sys.stdout.buffer.write(b'x' * (100 << 20))" > "$DIR/big.txt"
python3 -c "import sys; sys.stdout.buffer.write(b'y' * (9 << 20))" > "$DIR/ok.txt"
rss() { awk '/VmRSS/ {print $2}' /proc/$SERVER/status; }
URL="$BASE/v1/sessions/$SID/files?filename=big.txt"
BEFORE=$(rss)
echo "RSS before: $BEFORE KiB"
echo "100 MiB with Content-Length: $(curl -s -o /dev/null -w '%{http_code}' "$URL" \
  -H "authorization: Bearer $TOKEN" --data-binary @"$DIR/big.txt")"
for _ in $(seq "$N"); do
  curl -s -o /dev/null -w "%{http_code}\n" "$URL" -H "authorization: Bearer $TOKEN" \
    -H 'transfer-encoding: chunked' --data-binary @"$DIR/big.txt" &
done | sort | uniq -c | sed 's/^/100 MiB chunked, answers: /'
AFTER=$(rss)
echo "RSS after $N concurrent 100 MiB attempts: $AFTER KiB (+$(( (AFTER - BEFORE) / 1024 )) MiB)"
FID=$(curl -sf "$BASE/v1/sessions/$SID/files?filename=ok.txt" -H "authorization: Bearer $TOKEN" \
  --data-binary @"$DIR/ok.txt" | sed 's/.*"id":"\([^"]*\)".*/\1/')
curl -sf -o "$DIR/back.txt" "$BASE/v1/sessions/$SID/files/$FID" -H "authorization: Bearer $TOKEN"
cmp -s "$DIR/ok.txt" "$DIR/back.txt" && echo "9 MiB upload stored and read back whole"
echo "RSS after a 9 MiB upload and download: $(rss) KiB"
echo "spool files left: $(find "$DIR/files/spool" -type f | wc -l)"
