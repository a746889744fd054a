//! `tessera serve` as a portal runs it: a server process on an ephemeral
//! port, spoken to over HTTP/1.1 (a small std client below) and by the
//! device simulator (`tessera device … --server URL`) in other processes.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PASSCODE: &str = "480215";

mod common;
use common::{fails, ok, tessera_cmd};

fn tmp(name: &str) -> PathBuf {
    common::tmp("serve", name)
}

/// A running `tessera serve` (killed on drop if still running).
struct Server {
    child: Child,
    url: String,
    addr: String,
    log: PathBuf,
    /// The bearer token host routes are sent with, if the server has one.
    token: Option<String>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_on(dir, "127.0.0.1:0", extra)
    }

    fn start_on(dir: &Path, listen: &str, extra: &[&str]) -> Server {
        let log = dir.with_extension("serve.log");
        let mut args = vec!["--dir", dir.to_str().unwrap(), "--listen", listen];
        args.extend_from_slice(extra);
        let (child, url, addr) = common::spawn_serve(&args, &log);
        Server { child, url, addr, log, token: None }
    }

    /// A server on `listen` whose host routes need `token` (from a file).
    fn with_token(dir: &Path, listen: &str, token: &str, extra: &[&str]) -> Server {
        let file = dir.with_extension("token");
        std::fs::write(&file, format!("  {token}\n")).unwrap();
        let mut args = vec!["--auth-token-file", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut srv = Server::start_on(dir, listen, &args);
        srv.token = Some(token.to_owned());
        srv
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        let auth = self.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        request_with(&self.addr, method, path, &auth, body.as_deref().map(str::as_bytes))
    }

    fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(&body))
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "the server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Value,
    raw: Vec<u8>,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A 2xx body, or a failed test naming the error.
    fn ok(self) -> Value {
        assert!((200..300).contains(&self.status), "HTTP {}: {}", self.status, self.body);
        self.body
    }

    fn err(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.body);
        assert!(self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.body);
    }
}

/// One HTTP/1.1 request on its own connection (`raw` sends bytes as is).
fn request(addr: &str, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
    request_with(addr, method, path, "", body)
}

/// [`request`] with more header lines (`Name: value\r\n` each).
fn request_with(addr: &str, method: &str, path: &str, headers: &str, body: Option<&[u8]>) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}").into_bytes();
    if let Some(b) = body {
        req.extend_from_slice(format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body.unwrap_or_default());
    s.write_all(&req).unwrap();
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no head: {raw:?}"));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    Reply { status, head, body, raw }
}

