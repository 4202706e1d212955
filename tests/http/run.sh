#!/usr/bin/env bash
# run.sh — the HTTP API suite: starts `dtask serve` (gRPC on a port the kernel picks, HTTP on
# a free loopback port, a fresh database) and `dtask worker` for the demo's C orchestrators
# and activities, runs every tests/http/*.test.js with node's test runner and global fetch
# (Node 20, no npm packages; entity specs take their work items over raw gRPC on
# GRPC_ENDPOINT, entity-worker.js), stops both with SIGTERM and exits with the runner's status.
#
#   tests/http/run.sh [DTASK] [node --test options...]
#
# DTASK is the dtask binary: the first argument if it does not start with '-', else $DTASK,
# else the repo's build-test/dtask, else build/dtask. Other arguments go to `node --test`
# (e.g. --test-name-pattern='purge'). SPECS='manage list' limits the run to those files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# shellcheck source=../lib/dtask.sh
source "$repo/tests/lib/dtask.sh"
dtask_from_args "$repo" "${1:-}"
shift "$DTASK_SHIFT"
dtask="$DTASK_BIN"
# the help read whole first: grep -q stops reading at its match, and under pipefail the
# writer's SIGPIPE would fail the test
if ! grep -q -- --http-listen <<<"$("$dtask" serve --help 2>/dev/null)"; then
    echo "run.sh: $dtask serves no HTTP (rebuild it)" >&2
    exit 2
fi

# this run's own directory: the database, the logs; removed on exit
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/dtask-http.XXXXXX")"
server_pid=""
worker_pid=""
runner_pid=""

# stop_pid PID: SIGKILL a process of ours that is still there, and reap it.
stop_pid() {
    if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

cleanup() {
    local rc=$?
    if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
        kill -TERM "$runner_pid" 2>/dev/null || true
        wait "$runner_pid" 2>/dev/null || true
    fi
    stop_pid "$worker_pid"
    stop_pid "$server_pid"
    rm -rf "$run_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
    for f in server worker; do
        echo "--- dtask $f output (last 60 lines) ---" >&2
        tail -n 60 "$run_dir/$f.log" >&2 || true
    done
    echo "--- end ---" >&2
}


# --- the server: gRPC on port 0 (the port it got is in its first log line) ---
http_port="$(free_port)"
"$dtask" serve --grpc-listen 127.0.0.1:0 --http-listen "127.0.0.1:$http_port" \
    --db "$run_dir/dt.db" >"$run_dir/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 15))
grpc_port=""
until [[ -n "$grpc_port" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: dtask serve exited before accepting connections" >&2
        show_logs
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: dtask serve does not accept connections after 15 s" >&2
        show_logs
        exit 1
    fi
    grpc_port="$(sed -n 's/.*gRPC on [^ ]* (port \([0-9]*\)).*/\1/p' "$run_dir/server.log" | head -n 1)"
    sleep 0.1
done
echo "run.sh: dtask serve ($dtask): HTTP on 127.0.0.1:$http_port, gRPC on 127.0.0.1:$grpc_port" >&2

# --- the worker: the demo's C orchestrators and activities ---
"$dtask" worker --server "127.0.0.1:$grpc_port" >"$run_dir/worker.log" 2>&1 &
worker_pid=$!

# --- the specs ---
specs=()
if [[ -n "${SPECS:-}" ]]; then
    for s in $SPECS; do specs+=("$here/$s.test.js"); done
else
    specs=("$here"/*.test.js)
fi

# in the background, so that a signal to this script is handled at once
(cd "$here" && exec env BASE_URL="http://127.0.0.1:$http_port" GRPC_ENDPOINT="127.0.0.1:$grpc_port" DTASK="$dtask" \
    node --test --test-concurrency=1 --test-force-exit --test-reporter=spec "$@" "${specs[@]}") &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=""

# --- stop: SIGTERM; each must exit 0 within 5 s (under ASan a leak makes it non-zero) ---
# stop_clean NAME PID: 0 if PID exits 0 within 5 s of SIGTERM
stop_clean() {
    kill -TERM "$2" 2>/dev/null || true
    local deadline=$((SECONDS + 5))
    while kill -0 "$2" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$2" 2>/dev/null; then
        echo "run.sh: dtask $1 did not exit within 5 s of SIGTERM" >&2
        return 1
    fi
    local rc=0
    wait "$2" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "run.sh: dtask $1 exited with status $rc after SIGTERM" >&2
        return 1
    fi
    return 0
}
stopped_ok=0
stop_clean worker "$worker_pid" || stopped_ok=1
worker_pid=""
stop_clean serve "$server_pid" || stopped_ok=1
server_pid=""
if [[ $stopped_ok -ne 0 || $status -ne 0 ]]; then
    show_logs
    [[ $status -ne 0 ]] || status=1
fi
exit "$status"
