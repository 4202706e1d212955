#!/usr/bin/env bash
# peers.sh — `make bench-peers`: the `hello` and `fanout` workloads on Restate and on DBOS
# (PostgreSQL) with the shared peer scripts in ../shared/peers (when they are there), then on
# ours in three modes, and bench/PEERS.md with each system's numbers and the ratios:
#   embedded  hub, C SDK worker and client in one process (`dtask-bench embedded`): the library
#             architecture, like DBOS;
#   serve     `dtask serve` in its own process, the C SDK remote worker and gRPC clients in the
#             dtask-bench process (`dtask-bench serve`): the server architecture, like Restate;
#   serve-js  as serve, but the worker is the official Durable Task JavaScript SDK
#             (bench/js/worker.mjs, a Node process of its own; `dtask-bench serve-js`): the server
#             architecture with a Node worker, like Restate with its Node SDK. Skipped, saying
#             why, when node/npm or the SDK (`npm ci` in bench/js) are missing or the worker does
#             not connect.
# Everybody runs with their durable defaults, fsync on: Restate's log-server WAL fsync,
# PostgreSQL fsync=on and synchronous_commit=on; ours SQLite WAL; every commit fsynced
# (fdatasync of the log) before anyone hears of its outcome; group commit, and the fsync of one
# batch overlaps the next batch.
#
# env: N (2000) FAN_N (50) REPS (3) WARMUP (200; the peers' warm-up invocations)
#      QUICK=1 → N=300 FAN_N=10 REPS=1 WARMUP=50 (about a minute)
# Like the peers, ours runs every plan entry REPS times in each mode and reports the median of
# each metric, every run warmed up as the peers' are: WARMUP hello instances at concurrency 16,
# not counted (DTASK_BENCH_WARMUP). Embedded and serve runs each have a fresh database (serve a
# fresh `dtask serve`). serve-js keeps one `dtask serve` (fresh database at the start) and one
# JavaScript worker for all its runs, as each peer keeps its server and its one Node process
# (Restate's service, DBOS's app) for the whole plan: a Node process started for each run would
# measure V8's compiler warming up (serve-js hello at 64 is 15-35% slower in a fresh worker).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
    N="${N:-300}"; FAN_N="${FAN_N:-10}"; REPS="${REPS:-1}"; WARMUP="${WARMUP:-50}"
else
    N="${N:-2000}"; FAN_N="${FAN_N:-50}"; REPS="${REPS:-3}"; WARMUP="${WARMUP:-200}"
fi
PLAN="hello:$N:1,hello:$N:16,hello:$N:64,fanout:$FAN_N:1"
export N FAN_N REPS WARMUP PLAN
export DTASK_BENCH_WARMUP="$WARMUP"   # ours, as the peers: see dtask-bench's warm_up
log() { echo "[bench-peers] $*" >&2; }

peers="${PEERS_DIR:-$repo/../shared/peers}"   # PEERS_DIR: another copy of the peer scripts
[[ -d "$peers" ]] && peers="$(cd "$peers" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtask-peers.XXXXXX")"
keep_tmp=0
server_pid=""   # the `dtask serve` of the serve-mode run under way, if any
js_server_pid=""   # the `dtask serve` of every serve-js run, and its address
js_server_addr=""
source "$here/js-worker.sh"   # worker_pid: the JavaScript worker of the serve-js runs
cleanup() {
    js_worker_stop
    for pid in "$server_pid" "$js_server_pid"; do
        [[ -n "$pid" ]] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "$keep_tmp" == 1 ]]; then
        log "logs kept in $tmp"
        rm -rf "$tmp"/db-*
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# --- ours, built first so that a broken build stops us before the peers' minutes -------------
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DDT_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" --target dtask dtask-bench >/dev/null
bench="$repo/build-bench/dtask-bench"
dtask="$repo/build-bench/dtask"
# what ours was built from: HEAD, and whether the sources differ from it
build="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- src include proto web cmake CMakeLists.txt bench/bench.c 2>/dev/null)" ]]; then
    build="$build plus uncommitted changes to the sources"