fn new_portal(name: &str) -> PathBuf {
    let p = tmp(name);
    ok(&["portal", "init", "--dir", p.to_str().unwrap(), "--name", "Bank"]);
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Link a phone through the server: offer, `device link --server` (which
/// prints the check code), confirm. Returns the device id, the offer text,
/// the check code and the request text... as far as the test saw them.
fn link(srv: &Server, device_dir: &Path, account: &str, name: &str) -> (String, Vec<String>) {
    let offer = srv.post(&format!("/v1/accounts/{account}/link-offers"), json!({})).ok();
    let qr = offer["qr_text"].as_str().unwrap().to_owned();
    let code = ok(&[
        "device",
        "link",
        "--dir",
        s(device_dir),
        "--qr",
        &qr,
        "--name",
        name,
        "--passcode",
        PASSCODE,
        "--server",
        &srv.url,
    ]);
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "check code {code:?}");
    let linked = srv.post(&format!("/v1/accounts/{account}/links/confirm"), json!({ "code": code })).ok();
    assert_eq!(linked["device"]["name"], name);
    assert_eq!(linked["verdict"]["kind"], "accepted");
    (linked["device"]["id"].as_str().unwrap().to_owned(), vec![qr, code])
}

/// A login challenge: (QR text, id).
fn login_challenge(srv: &Server, account: &str) -> (String, String) {
    let c = srv.post(&format!("/v1/accounts/{account}/challenges"), json!({})).ok();
    assert_eq!(c["kind"], "login");
    (c["qr"].as_str().unwrap().to_owned(), c["challenge_id"].as_str().unwrap().to_owned())
}

#[test]
fn a_phone_links_answers_and_is_unlinked_over_http() {
    let pd = new_portal("flow");
    let dd = tmp("flow-phone");
    let srv = Server::start(&pd, &[]);
    let health = srv.get("/health");
    assert_eq!((health.status, health.body.clone()), (200, json!({"status": "ok"})));

    // A wrong check code first: a stored refusal (422, its verdict shown).
    let offer = srv.post("/v1/accounts/anna/link-offers", json!({"ttl": 120})).ok();
    let qr = offer["qr_text"].as_str().unwrap().to_owned();
    assert!(offer["expires_at"].as_u64().unwrap() > 0);
    let request = ok(&["device", "link", "--dir", s(&dd), "--qr", &qr, "--name", "Pixel", "--passcode", PASSCODE]);
    // A truncated and a tampered request: typed errors, nothing stored.
    let truncated = srv.post("/v1/link-requests", json!({ "request": &request[..request.len() / 2] }));
    assert_eq!(truncated.status, 400, "{}", truncated.body);
    let mut tampered = request.clone().into_bytes();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = srv.post("/v1/link-requests", json!({ "request": String::from_utf8(tampered).unwrap() }));
    assert_eq!(tampered.status, 400, "{}", tampered.body);
    assert!(["MESSAGE_TAMPERED", "MALFORMED_MESSAGE"].contains(&tampered.code()), "{}", tampered.body);
    let accepted = srv.post("/v1/link-requests", json!({ "request": request })).ok();
    assert_eq!(accepted["device_name"], "Pixel");
    let pending = srv.get("/v1/accounts/anna/links").ok();
    assert_eq!(pending[0]["device_id"], accepted["device_id"]);
    let check = ok(&["device", "link-finish", "--dir", s(&dd), "--response", accepted["answer"].as_str().unwrap()]);
    let wrong = if check == "000000" { "111111" } else { "000000" };
    let r = srv.post("/v1/accounts/anna/links/confirm", json!({ "code": wrong }));
    r.err(422, "CHECK_CODE_MISMATCH");
    assert_eq!(r.body["details"]["verdict"]["kind"], "refused");
    let linked = srv.post("/v1/accounts/anna/links/confirm", json!({ "code": check })).ok();
    let id = linked["device"]["id"].as_str().unwrap().to_owned();
    let mut secrets = vec![qr, request, check];

    // The same JSON as the CLI prints.
    let listed = srv.get("/v1/accounts/anna/devices").ok();
    let cli: Value =
        serde_json::from_str(&ok(&["portal", "devices", "--dir", s(&pd), "--account", "anna", "--json"])).unwrap();
    assert_eq!(listed, cli);
    assert_eq!(listed[0]["status"], "active");

    let renamed = srv.call("PATCH", &format!("/v1/accounts/anna/devices/{id}"), Some(&json!({"name": "Anna's Pixel"})));
    assert_eq!(renamed.ok()["name"], "Anna's Pixel");
    srv.call("PATCH", "/v1/accounts/anna/devices/nope", Some(&json!({"name": "x"}))).err(404, "DEVICE_UNKNOWN");
    srv.call("PATCH", &format!("/v1/accounts/bob/devices/{id}"), Some(&json!({"name": "x"})))
        .err(404, "DEVICE_UNKNOWN");

    // A time-based code, once.
    let totp = ok(&["device", "totp", "--dir", s(&dd), "--passcode", PASSCODE]);
    let path = format!("/v1/accounts/anna/devices/{id}/totp");
    assert_eq!(srv.post(&path, json!({ "code": totp })).ok()["accepted"], true);
    let again = srv.post(&path, json!({ "code": totp }));
    again.err(409, "OTP_REPLAYED");
    secrets.push(totp);

    // A login: the typed code, then the same code again.
    let (qr, cid) = login_challenge(&srv, "anna");
    let code = ok(&["device", "answer", "--dir", s(&dd), "--qr", &qr, "--passcode", PASSCODE]);
    let answer_path = format!("/v1/challenges/{cid}/answer");
    let v = srv.post(&answer_path, json!({ "answer": code })).ok();
    assert_eq!((v["accepted"].clone(), v["device_id"].clone()), (json!(true), json!(id)));
    srv.post(&answer_path, json!({ "answer": code })).err(409, "TOKEN_ALREADY_USED");
    assert_eq!(srv.get(&format!("/v1/challenges/{cid}")).ok()["status"], "answered");
    srv.get("/v1/challenges/0123456789abcdef0123456789abcdef").err(404, "TOKEN_UNKNOWN");
    secrets.push(qr);
    secrets.push(code);

    // A payment: the phone shows what it approves.
    let pay = json!({"amount": "125.50", "currency": "EUR", "payee": "ACME Energy Ltd", "text": ["Invoice 7"]});
    let c = srv.post("/v1/accounts/anna/challenges", pay).ok();
    assert_eq!(c["kind"], "transaction");
    let shown = ok(&["device", "show", "--dir", s(&dd), "--qr", c["qr"].as_str().unwrap(), "--json"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!((shown["amount"].as_str(), shown["payee"].as_str()), (Some("125.50"), Some("ACME Energy Ltd")));

    // A signed answer sent by the device itself.
    let (qr, _) = login_challenge(&srv, "anna");
    let out = ok(&[
        "device",
        "answer",
        "--dir",
        s(&dd),
        "--qr",
        &qr,
        "--passcode",
        PASSCODE,
        "--signed",
        "--server",
        &srv.url,
    ]);
    assert_eq!(out, "accepted");
    assert_eq!(ok(&["device", "status-request", "--dir", s(&dd), "--server", &srv.url]), "still linked");
    assert_eq!(ok(&["device", "status", "--dir", s(&dd), "--server", &srv.url]), "still linked");

    // Events, after an id.
    let events = srv.get("/v1/events?after=0").ok();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["event"]["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"deviceLinked") && kinds.contains(&"challengeAnswered"), "{kinds:?}");
    let last = events.as_array().unwrap().last().unwrap()["id"].as_i64().unwrap();
    assert_eq!(srv.get(&format!("/v1/events?after={last}")).ok(), json!([]));

    // Unlink: the phone learns it on its next status request.
    let gone = srv.call("DELETE", &format!("/v1/accounts/anna/devices/{id}"), None).ok();
    assert_eq!(gone["status"], "unlinked");
    fails(&["device", "status-request", "--dir", s(&dd), "--server", &srv.url], "DEVICE_REVOKED");
    assert_eq!(ok(&["device", "status", "--dir", s(&dd)]), "not linked");

    // The log: one JSON line per request, no secret in it.
    let log = srv.log();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["route"] == "/v1/accounts/{account}/links/confirm"
        && l["status"] == 422
        && l["code"] == "CHECK_CODE_MISMATCH"));
    assert!(lines.iter().filter(|l| l["route"].is_string()).all(|l| l["ms"].is_u64() && l["method"].is_string()));
    for secret in &secrets {
        assert!(secret.len() >= 6);
        assert!(!log.contains(secret.as_str()), "the log holds a secret: {secret}");
    }
    assert!(!log.contains(&id), "the log holds a path's value");
    assert!(srv.terminate().success());
}

#[test]
fn five_wrong_answers_lock_the_device() {
    let pd = new_portal("lock");
    let dd = tmp("lock-phone");
    let srv = Server::start(&pd, &[]);
    let (id, seen) = link(&srv, &dd, "carl", "Phone");
    // The offer again, from another phone: the portal's refusal comes back
    // as the answer the device reads (`details.answer`), not only a status.
    let other = tmp("lock-other-phone");
    let args = ["device", "link", "--dir", s(&other), "--qr", &seen[0], "--name", "P2", "--passcode", PASSCODE];
    let request = ok(&args);
    let r = srv.post("/v1/link-requests", json!({ "request": request }));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body["details"]["answer"].is_string(), "{}", r.body);
    let code = r.code().to_owned();
    let mut with_server = args.to_vec();
    with_server.extend(["--server", &srv.url]);
    fails(&with_server, &code);
    let (qr, cid) = login_challenge(&srv, "carl");
    let right = ok(&["device", "answer", "--dir", s(&dd), "--qr", &qr, "--passcode", PASSCODE]);
    let wrong = if right.starts_with('0') { right.replacen('0', "1", 1) } else { format!("0{}", &right[1..]) };
    let path = format!("/v1/challenges/{cid}/answer");
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = srv.post(&path, json!({ "answer": wrong }));
        codes.push(r.code().to_owned());
    }
    assert_eq!(codes[..4], ["INVALID_ANSWER"; 4], "{codes:?}");
    // Locked now: the right code too.
    srv.post(&path, json!({ "answer": right })).err(423, "LOCKED_OUT");
    let devices = srv.get("/v1/accounts/carl/devices").ok();
    assert_eq!(devices[0]["locked"], true);
    let (qr, cid) = login_challenge(&srv, "carl");
    let right = ok(&["device", "answer", "--dir", s(&dd), "--qr", &qr, "--passcode", PASSCODE]);
    srv.post(&format!("/v1/challenges/{cid}/answer"), json!({ "answer": right })).err(423, "LOCKED_OUT");
    // Unlocked after the user re-identified.
    srv.post(&format!("/v1/accounts/carl/devices/{id}/unlock"), json!({})).ok();
    let (qr, cid) = login_challenge(&srv, "carl");
    let right = ok(&["device", "answer", "--dir", s(&dd), "--qr", &qr, "--passcode", PASSCODE]);
    srv.post(&format!("/v1/challenges/{cid}/answer"), json!({ "answer": right })).ok();
}

