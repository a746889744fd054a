#!/usr/bin/env bash
# Kotlin/JVM binding tests: build libtessera_ffi for the host, generate the
# Kotlin bindings from it (UniFFI library mode), compile them with the tests
# and run the tests on the JVM, loading the library through JNA exactly as an
# app does. Works from any cwd and any clone location.
#
#   bindings-kotlin/test.sh
#
# Env: TESSERA_CACHE (tools from scripts/setup.sh; default ~/.cache/tessera),
#      CARGO_TARGET_DIR (honoured through `cargo metadata`).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/.." && pwd -P)
CACHE=${TESSERA_CACHE:-$HOME/.cache/tessera}
KOTLIN_HOME="$CACHE/npm/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JNA_JAR=${JNA_JAR:-/usr/share/java/jna.jar}
BUILD="$HERE/build"

log() { printf '\033[1m[kotlin]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[kotlin]\033[0m %s\n' "$*" >&2; exit 1; }
need() { [ -e "$1" ] || die "missing $2 ($1): run scripts/setup.sh"; }

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup)"
command -v java >/dev/null || die "java not found: install a JDK (e.g. openjdk-17-jdk-headless)"
need "$KOTLINC" "Kotlin compiler"
need "$KOTLIN_HOME/lib/kotlin-stdlib.jar" "kotlin-stdlib.jar"
need "$KOTLIN_HOME/lib/kotlin-test.jar" "kotlin-test.jar"
need "$JNA_JAR" "JNA (Debian libjna-java + libjna-jni)"
[ -x "$KOTLINC" ] || chmod +x "$KOTLIN_HOME"/bin/* 2>/dev/null || die "$KOTLINC is not executable: run scripts/setup.sh"

# 1. Host library, 2. Kotlin bindings in library mode (package dev.tessera).
. "$ROOT/scripts/ffi-lib.sh"
ffi_build_host_library
GEN="$BUILD/generated"
ffi_generate kotlin "$GEN"
[ -f "$GEN/dev/tessera/tessera.kt" ] || die "bindgen did not write $GEN/dev/tessera/tessera.kt"

# 3. Compile bindings + tests (skipped when neither they nor the compiler changed).
CP="$JNA_JAR:$KOTLIN_HOME/lib/kotlin-test.jar"
JAR="$BUILD/tessera-tests.jar"
SRCS=("$GEN/dev/tessera/tessera.kt" "$HERE"/src/test/kotlin/*.kt)
STAMP=$( { cat "${SRCS[@]}"; ls -l "$KOTLIN_HOME/lib/kotlin-compiler.jar" "$JNA_JAR"; } | sha256sum | cut -c1-64)
if [ -f "$JAR" ] && [ "$(cat "$BUILD/tessera-tests.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "kotlinc: up to date"
else
  log "kotlinc (${#SRCS[@]} files)"
  rm -f "$JAR" "$BUILD/tessera-tests.stamp"
  "$KOTLINC" -nowarn -cp "$CP" -d "$JAR" "${SRCS[@]}"
  echo "$STAMP" > "$BUILD/tessera-tests.stamp"
fi

# 4. Run on the JVM; JNA finds libtessera_ffi.so through jna.library.path.
log "java dev.tessera.tests.MainKt"
exec java -Djna.library.path="$LIB_DIR" \
  -cp "$JAR:$JNA_JAR:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$KOTLIN_HOME/lib/kotlin-test.jar" \
  dev.tessera.tests.MainKt "$ROOT/vectors/otp.json" "$ROOT/vectors/link.json"
