#!/usr/bin/env bash
# run.sh — `make bench`: a release build, the machine's facts (cores, memory, fsync rate),
# then every workload in each mode, one JSON line each on stdout, and bench/RESULTS.md.
# QUICK=1 runs small sizes (under a minute). Durability is the default everywhere: SQLite
# WAL, every commit fsynced before anyone hears of its outcome (group commit batches
# concurrent work; the fsync of one batch overlaps the next).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
QUICK="${QUICK:-0}"

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DDT_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" --target dtask dtask-bench >/dev/null
bench="$repo/build-bench/dtask-bench"
dtask="$repo/build-bench/dtask"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtask-bench.XXXXXX")"
server_pid=""
worker_pid=""
cleanup() {
    [[ -n "${pg_pids[*]:-}" ]] && stop_pg_nodes
    bash "$repo/scripts/pg.sh" stop "$tmp/pg" 2>/dev/null || true
    [[ -n "$worker_pid" ]] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- the machine -------------------------------------------------------------------------------
cores="$(nproc)"
mem_gb="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
# fsync rate: 500 synchronous 4 KiB writes where the databases live
start_ns="$(date +%s%N)"
dd if=/dev/zero of="$tmp/fsync.probe" bs=4k count=500 oflag=dsync status=none
end_ns="$(date +%s%N)"
fsync_per_s="$(( 500 * 1000000000 / (end_ns - start_ns) ))"
rm -f "$tmp/fsync.probe"
echo "machine: $cores cores, $mem_gb GiB, $fsync_per_s fsync/s on $(df -P "$tmp" | awk 'NR==2 {print $1}')" >&2

# --- the plan: workload:n:concurrency --------------------------------------------------------------
if [[ "$QUICK" == 1 ]]; then
    export LONG_STEPS=1000
    plan="hello:200:1 hello:400:16 hello:400:64 fanout100:5:1 fanout1000:1:1 long:1:1 timers:5000:16 payload1k:100:4 payload64k:50:4 payload1m:5:2"
    memory_n=2000
    serve_plan="hello:200:1 hello:400:16 hello:800:256 fanout100:5:1 long:1:1 payload64k:20:4"
    serve_js_plan="hello:200:1 hello:400:16 fanout100:5:1"
else
    export LONG_STEPS=10000
    plan="hello:2000:1 hello:2000:16 hello:2000:64 fanout100:20:1 fanout1000:3:1 long:1:1 timers:100000:16 payload1k:500:8 payload64k:200:8 payload1m:20:2"
    memory_n=10000
    serve_plan="hello:2000:1 hello:2000:16 hello:2000:64 hello:4000:256 fanout100:20:1 long:1:1 payload64k:200:8"
    serve_js_plan="hello:2000:1 hello:2000:16 hello:2000:64 fanout100:20:1 payload64k:200:8"
fi

results="$tmp/results.jsonl"
: >"$results"
run() {   # run MODE WORKLOAD N C
    local db="$tmp/db-$RANDOM-$RANDOM/bench.db"
    "$bench" "$1" "$2" "$3" "$4" "$db" | tee -a "$results"
}

for p in $plan; do
    IFS=: read -r w n c <<<"$p"
    run embedded "$w" "$n" "$c"
done

# start_server NAME: a `dtask serve` on a free loopback port with a database of its own;
# sets server_pid and exports DTASK_SERVER and DTASK_SERVER_PID for dtask-bench.
no_http=""
grep -q -- --no-http <<<"$("$dtask" serve --help)" && no_http="--no-http"   # whole: see tests/http/run.sh
start_server() {
    local port
    port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
    "$dtask" serve --grpc-listen "127.0.0.1:$port" $no_http --db "$tmp/$1/bench.db" 2>"$tmp/$1.log" &
    server_pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    export DTASK_SERVER="127.0.0.1:$port" DTASK_SERVER_PID="$server_pid"
}

# serve: dtask serve in its own process, the C SDK's remote worker and gRPC clients here
start_server serve
for p in $serve_plan; do
    IFS=: read -r w n c <<<"$p"
    run serve "$w" "$n" "$c"
done
kill "$server_pid"; wait "$server_pid" || true; server_pid=""

# memory: a fresh dtask serve holding instances that wait on timers an hour away; its peak RSS
start_server memory
run serve timerwait "$memory_n" 64
kill "$server_pid"; wait "$server_pid" || true; server_pid=""

# serve-js: a fresh dtask serve, the official JavaScript SDK worker (bench/js/worker.mjs) running
# the orchestrations and activities, the gRPC clients here as in serve. A worker that does not
# connect skips the mode (with its log on stderr) rather than losing the other modes' results.
js_sdk=""
source "$here/js-worker.sh"
serve_js() {
    js_worker_install || return 1
    start_server serve-js
    if ! js_worker_start "$DTASK_SERVER" "$tmp/worker-js.out" "$tmp/worker-js.log"; then
        echo "run.sh: the JavaScript SDK worker did not connect; its log:" >&2
        cat "$tmp/worker-js.log" >&2
        return 1
    fi
    for p in $serve_js_plan; do
        IFS=: read -r w n c <<<"$p"
        run serve-js "$w" "$n" "$c"
    done
    js_sdk="$(js_sdk_version)"
}
serve_js || echo "run.sh: serve-js skipped (see above)" >&2
js_worker_stop
[[ -z "$server_pid" ]] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; }
server_pid=""

