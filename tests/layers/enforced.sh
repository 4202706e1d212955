#!/usr/bin/env bash
# enforced.sh — the build holds the layers to the graph: in a scratch copy of the sources,
# the store layer is given an include of the hub's header (a layer above it), then a call
# into the hub. The first must fail to compile (the store's sources cannot see hub.h), the
# second to link (link_check_store links the store's library alone). The unchanged copy
# builds both targets first, so a failure can only come from the change.
set -euo pipefail
repo="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtask-layers.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp -r "$repo/CMakeLists.txt" "$repo/cmake" "$repo/include" "$repo/proto" "$repo/src" "$repo/bench" \
      "$repo/web" "$tmp/"
cmake -S "$tmp" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Debug -DDT_TESTS=OFF >/dev/null
build() { cmake --build "$tmp/build" -j 2 --target "$1" >"$tmp/out.log" 2>&1; }

build link_check_store || { cat "$tmp/out.log"; echo "the unchanged store layer does not build" >&2; exit 1; }

cp "$tmp/src/store/store.c" "$tmp/store.c.orig"
sed -i 's|#include "durabletask/store.h"|#include "durabletask/store.h"\n#include "durabletask/hub.h"|' \
    "$tmp/src/store/store.c"
if build dtstore; then
    echo "the store layer compiled with an include of durabletask/hub.h" >&2; exit 1
fi
grep -q 'durabletask/hub.h: No such file' "$tmp/out.log" || {
    cat "$tmp/out.log"; echo "the build failed, but not for the wrong include" >&2; exit 1; }
echo "an include of a layer above fails to compile: $(grep -m1 'hub.h' "$tmp/out.log")"

cp "$tmp/store.c.orig" "$tmp/src/store/store.c"
cat >>"$tmp/src/store/store.c" <<'C'
/* a call into the layer above, declared by hand to get past the include rule */
struct dt_hub;
void dt_hub_close(struct dt_hub *hub);
void store_calls_up(void);
void store_calls_up(void) { dt_hub_close(0); }
C
build dtstore || { cat "$tmp/out.log"; echo "the store layer does not compile" >&2; exit 1; }
if build link_check_store; then
    echo "the store layer linked with a call into the hub" >&2; exit 1
fi
grep -q "undefined reference to \`dt_hub_close'" "$tmp/out.log" || {
    cat "$tmp/out.log"; echo "the link failed, but not for the wrong call" >&2; exit 1; }
echo "a call into a layer above fails to link: $(grep -m1 'undefined reference' "$tmp/out.log")"
