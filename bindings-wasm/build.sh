#!/usr/bin/env bash
# Builds the npm package @tessera/sdk into bindings-wasm/pkg/:
#   1. cargo: tessera-wasm for wasm32-unknown-unknown, profile wasm-release
#      (opt-level z, fat LTO, panic = abort; see the workspace Cargo.toml);
#   2. wasm-bindgen (pinned CLI from scripts/setup.sh) --target web: one ES
#      module glue and one .wasm for Node, browsers and bundlers alike; the
#      entry points js/index.js (browsers, bundlers) and js/node.js (Node:
#      reads the .wasm from disk) add `init`; dts.mjs trims the glue's
#      declarations (see there) next to js/index.d.ts; glue.mjs makes a
#      call before init() a TesseraError (INVALID_STATE);
#   3. binaryen `wasm-opt -Oz` on the .wasm, then the size report: the .wasm
#      and the JS a browser loads (glue + index.js + source.js), gzipped, and their total
#      (test/js.test.mjs holds the budget).
# Works from any directory. Tools come from ${TESSERA_CACHE:-~/.cache/tessera}.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE=${TESSERA_CACHE:-$HOME/.cache/tessera}
WASM_BINDGEN="$CACHE/cargo/bin/wasm-bindgen"
WASM_OPT="$CACHE/npm/node_modules/binaryen/bin/wasm-opt"
WBG_VERSION=0.2.130   # must equal the `=` pin of wasm-bindgen in Cargo.toml
PKG=bindings-wasm/pkg

log() { printf '\033[1m[wasm]\033[0m %s\n' "$*"; }
die() { printf '[wasm] error: %s\n' "$*" >&2; exit 1; }

"$WASM_BINDGEN" --version 2>/dev/null | grep -q " $WBG_VERSION\$" ||
  die "wasm-bindgen $WBG_VERSION not found at $WASM_BINDGEN (run scripts/setup.sh)"
[ -f "$WASM_OPT" ] || die "binaryen wasm-opt not found at $WASM_OPT (run scripts/setup.sh)"
command -v node >/dev/null || die "node is required (binaryen's wasm-opt runs on it)"

# getrandom 0.4 only needs its `wasm_js` feature (enabled in
# bindings-wasm/Cargo.toml); no RUSTFLAGS / --cfg getrandom_backend.
log "cargo build -p tessera-wasm --target wasm32-unknown-unknown --profile wasm-release"
cargo build -p tessera-wasm --target wasm32-unknown-unknown --profile wasm-release

# Honour CARGO_TARGET_DIR / build.target-dir if set, else the workspace target/.
. scripts/workspace.sh
TARGET_DIR=$(cargo_target_dir)
WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/tessera_wasm.wasm"
[ -f "$WASM" ] || die "cargo produced no $WASM"

rm -rf "$PKG"
log "wasm-bindgen --target web --out-dir $PKG"
"$WASM_BINDGEN" --target web --out-dir "$PKG" "$WASM"
# Not shipped: the raw export list (nothing imports it).
rm -f "$PKG/tessera_wasm_bg.wasm.d.ts"
# The records' TypeScript declarations come from tessera-host (tsify, feature
# `wasm`); the error codes from the core's table. None is written by hand here.
for decl in "interface LinkOffer {" "type Verdict =" "type ErrorCode =" "type TesseraErrorCode = ErrorCode;" \
    "type Timestamp = number;"; do
  grep -qF "export $decl" "$PKG/tessera_wasm.d.ts" ||
    die "$PKG/tessera_wasm.d.ts lacks \`export $decl\` (tsify declarations of tessera-host)"
done
node bindings-wasm/dts.mjs "$PKG/tessera_wasm.d.ts"
node bindings-wasm/glue.mjs "$PKG/tessera_wasm.js"
cp bindings-wasm/js/index.js bindings-wasm/js/node.js bindings-wasm/js/source.js bindings-wasm/js/index.d.ts "$PKG/"
# The licence texts travel in the tarball (npm only picks LICENSE files up
# from the package root, which holds none: one copy each, at the repo root).
cp LICENSE-APACHE LICENSE-MIT "$PKG/"

# The features rustc (1.87+) enables by default for wasm32-unknown-unknown (the
# target_features section of the cargo output lists them);
# wasm-opt must accept them or it rejects the module.
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-multivalue --enable-reference-types)
f="$PKG/tessera_wasm_bg.wasm"
raw_before=$(wc -c < "$f")
log "wasm-opt -Oz $f"
node "$WASM_OPT" -Oz "${FEATURES[@]}" "$f" -o "$f.opt"
mv "$f.opt" "$f"

raw=$(wc -c < "$f")
gz=$(gzip -9 -c "$f" | wc -c)
echo "wasm size: raw $raw bytes, gzip $gz bytes ($f; $raw_before bytes before wasm-opt)"
glue=$(cat "$PKG/tessera_wasm.js" "$PKG/index.js" "$PKG/source.js" | gzip -9 | wc -c)
total=$((gz + glue))
echo "npm size: wasm gzip $gz + JS glue gzip $glue (tessera_wasm.js + index.js + source.js) = total $total bytes gzip (issue 11 target: 100000)"
