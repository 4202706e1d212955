#!/usr/bin/env bash
# pg.sh — a throwaway PostgreSQL for the tests and benchmarks.
#   pg.sh start DIR     make a cluster (Debian's postgresql, the newest installed), listening on
#                       127.0.0.1 only on a free port, fsync and synchronous_commit on, with a
#                       database `dtask`; prints its URL and keeps it in DIR/url
#   pg.sh pause DIR S   stop it (fast: its clients are cut off), wait S seconds and start it
#                       again on the same port: an outage
#   pg.sh stop DIR      stop it and remove its files
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user (the
# package makes it) and lives in a directory of its own under /tmp, which DIR/data names, since
# DIR may sit where that user cannot reach (a build tree under a private temporary folder).
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }
usage="usage: pg.sh start|stop DIR, or pg.sh pause DIR SECONDS"
[ $# -ge 2 ] || die "$usage"
cmd="$1"
dir="$2"

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
[ -n "$bin" ] && [ -x "$bin/initdb" ] ||
  die "no PostgreSQL server installed (Debian: apt-get install postgresql; scripts/deps.sh does)"

as_owner() {   # run a server command as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for _ in $(seq 50); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  die "no free port found"
}

# server_start DATA: start the cluster in DATA with the options kept in DIR/opts
server_start() {
  as_owner "$bin/pg_ctl" -D "$1/db" -l "$1/server.log" -w -t 60 -o "$(cat "$dir/opts")" \
    start >/dev/null || { cat "$1/server.log" >&2; die "the server did not start"; }
}

case "$cmd" in
start)
  [ -f "$dir/data" ] && "$0" stop "$dir"   # one left by a run that was killed
  mkdir -p "$dir"
  data="$(mktemp -d)"   # the cluster itself, where the postgres user may reach it
  echo "$data" >"$dir/data"
  [ "$(id -u)" -eq 0 ] && chown postgres "$data"
  as_owner "$bin/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  port="$(free_port)"
  echo "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data" \
       "-c fsync=on -c synchronous_commit=on -c max_connections=200" >"$dir/opts"
  server_start "$data"
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres dtask
  url="postgres://postgres@127.0.0.1:$port/dtask"
  echo "$url" >"$dir/url"
  echo "$url"
  ;;
pause)
  [ $# -eq 3 ] || die "$usage"
  data="$(cat "$dir/data")"
  as_owner "$bin/pg_ctl" -D "$data/db" -m fast -w -t 60 stop >/dev/null
  sleep "$3"
  server_start "$data"
  ;;
stop)
  [ -f "$dir/data" ] || exit 0
  data="$(cat "$dir/data")"
  if [ -d "$data/db" ]; then
    as_owner "$bin/pg_ctl" -D "$data/db" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$dir"
  ;;
*)
  die "$usage"
  ;;
esac
