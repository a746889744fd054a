#!/usr/bin/env bash
# A throw-away local PostgreSQL for the tests.
#   scripts/pg.sh start   start one (if none is running) and print its URL
#   scripts/pg.sh url     print the URL of the running one (fails if none)
#   scripts/pg.sh stop    stop it and delete its directory (if any)
# It uses Debian's server binaries (/usr/lib/postgresql/*/bin, package
# `postgresql`, installed by scripts/setup.sh), keeps its data and its unix
# socket in a new temporary directory, listens on 127.0.0.1 only, on a free
# port, and trusts the user `tessera` (no password: nothing else can reach
# it). As root the server runs as the unprivileged user `tessera-pg`
# (created when missing; initdb refuses root). Usage in a shell:
#   export TESSERA_TEST_POSTGRES=$(scripts/pg.sh start)
set -euo pipefail
STATE=${TESSERA_PG_STATE:-${TMPDIR:-/tmp}/tessera-pg-$(id -u).state}
log() { printf '[pg] %s\n' "$*" >&2; }

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  log "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql, or run scripts/setup.sh)"
  return 1
}

# Run a command as the server's user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u tessera-pg -- "$@"; else "$@"; fi
}

running() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  [ -d "$PG_DIR/data" ] && as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

url() { echo "postgresql://tessera@127.0.0.1:$PG_PORT/postgres"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  if running; then url; return 0; fi
  [ -f "$STATE" ] && stop_quietly
  local bin dir port
  bin=$(bindir)
  if [ "$(id -u)" = 0 ] && ! id tessera-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tessera-pg
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tessera-pg.XXXXXX")
  [ "$(id -u)" = 0 ] && chown tessera-pg: "$dir"
  chmod 700 "$dir"
  printf 'PG_DIR=%q\nPG_BIN=%q\nPG_PORT=\n' "$dir" "$bin" >"$STATE"
  as_owner "$bin/initdb" -D "$dir/data" -U tessera --auth=trust --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { log "initdb failed:"; cat "$dir/initdb.log" >&2; stop_quietly; return 1; }
  mkdir -p "$dir/sock"; [ "$(id -u)" = 0 ] && chown tessera-pg: "$dir/sock"
  local tries=0
  while :; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        start >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 3 ]; then log "the server did not start:"; tail -20 "$dir/server.log" >&2; stop_quietly; return 1; fi
  done
  printf 'PG_DIR=%q\nPG_BIN=%q\nPG_PORT=%q\n' "$dir" "$bin" "$port" >"$STATE"
  PG_PORT=$port
  log "PostgreSQL ($(basename "$(dirname "$bin")")) on 127.0.0.1:$port, data in $dir"
  url
}

stop_quietly() {
  [ -f "$STATE" ] || return 0
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    if [ -d "$PG_DIR/data" ]; then
      as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
  fi
  rm -f "$STATE"
}

case "${1:-}" in
  start) start ;;
  url) if running; then url; else log "not running (scripts/pg.sh start)"; exit 1; fi ;;
  stop) stop_quietly; log "stopped" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
