//! Owner-only files and directories (the SQLite databases).

use crate::{store_err, Result};
use std::path::Path;
use tessera_host::ErrorCode;

fn io_err(what: &Path, e: std::io::Error) -> tessera_host::TesseraError {
    store_err(ErrorCode::Storage, format!("{}: {e}", what.display()))
}

/// Create `dir` (and its missing parents) owner-only. An existing directory
/// is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| io_err(dir, e))
}

/// Create an empty owner-only file if there is none (a database about to be
/// opened: SQLite gives its `-wal` and `-shm` files the database's mode).
pub fn touch_private(path: &Path) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map(drop).map_err(|e| io_err(path, e))
}
