#!/usr/bin/env bash
# Install the Debian packages the build and tests need, only when some are missing, and a
# Node.js new enough for the test suites. Asks dpkg and node first, so on a machine that has
# everything this does nothing and needs no network.
#
# Node.js: the conformance, HTTP and browser suites run `node --test --test-concurrency=1
# --test-force-exit`, and --test-force-exit needs Node 20.14 or later. Debian bookworm ships
# Node 18, so after Debian's packages, an older node is replaced from the npm registry with
# the `node` package (`npm install -g node@20`: Node's own binaries, published on npm, linked
# into npm's global bin folder, which comes before /usr/bin on PATH). If that cannot be done,
# it stops saying what to do.
#
# DEPS_DRY_RUN=1 prints the install commands instead of running them (tests/scripts/deps.sh).
set -euo pipefail
NODE_MIN=20.14.0
NODE_PKG=node@20

run() {
  if [ "${DEPS_DRY_RUN:-}" = 1 ]; then echo "deps: would run: $*" >&2; else "$@"; fi
}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

pkgs=(build-essential cmake pkg-config libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler
      libjansson-dev libcmocka-dev libgrpc-dev libmicrohttpd-dev libcurl4-openssl-dev
      openssl curl libpq-dev postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# the suites run the JavaScript SDK: Node.js and npm, Debian's if none is there
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  run $sudo apt-get update -q
  run $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# node_version: the version of the node on PATH ("18.19.0"), or nothing.
node_version() { node -p 'process.versions.node' 2>/dev/null || true; }
# older A B: is version A older than B?
older() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

have=$(node_version)
if [ -n "$have" ] && ! older "$have" "$NODE_MIN"; then
  exit 0
fi
[ "${DEPS_DRY_RUN:-}" = 1 ] && [ -z "$have" ] && { echo "deps: no node on PATH" >&2; exit 0; }
echo "deps: Node.js ${have:-(none)} is too old: the test suites use node --test options" \
     "(--test-force-exit) that need Node.js $NODE_MIN or later, and Debian bookworm has 18." \
     "Installing $NODE_PKG from the npm registry." >&2
if ! command -v npm >/dev/null 2>&1 || ! run $sudo npm install -g --no-fund --no-audit "$NODE_PKG"; then
  echo "deps: could not install $NODE_PKG with npm. Install Node.js $NODE_MIN or later" \
       "yourself (from https://nodejs.org, or 'npm install -g $NODE_PKG' where the npm" \
       "registry is reachable), put it first on PATH, and run make again." >&2
  exit 1
fi
[ "${DEPS_DRY_RUN:-}" = 1 ] && exit 0
hash -r
have=$(node_version)
if [ -z "$have" ] || older "$have" "$NODE_MIN"; then
  bin=$(npm prefix -g 2>/dev/null)/bin
  echo "deps: Node.js $NODE_PKG is installed in $bin, but the node first on PATH is still" \
       "${have:-missing} ($(command -v node || echo none)). Put $bin before it on PATH" \
       "(export PATH=\"$bin:\$PATH\") and run make again." >&2
  exit 1
fi
echo "deps: Node.js $have installed" >&2
