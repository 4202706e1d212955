#!/usr/bin/env bash
# run-pg.sh — the conformance suite again with every dtask serve on PostgreSQL: a throwaway
# server (scripts/pg.sh) started here and stopped on the way out, its URL in $DTASK_DB, which
# run.sh passes to its server and helpers/raw.js to the servers specs start (each in a schema
# of its own).
#   tests/conformance/run-pg.sh [DTASK] [node --test options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pg_dir="$(mktemp -d)"   # the throwaway server's files (pg.sh start/stop)
trap 'bash "$repo/scripts/pg.sh" stop "$pg_dir"' EXIT
DTASK_DB="$(bash "$repo/scripts/pg.sh" start "$pg_dir")"
export DTASK_DB DTASK_PG_DIR="$pg_dir"   # multinode.test.js restarts it
echo "run-pg.sh: PostgreSQL at $DTASK_DB" >&2
bash "$here/run.sh" "$@"
