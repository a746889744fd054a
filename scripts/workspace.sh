# Sourced by the scripts that read facts of the workspace (one way to read
# each): scripts/setup.sh, msrv.sh, mobile-targets.sh, package-check.sh,
# ffi-lib.sh (Kotlin/Swift) and bindings-wasm/build.sh.

WORKSPACE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

# workspace_value KEY: the first `KEY = "…"` of the workspace Cargo.toml
# (`rust-version`: the MSRV; `version`: the crates' version).
workspace_value() {
  sed -n "s/^$1 = \"\(.*\)\"/\1/p" "$WORKSPACE_ROOT/Cargo.toml" | head -1
}

# cargo_target_dir: where cargo builds (CARGO_TARGET_DIR, build.target-dir
# or target/, as `cargo metadata` resolves them), absolute and physical.
cargo_target_dir() {
  local dir
  dir=$(cargo metadata --manifest-path "$WORKSPACE_ROOT/Cargo.toml" --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') || return 1
  [ -n "$dir" ] || return 1
  mkdir -p "$dir" && (cd "$dir" && pwd -P)
}
