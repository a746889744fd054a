#!/usr/bin/env bash
# Kotlin/JVM binding tests: build libtessera_ffi for the host, generate the
# Kotlin bindings from it (UniFFI library mode, settings from host/uniffi.toml),
# compile them with the tests and run the tests on the JVM, loading the
# library through JNA exactly as an app does: every vectors/scenarios/*.json,
# the golden vectors, the Kotlin-only API tests, then a Java class calling the
# API (proof that no public signature needs Kotlin's unsigned types). Works
# from any cwd and any clone location.
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
KT="$GEN/dev/tessera/tessera.kt"
[ -f "$KT" ] || die "bindgen did not write $KT (is host/uniffi.toml's package_name still dev.tessera?)"
grep -q '^package dev\.tessera$' "$KT" || die "$KT is not in package dev.tessera"
grep -q 'return "tessera_ffi"' "$KT" || die "$KT does not load libtessera_ffi (cdylib_name in host/uniffi.toml)"
# Public signatures spell unsigned types kotlin.ULong etc. (the runtime's own
# helpers use bare ULong); Java cannot call those.
if grep -nE 'kotlin\.U(Long|Int|Short|Byte)\b' "$KT"; then
  die "unsigned types in the public Kotlin API (above): Java cannot call them"
fi

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

# 4. Java against the same classes (compiles only without unsigned types).
command -v javac >/dev/null || die "javac not found: install a JDK (e.g. openjdk-17-jdk-headless)"
RUN_CP="$JAR:$JNA_JAR:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$KOTLIN_HOME/lib/kotlin-test.jar"
log "javac src/test/java"
rm -rf "$BUILD/java"
javac -nowarn -cp "$RUN_CP" -d "$BUILD/java" "$HERE"/src/test/java/*.java

# 5. Run on the JVM; JNA finds libtessera_ffi.so through jna.library.path.
log "java dev.tessera.tests.MainKt"
java -Djna.library.path="$LIB_DIR" -cp "$RUN_CP" dev.tessera.tests.MainKt \
  "$ROOT/vectors/scenarios" "$ROOT/vectors/otp.json" "$ROOT/vectors/link.json"
log "java JavaCaller"
java -Djna.library.path="$LIB_DIR" -cp "$BUILD/java:$RUN_CP" JavaCaller
