#!/usr/bin/env bash
# courier-hub as a user runs it: flags, the demo token file, CORS, SIGTERM.
# Usage: hub_test.sh PATH/TO/courier-hub
hub=$1
. "$(dirname "$0")/lib.sh"

"$hub" --bogus >/dev/null 2>"$tmp/err"; check "unknown flag exits 2" 2 $?
grep -q "usage:" "$tmp/err"; check "unknown flag prints usage" 0 $?
"$hub" --port 70000 >/dev/null 2>&1; check "bad port exits 2" 2 $?
"$hub" --history 0 >/dev/null 2>&1; check "zero history exits 2" 2 $?
"$hub" --port >/dev/null 2>&1; check "missing value exits 2" 2 $?
"$hub" --tokens "$tmp/none" --port 0 >/dev/null 2>&1; check "unreadable token file exits 1" 1 $?

printf '# demo tokens\nalice tenant-a\nbob tenant-b\n' >"$tmp/tokens"
"$hub" --log loud >/dev/null 2>&1; check "bad log level exits 2" 2 $?
start_example "$hub" --port 0 --address 127.0.0.1 --threads 2 --tokens "$tmp/tokens" --allow-origin http://app.test \
    --metrics /metrics --log debug
grep -q "mounts /poll /lp /sse /ws" "$tmp/out"; check "mounts every transport" 0 $?

check "the platform pages at /" 200 "$(code "$base/")"
curl -s "$base/sse.html" | grep -q "new EventSource"; check "the EventSource page" 0 $?
curl -s "$base/courier.js" | grep -q "export class Courier"; check "courier.js" 0 $?
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

curl -s "$base/metrics" | grep -q '^courier_messages_published_total 1$'; check "metrics count the publish" 0 $?
status_line 'GET / HTTP/1.1\r\nHost t\r\n\r\n' >/dev/null
grep -q "courier-hub: debug: malformed request: bad_request" "$tmp/out"; check "logs at debug level" 0 $?
"$hub" --port 0 --web "$tmp/none" >/dev/null 2>"$tmp/err"; check "a --web that is no directory exits 1" 1 $?

stop_example courier-hub

# https with a certificate made here, read by curl (a client nobody here wrote).
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null \
   && ! "$hub" --tls-cert "$tmp/cert.pem" 2>&1 | grep -q "without TLS"; then
    "$hub" --port 0 --tls-cert "$tmp/cert.pem" >/dev/null 2>"$tmp/err"; check "--tls-cert without --tls-key exits 1" 1 $?
    start_example "$hub" --port 0 --address 127.0.0.1 --threads 1 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
    case "$base" in https://*) check "says https" 0 0 ;; *) check "says https" https "$base" ;; esac
    check "publish over https" 200 "$(code --cacert "$tmp/cert.pem" -d '{"secure":true}' "$base/poll/room")"
    curl -s --cacert "$tmp/cert.pem" "$base/poll/room?since=earliest" | grep -q '"data":{"secure":true}'
    check "poll over https" 0 $?
    curl -sN --max-time 1 --cacert "$tmp/cert.pem" "$base/sse/room?since=earliest" | grep -q '^data: .*"secure":true'
    check "SSE over https" 0 $?
    curl -s -o /dev/null "$base/poll/room"; check "curl refuses an untrusted certificate (60)" 60 $?
    check "plain http on the https port gets nothing" 000 "$(code --max-time 3 "http://${base#https://}/poll/room")"
    stop_example courier-hub
else
    echo "skip https: no openssl command, or a build without TLS"
fi
finish
