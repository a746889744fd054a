//! The `tessera` binary as a user runs it: exact command forms, outputs,
//! exit codes and `error[CODE]` messages, and the portal/device simulators
//! across separate processes sharing SQLite state, including concurrent
//! processes racing on one portal (the host contract, docs/DESIGN.md).
//!
//! The test process clears its umask, so every `tessera` it starts inherits
//! umask 0: owner-only files must come from the CLI itself.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn clear_umask() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    ONCE.call_once(|| {
        rustix::process::umask(rustix::fs::Mode::empty());
    });
}

fn tessera_cmd() -> Command {
    clear_umask();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for v in ["TESSERA_PORTAL_SECRET", "TESSERA_DEVICE_KEY"] {
        c.env_remove(v);
    }
    c
}

fn tessera(args: &[&str]) -> Output {
    tessera_cmd().args(args).output().expect("run tessera")
}

fn ok(args: &[&str]) -> String {
    let o = tessera(args);
    assert!(o.status.success(), "tessera {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim_end().to_string()
}

fn fails(args: &[&str], code: &str) -> Output {
    let o = tessera(args);
    assert_eq!(o.status.code(), Some(1), "tessera {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("error[{code}]: ")), "expected error[{code}] from {args:?}, got: {err}");
    o
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn vectors() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/otp.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn otp_commands_match_every_vector() {
    let v = vectors();
    for h in v["hotp"].as_array().unwrap() {
        let out = ok(&[
            "otp",
            "hotp",
            "--secret-hex",
            h["secret_hex"].as_str().unwrap(),
            "--counter",
            &h["counter"].to_string(),
            "--digits",
            &h["digits"].to_string(),
            "--algorithm",
            h["algorithm"].as_str().unwrap(),
        ]);
        assert_eq!(out, h["code"].as_str().unwrap());
    }
    for t in v["totp"].as_array().unwrap() {
        let out = ok(&[
            "otp",
            "totp",
            "--secret-hex",
            t["secret_hex"].as_str().unwrap(),
            "--time",
            &t["time"].to_string(),
            "--digits",
            "8",
            "--algorithm",
            t["algorithm"].as_str().unwrap(),
        ]);
        assert_eq!(out, t["code"].as_str().unwrap(), "{t}");
    }
    for o in v["ocra"].as_array().unwrap() {
        let mut args: Vec<String> = vec![
            "otp".into(),
            "ocra".into(),
            "--suite".into(),
            o["suite"].as_str().unwrap().into(),
            "--key".into(),
            o["key_hex"].as_str().unwrap().into(),
            "--question".into(),
            o["question"].as_str().unwrap().into(),
        ];
        if let Some(c) = o.get("counter") {
            args.extend(["--counter".into(), c.to_string()]);
        }
        if let Some(p) = o.get("password") {
            args.extend(["--password".into(), p.as_str().unwrap().into()]);
        }
        if let Some(t) = o.get("time") {
            args.extend(["--time".into(), t.to_string()]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(ok(&a), o["code"].as_str().unwrap(), "{o}");
    }
}

#[test]
fn otp_base32_uri_and_errors() {
    assert_eq!(
        ok(&["otp", "totp", "--secret", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "--time", "59", "--digits", "8"]),
        "94287082"
    );
    assert_eq!(
        ok(&[
            "otp",
            "uri",
            "otpauth://totp/ACME:anna?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&issuer=ACME",
            "--time",
            "59"
        ]),
        "94287082"
    );
    fails(&["otp", "hotp", "--secret", "GEZDGNBVGY3TQOJQ", "--counter", "1", "--digits", "5"], "INVALID_DIGITS");
    fails(&["otp", "hotp", "--secret", "not base32!", "--counter", "1"], "INVALID_SECRET");
    fails(&["otp", "totp", "--secret", "GEZDGNBVGY3TQOJQ", "--algorithm", "md5"], "INVALID_ALGORITHM");
    fails(
        &["otp", "ocra", "--suite", "OCRA-1:HOTP-SHA1-6:QX08", "--key", "00", "--question", "1"],
        "INVALID_OCRA_SUITE",
    );
    fails(
        &["otp", "uri", "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"],
        "SECRET_TOO_SHORT",
    );
    assert_eq!(
        ok(&[
            "otp",
            "uri",
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
            "--time",
            "0",
            "--allow-short-secret"
        ])
        .len(),
        6
    );
    let new = ok(&["otp", "new", "--issuer", "ACME Corp", "--account", "anna@example.org", "--no-qr"]);
    assert!(new.starts_with("otpauth://totp/ACME%20Corp:anna%40example.org?secret="), "{new}");
    assert_eq!(ok(&["otp", "uri", &new]).len(), 6);
}

#[test]
fn totp_agrees_with_oathtool() {
    // Debian's oathtool is the reference peer (installed by scripts/setup.sh).
    let o = Command::new("oathtool")
        .args(["--totp", "-d", "8", "-N", "@1111111109", "3132333435363738393031323334353637383930"])
        .output()
        .expect("oathtool is required (scripts/setup.sh installs it)");
    let theirs = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert_eq!(theirs, "07081804");
    assert_eq!(
        ok(&[
            "otp",
            "totp",
            "--secret-hex",
            "3132333435363738393031323334353637383930",
            "--time",
            "1111111109",
            "--digits",
            "8"
        ]),
        theirs
    );
    for c in [0u64, 1, 99, 123456] {
        let o = Command::new("oathtool")
            .args(["--hotp", "-c", &c.to_string(), "3132333435363738393031323334353637383930"])
            .output()
            .unwrap();
        let theirs = String::from_utf8(o.stdout).unwrap().trim().to_string();
        assert_eq!(
            ok(&[
                "otp",
                "hotp",
                "--secret-hex",
                "3132333435363738393031323334353637383930",
                "--counter",
                &c.to_string()
            ]),
            theirs
        );
    }
}

const NOW: &str = "1800000000";

fn link_once(p: &str, d: &str, account: &str, name: &str, now: u64) -> (String, String) {
    let n = now.to_string();
    let qr = ok(&["portal", "link-offer", "--dir", p, "--account", account, "--now", &n]);
    let req = ok(&["device", "link", "--dir", d, "--qr", &qr, "--name", name, "--passcode", "493817", "--now", &n]);
    let ans = ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", &n]);
    let code = ok(&["device", "link-finish", "--dir", d, "--response", &ans, "--now", &n]);
    assert_eq!(code.len(), 6);
    ok(&["portal", "link-confirm", "--dir", p, "--account", account, "--code", &code, "--now", &n]);
    (qr, code)
}

#[test]
fn link_flow_registry_and_unlink_across_processes() {
    let (pd, d1, d2) = (tmp("portal"), tmp("dev1"), tmp("dev2"));
    let (p, d1s, d2s) = (pd.to_str().unwrap(), d1.to_str().unwrap(), d2.to_str().unwrap());
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    fails(&["portal", "init", "--dir", p, "--name", "Again"], "INVALID_STATE");
    let (qr, _) = link_once(p, d1s, "anna", "Anna's Pixel", 1_800_000_000);
    // The same QR again, from another device: refused, and the device shows the portal's error.
    let req2 =
        ok(&["device", "link", "--dir", d2s, "--qr", &qr, "--name", "Other", "--passcode", "493817", "--now", NOW]);
    let o = fails(&["portal", "link-accept", "--dir", p, "--request", &req2, "--now", NOW], "TOKEN_ALREADY_USED");
    let ans2 = String::from_utf8(o.stdout).unwrap();
    fails(&["device", "link-finish", "--dir", d2s, "--response", ans2.trim()], "TOKEN_ALREADY_USED");
    // One account per device.
    let qr3 = ok(&["portal", "link-offer", "--dir", p, "--account", "bob", "--now", NOW]);
    fails(
        &["device", "link", "--dir", d1s, "--qr", &qr3, "--name", "X", "--passcode", "493817", "--now", NOW],
        "DEVICE_ALREADY_LINKED",
    );
    fails(
        &["device", "link", "--dir", d2s, "--qr", &qr3, "--name", "X", "--passcode", "123456", "--now", NOW],
        "WEAK_PASSCODE",
    );
    // Expired QR.
    let qr4 = ok(&["portal", "link-offer", "--dir", p, "--account", "anna", "--ttl", "60", "--now", NOW]);
    fails(
        &["device", "link", "--dir", d2s, "--qr", &qr4, "--name", "X", "--passcode", "493817", "--now", "1800000060"],
        "TOKEN_EXPIRED",
    );
    fails(&["portal", "link-offer", "--dir", p, "--account", "anna", "--ttl", "601", "--now", NOW], "INVALID_INPUT");
    // Garbage and truncated QR codes.
    fails(&["device", "scan", "--dir", d2s, "--qr", "https://example.com"], "MALFORMED_MESSAGE");
    fails(&["device", "scan", "--dir", d2s, "--qr", &qr[..qr.len() - 9], "--now", NOW], "MALFORMED_MESSAGE");
    // Second device for anna.
    link_once(p, d2s, "anna", "Anna's iPad", 1_800_000_100);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["portal", "devices", "--dir", p, "--account", "anna", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "Anna's Pixel");
    assert_eq!(list[1]["name"], "Anna's iPad");
    let id1 = list[0]["id"].as_str().unwrap().to_string();
    ok(&["portal", "rename", "--dir", p, "--account", "anna", "--device", &id1, "--name", "Old Pixel"]);
    fails(&["portal", "rename", "--dir", p, "--account", "bob", "--device", &id1, "--name", "x"], "DEVICE_UNKNOWN");
    // TOTP from the device, verified by the portal; a wrong passcode is counted.
    let code = ok(&["device", "totp", "--dir", d1s, "--passcode", "493817", "--now", "1800000300"]);
    let verify = |code: &str, t: &str| -> Vec<String> {
        ["portal", "verify-totp", "--dir", p, "--account", "anna", "--device", &id1, "--code", code, "--now", t]
            .map(String::from)
            .to_vec()
    };
    assert_eq!(ok(&strs(&verify(&code, "1800000300"))), "accepted (step 60000010, drift 0)");
    fails(&strs(&verify(&code, "1800000300")), "OTP_REPLAYED");
    let wrong = ok(&["device", "totp", "--dir", d1s, "--passcode", "111222", "--now", "1800000330"]);
    fails(&strs(&verify(&wrong, "1800000330")), "OTP_MISMATCH");
    // Status while linked, then unlink at the portal and the device wipes.
    let sreq = ok(&["device", "status-request", "--dir", d1s, "--now", "1800000400"]);
    let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", "1800000400"]);
    assert_eq!(ok(&["device", "status-finish", "--dir", d1s, "--response", &sans]), "still linked");
    // A status answer writes nothing (it cannot overwrite an unlink): the
    // same request again gets an answer, and last use stays the TOTP's.
    let again: serde_json::Value = serde_json::from_str(&ok(&[
        "portal",
        "status",
        "--dir",
        p,
        "--request",
        &sreq,
        "--now",
        "1800000400",
        "--json",
    ]))
    .unwrap();
    assert_eq!(again["status"], "active");
    ok(&["portal", "unlink", "--dir", p, "--account", "anna", "--device", &id1, "--now", "1800000500"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["portal", "devices", "--dir", p, "--account", "anna", "--json"])).unwrap();
    assert_eq!(list[0]["status"], "unlinked");
    assert_eq!(list[0]["name"], "Old Pixel");
    assert_eq!(list[0]["last_used_at"], 1_800_000_300u64);
    fails(
        &["portal", "unlink", "--dir", p, "--account", "anna", "--device", &id1, "--now", "1800000501"],
        "INVALID_STATE",
    );
    let sreq = ok(&["device", "status-request", "--dir", d1s, "--now", "1800000600"]);
    let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", "1800000600"]);
    fails(&["device", "status-finish", "--dir", d1s, "--response", &sans], "DEVICE_REVOKED");
    let st: serde_json::Value = serde_json::from_str(&ok(&["device", "status", "--dir", d1s, "--json"])).unwrap();
    assert_eq!(st["linked"], false);
    // The wiped device can link again.
    link_once(p, d1s, "anna", "Anna's new Pixel", 1_800_000_700);
    // Local unlink.
    ok(&["device", "unlink", "--dir", d2s]);
    fails(&["device", "totp", "--dir", d2s, "--passcode", "493817"], "DEVICE_NOT_LINKED");
    for d in [pd, d1, d2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn check_code_attempts_are_limited() {
    let (pd, dd) = (tmp("portal-cc"), tmp("dev-cc"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    let qr = ok(&["portal", "link-offer", "--dir", p, "--account", "eve", "--now", NOW]);
    let req = ok(&["device", "link", "--dir", d, "--qr", &qr, "--name", "P", "--passcode", "493817", "--now", NOW]);
    let ans = ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", NOW]);
    let code = ok(&["device", "link-finish", "--dir", d, "--response", &ans]);
    // Exactly the code: empty, one digit, a 5-digit prefix and the code with
    // a seventh digit never match (and each counts).
    let seven = format!("{code}0");
    for wrong in ["", &code[..1], &code[..5], &seven] {
        fails(
            &["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", wrong, "--now", NOW],
            "CHECK_CODE_MISMATCH",
        );
    }
    let wrong = if code == "999999" { "999998" } else { "999999" };
    fails(&["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", wrong, "--now", NOW], "LOCKED_OUT");
    fails(&["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", &code, "--now", NOW], "TOKEN_UNKNOWN");
    assert_eq!(pending_row(&pd, "eve"), (5, "cancelled".into(), 6));
    // The phone learns that its link was cancelled, and wipes it.
    let sreq = ok(&["device", "status-request", "--dir", d, "--now", NOW]);
    let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", NOW]);
    let o = fails(&["device", "status-finish", "--dir", d, "--response", &sans], "LINK_NOT_CONFIRMED");
    assert!(String::from_utf8_lossy(&o.stderr).contains("link wiped"));
    assert_eq!(ok(&["device", "status", "--dir", d]), "not linked");
    for d in [pd, dd] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn two_processes_accepting_the_same_offer_exactly_one_wins() {
    let pd = tmp("portal-race");
    let p = pd.to_str().unwrap();
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    for round in 0..5 {
        let qr = ok(&["portal", "link-offer", "--dir", p, "--account", "race", "--now", NOW]);
        let devs: Vec<PathBuf> = (0..2).map(|i| tmp(&format!("race-{round}-{i}"))).collect();
        let reqs: Vec<String> = devs
            .iter()
            .map(|d| {
                ok(&[
                    "device",
                    "link",
                    "--dir",
                    d.to_str().unwrap(),
                    "--qr",
                    &qr,
                    "--name",
                    "R",
                    "--passcode",
                    "493817",
                    "--now",
                    NOW,
                ])
            })
            .collect();
        let cmds: Vec<Vec<String>> =
            reqs.iter().map(|r| args(&["portal", "link-accept", "--dir", p, "--request", r, "--now", NOW])).collect();
        let outs = race(&cmds, &pd).outs;
        let wins = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round}: exactly one accept must win");
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        assert!(String::from_utf8_lossy(&loser.stderr).contains("error[TOKEN_ALREADY_USED]"));
        for d in devs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let _ = std::fs::remove_dir_all(pd);
}

#[test]
fn demo_runs() {
    let out = ok(&["demo", "--no-qr", "--now", NOW]);
    assert!(out.contains("TOKEN_ALREADY_USED"));
    assert!(out.contains("the same answer again, nothing changes"));
    assert!(out.contains("DEVICE_REVOKED"));
    // Flow 4: a login, a payment, a tampered amount, a lockout; flow 2.
    assert!(out.contains("\"Log in to Example Bank as anna@example.org?\""));
    assert!(out.contains("\"Pay 125.50 EUR to ACME Energy Ltd?\" Invoice 2026-118"));
    assert!(out.contains("portal, 125.50        refused: error[INVALID_ANSWER]"));
    assert_eq!(out.matches("refused: error[INVALID_ANSWER]").count(), 5, "one tampered amount, four wrong passcodes");
    assert!(out.contains("555666 gives "));
    assert_eq!(out.matches("refused: error[LOCKED_OUT]").count(), 3);
    assert!(out.contains("\"Link the new device Anna's iPad to anna@example.org?\""));
    assert!(out.contains("vouched for by the old phone"));
    // Flow 3: an offline authenticator through every step, refused before
    // the delay, then logging in.
    for step in ["device_code", "activation_code", "binding_code", "serial", "test_otp", "initial_password"] {
        assert!(out.contains(&format!("step {step}")), "the demo lacks step {step}");
    }
    assert!(out.contains("step new_password"));
    assert!(out.contains("step done: device "));
    assert!(out.contains("serial, a typo        refused: error[SERIAL_MISMATCH]"));
    assert!(out.contains("the same file again   refused: error[DUPLICATE_RECORD] line 2:"));
    assert!(out.contains("a login after 1 hour  refused: error[DEVICE_NOT_YET_USABLE]"));
    assert!(out.contains("Ben is logged in with his authenticator"));
    assert!(out.contains("demo finished"));
}

#[test]
fn link_qr_fits_version_5_at_level_m() {
    // Longest portal name (20 bytes) and a real QR encoder.
    let pd = tmp("portal-qr");
    let p = pd.to_str().unwrap();
    ok(&["portal", "init", "--dir", p, "--name", "Ministry of Finance!"]);
    for _ in 0..20 {
        let qr = ok(&["portal", "link-offer", "--dir", p, "--account", "someone@example.org", "--now", NOW]);
        let code = qrcode::QrCode::with_error_correction_level(qr.as_bytes(), qrcode::EcLevel::M).unwrap();
        assert!(
            matches!(code.version(), qrcode::Version::Normal(v) if v <= 5),
            "{:?} for {} chars",
            code.version(),
            qr.len()
        );
        assert!(qr.len() <= 122);
    }
    let rendered = ok(&["portal", "link-offer", "--dir", p, "--account", "x", "--render", "--now", NOW]);
    assert!(rendered.lines().count() > 15, "the terminal rendering draws the QR code");
    let _ = std::fs::remove_dir_all(pd);
}

#[test]
fn a_forged_answer_does_not_spend_the_pending_link() {
    let (pd, dd) = (tmp("portal-forged"), tmp("dev-forged"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    let qr = ok(&["portal", "link-offer", "--dir", p, "--account", "zoe", "--now", NOW]);
    let req = ok(&["device", "link", "--dir", d, "--qr", &qr, "--name", "P", "--passcode", "493817", "--now", NOW]);
    let ans = ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", NOW]);
    let mut forged = ans.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    fails(
        &["device", "link-finish", "--dir", d, "--response", std::str::from_utf8(&forged).unwrap()],
        "MESSAGE_TAMPERED",
    );
    fails(&["device", "link-finish", "--dir", d, "--response", "garbage!"], "MALFORMED_MESSAGE");
    assert_eq!(ok(&["device", "link-finish", "--dir", d, "--response", &ans]).len(), 6);
    // Finished once: the pending link is spent, as tessera-host says
    // (issue 7: the CLI said INVALID_STATE, the bindings ALREADY_CONSUMED).
    fails(&["device", "link-finish", "--dir", d, "--response", &ans], "ALREADY_CONSUMED");
    // A device that never started a link has nothing to finish.
    let fresh = tmp("dev-forged-fresh");
    fails(&["device", "link-finish", "--dir", fresh.to_str().unwrap(), "--response", &ans], "INVALID_STATE");
    let _ = std::fs::remove_dir_all(fresh);
    for d in [pd, dd] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    // `tessera demo | head -0`: the reader is gone before the demo's later
    // lines are written (the demo does milliseconds of crypto between them).
    let mut child = tessera_cmd()
        .args(["demo", "--now", NOW])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0));
}

// ---------------------------------------------------------------------------
// Helpers for the key-file and race tests.

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `OK`, or the `CODE` of `error[CODE]` on stderr.
fn code_of(o: &Output) -> String {
    if o.status.success() {
        return "OK".into();
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let start = err.find("error[").unwrap_or_else(|| panic!("no error code in: {err}")) + 6;
    err[start..start + err[start..].find(']').unwrap()].to_string()
}

fn tally(outs: &[Output]) -> std::collections::BTreeMap<String, usize> {
    let mut t = std::collections::BTreeMap::new();
    for o in outs {
        *t.entry(code_of(o)).or_insert(0) += 1;
    }
    t
}

/// What [`race`] saw.
struct Race {
    outs: Vec<Output>,
    /// Every file seen in the watched directory while the processes ran,
    /// with its permission bits (SQLite's -wal and -shm come and go).
    seen: Vec<(String, u32)>,
}

/// Start every command at once, each a separate `tessera` process, and wait
/// for all of them, watching the files in `watch` meanwhile.
fn race(cmds: &[Vec<String>], watch: &Path) -> Race {
    let mut children: Vec<_> = cmds
        .iter()
        .map(|a| {
            tessera_cmd()
                .args(a)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen: Vec<(String, u32)> = Vec::new();
    loop {
        for (name, mode) in modes_in(watch) {
            if !seen.contains(&(name.clone(), mode)) {
                seen.push((name, mode));
            }
        }
        if children.iter_mut().all(|c| c.try_wait().unwrap().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for (name, mode) in &seen {
        assert_eq!(mode & 0o777, 0o600, "{name} was created with mode {mode:o} while the race ran");
    }
    Race { outs, seen }
}

/// Names and permission bits of the entries of `dir` (entries that vanish
/// while being read are skipped).
fn modes_in(dir: &Path) -> Vec<(String, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
        rd.filter_map(|e| {
            let e = e.ok()?;
            let m = std::fs::symlink_metadata(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), m.permissions().mode() & 0o777))
        })
        .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        vec![]
    }
}

fn new_portal(name: &str) -> PathBuf {
    let pd = tmp(name);
    ok(&["portal", "init", "--dir", pd.to_str().unwrap(), "--name", "Example Bank"]);
    pd
}

fn portal_db(pd: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(pd.join("portal.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

/// (attempts, status, version) of the account's one pending link.
fn pending_row(pd: &Path, account: &str) -> (i64, String, i64) {
    portal_db(pd)
        .query_row("SELECT attempts, status, version FROM pending_links WHERE account = ?1", [account], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
}

fn device_version(pd: &Path, device_id: &str) -> i64 {
    portal_db(pd).query_row("SELECT version FROM devices WHERE device_id = ?1", [device_id], |r| r.get(0)).unwrap()
}

/// Offer, link and accept, up to the check code (not typed). Returns it.
fn pending_link(p: &str, d: &str, account: &str, now: u64) -> String {
    let n = now.to_string();
    let qr = ok(&["portal", "link-offer", "--dir", p, "--account", account, "--now", &n]);
    let req = ok(&[
        "device",
        "link",
        "--dir",
        d,
        "--qr",
        &qr,
        "--name",
        "Phone",
        "--passcode",
        "493817",
        "--biometric",
        "--now",
        &n,
    ]);
    let ans = ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", &n]);
    ok(&["device", "link-finish", "--dir", d, "--response", &ans])
}

/// A confirmed device; returns its id.
fn linked_device(p: &str, d: &str, account: &str, now: u64) -> String {
    link_once(p, d, account, "Phone", now);
    json(&ok(&["device", "status", "--dir", d, "--json"]))["device_id"].as_str().unwrap().to_string()
}

fn devices_json(p: &str, account: &str) -> serde_json::Value {
    json(&ok(&["portal", "devices", "--dir", p, "--account", account, "--json"]))
}

// ---------------------------------------------------------------------------

#[test]
fn a_phone_whose_link_is_never_confirmed_learns_it_and_wipes() {
    let (pd, dd) = (new_portal("orphan-p"), tmp("orphan-d"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    let code = pending_link(p, d, "olga", 1_800_000_000);
    assert!(dd.join("biometric.key").exists());
    // The portal answers from the pending row (what the answer says is
    // tessera-host's decision; the phone reads it).
    let status_at = |t: &str| {
        let sreq = ok(&["device", "status-request", "--dir", d, "--now", t]);
        json(&ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", t, "--json"]))
    };
    let waits = |sans: &serde_json::Value| {
        assert_eq!((&sans["status"], &sans["pending"]), (&serde_json::json!("pending"), &serde_json::json!("open")));
        assert_eq!(
            ok(&["device", "status-finish", "--dir", d, "--response", sans["answer"].as_str().unwrap()]),
            "linked; waiting for the check code to be typed on the portal"
        );
    };
    // Before the deadline the phone is told to wait; still at the deadline
    // and for the clock skew servers may have after it (a confirmation may
    // be committing elsewhere) ...
    for t in ["1800000060", "1800000600", "1800000899"] {
        waits(&status_at(t));
    }
    // ... then the portal says the link was never confirmed (writing
    // nothing), and the phone wipes its link.
    let sans = status_at("1800000900");
    assert_eq!(sans["pending"], "open");
    assert_eq!(pending_row(&pd, "olga"), (0, "open".into(), 1));
    let o = fails(
        &["device", "status-finish", "--dir", d, "--response", sans["answer"].as_str().unwrap()],
        "LINK_NOT_CONFIRMED",
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("never confirmed this link"));
    assert_eq!(ok(&["device", "status", "--dir", d]), "not linked");
    assert!(!dd.join("biometric.key").exists(), "the wipe removes the biometric secret");
    // Typed too late, the code cancels the link; then nothing waits.
    fails(
        &["portal", "link-confirm", "--dir", p, "--account", "olga", "--code", &code, "--now", "1800000900"],
        "TOKEN_EXPIRED",
    );
    assert_eq!(pending_row(&pd, "olga"), (0, "cancelled".into(), 2));
    fails(
        &["portal", "link-confirm", "--dir", p, "--account", "olga", "--code", &code, "--now", "1800000901"],
        "TOKEN_UNKNOWN",
    );
    // The wiped phone links again.
    link_once(p, d, "olga", "Phone again", 1_800_001_000);
    assert_eq!(devices_json(p, "olga").as_array().unwrap().len(), 1);
    for d in [pd, dd] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_pinned_device_refuses_another_portals_qr() {
    let (pa, pb, dd) = (tmp("pin-a"), tmp("pin-b"), tmp("pin-d"));
    let (a, b, d) = (pa.to_str().unwrap(), pb.to_str().unwrap(), dd.to_str().unwrap());
    let init = json(&ok(&["portal", "init", "--dir", a, "--name", "Example Bank", "--json"]));
    let key = init["public_key"].as_str().unwrap();
    assert_eq!(key.len(), 66);
    ok(&["portal", "init", "--dir", b, "--name", "Example Bank"]); // a look-alike
    let qa = ok(&["portal", "link-offer", "--dir", a, "--account", "pia", "--now", NOW]);
    let qb = ok(&["portal", "link-offer", "--dir", b, "--account", "pia", "--now", NOW]);
    ok(&["device", "scan", "--dir", d, "--qr", &qa, "--portal-key", key, "--now", NOW]);
    fails(&["device", "scan", "--dir", d, "--qr", &qb, "--portal-key", key, "--now", NOW], "WRONG_ACCOUNT");
    let link = |qr: &str| {
        args(&[
            "device",
            "link",
            "--dir",
            d,
            "--qr",
            qr,
            "--name",
            "P",
            "--passcode",
            "493817",
            "--portal-key",
            key,
            "--now",
            NOW,
        ])
    };
    fails(&strs(&link(&qb)), "WRONG_ACCOUNT");
    fails(&["device", "scan", "--dir", d, "--qr", &qa, "--portal-key", "zz", "--now", NOW], "INVALID_INPUT");
    ok(&strs(&link(&qa)));
    for d in [pa, pb, dd] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn keys_live_in_owner_only_files_outside_the_databases() {
    let root = tmp("keys");
    let (pd, dd) = (root.join("nested/portal"), root.join("nested/device"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    let code = pending_link(p, d, "kim", 1_800_000_000);
    ok(&["portal", "link-confirm", "--dir", p, "--account", "kim", "--code", &code, "--now", NOW]);

    // Owner only, though this process gave the CLI umask 0. SQLite's -wal
    // and -shm exist only while a connection is open: watch them while
    // several processes write.
    let mut wal_seen = 0;
    for _ in 0..5 {
        let cmds: Vec<Vec<String>> =
            (0..8).map(|_| args(&["portal", "link-offer", "--dir", p, "--account", "kim", "--now", NOW])).collect();
        let r = race(&cmds, &pd);
        assert!(r.outs.iter().all(|o| o.status.success()));
        wal_seen += r.seen.iter().filter(|(n, _)| n.ends_with("-wal") || n.ends_with("-shm")).count();
        if wal_seen > 0 {
            break;
        }
    }
    assert!(wal_seen > 0, "never saw portal.db-wal or -shm while 8 processes wrote");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut n = 0;
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "{}", dir.display());
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                let m = std::fs::symlink_metadata(&path).unwrap();
                if m.is_dir() {
                    stack.push(path);
                } else {
                    assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", path.display());
                    n += 1;
                }
            }
        }
        assert!(n >= 5, "portal.db, portal.key, device.db, device.key, biometric.key");
    }

    // The secrets are in their own files, not in the databases.
    let hex_of = |path: &Path| std::fs::read_to_string(path).unwrap().trim().to_string();
    let unhex =
        |h: &str| (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let seed = hex_of(&pd.join("portal.key"));
    let storage_key = hex_of(&dd.join("device.key"));
    let bio = hex_of(&dd.join("biometric.key"));
    assert_eq!(seed.len(), 64);
    assert_eq!(storage_key.len(), 64);
    assert_eq!(bio.len(), 64);
    assert_ne!(storage_key, bio);
    let portal_db_bytes = std::fs::read(pd.join("portal.db")).unwrap();
    let device_db_bytes = std::fs::read(dd.join("device.db")).unwrap();
    for secret in [&seed, &storage_key, &bio] {
        for db in [&portal_db_bytes, &device_db_bytes] {
            assert!(!contains(db, secret.as_bytes()));
            assert!(!contains(db, &unhex(secret)));
        }
    }
    assert!(!contains(&std::fs::read(dd.join("device.key")).unwrap(), bio.as_bytes()));

    // The key file (or the variable) is the only way in.
    let devices = ["portal", "devices", "--dir", p, "--account", "kim"];
    std::fs::rename(pd.join("portal.key"), pd.join("saved.key")).unwrap();
    let o = fails(&devices, "STORAGE");
    assert!(String::from_utf8_lossy(&o.stderr).contains("TESSERA_PORTAL_SECRET"));
    let with_env = |var: &str, val: &str, a: &[&str]| tessera_cmd().args(a).env(var, val).output().unwrap();
    assert!(with_env("TESSERA_PORTAL_SECRET", &seed, &devices).status.success());
    let other = "11".repeat(32);
    assert_eq!(code_of(&with_env("TESSERA_PORTAL_SECRET", &other, &devices)), "STATE_CORRUPT");
    assert_eq!(code_of(&with_env("TESSERA_PORTAL_SECRET", "12ab", &devices)), "INVALID_INPUT");
    std::fs::rename(pd.join("saved.key"), pd.join("portal.key")).unwrap();
    ok(&devices);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = pd.join("portal.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = fails(&devices, "STORAGE");
        assert!(String::from_utf8_lossy(&o.stderr).contains("readable by other users"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The device: without its key file its state cannot be opened, and no
    // new key is made next to sealed data.
    let totp = ["device", "totp", "--dir", d, "--passcode", "493817", "--now", NOW];
    let c1 = ok(&totp);
    std::fs::rename(dd.join("device.key"), dd.join("saved.key")).unwrap();
    let o = fails(&totp, "STORAGE");
    assert!(String::from_utf8_lossy(&o.stderr).contains("TESSERA_DEVICE_KEY"));
    assert!(!dd.join("device.key").exists());
    let o = with_env("TESSERA_DEVICE_KEY", &storage_key, &totp);
    assert_eq!(String::from_utf8(o.stdout).unwrap().trim(), c1);
    std::fs::rename(dd.join("saved.key"), dd.join("device.key")).unwrap();
    assert_eq!(ok(&["device", "totp", "--dir", d, "--biometric", "--now", NOW]), c1);

    // Keys from the environment only: no key file is written at all.
    let (pe, de) = (root.join("env-portal"), root.join("env-device"));
    let (pes, des) = (pe.to_str().unwrap(), de.to_str().unwrap());
    let seed2 = "5a".repeat(32);
    let init =
        with_env("TESSERA_PORTAL_SECRET", &seed2, &["portal", "init", "--dir", pes, "--name", "Env Bank", "--json"]);
    assert!(init.status.success());
    assert!(!pe.join("portal.key").exists());
    fails(&["portal", "link-offer", "--dir", pes, "--account", "env", "--now", NOW], "STORAGE");
    let qr = with_env(
        "TESSERA_PORTAL_SECRET",
        &seed2,
        &["portal", "link-offer", "--dir", pes, "--account", "env", "--now", NOW],
    );
    let qr = String::from_utf8(qr.stdout).unwrap().trim().to_string();
    let dkey = "6b".repeat(32);
    let link = ["device", "link", "--dir", des, "--qr", &qr, "--name", "P", "--passcode", "493817", "--now", NOW];
    assert!(with_env("TESSERA_DEVICE_KEY", &dkey, &link).status.success());
    assert!(!de.join("device.key").exists());
    assert_eq!(ok(&["device", "status", "--dir", des]), "not linked (a link is in progress)");
    // Same seed, same portal: the fingerprint is the seed's.
    let again = tmp("keys-env-again");
    let init2 = with_env(
        "TESSERA_PORTAL_SECRET",
        &seed2,
        &["portal", "init", "--dir", again.to_str().unwrap(), "--name", "Env Bank", "--json"],
    );
    assert_eq!(
        json(&String::from_utf8(init.stdout).unwrap())["fingerprint"],
        json(&String::from_utf8(init2.stdout).unwrap())["fingerprint"]
    );

    // A directory made by an older tessera (seed inside portal.db) is refused.
    let old = root.join("old");
    std::fs::create_dir_all(&old).unwrap();
    rusqlite::Connection::open(old.join("portal.db"))
        .unwrap()
        .execute_batch("CREATE TABLE portal (id INTEGER PRIMARY KEY, name TEXT NOT NULL, secret_hex TEXT NOT NULL);")
        .unwrap();
    let o = fails(&["portal", "devices", "--dir", old.to_str().unwrap(), "--account", "x"], "STORAGE");
    assert!(String::from_utf8_lossy(&o.stderr).contains("older tessera"));
    for d in [root, again] {
        let _ = std::fs::remove_dir_all(d);
    }
}

// ---------------------------------------------------------------------------
// Process races (issue 6, item 8): real `tessera` processes, started at
// once against one portal directory. Each prints what it committed only
// after its compare-and-set writes went through.

/// (a) One link request sent to several `portal link-accept` processes at
/// once (each with its own clock, so a recomputed answer would differ),
/// plus another phone's request for the same QR code: exactly one pending
/// link; every process with the winning request prints the very same
/// answer; the other request gets TOKEN_ALREADY_USED.
#[test]
fn race_one_link_request_accepted_by_many_processes_links_once() {
    let pd = new_portal("race-accept");
    let p = pd.to_str().unwrap();
    let mut b_won = 0;
    const SAME: usize = 6;
    let trials = 4;
    for trial in 0..trials {
        let account = format!("acc{trial}");
        let qr = ok(&["portal", "link-offer", "--dir", p, "--account", &account, "--now", NOW]);
        let (da, db) = (tmp(&format!("race-accept-{trial}-a")), tmp(&format!("race-accept-{trial}-b")));
        let request = |d: &Path, name: &str| {
            ok(&[
                "device",
                "link",
                "--dir",
                d.to_str().unwrap(),
                "--qr",
                &qr,
                "--name",
                name,
                "--passcode",
                "493817",
                "--now",
                NOW,
            ])
        };
        let (ra, rb) = (request(&da, "Phone A"), request(&db, "Phone B"));
        let accept = |r: &str, now: u64| {
            args(&["portal", "link-accept", "--dir", p, "--request", r, "--now", &now.to_string(), "--json"])
        };
        let mut cmds: Vec<Vec<String>> = (0..SAME).map(|i| accept(&ra, 1_800_000_000 + i as u64)).collect();
        cmds.insert(SAME / 2, accept(&rb, 1_800_000_000));
        let r = race(&cmds, &pd);
        let mut outs = r.outs;
        let b = outs.remove(SAME / 2);
        let a = outs;
        let answers: Vec<serde_json::Value> = a.iter().map(|o| json(&String::from_utf8_lossy(&o.stdout))).collect();
        let b_json = json(&String::from_utf8_lossy(&b.stdout));
        let count: i64 = portal_db(&pd)
            .query_row("SELECT count(*) FROM pending_links WHERE account = ?1", [&account], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1, "trial {trial}: exactly one pending link");
        let (used_version, used): (i64, Option<i64>) = portal_db(&pd)
            .query_row("SELECT version, used_at FROM offers WHERE account = ?1", [&account], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(used_version, 2, "trial {trial}: the offer was written once");
        assert!(used.is_some());
        let (win_req, win_dir, win_answer, lose_req, lose_dir, lose_answer);
        if b.status.success() {
            // The other phone won: every copy of A's request is refused.
            b_won += 1;
            assert_eq!(b_json["repeated"], false);
            assert_eq!(tally(&a).get("TOKEN_ALREADY_USED"), Some(&SAME), "trial {trial}");
            (win_req, win_dir, win_answer) = (&rb, &db, b_json["answer"].as_str().unwrap().to_string());
            (lose_req, lose_dir, lose_answer) = (&ra, &da, answers[0]["answer"].as_str().unwrap().to_string());
        } else {
            assert_eq!(code_of(&b), "TOKEN_ALREADY_USED", "trial {trial}");
            assert_eq!(tally(&a).get("OK"), Some(&SAME), "trial {trial}: {:?}", tally(&a));
            let first = answers.iter().filter(|j| j["repeated"] == false).count();
            assert_eq!(first, 1, "trial {trial}: exactly one process accepted, the others repeated");
            for j in &answers {
                assert_eq!(j["answer"], answers[0]["answer"], "trial {trial}: a repeat gets the same bytes");
                assert_eq!(j["confirm_by"], answers[0]["confirm_by"]);
            }
            (win_req, win_dir, win_answer) = (&ra, &da, answers[0]["answer"].as_str().unwrap().to_string());
            (lose_req, lose_dir, lose_answer) = (&rb, &db, b_json["answer"].as_str().unwrap().to_string());
        }
        // Afterwards, one at a time: the same bytes again, and the refusal again.
        let again = json(&ok(&strs(&accept(win_req, 1_800_000_100))));
        assert_eq!(
            (again["answer"].as_str().unwrap(), &again["repeated"]),
            (win_answer.as_str(), &serde_json::json!(true))
        );
        fails(&strs(&accept(lose_req, 1_800_000_100)), "TOKEN_ALREADY_USED");
        // Both phones understand what they got.
        let code = ok(&["device", "link-finish", "--dir", win_dir.to_str().unwrap(), "--response", &win_answer]);
        assert_eq!(code.len(), 6);
        fails(
            &["device", "link-finish", "--dir", lose_dir.to_str().unwrap(), "--response", &lose_answer],
            "TOKEN_ALREADY_USED",
        );
        ok(&["portal", "link-confirm", "--dir", p, "--account", &account, "--code", &code, "--now", NOW]);
        for d in [da, db] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    println!("race (a): {trials} trials of {SAME} copies + 1 other request: one link each; other request won {b_won}");
    let _ = std::fs::remove_dir_all(pd);
}

/// (b) 40 wrong check codes typed at once: exactly 5 are counted (4
/// mismatches, then the lock), the rest find nothing waiting, and the right
/// code afterwards links nothing.
#[test]
fn race_forty_wrong_check_codes_count_exactly_five() {
    let pd = new_portal("race-confirm");
    let p = pd.to_str().unwrap();
    let trials = 3;
    for trial in 0..trials {
        let account = format!("cc{trial}");
        let dd = tmp(&format!("race-confirm-{trial}"));
        let code = pending_link(p, dd.to_str().unwrap(), &account, 1_800_000_000);
        let right: u32 = code.parse().unwrap();
        let cmds: Vec<Vec<String>> = (1..=40)
            .map(|i| {
                let wrong = format!("{:06}", (right + i) % 1_000_000);
                args(&["portal", "link-confirm", "--dir", p, "--account", &account, "--code", &wrong, "--now", NOW])
            })
            .collect();
        let r = race(&cmds, &pd);
        let t = tally(&r.outs);
        assert_eq!(t.get("CHECK_CODE_MISMATCH"), Some(&4), "trial {trial}: {t:?}");
        assert_eq!(t.get("LOCKED_OUT"), Some(&1), "trial {trial}: {t:?}");
        assert_eq!(t.get("TOKEN_UNKNOWN"), Some(&35), "trial {trial}: {t:?}");
        assert_eq!(
            pending_row(&pd, &account),
            (5, "cancelled".into(), 6),
            "trial {trial}: five counted writes, then closed"
        );
        fails(
            &["portal", "link-confirm", "--dir", p, "--account", &account, "--code", &code, "--now", NOW],
            "TOKEN_UNKNOWN",
        );
        assert_eq!(devices_json(p, &account).as_array().unwrap().len(), 0);
        let _ = std::fs::remove_dir_all(dd);
    }
    println!("race (b) check codes: {trials} trials of 40 wrong codes: 4 CHECK_CODE_MISMATCH + 1 LOCKED_OUT + 35 TOKEN_UNKNOWN each");
    let _ = std::fs::remove_dir_all(pd);
}

/// The device's TOTP codes valid at `t` (window ±1 step).
fn valid_totps(d: &str, t: u64) -> Vec<String> {
    [t - 30, t, t + 30]
        .iter()
        .map(|s| ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", &s.to_string()]))
        .collect()
}

/// (b) 40 wrong TOTP codes at once: exactly 5 failures are counted (the
/// fifth locks), every other attempt is LOCKED_OUT, and so is the right
/// code afterwards.
#[test]
fn race_forty_wrong_totp_codes_count_exactly_five() {
    let pd = new_portal("race-totp-lock");
    let p = pd.to_str().unwrap();
    let trials = 2;
    for trial in 0..trials {
        let account = format!("tl{trial}");
        let dd = tmp(&format!("race-totp-lock-{trial}"));
        let d = dd.to_str().unwrap();
        let id = linked_device(p, d, &account, 1_800_000_000);
        let t = 1_800_000_300u64;
        let valid = valid_totps(d, t);
        let wrong: Vec<String> =
            (0..).map(|i| format!("{:06}", 100_000 + i * 7919)).filter(|c| !valid.contains(c)).take(40).collect();
        let now = t.to_string();
        let cmds: Vec<Vec<String>> = wrong
            .iter()
            .map(|c| {
                args(&[
                    "portal",
                    "verify-totp",
                    "--dir",
                    p,
                    "--account",
                    &account,
                    "--device",
                    &id,
                    "--code",
                    c,
                    "--now",
                    &now,
                ])
            })
            .collect();
        let r = race(&cmds, &pd);
        let t2 = tally(&r.outs);
        assert_eq!(t2.get("OTP_MISMATCH"), Some(&4), "trial {trial}: {t2:?}");
        assert_eq!(t2.get("LOCKED_OUT"), Some(&36), "trial {trial}: {t2:?}");
        assert_eq!(device_version(&pd, &id), 6, "trial {trial}: exactly five counted writes");
        fails(
            &[
                "portal",
                "verify-totp",
                "--dir",
                p,
                "--account",
                &account,
                "--device",
                &id,
                "--code",
                &valid[1],
                "--now",
                &now,
            ],
            "LOCKED_OUT",
        );
        let _ = std::fs::remove_dir_all(dd);
    }
    println!("race (b) TOTP: {trials} trials of 40 wrong codes: 4 OTP_MISMATCH + 36 LOCKED_OUT each, device version 6");
    let _ = std::fs::remove_dir_all(pd);
}

/// (c) One valid TOTP code sent 6 times at once: accepted exactly once; the
/// five replays are counted as failures (the fifth locks).
#[test]
fn race_one_totp_code_sent_six_times_is_accepted_once() {
    let pd = new_portal("race-totp-once");
    let p = pd.to_str().unwrap();
    let trials = 5;
    for trial in 0..trials {
        let account = format!("to{trial}");
        let dd = tmp(&format!("race-totp-once-{trial}"));
        let d = dd.to_str().unwrap();
        let id = linked_device(p, d, &account, 1_800_000_000);
        let t = 1_800_000_300u64;
        let code = ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", &t.to_string()]);
        let cmd = args(&[
            "portal",
            "verify-totp",
            "--dir",
            p,
            "--account",
            &account,
            "--device",
            &id,
            "--code",
            &code,
            "--now",
            &t.to_string(),
        ]);
        let r = race(&vec![cmd; 6], &pd);
        let tl = tally(&r.outs);
        assert_eq!(tl.get("OK"), Some(&1), "trial {trial}: {tl:?}");
        assert_eq!(tl.get("OTP_REPLAYED"), Some(&4), "trial {trial}: {tl:?}");
        assert_eq!(tl.get("LOCKED_OUT"), Some(&1), "trial {trial}: {tl:?}");
        assert_eq!(device_version(&pd, &id), 7, "trial {trial}: one acceptance and five counted replays");
        assert_eq!(devices_json(p, &account)[0]["last_used_at"], t);
        let _ = std::fs::remove_dir_all(dd);
    }
    println!("race (c): {trials} trials of one code sent 6 times: 1 accepted + 4 OTP_REPLAYED + 1 LOCKED_OUT each");
    let _ = std::fs::remove_dir_all(pd);
}

/// (d) Status requests (fresh and replayed), a rename and a TOTP check
/// racing `portal unlink`: the unlink is never undone.
#[test]
fn race_status_requests_never_undo_an_unlink() {
    let pd = new_portal("race-unlink");
    let p = pd.to_str().unwrap();
    let (trials, mut verify_won, mut rename_won) = (8, 0, 0);
    for trial in 0..trials {
        let account = format!("ul{trial}");
        let dd = tmp(&format!("race-unlink-{trial}"));
        let d = dd.to_str().unwrap();
        let id = linked_device(p, d, &account, 1_800_000_000);
        let t = "1800000300";
        let s1 = ok(&["device", "status-request", "--dir", d, "--now", t]);
        let s2 = ok(&["device", "status-request", "--dir", d, "--now", t]);
        let code = ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", t]);
        let status = |s: &str| args(&["portal", "status", "--dir", p, "--request", s, "--now", t, "--json"]);
        let name = format!("Renamed {trial}");
        let mut cmds = [
            ("status", status(&s1)),
            ("status", status(&s2)),
            ("unlink", args(&["portal", "unlink", "--dir", p, "--account", &account, "--device", &id, "--now", t])),
            ("status", status(&s1)),
            (
                "rename",
                args(&[
                    "portal",
                    "rename",
                    "--dir",
                    p,
                    "--account",
                    &account,
                    "--device",
                    &id,
                    "--name",
                    &name,
                    "--now",
                    t,
                ]),
            ),
            ("status", status(&s2)),
            (
                "verify",
                args(&[
                    "portal",
                    "verify-totp",
                    "--dir",
                    p,
                    "--account",
                    &account,
                    "--device",
                    &id,
                    "--code",
                    &code,
                    "--now",
                    t,
                ]),
            ),
        ];
        // The unlink starts at another place in each trial.
        cmds.rotate_left(trial % 7);
        let r = race(&cmds.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(), &pd);
        let of = |kind: &str| -> Vec<&Output> {
            cmds.iter().zip(&r.outs).filter(|((k, _), _)| *k == kind).map(|(_, o)| o).collect()
        };
        for o in of("status") {
            assert_eq!(code_of(o), "OK", "trial {trial}");
            let s = json(&String::from_utf8_lossy(&o.stdout))["status"].as_str().unwrap().to_string();
            assert!(s == "active" || s == "unlinked", "{s}");
        }
        assert_eq!(code_of(of("unlink")[0]), "OK", "trial {trial}: unlink");
        // A rename or a code check after the unlink is refused.
        let n = code_of(of("rename")[0]);
        assert!(n == "OK" || n == "INVALID_STATE", "trial {trial}: rename {n}");
        let v = code_of(of("verify")[0]);
        assert!(v == "OK" || v == "DEVICE_REVOKED", "trial {trial}: verify-totp {v}");
        verify_won += usize::from(v == "OK");
        rename_won += usize::from(n == "OK");
        let list = devices_json(p, &account);
        assert_eq!(list[0]["status"], "unlinked", "trial {trial}: the unlink stands");
        assert_eq!(list[0]["name"], if n == "OK" { name.as_str() } else { "Phone" });
        assert_eq!(device_version(&pd, &id), 2 + i64::from(n == "OK") + i64::from(v == "OK"));
        // The phone learns it on its next contact and wipes itself.
        let sreq = ok(&["device", "status-request", "--dir", d, "--now", "1800000400"]);
        let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", "1800000400"]);
        fails(&["device", "status-finish", "--dir", d, "--response", &sans], "DEVICE_REVOKED");
        assert_eq!(ok(&["device", "status", "--dir", d]), "not linked");
        let _ = std::fs::remove_dir_all(dd);
    }
    println!("race (d): {trials} trials of 4 status + rename + verify-totp racing unlink: unlinked every time (rename before the unlink in {rename_won}, verify-totp in {verify_won})");
    let _ = std::fs::remove_dir_all(pd);
}

/// `--json` speaks tessera-host's JSON: events as `PortalEvent`
/// (`{"kind": "deviceLinked", …}`, times in epoch milliseconds) and
/// verdicts as `Verdict`, a refusal printed (with the events of its stored
/// change) before the `error[CODE]` exit; the outbox table holds the same
/// events.
#[test]
fn json_output_carries_host_events_and_verdicts() {
    let (pd, dd) = (new_portal("json-shapes"), tmp("json-shapes-d"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    let qr = ok(&["portal", "link-offer", "--dir", p, "--account", "jo", "--now", NOW]);
    let req =
        ok(&["device", "link", "--dir", d, "--qr", &qr, "--name", "Jo's phone", "--passcode", "493817", "--now", NOW]);
    let acc = json(&ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", NOW, "--json"]));
    assert_eq!(acc["verdict"], serde_json::json!({"kind": "accepted"}));
    assert_eq!(acc["events"][0]["kind"], "linkRequested");
    assert_eq!(acc["events"][0]["deviceName"], "Jo's phone");
    assert!(acc["if_not_stored"].as_str().is_some_and(|s| !s.is_empty() && s != acc["answer"]));
    let code = ok(&["device", "link-finish", "--dir", d, "--response", acc["answer"].as_str().unwrap()]);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let o = fails(
        &["portal", "link-confirm", "--dir", p, "--account", "jo", "--code", wrong, "--now", NOW, "--json"],
        "CHECK_CODE_MISMATCH",
    );
    let refused = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(refused["verdict"]["kind"], "refused");
    assert_eq!(refused["verdict"]["code"], "CHECK_CODE_MISMATCH");
    assert_eq!(refused["events"], serde_json::json!([]));
    let done =
        json(&ok(&["portal", "link-confirm", "--dir", p, "--account", "jo", "--code", &code, "--now", NOW, "--json"]));
    let ev = &done["events"][0];
    assert_eq!((ev["kind"].as_str(), ev["account"].as_str()), (Some("deviceLinked"), Some("jo")));
    assert_eq!(ev["at"].as_f64(), Some(1_800_000_000_000.0), "epoch milliseconds");
    assert_eq!(done["device"]["status"], "active");
    let logged: Vec<String> = portal_db(&pd)
        .prepare("SELECT json FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<String> = logged.iter().map(|j| json(j)["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["linkRequested", "deviceLinked"]);
    for d in [pd, dd] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A verifier state file is read, checked and replaced under a lock beside
/// it: eight wrong codes sent at once count eight failures (the fifth locks),
/// not one each from the same stale read. A missing file needs `--new`.
#[test]
fn parallel_otp_verifications_count_every_failure() {
    let dir = tmp("otp-race");
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let s = state.to_str().unwrap().to_owned();
    let args = |code: &str| -> Vec<String> {
        ["otp", "verify-totp", "--secret-hex", "3132333435363738393031323334353637383930", "--code", code]
            .iter()
            .map(|w| (*w).to_owned())
            .chain(["--time=1800000000".to_owned(), format!("--state={s}")])
            .collect()
    };
    let first = args("000000");
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    fails(&refs(&first), "INVALID_STATE"); // no state file and no --new
    let mut new = first.clone();
    new.push("--new".into());
    fails(&refs(&new), "OTP_MISMATCH");
    fails(&refs(&new), "INVALID_STATE"); // --new on an existing credential
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let a = args("000000");
            std::thread::spawn(move || tessera(&a.iter().map(String::as_str).collect::<Vec<_>>()))
        })
        .collect();
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let locked = outs.iter().filter(|o| String::from_utf8_lossy(&o.stderr).contains("LOCKED_OUT")).count();
    assert_eq!(locked, 8 - 3, "1 failure before, 3 more mismatches, then locked");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(v["consecutiveFailures"], 5);
    assert_eq!(v["locked"], true);
}

// ---------------------------------------------------------------------------
// Challenge/response (flow 4), the device lockout and flow 2.

/// Portal `P` with a device linked to `account` (passcode 493817, biometrics
/// on) in `D`; returns the device id.
fn linked_with_biometrics(p: &str, d: &str, account: &str, now: u64) -> String {
    let code = pending_link(p, d, account, now);
    ok(&["portal", "link-confirm", "--dir", p, "--account", account, "--code", &code, "--now", &now.to_string()]);
    json(&ok(&["device", "status", "--dir", d, "--json"]))["device_id"].as_str().unwrap().to_string()
}

/// `portal challenge …`: (QR text, challenge id) from its two lines.
fn challenge(p: &str, extra: &[&str], now: &str) -> (String, String) {
    let mut a = vec!["portal", "challenge", "--dir", p, "--now", now];
    a.extend_from_slice(extra);
    let out = ok(&a);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "QR text, then the challenge id: {out}");
    (lines[0].to_owned(), lines[1].to_owned())
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

#[test]
fn challenge_show_answer_verify_outputs_and_errors() {
    let (pd, dd, other) = (new_portal("ch-p"), tmp("ch-d"), tmp("ch-other"));
    let (p, d, o) = (pd.to_str().unwrap(), dd.to_str().unwrap(), other.to_str().unwrap());
    let id = linked_with_biometrics(p, d, "anna", 1_800_000_000);

    // A login: QR text and id; what the phone shows; the code; `accepted`.
    let (qr, cid) = challenge(p, &["--account", "anna"], "1800000100");
    assert!(qr.starts_with("TS:") && is_hex_id(&cid), "{qr} / {cid}");
    assert_eq!(
        ok(&["device", "show", "--dir", d, "--qr", &qr, "--now", "1800000101"]),
        "Log in to \"Example Bank\" as anna? Valid until 1800000400."
    );
    assert_eq!(
        json(&ok(&["device", "show", "--dir", d, "--qr", &qr, "--now", "1800000101", "--json"])),
        serde_json::json!({"portal": "Example Bank", "account": "anna", "challenge_id": cid, "kind": "login",
                           "expires_at": 1_800_000_400u64, "digits": 8, "amount": null, "currency": null,
                           "payee": null, "text": null, "device_name": null, "device_id": null})
    );
    let code = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "493817", "--now", "1800000102"]);
    assert!(code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let bio = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--biometric", "--now", "1800000102"]);
    assert_eq!(bio, code, "biometrics unlock the same secret");
    let answered = json(&ok(&[
        "device",
        "answer",
        "--dir",
        d,
        "--qr",
        &qr,
        "--passcode",
        "493817",
        "--now",
        "1800000102",
        "--json",
    ]));
    assert_eq!(answered, serde_json::json!({"answer": code, "signed": false, "challenge_id": cid}));
    let verify = |answer: &str, extra: &[&str]| -> Output {
        let mut a =
            vec!["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", answer, "--now", "1800000103"];
        a.extend_from_slice(extra);
        tessera(&a)
    };
    let wrong: String = code.bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect();
    let o1 = verify(&wrong, &[]);
    assert_eq!((o1.status.code(), stdout_of(&o1).as_str()), (Some(1), ""));
    assert!(String::from_utf8_lossy(&o1.stderr).contains("error[INVALID_ANSWER]: "));
    let refused = json(&stdout_of(&fails(
        &["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", &wrong, "--now", "1800000103", "--json"],
        "INVALID_ANSWER",
    )));
    assert_eq!(refused["verdict"]["kind"], "refused");
    assert_eq!(refused["verdict"]["code"], "INVALID_ANSWER");
    assert_eq!(refused["events"], serde_json::json!([]));
    let o2 = verify(&code, &[]);
    assert!(o2.status.success());
    assert_eq!(stdout_of(&o2), "accepted");
    let again = verify(&code, &["--json"]);
    assert_eq!(code_of(&again), "TOKEN_ALREADY_USED");
    assert_eq!(json(&stdout_of(&again))["verdict"]["code"], "TOKEN_ALREADY_USED");
    // The challenge row as stored: answered, written three times.
    let (status, version, kind, ids): (String, i64, String, String) = portal_db(&pd)
        .query_row("SELECT status, version, kind, device_ids FROM challenges WHERE challenge_id = ?1", [&cid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), kind.as_str()), ("answered", "login"));
    assert_eq!(json(&ids), serde_json::json!([id]));
    assert!(version >= 2, "{version}");

    // A transaction: the phone shows it exactly; --json of the new challenge.
    let made = json(&ok(&[
        "portal",
        "challenge",
        "--dir",
        p,
        "--account",
        "anna",
        "--device",
        &id,
        "--amount",
        "125.50",
        "--currency",
        "EUR",
        "--payee",
        "ACME Energy Ltd",
        "--text",
        "Invoice 2026-118",
        "--text",
        "IBAN DE89 3704 0044",
        "--digits",
        "6",
        "--ttl",
        "120",
        "--now",
        "1800000200",
        "--json",
    ]));
    let keys: Vec<&str> = made.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["challenge_id", "device_ids", "events", "expires_at", "kind", "qr"]);
    assert_eq!(
        (&made["kind"], &made["device_ids"], &made["events"], &made["expires_at"]),
        (
            &serde_json::json!("transaction"),
            &serde_json::json!([id]),
            &serde_json::json!([]),
            &serde_json::json!(1_800_000_320u64)
        )
    );
    let tqr = made["qr"].as_str().unwrap();
    let tid = made["challenge_id"].as_str().unwrap();
    assert_eq!(
        ok(&["device", "show", "--dir", d, "--qr", tqr, "--now", "1800000201"]),
        "Pay 125.50 EUR to \"ACME Energy Ltd\" from anna at \"Example Bank\"? Valid until 1800000320.\n  \
         Invoice 2026-118\n  IBAN DE89 3704 0044"
    );
    let shown = json(&ok(&["device", "show", "--dir", d, "--qr", tqr, "--now", "1800000201", "--json"]));
    assert_eq!(
        (&shown["kind"], &shown["amount"], &shown["currency"], &shown["payee"], &shown["text"], &shown["digits"]),
        (
            &serde_json::json!("transaction"),
            &serde_json::json!("125.50"),
            &serde_json::json!("EUR"),
            &serde_json::json!("ACME Energy Ltd"),
            &serde_json::json!(["Invoice 2026-118", "IBAN DE89 3704 0044"]),
            &serde_json::json!(6)
        )
    );
    let tcode = ok(&["device", "answer", "--dir", d, "--qr", tqr, "--passcode", "493817", "--now", "1800000202"]);
    assert_eq!(tcode.len(), 6);
    let done = json(&ok(&[
        "portal",
        "verify",
        "--dir",
        p,
        "--challenge",
        tid,
        "--answer",
        &tcode,
        "--now",
        "1800000203",
        "--json",
    ]));
    assert_eq!(
        (&done["accepted"], &done["verdict"], &done["device_id"], &done["kind"], &done["challenge_id"]),
        (
            &serde_json::json!(true),
            &serde_json::json!({"kind": "accepted"}),
            &serde_json::json!(id),
            &serde_json::json!("transaction"),
            &serde_json::json!(tid)
        )
    );
    assert_eq!(done["events"][0]["kind"], "challengeAnswered");

    // A signed answer names its challenge: --challenge may be left out.
    let (sqr, sid) = challenge(p, &["--account", "anna"], "1800000300");
    let signed =
        ok(&["device", "answer", "--dir", d, "--qr", &sqr, "--passcode", "493817", "--signed", "--now", "1800000301"]);
    assert!(signed.len() > 40 && !signed.contains(char::is_whitespace), "{signed}");
    let by_text = json(&ok(&["portal", "verify", "--dir", p, "--answer", &signed, "--now", "1800000302", "--json"]));
    assert_eq!((&by_text["challenge_id"], &by_text["device_id"]), (&serde_json::json!(sid), &serde_json::json!(id)));
    fails(&["portal", "verify", "--dir", p, "--answer", &signed, "--now", "1800000303"], "TOKEN_ALREADY_USED");
    fails(&["portal", "verify", "--dir", p, "--answer", "12345678", "--now", "1800000303"], "INVALID_INPUT");
    fails(
        &["portal", "verify", "--dir", p, "--challenge", &"0".repeat(32), "--answer", "1", "--now", NOW],
        "TOKEN_UNKNOWN",
    );

    // Bad inputs store nothing and say why.
    let n_before: i64 = portal_db(&pd).query_row("SELECT count(*) FROM challenges", [], |r| r.get(0)).unwrap();
    let bad = |extra: &[&str], code: &str| {
        let mut a = vec!["portal", "challenge", "--dir", p, "--now", "1800000400"];
        a.extend_from_slice(extra);
        fails(&a, code);
    };
    let pay = ["--account", "anna", "--currency", "EUR", "--payee", "ACME"];
    bad(&[&pay[..], &["--amount", "1,50"]].concat(), "INVALID_INPUT");
    bad(&[&pay[..], &["--amount", "1.2345"]].concat(), "INVALID_INPUT");
    bad(&["--account", "anna", "--amount", "1.50", "--currency", "eur", "--payee", "ACME"], "INVALID_INPUT");
    bad(
        &[&pay[..], &["--amount", "1.50", "--text", "a", "--text", "b", "--text", "c", "--text", "d"]].concat(),
        "INVALID_INPUT",
    );
    bad(&["--account", "anna", "--digits", "5"], "INVALID_DIGITS");
    bad(&["--account", "anna", "--digits", "11"], "INVALID_DIGITS");
    bad(&["--account", "anna", "--ttl", "901"], "INVALID_INPUT");
    bad(&["--account", "nobody"], "DEVICE_UNKNOWN");
    bad(&["--account", "bob", "--device", &id], "DEVICE_UNKNOWN");
    let n_after: i64 = portal_db(&pd).query_row("SELECT count(*) FROM challenges", [], |r| r.get(0)).unwrap();
    assert_eq!(n_before, n_after);
    // A currency without an amount is a usage error (clap's exit status 2).
    let usage = tessera(&["portal", "challenge", "--dir", p, "--account", "anna", "--currency", "EUR"]);
    assert_eq!(usage.status.code(), Some(2));

    // The phone: a link QR code is not a challenge; other devices cannot read it.
    let link_qr = ok(&["portal", "link-offer", "--dir", p, "--account", "bob", "--now", "1800000500"]);
    fails(&["device", "show", "--dir", d, "--qr", &link_qr, "--now", "1800000500"], "WRONG_MESSAGE_KIND");
    fails(&["device", "show", "--dir", d, "--qr", &qr[..qr.len() - 10], "--now", "1800000101"], "MALFORMED_MESSAGE");
    fails(&["device", "show", "--dir", d, "--qr", &qr, "--now", "1800000701"], "TOKEN_EXPIRED");
    fails(&["device", "show", "--dir", o, "--qr", &qr, "--now", "1800000101"], "DEVICE_NOT_LINKED");
    fails(
        &["device", "answer", "--dir", o, "--qr", &qr, "--passcode", "493817", "--now", "1800000101"],
        "DEVICE_NOT_LINKED",
    );
    linked_device(p, o, "bob", 1_800_000_500);
    fails(&["device", "show", "--dir", o, "--qr", tqr, "--now", "1800000201"], "NOT_FOR_THIS_DEVICE");
    for x in [pd, dd, other] {
        let _ = std::fs::remove_dir_all(x);
    }
}

#[test]
fn wrong_answers_lock_the_device_until_the_portal_unlocks_it() {
    let (pd, dd) = (new_portal("lock-p"), tmp("lock-d"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    let id = linked_with_biometrics(p, d, "anna", 1_800_000_000);
    let (qr, cid) = challenge(p, &["--account", "anna"], "1800000100");
    let verify = |answer: &str| -> Vec<String> {
        args(&["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", answer, "--now", "1800000110"])
    };
    // Each refusal is stored before the exit: the device row is written
    // once per wrong answer (its failure count), the fifth locks it.
    for (n, guess) in ["000111", "111222", "222333", "333444"].iter().enumerate() {
        let code = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", guess, "--now", "1800000105"]);
        fails(&strs(&verify(&code)), "INVALID_ANSWER");
        assert_eq!(device_version(&pd, &id), 2 + i64::try_from(n).unwrap(), "failure {} stored", n + 1);
    }
    let code = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "444555", "--now", "1800000105"]);
    let o = fails(&strs(&verify(&code)), "LOCKED_OUT");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("device {id} is locked")), "the user is told");
    assert_eq!(device_version(&pd, &id), 6);
    let right = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "493817", "--now", "1800000105"]);
    fails(&strs(&verify(&right)), "LOCKED_OUT");
    // One lock for the answers and the time-based codes.
    let totp = ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", "1800000120"]);
    fails(
        &[
            "portal",
            "verify-totp",
            "--dir",
            p,
            "--account",
            "anna",
            "--device",
            &id,
            "--code",
            &totp,
            "--now",
            "1800000120",
        ],
        "LOCKED_OUT",
    );
    let logged: i64 = portal_db(&pd)
        .query_row("SELECT count(*) FROM events WHERE json LIKE '%\"kind\":\"deviceLocked\"%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 1);
    fails(
        &["portal", "unlock-device", "--dir", p, "--device", &id, "--account", "bob", "--now", "1800000130"],
        "DEVICE_UNKNOWN",
    );
    fails(
        &["portal", "unlock-device", "--dir", p, "--device", "0000000000000000", "--now", "1800000130"],
        "DEVICE_UNKNOWN",
    );
    assert_eq!(
        ok(&["portal", "unlock-device", "--dir", p, "--device", &id, "--now", "1800000130"]),
        format!("unlocked {id} \"Phone\" of anna")
    );
    fails(&["portal", "unlock-device", "--dir", p, "--device", &id, "--now", "1800000131"], "INVALID_STATE");
    assert_eq!(ok(&strs(&verify(&right))), "accepted");
    let _ = std::fs::remove_dir_all(pd);
    let _ = std::fs::remove_dir_all(dd);
}

#[test]
fn race_wrong_and_repeated_answers_are_counted_once_each() {
    let (pd, dd) = (new_portal("race-ch-p"), tmp("race-ch-d"));
    let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
    let id = linked_with_biometrics(p, d, "anna", 1_800_000_000);
    // One right answer sent six times at once: accepted exactly once.
    let (qr, cid) = challenge(p, &["--account", "anna"], "1800000100");
    let code = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "493817", "--now", "1800000101"]);
    let cmd = args(&["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", &code, "--now", "1800000102"]);
    let t = tally(&race(&vec![cmd; 6], &pd).outs);
    assert_eq!(t, [("OK".to_owned(), 1), ("TOKEN_ALREADY_USED".to_owned(), 5)].into_iter().collect());
    let v = device_version(&pd, &id);
    // Twenty wrong answers at once: four counted mismatches, then the lock.
    let (qr, cid) = challenge(p, &["--account", "anna"], "1800000200");
    let wrong = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "000111", "--now", "1800000201"]);
    let cmd = args(&["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", &wrong, "--now", "1800000202"]);
    let t = tally(&race(&vec![cmd; 20], &pd).outs);
    assert_eq!(t, [("INVALID_ANSWER".to_owned(), 4), ("LOCKED_OUT".to_owned(), 16)].into_iter().collect());
    assert_eq!(device_version(&pd, &id), v + 5, "exactly five counted writes");
    println!("race challenge: 6 copies of one answer: 1 accepted; 20 wrong answers: 4 INVALID_ANSWER + 16 LOCKED_OUT");
    let _ = std::fs::remove_dir_all(pd);
    let _ = std::fs::remove_dir_all(dd);
}

#[test]
fn flow_2_links_a_new_device_vouched_for_by_an_existing_authenticator() {
    let (pd, old, new) = (new_portal("f2-p"), tmp("f2-old"), tmp("f2-new"));
    let (p, o, n) = (pd.to_str().unwrap(), old.to_str().unwrap(), new.to_str().unwrap());
    let old_id = linked_with_biometrics(p, o, "anna", 1_800_000_000);
    // Only an authenticator that answered a challenge can vouch.
    fails(
        &["portal", "offer-new-device", "--dir", p, "--account", "anna", "--now", "1800000050"],
        "AUTHENTICATOR_NEVER_USED",
    );
    fails(&["portal", "offer-new-device", "--dir", p, "--account", "nobody", "--now", "1800000050"], "DEVICE_UNKNOWN");
    let (qr, cid) = challenge(p, &["--account", "anna"], "1800000060");
    let code = ok(&["device", "answer", "--dir", o, "--qr", &qr, "--passcode", "493817", "--now", "1800000061"]);
    ok(&["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", &code, "--now", "1800000062"]);

    // The sequence of README.md and `tessera help`.
    let offer = ok(&["portal", "offer-new-device", "--dir", p, "--account", "anna", "--now", "1800000100"]);
    assert_eq!(offer.lines().count(), 1);
    let offer_json =
        json(&ok(&["portal", "offer-new-device", "--dir", p, "--account", "anna", "--now", "1800000100", "--json"]));
    assert!(offer_json["qr_text"].as_str().is_some() && offer_json["offer_id"].as_str().is_some());
    let req = ok(&[
        "device",
        "link",
        "--dir",
        n,
        "--qr",
        &offer,
        "--name",
        "Anna's iPad",
        "--passcode",
        "730241",
        "--now",
        "1800000101",
    ]);
    let acc = json(&ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", "1800000102", "--json"]));
    let new_id = acc["device_id"].as_str().unwrap().to_owned();
    let check = ok(&["device", "link-finish", "--dir", n, "--response", acc["answer"].as_str().unwrap()]);
    // Its check code confirms nothing: this link waits for an authenticator.
    fails(
        &["portal", "link-confirm", "--dir", p, "--account", "anna", "--code", &check, "--now", "1800000103"],
        "TOKEN_UNKNOWN",
    );
    fails(
        &["portal", "link-challenge", "--dir", p, "--device", &"0".repeat(16), "--now", "1800000104"],
        "TOKEN_UNKNOWN",
    );
    let (lqr, lid) =
        challenge_of(&ok(&["portal", "link-challenge", "--dir", p, "--device", &new_id, "--now", "1800000104"]));
    assert_eq!(
        ok(&["device", "show", "--dir", o, "--qr", &lqr, "--now", "1800000105"]),
        "Link the new device \"Anna's iPad\" to anna at \"Example Bank\"? Valid until 1800000404."
    );
    let shown = json(&ok(&["device", "show", "--dir", o, "--qr", &lqr, "--now", "1800000105", "--json"]));
    assert_eq!(
        (&shown["kind"], &shown["device_name"], &shown["device_id"], &shown["challenge_id"]),
        (
            &serde_json::json!("linkDevice"),
            &serde_json::json!("Anna's iPad"),
            &serde_json::json!(new_id),
            &serde_json::json!(lid)
        )
    );
    // The new device cannot read it (it is for the account's authenticators).
    fails(&["device", "show", "--dir", n, "--qr", &lqr, "--now", "1800000105"], "NOT_FOR_THIS_DEVICE");
    let vcode = ok(&["device", "answer", "--dir", o, "--qr", &lqr, "--passcode", "493817", "--now", "1800000106"]);
    let vouch = |code: &str, t: &str| -> Vec<String> {
        args(&["portal", "vouch", "--dir", p, "--device", &new_id, "--challenge", &lid, "--code", code, "--now", t])
    };
    let wrong: String = vcode.bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect();
    let v_before = device_version(&pd, &old_id);
    fails(&strs(&vouch(&wrong, "1800000107")), "INVALID_ANSWER");
    assert_eq!(device_version(&pd, &old_id), v_before + 1, "in the authenticator's vouch budget, not its lockout");
    let attempts: i64 = portal_db(&pd)
        .query_row("SELECT attempts FROM pending_links WHERE device_id = ?1", [&new_id], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 1, "counted on the new device's pending link");
    let o2 = tessera(&strs(&vouch(&vcode, "1800000108")));
    assert!(o2.status.success(), "{}", String::from_utf8_lossy(&o2.stderr));
    assert_eq!(stdout_of(&o2), format!("linked device {new_id} \"Anna's iPad\" to anna"));
    assert!(String::from_utf8_lossy(&o2.stderr).contains("\"Anna's iPad\" was linked to your account"));
    fails(&strs(&vouch(&vcode, "1800000109")), "INVALID_STATE");
    let list = devices_json(p, "anna");
    let names: Vec<(&str, &str)> =
        list.as_array().unwrap().iter().map(|d| (d["name"].as_str().unwrap(), d["status"].as_str().unwrap())).collect();
    assert_eq!(names, [("Phone", "active"), ("Anna's iPad", "active")]);
    let sreq = ok(&["device", "status-request", "--dir", n, "--now", "1800000110"]);
    let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", "1800000110"]);
    assert_eq!(ok(&["device", "status-finish", "--dir", n, "--response", &sans]), "still linked");
    // A QR-code link waits for its check code, not for an authenticator.
    let third = tmp("f2-third");
    let t = third.to_str().unwrap();
    let qr3 = ok(&["portal", "link-offer", "--dir", p, "--account", "anna", "--now", "1800000200"]);
    let req3 = ok(&[
        "device",
        "link",
        "--dir",
        t,
        "--qr",
        &qr3,
        "--name",
        "Third",
        "--passcode",
        "493817",
        "--now",
        "1800000200",
    ]);
    let acc3 = json(&ok(&["portal", "link-accept", "--dir", p, "--request", &req3, "--now", "1800000200", "--json"]));
    fails(
        &[
            "portal",
            "link-challenge",
            "--dir",
            p,
            "--device",
            acc3["device_id"].as_str().unwrap(),
            "--now",
            "1800000201",
        ],
        "INVALID_STATE",
    );
    for x in [pd, old, new, third] {
        let _ = std::fs::remove_dir_all(x);
    }
}

fn challenge_of(out: &str) -> (String, String) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "QR text, then the challenge id: {out}");
    (lines[0].to_owned(), lines[1].to_owned())
}

#[test]
fn device_codes_follow_the_portals_rules() {
    let (pd, dd, d2) = (new_portal("codes-p"), tmp("codes-d"), tmp("codes-d2"));
    let (p, d, e) = (pd.to_str().unwrap(), dd.to_str().unwrap(), d2.to_str().unwrap());
    // `portal offer` is `portal link-offer`.
    let qr = ok(&[
        "portal",
        "offer",
        "--dir",
        p,
        "--account",
        "anna",
        "--code-digits",
        "8",
        "--code-period",
        "60",
        "--code-algorithm",
        "sha1",
        "--now",
        NOW,
    ]);
    let req = ok(&["device", "link", "--dir", d, "--qr", &qr, "--name", "P", "--passcode", "493817", "--now", NOW]);
    let ans = ok(&["portal", "link-accept", "--dir", p, "--request", &req, "--now", NOW]);
    let cc = ok(&["device", "link-finish", "--dir", d, "--response", &ans]);
    ok(&["portal", "link-confirm", "--dir", p, "--account", "anna", "--code", &cc, "--now", NOW]);
    let st = json(&ok(&["device", "status", "--dir", d, "--json"]));
    assert_eq!(st["device_codes"], serde_json::json!({"algorithm": "sha1", "digits": 8, "period_seconds": 60}));
    let id = st["device_id"].as_str().unwrap();
    let code = ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", "1800000060"]);
    assert_eq!(code.len(), 8);
    // The same code for the whole 60-second step.
    assert_eq!(ok(&["device", "totp", "--dir", d, "--passcode", "493817", "--now", "1800000119"]), code);
    let verify = |t: &str| {
        args(&["portal", "verify-totp", "--dir", p, "--account", "anna", "--device", id, "--code", &code, "--now", t])
    };
    assert_eq!(ok(&strs(&verify("1800000060"))), "accepted (step 30000001, drift 0)");
    fails(&strs(&verify("1800000061")), "OTP_REPLAYED");
    // The defaults: SHA-256, 6 digits, 30 s.
    linked_device(p, e, "bob", 1_800_000_000);
    let st = json(&ok(&["device", "status", "--dir", e, "--json"]));
    assert_eq!(st["device_codes"], serde_json::json!({"algorithm": "sha256", "digits": 6, "period_seconds": 30}));
    assert_eq!(ok(&["device", "totp", "--dir", e, "--passcode", "493817", "--now", NOW]).len(), 6);
    // Rules outside 6–8 digits, 15–120 s, or another hash are refused.
    fails(
        &["portal", "link-offer", "--dir", p, "--account", "x", "--code-digits", "9", "--now", NOW],
        "INVALID_DIGITS",
    );
    fails(&["portal", "link-offer", "--dir", p, "--account", "x", "--code-period", "10", "--now", NOW], "INVALID_TIME");
    fails(
        &["portal", "link-offer", "--dir", p, "--account", "x", "--code-algorithm", "md5", "--now", NOW],
        "INVALID_ALGORITHM",
    );
    fails(
        &["portal", "offer-new-device", "--dir", p, "--account", "x", "--code-digits", "5", "--now", NOW],
        "INVALID_DIGITS",
    );
    for x in [pd, dd, d2] {
        let _ = std::fs::remove_dir_all(x);
    }
}

#[test]
fn transaction_challenge_fits_version_8_at_level_m() {
    // Longest portal name, a 40-character payee, amounts up to 15 digits,
    // a real QR encoder. One or two devices fit version 8 (every device of
    // the account is in the QR code; a challenge takes at most 4).
    let pd = tmp("portal-ch-qr");
    let p = pd.to_str().unwrap();
    ok(&["portal", "init", "--dir", p, "--name", "Ministry of Finance!"]);
    let payee = "ACME Energy and Water Supply Company Ltd";
    assert_eq!(payee.chars().count(), 40);
    let mut report = Vec::new();
    let mut devs = Vec::new();
    for n in 1..=4 {
        let d = tmp(&format!("dev-ch-qr-{n}"));
        linked_device(p, d.to_str().unwrap(), "someone@example.org", 1_800_000_000);
        devs.push(d);
        let mut worst = (0, 0);
        let mut typical = (0, 0);
        for amount in ["0.01", "125.50", "999999999999.99", "9999999999999.99", "999999999999.999"] {
            for _ in 0..3 {
                let (qr, _) = challenge(
                    p,
                    &["--account", "someone@example.org", "--amount", amount, "--currency", "EUR", "--payee", payee],
                    NOW,
                );
                let code = qrcode::QrCode::with_error_correction_level(qr.as_bytes(), qrcode::EcLevel::M).unwrap();
                let qrcode::Version::Normal(v) = code.version() else { panic!("{:?}", code.version()) };
                worst = worst.max((v, qr.len()));
                if amount == "125.50" {
                    typical = typical.max((v, qr.len()));
                }
            }
        }
        report.push(format!(
            "{n} device(s): version {} ({} chars) for 125.50, at most version {} ({} chars)",
            typical.0, typical.1, worst.0, worst.1
        ));
        if n <= 2 {
            assert!(worst.0 <= 8, "{n} device(s): version {} for {} chars", worst.0, worst.1);
        }
    }
    println!("transaction challenge QR at level M, 40-character payee: {}", report.join("; "));
    let rendered =
        ok(&["portal", "challenge", "--dir", p, "--account", "someone@example.org", "--render", "--now", NOW]);
    assert!(rendered.lines().count() > 17, "the terminal rendering draws the QR code after the id");
    let _ = std::fs::remove_dir_all(pd);
    for d in devs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// What layout 5 added to the portal's database (flow 3).
const UNDO_LAYOUT_5: &str = "DROP TABLE authenticators; DROP TABLE orders; DROP TABLE activations;
    DROP TABLE credentials; DROP TABLE settings; ALTER TABLE devices DROP COLUMN serial;
    ALTER TABLE devices DROP COLUMN usable_from;";

#[test]
fn earlier_layouts_are_upgraded_in_place() {
    for from in [3, 4] {
        let (pd, dd) = (new_portal(&format!("upgrade-p{from}")), tmp(&format!("upgrade-d{from}")));
        let (p, d) = (pd.to_str().unwrap(), dd.to_str().unwrap());
        let id = linked_with_biometrics(p, d, "anna", 1_800_000_000);
        // As an earlier tessera left them: layout 4 had no activation
        // tables, layout 3 no challenges table either.
        {
            let db = portal_db(&pd);
            db.execute_batch(UNDO_LAYOUT_5).unwrap();
            if from == 3 {
                db.execute_batch("DROP TABLE challenges; ALTER TABLE devices DROP COLUMN locked;").unwrap();
            }
            db.pragma_update(None, "user_version", from).unwrap();
            let dev = rusqlite::Connection::open(dd.join("device.db")).unwrap();
            dev.pragma_update(None, "user_version", from).unwrap();
        }
        let (qr, cid) = challenge(p, &["--account", "anna"], "1800000100");
        let code = ok(&["device", "answer", "--dir", d, "--qr", &qr, "--passcode", "493817", "--now", "1800000101"]);
        assert_eq!(
            ok(&["portal", "verify", "--dir", p, "--challenge", &cid, "--answer", &code, "--now", "1800000102"]),
            "accepted"
        );
        let layout =
            |c: &rusqlite::Connection| -> i64 { c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap() };
        assert_eq!(layout(&portal_db(&pd)), 5);
        assert_eq!(layout(&rusqlite::Connection::open(dd.join("device.db")).unwrap()), 5);
        let listed = devices_json(p, "anna");
        assert_eq!(listed[0]["id"], id);
        assert_eq!(
            (listed[0]["serial"].clone(), listed[0]["usable_from"].clone()),
            (serde_json::Value::Null, serde_json::Value::Null)
        );
        // The upgraded store takes flow 3's rows.
        let file = dd.join("factory.txt");
        let f = file.to_str().unwrap();
        ok(&["token", "new", "--dir", &format!("{d}-token"), "--serial", "TS00012345", "--export", f]);
        assert_eq!(ok(&["portal", "import-devices", "--dir", p, "--file", f, "--now", "1800000200"]), "TS00012345");
        // A layout from the future is refused, not guessed at.
        portal_db(&pd).execute_batch("PRAGMA user_version = 9;").unwrap();
        let o = fails(&["portal", "devices", "--dir", p, "--account", "anna"], "STORAGE");
        assert!(String::from_utf8_lossy(&o.stderr).contains("has layout 9; this tessera reads layout 5"));
        let _ = std::fs::remove_dir_all(pd);
        let _ = std::fs::remove_dir_all(format!("{d}-token"));
        let _ = std::fs::remove_dir_all(dd);
    }
}

#[test]
fn help_documents_the_flows() {
    let help = ok(&["help"]);
    for words in [
        "portal challenge --account A",
        "device show --qr QR",
        "device answer --qr QR",
        "portal verify --challenge ID --answer CODE",
        "portal offer-new-device --account A",
        "portal link-challenge --device NEWID",
        "portal vouch --device NEWID --challenge ID --code CODE",
    ] {
        assert!(help.contains(words), "`tessera help` lacks {words:?}");
    }
    let portal = ok(&["help", "portal"]);
    for cmd in ["challenge", "verify", "unlock-device", "offer-new-device", "link-challenge", "vouch"] {
        assert!(portal.lines().any(|l| l.trim_start().starts_with(cmd)), "`tessera help portal` lacks {cmd}");
    }
    let device = ok(&["help", "device"]);
    for cmd in ["show", "answer", "totp"] {
        assert!(device.lines().any(|l| l.trim_start().starts_with(cmd)), "`tessera help device` lacks {cmd}");
    }
}
