# What the example tests share (sourced): check, start_example, code.
set -u
tmp=$(mktemp -d)
pid=""
failures=0
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; failures=$((failures + 1)); fi
}

# start_example BINARY ARGS...: starts it in the background (pid), waits for
# its "listening on http://..." line and sets base to that URL.
start_example() {
    "$@" >"$tmp/out" 2>&1 &
    pid=$!
    for _ in $(seq 200); do grep -q "listening on" "$tmp/out" && break; sleep 0.05; done
    base=$(sed -n 's/.*listening on \(https\{0,1\}:[^ ]*\).*/\1/p' "$tmp/out")
    base=${base%/}
    [ -n "$base" ] || { echo "FAIL $1 did not start: $(cat "$tmp/out")"; exit 1; }
}

# stop_example NAME: SIGTERM, a clean exit and the goodbye line.
stop_example() {
    kill -TERM "$pid"
    wait "$pid"; check "SIGTERM stops $1 cleanly" 0 $?
    pid=""
    grep -q "$1 stopped" "$tmp/out"; check "$1 says it stopped" 0 $?
}

# status_line BYTES: sends raw bytes (printf format) to the example and
# prints the status line of its answer.
status_line() {
    local hostport=${base#http://}
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
    printf "$1" >&3
    timeout 5 head -n1 <&3 | tr -d '\r'
    exec 3<&-
}

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

finish() { exit $((failures > 0)); }
