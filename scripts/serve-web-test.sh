#!/usr/bin/env bash
# The demo page of `tessera serve` in headless Chromium (cli/tests/web/serve-page.mjs):
# builds the tessera binary, creates a portal in a temporary directory, starts
# `tessera serve --listen 127.0.0.1:0`, runs the page test against it with the
# device simulator, then stops the server with SIGTERM (it must exit 0).
# Fails (never skips) when Chromium, Node or playwright-core is missing:
# scripts/setup.sh installs them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "[serve-web] error: no Chromium at $chromium (scripts/setup.sh installs it)" >&2; exit 1; }
command -v node >/dev/null || { echo "[serve-web] error: node is missing" >&2; exit 1; }

cargo build -q -p tessera-cli
bin="${CARGO_TARGET_DIR:-target}/debug/tessera"
bin="$(cd "$(dirname "$bin")" && pwd)/tessera"

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

env -u TESSERA_PORTAL_SECRET -u TESSERA_DB "$bin" portal init --dir "$work/portal" --name "Demo Bank" >/dev/null 2>&1
mkfifo "$work/out"
env -u TESSERA_PORTAL_SECRET -u TESSERA_DB "$bin" serve --dir "$work/portal" --listen 127.0.0.1:0 \
  >"$work/out" 2>"$work/serve.log" &
server=$!
exec 3<"$work/out"
read -r -t 20 line <&3 || { echo "[serve-web] error: the server printed no address" >&2; cat "$work/serve.log" >&2; exit 1; }
url="${line#listening on }"
echo "[serve-web] tessera serve at $url"

status=0
node cli/tests/web/serve-page.mjs "$url" "$bin" || status=$?

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
server=""
exec 3<&-
if [ "$server_status" -ne 0 ]; then
  echo "[serve-web] error: the server exited $server_status after SIGTERM" >&2; cat "$work/serve.log" >&2; exit 1
fi
grep -q '"msg":"stopped"' "$work/serve.log" || { echo "[serve-web] error: no clean stop in the log" >&2; exit 1; }
if [ "$status" -ne 0 ]; then cat "$work/serve.log" >&2; exit "$status"; fi
echo "[serve-web] PASS: $(grep -c '"route"' "$work/serve.log") requests served, server stopped cleanly"
