#!/usr/bin/env bash
# How long GET /v1/analytics takes on PostgreSQL with 10M usage rows (issue #16).
#   load/analytics.sh [ROWS]      (default 10000000; needs psql, curl and a release build)
#   SKIP_FILL=1 load/analytics.sh (time again against the database already filled)
# Makes a fresh database sy_analytics, fills usage_records with ROWS rows spread over 90 days
# (10 models, 200 users, 50 API keys, 2% errors), then times the route for 1, 30 and 90 days.
set -euo pipefail
ROWS=${1:-10000000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=sy_analytics
BIN=${BIN:-target/release/switchyard}
PORT=${PORT:-18990}
export SWITCHYARD_DATABASE_URL="$PG/$DB" SWITCHYARD_SERVER_DATA_DIR=$(mktemp -d)
export SWITCHYARD_SERVER_BIND=127.0.0.1:$PORT SWITCHYARD_USER_PASSWORD=analytics-bench-77
if [ -z "${SKIP_FILL:-}" ]; then
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
"$BIN" migrate >/dev/null 2>&1
"$BIN" user create --email admin@example.com --admin >/dev/null 2>&1
psql "$PG/$DB" -q <<SQL
INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
  SELECT gen_random_uuid(), 'u' || g || '@example.com', 'x', 'user', now(), now()
  FROM generate_series(1, 200) g;
INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at)
  SELECT gen_random_uuid(), (SELECT id FROM users ORDER BY id OFFSET (g % 200) LIMIT 1),
         'k' || g, 'sk-sy-', decode(md5(g::text), 'hex'), now()
  FROM generate_series(1, 50) g;
CREATE TEMP TABLE u AS SELECT id, row_number() OVER () - 1 AS n FROM users WHERE email LIKE 'u%';
CREATE TEMP TABLE k AS SELECT id, row_number() OVER () - 1 AS n FROM api_keys;
\timing on
INSERT INTO usage_records (id, user_id, api_key_id, source, model, prompt_tokens,
    completion_tokens, latency_ms, status, created_at)
  SELECT gen_random_uuid(), u.id, CASE WHEN g % 3 = 0 THEN NULL ELSE k.id END,
         CASE WHEN g % 4 = 0 THEN 'chat' ELSE 'rest' END, 'model-' || (g % 10),
         (g % 900) + 10, (g % 400) + 1, (g % 2000) + 5,
         CASE WHEN g % 50 = 0 THEN 'error' ELSE 'ok' END,
         now() - ((g::float8 / $ROWS) * interval '90 days')
  FROM generate_series(1, $ROWS) g
  JOIN u ON u.n = g % 200
  JOIN k ON k.n = g % 50;
VACUUM ANALYZE usage_records;
SQL
fi
"$BIN" serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"admin@example.com","password":"analytics-bench-77"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
for days in 1 30 90; do
  FROM=$(date -u -d "-$days days" +%Y-%m-%dT%H:%M:%SZ)
  for run in 1 2 3; do
    curl -s -o /dev/null -w "$days days, run $run: %{http_code} in %{time_total} s\n" \
      -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/analytics?from=$FROM"
  done
done
