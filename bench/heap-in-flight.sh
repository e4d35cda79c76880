#!/usr/bin/env bash
# What a session server holds per request in flight: a heap snapshot taken idle, then one taken in the
# middle of a load of many concurrent reads, and their difference by kind (bench/lib/heap-diff.mjs).
# A diagnostic, not a scenario: compare two peers' differences, each divided by its requests in flight
# (its ServerResponse count).
#
#   bash bench/heap-in-flight.sh bench/peers/express-shoal-app.ts [connections=300] [port=20901]
#   bash bench/heap-in-flight.sh bench/peers/express-floor-app.mjs   (needs npm run build)
#
# Redis at $BENCH_REDIS (default redis://127.0.0.1:6379/5); the run's keys are deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:?usage: bash bench/heap-in-flight.sh <peer script> [connections] [port]}
connections=${2:-300}
port=${3:-20901}
redis=${BENCH_REDIS:-redis://127.0.0.1:6379/5}
run="heap-$(date +%s)-$$"
dir=$(mktemp -d "/tmp/$run-XXXX")
url="http://127.0.0.1:$port"

SHOAL_STORE=$redis SHOAL_NAMESPACE=$run SHOAL_SECRETS=heap-in-flight-development-secret-0123456789 \
  node --heapsnapshot-signal=SIGUSR2 --diagnostic-dir="$dir" --import tsx "$peer" --port "$port" >"$dir/server.log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  npx tsx -e "import('./bench/lib/redis.ts').then((m) => m.cleanupRun(process.argv[1], process.argv[2]))" \
    "$redis" "$run" || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
cookie=$(curl -s -D - -o /dev/null -X POST "$url/login?user=ann" | tr -d '\r' | grep -i '^set-cookie:' | head -1 | sed 's/^[^:]*: //; s/;.*//')
curl -sf -X POST -H "cookie: $cookie" --data 'hello' "$url/set/greeting" >/dev/null
npx autocannon -c 50 -d 5 -H "cookie: $cookie" "$url/session" >/dev/null 2>&1 # warm-up
sleep 2
kill -USR2 "$server" # idle
sleep 6
npx autocannon -c "$connections" -d 12 -H "cookie: $cookie" "$url/session" >/dev/null 2>&1 &
load=$!
sleep 5
kill -USR2 "$server" # in flight
wait "$load"
sleep 8
snapshots=("$dir"/*.heapsnapshot)
node bench/lib/heap-diff.mjs "${snapshots[0]}" "${snapshots[1]}"
rm -rf "$dir"
