#!/usr/bin/env bash
# The Kotlin/Swift library (tessera-ffi) compiles for every Android ABI and
# for iOS, on a machine without the Android NDK or Xcode: each target is
# built as a static library only (`cargo rustc --crate-type staticlib`, without
# the uniffi-bindgen tool: --no-default-features; the
# crate's cdylib would need the target's linker, a staticlib needs none),
# in the debug profile (lean: see below), and scripts/check_staticlib.py then reads the archive
# and checks that every object file is for the target's machine and that it
# exports exactly the UniFFI symbols of the host build (the functions the
# generated Kotlin and Swift call).
#
#   scripts/mobile-targets.sh            # all targets below that are installed
#
# Targets (scripts/setup.sh adds them): aarch64-linux-android (arm64-v8a),
# armv7-linux-androideabi (armeabi-v7a), x86_64-linux-android (x86_64),
# aarch64-apple-ios (devices), aarch64-apple-ios-sim and x86_64-apple-ios
# (the simulators). When the stable toolchain has no standard library for a
# simulator target (rustup's server answered 404 for it on 2026-11-30), it
# is compiled with the MSRV toolchain (`cargo +1.88 … --ignore-rust-version`:
# tessera-ffi itself says 1.91 for its uniffi-bindgen tool, which these
# builds leave out), whose standard library downloads; a target neither
# toolchain has fails the suite.
#
# The real device libraries (release profile, linked, 16 KB pages on
# Android, XCFramework on Apple) are built by scripts/android-build.sh and
# scripts/xcframework.sh on machines with the NDK / Xcode.
#
# Env: CARGO_TARGET_DIR (honoured through `cargo metadata`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
log() { printf '\033[1m[mobile]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[mobile]\033[0m %s\n' "$*" >&2; exit 1; }

REQUIRED=(aarch64-linux-android:elf-aarch64 armv7-linux-androideabi:elf-arm x86_64-linux-android:elf-x86_64
  aarch64-apple-ios:macho-arm64)
SIMULATORS=(aarch64-apple-ios-sim:macho-arm64 x86_64-apple-ios:macho-x86_64)
. "$ROOT/scripts/workspace.sh"
MSRV=$(workspace_value rust-version)

command -v python3 >/dev/null || die "python3 not found (scripts/setup.sh installs it)"
SYSROOT=$(rustc --print sysroot)
installed() { [ -d "$SYSROOT/lib/rustlib/$1/lib" ]; }
installed_msrv() { [ -d "$(rustc "+$MSRV" --print sysroot 2>/dev/null)/lib/rustlib/$1/lib" ]; }
# Why an optional target is missing: scripts/setup.sh keeps rustup's output.
why_missing() {
  local m msg code
  m="${TESSERA_CACHE:-$HOME/.cache/tessera}/rustup-target-unavailable-$1-$(rustc --version | cut -d' ' -f2)"
  [ -f "$m" ] || { echo "scripts/setup.sh has not tried it"; return; }
  msg=$(grep -m1 -oE 'error: .*' "$m" || true)
  code=$(grep -m1 -oE 'status code: [0-9]+' "$m" || true)
  echo "${msg:-unknown error}${code:+ ($code)}; rustup's output: $m"
}

# The reference: the host build's static library (the crate builds one with
# its cdylib), whose symbols the generated bindings were made from.
. "$ROOT/scripts/ffi-lib.sh"
ffi_build_host_library
REF="$LIB_DIR/libtessera_ffi.a"
[ -f "$REF" ] || die "missing $REF after cargo build"

