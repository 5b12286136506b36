#!/usr/bin/env bash
# The benchmark's load generator against courier-hub, small: every transport
# delivers every message exactly once, and the figures the suite reports are
# present. Usage: loadgen_smoke.sh COURIER_HUB COURIER_LOADGEN
set -uo pipefail
hub=${1:?courier-hub}
loadgen=${2:?courier-loadgen}
tmp=$(mktemp -d)
"$hub" --port 0 --address 127.0.0.1 --threads 1 --history 100000 >"$tmp/hub.log" 2>&1 &
hub_pid=$!
trap 'kill "$hub_pid" 2>/dev/null; wait "$hub_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q listening "$tmp/hub.log" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/hub.log")
[ -n "$port" ] || { echo "FAIL: hub did not start"; cat "$tmp/hub.log"; exit 1; }
status=0
for transport in sse ws lp poll; do
    for mode in "--depth 10" "--rate 2000"; do
        out=$(timeout 60 "$loadgen" --port "$port" --server-pid "$hub_pid" --transport "$transport" \
              --subscribers 20 --messages 400 $mode --interval-ms 20 --topic "smoke-$transport-${mode// /}" --timeout 20)
        ok=1
        for want in '"delivered":8000' '"expected":8000' '"lost":0' '"missing":0' '"duplicated":0' '"publish_errors":0'; do
            [[ "$out" == *"$want"* ]] || ok=0
        done
        [[ "$out" =~ \"cpu_us_per_msg\":[0-9.]+ && "$out" =~ \"p99_us\":[0-9]+ ]] || ok=0
        if [ $ok -eq 1 ]; then echo "PASS $transport $mode"; else echo "FAIL $transport $mode: $out"; status=1; fi
    done
done
exit $status
