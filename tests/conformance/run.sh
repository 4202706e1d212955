#!/usr/bin/env bash
# run.sh — the conformance suite: starts `dtask serve` on a free loopback port with a fresh
# database, runs every tests/conformance/*.test.js against it with the official Durable Task
# JavaScript SDK, stops the server with SIGTERM and exits with the test runner's status.
#
#   tests/conformance/run.sh [DTASK] [node --test options...]
#
# DTASK is the dtask binary: the first argument if it does not start with '-', else $DTASK,
# else the repo's build-test/dtask, else build/dtask. Other arguments go to `node --test`
# (e.g. --test-name-pattern='purge'). SPECS='crash history' limits the run to those files.
# CONFORMANCE_VERBOSE=1 shows the SDK's info logs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# shellcheck source=../lib/dtask.sh
source "$repo/tests/lib/dtask.sh"
dtask_from_args "$repo" "${1:-}"
shift "$DTASK_SHIFT"
dtask="$DTASK_BIN"
if ! "$dtask" serve --help >/dev/null 2>&1; then
    echo "run.sh: $dtask has no 'serve' command (rebuild it)" >&2
    exit 2
fi

# --- dependencies: npm ci when node_modules is missing or was installed from another lock ---
npm_ci_if_stale "$here" "the SDK"

# --- the server ---
# this run's own directory: the database, the logs; removed on exit
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/dtask-conformance.XXXXXX")"
server_pid=""
runner_pid=""

cleanup() {
    local rc=$?
    if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
        kill -TERM "$runner_pid" 2>/dev/null || true
        wait "$runner_pid" 2>/dev/null || true
    fi
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$run_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$(free_port)"
endpoint="127.0.0.1:$port"
log="$run_dir/server.log"

# --health-ping-interval is in seconds: a ping every 0.3 s, so sdk-health sees several quickly
"$dtask" serve --grpc-listen "$endpoint" --no-http --db "${DTASK_DB:-$run_dir/dt.db}" --health-ping-interval 0.3 \
    >"$log" 2>&1 &
server_pid=$!

show_server_log() {
    echo "--- dtask serve output (last 100 lines) ---" >&2
    tail -n 100 "$log" >&2 || true
    echo "--- end of dtask serve output ---" >&2
}

deadline=$((SECONDS + 15))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: dtask serve exited before accepting connections" >&2
        show_server_log
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: dtask serve does not accept connections on $endpoint after 15 s" >&2
        show_server_log
        exit 1
    fi
    sleep 0.1
done
echo "run.sh: dtask serve ($dtask) on $endpoint, pid $server_pid" >&2

# --- the specs ---
specs=()
if [[ -n "${SPECS:-}" ]]; then
    for s in $SPECS; do specs+=("$here/$s.test.js"); done
else
    specs=("$here"/*.test.js)
fi

# in the background, so that a signal to this script is handled at once
(cd "$here" && exec env ENDPOINT="$endpoint" DTASK="$dtask" node --test --test-concurrency=1 --test-force-exit \
    --test-reporter=spec "$@" "${specs[@]}") &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=""

# --- stop the server: SIGTERM, then it must exit 0 within 5 s ---
kill -TERM "$server_pid"
deadline=$((SECONDS + 5))
while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: dtask serve did not exit within 5 s of SIGTERM" >&2
    show_server_log
    exit 1
fi
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=""
if [[ $server_rc -ne 0 ]]; then
    echo "run.sh: dtask serve exited with status $server_rc after SIGTERM" >&2
    show_server_log
    [[ $status -ne 0 ]] || status=1
elif [[ $status -ne 0 ]]; then
    show_server_log
fi
exit "$status"
