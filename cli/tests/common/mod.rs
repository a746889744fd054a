//! What the process tests share: run `tessera` (without the secret
//! variables of the environment), expect success or an `error[CODE]` exit.

#![allow(dead_code, clippy::unwrap_used)] // each test crate uses a part

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn tessera_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for v in ["TESSERA_PORTAL_SECRET", "TESSERA_DEVICE_KEY", "TESSERA_DB"] {
        c.env_remove(v);
    }
    c
}

pub fn run(args: &[&str]) -> Output {
    tessera_cmd().args(args).output().expect("run tessera")
}

/// Stdout of a successful run, without the final newline.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "tessera {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim_end().to_string()
}

/// A failure with `error[code]` and exit status 1.
pub fn fails(args: &[&str], code: &str) -> Output {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "tessera {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("error[{code}]: ")), "expected error[{code}] from {args:?}, got: {err}");
    o
}

/// A fresh path in the temporary directory (removed if it was there).
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-{suite}-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Start `tessera serve` with `args` (stderr to `log`) and read the URL of
/// its first stdout line (`listening on http://ADDR`): the child, the URL
/// and `ADDR`.
#[allow(dead_code)] // not every test binary starts servers
pub fn spawn_serve(args: &[&str], log: &std::path::Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = tessera_cmd()
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {line:?}")).to_owned();
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    (child, url, addr)
}
