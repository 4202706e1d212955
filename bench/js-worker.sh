# js-worker.sh — sourced by bench/run.sh and bench/peers.sh: the worker of the serve-js mode,
# bench/js/worker.mjs (the official Durable Task JavaScript SDK), against a running `dtask serve`.
# Installs the SDK, starts the worker and waits until its work-item stream is open, stops it.
# The caller owns worker_pid (set by js_worker_start, cleared by js_worker_stop) and should stop
# the worker in its EXIT trap too.

js_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/js"
worker_pid="${worker_pid:-}"

# js_worker_install: node and npm there, and the SDK in bench/js/node_modules (`npm ci` when it
# is missing; npm's output on stderr). Fails, saying why on stderr, when it cannot be had.
js_worker_install() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "serve-js: node or npm is not installed (scripts/deps.sh installs them)" >&2
        return 1
    fi
    [[ -d "$js_dir/node_modules" ]] && return 0
    echo "serve-js: installing the JavaScript SDK (npm ci in bench/js)" >&2
    if ! (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error) >&2; then
        echo "serve-js: npm ci in bench/js failed" >&2
        return 1
    fi
}

# js_worker_start SERVER OUT LOG: worker.mjs connected to the `dtask serve` at SERVER
# (host:port), its stdout in OUT and its stderr in LOG; sets worker_pid. Waits up to 15 s for
# its "ready" line (the stream is open: work sent from now on reaches it). When the line does not
# come, the worker is stopped and it fails; LOG says why.
js_worker_start() {
    DTASK_SERVER="$1" node "$js_dir/worker.mjs" >"$2" 2>"$3" &
    worker_pid=$!
    local _
    for _ in $(seq 150); do
        grep -q '"ready"' "$2" && return 0
        kill -0 "$worker_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '"ready"' "$2" && return 0
    js_worker_stop
    return 1
}

# js_worker_stop: SIGTERM to the worker of js_worker_start, if there is one, and wait for it
js_worker_stop() {
    [[ -n "$worker_pid" ]] || return 0
    kill "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
    worker_pid=""
}

# js_sdk_version: the version of the installed SDK (its package.json), on stdout
js_sdk_version() {
    node -p 'require(process.argv[1]).version' \
        "$js_dir/node_modules/@microsoft/durabletask-js/package.json"
}
