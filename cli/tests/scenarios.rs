//! The CLI runner of the language-neutral scenario files
//! (`vectors/scenarios/*.json`, format in `vectors/scenarios/README.md`).
//!
//! Every step runs as separate `tessera` processes, as a user or a tool
//! drives them: one directory for the portal (its SQLite store applies
//! every change as compare-and-sets), one per phone, one JSON state file
//! per OTP verifier; the step's `at` is `--now`/`--time`. A refusal is told
//! from a failed call by the verdict the `--json` output prints before the
//! `error[CODE]` exit (its change was stored).
//!
//! One adaptation: `tessera device status-finish` is the app, which wipes
//! its link when it hears `DEVICE_REVOKED` or `LINK_NOT_CONFIRMED`; in the
//! scenario world only the `wipe` op forgets a phone's state, so the runner
//! puts the phone's directory back as it was after such an answer.
//!
//! Flow 3 (activation of offline authenticators): a token is a `tessera
//! token` directory whose maker's record `token new --export` appended to
//! its own factory file; `importDevices` writes the step's file from those
//! records and hands it to `portal import-devices`; `order` names the
//! token's serial (`--serial`); the activation steps are `portal
//! activation-start` / `activation-next`, whose snake_case steps
//! (`device_code`) are the API's camelCase ones (`deviceCode`) in the files.
//!
//! An op the CLI has no command for would be skipped with its reason and
//! counted (today every op has one, challenges and flows 2 and 3 included); a step
//! with `skip` is skipped as in every runner. An unknown op, key or
//! expectation fails the file.

#![allow(clippy::unwrap_used, clippy::panic)] // test code

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fewer scenario files than this means the directory was not found, or
/// files were lost (23 files were there when this runner was written).
const MIN_FILES: usize = 10;

/// Ops, the inputs each takes besides `do`, `at`, `expect`, `events` and
/// `skip`, and the facts its `expect` object may name.
const OPS: &[(&str, &str, &str)] = &[
    ("portal", "name", ""),
    ("offer", "account ttl rules deviceCodes save", ""),
    ("scan", "phone qr pinned edit", "portalName expiresAt"),
    ("startLink", "phone qr name passcode biometrics pinned edit", ""),
    ("accept", "phone edit offer deviceKeySeen", ""),
    ("finish", "phone edit answer", ""),
    ("confirm", "account code", ""),
    ("devices", "account", "devices"),
    ("rename", "phone name", ""),
    ("unlink", "phone token", ""),
    ("status", "phone edit again", "status"),
    ("deviceCode", "phone passcode biometric replay", ""),
    ("wipe", "phone", ""),
    ("hotp", "secret counter digits algorithm", "code"),
    ("totp", "secret period digits algorithm", "code"),
    ("verifyHotp", "verifier config state code", "matched drift"),
    ("verifyTotp", "verifier config state code", "matched drift"),
    ("resyncHotp", "verifier config state code1 code2 window", "matched drift"),
    ("unlock", "verifier", ""),
    ("challenge", "account phone approval digits ttl save", ""),
    ("readChallenge", "phone qr edit", "portalName account approval digits"),
    ("answer", "phone qr passcode biometric signed edit", ""),
    ("verify", "challenge answer edit", "device"),
    ("unlockDevice", "phone", ""),
    ("offerNewDevice", "account save", ""),
    ("linkChallenge", "phone digits ttl save", ""),
    ("vouch", "phone challenge answer edit", ""),
    ("clone", "phone from", ""),
    ("activationSettings", "settings", ""),
    ("token", "token serial", ""),
    ("importDevices", "tokens header lines", "serials"),
    ("order", "account activationCode token save", ""),
    ("activationStart", "order save", "step qr"),
    ("activationNext", "activation input", "step qr recoveryCodes"),
    ("tokenScan", "token qr edit", "kind digits portalName userId approval replaced"),
    ("verifyPassword", "account password", ""),
    ("redeemRecoveryCode", "account code", "left"),
];

/// Ops the CLI has no command for, with the reason (skipped and counted).
const NO_COMMAND: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------
// Processes

/// One finished `tessera` process.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The `CODE` of `error[CODE]` on stderr.
    fn code(&self) -> Option<String> {
        let start = self.stderr.find("error[")? + 6;
        let len = self.stderr[start..].find(']')?;
        Some(self.stderr[start..start + len].to_owned())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }

    fn line(&self) -> String {
        self.stdout.trim().to_owned()
    }
}

