#!/usr/bin/env bash
# courier-embed as a user runs it: the application's own routes, its own
# publish endpoint, /events handed to a courier channel, SIGTERM.
# Usage: embed_test.sh PATH/TO/courier-embed
embed=$1
. "$(dirname "$0")/lib.sh"

start_example "$embed" --port 0 --address 127.0.0.1
check "the application's page" 200 "$(code "$base/")"
check "the application's health check" ok "$(curl -s "$base/health")"
check "the application's 404" 404 "$(code "$base/elsewhere")"
check "its publish endpoint refuses what it does not want" 400 "$(code -d '{"title":"x"}' "$base/api/news")"
check "and invalid JSON" 400 "$(code -d '{' "$base/api/news")"
check "and accepts a headline" 200 "$(code -d '{"headline":"first"}' "$base/api/news")"
check "it answers Expect: 100-continue" 200 \
    "$(code --max-time 3 --expect100-timeout 10 -H 'Expect: 100-continue' -d '{"headline":"second"}' "$base/api/news")"
curl -sN --max-time 1 "$base/events/news?since=earliest" >"$tmp/stream"
grep -q '^data: {"id":"[^"]*","topic":"news","data":{"headline":"first"}}$' "$tmp/stream"
check "courier's channel streams it at /events" 0 $?
check "courier's channel answers its errors" 400 "$(code "$base/events/bad%20topic")"
check "a malformed request gets the parser's error" "HTTP/1.1 400 Bad Request" \
    "$(status_line 'GET / HTTP/1.1\r\nHost t\r\n\r\n')"

stop_example courier-embed
finish
