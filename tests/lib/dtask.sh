# dtask.sh — sourced by the node suites' run.sh scripts: which dtask binary they test.
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