fn tessera(args: &[String]) -> Ran {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for v in ["TESSERA_PORTAL_SECRET", "TESSERA_DEVICE_KEY"] {
        c.env_remove(v);
    }
    let o = c.args(args).output().expect("run tessera");
    Ran {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Builds an argument list.
#[derive(Default)]
struct Argv(Vec<String>);

impl Argv {
    fn new(words: &[&str]) -> Self {
        Argv(words.iter().map(|w| (*w).to_owned()).collect())
    }
    /// `--flag=value`: a value may start with `-` (`--ttl=-1`).
    fn arg(mut self, flag: &str, value: impl ToString) -> Self {
        self.0.push(format!("{flag}={}", value.to_string()));
        self
    }
    fn dir(self, d: &Path) -> Self {
        self.arg("--dir", d.display())
    }
    fn opt(self, flag: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.arg(flag, v),
            None => self,
        }
    }
    fn flag(mut self, flag: &str, on: bool) -> Self {
        if on {
            self.0.push(flag.to_owned());
        }
        self
    }
    fn run(self) -> Ran {
        tessera(&self.0)
    }
}

// ---------------------------------------------------------------------------
// What a step did

/// `label`: `ok`, `accepted`, `repeated`, `refused` (a verdict whose change
/// was stored) or `error` (the call failed), with the code of the last two.
#[derive(Debug, Default)]
struct Seen {
    label: &'static str,
    code: Option<String>,
    facts: Map<String, Value>,
    events: Vec<String>,
}

impl Seen {
    fn ok() -> Self {
        Seen { label: "ok", ..Default::default() }
    }

    fn with(mut self, fact: &str, v: Value) -> Self {
        self.facts.insert(fact.to_owned(), v);
        self
    }

    /// A process's outcome: its verdict (`--json`), else its exit.
    fn of(r: &Ran) -> Self {
        let j = r.json().unwrap_or(Value::Null);
        let events = j["events"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["kind"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let label = match j["verdict"]["kind"].as_str() {
            Some("accepted") => "accepted",
            Some("repeated") => "repeated",
            Some("refused") => "refused",
            _ if r.ok => "ok",
            _ => "error",
        };
        let code = match label {
            "refused" => j["verdict"]["code"].as_str().map(str::to_owned),
            "error" => Some(r.code().unwrap_or_else(|| format!("no error code in: {}", r.stderr.trim()))),
            _ => None,
        };
        Seen { label, code, facts: Map::new(), events }
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.label)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if !self.facts.is_empty() {
            write!(f, " {}", Value::Object(self.facts.clone()))?;
        }
        Ok(())
    }
}

/// Compare what a step did with its `expect` and `events`.
fn judge(step: &Map<String, Value>, facts_allowed: &str, seen: &Seen) -> Result<(), String> {
    let known_code = |v: &Value| -> Result<String, String> {
        let s = v.as_str().ok_or_else(|| format!("an error code is a string, not {v}"))?;
        tessera_host::ErrorCode::parse(s).map(|_| s.to_owned()).ok_or_else(|| format!("unknown error code {s:?}"))
    };
    // (labels that pass, code, facts)
    let (labels, code, facts): (&[&str], Option<String>, Option<&Map<String, Value>>) = match step.get("expect") {
        None => (&["ok", "accepted"], None, None),
        Some(Value::String(s)) if s == "ok" => (&["ok", "accepted"], None, None),
        Some(Value::String(s)) if s == "accepted" => (&["accepted"], None, None),
        Some(Value::String(s)) if s == "repeated" => (&["repeated"], None, None),
        Some(Value::Object(m)) if m.len() == 1 && m.contains_key("refused") => {
            (&["refused"], Some(known_code(&m["refused"])?), None)
        }
        Some(Value::Object(m)) if m.len() == 1 && m.contains_key("error") => {
            (&["error"], Some(known_code(&m["error"])?), None)
        }
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| !facts_allowed.split(' ').any(|f| f == k.as_str())) {
                return Err(format!("unknown expectation key `{k}` for this op"));
            }
            (&["ok", "accepted"], None, Some(m))
        }
        Some(v) => return Err(format!("unknown expectation {v}")),
    };
    let want = step.get("expect").map_or_else(|| "ok".to_owned(), Value::to_string);
    if !labels.contains(&seen.label) || (code.is_some() && code != seen.code) {
        return Err(format!("expected {want}, got {seen}"));
    }
    for (k, v) in facts.into_iter().flatten() {
        if seen.facts.get(k) != Some(v) {
            return Err(format!("expected {k} = {v}, got {seen}"));
        }
    }
    if let Some(want) = step.get("events") {
        if *want != json!(seen.events) {
            return Err(format!("expected events {want}, got {:?}", seen.events));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The world of one scenario: directories and what the phones remember

#[derive(Default)]
struct Phone {
    name: String,
    request: Option<String>,
    answer: Option<String>,
    if_not_stored: Option<String>,
    check_code: Option<String>,
    account: Option<String>,
    device_id: Option<String>,
    last_code: Option<String>,
    /// The portal's genuine answer to the phone's last status request.
    last_status_answer: Option<String>,
    /// The last challenge answer (typed code or signed answer text).
    last_answer: Option<String>,
}

/// An offline authenticator (flow 3): its directory is `token-NAME`.
#[derive(Default)]
struct Tok {
    name: String,
    serial: String,
    /// Its factory record line (from the file `token new` appended to).
    record: String,
    /// The last code it showed.
    last_code: Option<String>,
    /// Its registry id, once bound.
    device_id: Option<String>,
    /// The account it was ordered for.
    account: Option<String>,
}

/// An order var: the letter's user ID and initial password.
struct Letter {
    user_id: String,
    initial_password: String,
}

struct World {
    root: PathBuf,
    tokens: Vec<Tok>,
    orders: HashMap<String, Letter>,
    /// Activation ids by var (the var in `vars` holds its step's QR text).
    activation_ids: HashMap<String, String>,
    /// Recovery codes shown by the activation of a var.
    recovery_codes: HashMap<String, Vec<String>>,
    /// Factory files written so far.
    imports: usize,
    portal: Option<PathBuf>,
    portal_key: Option<String>,
    other_key: Option<String>,
    phones: Vec<Phone>,
    vars: HashMap<String, String>,
    /// Challenge ids by the var their QR text was saved under.
    challenge_ids: HashMap<String, String>,
    /// `portal` steps so far.
    tries: usize,
}

/// The step's inputs.
struct In<'a>(&'a Map<String, Value>);

impl In<'_> {
    fn text(&self, k: &str) -> Result<Option<String>, String> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("`{k}` is a string, not {v}")),
        }
    }
    fn need(&self, k: &str) -> Result<String, String> {
        self.text(k)?.ok_or_else(|| format!("missing input `{k}`"))
    }
    fn int(&self, k: &str) -> Result<Option<i64>, String> {
        self.0.get(k).map(|v| v.as_i64().ok_or_else(|| format!("`{k}` is an integer, not {v}"))).transpose()
    }
    fn yes(&self, k: &str) -> Result<bool, String> {
        match self.0.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(format!("`{k}` is a boolean, not {v}")),
        }
    }
    /// `--now`: the step's Unix seconds.
    fn at(&self) -> Result<u64, String> {
        self.0.get("at").and_then(Value::as_u64).ok_or_else(|| "missing `at` (Unix seconds)".to_owned())
    }
}

/// `tamper`: the middle character becomes `A` (`B` if it was `A`);
/// `truncate`: the last 10 characters go.
fn edited(text: String, how: Option<String>) -> Result<String, String> {
    let mut chars: Vec<char> = text.chars().collect();
    match how.as_deref() {
        None => {}
        Some("tamper") => {
            let mid = chars.len() / 2;
            chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        }
        Some("truncate") => chars.truncate(chars.len().saturating_sub(10)),
        Some(other) => return Err(format!("unknown edit {other:?}")),
    }
    Ok(chars.into_iter().collect())
}

