#!/usr/bin/env bash
# run.sh — the installed library as a user meets it: `make install PREFIX=<scratch>`, then the
# README's C example (its first ```c block, taken as it is) built exactly as the README says,
# `cc app.c $(pkg-config --cflags --libs durabletask)`, and run: it must print the completed
# orchestration's output. Also checks that the header's version is the one pkg-config reports.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtask-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "install: make install PREFIX=$tmp/prefix"
make -C "$repo" install PREFIX="$tmp/prefix" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "install: make install failed" >&2; exit 1; }
for f in include/durabletask/durabletask.h lib/libdtcore.a lib/pkgconfig/durabletask.pc; do
    [[ -e "$tmp/prefix/$f" ]] || { echo "install: $f was not installed" >&2; exit 1; }
done

awk '/^```c$/ { inside = 1; next } /^```$/ { if (inside) exit } inside' "$repo/README.md" \
    >"$tmp/app.c"
grep -q 'durabletask/durabletask.h' "$tmp/app.c" || {
    echo "install: the README's C example does not include <durabletask/durabletask.h>" >&2
    exit 1; }

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cd "$tmp"
# exactly the README's command; then again as strict C11 with warnings as errors, so the
# example and the headers it includes stay clean
# shellcheck disable=SC2046  # pkg-config's words are meant to split
cc app.c $(pkg-config --cflags --libs durabletask)
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o app app.c $(pkg-config --cflags --libs durabletask)
out="$(./app)"
want='Completed: ["Hello Tokyo!","Hello Seattle!","Hello London!"]'
if [[ "$out" != "$want" ]]; then
    echo "install: the README example printed '$out', want '$want'" >&2
    exit 1
fi

header_version="$(sed -n 's/^#define DT_VERSION "\(.*\)"$/\1/p' \
    "$tmp/prefix/include/durabletask/durabletask.h")"
pc_version="$(pkg-config --modversion durabletask)"
if [[ -z "$header_version" || "$header_version" != "$pc_version" ]]; then
    echo "install: DT_VERSION '$header_version' but pkg-config says '$pc_version'" >&2
    exit 1
fi
echo "install: the README example built with pkg-config (durabletask $pc_version) and printed: $out"