fi

# --- the machine (as bench/run.sh measures it) ---------------------------------------------------
cores="$(nproc)"
mem_gb="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
start_ns="$(date +%s%N)"
dd if=/dev/zero of="$tmp/fsync.probe" bs=4k count=500 oflag=dsync status=none
end_ns="$(date +%s%N)"
fsync_per_s="$(( 500 * 1000000000 / (end_ns - start_ns) ))"
rm -f "$tmp/fsync.probe"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
log "machine: $cores cores, $mem_gb GiB, $fsync_per_s fsync/s on $(df -P "$tmp" | awk 'NR==2 {print $1}'), load $load"
log "plan $PLAN, reps $REPS, warm-up $WARMUP$([[ "$QUICK" == 1 ]] && echo ' (QUICK)')"

# --- the peers ---------------------------------------------------------------------------------
peer_lines="$tmp/peers.jsonl"
: >"$peer_lines"
peer_status=()
if [[ ! -d "$peers" ]]; then
    log "the peers are not there ($peers is missing): only ours runs"
    peer_status+=("restate:absent" "dbos:absent")
else
    for peer in restate dbos; do
        script="$peers/run-$peer.sh"
        if [[ ! -f "$script" ]]; then
            log "$peer: $script is missing; skipped"
            peer_status+=("$peer:absent")
            continue
        fi
        log "$peer: running $script (its log: $tmp/$peer.log)"
        if bash "$script" >"$tmp/$peer.out" 2>"$tmp/$peer.log"; then
            peer_status+=("$peer:ok")
        else
            log "$peer: FAILED (exit $?); going on without it. Its log's last lines:"
            tail -n 15 "$tmp/$peer.log" | sed 's/^/    /' >&2
            peer_status+=("$peer:failed")
            keep_tmp=1
        fi
        # the median lines (a failed run may still have printed some)
        grep '^{.*"peer"' "$tmp/$peer.out" >>"$peer_lines" || true
    done
fi

# --- ours: the same plan in both modes, REPS times each, a fresh database every run ----------
# start_server DIR LOG: a `dtask serve` (as bench/run.sh's start_server) on a free loopback port
# with a fresh database in DIR, its stderr in LOG; sets server_pid and server_addr. Fails when
# the server does not take connections.
start_server() {
    local port
    port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
    mkdir -p "$1"
    "$dtask" serve --grpc-listen "127.0.0.1:$port" --no-http --db "$1/bench.db" 2>"$2" &
    server_pid=$!
    server_addr="127.0.0.1:$port"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}
