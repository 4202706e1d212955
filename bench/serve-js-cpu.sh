#!/usr/bin/env bash
# serve-js-cpu.sh — serve-js side by side for builds of `dtask`: for each round, for each
# binary given, one run against a fresh `dtask serve` from it (its own database and port): the
# official JavaScript SDK worker (bench/js/worker.mjs) connected, warmed with 2,000 `hello` at
# 16, then N `hello` at 64 by dtask-bench; prints the throughput and the CPU per `hello` of
# the server and of the worker (from /proc). Alternating the binaries in one run tells a change
# of ours from the machine's mood (docs/performance.md, thirteenth round).
#
#   bench/serve-js-cpu.sh [-n N] [-r ROUNDS] DTASK...      (N 2000, ROUNDS 3)
#
# dtask-bench is the repo's build-bench/dtask-bench (make bench builds it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bench="$repo/build-bench/dtask-bench"
n=2000
rounds=3
while getopts "n:r:" o; do
    case "$o" in
        n) n="$OPTARG" ;;
        r) rounds="$OPTARG" ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [[ $# -eq 0 ]]; then
    echo "usage: bench/serve-js-cpu.sh [-n N] [-r ROUNDS] DTASK..." >&2
    exit 2
fi
[[ -x "$bench" ]] || { echo "serve-js-cpu: $bench is not built (make bench builds it)" >&2; exit 2; }

# shellcheck source=SCRIPTDIR/js-worker.sh
source "$here/js-worker.sh"
js_worker_install
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtask-sjs.XXXXXX")"
server_pid=""
cleanup() {
    js_worker_stop
    [[ -z "$server_pid" ]] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks="$(getconf CLK_TCK)"
per_hello() { echo "scale=3; ($2 - $1) * 1000 / $ticks / $n" | bc; }

for round in $(seq "$rounds"); do
    for dtask in "$@"; do
        port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
        rm -rf "$tmp/db" && mkdir "$tmp/db"
        "$dtask" serve --grpc-listen "127.0.0.1:$port" --no-http --db "$tmp/db/d.db" 2>"$tmp/server.log" &
        server_pid=$!
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.1
        done
        if ! js_worker_start "127.0.0.1:$port" "$tmp/worker.out" "$tmp/worker.log"; then
            echo "serve-js-cpu: the worker did not connect to $dtask:" >&2
            tail -n 20 "$tmp/worker.log" >&2
            exit 1
        fi
        export DTASK_SERVER="127.0.0.1:$port" DTASK_SERVER_PID="$server_pid"
        "$bench" serve-js hello 2000 16 >/dev/null
        s0="$(cpu_ticks "$server_pid")" w0="$(cpu_ticks "$worker_pid")"
        rate="$("$bench" serve-js hello "$n" 64 | grep -o '"throughput_per_s":[0-9.]*' | cut -d: -f2)"
        s1="$(cpu_ticks "$server_pid")" w1="$(cpu_ticks "$worker_pid")"
        echo "round $round $dtask: ${rate}/s, server $(per_hello "$s0" "$s1") ms and worker $(per_hello "$w0" "$w1") ms of CPU per hello"
        js_worker_stop
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    done
done
