#!/usr/bin/env bash
# courier-chat as a user runs it: tokens and tenants, rooms with history,
# every transport on one broker, the page, bad token files, SIGTERM.
# Usage: chat_test.sh PATH/TO/courier-chat
chat=$1
. "$(dirname "$0")/lib.sh"

"$chat" --bogus >/dev/null 2>"$tmp/err"; check "unknown flag exits 2" 2 $?
grep -q "usage:" "$tmp/err"; check "unknown flag prints usage" 0 $?
"$chat" --history 0 >/dev/null 2>&1; check "zero history exits 2" 2 $?
"$chat" --port 0 --tokens "$tmp/none" >/dev/null 2>"$tmp/err"; check "missing token file exits 1" 1 $?
printf '{"alice": {"tenant": "acme", "read": [' >"$tmp/broken.json"
"$chat" --port 0 --tokens "$tmp/broken.json" >/dev/null 2>"$tmp/err"; check "invalid JSON exits 1" 1 $?
grep -q "invalid JSON at offset" "$tmp/err"; check "says where the JSON breaks" 0 $?
printf '{"alice": {"tenant": "acme", "read": ["a room"]}}' >"$tmp/badroom.json"
"$chat" --port 0 --tokens "$tmp/badroom.json" >/dev/null 2>"$tmp/err"; check "a bad room name exits 1" 1 $?
grep -q "bad room name a room" "$tmp/err"; check "names the bad room" 0 $?
printf '{"alice": {"read": ["lobby"]}}' >"$tmp/notenant.json"
"$chat" --port 0 --tokens "$tmp/notenant.json" >/dev/null 2>&1; check "a token without tenant exits 1" 1 $?

start_example "$chat" --port 0 --address 127.0.0.1 --history 3
check "the page" 200 "$(code "$base/")"
check "its script" 200 "$(code "$base/chat.js")"
curl -s "$base/courier.js" | grep -q "export class Courier"; check "courier.js" 0 $?

say() {  # say TOKEN MOUNT ROOM TEXT -> status
    code -H "Authorization: Bearer $1" -d "{\"from\":\"$1\",\"text\":\"$4\"}" "$base/$2/$3"
}
check "alice writes lobby over /ws's HTTP publish" 200 "$(say alice ws lobby one)"
check "bob writes lobby over /poll" 200 "$(say bob poll lobby two)"
check "carol (globex) writes her own lobby" 200 "$(say carol lp lobby globex-only)"
check "no token" 401 "$(code -d '{}' "$base/poll/lobby")"
check "unknown token" 401 "$(say mallory poll lobby x)"
check "bob may not write dev" 403 "$(say bob poll dev x)"
check "dave may read but not write" 403 "$(say dave poll lobby x)"
check "bob may not read dev" 403 "$(code "$base/poll/dev?access_token=bob")"
check "carol may not read acme's announce" 403 "$(code "$base/poll/announce?access_token=carol")"

acme=$(curl -s "$base/poll/lobby?since=earliest&access_token=bob")
echo "$acme" | grep -q '"text":"one"' && echo "$acme" | grep -q '"text":"two"'; check "acme's lobby holds both" 0 $?
echo "$acme" | grep -q globex-only; check "and nothing of globex's" 1 $?
globex=$(curl -s "$base/sse/lobby?since=earliest&access_token=dave" --max-time 1)
echo "$globex" | grep -q '"text":"globex-only"'; check "dave reads globex's lobby over SSE" 0 $?
echo "$globex" | grep -q '"text":"one"'; check "and nothing of acme's" 1 $?

for n in 3 4 5; do say ceo poll lobby "m$n" >/dev/null; done
history=$(curl -s "$base/poll/lobby?since=earliest&access_token=ceo")
check "history keeps the newest 3" '"m3" "m4" "m5"' "$(echo "$history" | grep -o '"m[0-9]"' | tr '\n' ' ' | sed 's/ $//')"
echo "$history" | grep -q '"text":"one"'; check "older ones are gone" 1 $?

stop_example courier-chat
finish
