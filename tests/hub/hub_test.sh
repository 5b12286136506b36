#!/usr/bin/env bash
# courier-hub as a user runs it: flags, the demo token file, CORS, SIGTERM.
# Usage: hub_test.sh PATH/TO/courier-hub
set -u
hub=$1
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; failures=$((failures + 1)); fi
}

"$hub" --bogus >/dev/null 2>"$tmp/err"; check "unknown flag exits 2" 2 $?
grep -q "usage:" "$tmp/err"; check "unknown flag prints usage" 0 $?
"$hub" --port 70000 >/dev/null 2>&1; check "bad port exits 2" 2 $?
"$hub" --history 0 >/dev/null 2>&1; check "zero history exits 2" 2 $?
"$hub" --port >/dev/null 2>&1; check "missing value exits 2" 2 $?
"$hub" --tokens "$tmp/none" --port 0 >/dev/null 2>&1; check "unreadable token file exits 1" 1 $?

printf '# demo tokens\nalice tenant-a\nbob tenant-b\n' >"$tmp/tokens"
"$hub" --port 0 --address 127.0.0.1 --threads 2 --tokens "$tmp/tokens" --allow-origin http://app.test >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/out")
[ -n "$base" ]; check "--port 0 prints where it listens" 0 $?
grep -q "mounts /poll /lp /sse /ws" "$tmp/out"; check "mounts every transport" 0 $?

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "publish without a token" 401 "$(code -d '1' "$base/poll/room")"
check "publish with an unknown token" 401 "$(code -H 'Authorization: Bearer mallory' -d '1' "$base/poll/room")"
check "publish as alice" 200 "$(code -H 'Authorization: Bearer alice' -d '"from alice"' "$base/poll/room")"
check "bob's room is another room" '{"messages":[],' \
    "$(curl -s "$base/poll/room?since=earliest&access_token=bob" | cut -c1-15)"
curl -s "$base/lp/room?since=earliest&access_token=alice" | grep -q '"data":"from alice"'
check "alice reads her room over long polling" 0 $?
check "preflight from an allowed origin" 204 \
    "$(code -X OPTIONS -H 'Origin: http://app.test' -H 'Access-Control-Request-Method: POST' "$base/poll/room")"
check "preflight from another origin" 403 \
    "$(code -X OPTIONS -H 'Origin: http://evil.test' -H 'Access-Control-Request-Method: POST' "$base/poll/room")"

kill -TERM "$pid"
wait "$pid"; check "SIGTERM stops it cleanly" 0 $?
pid=""
grep -q "courier-hub stopped" "$tmp/out"; check "says it stopped" 0 $?
exit $((failures > 0))
