# Sourced by bindings-kotlin/test.sh and bindings-swift/test.sh (which define
# ROOT, log and die): the host build of libtessera_ffi and library-mode
# binding generation, shared by both languages.

# Build libtessera_ffi (debug; cargo does nothing when it is up to date) and
# the uniffi-bindgen binary of the same crate. Sets TARGET_DIR, LIB_DIR, LIB.
ffi_build_host_library() {
  log "cargo build -p tessera-ffi"
  cargo build --manifest-path "$ROOT/Cargo.toml" -p tessera-ffi
  . "$ROOT/scripts/workspace.sh"
  TARGET_DIR=$(cargo_target_dir) || die "could not read the target directory from cargo metadata"
  LIB_DIR="$TARGET_DIR/debug"
  case "$(uname -s)" in
    Darwin) LIB="$LIB_DIR/libtessera_ffi.dylib" ;;   # scripts/xcframework.sh on macOS
    *) LIB="$LIB_DIR/libtessera_ffi.so" ;;
  esac
  [ -f "$LIB" ] || die "missing $LIB after cargo build"
}

# ffi_generate LANGUAGE OUT_DIR [CONFIG]: fresh bindings from $LIB. Library
# mode reads the uniffi.toml of the crate that defines the types:
# host/uniffi.toml (tessera-host, a workspace member, so --metadata-no-deps
# still finds it). CONFIG: a UniFFI global config layered over it
# ([crates.tessera_host.bindings.…]; bindings-kotlin/android/uniffi-android.toml).
ffi_generate() {
  local config=()
  [ -z "${3:-}" ] || config=(--config "$3")
  rm -rf "$2"
  mkdir -p "$2"
  log "uniffi-bindgen generate --language $1${3:+ --config $3}"
  (cd "$ROOT" && "$LIB_DIR/uniffi-bindgen" generate --no-format --metadata-no-deps \
    ${config[@]+"${config[@]}"} --language "$1" --out-dir "$2" "$LIB")
}
