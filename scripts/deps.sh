#!/usr/bin/env bash
# Install the Debian packages the build and tests need, only when some are missing.
# Asks dpkg first, so on a machine that has everything this does nothing and needs no network.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler
      libjansson-dev libcmocka-dev libgrpc-dev libmicrohttpd-dev libcurl4-openssl-dev
      openssl curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# the conformance suite runs the JavaScript SDK: Node.js and npm, Debian's if none is there
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
