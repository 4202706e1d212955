# dtask.sh — sourced by the node suites' run.sh scripts: which dtask binary they test, a free
# loopback port, and their npm packages.
#
# dtask_from_args REPO [FIRST_ARG]: DTASK_BIN is the binary, made absolute: FIRST_ARG if it
# does not start with '-' (then DTASK_SHIFT is 1, so the caller shifts it away), else $DTASK,
# else REPO/build-test/dtask, else REPO/build/dtask. Exits 2 if there is none.
dtask_from_args() {
    local repo="$1" first="${2:-}" d="${DTASK:-}"
    DTASK_SHIFT=0
    if [[ -n "$first" && "$first" != -* ]]; then
        d="$first"
        DTASK_SHIFT=1
    fi
    if [[ -z "$d" ]]; then
        if [[ -x "$repo/build-test/dtask" ]]; then
            d="$repo/build-test/dtask"
        else
            d="$repo/build/dtask"
        fi
    fi
    if [[ ! -x "$d" ]]; then
        echo "run.sh: no dtask binary at $d (build it, or pass its path)" >&2
        exit 2
    fi
    DTASK_BIN="$(cd "$(dirname "$d")" && pwd)/$(basename "$d")"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on just now.
free_port() {
    node -e '
const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# npm_ci_if_stale DIR NAME: `npm ci` in DIR unless its node_modules was installed from the
# same package-lock.json (a hash stamp in node_modules records it). NAME says what for.
npm_ci_if_stale() {
    local dir="$1" name="$2" sum stamp
    sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$dir/node_modules/.lock-sha256"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$sum" ]]; then
        echo "run.sh: installing $name (npm ci)" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$sum" >"$stamp"
    fi
}