# Lean: a compile check, not a library to ship. The target's code is built
# without optimisation or debug info (-C opt-level=0 -C debuginfo=0 through
# CARGO_TARGET_<TRIPLE>_RUSTFLAGS, so the host's build scripts, proc macros
# and the reference build are untouched; the dev profile optimises the crypto
# crates: measured here, 74-77 s of CPU per target instead of 99-103 s, and
# 170 MB instead of 179 MB), without incremental caches,
# and under CI (CI=true) each target's folder is deleted once checked, so the
# suite never holds more than one target's build on disk.
[ -z "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ] ||
  log "note: RUSTFLAGS is set: it replaces the lean flags below (slower, same check)"
export CARGO_INCREMENTAL=0

failed=0
build_and_check() {  # TRIPLE MACHINE [MSRV: build with the MSRV toolchain]
  local t0=$SECONDS via=()
  [ -z "${3:-}" ] || via=("+$MSRV" rustc --ignore-rust-version)
  [ -n "${3:-}" ] || via=(rustc)
  export "CARGO_TARGET_$(echo "$1" | tr 'a-z-' 'A-Z_')_RUSTFLAGS=-C opt-level=0 -C debuginfo=0"
  log "cargo ${via[*]} -p tessera-ffi --no-default-features --lib --crate-type staticlib --target $1"
  if ! cargo "${via[@]}" -q --manifest-path "$ROOT/Cargo.toml" -p tessera-ffi --no-default-features --lib \
       --crate-type staticlib --target "$1"; then
    printf '[mobile] FAIL %s: does not compile\n' "$1"; failed=$((failed + 1)); return
  fi
  if python3 "$ROOT/scripts/check_staticlib.py" "$REF" "$TARGET_DIR/$1/debug/libtessera_ffi.a" "$2"; then
    log "ok   $1 ($((SECONDS - t0)) s, $(du -sh "$TARGET_DIR/$1" | cut -f1) in $TARGET_DIR/$1)"
    if [ "${CI:-}" = true ]; then rm -rf "${TARGET_DIR:?}/$1"; fi
  else
    printf '[mobile] FAIL %s\n' "$1"; failed=$((failed + 1))
  fi
}

for spec in "${REQUIRED[@]}"; do
  t=${spec%%:*}
  installed "$t" || die "the Rust standard library for $t is not installed: rustup target add $t (scripts/setup.sh)"
  build_and_check "$t" "${spec#*:}"
done
for spec in "${SIMULATORS[@]}"; do
  t=${spec%%:*}
  if installed "$t"; then
    build_and_check "$t" "${spec#*:}"
  elif installed_msrv "$t"; then
    log "$t: no standard library for $(rustc --version | cut -d' ' -f2) ($(why_missing "$t")): compiled with Rust $MSRV"
    build_and_check "$t" "${spec#*:}" MSRV
  else
    printf '[mobile] FAIL %s: no standard library for it in the stable or the %s toolchain (scripts/setup.sh)\n' "$t" "$MSRV"
    failed=$((failed + 1))
  fi
done

# The build scripts for the real libraries need the NDK / Xcode: here, check
# their syntax and that they stop at once with what is missing.
for s in android-build.sh xcframework.sh swift-release.sh; do
  bash -n "$ROOT/scripts/$s" || { printf '[mobile] FAIL scripts/%s: syntax\n' "$s"; failed=$((failed + 1)); }
done
expect_stop() {  # SCRIPT MESSAGE: the script fails, saying MESSAGE
  local out
  if out=$(bash "$ROOT/scripts/$1" 2>&1 </dev/null); then
    printf '[mobile] FAIL scripts/%s ran through on this machine\n' "$1"; failed=$((failed + 1))
  elif ! grep -qF "$2" <<<"$out"; then
    printf '[mobile] FAIL scripts/%s stopped without saying "%s":\n%s\n' "$1" "$2" "$out"; failed=$((failed + 1))
  else
    log "ok   scripts/$1 stops here: $2"
  fi
}
if [ "$(uname -s)" != Darwin ]; then expect_stop xcframework.sh "needs macOS with Xcode"; fi
if ! cargo ndk --version >/dev/null 2>&1; then
  expect_stop android-build.sh "cargo-ndk not found: cargo install cargo-ndk"
elif [ -z "${ANDROID_NDK_HOME:-}${ANDROID_NDK_ROOT:-}${ANDROID_HOME:-}" ]; then
  expect_stop android-build.sh "Android NDK not found"
else
  log "SKIPPED the android-build.sh prerequisite check: cargo-ndk and an Android SDK/NDK are here (run the script itself)"
fi

[ "$failed" -eq 0 ] || die "$failed target(s) failed"
log "every mobile target compiles and exports the UniFFI API"
