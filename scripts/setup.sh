#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine.
# Idempotent: every step checks first; downloads and tools are cached outside
# the repository in $TESSERA_CACHE (default ~/.cache/tessera).
set -euo pipefail
CACHE=${TESSERA_CACHE:-$HOME/.cache/tessera}
mkdir -p "$CACHE"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# 1. Debian packages: browser + driver for the browser test, JNA for Kotlin,
#    debootstrap for the Swift chroot, oathtool as an OTP interop peer,
#    postgresql for the PostgreSQL store's tests (scripts/pg.sh runs a
#    throw-away server from its binaries; the package's own cluster is not
#    used), openssl for its throw-away TLS certificates (pg.sh start --tls).
APT_PKGS=(chromium chromium-driver libjna-java libjna-jni debootstrap oathtool python3 postgresql openssl)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Rust targets (the core must build for a microcontroller and for wasm;
#    the Kotlin/Swift library for Android and iOS: scripts/mobile-targets.sh).
for t in wasm32-unknown-unknown thumbv7em-none-eabihf \
  aarch64-linux-android armv7-linux-androideabi x86_64-linux-android aarch64-apple-ios; do
  rustup target list --installed | grep -qx "$t" || { log "rustup target add $t"; rustup target add "$t"; }
done
# 2b. The MSRV toolchain (workspace rust-version), for scripts/msrv.sh:
#     rustc and cargo only.
. "$(dirname "${BASH_SOURCE[0]}")/workspace.sh"
MSRV=$(workspace_value rust-version)
rustup toolchain list | grep -q "^$MSRV" || { log "rustup toolchain install $MSRV"; rustup toolchain install "$MSRV" --profile minimal; }

# 2c. The iOS Simulator targets. rustup's server has not always had their
#     standard library for the newest stable toolchain (HTTP 404 on
#     2026-11-30); then scripts/mobile-targets.sh compiles them with the
#     MSRV toolchain, which has it. A marker in the cache (per rustc version)
#     saves retrying the failed download on every run.
RUSTC_VERSION=$(rustc --version | cut -d' ' -f2)
for t in aarch64-apple-ios-sim x86_64-apple-ios; do
  rustup target list --installed | grep -qx "$t" && continue
  marker="$CACHE/rustup-target-unavailable-$t-$RUSTC_VERSION"
  if [ ! -f "$marker" ]; then
    log "rustup target add $t"
    if rustup target add "$t" >"$marker" 2>&1; then rm -f "$marker"; continue; fi
    log "rustup target add $t failed (output in $marker): it will be compiled with Rust $MSRV"
  fi
  rustup target list --installed --toolchain "$MSRV" | grep -qx "$t" ||
    { log "rustup target add --toolchain $MSRV $t"; rustup target add --toolchain "$MSRV" "$t"; }
done

# 3. wasm-bindgen CLI, pinned to the library version.
WBG_VERSION=0.2.130
if ! "$CACHE/cargo/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WBG_VERSION"; then
  log "cargo install wasm-bindgen-cli $WBG_VERSION"
  cargo install -q wasm-bindgen-cli --version "$WBG_VERSION" --root "$CACHE/cargo"
fi

# 4. npm tools: Kotlin compiler, Playwright (driving Debian's Chromium), binaryen (wasm-opt),
#    and TypeScript (the .d.ts of the npm package is type-checked against a .ts file).
NPM_DIR="$CACHE/npm"
mkdir -p "$NPM_DIR"
if [ ! -x "$NPM_DIR/node_modules/kotlin-compiler/bin/kotlinc" ] || [ ! -d "$NPM_DIR/node_modules/playwright-core" ] || [ ! -d "$NPM_DIR/node_modules/binaryen" ] || [ ! -d "$NPM_DIR/node_modules/jsqr" ] || [ ! -f "$NPM_DIR/node_modules/typescript/bin/tsc" ]; then
  log "npm install kotlin-compiler playwright-core binaryen jsqr typescript"
  (cd "$NPM_DIR" && { [ -f package.json ] || echo '{"name":"tessera-tools","private":true}' > package.json; } &&
    npm install --no-save --silent kotlin-compiler@2.4 playwright-core binaryen@132 jsqr@1 typescript@5)
fi
chmod +x "$NPM_DIR"/node_modules/kotlin-compiler/bin/* 2>/dev/null || true
# 4b. The npm package's user projects (bindings-wasm/packed/run.mjs): Vite and esbuild (own folder).
WEB_DIR="$CACHE/npm-web"; mkdir -p "$WEB_DIR"
[ -f "$WEB_DIR/node_modules/vite/package.json" ] && [ -f "$WEB_DIR/node_modules/esbuild/package.json" ] ||
  { log "npm install vite esbuild"; (cd "$WEB_DIR" && { [ -f package.json ] || echo '{"name":"tessera-web-tools","private":true}' > package.json; } && npm install --no-save --silent vite@8.3.8 esbuild@0.28); }

# 5. Swift 6 (Debian trixie's swiftlang) in a chroot, reused between runs.
SWIFT_ROOT="$CACHE/swift-trixie"
if [ ! -x "$SWIFT_ROOT/usr/libexec/swift/bin/swift" ]; then
  log "debootstrap trixie + swiftlang into $SWIFT_ROOT (first run only)"
  if [ ! -x "$SWIFT_ROOT/usr/bin/apt-get" ]; then
    rm -rf "$SWIFT_ROOT"
    $SUDO debootstrap --variant=minbase trixie "$SWIFT_ROOT" http://deb.debian.org/debian >/dev/null
  fi
  $SUDO chroot "$SWIFT_ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO chroot "$SWIFT_ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swiftlang >/dev/null
fi
log "done; tools cached in $CACHE"
