#!/usr/bin/env bash
# The quick run, until the benchmark suite lands: start courier-hub, subscribe
# through every transport courier has, publish, print what each subscriber
# received, stop. Usage: benchmarks/quick.sh BUILD_DIR
set -euo pipefail
build=${1:?build dir}
hub="$build/examples/courier-hub"
tmp=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$hub" --port 0 --address 127.0.0.1 --threads 2 >"$tmp/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/hub.log" && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/hub.log")
[ -n "$base" ] || { cat "$tmp/hub.log"; exit 1; }
echo "hub at $base"

start=$(curl -sf "$base/poll/demo" | sed 's/.*"next":"\([^"]*\)".*/\1/')
# A long poll and an event stream wait while we publish through every mount.
curl -sf "$base/lp/demo?since=$start&timeout=10" >"$tmp/lp.json" &
lp_pid=$!
curl -sN --max-time 2 "$base/sse/demo?since=$start" >"$tmp/sse.txt" &
sse_pid=$!
sleep 0.2
for mount in poll lp sse; do
    for i in 1 2; do
        curl -sf -H 'Content-Type: application/json' -d "{\"via\":\"$mount\",\"n\":$i}" "$base/$mount/demo" >/dev/null
    done
done
wait "$lp_pid"
wait "$sse_pid" || true  # curl ends the stream at --max-time
echo "long-polling subscriber received: $(cat "$tmp/lp.json")"
echo "SSE subscriber received:"
grep '^data:' "$tmp/sse.txt" | sed 's/^/    /'

echo "polling subscriber received:      $(curl -sf "$base/poll/demo?since=$start")"
kill -TERM "$hub_pid"
wait "$hub_pid" || true
echo "hub stopped: $(tail -n 1 "$tmp/hub.log")"