/// Every digit + 1 mod 10.
fn off_by_one(code: &str) -> String {
    code.bytes()
        .map(|b| if b.is_ascii_digit() { char::from(b'0' + (b - b'0' + 1) % 10) } else { char::from(b) })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

impl World {
    fn new(root: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        World {
            root,
            tokens: Vec::new(),
            orders: HashMap::new(),
            activation_ids: HashMap::new(),
            recovery_codes: HashMap::new(),
            imports: 0,
            portal: None,
            portal_key: None,
            other_key: None,
            phones: Vec::new(),
            vars: HashMap::new(),
            challenge_ids: HashMap::new(),
            tries: 0,
        }
    }

    fn portal(&self) -> Result<PathBuf, String> {
        self.portal.clone().ok_or_else(|| "no portal: a `portal` step comes first".to_owned())
    }

    fn phone_dir(&self, i: usize) -> PathBuf {
        self.root.join(format!("phone-{i}"))
    }

    /// The phone's index, created on first use.
    fn phone(&mut self, i: &In<'_>) -> Result<usize, String> {
        let name = i.need("phone")?;
        Ok(match self.phones.iter().position(|p| p.name == name) {
            Some(n) => n,
            None => {
                self.phones.push(Phone { name, ..Default::default() });
                self.phones.len() - 1
            }
        })
    }

    fn qr(&self, i: &In<'_>) -> Result<String, String> {
        let var = i.need("qr")?;
        let text = self.vars.get(&var).cloned().ok_or_else(|| format!("no var `{var}`"))?;
        edited(text, i.text("edit")?)
    }

    /// `--portal-key` for `pinned`: this portal's key, or another portal's.
    fn pinned(&mut self, i: &In<'_>) -> Result<Option<String>, String> {
        match i.0.get("pinned") {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => self.portal_key.clone().map(Some).ok_or_else(|| "no portal".to_owned()),
            Some(Value::String(s)) if s == "other" => {
                if self.other_key.is_none() {
                    let r = Argv::new(&["portal", "init", "--name", "Other Portal", "--json"])
                        .dir(&self.root.join("other-portal"))
                        .run();
                    self.other_key = r.json().and_then(|j| j["public_key"].as_str().map(str::to_owned));
                }
                self.other_key.clone().map(Some).ok_or_else(|| "could not make another portal".to_owned())
            }
            Some(v) => Err(format!("`pinned` is true, false or \"other\", not {v}")),
        }
    }

    /// The linked phone's account and device id.
    fn linked(&self, p: usize) -> Result<(String, String), String> {
        let ph = &self.phones[p];
        match (&ph.account, &ph.device_id) {
            (Some(a), Some(d)) => Ok((a.clone(), d.clone())),
            _ => Err(format!("phone {} was never linked", ph.name)),
        }
    }

    /// The linked device id of the step's phone.
    fn device_id(&mut self, i: &In<'_>) -> Result<String, String> {
        let p = self.phone(i)?;
        self.linked(p).map(|(_, id)| id)
    }

    /// `answer`: a phone's last challenge answer, or `wrong:p1` (its typed
    /// code with every digit + 1 mod 10); then the step's `edit`.
    fn challenge_answer(&self, i: &In<'_>) -> Result<String, String> {
        let who = i.need("answer")?;
        let (name, wrong) = match who.strip_prefix("wrong:") {
            Some(name) => (name, true),
            None => (who.as_str(), false),
        };
        let last = self.last_answer_of(name)?;
        edited(if wrong { off_by_one(&last) } else { last }, i.text("edit")?)
    }

    /// A phone's last challenge answer, or else a token's last code.
    fn last_answer_of(&self, name: &str) -> Result<String, String> {
        match self.phones.iter().find(|p| p.name == name) {
            Some(p) => p.last_answer.clone(),
            None => self.token_named(name)?.last_code.clone(),
        }
        .ok_or_else(|| format!("phone or token {name} has no answer"))
    }

    fn token_dir(&self, name: &str) -> PathBuf {
        self.root.join(format!("token-{name}"))
    }

    fn token_named(&self, name: &str) -> Result<&Tok, String> {
        self.tokens.iter().find(|t| t.name == name).ok_or_else(|| format!("no token {name:?}"))
    }

    fn letter(&self, var: &str) -> Result<&Letter, String> {
        self.orders.get(var).ok_or_else(|| format!("no order `{var}`"))
    }

    /// Keep what an activation command printed under the var: its id, the
    /// step's QR text, the recovery codes; the facts the files check.
    fn activation_seen(&mut self, var: String, r: &Ran) -> Seen {
        let j = r.json().unwrap_or_default();
        if let Some(id) = j["id"].as_str() {
            self.activation_ids.insert(var.clone(), id.to_owned());
        }
        if let Some(qr) = j["qr"].as_str() {
            self.vars.insert(var.clone(), qr.to_owned());
        }
        let codes: Vec<String> = j["recovery_codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        let count = codes.len();
        if !codes.is_empty() {
            self.recovery_codes.insert(var, codes);
        }
        Seen::of(r)
            .with("step", j["step"].as_str().map_or(Value::Null, |s| json!(camel(s))))
            .with("qr", json!(j.get("qr").is_some()))
            .with("recoveryCodes", json!(count))
    }

    /// `challenge`: the id of the challenge whose QR text is in that var.
    fn challenge_id(&self, i: &In<'_>) -> Result<String, String> {
        let var = i.need("challenge")?;
        self.challenge_ids.get(&var).cloned().ok_or_else(|| format!("no challenge `{var}`"))
    }

    /// The phone whose device id this is (a scenario names phones, not ids).
    fn phone_of(&self, device_id: &Value) -> Value {
        let is = |d: &Option<String>| d.is_some() && d.as_deref() == device_id.as_str();
        match self.phones.iter().find(|p| is(&p.device_id)) {
            Some(p) => json!(p.name),
            None => match self.tokens.iter().find(|t| is(&t.device_id)) {
                Some(t) => json!(t.name),
                None => device_id.clone(),
            },
        }
    }

    /// A new challenge's QR text in `vars[save]`, its id beside it.
    fn saved_challenge(&mut self, r: &Ran, save: String) {
        if let Some(j) = r.json().filter(|_| r.ok) {
            if let (Some(qr), Some(id)) = (j["qr"].as_str(), j["challenge_id"].as_str()) {
                self.vars.insert(save.clone(), qr.to_owned());
                self.challenge_ids.insert(save, id.to_owned());
            }
        }
    }

    fn verifier_file(&self, i: &In<'_>) -> Result<PathBuf, String> {
        Ok(self.root.join(format!("verifier-{}.json", i.need("verifier")?)))
    }

    fn step(&mut self, op: &str, i: &In<'_>) -> Result<Seen, String> {
        match op {
            "portal" => {
                if self.portal.is_some() {
                    return Err("a scenario has one portal".into());
                }
                // A fresh directory for every attempt (a refused name makes none).
                let dir = self.root.join(format!("portal-{}", self.tries));
                self.tries += 1;
                let r = Argv::new(&["portal", "init", "--json"]).dir(&dir).arg("--name", i.need("name")?).run();
                if r.ok {
                    self.portal_key = r.json().and_then(|j| j["public_key"].as_str().map(str::to_owned));
                    self.portal = Some(dir);
                }
                Ok(Seen::of(&r))
            }
            "offer" => {
                let mut a = Argv::new(&["portal", "link-offer", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .arg("--now", i.at()?)
                    .opt("--ttl", i.int("ttl")?);
                if let Some(rules) = i.0.get("rules") {
                    let m = rules.as_object().ok_or("`rules` is an object")?;
                    let r = In(m);
                    if let Some(k) = m
                        .keys()
                        .find(|k| !["minLen", "maxLen", "digitsOnly", "biometricsAllowed"].contains(&k.as_str()))
                    {
                        return Err(format!("unknown key `{k}` in rules"));
                    }
                    let off = |k: &str| m.get(k) == Some(&Value::Bool(false));
                    a = a
                        .opt("--passcode-min", r.int("minLen")?)
                        .opt("--passcode-max", r.int("maxLen")?)
                        .flag("--alphanumeric", off("digitsOnly"))
                        .flag("--no-biometrics", off("biometricsAllowed"));
                }
                if let Some(codes) = i.0.get("deviceCodes") {
                    let m = codes.as_object().ok_or("`deviceCodes` is an object")?;
                    if let Some(k) = m.keys().find(|k| !["algorithm", "digits", "periodSeconds"].contains(&k.as_str()))
                    {
                        return Err(format!("unknown key `{k}` in deviceCodes"));
                    }
                    let r = In(m);
                    a = a
                        .opt("--code-algorithm", r.text("algorithm")?)
                        .opt("--code-digits", r.int("digits")?)
                        .opt("--code-period", r.int("periodSeconds")?);
                }
                let save = i.need("save")?;
                let r = a.run();
                if let Some(qr) = r.json().and_then(|j| j["qr_text"].as_str().map(str::to_owned)) {
                    self.vars.insert(save, qr);
                }
                Ok(Seen::of(&r))
            }
            "scan" => {
                let p = self.phone(i)?;
                let r = Argv::new(&["device", "scan", "--json"])
                    .dir(&self.phone_dir(p))
                    .arg("--qr", self.qr(i)?)
                    .opt("--portal-key", self.pinned(i)?)
                    .arg("--now", i.at()?)
                    .run();
                let j = r.json().unwrap_or_default();
                Ok(Seen::of(&r).with("portalName", j["portal"].clone()).with("expiresAt", j["expires_at"].clone()))
            }
            "startLink" => {
                let p = self.phone(i)?;
                let r = Argv::new(&["device", "link", "--json"])
                    .dir(&self.phone_dir(p))
                    .arg("--qr", self.qr(i)?)
                    .arg("--name", i.need("name")?)
                    .arg("--passcode", i.need("passcode")?)
                    .flag("--biometric", i.yes("biometrics")?)
                    .opt("--portal-key", self.pinned(i)?)
                    .arg("--now", i.at()?)
                    .run();
                if let Some(req) = r.json().and_then(|j| j["request"].as_str().map(str::to_owned)) {
                    let ph = &mut self.phones[p];
                    ph.request = Some(req);
                    ph.answer = None;
                    ph.if_not_stored = None;
                }
                Ok(Seen::of(&r))
            }
            "accept" => {
                let p = self.phone(i)?;
                let request = self.phones[p].request.clone().ok_or("the phone has sent no request")?;
                match i.text("offer")?.as_deref() {
                    None => {}
                    // As if the host found no offer row: the CLI portal reads
                    // its own store, so the row goes (SQLite, WAL as the CLI).
                    Some("missing") => {
                        let db =
                            rusqlite::Connection::open(self.portal()?.join("portal.db")).map_err(|e| e.to_string())?;
                        db.execute("DELETE FROM offers", []).map_err(|e| e.to_string())?;
                    }
                    Some(o) => return Err(format!("bad offer {o:?}")),
                }
                let r = Argv::new(&["portal", "link-accept", "--json"])
                    .dir(&self.portal()?)
                    .arg("--request", edited(request, i.text("edit")?)?)
                    .arg("--now", i.at()?)
                    .run();
                if let Some(j) = r.json() {
                    let ph = &mut self.phones[p];
                    ph.answer = j["answer"].as_str().map(str::to_owned);
                    ph.if_not_stored = j["if_not_stored"].as_str().map(str::to_owned);
                }
                Ok(Seen::of(&r))
            }
            "finish" => {
                let p = self.phone(i)?;
                let ph = &self.phones[p];
                let text = match i.text("answer")?.as_deref() {
                    None => ph.answer.clone(),
                    Some("ifNotStored") => ph.if_not_stored.clone(),
                    Some(other) => return Err(format!("unknown answer {other:?}")),
                }
                .ok_or("the phone has no answer")?;
                let r = Argv::new(&["device", "link-finish", "--json"])
                    .dir(&self.phone_dir(p))
                    .arg("--response", edited(text, i.text("edit")?)?)
                    .run();
                if let Some(j) = r.json() {
                    let ph = &mut self.phones[p];
                    ph.check_code = j["check_code"].as_str().map(str::to_owned);
                    ph.account = j["account"].as_str().map(str::to_owned);
                    ph.device_id = j["device_id"].as_str().map(str::to_owned);
                }
                Ok(Seen::of(&r))
            }
            "confirm" => {
                let who = i.need("code")?;
                let code = match who.strip_prefix("wrong") {
                    Some("") => self.phones.iter().find_map(|p| p.check_code.as_deref()).map(off_by_one),
                    Some(rest) => match rest.strip_prefix(':') {
                        Some(name) => self
                            .phones
                            .iter()
                            .find(|p| p.name == name)
                            .and_then(|p| p.check_code.as_deref())
                            .map(off_by_one),
                        None => return Err(format!("bad code {who:?}")),
                    },
                    None => {
                        let (form, name) = who.split_once(':').unwrap_or(("", who.as_str()));
                        let code = self.phones.iter().find(|p| p.name == name).and_then(|p| p.check_code.clone());
                        match form {
                            "" => code,
                            "prefix" => code.map(|c| c[..c.len() - 1].to_owned()),
                            "extra" => code.map(|c| format!("{c}0")),
                            "spaced" => code.map(|c| format!(" {c} ")),
                            _ => return Err(format!("bad code {who:?}")),
                        }
                    }
                }
                .ok_or_else(|| format!("no check code for {who:?}"))?;
                let r = Argv::new(&["portal", "link-confirm", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .arg("--code", code)
                    .arg("--now", i.at()?)
                    .run();
                Ok(Seen::of(&r))
            }
            "devices" => {
                let r = Argv::new(&["portal", "devices", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .run();
                let mut list: Vec<Value> = r
                    .json()
                    .and_then(|j| j.as_array().cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| json!({"name": d["name"], "status": d["status"]}))
                    .collect();
                list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok(Seen::of(&r).with("devices", Value::Array(list)))
            }
            "unlink" if i.0.contains_key("token") => {
                let t = self.token_named(&i.need("token")?)?;
                let id = t.device_id.clone().ok_or("the token was never bound")?;
                let account = t.account.clone().ok_or("the token was never ordered")?;
                let r = Argv::new(&["portal", "unlink", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", account)
                    .arg("--device", id)
                    .arg("--now", i.at()?)
                    .run();
                Ok(Seen::of(&r))
            }
            "activationSettings" => {
                let m = i.0.get("settings").and_then(Value::as_object).ok_or("`settings` is an object")?;
                let mut a = Argv::new(&["portal", "activation-settings", "--reset", "--json"]).dir(&self.portal()?);
                for (k, v) in m {
                    let flag = match k.as_str() {
                        "hashIterations" => "--hash-iterations",
                        "usableAfterSeconds" => "--usable-after",
                        "activationTtlSeconds" => "--activation-ttl",
                        "orderTtlSeconds" => "--order-ttl",
                        "challengeDigits" => "--challenge-digits",
                        "passwordMinLength" => "--password-min",
                        "passwordMaxLength" => "--password-max",
                        "blocklist" => {
                            for w in v.as_array().ok_or("`blocklist` is a list")? {
                                a = a.arg("--blocklist", w.as_str().ok_or("`blocklist` holds strings")?);
                            }
                            continue;
                        }
                        _ => return Err(format!("unknown key `{k}` in settings")),
                    };
                    a = a.arg(flag, v.as_i64().ok_or_else(|| format!("`{k}` is an integer"))?);
                }
                Ok(Seen::of(&a.run()))
            }
            "token" => {
                let name = i.need("token")?;
                if self.tokens.iter().any(|t| t.name == name) {
                    return Err(format!("token {name} exists"));
                }
                let export = self.root.join(format!("token-{name}.records"));
                let r = Argv::new(&["token", "new", "--json"])
                    .dir(&self.token_dir(&name))
                    .arg("--serial", i.need("serial")?)
                    .arg("--export", export.display())
                    .run();
                if let Some(serial) = r.json().and_then(|j| j["serial"].as_str().map(str::to_owned)) {
                    let text = std::fs::read_to_string(&export).map_err(|e| e.to_string())?;
                    let record = text.lines().last().ok_or("an empty factory file")?.to_owned();
                    self.tokens.push(Tok { name, serial, record, ..Default::default() });
                }
                Ok(Seen::of(&r))
            }
            "importDevices" => {
                let mut lines = vec![i.text("header")?.unwrap_or_else(|| "tessera-factory-records v1".into())];
                for n in i.0.get("tokens").and_then(Value::as_array).ok_or("`tokens` is a list")? {
                    lines.push(self.token_named(n.as_str().ok_or("`tokens` holds names")?)?.record.clone());
                }
                let extra = match i.0.get("lines") {
                    None => &[][..],
                    Some(Value::Array(l)) => l.as_slice(),
                    Some(v) => return Err(format!("`lines` is a list, not {v}")),
                };
                for l in extra {
                    lines.push(l.as_str().ok_or("`lines` holds strings")?.to_owned());
                }
                let file = self.root.join(format!("factory-{}.txt", self.imports));
                self.imports += 1;
                std::fs::write(&file, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
                let r = Argv::new(&["portal", "import-devices", "--json"])
                    .dir(&self.portal()?)
                    .arg("--file", file.display())
                    .arg("--now", i.at()?)
                    .run();
                let serials = r.json().map(|j| j["serials"].clone()).unwrap_or_default();
                Ok(Seen::of(&r).with("serials", serials))
            }
            "order" => {
                let (token, account) = (i.need("token")?, i.need("account")?);
                let r = Argv::new(&["portal", "order", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", &account)
                    .arg("--activation-code", i.need("activationCode")?)
                    .arg("--serial", &self.token_named(&token)?.serial)
                    .arg("--now", i.at()?)
                    .run();
                let j = r.json().unwrap_or_default();
                if let (Some(u), Some(p)) = (j["user_id"].as_str(), j["initial_password"].as_str()) {
                    let letter = Letter { user_id: u.to_owned(), initial_password: p.to_owned() };
                    self.orders.insert(i.need("save")?, letter);
                    if let Some(t) = self.tokens.iter_mut().find(|t| t.name == token) {
                        t.account = Some(account);
                    }
                }
                Ok(Seen::of(&r))
            }
            "activationStart" => {
                let r = Argv::new(&["portal", "activation-start", "--json"])
                    .dir(&self.portal()?)
                    .arg("--user-id", &self.letter(&i.need("order")?)?.user_id)
                    .arg("--now", i.at()?)
                    .run();
                Ok(self.activation_seen(i.need("save")?, &r))
            }
            "activationNext" => {
                let var = i.need("activation")?;
                let id = self.activation_ids.get(&var).cloned().ok_or_else(|| format!("no activation `{var}`"))?;
                let input = match i.0.get("input") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Object(m)) if m.len() == 1 => {
                        let (k, v) = m.iter().next().ok_or("empty input")?;
                        let v = v.as_str().ok_or("an input reference is a name")?;
                        match k.as_str() {
                            "shown" => self.last_answer_of(v)?,
                            "wrong" => off_by_one(&self.last_answer_of(v)?),
                            "serial" => self.token_named(v)?.serial.clone(),
                            "initialPassword" => self.letter(v)?.initial_password.clone(),
                            other => return Err(format!("unknown input reference `{other}`")),
                        }
                    }
                    other => return Err(format!("bad `input` {other:?}")),
                };
                let r = Argv::new(&["portal", "activation-next", "--json"])
                    .dir(&self.portal()?)
                    .arg("--id", id)
                    .arg("--input", input)
                    .arg("--now", i.at()?)
                    .run();
                Ok(self.activation_seen(var, &r))
            }
            "tokenScan" => {
                let name = i.need("token")?;
                self.token_named(&name)?;
                let r =
                    Argv::new(&["token", "scan", "--json"]).dir(&self.token_dir(&name)).arg("--qr", self.qr(i)?).run();
                let j = r.json().filter(|_| r.ok).unwrap_or_default();
                let user = j["user_id"]
                    .as_str()
                    .and_then(|u| self.orders.iter().find(|(_, l)| l.user_id == u).map(|(var, _)| var.clone()));
                if r.ok {
                    let t = self.tokens.iter_mut().find(|t| t.name == name).ok_or("no token")?;
                    t.last_code = j["code"].as_str().map(str::to_owned);
                    t.device_id = j["device_id"].as_str().map(str::to_owned);
                }
                Ok(Seen::of(&r)
                    .with("kind", j["kind"].as_str().map_or(Value::Null, |k| json!(camel(k))))
                    .with("digits", json!(j["code"].as_str().map_or(0, str::len)))
                    .with("portalName", j["portal"].clone())
                    .with("userId", json!(user))
                    .with("approval", j["approval"].clone())
                    .with("replaced", j["replaced"].clone()))
            }
            "verifyPassword" => {
                let r = Argv::new(&["portal", "password-check", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .arg("--password", i.need("password")?)
                    .arg("--now", i.at()?)
                    .run();
                Ok(Seen::of(&r))
            }
            "redeemRecoveryCode" => {
                let code = match i.0.get("code") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Object(m)) => {
                        if m.len() != 1 {
                            return Err("`code` holds only `recovery`".into());
                        }
                        let r = m.get("recovery").and_then(Value::as_array).ok_or("`code.recovery` is [var, i]")?;
                        if r.len() != 2 {
                            return Err("`code.recovery` is [var, i]".into());
                        }
                        let var = r.first().and_then(Value::as_str).ok_or("`code.recovery[0]` is a var")?;
                        let n = r.get(1).and_then(Value::as_u64).ok_or("`code.recovery[1]` is an index")?;
                        self.recovery_codes
                            .get(var)
                            .and_then(|c| c.get(usize::try_from(n).ok()?))
                            .cloned()
                            .ok_or("no such recovery code")?
                    }
                    _ => return Err("missing `code`".into()),
                };
                let r = Argv::new(&["portal", "recovery-code", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .arg("--code", code)
                    .arg("--now", i.at()?)
                    .run();
                let left = r.json().map(|j| j["recovery_codes_left"].clone()).unwrap_or_default();
                Ok(Seen::of(&r).with("left", left))
            }
            "rename" | "unlink" => {
                let p = self.phone(i)?;
                let (account, id) = self.linked(p)?;
                let mut a = Argv::new(&["portal", op, "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", account)
                    .arg("--device", id)
                    .arg("--now", i.at()?);
                if op == "rename" {
                    a = a.arg("--name", i.need("name")?);
                }
                Ok(Seen::of(&a.run()))
            }
            "status" => {
                let p = self.phone(i)?;
                let dir = self.phone_dir(p);
                let answer = if i.yes("again")? {
                    self.phones[p].last_status_answer.clone().ok_or("no status request was sent")?
                } else {
                    let at = i.at()?;
                    let req = Argv::new(&["device", "status-request"]).dir(&dir).arg("--now", at).run();
                    if !req.ok {
                        return Ok(Seen::of(&req));
                    }
                    let ans = Argv::new(&["portal", "status"])
                        .dir(&self.portal()?)
                        .arg("--request", req.line())
                        .arg("--now", at)
                        .run();
                    if !ans.ok {
                        return Ok(Seen::of(&ans));
                    }
                    self.phones[p].last_status_answer = Some(ans.line());
                    ans.line()
                };
                let keep = self.root.join("phone-kept");
                copy_dir(&dir, &keep);
                let r = Argv::new(&["device", "status-finish", "--json"])
                    .dir(&dir)
                    .arg("--response", edited(answer, i.text("edit")?)?)
                    .run();
                if !r.ok {
                    // The app wiped itself on an authenticated refusal; the
                    // scenario's phone keeps its state, but that answer spent
                    // the probe (as the app's wipe did).
                    copy_dir(&keep, &dir);
                    if r.code().is_some_and(|c| c == "DEVICE_REVOKED" || c == "LINK_NOT_CONFIRMED") {
                        let db = rusqlite::Connection::open(dir.join("device.db")).map_err(|e| e.to_string())?;
                        db.execute("DELETE FROM kv WHERE key = 'status_probe'", []).map_err(|e| e.to_string())?;
                    }
                    return Ok(Seen::of(&r));
                }
                let confirmed = r.json().is_some_and(|j| j["confirmed"] == json!(true));
                Ok(Seen::ok().with("status", json!(if confirmed { "active" } else { "awaitingConfirmation" })))
            }
            "deviceCode" => {
                let p = self.phone(i)?;
                let at = i.at()?;
                let passcode = i.text("passcode")?;
                let (bio, replay) = (i.yes("biometric")?, i.yes("replay")?);
                if usize::from(passcode.is_some()) + usize::from(bio) + usize::from(replay) != 1 {
                    return Err("deviceCode takes one of passcode, biometric: true, replay: true".into());
                }
                let code = if replay {
                    self.phones[p].last_code.clone().ok_or("no previous code to replay")?
                } else {
                    let r = Argv::new(&["device", "totp"])
                        .dir(&self.phone_dir(p))
                        .opt("--passcode", passcode)
                        .flag("--biometric", bio)
                        .arg("--now", at)
                        .run();
                    if !r.ok {
                        return Ok(Seen::of(&r));
                    }
                    self.phones[p].last_code = Some(r.line());
                    r.line()
                };
                let (account, id) = self.linked(p)?;
                let r = Argv::new(&["portal", "verify-totp", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", account)
                    .arg("--device", id)
                    .arg("--code", code)
                    .arg("--now", at)
                    .run();
                Ok(Seen::of(&r))
            }
            "wipe" => {
                let p = self.phone(i)?;
                let r = Argv::new(&["device", "unlink"]).dir(&self.phone_dir(p)).run();
                if r.ok {
                    let ph = &mut self.phones[p];
                    ph.check_code = None;
                    ph.last_code = None;
                }
                Ok(Seen::of(&r))
            }
            "hotp" | "totp" => {
                let mut a = Argv::new(&["otp", op])
                    .arg("--secret-hex", i.need("secret")?)
                    .opt("--digits", i.int("digits")?)
                    .opt("--algorithm", i.text("algorithm")?);
                a = if op == "hotp" {
                    a.arg("--counter", i.int("counter")?.ok_or("missing input `counter`")?)
                } else {
                    a.arg("--time", i.at()?).opt("--period", i.int("period")?)
                };
                let r = a.run();
                let code = if r.ok { json!(r.line()) } else { Value::Null };
                Ok(Seen::of(&r).with("code", code))
            }
            "verifyHotp" | "verifyTotp" | "resyncHotp" => {
                // A step's own `state` goes to a scratch file, which becomes
                // the verifier's state only if the call returned (a thrown
                // call replaces nothing).
                let kept = self.verifier_file(i)?;
                let file = match i.0.get("state") {
                    Some(s) => {
                        let scratch = kept.with_extension("step.json");
                        std::fs::write(&scratch, api_state(s)?.to_string()).unwrap();
                        scratch
                    }
                    None => kept.clone(),
                };
                let config = i.0.get("config").and_then(Value::as_object).ok_or("`config` is an object")?;
                let command = match op {
                    "verifyHotp" => "verify-hotp",
                    "verifyTotp" => "verify-totp",
                    _ => "resync-hotp",
                };
                let mut a =
                    Argv::new(&["otp", command, "--json"]).arg("--state", file.display()).arg("--time", i.at()?);
                if !file.exists() {
                    a = a.flag("--new", true);
                }
                a = if op == "resyncHotp" {
                    let window = i.0.get("window").and_then(Value::as_i64).ok_or("`window` is an integer")?;
                    a.arg("--code", i.need("code1")?)
                        .arg("--next-code", i.need("code2")?)
                        .arg("--search-window", window)
                } else {
                    a.arg("--code", i.need("code")?)
                };
                for (k, v) in config {
                    let flag = match k.as_str() {
                        "secret" => "--secret-hex",
                        "algorithm" => "--algorithm",
                        "digits" => "--digits",
                        "periodSeconds" => "--period",
                        "window" => "--window",
                        "maxFailures" => "--max-failures",
                        "lockSeconds" => "--lock-seconds",
                        _ => return Err(format!("unknown key `{k}` in config")),
                    };
                    a = a.arg(flag, v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                }
                let r = a.run();
                let j = r.json().unwrap_or_default();
                if file != kept && !j["verdict"].is_null() {
                    std::fs::rename(&file, &kept).unwrap();
                }
                let mut seen = Seen::of(&r).with("drift", j["drift"].clone());
                if !j["matched"].is_null() {
                    seen = seen.with("matched", j["matched"].clone());
                }
                Ok(seen)
            }
            "unlock" => {
                let file = self.verifier_file(i)?;
                Ok(Seen::of(&Argv::new(&["otp", "unlock"]).arg("--state", file.display()).run()))
            }
            "challenge" => {
                let mut a = Argv::new(&["portal", "challenge", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .opt("--digits", i.int("digits")?)
                    .opt("--ttl", i.int("ttl")?)
                    .arg("--now", i.at()?);
                if i.text("phone")?.is_some() {
                    a = a.arg("--device", self.device_id(i)?);
                }
                a = approval_flags(a, i.0.get("approval").ok_or("missing input `approval`")?)?;
                let save = i.need("save")?;
                let r = a.run();
                self.saved_challenge(&r, save);
                Ok(Seen::of(&r))
            }
            "linkChallenge" => {
                let r = Argv::new(&["portal", "link-challenge", "--json"])
                    .dir(&self.portal()?)
                    .arg("--device", self.device_id(i)?)
                    .opt("--digits", i.int("digits")?)
                    .opt("--ttl", i.int("ttl")?)
                    .arg("--now", i.at()?)
                    .run();
                self.saved_challenge(&r, i.need("save")?);
                Ok(Seen::of(&r))
            }
            "readChallenge" => {
                let p = self.phone(i)?;
                let r = Argv::new(&["device", "show", "--json"])
                    .dir(&self.phone_dir(p))
                    .arg("--qr", self.qr(i)?)
                    .arg("--now", i.at()?)
                    .run();
                let j = r.json().unwrap_or_default();
                // The API's approval JSON, from the CLI's flat shape.
                let approval = match j["kind"].as_str() {
                    Some("login") => json!({"kind": "login"}),
                    Some("transaction") => {
                        json!({"kind": "transaction", "amount": j["amount"], "currency": j["currency"],
                                                  "payee": j["payee"], "text": j["text"]})
                    }
                    Some("linkDevice") => json!({"kind": "linkDevice", "deviceName": j["device_name"],
                                                  "deviceId": self.phone_of(&j["device_id"])}),
                    _ => Value::Null,
                };
                Ok(Seen::of(&r)
                    .with("portalName", j["portal"].clone())
                    .with("account", j["account"].clone())
                    .with("approval", approval)
                    .with("digits", j["digits"].clone()))
            }
            "answer" => {
                let p = self.phone(i)?;
                let passcode = i.text("passcode")?;
                let bio = i.yes("biometric")?;
                if passcode.is_some() == bio {
                    return Err("answer takes exactly one of passcode, biometric: true".into());
                }
                // `--signed` stores the advanced device state itself.
                let r = Argv::new(&["device", "answer"])
                    .dir(&self.phone_dir(p))
                    .arg("--qr", self.qr(i)?)
                    .opt("--passcode", passcode)
                    .flag("--biometric", bio)
                    .flag("--signed", i.yes("signed")?)
                    .arg("--now", i.at()?)
                    .run();
                if r.ok {
                    self.phones[p].last_answer = Some(r.line());
                }
                Ok(Seen::of(&r))
            }
            "verify" => {
                let r = Argv::new(&["portal", "verify", "--json"])
                    .dir(&self.portal()?)
                    .arg("--challenge", self.challenge_id(i)?)
                    .arg("--answer", self.challenge_answer(i)?)
                    .arg("--now", i.at()?)
                    .run();
                let by = r.json().map(|j| j["device_id"].clone()).filter(|d| !d.is_null());
                let seen = Seen::of(&r);
                Ok(match by {
                    Some(id) => seen.with("device", self.phone_of(&id)),
                    None => seen,
                })
            }
            "vouch" => {
                let r = Argv::new(&["portal", "vouch", "--json"])
                    .dir(&self.portal()?)
                    .arg("--device", self.device_id(i)?)
                    .arg("--challenge", self.challenge_id(i)?)
                    .arg("--code", self.challenge_answer(i)?)
                    .arg("--now", i.at()?)
                    .run();
                Ok(Seen::of(&r))
            }
            "unlockDevice" => {
                let r = Argv::new(&["portal", "unlock-device", "--json"])
                    .dir(&self.portal()?)
                    .arg("--device", self.device_id(i)?)
                    .arg("--now", i.at()?)
                    .run();
                Ok(Seen::of(&r))
            }
            "offerNewDevice" => {
                let save = i.need("save")?;
                let r = Argv::new(&["portal", "offer-new-device", "--json"])
                    .dir(&self.portal()?)
                    .arg("--account", i.need("account")?)
                    .arg("--now", i.at()?)
                    .run();
                if let Some(text) = r.json().and_then(|j| j["qr_text"].as_str().map(str::to_owned)) {
                    self.vars.insert(save, text);
                }
                Ok(Seen::of(&r))
            }
            "clone" => {
                // A thief's copy of the phone's storage: its directory
                // (storage key, database, biometric secret) and what it knows.
                let from = i.need("from")?;
                let f = self.phones.iter().position(|p| p.name == from).ok_or_else(|| format!("no phone {from:?}"))?;
                let p = self.phone(i)?;
                copy_dir(&self.phone_dir(f), &self.phone_dir(p));
                let (account, device_id) = (self.phones[f].account.clone(), self.phones[f].device_id.clone());
                let ph = &mut self.phones[p];
                ph.account = account;
                ph.device_id = device_id;
                Ok(Seen::ok())
            }
            _ => Err(format!("unknown op {op:?}")),
        }
    }
}

/// `device_code` → `deviceCode`: the CLI's snake_case names of steps and
/// screens are the API's camelCase ones.
fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in s.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// A challenge's `approval` (the API's JSON) as `portal challenge` flags:
/// a login has none, a transaction `--amount`, `--currency`, `--payee` and
/// one `--text` per line. A link-device approval comes from `linkChallenge`.
fn approval_flags(mut a: Argv, v: &Value) -> Result<Argv, String> {
    let m = v.as_object().ok_or("`approval` is an object")?;
    let keys: &[&str] = match m.get("kind").and_then(Value::as_str) {
        Some("login") => &["kind"],
        Some("transaction") => &["kind", "amount", "currency", "payee", "text"],
        _ => return Err(format!("`portal challenge` makes login and transaction challenges, not {v}")),
    };
    if let Some(k) = m.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` in approval"));
    }
    if keys.len() > 1 {
        let f = In(m);
        a = a
            .arg("--amount", f.need("amount")?)
            .arg("--currency", f.need("currency")?)
            .arg("--payee", f.need("payee")?);
        let lines = match m.get("text") {
            None => &[][..],
            Some(Value::Array(l)) => l.as_slice(),
            Some(t) => return Err(format!("`text` is a list of lines, not {t}")),
        };
        for line in lines {
            a = a.arg("--text", line.as_str().ok_or("`text` lines are strings")?);
        }
    }
    Ok(a)
}

/// A scenario's verifier `state` (times in Unix seconds) as the API's JSON
/// (`OtpVerifierState`: times in epoch milliseconds).
fn api_state(s: &Value) -> Result<Value, String> {
    let mut m = s.as_object().ok_or("`state` is an object")?.clone();
    const KEYS: [&str; 5] = ["lastAccepted", "nextCounter", "consecutiveFailures", "locked", "lockedUntil"];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` in state"));
    }
    if let Some(t) = m.get("lockedUntil").and_then(Value::as_u64) {
        m.insert("lockedUntil".into(), json!(t * 1000));
    }
    Ok(Value::Object(m))
}

// ---------------------------------------------------------------------------
// Files

#[derive(Default)]
struct Tally {
    steps: usize,
    skipped: Vec<String>,
}

/// Run one scenario in its own directories; `Err` names the file and step.
fn run_file(file: &str, doc: &Value, tally: &mut Tally) -> Result<(), String> {
    let top = doc.as_object().ok_or_else(|| format!("{file}: not a JSON object"))?;
    if let Some(k) = top.keys().find(|k| !matches!(k.as_str(), "name" | "about" | "steps")) {
        return Err(format!("{file}: unknown key `{k}`"));
    }
    if !top.get("name").is_some_and(Value::is_string) || !top.get("about").is_some_and(Value::is_string) {
        return Err(format!("{file}: `name` and `about` are strings"));
    }
    let steps = match top.get("steps").and_then(Value::as_array) {
        Some(s) if !s.is_empty() => s,
        _ => return Err(format!("{file}: no steps")),
    };
    let stem = file.trim_end_matches(".json");
    let mut world =
        World::new(std::env::temp_dir().join(format!("tessera-cli-scenario-{}-{stem}", std::process::id())));
    for (n, step) in steps.iter().enumerate() {
        let op = step.get("do").and_then(Value::as_str).unwrap_or("?");
        let here = |e: String| format!("{file}: step {n} ({op}): {e}");
        let m = step.as_object().ok_or_else(|| here("a step is an object".into()))?;
        let (_, inputs, facts) =
            OPS.iter().find(|(o, ..)| *o == op).ok_or_else(|| here(format!("unknown op {op:?}")))?;
        let allowed =
            |k: &str| matches!(k, "do" | "at" | "expect" | "events" | "skip") || inputs.split(' ').any(|i| i == k);
        if let Some(k) = m.keys().find(|k| !allowed(k)) {
            return Err(here(format!("unknown key `{k}`")));
        }
        let skip = match (m.get("skip"), NO_COMMAND.iter().find(|(o, _)| *o == op)) {
            (Some(Value::String(why)), _) => Some(why.clone()),
            (Some(_), _) => return Err(here("`skip` is the reason, a string".into())),
            (None, Some((_, why))) => Some(format!("no CLI command: {why}")),
            (None, None) => None,
        };
        let skip = skip.or_else(|| {
            (op == "accept" && m.contains_key("deviceKeySeen"))
                .then(|| "the CLI portal decides deviceKeySeen from its own store; no command overrides it".to_owned())
        });
        if let Some(why) = skip {
            println!("  skipped {file}: step {n} ({op}): {why}");
            tally.skipped.push(format!("{file}: step {n} ({op}): {why}"));
            continue;
        }
        let seen = world.step(op, &In(m)).map_err(here)?;
        judge(m, facts, &seen).map_err(here)?;
        tally.steps += 1;
    }
    let _ = std::fs::remove_dir_all(&world.root);
    Ok(())
}

fn scenario_files() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            let doc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, doc)
        })
        .collect()
}

#[test]
fn every_scenario_file_passes_through_the_cli() {
    let files = scenario_files();
    assert!(files.len() >= MIN_FILES, "only {} scenario files (at least {MIN_FILES} expected)", files.len());
    // Files run side by side (each in its own directories), steps in order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(usize, Result<(), String>, Tally)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((name, doc)) = files.get(i) else { return done };
                        let mut t = Tally::default();
                        let r = run_file(name, doc, &mut t);
                        done.push((i, r, t));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let steps: usize = results.iter().map(|r| r.2.steps).sum();
    let skipped: Vec<&String> = results.iter().flat_map(|r| &r.2.skipped).collect();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.1.as_ref().err()).collect();
    println!(
        "CLI scenarios: {} of {} files passed, {steps} steps ran as tessera processes, {} skipped",
        files.len() - failures.len(),
        files.len(),
        skipped.len()
    );
    for s in &skipped {
        println!("  skipped: {s}");
    }
    assert!(
        failures.is_empty(),
        "{} scenario file(s) failed:\n{}",
        failures.len(),
        failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

// ---------------------------------------------------------------------------
// Negative controls: the runner cannot pass vacuously

fn one_step(step: Value) -> Result<(), String> {
    let doc = json!({"name": "control", "about": "a negative control", "steps": [step]});
    run_file("control.json", &doc, &mut Tally::default())
}

#[test]
fn the_runner_fails_wrong_expectations_and_unknown_words() {
    let secret = "3132333435363738393031323334353637383930";
    one_step(json!({"do": "hotp", "secret": secret, "counter": 0, "expect": {"code": "755224"}})).unwrap();
    let e = one_step(json!({"do": "hotp", "secret": secret, "counter": 0, "expect": {"code": "755225"}})).unwrap_err();
    assert!(e.starts_with("control.json: step 0 (hotp): expected code"), "{e}");
    let e = one_step(json!({"do": "hotpp", "secret": secret, "counter": 0})).unwrap_err();
    assert!(e.contains("unknown op"), "{e}");
    let e = one_step(json!({"do": "hotp", "secret": secret, "countr": 0})).unwrap_err();
    assert!(e.contains("unknown key"), "{e}");
    let e = one_step(json!({"do": "hotp", "secret": secret, "counter": 0, "expect": {"cod": "755224"}})).unwrap_err();
    assert!(e.contains("unknown expectation key"), "{e}");
    // A refusal is neither ok nor a failed call, and its code counts.
    let verify = |expect: Value| {
        one_step(json!({"do": "verifyTotp", "verifier": "v", "config": {"secret": secret}, "code": "000000",
                        "at": 1_800_000_000u64, "expect": expect}))
    };
    verify(json!({"refused": "OTP_MISMATCH"})).unwrap();
    for wrong in [json!("ok"), json!({"error": "OTP_MISMATCH"}), json!({"refused": "OTP_REPLAYED"})] {
        assert!(verify(wrong.clone()).is_err(), "{wrong} must fail");
    }
    // A failed call is not a refusal.
    let digits =
        |expect: Value| one_step(json!({"do": "hotp", "secret": secret, "counter": 0, "digits": 5, "expect": expect}));
    digits(json!({"error": "INVALID_DIGITS"})).unwrap();
    assert!(digits(json!({"refused": "INVALID_DIGITS"})).is_err());
}

#[test]
fn the_runner_checks_challenge_facts() {
    let linked = || {
        vec![
            json!({"do": "portal", "name": "Example Bank"}),
            json!({"do": "offer", "account": "anna", "at": 1_800_000_000u64, "save": "q"}),
            json!({"do": "startLink", "phone": "p1", "qr": "q", "name": "P", "passcode": "493817", "at": 1_800_000_010u64}),
            json!({"do": "accept", "phone": "p1", "at": 1_800_000_011u64}),
            json!({"do": "finish", "phone": "p1"}),
            json!({"do": "confirm", "account": "anna", "code": "p1", "at": 1_800_000_020u64}),
            json!({"do": "challenge", "account": "anna", "approval": {"kind": "transaction", "amount": "1.50",
                   "currency": "EUR", "payee": "ACME"}, "at": 1_800_000_100u64, "save": "c"}),
            json!({"do": "answer", "phone": "p1", "qr": "c", "passcode": "493817", "at": 1_800_000_101u64}),
        ]
    };
    let run = |last: Vec<Value>| {
        let mut steps = linked();
        steps.extend(last);
        run_file(
            "control.json",
            &json!({"name": "control", "about": "a negative control", "steps": steps}),
            &mut Tally::default(),
        )
    };
    let read = |approval: Value| json!({"do": "readChallenge", "phone": "p1", "qr": "c", "at": 1_800_000_102u64, "expect": {"approval": approval}});
    let shown = json!({"kind": "transaction", "amount": "1.50", "currency": "EUR", "payee": "ACME", "text": []});
    let verify = |device: &str| json!({"do": "verify", "challenge": "c", "answer": "p1", "at": 1_800_000_103u64, "expect": {"device": device}});
    run(vec![read(shown.clone()), verify("p1")]).unwrap();
    let e = run(vec![verify("p2")]).unwrap_err();
    assert!(e.contains("step 8 (verify): expected device"), "{e}");
    let mut other = shown;
    other["amount"] = json!("1.5");
    assert!(run(vec![read(other)]).unwrap_err().contains("step 8 (readChallenge): expected approval"));
    let e = run(vec![json!({"do": "challenge", "account": "anna", "approval": {"kind": "login", "x": 1}, "at": 1_800_000_200u64, "save": "d"})])
        .unwrap_err();
    assert!(e.contains("unknown key `x` in approval"), "{e}");
}

#[test]
fn the_runner_checks_activation_facts() {
    let start = || {
        vec![
            json!({"do": "portal", "name": "Example Bank"}),
            json!({"do": "activationSettings", "settings": {"hashIterations": 10000}}),
            json!({"do": "token", "token": "t1", "serial": "TS00012345"}),
            json!({"do": "importDevices", "tokens": ["t1"], "at": 1_800_000_000u64, "expect": {"serials": ["TS00012345"]}}),
            json!({"do": "order", "account": "anna", "activationCode": "271828", "token": "t1", "save": "o1", "at": 1_800_000_010u64}),
        ]
    };
    let run = |last: Vec<Value>| {
        let mut steps = start();
        steps.extend(last);
        run_file(
            "control.json",
            &json!({"name": "control", "about": "a negative control", "steps": steps}),
            &mut Tally::default(),
        )
    };
    let begin = |expect: Value| json!({"do": "activationStart", "order": "o1", "save": "a1", "at": 1_800_000_060u64, "expect": expect});
    let scan = |expect: Value| json!({"do": "tokenScan", "token": "t1", "qr": "a1", "expect": expect});
    let first = || begin(json!({"step": "deviceCode", "qr": true}));
    run(vec![
        first(),
        scan(json!({"kind": "deviceCode", "digits": 10, "portalName": "Example Bank", "userId": null})),
        json!({"do": "activationNext", "activation": "a1", "input": {"wrong": "t1"}, "at": 1_800_000_061u64,
               "expect": {"refused": "DEVICE_CODE_MISMATCH"}, "events": []}),
        json!({"do": "activationNext", "activation": "a1", "input": {"shown": "t1"}, "at": 1_800_000_062u64,
               "expect": {"step": "activationCode", "qr": false, "recoveryCodes": 0}}),
    ])
    .unwrap();
    // The CLI's snake_case step is not the files' camelCase one.
    assert!(run(vec![begin(json!({"step": "device_code"}))]).unwrap_err().contains("expected step"));
    assert!(run(vec![begin(json!({"qr": false}))]).unwrap_err().contains("expected qr"));
    let e = run(vec![first(), scan(json!({"digits": 8}))]).unwrap_err();
    assert!(e.contains("step 6 (tokenScan): expected digits"), "{e}");
    let e = run(vec![
        first(),
        scan(json!("ok")),
        json!({"do": "activationNext", "activation": "a1", "input": {"shown": "t1"}, "at": 1_800_000_062u64,
               "expect": {"refused": "DEVICE_CODE_MISMATCH"}}),
    ])
    .unwrap_err();
    assert!(e.contains("expected {\"refused\""), "{e}");
    let e = run(vec![json!({"do": "activationSettings", "settings": {"hashIteration": 10000}})]).unwrap_err();
    assert!(e.contains("unknown key `hashIteration` in settings"), "{e}");
    let e =
        run(vec![json!({"do": "importDevices", "tokens": ["t1"], "lines": "x", "at": 1_800_000_001u64})]).unwrap_err();
    assert!(e.contains("`lines` is a list"), "{e}");
}