#[test]
fn bad_requests_get_typed_errors() {
    let pd = new_portal("errors");
    let srv = Server::start(&pd, &["--timeout", "1"]);
    srv.get("/v1/nothing").err(404, "NOT_FOUND");
    srv.call("PUT", "/v1/accounts/anna/devices", None).err(405, "METHOD_NOT_ALLOWED");
    let r = request(&srv.addr, "POST", "/v1/accounts/anna/links/confirm", Some(b"{\"code\": "));
    r.err(400, "INVALID_INPUT");
    srv.post("/v1/accounts/anna/links/confirm", json!({"cod": "123456"})).err(400, "INVALID_INPUT");
    srv.post("/v1/accounts/anna/links/confirm", json!({"code": "123456"})).err(404, "TOKEN_UNKNOWN");
    srv.post("/v1/link-requests", json!({"request": "hello"})).err(400, "MALFORMED_MESSAGE");
    srv.post("/v1/status-requests", json!({"request": "TS:x"})).err(400, "MALFORMED_MESSAGE");
    srv.get("/v1/events?after=x").err(400, "INVALID_INPUT");
    srv.post("/v1/accounts/anna/challenges", json!({"amount": "1.00"})).err(400, "INVALID_INPUT");

    // 16 KiB at most: a larger body is refused unread.
    let big = json!({ "request": "A".repeat(17 * 1024) });
    srv.post("/v1/link-requests", big).err(413, "REQUEST_TOO_LARGE");
    let fits = json!({ "request": "A".repeat(15 * 1024) });
    srv.post("/v1/link-requests", fits).err(400, "MALFORMED_MESSAGE");

    // A client that sends nothing is answered 408 after --timeout.
    let t0 = Instant::now();
    let mut conn = TcpStream::connect(&srv.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = read_reply(&mut conn);
    r.err(408, "REQUEST_TIMEOUT");
    assert!(t0.elapsed() >= Duration::from_millis(900) && t0.elapsed() < Duration::from_secs(5));
    // A body that stops halfway too.
    let mut conn = TcpStream::connect(&srv.addr).unwrap();
    let head = "POST /v1/link-requests HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    conn.write_all(format!("{head}{{\"req").as_bytes()).unwrap();
    read_reply(&mut conn).err(408, "REQUEST_TIMEOUT");
    assert_eq!(srv.get("/health").status, 200);
    // The demo page is served on loopback.
    let page = srv.get("/");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.raw).contains("TEST / DEMO PAGE"));
    let svg = srv.post("/v1/qr.svg", json!({"text": "TS:hello"}));
    assert!(svg.head.contains("image/svg+xml") && String::from_utf8_lossy(&svg.raw).contains("<svg"));
    assert!(srv.terminate().success());
    let off = Server::start(&pd, &["--no-demo-page"]);
    off.get("/").err(404, "NOT_FOUND");

    // Stores: postgres needs tessera-store; a missing portal is STORAGE.
    fails(&["serve", "--dir", s(&pd), "--listen", "127.0.0.1:0", "--db", "postgres://localhost/tessera"], "STORAGE");
    fails(&["serve", "--dir", s(&tmp("nothing")), "--listen", "127.0.0.1:0"], "STORAGE");
    fails(&["serve", "--dir", s(&pd), "--listen", "127.0.0.1:0", "--db", "mysql://x"], "INVALID_INPUT");
    let other = Server::start(&pd, &["--db", &format!("sqlite:{}", pd.join("portal.db").display())]);
    assert_eq!(other.get("/health").status, 200);
}

