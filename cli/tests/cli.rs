//! The `tessera` binary as a user runs it: exact command forms, outputs,
//! exit codes and `error[CODE]` messages, and the portal/device simulators
//! across separate processes sharing SQLite state.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().expect("run tessera")
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
    ok(&strs(&verify(&code, "1800000300")));
    fails(&strs(&verify(&code, "1800000300")), "OTP_REPLAYED");
    let wrong = ok(&["device", "totp", "--dir", d1s, "--passcode", "111222", "--now", "1800000330"]);
    fails(&strs(&verify(&wrong, "1800000330")), "OTP_MISMATCH");
    // Status while linked, then unlink at the portal and the device wipes.
    let sreq = ok(&["device", "status-request", "--dir", d1s, "--now", "1800000400"]);
    let sans = ok(&["portal", "status", "--dir", p, "--request", &sreq, "--now", "1800000400"]);
    assert_eq!(ok(&["device", "status-finish", "--dir", d1s, "--response", &sans]), "still linked");
    ok(&["portal", "unlink", "--dir", p, "--account", "anna", "--device", &id1, "--now", "1800000500"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["portal", "devices", "--dir", p, "--account", "anna", "--json"])).unwrap();
    assert_eq!(list[0]["status"], "unlinked");
    assert_eq!(list[0]["name"], "Old Pixel");
    assert_eq!(list[0]["last_used_at"], 1_800_000_400u64);
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
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for _ in 0..4 {
        fails(
            &["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", wrong, "--now", NOW],
            "CHECK_CODE_MISMATCH",
        );
    }
    fails(&["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", wrong, "--now", NOW], "LOCKED_OUT");
    fails(&["portal", "link-confirm", "--dir", p, "--account", "eve", "--code", &code, "--now", NOW], "TOKEN_UNKNOWN");
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
        let children: Vec<_> = reqs
            .iter()
            .map(|r| {
                Command::new(env!("CARGO_BIN_EXE_tessera"))
                    .args(["portal", "link-accept", "--dir", p, "--request", r, "--now", NOW])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
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
    assert!(out.contains("DEVICE_REVOKED"));
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
    fails(&["device", "link-finish", "--dir", d, "--response", &ans], "INVALID_STATE");
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
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
