#!/usr/bin/env bash
# Size report (numbers, not pass/fail): the native UniFFI library as shipped
# in mobile apps (profile mobile-release), the npm package's wasm, and the
# offline authenticator's firmware (flash, RAM, stack: scripts/firmware-size.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/workspace.sh
target=$(cargo_target_dir)
cargo build -q -p tessera-ffi --lib --profile mobile-release
so="$target/mobile-release/libtessera_ffi.so"
stripped=$(mktemp); trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" "$so"
printf 'native  libtessera_ffi.so (mobile-release, x86_64): %8d bytes, stripped %8d bytes, gzip %8d bytes\n' \
  "$(stat -c %s "$so")" "$(stat -c %s "$stripped")" "$(gzip -9c "$stripped" | wc -c)"
bash bindings-wasm/build.sh | grep -i -E 'size|bytes' || true
bash scripts/firmware-size.sh
