#!/usr/bin/env bash
# run.sh — the dashboard in a real browser: starts `dtask serve` (HTTP and gRPC on free loopback
# ports, a fresh database) and `dtask worker` (the demo's C orchestrators and activities),
# creates instances through the HTTP API, then runs dashboard.test.js: node's test runner
# driving Debian's headless Chromium with playwright-core. Screenshots go to artifacts/.
# refresh.test.js (web/dom.js's refresh rules, in Node alone) runs with it.
# Exits with the test runner's status; everything it started is stopped on every path.
#
#   tests/browser/run.sh [DTASK] [node --test options...]
#
# DTASK is the dtask binary: the first argument if it does not start with '-', else $DTASK,
# else the repo's build-test/dtask, else build/dtask. Installs Debian's chromium when it is
# missing (needs root and the network once) and runs `npm ci` when node_modules is stale.
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
if ! grep -q -- --http-listen <<<"$("$dtask" serve --help 2>&1)"; then
    echo "run.sh: $dtask serve has no --http-listen (rebuild it)" >&2
    exit 2
fi

# --- dependencies: the browser from Debian, playwright-core from the lock file ---
if ! dpkg -s chromium >/dev/null 2>&1; then
    echo "run.sh: installing Debian's chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
npm_ci_if_stale "$here" "playwright-core"

# --- the server and the worker ---
# this run's own directory: the database, the logs; removed on exit
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/dtask-browser.XXXXXX")"
server_pid=""
worker_pid=""
runner_pid=""

stop_pid() {   # stop_pid PID: SIGTERM, then SIGKILL after 5 s
    local pid="$1" deadline=$((SECONDS + 5))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n "$runner_pid" ]] && stop_pid "$runner_pid"
    [[ -n "$worker_pid" ]] && stop_pid "$worker_pid"
    [[ -n "$server_pid" ]] && stop_pid "$server_pid"
    rm -rf "$run_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

http_port="$(free_port)"
grpc_port="$(free_port)"
while [[ "$grpc_port" == "$http_port" ]]; do grpc_port="$(free_port)"; done
http="127.0.0.1:$http_port"
grpc="127.0.0.1:$grpc_port"

show_logs() {
    for f in server worker; do
        echo "--- dtask $f output (last 60 lines) ---" >&2
        tail -n 60 "$run_dir/$f.log" >&2 || true
    done
    echo "--- end ---" >&2
}

"$dtask" serve --http-listen "$http" --grpc-listen "$grpc" --db "$run_dir/dt.db" >"$run_dir/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 15))
until (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: dtask serve exited before accepting connections" >&2
        show_logs
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: dtask serve does not answer on $http / $grpc after 15 s" >&2
        show_logs
        exit 1
    fi
    sleep 0.1
done

"$dtask" worker --server "$grpc" >"$run_dir/worker.log" 2>&1 &
worker_pid=$!
echo "run.sh: dtask serve ($dtask) HTTP on $http, gRPC on $grpc; worker pid $worker_pid" >&2

# --- the instances the tests look at, started through the HTTP API (node's fetch: no curl) ---
start() {   # start NAME ID INPUT
    if ! API="http://$http/runtime/webhooks/durabletask" node -e '
const [name, id, input] = process.argv.slice(1);
fetch(`${process.env.API}/orchestrators/${name}/${id}`, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: input,
}).then(async (r) => {
  if (r.status !== 202) { console.error(r.status, await r.text()); process.exit(1); }
}, (e) => { console.error(e.message); process.exit(1); });' "$1" "$2" "$3"; then
        echo "run.sh: cannot start $1 as $2" >&2
        show_logs
        exit 1
    fi
}
for i in 1 2 3; do start hello_cities "hello-$i" null; done
# c_calls_js waits for js_shout, which no worker here serves: it stays Running
start c_calls_js waiting-1 '"Ada"'

# --- the specs; in the background, so that a signal to this script is handled at once ---
mkdir -p "$here/artifacts"
mkdir "$run_dir/chromium-profile"
(cd "$here" && exec env DASHBOARD_URL="http://$http" GRPC_ENDPOINT="$grpc" CHROMIUM="$chromium_bin" \
    CHROMIUM_PROFILE="$run_dir/chromium-profile" \
    ARTIFACTS="$here/artifacts" node --test --test-concurrency=1 --test-force-exit \
    --test-reporter=spec "$@" "$here/refresh.test.js" "$here/dashboard.test.js") &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=""
if [[ $status -ne 0 ]]; then
    show_logs
fi
exit "$status"
