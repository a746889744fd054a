#!/usr/bin/env bash
# Swift binding tests: build libtessera_ffi for the host, generate the Swift
# bindings from it (UniFFI library mode), lay them out as this SwiftPM
# package's sources, and run `swift test` (XCTest) inside the Debian trixie
# chroot made by scripts/setup.sh (Swift 6.0.3). The repository (and the cargo
# target dir, if outside it) is bind-mounted into the chroot at the same
# absolute path, so it works from any clone location and any cwd.
#
#   bindings-swift/test.sh [extra `swift test` arguments, e.g. --filter ScenarioTests]
#
# Env: TESSERA_CACHE (tools from scripts/setup.sh; default ~/.cache/tessera),
#      CARGO_TARGET_DIR (honoured through `cargo metadata`),
#      TESSERA_SCENARIOS (scenario folder; default vectors/scenarios).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/.." && pwd -P)
CACHE=${TESSERA_CACHE:-$HOME/.cache/tessera}
CHROOT=$(cd "$CACHE" 2>/dev/null && cd swift-trixie 2>/dev/null && pwd -P || true)
SWIFT_LIBS=/usr/libexec/swift/lib/swift/linux   # inside the chroot

log() { printf '\033[1m[swift]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[swift]\033[0m %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup)"
# (/usr/bin/swift is an absolute symlink: test its target inside the chroot.)
[ -n "$CHROOT" ] && [ -x "$CHROOT/usr/libexec/swift/bin/swift" ] ||
  die "Swift chroot not found at $CACHE/swift-trixie: run scripts/setup.sh"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "mounting into the Swift chroot needs root (or sudo)"
  SUDO=sudo
fi
for t in chroot mount umount mountpoint flock; do
  command -v "$t" >/dev/null || die "$t not found (util-linux / coreutils)"
done
case "$ROOT/" in "$CHROOT/"*) die "the repository must not live inside the Swift chroot ($CHROOT)";; esac

# 1. Host library, 2. Swift bindings in library mode (module Tessera, FFI
#    module TesseraFFI), copied into the package only when they changed so
#    that SwiftPM's incremental build stays warm.
. "$ROOT/scripts/ffi-lib.sh"
ffi_build_host_library
GEN="$HERE/.build/generated"
ffi_generate swift "$GEN"
install_if_changed() {
  [ -f "$1" ] || die "bindgen did not write $1"
  mkdir -p "$(dirname "$2")"
  cmp -s "$1" "$2" || cp "$1" "$2"
}
install_if_changed "$GEN/Tessera.swift" "$HERE/Sources/Tessera/Tessera.swift"
install_if_changed "$GEN/TesseraFFI.h" "$HERE/Sources/TesseraFFI/include/TesseraFFI.h"
install_if_changed "$GEN/TesseraFFI.modulemap" "$HERE/Sources/TesseraFFI/include/module.modulemap"

# 3. Chroot mounts. One run at a time per chroot (flock); every mount this run
#    makes is undone on exit, also on failure or Ctrl-C. proc and /dev that are
#    already mounted (by someone else) are reused and left alone; a leftover
#    bind of a repository (from a killed run) is reused and then removed, so
#    no repository stays reachable under the cache directory.
exec 9>"$CACHE/swift-chroot.lock"
flock 9
MOUNTED=()
cleanup() {
  local rc=$? i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    $SUDO umount "${MOUNTED[i]}" 2>/dev/null || $SUDO umount -l "${MOUNTED[i]}" ||
      printf '[swift] could not unmount %s\n' "${MOUNTED[i]}" >&2
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_proc_dev() {
  if ! mountpoint -q "$CHROOT/proc"; then
    $SUDO mount -t proc proc "$CHROOT/proc"; MOUNTED+=("$CHROOT/proc")
  fi
  if ! mountpoint -q "$CHROOT/dev"; then
    $SUDO mount --bind /dev "$CHROOT/dev"; MOUNTED+=("$CHROOT/dev")
  fi
}
bind_same_path() {  # bind-mount host dir $1 at the same absolute path inside the chroot
  local dst="$CHROOT$1"
  $SUDO mkdir -p "$dst"
  if mountpoint -q "$dst"; then
    log "reusing the existing bind mount $dst"
  else
    $SUDO mount --bind "$1" "$dst"
  fi
  MOUNTED+=("$dst")
}
mount_proc_dev
bind_same_path "$ROOT"
case "$TARGET_DIR/" in
  "$ROOT/"*) ;;
  *) bind_same_path "$TARGET_DIR" ;;
esac

# Scenario files (vectors/scenarios; TESSERA_SCENARIOS: another folder, which
# must be inside the repository or the target dir to be visible in the chroot).
SCENARIOS=$(cd "${TESSERA_SCENARIOS:-$ROOT/vectors/scenarios}" && pwd -P) ||
  die "no scenario folder ${TESSERA_SCENARIOS:-$ROOT/vectors/scenarios}"

# 4. swift test inside the chroot, as the calling user; build products in
#    bindings-swift/.build (gitignored). XCTest only, so swift-testing is off
#    (its "0 tests passed" line would only confuse log readers).
USERSPEC=()
SWIFT_HOME=/root
if [ -n "$SUDO" ]; then
  USERSPEC=(--userspec="$(id -u):$(id -g)")
  SWIFT_HOME="$HERE/.build/home"
  mkdir -p "$SWIFT_HOME"
