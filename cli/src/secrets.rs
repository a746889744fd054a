//! Where the simulators keep their secrets, and owner-only files.
//!
//! The databases hold data, never the keys that protect it: the portal seed
//! lives in `P/portal.key` (or `TESSERA_PORTAL_SECRET`), the device's storage
//! key in `D/device.key` (or `TESSERA_DEVICE_KEY`), each as 64 hex digits.
//! A copied `portal.db` or `device.db` alone opens nothing. Every file and
//! directory the CLI creates is readable by its owner only: `main` sets the
//! umask to 077, and the files below are also created with explicit modes
//! (0600 files, 0700 directories) so nothing depends on the umask alone.

use crate::cli_err;
use std::io::Write as _;
use std::path::Path;
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_host::{ErrorCode, TesseraError as Error};
use zeroize::Zeroizing;

/// Environment variable holding the portal seed (64 hex digits).
pub const PORTAL_SECRET_ENV: &str = "TESSERA_PORTAL_SECRET";
/// Environment variable holding the device storage key (64 hex digits).
pub const DEVICE_KEY_ENV: &str = "TESSERA_DEVICE_KEY";

/// Owner-only from here on: files 0600, directories 0700 (SQLite's `-wal`
/// and `-shm` files included).
pub fn private_umask() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

fn io_err(what: &Path, e: std::io::Error) -> Error {
    cli_err(ErrorCode::Storage, format!("{}: {e}", what.display()))
}

fn private_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Write a new owner-only file; fails if it exists.
pub fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut f = private_options().create_new(true).open(path).map_err(|e| io_err(path, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| io_err(path, e))
}

/// Write (or replace) an owner-only file.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut f = private_options().create(true).truncate(true).open(path).map_err(|e| io_err(path, e))?;
    owner_only(&f).map_err(|e| io_err(path, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| io_err(path, e))
}

/// The open file's mode becomes 0600 before anything is written to it: the
/// mode given to `open` only applies to a file it creates, and a file that
/// already existed (say 0644) would otherwise keep its mode.
fn owner_only(f: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = f;
    Ok(())
}

/// Replace an owner-only file atomically: written to a temporary file
/// beside it, synced, then renamed over it (a crash leaves the old or the
/// new contents, never a truncated file).
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = private_options().create(true).truncate(true).open(&tmp).map_err(|e| io_err(&tmp, e))?;
    owner_only(&f).map_err(|e| io_err(&tmp, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// An exclusive lock on `<path>.lock` (a file beside `path`, never
/// replaced), held until the returned file is dropped: one
/// read-verify-write of a verifier state at a time.
pub fn lock_beside(path: &Path) -> Result<std::fs::File, Error> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = std::path::PathBuf::from(name);
    let f = private_options().create(true).truncate(false).open(&lock).map_err(|e| io_err(&lock, e))?;
    f.lock().map_err(|e| io_err(&lock, e))?;
    Ok(f)
}

/// Read an owner-only file (`None` if missing). A file others can read is
/// refused, as ssh refuses a readable private key: the secret may already
/// have leaked, and silently using it would hide that.
pub fn read_private(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(|e| io_err(path, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(cli_err(
                ErrorCode::Storage,
                format!("{} is readable by other users (mode {:o}); run chmod 600 on it", path.display(), mode & 0o777),
            ));
        }
    }
    Ok(Some(bytes))
}

fn parse_key(text: &[u8], what: &str) -> Result<Zeroizing<[u8; 32]>, Error> {
    let bad = || cli_err(ErrorCode::InvalidInput, format!("{what} must be 64 hex digits"));
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    let raw = Zeroizing::new(hex_decode(text.trim()).map_err(|_| bad())?);
    let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| bad())?;
    Ok(Zeroizing::new(key))
}

/// A 32-byte key from the environment variable `var`, if it is set.
pub fn key_from_env(var: &str) -> Result<Option<Zeroizing<[u8; 32]>>, Error> {
    match std::env::var(var) {
        Ok(v) => {
            let v = Zeroizing::new(v);
            parse_key(v.as_bytes(), var).map(Some)
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(cli_err(ErrorCode::InvalidInput, format!("{var} must be 64 hex digits")))
        }
    }
}

/// A 32-byte key from a key file, if it exists.
pub fn key_from_file(path: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, Error> {
    match read_private(path)? {
        Some(text) => parse_key(&text, &path.display().to_string()).map(Some),
        None => Ok(None),
    }
}

/// Write a new key file (64 hex digits and a newline, mode 0600).
pub fn write_key_file(path: &Path, key: &[u8]) -> Result<(), Error> {
    let mut text = Zeroizing::new(hex_encode(key));
    text.push('\n');
    write_new_private(path, text.as_bytes())
}
