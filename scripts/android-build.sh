#!/usr/bin/env bash
# Builds the Tessera Android library (AAR) in bindings-kotlin/android/:
#
#   1. libtessera_ffi.so for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk
#      (profile mobile-release: size-optimised, fat LTO, panics unwind;
#      API level 26 = the module's minSdk), linked with
#      -Wl,-z,max-page-size=16384 so it loads on 16 KB-page devices (Google
#      Play requires it for apps targeting Android 15+), checked with
#      llvm-readelf, into src/main/jniLibs/<abi>/;
#   2. the Kotlin API with android = true (bindings-kotlin/android/uniffi-android.toml
#      layered over host/uniffi.toml) into src/main/kotlin/;
#   3. `gradle assembleRelease` → build/outputs/aar/tessera-android-release.aar
#      (skipped with --no-gradle, e.g. when Android Studio builds the module).
#
#   scripts/android-build.sh [--no-gradle]
#
# Prerequisites (see bindings-kotlin/README.md, "Android"): Android NDK r27 or
# later (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>), cargo-ndk
# (`cargo install cargo-ndk`), the three Rust targets (added here with
# rustup), and for step 3 a JDK 17, the Android SDK (ANDROID_HOME; platform
# 35) and Gradle 8.9+ (`gradle` on the PATH, or GRADLE=/path/to/gradle).
#
# This machine's CI cannot run it (no NDK): scripts/mobile-targets.sh checks
# instead that the library compiles for the three ABIs, and
# bindings-kotlin/test.sh generates and compiles the Android Kotlin variant.
#
# Env: CARGO_TARGET_DIR (honoured through `cargo metadata`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
MODULE="$ROOT/bindings-kotlin/android"
log() { printf '\033[1m[android]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[android]\033[0m %s\n' "$*" >&2; exit 1; }

GRADLE_STEP=1
case "${1:-}" in
  "") ;;
  --no-gradle) GRADLE_STEP=0 ;;
  *) die "usage: scripts/android-build.sh [--no-gradle]" ;;
esac

ABIS=(arm64-v8a armeabi-v7a x86_64)
TRIPLES=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
API=26                       # = minSdk in bindings-kotlin/android/build.gradle.kts
PROFILE=mobile-release
PAGE=16384

# 0. Prerequisites, each failing with what to install.
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup)"
cargo ndk --version >/dev/null 2>&1 || die "cargo-ndk not found: cargo install cargo-ndk"
NDK=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
if [ -z "$NDK" ] && [ -d "${ANDROID_HOME:-/nonexistent}/ndk" ]; then
  NDK=$(ls -d "$ANDROID_HOME"/ndk/*/ 2>/dev/null | sort -V | tail -1)
fi
[ -n "$NDK" ] && [ -f "$NDK/source.properties" ] ||
  die "Android NDK not found: install NDK r27+ (sdkmanager 'ndk;27.2.12479018') and set ANDROID_NDK_HOME"
NDK=${NDK%/}
NDK_VERSION=$(sed -n 's/^Pkg\.Revision *= *//p' "$NDK/source.properties")
[ "${NDK_VERSION%%.*}" -ge 27 ] 2>/dev/null ||
  die "Android NDK $NDK_VERSION at $NDK is too old: r27 or later is needed (16 KB page alignment)"
export ANDROID_NDK_HOME="$NDK"
READELF=$(ls "$NDK"/toolchains/llvm/prebuilt/*/bin/llvm-readelf 2>/dev/null | head -1)
[ -x "$READELF" ] || die "no llvm-readelf in $NDK/toolchains/llvm/prebuilt/*/bin"
log "NDK $NDK_VERSION ($NDK)"
rustup target add "${TRIPLES[@]}" >/dev/null

# 1. Native libraries. The linker flag goes to these three targets only
#    (CARGO_TARGET_<TRIPLE>_RUSTFLAGS): build scripts and proc macros, built
#    for the host, keep theirs. A RUSTFLAGS in the environment would replace
#    them, hence the check below.
[ -z "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ] ||
  die "unset RUSTFLAGS / CARGO_ENCODED_RUSTFLAGS: they would override the 16 KB page flag"
for t in "${TRIPLES[@]}"; do
  var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  export "$var=-C link-arg=-Wl,-z,max-page-size=$PAGE"
done
targets=()
for abi in "${ABIS[@]}"; do targets+=(-t "$abi"); done
log "cargo ndk ${targets[*]} -P $API build --profile $PROFILE -p tessera-ffi --no-default-features --lib"
(cd "$ROOT" && cargo ndk "${targets[@]}" -P "$API" build --profile "$PROFILE" -p tessera-ffi --no-default-features --lib)

. "$ROOT/scripts/ffi-lib.sh"      # TARGET_DIR, LIB_DIR, LIB, ffi_generate
ffi_build_host_library            # uniffi-bindgen (host) and the metadata it reads
JNILIBS="$MODULE/src/main/jniLibs"
rm -rf "$JNILIBS"
for i in "${!ABIS[@]}"; do
  so="$TARGET_DIR/${TRIPLES[i]}/$PROFILE/libtessera_ffi.so"
  [ -f "$so" ] || die "cargo ndk wrote no $so"
  # Every LOAD segment aligned to 16 KB (or more).
  aligns=$("$READELF" -lW "$so" | awk '$1 == "LOAD" { print $NF }')
  [ -n "$aligns" ] || die "$so: no LOAD segments"
  for a in $aligns; do
    [ $((a)) -ge $PAGE ] || die "$so: LOAD segment aligned to $a, not $PAGE (was the linker flag ignored?)"
  done
  # The UniFFI API is exported.
  "$READELF" --dyn-syms -W "$so" | grep -q ' ffi_tessera_host_uniffi_contract_version$' ||
    die "$so does not export the UniFFI API"
  mkdir -p "$JNILIBS/${ABIS[i]}"
  cp "$so" "$JNILIBS/${ABIS[i]}/libtessera_ffi.so"
  log "${ABIS[i]}: $(du -h "$so" | cut -f1), LOAD aligned to 16 KB"
done

# 2. Kotlin sources, Android variant.
GEN="$MODULE/build/generated-uniffi"
ffi_generate kotlin "$GEN" "$MODULE/uniffi-android.toml"
KT="$GEN/dev/tessera/tessera.kt"
grep -q 'AndroidSystemCleaner' "$KT" || die "$KT is not the Android variant (uniffi-android.toml not applied)"
rm -rf "$MODULE/src/main/kotlin"
mkdir -p "$MODULE/src/main/kotlin/dev/tessera"
cp "$KT" "$MODULE/src/main/kotlin/dev/tessera/tessera.kt"

# 3. The AAR.
if [ "$GRADLE_STEP" = 0 ]; then
  log "module ready in $MODULE (--no-gradle)"
  exit 0
fi
GRADLE=${GRADLE:-$(command -v gradle || true)}
[ -n "$GRADLE" ] || die "gradle not found: install Gradle 8.9+ or set GRADLE (or rerun with --no-gradle)"
log "gradle assembleRelease"
(cd "$MODULE" && "$GRADLE" --no-daemon -q assembleRelease)
AAR="$MODULE/build/outputs/aar/tessera-android-release.aar"
[ -f "$AAR" ] || die "gradle wrote no $AAR"
for abi in "${ABIS[@]}"; do
  unzip -l "$AAR" "jni/$abi/libtessera_ffi.so" >/dev/null || die "$AAR has no jni/$abi/libtessera_ffi.so"
done
log "$AAR ($(du -h "$AAR" | cut -f1))"
