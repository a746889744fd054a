//! Flow 3 on the command line: `tessera token …` (the offline
//! authenticator and its maker) and the portal's activation commands, as
//! other tools drive them: exact JSON keys and step names, error codes,
//! refused entries stored and leaving the step, line numbers of refused
//! factory files, and processes racing on one activation.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const N: u64 = 1_800_000_000;

mod common;
use common::{fails, ok, tessera_cmd};

fn ok_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    json(&ok(&a))
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn now(t: u64) -> String {
    t.to_string()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("tessera-cli-activation-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, p: &str) -> String {
        self.0.join(p).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A portal with fast hashing (the defaults are for production).
fn portal(s: &Scratch) -> String {
    let p = s.path("portal");
    ok(&["portal", "init", "--dir", &p, "--name", "Example Bank"]);
    ok(&["portal", "activation-settings", "--dir", &p, "--hash-iterations", "10000"]);
    p
}

/// A token in `s/NAME` whose record went to `file`.
fn token(s: &Scratch, name: &str, serial: &str, file: &str) -> String {
    let t = s.path(name);
    assert_eq!(ok(&["token", "new", "--dir", &t, "--serial", serial, "--export", file]), serial);
    t
}

/// The digits a token shows for a QR code (first line of `token scan`).
fn shown(t: &str, qr: &str) -> String {
    ok(&["token", "scan", "--dir", t, "--qr", qr]).lines().next().unwrap().to_owned()
}

struct Letter {
    user_id: String,
    initial_password: String,
}

/// Import one token and order it for `account`.
fn ordered(s: &Scratch, p: &str, account: &str) -> (String, Letter) {
    let file = s.path("factory.txt");
    let t = token(s, "t1", "TS00012345", &file);
    ok(&["portal", "import-devices", "--dir", p, "--file", &file, "--now", &now(N)]);
    // The activation code from a file (not on the command line): the
    // activations below type 271828 and are accepted.
    let code_file = s.path("activation-code");
    std::fs::write(&code_file, "271828\n").unwrap();
    let o = ok_json(&[
        "portal",
        "order",
        "--dir",
        p,
        "--account",
        account,
        "--activation-code",
        &format!("@{code_file}"),
        "--now",
        &now(N + 10),
    ]);
    let letter = Letter {
        user_id: o["user_id"].as_str().unwrap().to_owned(),
        initial_password: o["initial_password"].as_str().unwrap().to_owned(),
    };
    (t, letter)
}

fn next(p: &str, id: &str, input: &str, t: u64) -> Value {
    ok_json(&["portal", "activation-next", "--dir", p, "--id", id, "--input", input, "--now", &now(t)])
}

#[test]
fn token_new_creates_the_factory_file_and_appends_to_it() {
    let s = Scratch::new("token-new");
    let file = s.path("records.txt");
    // A new file: the header, then the record; owner-only.
    let t1 = token(&s, "t1", "TS00000001", &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "tessera-factory-records v1");
    assert_eq!(lines.len(), 2);
    // The device's key material, as tessera-host's record line has it.
    let (serial, key) = lines[1].split_once(' ').unwrap();
    assert_eq!(serial, "TS00000001");
    assert!(key.len() >= 64 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // An existing file is appended to, its lines kept as they were (even a
    // last line without its newline, and comments).
    std::fs::write(&file, format!("{}# batch 7", text)).unwrap();
    let j = ok_json(&["token", "new", "--dir", &s.path("t2"), "--serial", "TS00000002", "--export", &file]);
    assert_eq!(keys(&j), ["created", "export", "serial"]);
    assert_eq!((j["serial"].as_str(), j["created"].as_bool()), (Some("TS00000002"), Some(false)));
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with(&format!("{text}# batch 7\nTS00000002 ")), "{after}");
    assert_eq!(after.lines().count(), 4);
    assert!(after.ends_with('\n'));
    // A serial number the file holds already: refused, no device made.
    let o = fails(
        &["token", "new", "--dir", &s.path("t3"), "--serial", "TS00000002", "--export", &file],
        "DUPLICATE_RECORD",
    );
    assert!(stderr_of(&o).contains("already holds a record of serial number TS00000002"));
    fails(&["token", "info", "--dir", &s.path("t3")], "INVALID_STATE");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    // Not a factory file: refused and left alone.
    let other = s.path("notes.txt");
    std::fs::write(&other, "shopping list\n").unwrap();
    let o =
        fails(&["token", "new", "--dir", &s.path("t4"), "--serial", "TS00000004", "--export", &other], "INVALID_INPUT");
    assert!(stderr_of(&o).contains("line 1"));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "shopping list\n");
    // A directory holds one authenticator; a bad serial makes none.
    fails(&["token", "new", "--dir", &t1, "--serial", "TS00000005", "--export", &file], "INVALID_STATE");
    fails(&["token", "new", "--dir", &s.path("t6"), "--serial", "ts-1", "--export", &file], "INVALID_INPUT");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    // The state is sealed under the directory's storage key.
    let info = ok_json(&["token", "info", "--dir", &t1]);
    assert_eq!(keys(&info), ["bound", "device_id", "portal", "serial", "user_id"]);
    assert_eq!((info["serial"].as_str(), info["bound"].as_bool()), (Some("TS00000001"), Some(false)));
    std::fs::remove_file(Path::new(&t1).join("device.key")).unwrap();
    fails(&["token", "info", "--dir", &t1], "STORAGE");
}

#[test]
fn import_refuses_a_whole_file_with_its_line_number() {
    let s = Scratch::new("import");
    let p = portal(&s);
    let file = s.path("f1.txt");
    token(&s, "t1", "TS00000001", &file);
    token(&s, "t2", "TS00000002", &file);
    let imported = ok(&["portal", "import-devices", "--dir", &p, "--file", &file, "--now", &now(N)]);
    assert_eq!(imported, "TS00000001\nTS00000002");
    // The same file again: the first serial imported before, on line 2.
    let o = fails(
        &["portal", "import-devices", "--dir", &p, "--file", &file, "--now", &now(N + 1), "--json"],
        "DUPLICATE_RECORD",
    );
    assert!(stderr_of(&o).contains(&format!("error[DUPLICATE_RECORD]: {file}: line 2: serial number TS00000001")));
    let j = json(&stdout_of(&o));
    assert_eq!((j["error"].as_str(), j["line"].as_u64()), (Some("DUPLICATE_RECORD"), Some(2)));
    // A new device and a malformed line 4: nothing is imported.
    let f2 = s.path("f2.txt");
    token(&s, "t3", "TS00000003", &f2);
    let mut text = std::fs::read_to_string(&f2).unwrap();
    text.push_str("# comment\nTS00000004 not-hex\n");
    std::fs::write(&f2, &text).unwrap();
    let o = fails(&["portal", "import-devices", "--dir", &p, "--file", &f2, "--now", &now(N + 2)], "INVALID_INPUT");
    assert!(stderr_of(&o).contains(": line 4: "), "{}", stderr_of(&o));
    // A serial repeated inside the file: the later line.
    let f3 = s.path("f3.txt");
    let line = std::fs::read_to_string(&f2).unwrap().lines().nth(1).unwrap().to_owned();
    std::fs::write(&f3, format!("tessera-factory-records v1\n{line}\n\n{line}\n")).unwrap();
    let o = fails(
        &["portal", "import-devices", "--dir", &p, "--file", &f3, "--now", &now(N + 3), "--json"],
        "DUPLICATE_RECORD",
    );
    assert_eq!(json(&stdout_of(&o))["line"], 4);
    std::fs::write(&f3, format!("tessera-factory-records v2\n{line}\n")).unwrap();
    fails(&["portal", "import-devices", "--dir", &p, "--file", &f3, "--now", &now(N + 4)], "UNSUPPORTED_VERSION");
    let stock = ok_json(&["portal", "authenticators", "--dir", &p]);
    let serials: Vec<&str> = stock.as_array().unwrap().iter().map(|a| a["serial"].as_str().unwrap()).collect();
    assert_eq!(serials, ["TS00000001", "TS00000002"]);
    assert_eq!(keys(&stock[0]), ["account", "imported_at", "serial", "status", "user_id"]);
    assert_eq!(stock[0]["status"], "inStock");
    // Without the malformed line it goes in.
    std::fs::write(&f2, text.replace("TS00000004 not-hex\n", "")).unwrap();
    let j = ok_json(&["portal", "import-devices", "--dir", &p, "--file", &f2, "--now", &now(N + 5)]);
    assert_eq!(j["serials"], serde_json::json!(["TS00000003"]));
}

#[test]
fn order_sends_the_oldest_authenticator_in_stock_or_the_one_named() {
    let s = Scratch::new("order");
    let p = portal(&s);
    let (f1, f2) = (s.path("f1.txt"), s.path("f2.txt"));
    token(&s, "t2", "TS00000002", &f1);
    token(&s, "t1", "TS00000001", &f2);
    token(&s, "t3", "TS00000003", &f2);
    ok(&["portal", "import-devices", "--dir", &p, "--file", &f1, "--now", &now(N)]);
    ok(&["portal", "import-devices", "--dir", &p, "--file", &f2, "--now", &now(N + 1)]);
    // Plain: the letter's user ID and initial password, then the serial.
    let out =
        ok(&["portal", "order", "--dir", &p, "--account", "anna", "--activation-code", "271828", "--now", &now(N + 2)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].len() == 10 && lines[0].bytes().all(|b| b.is_ascii_digit()), "{out}");
    assert_eq!(lines[1].len(), 14, "ABCD-EFGH-JKLM: {out}");
    assert_eq!(lines[2], "TS00000002", "imported first");
    let j = ok_json(&[
        "portal",
        "order",
        "--dir",
        &p,
        "--account",
        "ben",
        "--activation-code",
        "314159",
        "--serial",
        "TS00000003",
        "--now",
        &now(N + 3),
    ]);
    assert_eq!(keys(&j), ["account", "events", "expires_at", "initial_password", "serial", "user_id"]);
    assert_eq!(j["serial"], "TS00000003");
    assert_eq!(j["expires_at"], N + 3 + 90 * 86400);
    let order = |extra: &[&str], code: &str| {
        let mut a = vec![
            "portal",
            "order",
            "--dir",
            &p,
            "--account",
            "cleo",
            "--activation-code",
            "271828",
            "--now",
            "1800000004",
        ];
        a.extend_from_slice(extra);
        fails(&a, code)
    };
    order(&["--serial", "TS00000002"], "INVALID_STATE");
    order(&["--serial", "TS99999999"], "DEVICE_UNKNOWN");
    let mut short =
        vec!["portal", "order", "--dir", &p, "--account", "cleo", "--activation-code", "12345", "--now", "1800000004"];
    fails(&short, "INVALID_INPUT");
    short[7] = "271828";
    ok(&short);
    order(&[], "INVALID_STATE");
    let stock = ok_json(&["portal", "authenticators", "--dir", &p]);
    assert!(stock.as_array().unwrap().iter().all(|a| a["status"] == "assigned"));
}

/// The whole activation with `--json`, as a tool drives it: every key and
/// step name exactly, a refused entry at a step stored and leaving it.
#[test]
fn activation_steps_print_exact_json_and_refusals_leave_the_step() {
    let s = Scratch::new("steps");
    let p = portal(&s);
    ok(&["portal", "activation-settings", "--dir", &p, "--usable-after", "3600"]);
    let (t, letter) = ordered(&s, &p, "anna@example.org");
    fails(
        &["portal", "activation-start", "--dir", &p, "--user-id", "0000000000", "--now", &now(N + 60)],
        "USER_UNKNOWN",
    );
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", "00", "--input", "1", "--now", &now(N + 60)],
        "TOKEN_UNKNOWN",
    );
    fails(&["portal", "activation-status", "--dir", &p, "--id", "00"], "TOKEN_UNKNOWN");

    let a = ok_json(&["portal", "activation-start", "--dir", &p, "--user-id", &letter.user_id, "--now", &now(N + 60)]);
    let open_keys =
        ["account", "events", "expires_at", "failures", "id", "qr", "serial", "status", "step", "user_id", "verdict"];
    assert_eq!(keys(&a), open_keys);
    assert_eq!((a["step"].as_str(), a["failures"].as_i64()), (Some("device_code"), Some(0)));
    let id = a["id"].as_str().unwrap().to_owned();
    let qr1 = a["qr"].as_str().unwrap().to_owned();
    let mut steps = vec![a["step"].as_str().unwrap().to_owned()];

    // The token's screen, both ways.
    let scan = ok(&["token", "scan", "--dir", &t, "--qr", &qr1]);
    let lines: Vec<&str> = scan.lines().collect();
    assert!(lines[0].len() == 10 && lines[0].bytes().all(|b| b.is_ascii_digit()), "{scan}");
    assert!(lines[1].contains("Example Bank"), "{scan}");
    let j = ok_json(&["token", "scan", "--dir", &t, "--qr", &qr1]);
    assert_eq!(keys(&j), ["approval", "code", "device_id", "kind", "portal", "replaced", "serial", "user_id"]);
    assert_eq!((j["kind"].as_str(), j["code"].as_str()), (Some("device_code"), Some(lines[0])));
    assert_eq!(
        (j["portal"].as_str(), &j["user_id"], &j["approval"]),
        (Some("Example Bank"), &Value::Null, &Value::Null)
    );

    // A wrong device code: exit 1, the code, the step unchanged; the
    // attempt is stored (activation-status counts it, shows the same QR).
    let wrong: String = lines[0].bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect();
    let args =
        ["portal", "activation-next", "--dir", &p, "--id", &id, "--input", &wrong, "--now", "1800000061", "--json"];
    let o = fails(&args, "DEVICE_CODE_MISMATCH");
    let r = json(&stdout_of(&o));
    assert_eq!(
        (r["step"].as_str(), r["qr"].as_str(), r["failures"].as_i64()),
        (Some("device_code"), Some(qr1.as_str()), Some(1))
    );
    assert_eq!(r["verdict"]["code"], "DEVICE_CODE_MISMATCH");
    let o = fails(&args[..10], "DEVICE_CODE_MISMATCH");
    assert!(stderr_of(&o).contains(&format!("activation {id} stays at step device_code (2 wrong entries of 5)")));
    let st = ok_json(&["portal", "activation-status", "--dir", &p, "--id", &id, "--now", &now(N + 62)]);
    assert_eq!(
        (st["step"].as_str(), st["qr"].as_str(), st["failures"].as_i64()),
        (Some("device_code"), Some(qr1.as_str()), Some(2))
    );
    assert_eq!(st["status"], "open");
    let plain = ok(&["portal", "activation-status", "--dir", &p, "--id", &id, "--now", &now(N + 62)]);
    assert_eq!(plain, format!("{id}\ndevice_code\n{qr1}"));

    // Every step, in order; `qr` only where a QR code is shown.
    let r = next(&p, &id, lines[0], N + 63);
    assert_eq!(keys(&r), open_keys.iter().filter(|k| **k != "qr").copied().collect::<Vec<_>>());
    steps.push(r["step"].as_str().unwrap().into());
    let r = next(&p, &id, "271828", N + 64);
    steps.push(r["step"].as_str().unwrap().into());
    let bind = ok_json(&["token", "scan", "--dir", &t, "--qr", r["qr"].as_str().unwrap()]);
    assert_eq!(
        (bind["kind"].as_str(), bind["user_id"].as_str()),
        (Some("binding_code"), Some(letter.user_id.as_str()))
    );
    assert_eq!(bind["code"].as_str().unwrap().len(), 8);
    let r = next(&p, &id, bind["code"].as_str().unwrap(), N + 65);
    assert!(r.get("qr").is_none());
    steps.push(r["step"].as_str().unwrap().into());
    let o = fails(
        &["portal", "activation-next", "--dir", &p, "--id", &id, "--input", "TS99999999", "--now", "1800000066"],
        "SERIAL_MISMATCH",
    );
    assert!(stderr_of(&o).contains("stays at step serial"));
    let r = next(&p, &id, "ts0001-2345", N + 67);
    steps.push(r["step"].as_str().unwrap().into());
    let test = ok(&["token", "scan", "--dir", &t, "--qr", r["qr"].as_str().unwrap()]);
    let test_lines: Vec<&str> = test.lines().collect();
    assert_eq!(test_lines[1], format!("Log in to \"Example Bank\" as user {}?", letter.user_id));
    let r = next(&p, &id, test_lines[0], N + 68);
    assert!(r.get("qr").is_none());
    steps.push(r["step"].as_str().unwrap().into());
    let r = next(&p, &id, &letter.initial_password, N + 69);
    steps.push(r["step"].as_str().unwrap().into());
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", &id, "--input", "short", "--now", "1800000070"],
        "PASSWORD_POLICY",
    );
    // The new password from stdin (`--input -`), not the command line.
    let mut child = tessera_cmd()
        .args(["portal", "activation-next", "--dir", &p, "--id", &id, "--input", "-", "--now", "1800000071", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"correct horse battery staple\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let done = json(&stdout_of(&o));
    steps.push(done["step"].as_str().unwrap().into());
    assert_eq!(
        steps,
        [
            "device_code",
            "activation_code",
            "binding_code",
            "serial",
            "test_otp",
            "initial_password",
            "new_password",
            "done"
        ]
    );
    let mut done_keys = open_keys.iter().filter(|k| **k != "qr").copied().collect::<Vec<_>>();
    done_keys.extend(["device_id", "recovery_codes", "usable_from"]);
    done_keys.sort_unstable();
    assert_eq!(keys(&done), done_keys);
    assert_eq!(done["usable_from"], N + 71 + 3600);
    assert_eq!(done["status"], "done");
    assert_eq!(done["events"][0]["kind"], "deviceActivated");
    let codes: Vec<String> =
        done["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    assert_eq!(codes.len(), 10);
    let device_id = done["device_id"].as_str().unwrap().to_owned();
    // Shown once: the status of a finished activation has no codes.
    let st = ok_json(&["portal", "activation-status", "--dir", &p, "--id", &id]);
    assert_eq!((st["step"].as_str(), st.get("recovery_codes")), (Some("done"), None));
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", &id, "--input", "x", "--now", "1800000072"],
        "INVALID_STATE",
    );

    // The registry lists it with its serial and when it becomes usable.
    let list = ok_json(&["portal", "devices", "--dir", &p, "--account", "anna@example.org"]);
    assert_eq!(list[0]["id"], device_id.as_str());
    assert_eq!(
        (list[0]["serial"].as_str(), list[0]["usable_from"].as_u64()),
        (Some("TS00012345"), Some(N + 71 + 3600))
    );
    let text = ok(&["portal", "devices", "--dir", &p, "--account", "anna@example.org"]);
    assert!(text.lines().next().unwrap().ends_with("SERIAL           USABLE_FROM"), "{text}");
    assert!(text.contains(&format!("TS00012345       {}", N + 71 + 3600)), "{text}");
    assert_eq!(ok_json(&["token", "info", "--dir", &t])["device_id"], device_id.as_str());

    // Refused before the delay, usable after it.
    let challenge = |t: u64| {
        vec!["portal", "challenge", "--dir", &p, "--account", "anna@example.org", "--now"]
            .into_iter()
            .map(String::from)
            .chain([now(t)])
            .collect::<Vec<String>>()
    };
    let a: Vec<String> = challenge(N + 71 + 3599);
    fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "DEVICE_NOT_YET_USABLE");
    let a: Vec<String> = challenge(N + 71 + 3600);
    let out = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (qr, cid) = out.split_once('\n').unwrap();
    let code = shown(&t, qr);
    let v = ok_json(&["portal", "verify", "--dir", &p, "--challenge", cid, "--answer", &code, "--now", &now(N + 3700)]);
    assert_eq!(v["device_id"], device_id.as_str());

    // The password and recovery codes it set.
    let pw = |pw: &str| {
        vec![
            "portal",
            "password-check",
            "--dir",
            &p,
            "--account",
            "anna@example.org",
            "--password",
            pw,
            "--now",
            "1800003800",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let a = pw("correct horse battery staple");
    assert_eq!(ok(&a.iter().map(String::as_str).collect::<Vec<_>>()), "accepted");
    let a = pw("env:TESSERA_TEST_PASSWORD");
    let o = tessera_cmd().args(&a).env("TESSERA_TEST_PASSWORD", "correct horse battery staple").output().unwrap();
    assert_eq!((o.status.code(), stdout_of(&o).trim()), (Some(0), "accepted"), "{}", stderr_of(&o));
    let mut a = pw("wrong horse battery staple");
    a.push("--json".into());
    let o = fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "PASSWORD_MISMATCH");
    assert_eq!(json(&stdout_of(&o))["verdict"]["code"], "PASSWORD_MISMATCH");
    let rc = |code: &str| {
        vec![
            "portal",
            "recovery-code",
            "--dir",
            &p,
            "--account",
            "anna@example.org",
            "--code",
            code,
            "--now",
            "1800003900",
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    // The recovery code from a file, the password from a variable.
    let rc_file = s.path("recovery-code");
    std::fs::write(&rc_file, format!("{}\n", codes[3])).unwrap();
    let a = rc(&format!("@{rc_file}"));
    let j = json(&ok(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(keys(&j), ["accepted", "events", "recovery_codes_left", "verdict"]);
    assert_eq!(j["recovery_codes_left"], 9);
    fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "RECOVERY_CODE_MISMATCH");
    fails(
        &["portal", "password-check", "--dir", &p, "--account", "ben", "--password", "x", "--now", "1800003900"],
        "INVALID_STATE",
    );
}

#[test]
fn plain_output_of_start_and_next_is_one_value_a_line() {
    let s = Scratch::new("plain");
    let p = portal(&s);
    let (t, letter) = ordered(&s, &p, "anna");
    // The user ID as typed from the letter, with spaces.
    let spaced = format!("{} {} {}", &letter.user_id[..3], &letter.user_id[3..6], &letter.user_id[6..]);
    let out = ok(&["portal", "activation-start", "--dir", &p, "--user-id", &spaced, "--now", &now(N + 60)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[1], "device_code");
    let id = lines[0].to_owned();
    let code = shown(&t, lines[2]);
    let out = ok(&["portal", "activation-next", "--dir", &p, "--id", &id, "--input", &code, "--now", &now(N + 61)]);
    assert_eq!(out, format!("{id}\nactivation_code"));
    // A restart supersedes the running activation once its device code is typed.
    let again = ok(&["portal", "activation-start", "--dir", &p, "--user-id", &letter.user_id, "--now", &now(N + 62)]);
    let lines: Vec<&str> = again.lines().collect();
    let id2 = lines[0].to_owned();
    assert_ne!(id2, id);
    let code = shown(&t, lines[2]);
    let out = ok(&["portal", "activation-next", "--dir", &p, "--id", &id2, "--input", &code, "--now", &now(N + 63)]);
    assert_eq!(out, format!("{id2}\nactivation_code"));
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", &id, "--input", "271828", "--now", &now(N + 64)],
        "INVALID_STATE",
    );
}

#[test]
fn activation_settings_are_stored_checked_and_used() {
    let s = Scratch::new("settings");
    let p = s.path("portal");
    ok(&["portal", "init", "--dir", &p, "--name", "Example Bank"]);
    let d = ok_json(&["portal", "activation-settings", "--dir", &p]);
    assert_eq!(
        keys(&d),
        [
            "activation_ttl",
            "blocklist",
            "challenge_digits",
            "hash_iterations",
            "order_ttl",
            "password_max",
            "password_min",
            "usable_after"
        ]
    );
    assert_eq!((d["hash_iterations"].as_u64(), d["usable_after"].as_u64()), (Some(600_000), Some(14_400)));
    let set = |a: &[&str]| {
        let mut v = vec!["portal", "activation-settings", "--dir", &p];
        v.extend_from_slice(a);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let a = set(&["--hash-iterations", "10000", "--activation-ttl", "600", "--blocklist", "Tessera2026!", "--json"]);
    let j = json(&ok(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!((j["hash_iterations"].as_u64(), j["activation_ttl"].as_u64()), (Some(10_000), Some(600)));
    // Each change keeps the others; an out-of-range one changes nothing.
    let a = set(&["--challenge-digits", "6"]);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let a = set(&["--hash-iterations", "5"]);
    fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "INVALID_INPUT");
    let a = set(&["--challenge-digits", "11"]);
    fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "INVALID_DIGITS");
    let j = ok_json(&["portal", "activation-settings", "--dir", &p]);
    assert_eq!(
        (j["hash_iterations"].as_u64(), j["activation_ttl"].as_u64(), j["challenge_digits"].as_u64()),
        (Some(10_000), Some(600), Some(6))
    );
    assert_eq!(j["blocklist"], serde_json::json!(["Tessera2026!"]));
    // Used by order, start and next: the activation lives 600 s, the test
    // challenge has 6 digits, the blocklisted password is refused.
    let (t, letter) = ordered(&s, &p, "anna");
    let a = ok_json(&["portal", "activation-start", "--dir", &p, "--user-id", &letter.user_id, "--now", &now(N + 60)]);
    assert_eq!(a["expires_at"], N + 660);
    let id = a["id"].as_str().unwrap();
    next(&p, id, &shown(&t, a["qr"].as_str().unwrap()), N + 61);
    let r = next(&p, id, "271828", N + 62);
    next(&p, id, &shown(&t, r["qr"].as_str().unwrap()), N + 63);
    let r = next(&p, id, "TS00012345", N + 64);
    let code = shown(&t, r["qr"].as_str().unwrap());
    assert_eq!(code.len(), 6);
    next(&p, id, &code, N + 65);
    next(&p, id, &letter.initial_password, N + 66);
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", id, "--input", "tessera2026!", "--now", "1800000067"],
        "PASSWORD_POLICY",
    );
    // Back to the defaults.
    let a = set(&["--reset", "--json"]);
    let j = json(&ok(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(j, d);
}

#[test]
fn racing_wrong_entries_count_exactly_five() {
    let s = Scratch::new("race");
    let p = portal(&s);
    let (t, letter) = ordered(&s, &p, "anna");
    let a = ok_json(&["portal", "activation-start", "--dir", &p, "--user-id", &letter.user_id, "--now", &now(N + 60)]);
    let id = a["id"].as_str().unwrap().to_owned();
    let right = shown(&t, a["qr"].as_str().unwrap());
    let wrong: String = right.bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect();
    // Twelve processes type a wrong device code at once: each attempt is
    // a compare-and-set on the activation row, so exactly 4 are counted as
    // wrong and the fifth ends the activation for all that follow.
    let children: Vec<_> = (0..12)
        .map(|_| {
            tessera_cmd()
                .args(["portal", "activation-next", "--dir", &p, "--id", &id, "--input", &wrong, "--now", "1800000061"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut tally = std::collections::BTreeMap::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        let err = stderr_of(&o);
        let start = err.find("error[").unwrap_or_else(|| panic!("no error code: {err}")) + 6;
        let code = err[start..start + err[start..].find(']').unwrap()].to_owned();
        *tally.entry(code).or_insert(0) += 1;
    }
    let want: std::collections::BTreeMap<String, i32> =
        [("DEVICE_CODE_MISMATCH".to_owned(), 4), ("LOCKED_OUT".to_owned(), 8)].into_iter().collect();
    assert_eq!(tally, want);
    let st = ok_json(&["portal", "activation-status", "--dir", &p, "--id", &id]);
    assert_eq!((st["status"].as_str(), st["failures"].as_i64()), (Some("lockedOut"), Some(5)));
    fails(
        &["portal", "activation-next", "--dir", &p, "--id", &id, "--input", &right, "--now", "1800000062"],
        "LOCKED_OUT",
    );
}

#[test]
fn help_lists_the_activation_commands() {
    let portal = ok(&["help", "portal"]);
    for cmd in [
        "import-devices",
        "authenticators",
        "order",
        "activation-start",
        "activation-next",
        "activation-status",
        "activation-settings",
        "password-check",
        "recovery-code",
    ] {
        assert!(portal.lines().any(|l| l.trim_start().starts_with(cmd)), "`tessera help portal` lacks {cmd}");
    }
    let token = ok(&["help", "token"]);
    for cmd in ["new", "scan", "info"] {
        assert!(token.lines().any(|l| l.trim_start().starts_with(cmd)), "`tessera help token` lacks {cmd}");
    }
    let help = ok(&["help"]);
    for words in [
        "token new --dir T --serial S --export FILE",
        "portal import-devices --file FILE",
        "portal order --account A --activation-code CODE",
        "portal activation-start --user-id U",
        "portal activation-next --id ID --input VALUE",
        "token scan --dir T --qr QR",
    ] {
        assert!(help.contains(words), "`tessera help` lacks {words:?}");
    }
}

/// Activate the token in `t` for the order of `letter` (every step), the
/// new password `password`; the final JSON.
fn activate(p: &str, t: &str, letter: &Letter, code: &str, serial: &str, password: &str, at: u64) -> Value {
    let a = ok_json(&["portal", "activation-start", "--dir", p, "--user-id", &letter.user_id, "--now", &now(at)]);
    let id = a["id"].as_str().unwrap().to_owned();
    let mut qr = a["qr"].as_str().map(str::to_owned);
    for input in [None, Some(code), None, Some(serial), None, Some(letter.initial_password.as_str())] {
        let input = input.map_or_else(|| shown(t, qr.as_deref().unwrap()), str::to_owned);
        qr = next(p, &id, &input, at + 1)["qr"].as_str().map(str::to_owned);
    }
    next(p, &id, password, at + 2)
}

#[test]
fn cancel_activation_unlinks_and_drops_the_waiting_password() {
    let s = Scratch::new("cancel");
    let p = portal(&s);
    let (t1, letter1) = ordered(&s, &p, "anna");
    let done1 = activate(&p, &t1, &letter1, "271828", "TS00012345", "correct horse battery staple", N + 60);
    assert_eq!(done1["step"].as_str(), Some("done"));
    // A second authenticator, activated by someone else with a password of theirs.
    let file2 = s.path("factory2.txt");
    let t2 = token(&s, "t2", "TS00067890", &file2);
    ok(&["portal", "import-devices", "--dir", &p, "--file", &file2, "--now", &now(N + 100)]);
    let o = ok_json(&[
        "portal",
        "order",
        "--dir",
        &p,
        "--account",
        "anna",
        "--activation-code",
        "161803",
        "--serial",
        "TS00067890",
        "--now",
        &now(N + 110),
    ]);
    let letter2 = Letter {
        user_id: o["user_id"].as_str().unwrap().to_owned(),
        initial_password: o["initial_password"].as_str().unwrap().to_owned(),
    };
    let done2 = activate(&p, &t2, &letter2, "161803", "TS00067890", "mallory was here 2026", N + 200);
    let device2 = done2["device_id"].as_str().unwrap().to_owned();
    // Before its delay, the user's own password is still the one in force.
    let check = ["portal", "password-check", "--dir", &p, "--account", "anna", "--password"];
    ok(&[&check[..], &["correct horse battery staple", "--now", &now(N + 300)]].concat());
    fails(&[&check[..], &["mallory was here 2026", "--now", &now(N + 300)]].concat(), "PASSWORD_MISMATCH");
    // A phone is not an authenticator; an unknown device is unknown.
    let cancel = ["portal", "cancel-activation", "--dir", &p, "--account", "anna", "--device"];
    fails(&[&cancel[..], &["0000000000000000", "--now", &now(N + 400)]].concat(), "DEVICE_UNKNOWN");
    let j = ok_json(&[&cancel[..], &[device2.as_str(), "--now", &now(N + 400)]].concat());
    assert_eq!((j["unlinked"].as_bool(), j["pending_credentials_dropped"].as_bool()), (Some(true), Some(true)));
    let kinds: Vec<&str> = j["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["deviceUnlinked"]);
    // Long after the delay, the user's password holds and the other never came into force.
    let later = N + 200 + 4 * 3600 + 100;
    ok(&[&check[..], &["correct horse battery staple", "--now", &now(later)]].concat());
    fails(&[&check[..], &["mallory was here 2026", "--now", &now(later)]].concat(), "PASSWORD_MISMATCH");
    // Cancelling again: the device is unlinked already.
    fails(&[&cancel[..], &[device2.as_str(), "--now", &now(later)]].concat(), "INVALID_STATE");
}