# pg1, pg2, pg3: one, two and three dtask serve nodes on one PostgreSQL database (a throwaway
# server, scripts/pg.sh: fsync and synchronous_commit on), a C remote worker on each node and
# the clients spread over them (DTASK_SERVERS); each count on a schema of its own
pg_plan="hello:2000:16 hello:2000:64 fanout100:20:1"
[[ "$QUICK" == 1 ]] && pg_plan="hello:300:16 fanout100:3:1"
pg_pids=()
stop_pg_nodes() {
    for pid in "${pg_pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pg_pids=()
}
if pg_url="$(bash "$repo/scripts/pg.sh" start "$tmp/pg" 2>"$tmp/pg.log")"; then
    for nodes in 1 2 3; do
        servers=""
        for k in $(seq "$nodes"); do
            port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
            "$dtask" serve --grpc-listen "127.0.0.1:$port" $no_http --db "$pg_url" \
                --db-schema "bench_n$nodes" 2>"$tmp/pg-node-$nodes-$k.log" &
            pg_pids+=($!)
            for _ in $(seq 100); do
                (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                sleep 0.1
            done
            servers="${servers:+$servers,}127.0.0.1:$port"
        done
        export DTASK_SERVERS="$servers" DTASK_SERVER_PID="${pg_pids[0]}"
        for p in $pg_plan; do
            IFS=: read -r w n c <<<"$p"
            "$bench" "pg$nodes" "$w" "$n" "$c" | tee -a "$results"
        done
        stop_pg_nodes
    done
    unset DTASK_SERVERS
    bash "$repo/scripts/pg.sh" stop "$tmp/pg"
else
    echo "run.sh: the PostgreSQL modes skipped: no throwaway PostgreSQL ($(tail -1 "$tmp/pg.log"))" >&2
fi

# filtered: what one idle, filtered work item stream costs the server (bench/filtered.js, raw
# gRPC through the conformance suite's helpers)
if command -v node >/dev/null; then
    if [[ ! -d "$repo/tests/conformance/node_modules" ]]; then
        (cd "$repo/tests/conformance" && npm ci --no-audit --no-fund --loglevel=error) >&2 || true
    fi
    fargs="1000 20000 5000"
    [[ "$QUICK" == 1 ]] && fargs="1000 2000 2000"
    node "$here/filtered.js" "$dtask" $fargs | tee -a "$results" ||
        echo "run.sh: the filtered-stream measurement failed" >&2
fi

node "$here/report.js" "$results" "$cores" "$mem_gb" "$fsync_per_s" "$js_sdk" >"$here/RESULTS.md"
echo "wrote bench/RESULTS.md" >&2
