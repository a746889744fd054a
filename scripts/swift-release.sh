#!/usr/bin/env bash
# Tags a Swift package release of Tessera. Run after scripts/xcframework.sh
# (macOS) on the commit to release, with a clean working tree:
#
#   scripts/swift-release.sh VERSION URL
#     VERSION  the tag, e.g. 0.1.0 (SwiftPM wants semantic versions)
#     URL      where build/TesseraFFI.xcframework.zip will be downloadable,
#              e.g. https://github.com/ORG/tessera/releases/download/0.1.0/TesseraFFI.xcframework.zip
#
# It makes one commit on top of HEAD, outside every branch (a temporary
# worktree), and tags it VERSION. That commit
#   * sets `release` in Package.swift to (URL, the zip's SwiftPM checksum:
#     its SHA-256, what `swift package compute-checksum` prints), and
#   * adds the generated bindings-swift/Sources/Tessera/Tessera.swift, which is
#     gitignored on branches: apps that depend on the tag need the source.
# Branches keep the local-path manifest. Then, by hand: upload the zip to URL
# (as the release's asset), `git push origin VERSION`. Apps use
# .package(url: "https://…/tessera.git", exact: "VERSION").
#
# Needs only git and sha256sum/shasum: it runs on macOS and Linux
# (bindings-swift/test.sh runs it on a scratch repository).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
log() { printf '\033[1m[swift-release]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[swift-release]\033[0m %s\n' "$*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: scripts/swift-release.sh VERSION URL"
VERSION=$1 URL=$2
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "VERSION must be semantic (1.2.3), got '$VERSION'"
[[ $URL =~ ^https://[^\"\\[:space:]]+\.zip$ ]] || die "URL must be an https URL of a .zip, got '$URL'"

ZIP="$ROOT/build/TesseraFFI.xcframework.zip"
SWIFT_SRC="bindings-swift/Sources/Tessera/Tessera.swift"
STAMP="$ROOT/build/TesseraFFI.xcframework.commit"
[ -f "$ZIP" ] || die "missing $ZIP: run scripts/xcframework.sh (macOS) first"
[ -f "$ROOT/$SWIFT_SRC" ] || die "missing $SWIFT_SRC: run scripts/xcframework.sh (macOS) first"
cd "$ROOT"
HEAD=$(git rev-parse HEAD)
[ "$(cat "$STAMP" 2>/dev/null)" = "$HEAD" ] ||
  die "$ZIP was not built from HEAD ($HEAD): run scripts/xcframework.sh again"
git diff --quiet HEAD -- || die "the working tree has changes: commit or stash them first"
! git rev-parse -q --verify "refs/tags/$VERSION" >/dev/null || die "tag $VERSION exists"
grep -q '^let release: (url: String, checksum: String)? = nil$' Package.swift ||
  die "Package.swift has no 'let release: (url: String, checksum: String)? = nil' line to fill in"

if command -v sha256sum >/dev/null; then SUM=$(sha256sum "$ZIP" | cut -c1-64); else SUM=$(shasum -a 256 "$ZIP" | cut -c1-64); fi
if [ -f "$ZIP.checksum" ] && [ "$(cat "$ZIP.checksum")" != "$SUM" ]; then
  die "the zip's SHA-256 $SUM differs from swift package compute-checksum's $(cat "$ZIP.checksum")"
fi

WT=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || rm -rf "$WT"' EXIT
git worktree add -q --detach "$WT" HEAD
sed -i.bak "s|^let release: (url: String, checksum: String)? = nil\$|let release: (url: String, checksum: String)? = (url: \"$URL\", checksum: \"$SUM\")|" \
  "$WT/Package.swift"
rm -f "$WT/Package.swift.bak"
mkdir -p "$(dirname "$WT/$SWIFT_SRC")"
cp "$SWIFT_SRC" "$WT/$SWIFT_SRC"
git -C "$WT" add Package.swift
git -C "$WT" add -f "$SWIFT_SRC"
git -C "$WT" commit -q -m "Swift package $VERSION: the XCFramework at $URL, with the generated Swift source"
git -C "$WT" tag -a "$VERSION" -m "Tessera $VERSION"
log "tagged $VERSION ($(git rev-parse --short "$VERSION")); checksum $SUM"
log "next: upload $ZIP to $URL, then git push origin $VERSION"