fi
in_chroot() {
  $SUDO chroot "${USERSPEC[@]}" "$CHROOT" /usr/bin/env -i \
    PATH=/usr/local/bin:/usr/bin:/bin HOME="$SWIFT_HOME" LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    LD_LIBRARY_PATH="$SWIFT_LIBS:$LIB_DIR" "$@"
}
log "swift test (in $CHROOT)"
set +e
in_chroot TESSERA_VECTORS="$ROOT/vectors/otp.json" \
  TESSERA_LINK_VECTORS="$ROOT/vectors/link.json" TESSERA_SCENARIOS="$SCENARIOS" \
  swift test --disable-swift-testing --package-path "$HERE" --scratch-path "$HERE/.build" \
  -Xlinker -L"$LIB_DIR" "$@"
rc=$?
set -e
[ "$rc" = 0 ] && log "swift test passed" || { log "swift test failed (exit $rc)"; exit "$rc"; }

# 5. The root Package.swift (the iOS/macOS package; scripts/xcframework.sh
#    builds its XCFramework on macOS): SwiftPM here evaluates the manifest
#    (it cannot build an XCFramework on Linux) and the JSON is checked: name,
#    platforms, product, the binary target at the local path. Then
#    scripts/swift-release.sh runs on a scratch repository holding the same
#    manifest and script (with a stand-in zip and Swift file) and the tagged
#    manifest must name the URL and the zip's SHA-256.
check_manifest() {  # PACKAGE_DIR EXPECTED_URL EXPECTED_CHECKSUM (both empty: local path)
  local json
  json=$(in_chroot swift package dump-package --package-path "$1" --scratch-path "$HERE/.build/manifest") ||
    die "swift package dump-package failed for $1/Package.swift"
  python3 -c '
import json, sys
m, url, checksum = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
problems = []
def want(what, got, expected):
    if got != expected: problems.append(f"{what}: {got!r}, expected {expected!r}")
want("name", m["name"], "Tessera")
want("platforms", sorted((p["platformName"], p["version"]) for p in m["platforms"]), [("ios", "15.0"), ("macos", "12.0")])
want("products", [(p["name"], p["targets"], list(p["type"])) for p in m["products"]], [("Tessera", ["Tessera"], ["library"])])
t = {t["name"]: t for t in m["targets"]}
want("targets", sorted(t), ["Tessera", "TesseraFFI"])
ffi, swift = t.get("TesseraFFI", {}), t.get("Tessera", {})
want("TesseraFFI type", ffi.get("type"), "binary")
if url:
    want("TesseraFFI url", ffi.get("url"), url); want("TesseraFFI checksum", ffi.get("checksum"), checksum)
    want("TesseraFFI path", ffi.get("path"), None)
else:
    want("TesseraFFI path", ffi.get("path"), "build/TesseraFFI.xcframework"); want("TesseraFFI url", ffi.get("url"), None)
want("Tessera path", swift.get("path"), "bindings-swift/Sources/Tessera")
want("Tessera dependencies", [d.get("byName", [None])[0] for d in swift.get("dependencies", [])], ["TesseraFFI"])
if problems: sys.exit("\n".join(problems))
' "$json" "$2" "$3" || die "$1/Package.swift is not what it should be (above)"
}
log "swift package dump-package (root Package.swift)"
check_manifest "$ROOT" "" ""

REL="$HERE/.build/release-test"
rm -rf "$REL"
mkdir -p "$REL/scripts" "$REL/build" "$REL/bindings-swift/Sources/Tessera"
cp "$ROOT/Package.swift" "$REL/"
cp "$ROOT/scripts/swift-release.sh" "$REL/scripts/"
cp "$ROOT/.gitignore" "$REL/"
(cd "$REL" && git init -q && git add -A && git -c user.name=test -c user.email=test@invalid commit -qm base)
echo "stand-in for the XCFramework zip" > "$REL/build/TesseraFFI.xcframework.zip"
echo "// stand-in for the generated Swift source" > "$REL/bindings-swift/Sources/Tessera/Tessera.swift"
git -C "$REL" rev-parse HEAD > "$REL/build/TesseraFFI.xcframework.commit"
URL=https://example.invalid/tessera/releases/download/9.8.7/TesseraFFI.xcframework.zip
log "scripts/swift-release.sh on a scratch repository"
GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@invalid GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@invalid \
  bash "$REL/scripts/swift-release.sh" 9.8.7 "$URL" >/dev/null
git -C "$REL" diff --quiet HEAD -- || die "swift-release.sh changed the working tree"
git -C "$REL" ls-tree -r --name-only 9.8.7 | grep -qx bindings-swift/Sources/Tessera/Tessera.swift ||
  die "the release tag does not hold the generated Swift source"
! git -C "$REL" ls-tree -r --name-only HEAD | grep -q Tessera.swift || die "swift-release.sh committed on the branch"
rm -rf "$REL/tagged"
git -C "$REL" worktree add -q --detach "$REL/tagged" 9.8.7
check_manifest "$REL/tagged" "$URL" "$(sha256sum "$REL/build/TesseraFFI.xcframework.zip" | cut -c1-64)"
rm -rf "$REL"
log "root Package.swift and the release script: ok"
