#!/usr/bin/env bash
# courier-ticker as a user runs it: prices flow per symbol over SSE, with
# history, one stream for several symbols, the page, SIGTERM.
# Usage: ticker_test.sh PATH/TO/courier-ticker
ticker=$1
. "$(dirname "$0")/lib.sh"

"$ticker" --interval-ms 0 >/dev/null 2>&1; check "a zero interval exits 2" 2 $?

start_example "$ticker" --port 0 --address 127.0.0.1 --interval-ms 20
check "the page" 200 "$(code "$base/")"
check "its script" 200 "$(code "$base/ticker.js")"
sleep 0.5
curl -sN --max-time 1 "$base/sse?topic=ACME&topic=HOOLI&since=earliest" >"$tmp/stream"
acme=$(grep -c '"symbol":"ACME"' "$tmp/stream")
hooli=$(grep -c '"symbol":"HOOLI"' "$tmp/stream")
[ "$acme" -ge 20 ] && [ "$hooli" -ge 20 ]; check "both symbols stream, history first (ACME $acme, HOOLI $hooli)" 0 $?
grep -q '"symbol":"STARK"' "$tmp/stream"; check "a symbol not asked for does not" 1 $?
grep -m1 '"symbol":"ACME"' "$tmp/stream" | grep -Eq '"price":[0-9]+\.[0-9]{2},"open":182\.50,"t":[0-9]{13}\}\}$'
check "a price message has price, open and time" 0 $?
check "an unknown path" 404 "$(code "$base/nope")"

stop_example courier-ticker
finish
