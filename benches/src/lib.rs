//! Benchmarks live in `benches/`; run `cargo bench -p tessera-benches`.
