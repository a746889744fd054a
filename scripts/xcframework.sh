#!/usr/bin/env bash
# Builds the Apple binary of Tessera for the root Package.swift, on macOS with
# Xcode (only there: xcodebuild and lipo are Apple tools):
#
#   build/TesseraFFI.xcframework       static libtessera_ffi.a for
#       ios-arm64                      iPhone/iPad (aarch64-apple-ios)
#       ios-arm64_x86_64-simulator     Simulator, Apple silicon + Intel (lipo)
#       macos-arm64_x86_64             macOS, Apple silicon + Intel (lipo)
#     each with Headers/TesseraFFI/{TesseraFFI.h,module.modulemap}
#     (uniffi-bindgen; the header folder keeps this module map apart from
#     other XCFrameworks' in the app's include directory);
#   build/TesseraFFI.xcframework.zip (+ .checksum): what a release uploads
#     (scripts/swift-release.sh);
#   bindings-swift/Sources/Tessera/Tessera.swift: the generated Swift API,
#     the root package's `Tessera` target (gitignored; a release tags it).
#
#   scripts/xcframework.sh
#
# Then `swift build` at the repository root, or add the repository folder to
# an Xcode project as a local package. Rust libraries in the `mobile-release`
# profile (Cargo.toml: size-optimised, fat LTO, panics unwind). Deployment
# targets match Package.swift's platforms (iOS 15, macOS 12).
#
# On Linux this script stops at once, saying so; there
# `scripts/mobile-targets.sh` (part of scripts/test.sh) checks that the
# library compiles for iOS, and bindings-swift/test.sh runs the Swift tests
# and validates the root Package.swift.
#
# Env: CARGO_TARGET_DIR (honoured through `cargo metadata`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
log() { printf '\033[1m[xcframework]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[xcframework]\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Darwin ] || die "needs macOS with Xcode (xcodebuild, lipo); this is $(uname -s).
  On Linux: bash scripts/mobile-targets.sh checks the library compiles for iOS,
  bash bindings-swift/test.sh runs the Swift tests (see bindings-swift/README.md)."
for t in cargo rustup xcodebuild lipo ditto swift; do
  command -v "$t" >/dev/null || die "$t not found (Xcode command line tools, rustup)"
done

DEVICE=aarch64-apple-ios
SIMULATOR=(aarch64-apple-ios-sim x86_64-apple-ios)
MACOS=(aarch64-apple-darwin x86_64-apple-darwin)
PROFILE=mobile-release
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0

log "rustup target add $DEVICE ${SIMULATOR[*]} ${MACOS[*]}"
rustup target add "$DEVICE" "${SIMULATOR[@]}" "${MACOS[@]}" >/dev/null

# 1. Static libraries (a staticlib only: the crate's cdylib is not needed).
. "$ROOT/scripts/ffi-lib.sh"
ffi_build_host_library      # for uniffi-bindgen and the metadata it reads
for t in "$DEVICE" "${SIMULATOR[@]}" "${MACOS[@]}"; do
  log "cargo rustc --crate-type staticlib --profile $PROFILE --target $t"
  cargo rustc -q --manifest-path "$ROOT/Cargo.toml" -p tessera-ffi --no-default-features --lib --crate-type staticlib \
    --profile "$PROFILE" --target "$t"
done
lib() { echo "$TARGET_DIR/$1/$PROFILE/libtessera_ffi.a"; }

WORK="$ROOT/build/xcframework"
rm -rf "$WORK"
mkdir -p "$WORK/ios" "$WORK/ios-simulator" "$WORK/macos"
cp "$(lib "$DEVICE")" "$WORK/ios/libtessera_ffi.a"
lipo -create "$(lib "${SIMULATOR[0]}")" "$(lib "${SIMULATOR[1]}")" -output "$WORK/ios-simulator/libtessera_ffi.a"
lipo -create "$(lib "${MACOS[0]}")" "$(lib "${MACOS[1]}")" -output "$WORK/macos/libtessera_ffi.a"

# 2. Header, module map and Swift source (settings: host/uniffi.toml).
ffi_generate swift "$WORK/generated"
HEADERS="$WORK/headers"
mkdir -p "$HEADERS/TesseraFFI"
cp "$WORK/generated/TesseraFFI.h" "$HEADERS/TesseraFFI/TesseraFFI.h"
cp "$WORK/generated/TesseraFFI.modulemap" "$HEADERS/TesseraFFI/module.modulemap"
mkdir -p "$ROOT/bindings-swift/Sources/Tessera"
cp "$WORK/generated/Tessera.swift" "$ROOT/bindings-swift/Sources/Tessera/Tessera.swift"

# 3. The XCFramework and its release zip.
XCF="$ROOT/build/TesseraFFI.xcframework"
rm -rf "$XCF" "$XCF.zip" "$XCF.zip.checksum" "$XCF.commit"
log "xcodebuild -create-xcframework"
xcodebuild -create-xcframework \
  -library "$WORK/ios/libtessera_ffi.a" -headers "$HEADERS" \
  -library "$WORK/ios-simulator/libtessera_ffi.a" -headers "$HEADERS" \
  -library "$WORK/macos/libtessera_ffi.a" -headers "$HEADERS" \
  -output "$XCF" >/dev/null
(cd "$ROOT/build" && ditto -c -k --sequesterRsrc --keepParent TesseraFFI.xcframework TesseraFFI.xcframework.zip)
swift package compute-checksum "$XCF.zip" > "$XCF.zip.checksum"
# The commit it was built from (scripts/swift-release.sh releases only that).
if git -C "$ROOT" diff --quiet HEAD --; then
  git -C "$ROOT" rev-parse HEAD > "$XCF.commit"
else
  rm -f "$XCF.commit"; log "the working tree has changes: this build cannot be released"
fi

for slice in ios-arm64 ios-arm64_x86_64-simulator macos-arm64_x86_64; do
  [ -f "$XCF/$slice/libtessera_ffi.a" ] || die "xcodebuild made no $slice slice"
  [ -f "$XCF/$slice/Headers/TesseraFFI/module.modulemap" ] || die "no module map in the $slice slice"
done
log "$XCF ($(du -sh "$XCF" | cut -f1)); zip checksum $(cat "$XCF.zip.checksum")"
log "next: swift build (repository root), or scripts/swift-release.sh VERSION URL"
