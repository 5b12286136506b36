#!/usr/bin/env bash
# Smoke test of the nchan peer: start nginx + nchan from nginx.conf.in on a
# free loopback port in a temp prefix, check the wire behaviour README.md
# describes for publish, SSE, WebSocket, long poll and interval poll, print
# PASS/FAIL per item, stop nginx by its PID. Exit 0 only when all pass.
# Needs: nginx libnginx-mod-nchan curl python3-websockets (Debian 12).
# Usage: benchmarks/nchan/check.sh      (about 5 s)
set -uo pipefail
# Hard deadline: rerun this script under timeout(1); its TERM trap still stops nginx.
if [ -z "${NCHAN_CHECK_DEADLINE:-}" ]; then
    NCHAN_CHECK_DEADLINE=1 exec timeout -k 5 25 bash "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3   # Debian's python, where python3-websockets lives

prefix=$(mktemp -d /tmp/courier-nchan.XXXXXX)
nginx_pid=""
cleanup() {
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null   # master stops its worker
        wait "$nginx_pid" 2>/dev/null
    fi
    rm -rf "$prefix"
}
trap cleanup EXIT
trap 'echo "FAIL check.sh timed out"; exit 124' TERM INT

passed=0; failed=0
result() {  # result NAME OK(0/1) [detail]
    if [ "$2" -eq 0 ]; then echo "PASS $1"; passed=$((passed + 1))
    else echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

# A free port: bind port 0 and read what the kernel chose (tiny race, fine here).
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Workers run as "nobody" when started as root: let them traverse the prefix.
chmod 755 "$prefix"
mkdir -p "$prefix/tmp"
sed -e "s|@PORT@|$port|g" -e "s|@PREFIX@|$prefix|g" "$here/nginx.conf.in" >"$prefix/nginx.conf"

if ! nginx -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" -t -q 2>"$prefix/test.log"; then
    result "config loads (nchan module)" 1 "$(cat "$prefix/test.log")"; exit 1
fi
result "config loads (nchan module)" 0
# nginx itself in the background (not a function or subshell), so $! is the master.
nginx -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" -g 'daemon off;' >"$prefix/stdout.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/nchan_status" && break; sleep 0.1; done
B="http://127.0.0.1:$port"
T="smoke$$"   # a fresh topic

# --- publish -------------------------------------------------------------
# 202 Accepted (no subscriber) and the new message's id in the JSON body.
pub() {  # pub BODY -> prints "STATUS ID"
    local r
    r=$(curl -s -H 'Accept: application/json' --data-binary "$1" -w '\n%{http_code}' "$B/pub/$T")
    echo "${r##*$'\n'} $(sed -n 's/.*"last_message_id": *"\([^"]*\)".*/\1/p' <<<"$r")"
}
read -r st1 id1 <<<"$(pub 'm1')"
read -r st2 id2 <<<"$(pub "$(printf 'm2a\nm2b')")"
read -r st3 id3 <<<"$(pub 'm3')"
[[ "$st1 $st2 $st3" == "202 202 202" && "$id1" =~ ^[0-9]+:[0-9]+$ && -n "$id3" ]]
result "publish: POST /pub/{topic} -> 202 + last_message_id ($id1 $id2 $id3)" $? "$st1 $st2 $st3 '$id1'"

# --- SSE -------------------------------------------------------------------
sse=$(curl -s -N --max-time 1 -H 'Accept: text/event-stream' "$B/sse/$T")
want=$(printf ': hi\n\nid: %s\ndata: m1\n\nid: %s\ndata: m2a\ndata: m2b\n\nid: %s\ndata: m3\n\n' "$id1" "$id2" "$id3")
[ "$sse" == "$want" ]; result "sse: from oldest, id:/data: lines, multi-line body split" $? "$(printf %q "$sse")"
sse=$(curl -s -N --max-time 1 -H 'Accept: text/event-stream' -H "Last-Event-ID: $id2" "$B/sse/$T" | grep -v '^:')
[ "$(echo "$sse" | grep '^id:' | tr '\n' ' ')" == "id: $id3 " ]; result "sse: resume with Last-Event-ID" $? "$(printf %q "$sse")"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$B/sse/$T")" == 403 ]
result "sse: GET without Accept: text/event-stream -> 403" $?

# --- WebSocket (Python websockets, Debian's 10.x legacy API) -------------
ws_out=$($py - "$port" "$T" "$id1" "$id2" "$id3" 2>&1 <<'EOF'
import asyncio, sys, websockets
port, topic, id1, id2, id3 = sys.argv[1:]
url = f"ws://127.0.0.1:{port}/ws/{topic}"
async def take(ws, n):
    return [await asyncio.wait_for(ws.recv(), 2) for _ in range(n)]
async def main():
    # Plain: one text frame per message, the raw body, oldest first.
    async with websockets.connect(url, compression=None) as ws:
        got = await take(ws, 3)
        good = got == ["m1", "m2a\nm2b", "m3"]
        print(("PASS" if good else "FAIL") + " ws: from oldest, one text frame = raw body", "" if good else got)
    # ws+meta.nchan: "id: ...\ncontent-type: ...\n\n" + body; resume by ?last_event_id.
    async with websockets.connect(url + "?last_event_id=" + id1, subprotocols=["ws+meta.nchan"],
                                  compression=None) as ws:
        got = await take(ws, 2)
        good = (ws.subprotocol == "ws+meta.nchan" and got[0].startswith(f"id: {id2}\n")
                and got[0].endswith("\n\nm2a\nm2b") and got[1].startswith(f"id: {id3}\n"))
        print(("PASS" if good else "FAIL") + " ws: ws+meta.nchan id header + resume ?last_event_id=", "" if good else got)
try:
    asyncio.run(main())
except Exception as e:
    print(f"FAIL ws: {type(e).__name__}: {e}")
EOF
)
echo "$ws_out"
passed=$((passed + $(grep -c '^PASS' <<<"$ws_out"))); failed=$((failed + $(grep -c '^FAIL' <<<"$ws_out")))

# --- long poll, one message per response (/lp1) ----------------------------
hdr() { sed -n "s/^$1: \(.*\)\r$/\1/Ip" "$2"; }   # hdr NAME FILE
body=$(curl -s --max-time 2 -D "$prefix/h1" "$B/lp1/$T")
lm=$(hdr Last-Modified "$prefix/h1"); et=$(hdr Etag "$prefix/h1")
[ "$body" == m1 ] && [ -n "$lm" ] && [ "$et" == "${id1#*:}" ]
result "lp: first request (no id) -> oldest message, Last-Modified + Etag" $? "'$body' '$lm' '$et'"
body=$(curl -s --max-time 2 -D "$prefix/h2" -H "If-Modified-Since: $lm" -H "If-None-Match: $et" "$B/lp1/$T")
[ "$body" == "$(printf 'm2a\nm2b')" ]; result "lp: If-Modified-Since + If-None-Match -> next one message" $? "'$body'"

# A waiting long poll is answered by the next publish (201: it had a subscriber).
lm=$(TZ=GMT date -d "@${id3%:*}" '+%a, %d %b %Y %H:%M:%S GMT'); et=${id3#*:}
curl -s --max-time 3 -H "If-Modified-Since: $lm" -H "If-None-Match: $et" "$B/lp1/$T" >"$prefix/wait.txt" &
waiter=$!
sleep 0.3
st4=$(curl -s -o /dev/null -w '%{http_code}' --data-binary m4 "$B/pub/$T")
wait $waiter
[ "$(cat "$prefix/wait.txt")" == m4 ] && [ "$st4" == 201 ]
result "lp: waits for the next publish (publish -> 201 with a subscriber)" $? "'$(cat "$prefix/wait.txt")' $st4"

# --- long poll, multipart batch (/lp) --------------------------------------
body=$(curl -s --max-time 2 -D "$prefix/h3" "$B/lp/$T")
ct=$(hdr Content-Type "$prefix/h3"); b=${ct#*boundary=}
parts=$(grep -cxF -- "--$b"$'\r' <<<"$body")
[[ "$ct" == multipart/mixed\;\ boundary=* ]] && [ "$parts" == 4 ] && grep -qxF -- "--$b--"$'\r' <<<"$body"
result "lp multipart: all 4 buffered messages in one multipart/mixed response" $? "'$ct' parts=$parts"

# --- interval poll (/poll) ---------------------------------------------------
body=$(curl -s -D "$prefix/h4" "$B/poll/$T")
lm=$(hdr Last-Modified "$prefix/h4"); et=$(hdr Etag "$prefix/h4")
[ "$body" == m1 ]; result "poll: first request (no id) -> oldest message" $? "'$body'"
body=$(curl -s -D "$prefix/h5" -H "Last-Event-ID: $id3" "$B/poll/$T")
lm=$(hdr Last-Modified "$prefix/h5"); et=$(hdr Etag "$prefix/h5")
[ "$body" == m4 ]; result "poll: resume by Last-Event-ID -> next message (m4)" $? "'$body'"
st=$(curl -s -o /dev/null -w '%{http_code}' -D "$prefix/h6" -H "If-Modified-Since: $lm" -H "If-None-Match: $et" "$B/poll/$T")
[ "$st" == 304 ] && [ "$(hdr Etag "$prefix/h6")" == "$et" ]
result "poll: nothing new -> 304 with the same Last-Modified/Etag" $? "$st"

# --- from now ------------------------------------------------------------------
curl -s -N --max-time 1.5 -H 'Accept: text/event-stream' "$B/sse/$T?from=now" >"$prefix/now.txt" &
waiter=$!
sleep 0.4
curl -s -o /dev/null --data-binary m5 "$B/pub/$T"
wait $waiter
[ "$(grep '^data:' "$prefix/now.txt" | tr '\n' ' ')" == "data: m5 " ]
result "sse ?from=now: only messages published after connecting" $? "$(printf %q "$(cat "$prefix/now.txt")")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
