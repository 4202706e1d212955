#!/usr/bin/env bash
# tests/scripts/deps.sh — scripts/deps.sh's Node.js decision, with fake `node` and `npm` first
# on PATH and DEPS_DRY_RUN=1 (nothing is installed, no network): an old node is replaced with
# Node 20 from the npm registry, a new enough one is left alone, and a failed install stops
# with a message saying what to do.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# fake VERSION NPM_EXIT: a bin folder with node printing VERSION and npm exiting NPM_EXIT
fake() {
  local d="$tmp/$1-$2"
  mkdir -p "$d"
  printf '#!/bin/sh\necho %s\n' "$1" >"$d/node"
  printf '#!/bin/sh\necho "fake npm $*" >&2\nexit %s\n' "$2" >"$d/npm"
  printf '#!/bin/sh\nexit 0\n' >"$d/dpkg"   # every Debian package "installed": no apt
  chmod +x "$d/node" "$d/npm" "$d/dpkg"
  echo "$d"
}

# deps BIN DRY: run the script with BIN first on PATH; its stderr in $out, exit code in $rc
deps() {
  out=$(PATH="$1:$PATH" DEPS_DRY_RUN=$2 bash "$root/scripts/deps.sh" 2>&1 >/dev/null)
  rc=$?
}

deps "$(fake 18.19.0 0)" 1
[ $rc -eq 0 ] || fail "node 18, dry run: exit $rc: $out"
grep -q "Node.js 18.19.0 is too old" <<<"$out" || fail "node 18: no reason given: $out"
grep -q "would run: .*npm install -g .*node@20" <<<"$out" || fail "node 18: no npm install: $out"
grep -q "apt-get" <<<"$out" && fail "node 18: apt asked for: $out"

deps "$(fake 20.13.1 0)" 1
grep -q "would run: .*npm install -g .*node@20" <<<"$out" || fail "node 20.13: kept: $out"

deps "$(fake 20.14.0 0)" 1
[ $rc -eq 0 ] || fail "node 20.14: exit $rc: $out"
grep -q "node@20" <<<"$out" && fail "node 20.14 was replaced: $out"

deps "$(fake 22.3.0 0)" 1
grep -q "node@20" <<<"$out" && fail "node 22 was replaced: $out"

# not a dry run, and npm fails (a registry out of reach): stop, saying what to do. As root
# only: otherwise the script would call sudo, which resets PATH and finds the real npm.
if [ "$(id -u)" -ne 0 ]; then
  echo "ok: deps.sh decides on Node.js as it should (the failed-install case needs root: skipped)"
  exit 0
fi
deps "$(fake 18.19.0 1)" 0
[ $rc -eq 1 ] || fail "npm failed: exit $rc: $out"
grep -q "fake npm install -g" <<<"$out" || fail "npm failed: npm was not tried: $out"
grep -q "Install Node.js 20.14.0 or later yourself" <<<"$out" || fail "npm failed: no advice: $out"
echo "ok: deps.sh decides on Node.js as it should"
