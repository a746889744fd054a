#!/usr/bin/env bash
# Build the npm package, then test it as users load it:
#   1. bindings-wasm/build.sh (wasm-release build, wasm-bindgen node+web, wasm-opt, size report)
#   2. node --test bindings-wasm/test/          (Node, through the package's exports)
#   3. node bindings-wasm/test/browser/run.mjs  (headless Chromium, pkg/web: OTP page; portal page whose
#      link QR code is screenshotted, decoded in Node and used by simulated devices)
# Exits non-zero on the first failure. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash bindings-wasm/build.sh
printf '\033[1m[wasm]\033[0m %s\n' "node --test bindings-wasm/test/"
node --test bindings-wasm/test/
printf '\033[1m[wasm]\033[0m %s\n' "node bindings-wasm/test/browser/run.mjs"
node bindings-wasm/test/browser/run.mjs
