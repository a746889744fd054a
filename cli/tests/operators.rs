//! The `tessera` command for operators (issue 11): secrets from stdin,
//! files and the environment; oathtool's habits (`-w`, checking a typed
//! code, `-v`), RFC 3339 times; `--json` on every command and errors as
//! JSON; exit statuses; QR codes as SVG and PNG files and in a terminal;
//! shell completions and the manual page. Each test runs the binary as a
//! user would, several against Debian's `oathtool` as the peer.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

mod common;

use common::{fails, ok, run, tessera_cmd, tmp};
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// RFC 6238's SHA-1 key ("12345678901234567890").
const KEY_HEX: &str = "3132333435363738393031323334353637383930";
const KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error of a `--json` run: the last line on stderr (after the
/// `error[CODE]: …` line), with nothing new on stdout.
fn err_json(o: &Output) -> Value {
    let err = stderr_of(o);
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    let j = json(&last);
    let code = j["error"]["code"].as_str().unwrap().to_owned();
    if code != "USAGE" {
        assert!(err.contains(&format!("error[{code}]: ")), "{err}");
        assert_eq!(j["error"]["message"].as_str().map(str::is_empty), Some(false), "{err}");
    }
    j
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// `tessera args` with `stdin` on standard input and `env` set.
fn run_with(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut c = tessera_cmd();
    c.args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok_with(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> String {
    let o = run_with(args, stdin, env);
    assert!(o.status.success(), "tessera {args:?} failed: {}", stderr_of(&o));
    stdout_of(&o)
}

/// Debian's `oathtool` (the interop peer; scripts/setup.sh installs it).
fn oathtool(args: &[&str]) -> Output {
    Command::new("oathtool").args(args).output().expect("oathtool is required (scripts/setup.sh installs it)")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Secrets: VALUE, `-`, `@FILE`, `env:NAME`.

#[test]
fn otp_secrets_come_from_stdin_files_and_the_environment() {
    let dir = tmp("ops", "secrets");
    let totp = |secret_args: &[&str]| -> Vec<String> {
        ["otp", "totp"]
            .iter()
            .chain(secret_args)
            .chain(&["--time", "59", "--digits", "8"])
            .map(|s| (*s).to_owned())
            .collect()
    };
    let expect = "94287082";
    let file = write(&dir, "secret.txt", &format!("{KEY_B32}\n"));
    let crlf = write(&dir, "secret-crlf.txt", &format!("{KEY_HEX}\r\n"));
    for (args, stdin, env) in [
        (totp(&["--secret", KEY_B32]), "", vec![]),
        (totp(&["--secret", "-"]), &format!("{KEY_B32}\n") as &str, vec![]),
        (totp(&["--secret-hex", "-"]), &format!("{KEY_HEX}\r\n") as &str, vec![]),
        (totp(&["--secret", &format!("@{file}")]), "", vec![]),
        (totp(&["--secret-hex", &format!("@{crlf}")]), "", vec![]),
        (totp(&["--secret", "env:OPS_TEST_SECRET"]), "", vec![("OPS_TEST_SECRET", KEY_B32)]),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(ok_with(&a, stdin, &env), expect, "{a:?}");
    }
    // HOTP, OCRA's key and PIN, and the URI of `otp uri` (which holds a secret).
    let hex_file = write(&dir, "key.hex", &format!("{KEY_HEX}\n"));
    assert_eq!(ok(&["otp", "hotp", "--secret-hex", &format!("@{hex_file}"), "--counter", "0"]), "755224");
    let ocra = ["otp", "ocra", "--suite", "OCRA-1:HOTP-SHA1-6:QN08", "--question", "00000000"];
    assert_eq!(ok(&[&ocra[..], &["--key", &format!("@{hex_file}")]].concat()), "237653");
    let pin_suite = "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1";
    let key32 = "3132333435363738393031323334353637383930313233343536373839303132";
    let pin = ["otp", "ocra", "--suite", pin_suite, "--key", key32, "--counter", "0", "--question", "12345678"];
    assert_eq!(
        ok_with(&[&pin[..], &["--password", "env:OPS_PIN"]].concat(), "", &[("OPS_PIN", "1234")]),
        ok(&[&pin[..], &["--password", "1234"]].concat())
    );
    let uri = format!("otpauth://totp/ACME:anna?secret={KEY_B32}&digits=8&issuer=ACME");
    assert_eq!(ok_with(&["otp", "uri", "-", "--time", "59"], &format!("{uri}\n"), &[]), expect);
    let uri_file = write(&dir, "uri.txt", &uri);
    assert_eq!(ok(&["otp", "uri", &format!("@{uri_file}"), "--time", "59"]), expect);

    // Unreadable sources: INVALID_INPUT naming the option and the source,
    // never the secret.
    let missing = dir.join("missing.txt");
    let o = fails(&["otp", "totp", "--secret", &format!("@{}", missing.display())], "INVALID_INPUT");
    assert!(stderr_of(&o).contains(&format!("--secret @{}: cannot read the file", missing.display())), "{o:?}");
    let o = fails(&["otp", "totp", "--secret", "env:OPS_UNSET_VARIABLE"], "INVALID_INPUT");
    assert!(stderr_of(&o)
        .contains("--secret env:OPS_UNSET_VARIABLE: the environment variable OPS_UNSET_VARIABLE is not set"));
    let o = run_with(&["otp", "totp", "--secret", "-"], "", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr_of(&o).contains("error[INVALID_INPUT]: --secret -: standard input is empty"), "{o:?}");
    let empty = write(&dir, "empty.txt", "\n");
    fails(&["otp", "totp", "--secret", &format!("@{empty}")], "INVALID_INPUT");
    fails(&["otp", "totp", "--secret", &format!("@{}", dir.display())], "INVALID_INPUT");
    let o = run_with(&["otp", "ocra", "--suite", pin_suite, "--key", "-", "--password", "-"], "x\ny\n", &[]);
    assert!(stderr_of(&o).contains("standard input is already read by another option"), "{o:?}");
    // A wrong secret from a file, stdin or a variable: the error names the
    // option, and never shows the secret.
    let wrong = "SECRETVALUE1!!";
    let wrong_file = write(&dir, "wrong.txt", wrong);
    for (args, stdin, env) in [
        (vec!["otp", "totp", "--secret", "-"], format!("{wrong}\n"), vec![]),
        (vec!["otp", "totp", "--secret", &format!("@{wrong_file}")], String::new(), vec![]),
        (vec!["otp", "totp", "--secret", "env:OPS_WRONG", "--json"], String::new(), vec![("OPS_WRONG", wrong)]),
        (vec!["otp", "totp", "--secret-hex", "-"], format!("{wrong}\n"), vec![]),
    ] {
        let o = run_with(&args, &stdin, &env);
        assert_eq!(o.status.code(), Some(1));
        let (out, err) = (stdout_of(&o), stderr_of(&o));
        assert!(err.contains("error[INVALID_SECRET]: "), "{err}");
        assert!(!err.contains("SECRETVALUE") && !out.contains("SECRETVALUE"), "{err} {out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn passcodes_come_from_stdin_files_and_the_environment() {
    let dir = tmp("ops", "passcodes");
    let (p, d) = (dir.join("p"), dir.join("d"));
    let (p, d) = (p.to_str().unwrap(), d.to_str().unwrap());
    let now = ["--now", "2027-01-15T08:00:00Z"];
    ok(&[&["portal", "init", "--dir", p, "--name", "Example Bank"][..], &now].concat());
    let qr = ok(&[&["portal", "link-offer", "--dir", p, "--account", "anna"][..], &now].concat());
    let pass = write(&dir, "passcode", "493817\n");
    let req = ok(&[
        &["device", "link", "--dir", d, "--qr", &qr, "--name", "Pixel", "--passcode", &format!("@{pass}")][..],
        &now,
    ]
    .concat());
    let o = run(&[&["portal", "link-accept", "--dir", p, "--request", &req][..], &now].concat());
    assert!(o.status.success(), "{}", stderr_of(&o));
    let ans = stdout_of(&o);
    // Notes for people give times in RFC 3339 too.
    assert!(stderr_of(&o).contains("waits for its check code until 2027-01-15T08:10:00Z (1800000600)"), "{o:?}");
    let code = ok(&[&["device", "link-finish", "--dir", d, "--response", &ans][..], &now].concat());
    ok(&[&["portal", "link-confirm", "--dir", p, "--account", "anna", "--code", &code][..], &now].concat());
    // The passcode set from the file is the one the device holds: the
    // same code from stdin, a variable and the command line.
    let totp = ["device", "totp", "--dir", d, "--now", "1800000000", "--passcode"];
    let plain = ok(&[&totp[..], &["493817"]].concat());
    assert_eq!(ok_with(&[&totp[..], &["-"]].concat(), "493817\n", &[]), plain);
    assert_eq!(ok_with(&[&totp[..], &["env:OPS_PASSCODE"]].concat(), "", &[("OPS_PASSCODE", "493817")]), plain);
    // A challenge answered with the passcode from stdin is accepted.
    let png = dir.join("challenge.png");
    let png = png.to_str().unwrap();
    let out = ok(&[&["portal", "challenge", "--dir", p, "--account", "anna", "--qr-out", png][..], &now].concat());
    let (cqr, cid) = out.split_once('\n').unwrap();
    assert_eq!(png_modules(&std::fs::read(png).unwrap()), modules(cqr), "--qr-out of a challenge");
    let answer = ok_with(
        &[&["device", "answer", "--dir", d, "--qr", cqr, "--passcode", "-"][..], &now].concat(),
        "493817\n",
        &[],
    );
    let v = ok(&[&["portal", "verify", "--dir", p, "--challenge", cid, "--answer", &answer][..], &now].concat());
    assert_eq!(v, "accepted");
    // --db from a file (a store URL may hold a password).
    let db_file = write(&dir, "db-url", &format!("sqlite:{p}/portal.db\n"));
    let j =
        json(&ok(&["portal", "devices", "--dir", p, "--account", "anna", "--db", &format!("@{db_file}"), "--json"]));
    assert_eq!(j.as_array().map(Vec::len), Some(1), "{j}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// oathtool's habits.

#[test]
fn look_around_windows_print_what_oathtool_prints() {
    for (ours, theirs) in [
        (
            vec!["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", "-w", "3"],
            vec!["--hotp", "-c", "5", "-w", "3", KEY_HEX],
        ),
        (
            vec!["otp", "hotp", "--secret-hex", KEY_HEX, "--counter", "0", "--window", "9", "--digits", "8"],
            vec!["--hotp", "-c", "0", "-w", "9", "-d", "8", KEY_HEX],
        ),
        (
            vec!["otp", "totp", "--secret-hex", KEY_HEX, "--now", "1800000000", "-w", "2"],
            vec!["--totp", "-N", "@1800000000", "-w", "2", KEY_HEX],
        ),
        (
            vec!["otp", "totp", "--secret-hex", KEY_HEX, "-N", "2027-01-15T10:00:00+02:00", "-w", "4", "-s", "60"],
            vec!["--totp", "-N", "@1800000000", "-w", "4", "-s", "60", KEY_HEX],
        ),
        (
            vec!["otp", "totp", "--secret-hex", KEY_HEX, "--time", "1111111109", "-w", "1", "--algorithm", "sha256"],
            vec!["--totp=sha256", "-N", "@1111111109", "-w", "1", KEY_HEX],
        ),
    ] {
        let o = oathtool(&theirs);
        assert!(o.status.success(), "oathtool {theirs:?}");
        let theirs_out = stdout_of(&o);
        assert!(theirs_out.lines().count() >= 2, "{theirs_out}");
        assert_eq!(ok(&ours), theirs_out, "{ours:?}");
    }
    // JSON: every code with its counter or step.
    let j = json(&ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", "-w", "3", "--json"]));
    let codes = j["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 4);
    assert_eq!((codes[2]["counter"].as_i64(), j["code"].as_str()), (Some(7), codes[0]["code"].as_str()));
    let j = json(&ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--now", "1800000000", "-w", "2", "--json"]));
    assert_eq!(j["codes"][2]["step"], 60_000_002);
    assert_eq!(j["step_start_rfc3339"], "2027-01-15T08:00:00Z");
    // Limits: a window past the last counter, or too large.
    fails(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "9223372036854775807", "-w", "1"], "INVALID_INPUT");
    fails(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "0", "-w", "10001"], "INVALID_INPUT");
}

#[test]
fn a_typed_code_exits_0_naming_its_counter_or_step_and_1_otherwise() {
    // HOTP: oathtool finds the code of counter 7 two counters after 5.
    let code7 = stdout_of(&oathtool(&["--hotp", "-c", "7", KEY_HEX]));
    let theirs = oathtool(&["--hotp", "-c", "5", "-w", "3", KEY_HEX, &code7]);
    assert_eq!((theirs.status.code(), stdout_of(&theirs).as_str()), (Some(0), "2"));
    let hotp = ["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", "-w", "3"];
    assert_eq!(ok(&[&hotp[..], &[code7.as_str()]].concat()), "counter 7 (+2)");
    let j = json(&ok(&[&hotp[..], &[code7.as_str(), "--json"]].concat()));
    assert_eq!((j["valid"].as_bool(), j["counter"].as_i64(), j["offset"].as_i64()), (Some(true), Some(7), Some(2)));
    // Outside the window: oathtool fails, and so do we (exit 1, OTP_MISMATCH).
    let code9 = stdout_of(&oathtool(&["--hotp", "-c", "9", KEY_HEX]));
    assert!(!oathtool(&["--hotp", "-c", "5", "-w", "3", KEY_HEX, &code9]).status.success());
    let o = fails(&[&hotp[..], &[code9.as_str()]].concat(), "OTP_MISMATCH");
    assert!(stderr_of(&o).contains("the code matches no counter in 5..8"), "{}", stderr_of(&o));
    assert_eq!(stdout_of(&o), "");
    let o = fails(&[&hotp[..], &[code9.as_str(), "--json"]].concat(), "OTP_MISMATCH");
    assert_eq!(err_json(&o)["error"]["code"], "OTP_MISMATCH");
    assert_eq!(stdout_of(&o), "");
    // Without -w only the counter itself.
    assert_eq!(ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "7", &code7]), "counter 7 (+0)");
    fails(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", &code7], "OTP_MISMATCH");
    // A code of the wrong shape is bad input, not a mismatch.
    fails(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", "12345"], "INVALID_INPUT");
    fails(&["otp", "hotp", "--secret-hex", KEY_HEX, "-c", "5", "12345a"], "INVALID_INPUT");

    // TOTP: the window looks either side (as oathtool's does).
    let t = "1800000000";
    let before = stdout_of(&oathtool(&["--totp", "-N", "@1799999970", KEY_HEX]));
    let after = stdout_of(&oathtool(&["--totp", "-N", "@1800000030", KEY_HEX]));
    for c in [&before, &after] {
        assert!(oathtool(&["--totp", "-N", &format!("@{t}"), "-w", "1", KEY_HEX, c]).status.success());
    }
    let totp = ["otp", "totp", "--secret-hex", KEY_HEX, "--now", t, "-w", "1"];
    assert_eq!(ok(&[&totp[..], &[before.as_str()]].concat()), "step 59999999 (-1) from 2027-01-15T07:59:30Z");
    assert_eq!(ok(&[&totp[..], &[after.as_str()]].concat()), "step 60000001 (+1) from 2027-01-15T08:00:30Z");
    let j = json(&ok(&[&totp[..], &[after.as_str(), "--json"]].concat()));
    assert_eq!((j["step"].as_i64(), j["offset"].as_i64()), (Some(60_000_001), Some(1)));
    assert_eq!(j["step_start_rfc3339"], "2027-01-15T08:00:30Z");
    // Without -w: only the current step.
    let o = fails(&["otp", "totp", "--secret-hex", KEY_HEX, "--now", t, &after], "OTP_MISMATCH");
    assert!(stderr_of(&o).contains("matches no time step in 60000000..60000000"), "{}", stderr_of(&o));
}

#[test]
fn show_step_prints_the_step_its_start_and_its_size() {
    let out = ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--now", "2027-01-15T08:00:10Z", "-v"]);
    let theirs = stdout_of(&oathtool(&["-v", "--totp", "-N", "@1800000010", KEY_HEX]));
    // oathtool -v: "Counter: 0x3938700 (60000000)", "Step size (seconds): 30".
    assert!(theirs.contains("Counter: 0x3938700 (60000000)") && theirs.contains("Step size (seconds): 30"));
    assert_eq!(
        out,
        "Step size (seconds): 30\n\
         Current time: 2027-01-15T08:00:10Z (1800000010)\n\
         Step: 60000000 (0x3938700)\n\
         Step start: 2027-01-15T08:00:00Z (1800000000)\n\
         Step end: 2027-01-15T08:00:30Z (1800000030)\n\n\
         768147"
    );
    assert_eq!(theirs.lines().last(), out.lines().last());
    assert!(!out.contains(KEY_HEX) && !out.contains(KEY_B32), "the secret is never shown");
    let out = ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--now", "1800000010", "--show-step", "--period", "60"]);
    assert!(out.contains("Step size (seconds): 60\n") && out.contains("Step: 30000000 (0x1c9c380)\n"), "{out}");
}

#[test]
fn times_are_unix_seconds_or_rfc_3339() {
    let at = |t: &str| ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--time", t, "--digits", "8"]);
    let unix = at("1800000000");
    for t in
        ["2027-01-15T08:00:00Z", "2027-01-15T10:00:00+02:00", "2027-01-15T03:30:00-04:30", "2027-01-15t08:00:00.5z"]
    {
        assert_eq!(at(t), unix, "{t}");
    }
    // Leap days: 2028-02-29 exists, 2027-02-29 and 2100-02-29 do not.
    let leap = json(&ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--now", "2028-02-29T23:59:59Z", "--json"]));
    assert_eq!(
        (leap["time"].as_u64(), leap["time_rfc3339"].as_str()),
        (Some(1_835_481_599), Some("2028-02-29T23:59:59Z"))
    );
    for bad in
        ["2027-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2027-01-15T25:00:00Z", "2027-01-15T08:00:00", "tomorrow"]
    {
        let o = fails(&["otp", "totp", "--secret-hex", KEY_HEX, "--time", bad], "INVALID_TIME");
        assert!(stderr_of(&o).contains(&format!("--time {bad:?}")), "{}", stderr_of(&o));
        let o = fails(&["otp", "totp", "--secret-hex", KEY_HEX, "--time", bad, "--json"], "INVALID_TIME");
        assert_eq!(err_json(&o)["error"]["code"], "INVALID_TIME");
    }
    // Portal and device commands' --now, and the demo's.
    let dir = tmp("ops", "times");
    let p = dir.join("p");
    let p = p.to_str().unwrap();
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank"]);
    let j = json(&ok(&[
        "portal",
        "link-offer",
        "--dir",
        p,
        "--account",
        "a",
        "--now",
        "2027-01-15T09:00:00+01:00",
        "--json",
    ]));
    let exp = j["expires_at"].as_u64().unwrap();
    assert!((1_800_000_000..=1_800_000_000 + 900).contains(&exp), "{j}");
    fails(&["portal", "link-offer", "--dir", p, "--account", "a", "--now", "2027-13-01T00:00:00Z"], "INVALID_TIME");
    fails(&["demo", "--no-qr", "--now", "2027-02-30T00:00:00Z"], "INVALID_TIME");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// --json everywhere, errors as JSON, exit statuses.

/// The leaf commands of `tessera` (from `--help`'s command lists).
fn leaf_commands(path: &[String]) -> Vec<Vec<String>> {
    let help = ok(&[path.iter().map(String::as_str).collect::<Vec<_>>(), vec!["--help"]].concat());
    let Some(list) = help.split("Commands:\n").nth(1) else { return vec![path.to_vec()] };
    let mut leaves = Vec::new();
    for line in list.lines().take_while(|l| l.starts_with("  ")) {
        let name = line.split_whitespace().next().unwrap();
        if name == "help" {
            continue;
        }
        let mut p = path.to_vec();
        p.push(name.to_owned());
        leaves.extend(leaf_commands(&p));
    }
    leaves
}

#[test]
fn every_command_takes_json() {
    let leaves = leaf_commands(&[]);
    assert!(leaves.len() > 50, "{leaves:?}");
    for leaf in &leaves {
        let words: Vec<&str> = leaf.iter().map(String::as_str).collect();
        if matches!(words[..], ["completions"] | ["man"]) {
            continue; // they print a script or a page, not data
        }
        let help = ok(&[&words[..], &["--help"]].concat());
        assert!(help.contains("--json"), "`tessera {}` has no --json", words.join(" "));
    }
}

#[test]
fn json_output_of_otp_commands_and_their_errors() {
    let dir = tmp("ops", "json");
    std::fs::create_dir_all(&dir).unwrap();
    let j = json(&ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "--counter", "1", "--json"]));
    assert_eq!((j["code"].as_str(), j["counter"].as_i64()), (Some("287082"), Some(1)));
    let j = json(&ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--time", "59", "--digits", "8", "--json"]));
    assert_eq!((j["code"].as_str(), j["step"].as_i64(), j["period"].as_i64()), (Some("94287082"), Some(1), Some(30)));
    let j = json(&ok(&[
        "otp",
        "ocra",
        "--suite",
        "OCRA-1:HOTP-SHA1-6:QN08",
        "--key",
        KEY_HEX,
        "--question",
        "00000000",
        "--json",
    ]));
    assert_eq!(j["response"], "237653");
    let uri = format!("otpauth://totp/ACME:anna?secret={KEY_B32}&digits=8&issuer=ACME");
    assert_eq!(json(&ok(&["otp", "uri", &uri, "--time", "59", "--json"]))["code"], "94287082");
    let j = json(&ok(&["otp", "new", "--issuer", "ACME", "--account", "anna", "--json"]));
    assert!(j["uri"].as_str().unwrap().starts_with("otpauth://totp/ACME:anna?secret="), "{j}");
    let state = dir.join("state.json");
    let s = state.to_str().unwrap();
    let code = ok(&["otp", "totp", "--secret-hex", KEY_HEX, "--time", "1800000000"]);
    let verify = ["otp", "verify-totp", "--secret-hex", KEY_HEX, "--time", "1800000000", "--state", s, "--json"];
    let j = json(&ok(&[&verify[..], &["--code", &code, "--new"]].concat()));
    assert_eq!((j["verdict"]["kind"].as_str(), j["matched"].as_i64()), (Some("accepted"), Some(60_000_000)));
    // A refused code: one document, the verdict with the error in it.
    let o = fails(&[&verify[..], &["--code", &code]].concat(), "OTP_REPLAYED");
    let out = stdout_of(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let j = json(&out);
    assert_eq!(
        (j["verdict"]["code"].as_str(), j["error"]["code"].as_str()),
        (Some("OTP_REPLAYED"), Some("OTP_REPLAYED"))
    );
    assert!(j["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let j = json(&ok(&["otp", "unlock", "--state", s, "--json"]));
    assert_eq!(j["unlocked"], true);
    let hotp_state = dir.join("hotp.json");
    let h = hotp_state.to_str().unwrap();
    let c0 = ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "--counter", "0"]);
    let j = json(&ok(&["otp", "verify-hotp", "--secret-hex", KEY_HEX, "--code", &c0, "--state", h, "--new", "--json"]));
    assert_eq!(j["matched"], 0);
    let (c20, c21) = (
        ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "--counter", "20"]),
        ok(&["otp", "hotp", "--secret-hex", KEY_HEX, "--counter", "21"]),
    );
    let j = json(&ok(&[
        "otp",
        "resync-hotp",
        "--secret-hex",
        KEY_HEX,
        "--code",
        &c20,
        "--next-code",
        &c21,
        "--search-window",
        "100",
        "--state",
        h,
        "--json",
    ]));
    assert_eq!(j["verdict"]["kind"], "accepted");
    // The refusal's JSON line on stderr too.
    assert_eq!(err_json(&o)["error"]["code"], "OTP_REPLAYED");
    // A plain error: the error[CODE] line on stderr as always, then
    // `{"error": {"code", "message"}}`; nothing on stdout.
    let o = fails(&["otp", "hotp", "--secret", "not base32!", "--counter", "1", "--json"], "INVALID_SECRET");
    let j = err_json(&o);
    assert_eq!(j["error"]["code"], "INVALID_SECRET");
    assert_eq!(j.as_object().unwrap().len(), 1);
    assert_eq!(stdout_of(&o), "");
    let o = fails(&["otp", "unlock", "--state", dir.join("none.json").to_str().unwrap(), "--json"], "INVALID_STATE");
    assert_eq!(err_json(&o)["error"]["code"], "INVALID_STATE");
    // Without --json, only the error[CODE] line.
    let o = fails(&["otp", "hotp", "--secret", "not base32!", "--counter", "1"], "INVALID_SECRET");
    assert_eq!(stdout_of(&o), "");
    assert_eq!(stderr_of(&o).lines().count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_output_of_device_portal_demo_serve_and_bench() {
    let dir = tmp("ops", "json2");
    let (p, d) = (dir.join("p"), dir.join("d"));
    let (p, d) = (p.to_str().unwrap(), d.to_str().unwrap());
    // An error before anything exists: the document and error[CODE].
    let o = fails(&["portal", "devices", "--dir", p, "--account", "a", "--json"], "STORAGE");
    assert_eq!(err_json(&o)["error"]["code"], "STORAGE");
    let o = fails(&["device", "totp", "--dir", d, "--passcode", "1", "--json"], "DEVICE_NOT_LINKED");
    assert_eq!(err_json(&o)["error"]["code"], "DEVICE_NOT_LINKED");
    let o = fails(&["token", "info", "--dir", d, "--json"], "INVALID_STATE");
    assert_eq!(err_json(&o)["error"]["code"], "INVALID_STATE");
    // A portal refusal: its document carries the verdict and the error.
    ok(&["portal", "init", "--dir", p, "--name", "Example Bank", "--json"]);
    let o =
        fails(&["portal", "link-confirm", "--dir", p, "--account", "a", "--code", "123456", "--json"], "TOKEN_UNKNOWN");
    let out = stdout_of(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(json(&out)["error"]["code"], "TOKEN_UNKNOWN");
    assert_eq!(json(&out)["verdict"]["code"], "TOKEN_UNKNOWN");
    assert_eq!(err_json(&o)["error"]["code"], "TOKEN_UNKNOWN");
    // The demo: narration on stderr, one document on stdout.
    let o = run(&["demo", "--no-qr", "--now", "1800000000", "--json"]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let j = json(&stdout_of(&o));
    assert_eq!((j["ok"].as_bool(), j["start"].as_u64()), (Some(true), Some(1_800_000_000)));
    assert_eq!(j["sections"].as_array().unwrap().len(), 11, "{j}");
    assert!(j["refusals"].as_array().unwrap().iter().any(|r| r["code"] == "OTP_REPLAYED"), "{j}");
    assert!(stderr_of(&o).contains("-- 1. Plain TOTP"));
    // serve --json: its first line names the address.
    let mut child = tessera_cmd()
        .args(["serve", "--dir", p, "--listen", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(json(&line)["listening"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{line}");
    // bench refuses bad options the same way.
    let o = fails(&["bench", "--duration", "0s", "--json"], "INVALID_INPUT");
    assert_eq!(err_json(&o)["error"]["code"], "INVALID_INPUT");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn usage_errors_exit_2_and_say_so_in_json() {
    for args in [
        &["otp", "hotp", "--counter", "1"][..],
        &["otp", "totp", "--secret", KEY_B32, "--no-such-option"],
        &["portal", "link-offer", "--account", "a"],
        &["no-such-command"],
        &["otp", "hotp", "--secret", KEY_B32, "--counter", "x"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr_of(&o).starts_with("error: "), "{}", stderr_of(&o));
        assert_eq!(stdout_of(&o), "");
        let o = run(&[args, &["--json"]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout_of(&o), "");
        assert!(stderr_of(&o).starts_with("error: "), "{}", stderr_of(&o));
        let j = err_json(&o);
        assert_eq!(j["error"]["code"], "USAGE", "{args:?}");
        assert!(!j["error"]["message"].as_str().unwrap().is_empty());
    }
    // Help and version are not errors.
    for args in [&["--help"][..], &["--version"], &["otp", "totp", "--help"], &["help", "portal"]] {
        assert_eq!(run(args).status.code(), Some(0), "{args:?}");
    }
    // The exit statuses and secret forms are in `--help`.
    let help = ok(&["--help"]);
    for words in ["Exit status: 0 success; 1 an error", "2 a usage error", "@FILE", "env:NAME", "RFC 3339"] {
        assert!(help.contains(words), "`tessera --help` lacks {words:?}");
    }
}

#[test]
fn error_messages_name_cli_flags() {
    let dir = tmp("ops", "flags");
    std::fs::create_dir_all(&dir).unwrap();
    let o = fails(
        &["otp", "uri", "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"],
        "SECRET_TOO_SHORT",
    );
    let err = stderr_of(&o);
    assert!(err.contains("--allow-short-secret") && !err.contains("AllowShort"), "{err}");
    let s = dir.join("s.json");
    let verify =
        ["otp", "verify-totp", "--secret-hex", KEY_HEX, "--code", "000000", "--new", "--state", s.to_str().unwrap()];
    let o = fails(&[&verify[..], &["--lock-seconds", "0"]].concat(), "INVALID_INPUT");
    assert!(stderr_of(&o).contains("--lock-seconds must be") && !stderr_of(&o).contains("lockSeconds"), "{o:?}");
    let o2 = fails(&[&verify[..], &["--max-failures=-1"]].concat(), "INVALID_INPUT");
    assert!(stderr_of(&o2).contains("--max-failures must not be negative"), "{}", stderr_of(&o2));
    // No camelCase or CamelCase identifier of the layers below in any of these.
    let camel = |w: &str| w.chars().skip(1).any(char::is_uppercase) && w.chars().any(char::is_lowercase);
    for e in [err, stderr_of(&o), stderr_of(&o2)] {
        let text = e.trim_start_matches("error[").split_once("]: ").unwrap().1.to_owned();
        assert!(!text.split(|c: char| !c.is_alphanumeric()).any(camel), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// QR codes: files and terminals.

/// The modules of `text`'s QR code (level M) with a 4-module quiet zone.
fn modules(text: &str) -> Vec<Vec<bool>> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).unwrap();
    let w = code.width();
    let colors = code.to_colors();
    let mut g = vec![vec![false; w + 8]; w + 8];
    for (i, c) in colors.iter().enumerate() {
        g[i / w + 4][i % w + 4] = *c == qrcode::Color::Dark;
    }
    g
}

/// A PNG decoded (an 8-bit greyscale image), sampled at each module's centre.
fn png_modules(bytes: &[u8]) -> Vec<Vec<bool>> {
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Grayscale, png::BitDepth::Eight));
    assert_eq!(info.width, info.height);
    assert_eq!(info.width % 8, 0);
    let n = (info.width / 8) as usize;
    let w = info.width as usize;
    (0..n).map(|y| (0..n).map(|x| buf[(y * 8 + 4) * w + x * 8 + 4] < 128).collect()).collect()
}

/// The PNG's chunks, checked by hand: signature, CRC-32 of each chunk,
/// and a zlib stream whose Adler-32 matches the raw scanlines.
fn check_png_by_hand(bytes: &[u8]) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let crc = |data: &[u8]| {
        let mut c = 0xffff_ffffu32;
        for b in data {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    };
    let mut at = 8;
    let mut kinds = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let body = &bytes[at + 4..at + 8 + len];
        let stored = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc(body), stored, "CRC of chunk {:?}", String::from_utf8_lossy(&body[..4]));
        kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
        at += 12 + len;
    }
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
    assert_eq!(kinds.last().map(String::as_str), Some("IEND"));
    assert!(kinds.iter().any(|k| k == "IDAT"));
}

#[test]
fn qr_codes_are_written_as_svg_and_png_files() {
    let dir = tmp("ops", "qr");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    // otp new: the URI's QR code, PNG and SVG.
    let uri = ok(&["otp", "new", "--issuer", "ACME", "--account", "anna", "--no-qr", "--qr-out", &path("new.png")]);
    let png = std::fs::read(path("new.png")).unwrap();
    check_png_by_hand(&png);
    assert_eq!(png_modules(&png), modules(&uri), "the PNG is the URI's QR code");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path("new.png")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "it holds the secret");
        // A file that was there, readable by everyone, is made owner-only
        // before the secret goes in.
        std::fs::write(path("old.png"), b"old").unwrap();
        std::fs::set_permissions(path("old.png"), std::fs::Permissions::from_mode(0o644)).unwrap();
        ok(&["otp", "new", "--issuer", "ACME", "--account", "anna", "--no-qr", "--qr-out", &path("old.png")]);
        let mode = std::fs::metadata(path("old.png")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an existing file is made owner-only");
    }
    let j = json(&ok(&["otp", "new", "--issuer", "ACME", "--account", "anna", "--qr-out", &path("new.SVG"), "--json"]));
    let svg = std::fs::read_to_string(path("new.SVG")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("</svg>") && svg.contains("#000"), "{svg}");
    assert_eq!(j["qr_out"], path("new.SVG"));
    // Portal commands that show a QR code.
    let p = path("p");
    ok(&["portal", "init", "--dir", &p, "--name", "Example Bank"]);
    let qr = ok(&["portal", "link-offer", "--dir", &p, "--account", "a", "--qr-out", &path("offer.png")]);
    assert_eq!(png_modules(&std::fs::read(path("offer.png")).unwrap()), modules(&qr));
    let j = json(&ok(&["portal", "link-offer", "--dir", &p, "--account", "b", "--qr-out", &path("o2.svg"), "--json"]));
    assert!(j["qr_text"].is_string() && std::fs::read_to_string(path("o2.svg")).unwrap().starts_with("<svg"));
    // A file name without .svg or .png, or a directory that does not exist.
    let o = fails(&["otp", "new", "--issuer", "A", "--account", "b", "--qr-out", &path("qr.txt")], "INVALID_INPUT");
    assert!(stderr_of(&o).contains("must end in .svg or .png"));
    fails(&["otp", "new", "--issuer", "A", "--account", "b", "--qr-out", &path("no/such/dir/qr.png")], "STORAGE");
    // The demo writes each of its QR codes, numbered.
    let out = ok(&["demo", "--no-qr", "--now", "1800000000", "--qr-out", &path("demo.png")]);
    let written: Vec<&str> = out.lines().filter_map(|l| l.trim().strip_prefix("QR code written to ")).collect();
    assert!(written.len() >= 5, "{out}");
    assert_eq!(written[0], path("demo-1.png"));
    let first_qr = out.lines().find(|l| l.trim_start().starts_with("TS")).map(str::trim).unwrap();
    assert_eq!(png_modules(&std::fs::read(path("demo-1.png")).unwrap()), modules(first_qr), "the link offer's QR code");
    for w in &written {
        check_png_by_hand(&std::fs::read(w).unwrap());
    }
    fails(&["demo", "--no-qr", "--qr-out", &path("demo.gif")], "INVALID_INPUT");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn terminal_qr_codes_set_both_colours_and_a_quiet_zone() {
    let out = ok(&["otp", "new", "--issuer", "ACME", "--account", "anna"]);
    let (uri, drawing) = out.split_once('\n').unwrap();
    let g = modules(uri);
    let lines: Vec<&str> = drawing.lines().collect();
    assert_eq!(lines.len(), g.len().div_ceil(2));
    let (dark_fg, light_fg, dark_bg, light_bg) = ("\x1b[38;5;16;", "\x1b[38;5;231;", ";48;5;16m", ";48;5;231m");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.ends_with("\x1b[0m"), "line {i} resets the colours");
        // Every cell sets both colours: foreground (upper module) and background (lower).
        let cells: Vec<&str> = line.trim_end_matches("\x1b[0m").split('\u{2580}').filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.len(), g.len(), "line {i}");
        for (x, cell) in cells.iter().enumerate() {
            let top = g[2 * i][x];
            let bottom = g.get(2 * i + 1).is_some_and(|r| r[x]);
            assert!(cell.starts_with(if top { dark_fg } else { light_fg }), "line {i} cell {x}: {cell:?}");
            assert!(cell.ends_with(if bottom { dark_bg } else { light_bg }), "line {i} cell {x}: {cell:?}");
        }
    }
    // The quiet zone: the first two lines are white on white.
    assert!(lines[0]
        .trim_end_matches("\x1b[0m")
        .split('\u{2580}')
        .filter(|c| !c.is_empty())
        .all(|c| c == "\x1b[38;5;231;48;5;231m"));
}

// ---------------------------------------------------------------------------
// Shell completions and the manual page.

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tmp("ops", "completions");
    std::fs::create_dir_all(&dir).unwrap();
    for (shell, marker, checker) in [
        ("bash", "complete -F _tessera", Some(("bash", "-n"))),
        ("zsh", "#compdef tessera", Some(("zsh", "-n"))),
        ("fish", "complete -c tessera", Some(("fish", "--no-execute"))),
    ] {
        let script = ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for word in ["otp", "verify-totp", "link-offer", "activation-next", "show-step", "qr-out", "completions"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        // The shell itself reads the script, where it is installed.
        if let Some((bin, flag)) = checker {
            let file = dir.join(format!("tessera.{shell}"));
            std::fs::write(&file, &script).unwrap();
            match Command::new(bin).arg(flag).arg(&file).output() {
                Ok(o) => assert!(o.status.success(), "{bin} {flag}: {}", stderr_of(&o)),
                Err(_) if bin != "bash" => println!("{bin} is not installed: syntax not checked"),
                Err(e) => panic!("bash: {e}"),
            }
        }
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2), "an unknown shell is a usage error");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_manual_page_lists_the_commands() {
    let page = ok(&["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH tessera"), "{}", &page[..200.min(page.len())]);
    let subcommands = page.split(".SH SUBCOMMANDS").nth(1).unwrap().split("\n.SH").next().unwrap();
    for cmd in ["otp", "portal", "device", "token", "demo", "serve", "bench", "completions", "man"] {
        assert!(subcommands.contains(&format!("tessera\\-{cmd}(1)")), "the page lacks {cmd}: {subcommands}");
    }
    assert!(page.contains("Exit status"), "the page carries the exit statuses");
    let totp = ok(&["man", "otp", "totp"]);
    assert!(totp.contains(".TH tessera\\-otp\\-totp") || totp.contains(".TH tessera-otp-totp"), "{}", &totp[..200]);
    assert!(totp.contains("show\\-step") && totp.contains("window"), "{totp}");
    fails(&["man", "otp", "nope"], "INVALID_INPUT");
    // Every page at once, for a package.
    let dir = tmp("ops", "man");
    std::fs::create_dir_all(&dir).unwrap();
    ok(&["man", "--dir", dir.to_str().unwrap()]);
    for page in
        ["tessera.1", "tessera-otp.1", "tessera-otp-totp.1", "tessera-portal-activation-next.1", "tessera-man.1"]
    {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page}");
    }
    assert!(std::fs::read_dir(&dir).unwrap().count() > 50);
    fails(&["man", "--dir", dir.join("missing").to_str().unwrap()], "STORAGE");
    let _ = std::fs::remove_dir_all(dir);
    // groff reads it without complaint.
    if let Ok(mut child) = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "groff: {}", stderr_of(&o));
    }
}
