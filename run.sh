#!/usr/bin/env bash
# courier: set-up and the two commands, on a fresh Debian 12 machine.
#
#   ./run.sh bench          the main job: the benchmark suite's quick run (--full: all of it)
#   ./run.sh test           build and run every test (plain, ASan+UBSan, TSan)
#   ./run.sh test --quick   the plain build's tests only
#   ./run.sh fuzz [SECONDS] each libFuzzer target for SECONDS (default 600)
#   ./run.sh demo [PORT]    the chat example: prints a URL to open (default port 8080)
#
# Installs the Debian packages it needs when they are missing (as root, or
# through sudo), then configures and builds under build/.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential cmake pkg-config libasio-dev rapidjson-dev catch2 libssl-dev zlib1g-dev
          clang libclang-rt-14-dev curl ca-certificates chromium python3-websockets
          nginx libnginx-mod-nchan gnuplot-nox)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

say() { printf '\033[1m[courier]\033[0m %s\n' "$*"; }

install_packages() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The benchmark runs its own nginx (benchmarks/nchan); a system service
    # that the package may have started is not needed.
    if [ -f /run/nginx.pid ]; then $sudo nginx -s stop 2>/dev/null || true; fi
}

# The browser tests' npm dependencies: playwright-core (it drives Debian's
# chromium and never downloads a browser) and ws (the WebSocket interop test).
install_browser_deps() {
    [ -d tests/browser/node_modules/playwright-core ] && [ -d tests/browser/node_modules/ws ] && return 0
    say "installing playwright-core and ws for the browser and interop tests"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# configure_build DIR [cmake args...] [-- targets...]: builds every target, or the ones named.
configure_build() {
    local dir=$1; shift
    local args=() targets=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
    [ $# -gt 0 ] && shift && targets=(--target "$@")
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${args[@]}" >/dev/null
    cmake --build "$dir" -j"$jobs" "${targets[@]}"
}

run_tests() {
    local quick=0
    [ "${1:-}" = "--quick" ] && quick=1
    say "plain build"
    configure_build build/plain
    (cd build/plain && ctest --output-on-failure -j"$jobs" --timeout 600)
    [ $quick -eq 1 ] && return 0
    say "AddressSanitizer + UBSan build"
    configure_build build/asan -DCOURIER_SANITIZE=ON -DCOURIER_BUILD_BENCHMARKS=OFF -DCOURIER_PACKAGE_TESTS=OFF \
        -DCOURIER_HEADER_CHECK=OFF -DCOURIER_BROWSER_TESTS=OFF
    (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure -j"$jobs" --timeout 900)
    say "ThreadSanitizer build (threaded and integration tests; the 100,000-message and 1,000-connection runs only in the other builds)"
    configure_build build/tsan -DCOURIER_TSAN=ON -DCOURIER_BUILD_BENCHMARKS=OFF -DCOURIER_BUILD_EXAMPLES=OFF \
        -DCOURIER_PACKAGE_TESTS=OFF -DCOURIER_HEADER_CHECK=OFF -- courier_thread_tests courier_integration_tests
    (cd build/tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        ctest --output-on-failure -L 'threads|integration' -E '100,000|1,000 connections' -j"$jobs" --timeout 900)
    run_fuzz 20
    say "all tests passed"
}

# run_fuzz SECONDS: builds the libFuzzer targets with clang and runs each on
# its seed corpus (tests/fuzz/corpus) for SECONDS.
run_fuzz() {
    local seconds=${1:-600}
    say "fuzzing, ${seconds}s per target"
    CXX=clang++ configure_build build/fuzz -DCOURIER_FUZZ=ON -DCOURIER_BUILD_TESTS=OFF \
        -DCOURIER_BUILD_EXAMPLES=OFF -DCOURIER_BUILD_BENCHMARKS=OFF
    for target in "$root"/build/fuzz/tests/fuzz/fuzz_*; do
        local name=${target##*/fuzz_}
        mkdir -p "build/fuzz/corpus/$name" "build/fuzz/crashes"
        "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=build/fuzz/crashes/ \
            "build/fuzz/corpus/$name" "tests/fuzz/corpus/$name" 2>"build/fuzz/$name.log" \
            || { tail -n 40 "build/fuzz/$name.log"; say "fuzz target $name found a problem"; return 1; }
        say "fuzz $name: $(grep -o 'number_of_executed_units: [0-9]*' "build/fuzz/$name.log" | cut -d' ' -f2) executions, no finding"
    done
}

# The benchmark suite (benchmarks/run.py): courier's four transports and
# nginx + nchan on the same load; --full runs every scenario.
run_bench() {
    configure_build build/plain
    /usr/bin/python3 "$root/benchmarks/run.py" "$root/build/plain" "$@"
}

# The chat example (examples/chat) on PORT, until Ctrl-C.
run_demo() {
    local port=${1:-8080}
    cmake -S "$root" -B build/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build/plain -j"$jobs" --target courier-chat
    say "open http://127.0.0.1:$port/ in a browser (tokens: alice, bob, ceo of acme; carol, dave of globex);"
    say "two windows with different tokens or transports chat with each other. Ctrl-C stops it."
    exec build/plain/examples/courier-chat --port "$port"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    test)  install_packages; install_browser_deps; run_tests "$@" ;;
    bench) install_packages; run_bench "$@" ;;
    fuzz)  install_packages; run_fuzz "$@" ;;
    demo)  install_packages; run_demo "$@" ;;
    *) echo "usage: ./run.sh bench [--full] | ./run.sh test [--quick] | ./run.sh fuzz [SECONDS] | ./run.sh demo [PORT]" >&2
       exit 2 ;;
esac
