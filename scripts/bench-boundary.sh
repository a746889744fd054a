#!/usr/bin/env bash
# Per-call cost across each language boundary (issue 7): a trivial call
# (base32Encode of 1 byte) and a TOTP verification, in Rust (release),
# through wasm-bindgen in Node (wasm-release package) and through
# UniFFI/JNA on the JVM (release library), each the mean of N calls after a
# warm-up. Prints numbers and the overhead over Rust; targets (not a test):
# JS ≤ 5 µs and Kotlin ≤ 20 µs over Rust. Needs scripts/setup.sh's tools.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${TESSERA_CACHE:-$HOME/.cache/tessera}
KOTLIN_HOME="$CACHE/npm/node_modules/kotlin-compiler"
JNA_JAR=${JNA_JAR:-/usr/share/java/jna.jar}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cd "$ROOT"

cargo run -q --release -p tessera-host --example boundary | tee "$OUT/rust.txt"

[ -f bindings-wasm/pkg/node.js ] || bash bindings-wasm/build.sh >/dev/null
node bindings-wasm/bench/boundary.mjs | tee "$OUT/node.txt"

cargo build -q --release -p tessera-ffi
LIB="$ROOT/target/release/libtessera_ffi.so"
"$ROOT/target/release/uniffi-bindgen" generate --no-format --language kotlin --out-dir "$OUT/gen" "$LIB" >/dev/null
"$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$JNA_JAR" -d "$OUT/bench.jar" \
  "$OUT/gen/dev/tessera/tessera.kt" bindings-kotlin/bench/Boundary.kt 2>/dev/null
java -Djna.library.path="$ROOT/target/release" -cp "$OUT/bench.jar:$JNA_JAR:$KOTLIN_HOME/lib/kotlin-stdlib.jar" \
  dev.tessera.bench.BoundaryKt | tee "$OUT/kotlin.txt"

echo "overhead over Rust (ns per call; targets: node ≤ 5000, kotlin ≤ 20000):"
for call in trivial-call totp-verification; do
  r=$(grep "$call" "$OUT/rust.txt" | awk '{print $(NF-1)}')
  for lang in node kotlin; do
    v=$(grep "$call" "$OUT/$lang.txt" | awk '{print $(NF-1)}')
    echo "  $lang $call: $((v - r)) ns over rust ($v vs $r)"
  done
done