#[test]
fn each_account_has_a_rate_limit() {
    let pd = new_portal("rate");
    let dd = tmp("rate-phone");
    let srv = Server::start(&pd, &["--rate-limit", "3/min", "--rate-limit-per-ip", "16/min"]);
    // Host routes count for their account; the phone's link request does
    // not (its account is only known from unauthenticated text).
    let qr = srv.post("/v1/accounts/dora/link-offers", json!({})).ok()["qr_text"].as_str().unwrap().to_owned();
    ok(&["device", "link", "--dir", s(&dd), "--qr", &qr, "--name", "P", "--passcode", PASSCODE, "--server", &srv.url]);
    srv.get("/v1/accounts/dora/links").ok();
    srv.get("/v1/accounts/dora/devices").ok();
    let r = srv.get("/v1/accounts/dora/devices");
    r.err(429, "RATE_LIMITED");
    let retry: u64 = r
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .unwrap_or_else(|| panic!("no Retry-After: {}", r.head))
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Another account, and the health check, are not limited by it.
    srv.get("/v1/accounts/emil/devices").ok();
    for _ in 0..5 {
        assert_eq!(srv.get("/health").status, 200);
    }
    // 11 requests so far from this address: its own bucket (16/min) ends
    // after about 5 more, whatever they name.
    let mut answered = 0;
    loop {
        let r = srv.post("/v1/link-requests", json!({"request": "hello"}));
        if r.status == 429 {
            r.err(429, "RATE_LIMITED");
            break;
        }
        r.err(400, "MALFORMED_MESSAGE");
        answered += 1;
        assert!(answered <= 8, "the client address has no bucket");
    }
    assert!(answered >= 3, "{answered}");
    srv.get("/v1/accounts/fred/devices").err(429, "RATE_LIMITED");
    fails(&["serve", "--dir", s(&pd), "--rate-limit", "0/min"], "INVALID_INPUT");
    fails(&["serve", "--dir", s(&pd), "--rate-limit-per-ip", "x"], "INVALID_INPUT");
}

