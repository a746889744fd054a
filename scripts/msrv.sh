#!/usr/bin/env bash
# The minimum supported Rust versions (MSRV), checked two ways:
#   1. every workspace crate's `rust-version` is at least the highest
#      `rust-version` among the dependencies it builds with (normal and
#      build dependencies, as Cargo.lock resolves them for this machine);
#   2. the library crates phones, browsers and portals embed (tessera-core,
#      also without `std`, and tessera-host) are built by the MSRV toolchain
#      itself (`cargo +MSRV check --locked`; scripts/setup.sh installs it).
# Exits non-zero when a declaration is too low or the MSRV build fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/workspace.sh
MSRV=$(workspace_value rust-version)
[ -n "$MSRV" ] || { echo "[msrv] no rust-version in the workspace Cargo.toml" >&2; exit 1; }

host=$(rustc -vV | sed -n 's/^host: //p')
meta=$(mktemp); trap 'rm -f "$meta"' EXIT
cargo metadata --locked --format-version 1 --filter-platform "$host" > "$meta"
python3 - "$meta" "$host" <<'PY'
import json, subprocess, sys
m = json.load(open(sys.argv[1]))
host = sys.argv[2]
by_name_ver = {(p["name"], p["version"]): p for p in m["packages"]}
def ver(v): return tuple(int(x) for x in v.split(".")) if v else (0,)
bad = 0
print(f"{'crate':24} {'declared':>9} {'needed':>7}  because of")
members = sorted((p for p in m["packages"] if p["id"] in m["workspace_members"]), key=lambda p: p["name"])
for pkg in members:
    # `cargo tree -p X` resolves the features of X alone (not the whole
    # workspace's union): what X builds with when someone depends on it.
    out = subprocess.run(["cargo", "tree", "--locked", "-q", "-p", pkg["name"], "-e", "normal,build",
                          "--target", host, "--prefix", "none", "--format", "{p}"],
                         check=True, capture_output=True, text=True).stdout
    deps = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("v"):
            deps.add((parts[0], parts[1][1:]))
    deps.discard((pkg["name"], pkg["version"]))
    need = max((by_name_ver[d] for d in deps if d in by_name_ver), key=lambda p: ver(p.get("rust_version")), default=None)
    needed = need.get("rust_version") if need else None
    declared = pkg.get("rust_version")
    ok = declared is not None and ver(declared) >= ver(needed)
    bad += not ok
    why = f"{need['name']} {need['version']}" if need else ""
    print(f"{pkg['name']:24} {declared or '-':>9} {needed or '-':>7}  {why}{'' if ok else '   <-- too low'}")
sys.exit(1 if bad else 0)
PY
rustup toolchain list | grep -q "^$MSRV" ||
  { echo "[msrv] toolchain $MSRV is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
echo "[msrv] cargo +$MSRV check --locked -p tessera-core (no_std and std) -p tessera-host"
# Its own target directory: another toolchain's artifacts never mix with
# the main build's (and this one stays small: check only, no code).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/msrv"
cargo "+$MSRV" check --locked -q -p tessera-core --lib
cargo "+$MSRV" check --locked -q -p tessera-core --lib --features std -p tessera-host
echo "[msrv] Rust $MSRV builds tessera-core and tessera-host"
