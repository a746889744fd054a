#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain (cargo-fuzz wants nightly):
# libFuzzer (from libfuzzer-sys) with LLVM SanitizerCoverage enabled through
# RUSTFLAGS. New inputs go to target/corpus-<target>; copy interesting ones
# (and any crash-* reproducer) into corpus/<target>/ so `cargo test` replays them.
#   bash fuzz/run-stable.sh link_messages 120
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
target=${1:?usage: run-stable.sh TARGET [SECONDS]}
secs=${2:-60}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
host=$(rustc -vV | sed -n "s/^host: //p")
# --target keeps RUSTFLAGS off build scripts and proc macros.
cargo build -q --release --bin "$target" --target "$host" --target-dir target/stable
mkdir -p "target/corpus-$target"
exec "target/stable/$host/release/$target" -max_total_time="$secs" -print_final_stats=1 "target/corpus-$target" "corpus/$target"