#[test]
fn help_documents_the_service() {
    let help = ok(&["help"]);
    for words in ["serve --dir P --listen 127.0.0.1:8080", "device link --qr QR … --server URL"] {
        assert!(help.contains(words), "`tessera help` lacks {words:?}");
    }
    let serve = ok(&["serve", "--help"]);
    for flag in [
        "--dir",
        "--listen",
        "--db",
        "--rate-limit",
        "--rate-limit-per-ip",
        "--max-connections-per-ip",
        "--auth-token-file",
        "--timeout",
        "--workers",
        "--no-demo-page",
    ] {
        assert!(serve.contains(flag), "`tessera serve --help` lacks {flag}");
    }
}

#[test]
fn slow_clients_hold_no_store_connection() {
    let pd = new_portal("slow");
    let srv = Server::start(&pd, &["--workers", "1", "--timeout", "5"]);
    // Three clients that send half a request and wait.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(&srv.addr).unwrap();
            c.write_all(
                b"POST /v1/link-requests HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{",
            )
            .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(srv.get("/v1/accounts/gus/devices").ok(), json!([]));
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    drop(idle);
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let pd = new_portal("term");
    let srv = Server::start(&pd, &[]);
    let addr = srv.addr.clone();
    let body = json!({}).to_string();
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = "POST /v1/accounts/fritz/link-offers HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length";
    write!(conn, "{head}: {}\r\n\r\n", body.len()).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = srv.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    // Still answered: the request was accepted before the signal.
    conn.write_all(body.as_bytes()).unwrap();
    let r = read_reply(&mut conn);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["qr_text"].as_str().unwrap().starts_with("TS:"));
    let log_path = srv.log.clone();
    assert!(srv.terminate().success());
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(log.contains("\"msg\":\"stopped\""), "{log}");
    assert!(TcpStream::connect(&addr).is_err(), "still listening after exit");
}

