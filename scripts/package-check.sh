#!/usr/bin/env bash
# The crates as crates.io would get them:
#   1. `cargo package -p tessera-core`, then
#      the crate is unpacked into a temporary directory, outside the
#      workspace, and its own tests run there (`cargo test --release`:
#      golden vectors, property tests, fuzz corpora, doc tests), and its
#      examples run: everything they read must be inside the package;
#   2. the file list of the package: vectors, licences and examples inside,
#      no build output;
#   3. every other publishable crate packs (`--no-verify`: their builds are
#      the workspace's own tests), and the unpublished ones say
#      `publish = false`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '\033[1m[package]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[package]\033[0m %s\n' "$*" >&2; exit 1; }

. scripts/workspace.sh
TARGET_DIR=$(cargo_target_dir)
VERSION=$(workspace_value version)
CRATE="$TARGET_DIR/package/tessera-core-$VERSION.crate"

log "cargo package -p tessera-core"
# --no-verify: cargo's own check builds the unpacked crate once more; the
# test build below does that and more.
cargo package --locked -q --no-verify -p tessera-core
[ -f "$CRATE" ] || die "no $CRATE"

files=$(tar tzf "$CRATE" | sed "s|^tessera-core-$VERSION/||")
for f in Cargo.toml Cargo.lock README.md LICENSE-APACHE LICENSE-MIT docs/ERRORS.md \
    vectors/link.json vectors/challenge.json vectors/activation.json vectors/otp.json \
    tests/fuzz/harness.rs tests/link_vectors.rs examples/otp_verifier.rs examples/link_and_approve.rs; do
  grep -qx "$f" <<<"$files" || die "the package lacks $f"
done
if grep -E '^(target/|vectors/scenarios/)|\.orig\.|~$' <<<"$files" | grep -v '^Cargo.toml.orig$'; then
  die "the package holds files it should not (above)"
fi
log "$(wc -l <<<"$files") files, $(wc -c < "$CRATE") bytes packed"

# Unpacked outside the workspace (so no parent Cargo.toml applies) with
# fresh file times (-m): a .crate stores one fixed time for every file,
# which would let cargo reuse test binaries built from older sources. So the
# crate itself is rebuilt each run; its dependencies are not.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar xzmf "$CRATE" -C "$work"
log "cargo test --release in the unpacked crate ($work)"
# Its own target directory (the packed manifest has no workspace profiles,
# so nothing would be shared anyway); offline: every dependency is already
# in cargo's cache from the workspace build, locked by the packed Cargo.lock.
if (cd "$work/tessera-core-$VERSION" &&
    CARGO_TARGET_DIR="$TARGET_DIR/package-test" cargo test --release --locked --offline -q > "$work/test.log" 2>&1); then
  grep -E '^test result' "$work/test.log" |
    awk '{p += $4; f += $6; i += $8} END {print "[package] unpacked tessera-core: " NR " test binaries, " p " passed, " f " failed, " i " ignored"}'
else
  tail -60 "$work/test.log"; die "the packaged crate's tests failed"
fi

for ex in otp_verifier link_and_approve; do
  log "cargo run --example $ex (unpacked crate)"
  (cd "$work/tessera-core-$VERSION" &&
    CARGO_TARGET_DIR="$TARGET_DIR/package-test" cargo run --release --locked --offline -q --example "$ex") ||
    die "example $ex failed"
done

log "cargo package --no-verify: the other publishable crates"
cargo package --locked -q --no-verify -p tessera-core -p tessera-crypto-aws-lc -p tessera-js-derive -p tessera-host -p tessera-store -p tessera-cli
# The crates that ship inside other packages (AAR, XCFramework, npm) or only
# measure: cargo would pack them, so their manifests must say no.
manifests=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    print(p["name"], p["publish"] == [], sep="\t")')
for c in tessera-ffi tessera-wasm tessera-benches; do
  grep -qx "$c	True" <<<"$manifests" || die "$c must say publish = false"
done
for c in tessera-core tessera-crypto-aws-lc tessera-js-derive tessera-host tessera-store tessera-cli; do
  grep -qx "$c	False" <<<"$manifests" || die "$c is meant for crates.io but says publish = false"
done
log "ok"