stop_server() {   # SIGTERM, and wait for it to finish
    [[ -n "$server_pid" ]] || return 0
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

ours_lines="$tmp/ours.jsonl"
: >"$ours_lines"
ours_failed=0
modes=(embedded serve serve-js)
# serve-js: what keeps it from running, if anything (for the report); js_sdk: the SDK's version
js_status="ok"
js_sdk=""
if js_worker_install; then
    js_sdk="$(js_sdk_version)"
else
    js_status="not installed"
    modes=(embedded serve)
    log "ours: serve-js skipped: no JavaScript SDK worker (see above)"
fi
# serve-js's server and worker, for all its runs (see the top); when the worker cannot be had
# here the mode is left out, saying why, rather than counted as failed runs
if [[ "$js_status" == ok ]]; then
    js_dir_db="$tmp/db-serve-js"
    js_slog="$tmp/server-serve-js.log"
    js_wout="$tmp/worker-js.out"
    js_wlog="$tmp/worker-js.log"
    if ! start_server "$js_dir_db" "$js_slog"; then
        log "ours: serve-js skipped: its dtask serve did not start; its log's last lines:"
        tail -n 15 "$js_slog" | sed 's/^/    /' >&2
        js_status="dtask serve did not start"
        stop_server
    elif ! js_worker_start "$server_addr" "$js_wout" "$js_wlog"; then
        log "ours: serve-js skipped: the JavaScript SDK worker did not connect to dtask serve" \
            "at $server_addr (it exited, or 15 s went by); its log's last lines:"
        tail -n 15 "$js_wlog" | sed 's/^/    /' >&2
        js_status="worker did not connect"
        stop_server
    else
        js_server_pid="$server_pid"
        js_server_addr="$server_addr"
        server_pid=""
    fi
    [[ "$js_status" == ok ]] || modes=(embedded serve)
fi
log "ours: $bench in ${modes[*]} mode, $REPS rep(s) of each entry (the modes alternate)"
IFS=, read -r -a entries <<<"$PLAN"
for e in "${entries[@]}"; do
    IFS=: read -r w n c <<<"$e"
    [[ "$w" == fanout ]] && w=fanout100   # the peers' fanout runs 100 steps (--fanout-steps 100)
    for rep in $(seq "$REPS"); do
        for mode in "${modes[@]}"; do
            dir="$tmp/db-$mode-$w-$c-$rep"
            slog="$tmp/server-$mode-$w-$c-$rep.log"
            rc=0
            line=""
            if [[ "$mode" == embedded ]]; then
                line="$("$bench" embedded "$w" "$n" "$c" "$dir/bench.db")" || rc=$?
            elif [[ "$mode" == serve-js ]]; then
                line="$(DTASK_SERVER="$js_server_addr" DTASK_SERVER_PID="$js_server_pid" \
                    "$bench" serve-js "$w" "$n" "$c")" || rc=$?
            elif ! start_server "$dir" "$slog"; then
                log "ours: $mode $w n=$n c=$c rep $rep: dtask serve did not start; its log's last lines:"
                tail -n 15 "$slog" | sed 's/^/    /' >&2
                stop_server
            else
                line="$(DTASK_SERVER="$server_addr" DTASK_SERVER_PID="$server_pid" \
                    "$bench" "$mode" "$w" "$n" "$c")" || rc=$?
                stop_server
            fi
            line="$(grep '^{' <<<"$line" | head -n 1 || true)"
            if [[ -z "$line" ]]; then
                log "ours: $mode $w n=$n c=$c rep $rep FAILED (exit $rc, no result)"
                if [[ "$mode" == serve ]]; then
                    log "ours: its server's log: $slog"
                    keep_tmp=1   # for that log
                elif [[ "$mode" == serve-js ]]; then
                    log "ours: its server's log: $js_slog; its worker's log: $js_wlog"
                    keep_tmp=1
                fi
                ours_failed=1
                rm -rf "$dir"
                continue
            fi
            # exit 1 with a result: some instances failed; the result line counts them
            [[ "$rc" != 0 ]] && log "ours: $mode $w n=$n c=$c rep $rep exited $rc (see \"failures\")"
            echo "$line" >&2
            echo "${line%\}},\"rep\":$rep}" >>"$ours_lines"
            rm -rf "$dir" "$slog"
        done
    done
done
js_worker_stop   # before its server, which it would otherwise try to reconnect to
server_pid="$js_server_pid"
js_server_pid=""
stop_server

node "$here/peers-report.js" --peers "$peer_lines" --ours "$ours_lines" \
    --out "$here/PEERS.md" --cores "$cores" --mem-gb "$mem_gb" --fsync "$fsync_per_s" \
    --load "$load" --quick "$QUICK" --n "$N" --fan-n "$FAN_N" --reps "$REPS" --warmup "$WARMUP" \
    --build "$build" --status "${peer_status[*]}" --js-sdk "$js_sdk" --js-status "$js_status"
log "wrote bench/PEERS.md"
if [[ "$ours_failed" == 1 ]]; then
    log "some of our runs failed (see above): bench/PEERS.md lacks them"
    exit 1
fi
