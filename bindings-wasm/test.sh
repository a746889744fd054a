#!/usr/bin/env bash
# Build the npm package, then test it as users load it:
#   1. bindings-wasm/build.sh (wasm-release build, wasm-bindgen node+web, wasm-opt,
#      size report: the "wasm size: raw N bytes, gzip N bytes" line must be there)
#   2. node --test bindings-wasm/test/          (Node, through the package's exports:
#      test/scenarios.mjs runs every vectors/scenarios/*.json; js.test.mjs the
#      JS-only checks; vectors.test.mjs vectors/otp.json)
#   3. node bindings-wasm/test/browser/run.mjs  (headless Chromium, pkg/index.js: OTP page;
#      every scenario file in the page with the same runner; link QR screenshot decoded in Node;
#      a payment approved on a portal page: challenge QR screenshot decoded and answered in Node,
#      the code typed into the page)
#   4. node bindings-wasm/packed/run.mjs  (the packed tarball: exact file list;
#      a Node ESM project, an esbuild bundle of it and a Vite production build
#      in headless Chromium, each installing the tarball and running
#      packed/shared.ts, type-checked without skipLibCheck)
# Exits non-zero on the first failure. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash bindings-wasm/build.sh | tee "$log"
grep -Eq '^wasm size: raw [0-9]+ bytes, gzip [0-9]+ bytes' "$log" ||
  { echo "[wasm] error: build.sh printed no size report" >&2; exit 1; }
printf '\033[1m[wasm]\033[0m %s\n' "node --test bindings-wasm/test/"
node --test bindings-wasm/test/
printf '\033[1m[wasm]\033[0m %s\n' "node bindings-wasm/test/browser/run.mjs"
node bindings-wasm/test/browser/run.mjs
printf '\033[1m[wasm]\033[0m %s\n' "node bindings-wasm/packed/run.mjs"
node bindings-wasm/packed/run.mjs