const TOKEN: &str = "s3cret-token-0123456789abcdef";

/// Sockets from this process that each send `head` then one byte every
/// 150 ms until `stop` (a thread; the sockets that fail are skipped).
fn tricklers(
    addr: &str,
    n: usize,
    head: &'static [u8],
) -> (std::sync::Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..n {
        let Ok(c) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) else { continue };
        let _ = c.set_write_timeout(Some(Duration::from_millis(100)));
        conns.push(c);
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let halt = std::sync::Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        // Every head at once, so that each socket's next byte comes 150 ms later.
        for c in &mut conns {
            let _ = c.write_all(head);
        }
        while !halt.load(Ordering::Relaxed) {
            for c in &mut conns {
                let _ = c.write_all(b"a");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    (stop, t)
}

/// `GET /health` on its own connection to `addr`: its status, or `None`
/// when no answer came within 2 seconds.
fn health_within_2s(addr: &str) -> Option<u16> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let status = std::str::from_utf8(&raw).ok()?.split(' ').nth(1)?.parse().ok()?;
    (t0.elapsed() < Duration::from_secs(2)).then_some(status)
}

#[test]
fn clients_trickling_after_their_answer_do_not_hold_every_slot() {
    // Attack: 260 connections (more than the 256 slots) each send a request
    // whose body is refused unread (413), then trickle a byte every 150 ms:
    // the close-time drain must not keep their slots.
    let pd = new_portal("drain");
    let srv = Server::start(&pd, &["--max-connections-per-ip", "1000", "--rate-limit-per-ip", "100000/min"]);
    let head = b"POST /v1/link-requests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Content-Length: 900000\r\n\r\n";
    let (stop, t) = tricklers(&srv.addr, 260, head);
    std::thread::sleep(Duration::from_millis(1500));
    let health = health_within_2s(&srv.addr);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert_eq!(health, Some(200), "/health did not answer within 2 s");
}

#[test]
fn one_address_cannot_take_every_slot_with_slow_heads() {
    // Attack: 260 connections from 127.0.0.1 trickle a request head that
    // never ends (each would hold its slot until --timeout); /health from
    // another address ([::1]) must still be answered. Listening on every
    // address needs a token.
    let pd = new_portal("per-ip");
    let srv = Server::with_token(&pd, "[::]:0", TOKEN, &["--timeout", "30"]);
    let port = srv.addr.rsplit_once(':').unwrap().1.to_owned();
    let v4 = format!("127.0.0.1:{port}");
    let (stop, t) = tricklers(&v4, 260, b"GET /health HTTP/1.1\r\nX-Slow: ");
    std::thread::sleep(Duration::from_millis(1500));
    let health = health_within_2s(&format!("[::1]:{port}"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert_eq!(health, Some(200), "/health did not answer within 2 s");
    assert!(srv.log().contains("TOO_MANY_CONNECTIONS"));
}

#[test]
fn host_routes_need_the_token_and_phone_routes_do_not() {
    let pd = new_portal("auth");
    let dd = tmp("auth-phone");
    let srv = Server::with_token(&pd, "127.0.0.1:0", TOKEN, &[]);
    let anon = |method: &str, path: &str, body: Option<&Value>| {
        let body = body.map(|b| b.to_string());
        request(&srv.addr, method, path, body.as_deref().map(str::as_bytes))
    };
    // The takeover without credentials: an offer for the victim's account...
    let r = anon("POST", "/v1/accounts/victim/link-offers", Some(&json!({})));
    r.err(401, "UNAUTHENTICATED");
    assert!(r.head.lines().any(|l| l == "WWW-Authenticate: Bearer"), "{}", r.head);
    // ... a wrong token, or another scheme, is no better ...
    let wrong = "Authorization: Bearer s3cret-token-0123456789abcdeX\r\n";
    request_with(&srv.addr, "POST", "/v1/accounts/victim/link-offers", wrong, Some(b"{}")).err(401, "UNAUTHENTICATED");
    let basic = format!("Authorization: Basic {TOKEN}\r\n");
    request_with(&srv.addr, "POST", "/v1/accounts/victim/link-offers", &basic, Some(b"{}")).err(401, "UNAUTHENTICATED");
    // ... and every other host action.
    anon("POST", "/v1/accounts/victim/links/confirm", Some(&json!({"code": "123456"}))).err(401, "UNAUTHENTICATED");
    anon("GET", "/v1/accounts/victim/devices", None).err(401, "UNAUTHENTICATED");
    anon("POST", "/v1/accounts/victim/devices/d/unlock", Some(&json!({}))).err(401, "UNAUTHENTICATED");
    anon("DELETE", "/v1/accounts/victim/devices/d", None).err(401, "UNAUTHENTICATED");
    anon("GET", "/v1/events", None).err(401, "UNAUTHENTICATED");
    anon("POST", "/v1/accounts/victim/challenges", Some(&json!({}))).err(401, "UNAUTHENTICATED");
    // With the token the same sequence works; the phone (device simulator)
    // sends no token.
    let (id, _) = link(&srv, &dd, "victim", "Pixel");
    assert_eq!(ok(&["device", "status-request", "--dir", s(&dd), "--server", &srv.url]), "still linked");
    let (qr, cid) = login_challenge(&srv, "victim");
    let code = ok(&["device", "answer", "--dir", s(&dd), "--qr", &qr, "--passcode", PASSCODE]);
    let v = anon("POST", &format!("/v1/challenges/{cid}/answer"), Some(&json!({ "answer": code })));
    assert_eq!(v.ok()["device_id"], id);
    anon("GET", &format!("/v1/challenges/{cid}"), None).err(401, "UNAUTHENTICATED");
    assert_eq!(srv.get(&format!("/v1/challenges/{cid}")).ok()["status"], "answered");
    // No demo page with a token; the health check stays open.
    anon("GET", "/", None).err(404, "NOT_FOUND");
    assert_eq!(anon("GET", "/health", None).status, 200);
    // A token is refused when short; the demo page cannot be forced on.
    let short = tmp("auth-short-token");
    std::fs::write(&short, "tooshort\n").unwrap();
    let o =
        fails(&["serve", "--dir", s(&pd), "--listen", "127.0.0.1:0", "--auth-token-file", s(&short)], "INVALID_INPUT");
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 16"));
    let o = tessera_cmd()
        .args(["serve", "--dir", s(&pd), "--listen", "127.0.0.1:0", "--demo-page"])
        .env("TESSERA_SERVE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_tokenless_server_keeps_browsers_out_and_stays_on_loopback() {
    let pd = new_portal("browser");
    let srv = Server::start(&pd, &[]);
    // A cross-site form post: text/plain (or no type) is refused unread.
    let plain = "Content-Type: text/plain\r\n";
    let r = request_with(&srv.addr, "POST", "/v1/accounts/anna/devices/d1/unlock", plain, None);
    r.err(415, "UNSUPPORTED_MEDIA_TYPE");
    let mut c = TcpStream::connect(&srv.addr).unwrap();
    c.write_all(b"POST /v1/accounts/anna/link-offers HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    read_reply(&mut c).err(415, "UNSUPPORTED_MEDIA_TYPE");
    // DNS rebinding: a page of evil.example that resolves to 127.0.0.1.
    for path in ["/v1/accounts/anna/devices", "/health", "/"] {
        let mut c = TcpStream::connect(&srv.addr).unwrap();
        c.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: evil.example:{}\r\n\r\n", srv.addr.rsplit_once(':').unwrap().1)
                .as_bytes(),
        )
        .unwrap();
        read_reply(&mut c).err(421, "FORBIDDEN_HOST");
    }
    let mut c = TcpStream::connect(&srv.addr).unwrap();
    c.write_all(b"GET /v1/accounts/anna/devices HTTP/1.1\r\nHost: localhost:1\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut c).ok(), json!([]));
    assert!(srv.log().contains("warning: no bearer token"), "{}", srv.log());
    // Not on every address without a token.
    let o = fails(&["serve", "--dir", s(&pd), "--listen", "0.0.0.0:0"], "INVALID_INPUT");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--auth-token-file"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn junk_status_requests_naming_a_device_do_not_drain_its_account() {
    // Attack: status requests that name the victim's device but are not
    // signed by it, charged (before) to the victim's account bucket.
    let pd = new_portal("aim");
    let dd = tmp("aim-phone");
    let srv = Server::start(&pd, &["--rate-limit", "5/min", "--rate-limit-per-ip", "100000/min"]);
    let (_id, _) = link(&srv, &dd, "owner", "Phone");
    let real = ok(&["device", "status-request", "--dir", s(&dd)]);
    let mut junk = real.into_bytes();
    let i = junk.len() - 5;
    junk[i] = if junk[i] == b'A' { b'B' } else { b'A' };
    let junk = String::from_utf8(junk).unwrap();
    for _ in 0..200 {
        let r = srv.post("/v1/status-requests", json!({ "request": junk }));
        assert_ne!(r.status, 200, "{}", r.body);
        assert_ne!(r.status, 429, "{}", r.body);
    }
    srv.post("/v1/accounts/owner/challenges", json!({})).ok();
}

#[test]
fn long_account_names_are_refused() {
    let pd = new_portal("long");
    let srv = Server::start(&pd, &[]);
    let name = "a".repeat(10_000);
    srv.get(&format!("/v1/accounts/{name}/devices")).err(400, "INVALID_INPUT");
    srv.post(&format!("/v1/accounts/{name}/link-offers"), json!({})).err(400, "INVALID_INPUT");
    srv.get(&format!("/v1/accounts/{}/devices", "a".repeat(128))).ok();
}

#[test]
fn a_storage_failure_tells_the_client_nothing_of_the_database() {
    let pd = new_portal("storage");
    let srv = Server::start(&pd, &[]);
    assert_eq!(srv.get("/health").status, 200);
    // The store breaks under the running server: not a database any more.
    std::fs::write(pd.join("portal.db"), vec![b'x'; 8192]).unwrap();
    let r = srv.get("/v1/accounts/anna/devices");
    r.err(503, "STORAGE");
    let text = r.body.to_string().to_lowercase();
    for word in ["database", "sqlstate", "sqlite", "file is not", "portal.db"] {
        assert!(!text.contains(word), "the body shows {word}: {text}");
    }
    // The detail is in the server's log.
    assert!(srv.log().contains("\"detail\""), "{}", srv.log());
}
