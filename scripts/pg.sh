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
#
# With --tls (start|url|stop --tls: a second server, its own state file) the
# server speaks TLS only: a throw-away CA (tls/ca.pem) signed its
# certificate, which names `localhost` only (not 127.0.0.1: the tests check
# host names with it); tls/other-ca.pem is a second CA that signed nothing;
# pg_hba rejects every TCP connection without TLS (the Unix socket in sock/
# stays open, plain, for test set-up). It prints
#   postgresql://tessera@localhost:PORT/postgres?sslmode=verify-full&sslrootcert=DIR/tls/ca.pem
#   export TESSERA_TEST_POSTGRES_TLS=$(scripts/pg.sh start --tls)
# The certificates are made with the openssl command (scripts/setup.sh).
set -euo pipefail
TLS=
[ "${2:-}" = --tls ] && TLS=1
if [ -n "$TLS" ]; then
  STATE=${TESSERA_PG_STATE:-${TMPDIR:-/tmp}/tessera-pg-tls-$(id -u).state}
else
  STATE=${TESSERA_PG_STATE:-${TMPDIR:-/tmp}/tessera-pg-$(id -u).state}
fi
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

url() {
  if [ -n "$TLS" ]; then
    echo "postgresql://tessera@localhost:$PG_PORT/postgres?sslmode=verify-full&sslrootcert=$PG_DIR/tls/ca.pem"
  else
    echo "postgresql://tessera@127.0.0.1:$PG_PORT/postgres"
  fi
}

# A CA, a second CA and the server's certificate (localhost only), in $1.
make_certs() {
  local d=$1
  command -v openssl >/dev/null || { log "openssl is missing (apt-get install openssl, or run scripts/setup.sh)"; return 1; }
  local ca_ext='basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash'
  local ee_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
authorityKeyIdentifier=keyid'
  (
    cd "$d"
    printf '%s\n' "$ca_ext" >ca.ext
    printf '%s\n' "$ee_ext" >server.ext
    for ca in ca other-ca; do
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca.key" -out "$ca.csr" \
        -subj "/CN=Tessera throw-away $ca" 2>/dev/null
      openssl x509 -req -in "$ca.csr" -signkey "$ca.key" -days 2 -extfile ca.ext -out "$ca.pem" 2>/dev/null
    done
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
      -subj "/CN=localhost" 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext \
      -out server.crt 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl ca.key other-ca.key
  ) || { log "could not make the test certificates"; return 1; }
  chmod 600 "$d/server.key"
  [ "$(id -u)" = 0 ] && chown tessera-pg: "$d/server.key" "$d/server.crt"
  return 0
}

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
  local tls_opts=""
  if [ -n "$TLS" ]; then
    mkdir -p "$dir/tls"; chmod 755 "$dir/tls"
    make_certs "$dir/tls" || { stop_quietly; return 1; }
    # TCP only with TLS; the socket (test set-up) stays plain.
    printf 'local all all trust\nhostnossl all all all reject\nhostssl all all all trust\n' >"$dir/data/pg_hba.conf"
    tls_opts="-c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key"
  fi
  local tries=0
  while :; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 $tls_opts" \
        start >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 3 ]; then log "the server did not start:"; tail -20 "$dir/server.log" >&2; stop_quietly; return 1; fi
  done
  printf 'PG_DIR=%q\nPG_BIN=%q\nPG_PORT=%q\n' "$dir" "$bin" "$port" >"$STATE"
  PG_PORT=$port; PG_DIR=$dir
  log "PostgreSQL ($(basename "$(dirname "$bin")"))${TLS:+ with TLS} on 127.0.0.1:$port, data in $dir"
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
  url) if running; then url; else log "not running (scripts/pg.sh start${TLS:+ --tls})"; exit 1; fi ;;
  stop) stop_quietly; log "stopped" ;;
  *) echo "usage: $0 start|stop|url [--tls]" >&2; exit 2 ;;
esac
