#!/usr/bin/env bash
# Every test of Tessera, on a fresh machine or a warm one:
#   1. scripts/setup.sh installs what the tests need (idempotent, cached
#      outside the repo in ${TESSERA_CACHE:-~/.cache/tessera});
#   2. Rust: unit, property, vector, fuzz-corpus, CLI and benchmark-smoke
#      tests, the portal store on SQLite and on a throw-away PostgreSQL
#      (scripts/pg.sh), clippy, the no_std / wasm32 builds of the core and the
#      offline authenticator's firmware (thumbv7em, with its sizes), the
#      Kotlin/Swift library cross-compiled for Android and iOS;
#   3. Kotlin (JVM + JNA), Swift (XCTest), JavaScript (Node) and the
#      browser (headless Chromium) against the same library and vectors;
#      `tessera serve`'s demo page in headless Chromium.
# Exits non-zero when any suite fails; the last line counts suites.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh || { echo "setup failed"; exit 1; }

# CI builds once from scratch: incremental caches would only take disk
# (about a quarter of target/). Free disk is printed before and after.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
disk() { printf '[disk] %s: %s free; target/ %s\n' "$1" "$(df -h --output=avail . | tail -1 | tr -d ' ')" \
  "$(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1)"; }
disk start

# A throw-away PostgreSQL (127.0.0.1 only, data in a temporary directory)
# for the store's conformance suite and simulation, and a second one that
# speaks TLS only (throw-away CA) for the store's TLS tests; stopped on exit.
trap 'bash scripts/pg.sh stop; bash scripts/pg.sh stop --tls' EXIT
TESSERA_TEST_POSTGRES=$(bash scripts/pg.sh start) || { echo "could not start PostgreSQL"; exit 1; }
export TESSERA_TEST_POSTGRES
TESSERA_TEST_POSTGRES_TLS=$(bash scripts/pg.sh start --tls) || { echo "could not start PostgreSQL with TLS"; exit 1; }
export TESSERA_TEST_POSTGRES_TLS

passed=0; failed=0; failures=()
suite() {
  local name=$1; shift
  printf '\n\033[1m==== %s\033[0m\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); printf '\033[1m==== %s: ok (%ss)\033[0m\n' "$name" $((SECONDS - t0))
  else
    failed=$((failed + 1)); failures+=("$name"); printf '\033[1;31m==== %s: FAILED\033[0m\n' "$name"
  fi
}

suite "rust tests" cargo test --workspace --all-targets
# The same golden vectors and scenario files on the AWS-LC provider (the
# run above used RustCrypto for them; the CLI runner uses AWS-LC).
# (--workspace: the same features as the run above, so nothing rebuilds;
# `scenarios` is both the Rust host runner and the CLI's.)
# (core_vectors: tessera-crypto-aws-lc compiles the core's vector tests with
# AWS-LC installed; the core itself does not depend on AWS-LC.)
on_aws_lc() {
  TESSERA_CRYPTO=aws-lc cargo test -q --workspace --test core_vectors --test scenarios
}
suite "vectors + scenario files on AWS-LC" on_aws_lc
suite "rust doc tests" cargo test --workspace --doc
suite "clippy" cargo clippy --workspace --all-targets -- -D warnings
# The core for the Cortex-M4F, then the offline authenticator's firmware
# on it (firmware/: its own workspace, fat LTO; prints flash/RAM/stack).
no_std_builds() {
  cargo build -p tessera-core --target thumbv7em-none-eabihf && bash scripts/firmware-size.sh
}
suite "core no_std + token firmware (thumbv7em-none-eabihf)" no_std_builds
suite "core wasm32" cargo build -p tessera-core --target wasm32-unknown-unknown
# crates.io: tessera-core packed, unpacked and tested on its own; the
# minimum supported Rust version declared and built with.
suite "crate packages + MSRV" bash -c 'bash scripts/package-check.sh && bash scripts/msrv.sh'
suite "protocol re-derivation (python)" python3 scripts/rederive_vectors.py
suite "kotlin" bash bindings-kotlin/test.sh
# The Kotlin/Swift library for Android (3 ABIs) and iOS, as static libraries
# (no NDK or Xcode linker), each checked for its CPU and the UniFFI symbols.
suite "android + ios libraries (cross-compiled)" bash scripts/mobile-targets.sh
suite "swift" bash bindings-swift/test.sh
suite "js + browser" bash bindings-wasm/test.sh
# tessera serve's demo page in headless Chromium with the device simulator.
suite "serve demo page (headless Chromium)" bash scripts/serve-web-test.sh

echo
disk end
if [ "$failed" -gt 0 ]; then echo "failed suites: ${failures[*]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
