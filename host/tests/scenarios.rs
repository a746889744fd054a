//! The Rust runner of the language-neutral scenario files
//! (`vectors/scenarios/*.json`, format in `vectors/scenarios/README.md`).
//!
//! Every file runs against the tessera-host API exactly as the README says:
//! one portal and its in-memory store (compare-and-set writes), phones by
//! name, QR texts in vars, OTP verifiers by name. An unknown op or key, a
//! failed compare-and-set or a wrong outcome fails the file, naming the file
//! and the step.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_host::{
    ActivationSettings, ActivationUpdate, Approval, ChallengeSettings, DeviceCodeRules, ErrorCode, LinkAnswer,
    LinkChoices, LinkLookup, OfferSettings, OfflineAuthenticator, OtpAlgorithm, OtpVerifierConfig, OtpVerifierState,
    PasscodeRules, PendingLink, PendingStatus, Portal, PortalChange, RecordWrite, StatusLookup, StoredActivation,
    StoredAuthenticator, StoredChallenge, StoredCredentials, StoredDevice, StoredOffer, StoredOrder, StoredPendingLink,
    TesseraError, Timestamp, Unlock, Verdict,
};

/// Fewer files than this means the directory was not found or emptied.
const MIN_FILES: usize = 10;

// ---------------------------------------------------------------------------
// The world of one scenario
// ---------------------------------------------------------------------------

struct Phone {
    name: String,
    key: Vec<u8>,
    device: tessera_host::Device,
    /// The last challenge answer (typed code or signed answer text).
    last_answer: Option<String>,
    pending: Option<Arc<PendingLink>>,
    request: Option<String>,
    answer: Option<LinkAnswer>,
    check_code: Option<String>,
    state: Option<Vec<u8>>,
    device_id: Option<String>,
    biometric: Option<Vec<u8>>,
    last_code: Option<String>,
    /// The last status probe and the portal's genuine answer to it.
    last_status: Option<(Arc<tessera_host::StatusProbe>, String)>,
}

/// An offline authenticator (flow 3), by name.
struct Tok {
    name: String,
    app: Arc<OfflineAuthenticator>,
    state: Vec<u8>,
    serial: String,
    factory_record: String,
    /// The last code it showed.
    last_code: Option<String>,
    /// Its registry id once bound.
    device_id: Option<String>,
}

/// An order: its user ID and the letter's initial password.
struct OrderVar {
    user_id: String,
    initial_password: String,
}

#[derive(Default)]
struct World {
    tokens: Vec<Tok>,
    orders_by_var: HashMap<String, OrderVar>,
    activation_settings: ActivationSettings,
    authenticators: HashMap<String, StoredAuthenticator>,
    orders: HashMap<String, StoredOrder>,
    activations: HashMap<String, StoredActivation>,
    credentials: HashMap<String, StoredCredentials>,
    /// Activation ids by var name (the var holds the step's QR text).
    activation_ids: HashMap<String, String>,
    /// Recovery codes shown by the activation saved under a var.
    recovery_codes: HashMap<String, Vec<String>>,
    portal: Option<Arc<Portal>>,
    other_portal_key: Option<Vec<u8>>,
    offers: HashMap<String, StoredOffer>,
    pendings: HashMap<String, StoredPendingLink>,
    devices: HashMap<String, StoredDevice>,
    challenges: HashMap<String, StoredChallenge>,
    /// Challenge ids by the var name their QR text was saved under.
    challenge_ids: HashMap<String, String>,
    events: Vec<Value>,
    /// In creation order (`"wrong"` uses the first phone with a check code).
    phones: Vec<Phone>,
    vars: HashMap<String, String>,
    verifiers: HashMap<String, OtpVerifierState>,
}

/// What a step did: it threw, or it returned (maybe with a verdict) and
/// some op-specific facts.
#[derive(Debug)]
enum Got {
    Threw(TesseraError),
    Done { verdict: Option<Verdict>, facts: Map<String, Value>, events: Vec<String> },
}

impl Got {
    fn done() -> Self {
        Got::Done { verdict: None, facts: Map::new(), events: Vec::new() }
    }
    fn verdict(v: Verdict, events: Vec<String>) -> Self {
        Got::Done { verdict: Some(v), facts: Map::new(), events }
    }
    fn fact(mut self, k: &str, v: Value) -> Self {
        if let Got::Done { facts, .. } = &mut self {
            facts.insert(k.to_owned(), v);
        }
        self
    }
}

/// `Err(String)`: the scenario itself is broken (unknown key, missing
/// input, failed compare-and-set): the file fails whatever it expects.
type Step<T> = Result<T, String>;

/// An API call: a thrown error becomes the step's outcome.
macro_rules! call {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Got::Threw(e)),
        }
    };
}

/// Common keys of every step.
const COMMON: &[&str] = &["do", "at", "expect", "events", "skip"];

/// The inputs each op takes (besides [`COMMON`]) and the op-specific keys
/// of its `expect` object.
fn op_keys(op: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match op {
        "portal" => (&["name"], &[]),
        "offer" => (&["account", "ttl", "rules", "deviceCodes", "save"], &[]),
        "offerNewDevice" => (&["account", "save"], &[]),
        "challenge" => (&["account", "phone", "approval", "digits", "ttl", "save"], &[]),
        "linkChallenge" => (&["phone", "digits", "ttl", "save"], &[]),
        "readChallenge" => (&["phone", "qr", "edit"], &["portalName", "account", "approval", "digits"]),
        "answer" => (&["phone", "qr", "passcode", "biometric", "signed", "edit"], &[]),
        "verify" => (&["challenge", "answer", "edit"], &["device"]),
        "vouch" => (&["phone", "challenge", "answer", "edit"], &[]),
        "unlockDevice" => (&["phone"], &[]),
        "clone" => (&["phone", "from"], &[]),
        "scan" => (&["phone", "qr", "pinned", "edit"], &["portalName", "expiresAt"]),
        "startLink" => (&["phone", "qr", "name", "passcode", "biometrics", "pinned", "edit"], &[]),
        "accept" => (&["phone", "edit", "offer", "deviceKeySeen"], &[]),
        "finish" => (&["phone", "edit", "answer"], &[]),
        "confirm" => (&["account", "code"], &[]),
        "devices" => (&["account"], &["devices"]),
        "rename" => (&["phone", "name"], &[]),
        "unlink" => (&["phone", "token"], &[]),
        "activationSettings" => (&["settings"], &[]),
        "token" => (&["token", "serial"], &[]),
        "importDevices" => (&["tokens", "lines", "header"], &["serials"]),
        "order" => (&["account", "activationCode", "token", "save"], &[]),
        "activationStart" => (&["order", "save"], &["step", "qr"]),
        "activationNext" => (&["activation", "input"], &["step", "qr", "recoveryCodes"]),
        "tokenScan" => (&["token", "qr", "edit"], &["kind", "digits", "portalName", "userId", "approval", "replaced"]),
        "verifyPassword" => (&["account", "password"], &[]),
        "redeemRecoveryCode" => (&["account", "code"], &["left"]),
        "status" => (&["phone", "edit", "again"], &["status"]),
        "deviceCode" => (&["phone", "passcode", "biometric", "replay"], &[]),
        "wipe" => (&["phone"], &[]),
        "hotp" => (&["secret", "counter", "digits", "algorithm"], &["code"]),
        "totp" => (&["secret", "period", "digits", "algorithm"], &["code"]),
        "verifyHotp" | "verifyTotp" => (&["verifier", "config", "state", "code"], &["matched", "drift"]),
        "resyncHotp" => (&["verifier", "config", "state", "code1", "code2", "window"], &["matched", "drift"]),
        "unlock" => (&["verifier"], &[]),
        _ => return None,
    })
}

/// Typed access to a step's inputs.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
    fn str(&self, k: &str) -> Step<String> {
        self.opt_str(k)?.ok_or_else(|| format!("missing input `{k}`"))
    }
    fn opt_str(&self, k: &str) -> Step<Option<String>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("`{k}` must be a string, not {v}")),
        }
    }
    fn opt_bool(&self, k: &str) -> Step<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("`{k}` must be a boolean, not {v}")),
        }
    }
    fn opt_i64(&self, k: &str) -> Step<Option<i64>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| format!("`{k}` must be an integer, not {v}")),
        }
    }
    fn i64(&self, k: &str) -> Step<i64> {
        self.opt_i64(k)?.ok_or_else(|| format!("missing input `{k}`"))
    }
    /// The step's clock (Unix seconds).
    fn at(&self) -> Step<Timestamp> {
        match self.get("at") {
            Some(v) => {
                v.as_u64().map(Timestamp::from_secs).ok_or_else(|| format!("`at` must be Unix seconds, not {v}"))
            }
            None => Err("missing `at`".into()),
        }
    }
}

fn hex(s: &str) -> Step<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd-length hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex {s:?}")))
        .collect()
}

/// `"edit"`: `"tamper"` replaces the middle character (`A`, or `B` if it
/// was `A`), `"truncate"` drops the last 10 characters.
fn edit(text: String, edit: Option<String>) -> Step<String> {
    match edit.as_deref() {
        None => Ok(text),
        Some("tamper") => {
            let mut chars: Vec<char> = text.chars().collect();
            let mid = chars.len() / 2;
            chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
            Ok(chars.into_iter().collect())
        }
        Some("truncate") => {
            let chars: Vec<char> = text.chars().collect();
            Ok(chars[..chars.len().saturating_sub(10)].iter().collect())
        }
        Some(other) => Err(format!("unknown edit {other:?}")),
    }
}

fn algorithm(v: Option<&Value>) -> Step<OtpAlgorithm> {
    match v {
        None => Ok(OtpAlgorithm::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| format!("unknown algorithm {v}")),
    }
}

fn digits_of(a: &Args<'_>) -> Step<i32> {
    Ok(i32::try_from(a.opt_i64("digits")?.unwrap_or(6)).map_err(|_| "digits out of range")?)
}

/// `config` of a verify step, keys as the API (`secret` in hex).
fn verifier_config(v: &Value) -> Step<OtpVerifierConfig> {
    let m = v.as_object().ok_or("`config` must be an object")?;
    const KEYS: &[&str] = &["secret", "algorithm", "digits", "periodSeconds", "window", "maxFailures", "lockSeconds"];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` in config"));
    }
    let a = Args(m);
    let i32_of = |k: &str| -> Step<Option<i32>> {
        a.opt_i64(k)?.map(|v| i32::try_from(v).map_err(|_| format!("`{k}` out of range"))).transpose()
    };
    Ok(OtpVerifierConfig {
        secret: hex(&a.str("secret")?)?,
        algorithm: m.get("algorithm").map(|v| algorithm(Some(v))).transpose()?,
        digits: i32_of("digits")?,
        period_seconds: a.opt_i64("periodSeconds")?,
        window: a.opt_i64("window")?,
        max_failures: i32_of("maxFailures")?,
        lock_seconds: a.opt_i64("lockSeconds")?,
    })
}

/// `state` of a verify step, keys as the API; `lockedUntil` in Unix seconds.
fn verifier_state(v: &Value) -> Step<OtpVerifierState> {
    let m = v.as_object().ok_or("`state` must be an object")?;
    const KEYS: &[&str] = &["lastAccepted", "nextCounter", "consecutiveFailures", "locked", "lockedUntil"];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` in state"));
    }
    let a = Args(m);
    Ok(OtpVerifierState {
        last_accepted: a.opt_i64("lastAccepted")?,
        next_counter: a.opt_i64("nextCounter")?.unwrap_or(0),
        consecutive_failures: i32::try_from(a.opt_i64("consecutiveFailures")?.unwrap_or(0))
            .map_err(|_| "consecutiveFailures out of range")?,
        locked: a.opt_bool("locked")?.unwrap_or(false),
        locked_until: a
            .opt_i64("lockedUntil")?
            .map(|s| u64::try_from(s).map(Timestamp::from_secs).map_err(|_| "lockedUntil is negative"))
            .transpose()?,
    })
}

fn wrong_code(code: &str) -> String {
    code.chars().map(|c| c.to_digit(10).map_or(c, |d| char::from_digit((d + 1) % 10, 10).unwrap_or(c))).collect()
}

fn event_kinds(change: &PortalChange) -> Vec<String> {
    change
        .events
        .iter()
        .map(|e| serde_json::to_value(e).ok().and_then(|v| v["kind"].as_str().map(str::to_owned)).unwrap_or_default())
        .collect()
}

/// An API record from a step's JSON, unknown keys refused.
fn strict<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Step<T> {
    serde_json::from_value(v.clone()).map_err(|e| format!("bad `{what}`: {e}"))
}

fn challenge_settings(a: &Args<'_>) -> Step<ChallengeSettings> {
    let i32_of = |v: Option<i64>| v.map(|d| i32::try_from(d).map_err(|_| "digits out of range")).transpose();
    Ok(ChallengeSettings { digits: i32_of(a.opt_i64("digits")?)?, ttl_seconds: a.opt_i64("ttl")? })
}

impl World {
    /// The account's device rows, by device id.
    fn account_devices(&self, account: &str) -> Vec<StoredDevice> {
        let mut rows: Vec<StoredDevice> = self.devices.values().filter(|d| d.account == account).cloned().collect();
        rows.sort_by(|x, y| x.device_id.cmp(&y.device_id));
        rows
    }
    fn pending_row(&self, p: usize) -> Step<StoredPendingLink> {
        let ph = &self.phones[p];
        ph.device_id
            .as_ref()
            .and_then(|id| self.pendings.get(id))
            .cloned()
            .ok_or_else(|| format!("phone {} has no pending link row", ph.name))
    }
    /// A phone's last answer, or else a token's last code.
    fn last_answer_of(&self, name: &str) -> Step<String> {
        match self.phones.iter().find(|p| p.name == name) {
            Some(p) => p.last_answer.clone(),
            None => self.tokens.iter().find(|t| t.name == name).and_then(|t| t.last_code.clone()),
        }
        .ok_or_else(|| format!("phone or token {name} has no answer"))
    }
    fn token_index(&self, a: &Args<'_>) -> Step<usize> {
        let name = a.str("token")?;
        self.tokens.iter().position(|t| t.name == name).ok_or_else(|| format!("no token {name}"))
    }
    fn token_named(&self, name: &str) -> Step<&Tok> {
        self.tokens.iter().find(|t| t.name == name).ok_or_else(|| format!("no token {name}"))
    }
    fn order_var(&self, var: &str) -> Step<&OrderVar> {
        self.orders_by_var.get(var).ok_or_else(|| format!("no order `{var}`"))
    }
    /// Store an activation update; the var keeps the step's QR text.
    fn activation_update(&mut self, var: &str, u: ActivationUpdate) -> Step<Got> {
        let events = self.store(&u.change)?;
        self.activation_ids.insert(var.to_owned(), u.activation_id.clone());
        if let Some(qr) = &u.qr_text {
            self.vars.insert(var.to_owned(), qr.clone());
        }
        if !u.recovery_codes.is_empty() {
            self.recovery_codes.insert(var.to_owned(), u.recovery_codes.clone());
        }
        let step = serde_json::to_value(u.step).map_err(|e| e.to_string())?;
        Ok(Got::verdict(u.verdict, events)
            .fact("step", step)
            .fact("qr", json!(u.qr_text.is_some()))
            .fact("recoveryCodes", json!(u.recovery_codes.len())))
    }
    fn portal(&self) -> Step<Arc<Portal>> {
        self.portal.clone().ok_or_else(|| "no portal: a `portal` step comes first".to_owned())
    }

    fn phone_index(&mut self, name: &str) -> Step<usize> {
        if let Some(i) = self.phones.iter().position(|p| p.name == name) {
            return Ok(i);
        }
        let key = tessera_host::new_storage_key().map_err(|e| e.to_string())?;
        let device = tessera_host::Device::new(key.clone()).map_err(|e| e.to_string())?;
        self.phones.push(Phone {
            name: name.to_owned(),
            key,
            device,
            last_answer: None,
            pending: None,
            request: None,
            answer: None,
            check_code: None,
            state: None,
            device_id: None,
            biometric: None,
            last_code: None,
            last_status: None,
        });
        Ok(self.phones.len() - 1)
    }

    fn phone(&mut self, a: &Args<'_>) -> Step<usize> {
        let name = a.str("phone")?;
        self.phone_index(&name)
    }

    fn state_of(&self, p: usize) -> Step<Vec<u8>> {
        self.phones[p].state.clone().ok_or_else(|| format!("phone {} holds no state", self.phones[p].name))
    }

    fn device_row(&self, p: usize) -> Step<StoredDevice> {
        let id = self.phones[p]
            .device_id
            .as_ref()
            .ok_or_else(|| format!("phone {} was never linked", self.phones[p].name))?;
        self.devices.get(id).cloned().ok_or_else(|| format!("no device row for phone {}", self.phones[p].name))
    }

    fn qr(&self, a: &Args<'_>) -> Step<String> {
        let var = a.str("qr")?;
        let text = self.vars.get(&var).cloned().ok_or_else(|| format!("no var `{var}`"))?;
        edit(text, a.opt_str("edit")?)
    }

    /// `pinned`: absent/false: none; true: the portal's key; `"other"`:
    /// another portal's key.
    fn pinned(&mut self, a: &Args<'_>) -> Step<Option<Vec<u8>>> {
        match a.get("pinned") {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => Ok(Some(self.portal()?.public_key())),
            Some(Value::String(s)) if s == "other" => {
                if self.other_portal_key.is_none() {
                    let other = Portal::generate("Other Portal".into()).map_err(|e| e.to_string())?;
                    self.other_portal_key = Some(other.public_key());
                }
                Ok(self.other_portal_key.clone())
            }
            Some(v) => Err(format!("`pinned` must be true, false or \"other\", not {v}")),
        }
    }

    /// Apply a change as one transaction of compare-and-sets.
    fn store(&mut self, change: &PortalChange) -> Step<Vec<String>> {
        fn cas<R>(
            rows: &HashMap<String, R>,
            key: &str,
            expected: Option<i64>,
            version: impl Fn(&R) -> i64,
        ) -> Step<()> {
            match (rows.get(key), expected) {
                (None, None) => Ok(()),
                (Some(_), None) => Err(format!("insert of an existing row {key}")),
                (None, Some(v)) => Err(format!("update of a missing row {key} (expected version {v})")),
                (Some(r), Some(v)) if version(r) == v => Ok(()),
                (Some(r), Some(v)) => Err(format!("row {key} has version {}, the write expected {v}", version(r))),
            }
        }
        for w in &change.writes {
            match w {
                RecordWrite::Offer { row, expected_version } => {
                    cas(&self.offers, &row.offer_id, *expected_version, |r| r.version)?
                }
                RecordWrite::PendingLink { row, expected_version } => {
                    cas(&self.pendings, &row.device_id, *expected_version, |r| r.version)?
                }
                RecordWrite::Device { row, expected_version } => {
                    cas(&self.devices, &row.device_id, *expected_version, |r| r.version)?
                }
                RecordWrite::Challenge { row, expected_version } => {
                    cas(&self.challenges, &row.challenge_id, *expected_version, |r| r.version)?
                }
                RecordWrite::Authenticator { row, expected_version } => {
                    cas(&self.authenticators, &row.serial, *expected_version, |r| r.version)?
                }
                RecordWrite::Order { row, expected_version } => {
                    cas(&self.orders, &row.user_id, *expected_version, |r| r.version)?
                }
                RecordWrite::Activation { row, expected_version } => {
                    cas(&self.activations, &row.activation_id, *expected_version, |r| r.version)?
                }
                RecordWrite::Credentials { row, expected_version } => {
                    cas(&self.credentials, &row.account, *expected_version, |r| r.version)?
                }
            }
        }
        for w in &change.writes {
            match w.clone() {
                RecordWrite::Offer { row, .. } => {
                    self.offers.insert(row.offer_id.clone(), row);
                }
                RecordWrite::PendingLink { row, .. } => {
                    self.pendings.insert(row.device_id.clone(), row);
                }
                RecordWrite::Device { row, .. } => {
                    self.devices.insert(row.device_id.clone(), row);
                }
                RecordWrite::Challenge { row, .. } => {
                    self.challenges.insert(row.challenge_id.clone(), row);
                }
                RecordWrite::Authenticator { row, .. } => {
                    self.authenticators.insert(row.serial.clone(), row);
                }
                RecordWrite::Order { row, .. } => {
                    self.orders.insert(row.user_id.clone(), row);
                }
                RecordWrite::Activation { row, .. } => {
                    self.activations.insert(row.activation_id.clone(), row);
                }
                RecordWrite::Credentials { row, .. } => {
                    self.credentials.insert(row.account.clone(), row);
                }
            }
        }
        for e in &change.events {
            self.events.push(serde_json::to_value(e).map_err(|e| e.to_string())?);
        }
        Ok(event_kinds(change))
    }

    fn run(&mut self, op: &str, a: &Args<'_>) -> Step<Got> {
        match op {
            "portal" => {
                if self.portal.is_some() {
                    return Err("a scenario has one portal".into());
                }
                self.portal = Some(Arc::new(call!(Portal::generate(a.str("name")?))));
                Ok(Got::done())
            }
            "offer" => {
                let portal = self.portal()?;
                let rules = match a.get("rules") {
                    None => None,
                    Some(v) => {
                        let m = v.as_object().ok_or("`rules` must be an object")?;
                        const KEYS: &[&str] = &["minLen", "maxLen", "digitsOnly", "biometricsAllowed"];
                        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
                            return Err(format!("unknown key `{k}` in rules"));
                        }
                        let r = Args(m);
                        let d = PasscodeRules::default();
                        let len = |k: &str, d: i32| -> Step<i32> {
                            r.opt_i64(k)?.map_or(Ok(d), |v| i32::try_from(v).map_err(|_| format!("`{k}` out of range")))
                        };
                        Some(PasscodeRules {
                            min_len: len("minLen", d.min_len)?,
                            max_len: len("maxLen", d.max_len)?,
                            digits_only: r.opt_bool("digitsOnly")?.unwrap_or(d.digits_only),
                            biometrics_allowed: r.opt_bool("biometricsAllowed")?.unwrap_or(d.biometrics_allowed),
                        })
                    }
                };
                let device_codes = match a.get("deviceCodes") {
                    None => None,
                    Some(v) => Some(strict::<DeviceCodeRules>(v, "deviceCodes")?),
                };
                let settings = OfferSettings { ttl_seconds: a.opt_i64("ttl")?, rules, device_codes };
                let save = a.str("save")?;
                let o = call!(portal.create_offer(a.str("account")?, settings, a.at()?));
                let events = self.store(&o.change)?;
                self.vars.insert(save, o.qr_text);
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "scan" => {
                let p = self.phone(a)?;
                let qr = self.qr(a)?;
                let pinned = self.pinned(a)?;
                let info = call!(self.phones[p].device.scan_link_qr(qr, a.at()?, pinned));
                Ok(Got::done()
                    .fact("portalName", json!(info.portal_name))
                    .fact("expiresAt", json!(info.expires_at.secs())))
            }
            "startLink" => {
                let p = self.phone(a)?;
                let qr = self.qr(a)?;
                let pinned = self.pinned(a)?;
                let choices = LinkChoices {
                    device_name: a.str("name")?,
                    passcode: a.str("passcode")?,
                    biometrics: a.opt_bool("biometrics")?.unwrap_or(false),
                };
                let ph = &mut self.phones[p];
                let pending = call!(ph.device.start_link(qr, choices, ph.state.clone(), a.at()?, pinned));
                ph.request = Some(call!(pending.request()));
                ph.biometric = pending.biometric_secret();
                ph.answer = None;
                ph.pending = Some(pending);
                Ok(Got::done())
            }
            "accept" => {
                let portal = self.portal()?;
                let p = self.phone(a)?;
                let request = self.phones[p].request.clone().ok_or("the phone has sent no request")?;
                let request = edit(request, a.opt_str("edit")?)?;
                let opened = call!(portal.clone().open_link_request(request));
                let device_id = opened.device_id();
                let offer = match a.opt_str("offer")?.as_deref() {
                    None => self.offers.get(&opened.offer_id()).cloned(),
                    Some("missing") => None,
                    Some(o) => return Err(format!("bad offer {o:?}")),
                };
                let seen = self.pendings.contains_key(&device_id) || self.devices.contains_key(&device_id);
                let lookup = LinkLookup { offer, device_key_seen: a.opt_bool("deviceKeySeen")?.unwrap_or(seen) };
                let answer = call!(opened.accept(lookup, a.at()?));
                let events = self.store(&answer.change)?;
                let verdict = answer.verdict.clone();
                self.phones[p].answer = Some(answer);
                Ok(Got::verdict(verdict, events))
            }
            "finish" => {
                let p = self.phone(a)?;
                let ph = &self.phones[p];
                let pending = ph.pending.clone().ok_or("the phone has no pending link")?;
                let answer = ph.answer.as_ref().ok_or("the phone has no answer")?;
                let text = match a.opt_str("answer")?.as_deref() {
                    None => answer.answer.clone(),
                    Some("ifNotStored") => answer.if_not_stored.clone(),
                    Some(other) => return Err(format!("unknown answer {other:?}")),
                };
                let text = edit(text, a.opt_str("edit")?)?;
                let f = call!(pending.finish(text));
                let ph = &mut self.phones[p];
                ph.state = Some(f.state);
                ph.check_code = Some(f.check_code);
                ph.device_id = Some(f.account.device_id);
                Ok(Got::done())
            }
            "confirm" => {
                let portal = self.portal()?;
                let account = a.str("account")?;
                let who = a.str("code")?;
                let code = if let Some(rest) = who.strip_prefix("wrong") {
                    let ph = match rest.strip_prefix(':') {
                        Some(name) => self.phones.iter().find(|p| p.name == name),
                        None if rest.is_empty() => self.phones.iter().find(|p| p.check_code.is_some()),
                        None => return Err(format!("bad code {who:?}")),
                    };
                    wrong_code(
                        ph.and_then(|p| p.check_code.as_deref()).ok_or_else(|| format!("no check code for {who:?}"))?,
                    )
                } else {
                    let (form, name) = who.split_once(':').unwrap_or(("", &who));
                    let ph = self.phones.iter().find(|p| p.name == name).ok_or_else(|| format!("no phone {name:?}"))?;
                    let c = ph.check_code.clone().ok_or_else(|| format!("phone {name} has no check code"))?;
                    match form {
                        "" => c,
                        "prefix" => c[..c.len() - 1].to_owned(),
                        "extra" => format!("{c}0"),
                        "spaced" => format!(" {c} "),
                        _ => return Err(format!("bad code {who:?}")),
                    }
                };
                let mut open: Vec<StoredPendingLink> = self
                    .pendings
                    .values()
                    .filter(|r| r.account == account && r.status == PendingStatus::Open)
                    .cloned()
                    .collect();
                open.sort_by(|x, y| x.device_id.cmp(&y.device_id));
                let c = call!(portal.confirm_link(open, code, a.at()?));
                let events = self.store(&c.change)?;
                Ok(Got::verdict(c.verdict, events))
            }
            "devices" => {
                let account = a.str("account")?;
                let mut list: Vec<(String, Value)> = self
                    .devices
                    .values()
                    .filter(|d| d.account == account)
                    .map(|d| (d.name.clone(), json!({"name": d.name, "status": d.status})))
                    .collect();
                list.sort_by(|x, y| x.0.cmp(&y.0));
                Ok(Got::done().fact("devices", Value::Array(list.into_iter().map(|x| x.1).collect())))
            }
            "unlink" if a.get("token").is_some() => {
                let portal = self.portal()?;
                let t = self.token_index(a)?;
                let id = self.tokens[t].device_id.clone().ok_or("the token was never bound")?;
                let row = self.devices.get(&id).cloned().ok_or("no device row for the token")?;
                let change = call!(portal.unlink_device(row, a.at()?));
                let events = self.store(&change)?;
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "activationSettings" => {
                self.activation_settings = strict(a.get("settings").ok_or("missing `settings`")?, "settings")?;
                Ok(Got::done())
            }
            "token" => {
                let name = a.str("token")?;
                if self.tokens.iter().any(|t| t.name == name) {
                    return Err(format!("token {name} exists"));
                }
                let key = tessera_host::new_storage_key().map_err(|e| e.to_string())?;
                let app = OfflineAuthenticator::new(key).map_err(|e| e.to_string())?;
                let made = call!(app.create(a.str("serial")?));
                let serial = call!(app.info(made.state.clone())).serial;
                self.tokens.push(Tok {
                    name,
                    app,
                    state: made.state,
                    serial,
                    factory_record: made.factory_record,
                    last_code: None,
                    device_id: None,
                });
                Ok(Got::done())
            }
            "importDevices" => {
                let portal = self.portal()?;
                let names = a.get("tokens").and_then(Value::as_array).ok_or("`tokens` must be a list")?;
                let mut lines = vec![a.opt_str("header")?.unwrap_or_else(|| "tessera-factory-records v1".into())];
                for n in names {
                    let n = n.as_str().ok_or("`tokens` holds names")?;
                    lines.push(self.token_named(n)?.factory_record.clone());
                }
                let extra = match a.get("lines") {
                    None => Vec::new(),
                    Some(Value::Array(l)) => l.clone(),
                    Some(v) => return Err(format!("`lines` must be a list, not {v}")),
                };
                for l in extra {
                    lines.push(l.as_str().ok_or("`lines` holds strings")?.to_owned());
                }
                let file = lines.join("\n") + "\n";
                let serials = call!(tessera_host::factory_file_serials(file.clone()));
                let known: Vec<String> = serials.into_iter().filter(|s| self.authenticators.contains_key(s)).collect();
                let import = call!(portal.import_devices(file, known, a.at()?));
                let events = self.store(&import.change)?;
                Ok(Got::Done { verdict: None, facts: Map::new(), events }.fact("serials", json!(import.serials)))
            }
            "order" => {
                let portal = self.portal()?;
                let serial = self.token_named(&a.str("token")?)?.serial.clone();
                let row = self.authenticators.get(&serial).cloned().ok_or("the token was not imported")?;
                let settings = self.activation_settings.clone();
                let o = call!(portal.order_device(a.str("account")?, a.str("activationCode")?, row, settings, a.at()?));
                let events = self.store(&o.change)?;
                self.orders_by_var
                    .insert(a.str("save")?, OrderVar { user_id: o.user_id, initial_password: o.initial_password });
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "activationStart" => {
                let portal = self.portal()?;
                let user_id = self.order_var(&a.str("order")?)?.user_id.clone();
                let order = self.orders.get(&user_id).cloned().ok_or("no order row")?;
                let auth = self.authenticators.get(&order.serial).cloned().ok_or("no authenticator row")?;
                let settings = self.activation_settings.clone();
                let u = call!(portal.start_activation(order, auth, settings, a.at()?));
                self.activation_update(&a.str("save")?, u)
            }
            "activationNext" => {
                let portal = self.portal()?;
                let var = a.str("activation")?;
                let id = self.activation_ids.get(&var).cloned().ok_or_else(|| format!("no activation `{var}`"))?;
                let row = self.activations.get(&id).cloned().ok_or("no activation row")?;
                let order = self.orders.get(&row.user_id).cloned().ok_or("no order row")?;
                let auth = self.authenticators.get(&row.serial).cloned().ok_or("no authenticator row")?;
                let creds = self.credentials.get(&row.account).cloned();
                let input = match a.get("input") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Object(m)) if m.len() == 1 => {
                        let (k, v) = m.iter().next().ok_or("empty input")?;
                        let v = v.as_str().ok_or("an input reference is a name")?;
                        match k.as_str() {
                            "shown" => self.last_answer_of(v)?,
                            "wrong" => wrong_code(&self.last_answer_of(v)?),
                            "serial" => self.token_named(v)?.serial.clone(),
                            "initialPassword" => self.order_var(v)?.initial_password.clone(),
                            other => return Err(format!("unknown input reference `{other}`")),
                        }
                    }
                    other => return Err(format!("bad `input` {other:?}")),
                };
                let settings = self.activation_settings.clone();
                let u = call!(portal.activation_next(row, order, auth, creds, input, settings, a.at()?));
                self.activation_update(&var, u)
            }
            "tokenScan" => {
                let t = self.token_index(a)?;
                let qr = self.qr(a)?;
                let tok = &self.tokens[t];
                let screen = call!(tok.app.scan(tok.state.clone(), qr));
                let info = call!(tok.app.info(screen.state.clone()));
                let user = screen
                    .user_id
                    .as_ref()
                    .and_then(|u| self.orders_by_var.iter().find(|(_, o)| &o.user_id == u).map(|(k, _)| k.clone()));
                let tok = &mut self.tokens[t];
                tok.state = screen.state.clone();
                tok.last_code = Some(screen.code.clone());
                tok.device_id = info.device_id;
                Ok(Got::done()
                    .fact("kind", serde_json::to_value(screen.kind).map_err(|e| e.to_string())?)
                    .fact("digits", json!(screen.code.len()))
                    .fact("portalName", json!(screen.portal_name))
                    .fact("userId", json!(user))
                    .fact("approval", serde_json::to_value(&screen.approval).map_err(|e| e.to_string())?)
                    .fact("replaced", json!(screen.replaced)))
            }
            "verifyPassword" | "redeemRecoveryCode" => {
                let portal = self.portal()?;
                let account = a.str("account")?;
                let row = self.credentials.get(&account).cloned().ok_or("the account has no credentials row")?;
                let check = if op == "verifyPassword" {
                    call!(portal.verify_password(row, a.str("password")?, a.at()?))
                } else {
                    let code = match a.get("code") {
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
                            let i = r.get(1).and_then(Value::as_u64).ok_or("`code.recovery[1]` is an index")?;
                            self.recovery_codes
                                .get(var)
                                .and_then(|c| c.get(i as usize))
                                .cloned()
                                .ok_or("no such recovery code")?
                        }
                        _ => return Err("missing `code`".into()),
                    };
                    call!(portal.redeem_recovery_code(row, code, a.at()?))
                };
                let events = self.store(&check.change)?;
                Ok(Got::verdict(check.verdict, events).fact("left", json!(check.recovery_codes_left)))
            }
            "rename" | "unlink" => {
                let portal = self.portal()?;
                let p = self.phone(a)?;
                let row = self.device_row(p)?;
                let change = if op == "rename" {
                    call!(portal.rename_device(row, a.str("name")?, a.at()?))
                } else {
                    call!(portal.unlink_device(row, a.at()?))
                };
                let events = self.store(&change)?;
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "status" => {
                let portal = self.portal()?;
                let p = self.phone(a)?;
                if a.opt_bool("again")? == Some(true) {
                    let (probe, answer) = self.phones[p].last_status.clone().ok_or("no status request was sent")?;
                    let status = call!(probe.read(edit(answer, a.opt_str("edit")?)?));
                    return Ok(Got::done().fact("status", serde_json::to_value(status).map_err(|e| e.to_string())?));
                }
                let state = self.state_of(p)?;
                let at = a.at()?;
                let probe = call!(self.phones[p].device.status_request(state.clone(), at));
                let request = call!(probe.request());
                let id = call!(portal.status_request_device(request.clone()));
                let device = self.devices.get(&id).cloned();
                let pending = if device.is_none() { self.pendings.get(&id).cloned() } else { None };
                let answer = call!(portal.answer_status(request, StatusLookup { device, pending }, at));
                self.phones[p].last_status = Some((probe.clone(), answer.clone()));
                let answer = edit(answer, a.opt_str("edit")?)?;
                let status = call!(probe.read(answer));
                Ok(Got::done().fact("status", serde_json::to_value(status).map_err(|e| e.to_string())?))
            }
            "deviceCode" => {
                let portal = self.portal()?;
                let p = self.phone(a)?;
                let at = a.at()?;
                let passcode = a.opt_str("passcode")?;
                let bio = a.opt_bool("biometric")?.unwrap_or(false);
                let replay = a.opt_bool("replay")?.unwrap_or(false);
                if usize::from(passcode.is_some()) + usize::from(bio) + usize::from(replay) != 1 {
                    return Err("deviceCode takes exactly one of passcode, biometric: true, replay: true".into());
                }
                let code = if replay {
                    self.phones[p].last_code.clone().ok_or("no previous code to replay")?
                } else {
                    let unlock = match passcode {
                        Some(passcode) => Unlock::Passcode { passcode },
                        None => Unlock::Biometric {
                            secret: self.phones[p].biometric.clone().ok_or("the phone has no biometric secret")?,
                        },
                    };
                    let state = self.state_of(p)?;
                    let code = call!(self.phones[p].device.code(state, unlock, at));
                    self.phones[p].last_code = Some(code.clone());
                    code
                };
                let row = self.device_row(p)?;
                let check = call!(portal.verify_device_code(row, code, at));
                let events = self.store(&check.change)?;
                Ok(Got::verdict(check.verdict, events))
            }
            "offerNewDevice" => {
                let portal = self.portal()?;
                let account = a.str("account")?;
                let save = a.str("save")?;
                let rows = self.account_devices(&account);
                let o = call!(portal.create_offer_for_new_device(account, rows, OfferSettings::default(), a.at()?));
                let events = self.store(&o.change)?;
                self.vars.insert(save, o.qr_text);
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "challenge" | "linkChallenge" => {
                let portal = self.portal()?;
                let save = a.str("save")?;
                let settings = challenge_settings(a)?;
                let issued = if op == "challenge" {
                    let account = a.str("account")?;
                    let rows = match a.opt_str("phone")? {
                        Some(name) => {
                            let p = self.phone_index(&name)?;
                            vec![self.device_row(p)?]
                        }
                        None => self.account_devices(&account),
                    };
                    let approval =
                        strict::<Approval>(a.get("approval").ok_or("missing input `approval`")?, "approval")?;
                    call!(portal.create_challenge(rows, approval, settings, a.at()?))
                } else {
                    let p = self.phone(a)?;
                    let pending = self.pending_row(p)?;
                    let rows = self.account_devices(&pending.account);
                    call!(portal.create_link_challenge(pending, rows, settings, a.at()?))
                };
                let events = self.store(&issued.change)?;
                self.vars.insert(save.clone(), issued.qr_text);
                self.challenge_ids.insert(save, issued.challenge_id);
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "readChallenge" => {
                let p = self.phone(a)?;
                let qr = self.qr(a)?;
                let state = self.state_of(p)?;
                let view = call!(self.phones[p].device.read_challenge(state, qr, a.at()?));
                let mut approval = serde_json::to_value(&view.approval).map_err(|e| e.to_string())?;
                // A linkDevice approval names a phone: its device id reads as the phone's name.
                if let Some(id) = approval.get("deviceId").and_then(Value::as_str).map(str::to_owned) {
                    if let Some(ph) = self.phones.iter().find(|ph| ph.device_id.as_deref() == Some(id.as_str())) {
                        approval["deviceId"] = json!(ph.name);
                    }
                }
                Ok(Got::done()
                    .fact("portalName", json!(view.portal_name))
                    .fact("account", json!(view.account))
                    .fact("approval", approval)
                    .fact("digits", json!(view.digits)))
            }
            "answer" => {
                let p = self.phone(a)?;
                let qr = self.qr(a)?;
                let state = self.state_of(p)?;
                let passcode = a.opt_str("passcode")?;
                let bio = a.opt_bool("biometric")?.unwrap_or(false);
                let unlock = match (passcode, bio) {
                    (Some(passcode), false) => Unlock::Passcode { passcode },
                    (None, true) => Unlock::Biometric {
                        secret: self.phones[p].biometric.clone().ok_or("the phone has no biometric secret")?,
                    },
                    _ => return Err("answer takes exactly one of passcode, biometric: true".into()),
                };
                let at = a.at()?;
                let ph = &mut self.phones[p];
                ph.last_answer = Some(if a.opt_bool("signed")?.unwrap_or(false) {
                    let signed = call!(ph.device.sign_challenge(state, qr, unlock, at));
                    ph.state = Some(signed.state);
                    signed.answer
                } else {
                    call!(ph.device.answer_challenge(state, qr, unlock, at))
                });
                Ok(Got::done())
            }
            "verify" | "vouch" => {
                let portal = self.portal()?;
                let var = a.str("challenge")?;
                let id = self.challenge_ids.get(&var).cloned().ok_or_else(|| format!("no challenge `{var}`"))?;
                let row = self.challenges.get(&id).cloned().ok_or_else(|| format!("no challenge row for `{var}`"))?;
                let who = a.str("answer")?;
                let answer = match who.strip_prefix("wrong:") {
                    Some(name) => wrong_code(&self.last_answer_of(name)?),
                    None => self.last_answer_of(&who)?,
                };
                let answer = edit(answer, a.opt_str("edit")?)?;
                let rows: Vec<StoredDevice> =
                    row.device_ids.iter().filter_map(|d| self.devices.get(d).cloned()).collect();
                let at = a.at()?;
                if op == "verify" {
                    let check = call!(portal.verify_answer(row, rows, answer, at));
                    let events = self.store(&check.change)?;
                    let by = check.device_id.as_ref().and_then(|id| {
                        self.phones
                            .iter()
                            .find(|ph| ph.device_id.as_ref() == Some(id))
                            .map(|ph| ph.name.clone())
                            .or_else(|| {
                                self.tokens.iter().find(|t| t.device_id.as_ref() == Some(id)).map(|t| t.name.clone())
                            })
                    });
                    let got = Got::verdict(check.verdict, events);
                    Ok(match by {
                        Some(name) => got.fact("device", json!(name)),
                        None => got,
                    })
                } else {
                    let p = self.phone(a)?;
                    let pending = self.pending_row(p)?;
                    let c = call!(portal.confirm_with_authenticator(pending, row, rows, answer, at));
                    let events = self.store(&c.change)?;
                    Ok(Got::verdict(c.verdict, events))
                }
            }
            "unlockDevice" => {
                let portal = self.portal()?;
                let p = self.phone(a)?;
                let row = self.device_row(p)?;
                let change = call!(portal.unlock_device(row, a.at()?));
                let events = self.store(&change)?;
                Ok(Got::Done { verdict: None, facts: Map::new(), events })
            }
            "clone" => {
                let from = a.str("from")?;
                let f = self.phone_index(&from)?;
                let (key, state, device_id, bio) = {
                    let src = &self.phones[f];
                    (src.key.clone(), src.state.clone(), src.device_id.clone(), src.biometric.clone())
                };
                let p = self.phone(a)?;
                let ph = &mut self.phones[p];
                ph.device = tessera_host::Device::new(key.clone()).map_err(|e| e.to_string())?;
                ph.key = key;
                ph.state = state;
                ph.device_id = device_id;
                ph.biometric = bio;
                Ok(Got::done())
            }
            "wipe" => {
                let p = self.phone(a)?;
                let state = self.state_of(p)?;
                call!(self.phones[p].device.unlink_locally(state));
                let ph = &mut self.phones[p];
                ph.state = None;
                ph.biometric = None;
                ph.check_code = None;
                ph.last_code = None;
                Ok(Got::done())
            }
            "hotp" => {
                let code = call!(tessera_host::hotp(
                    hex(&a.str("secret")?)?,
                    a.i64("counter")?,
                    digits_of(a)?,
                    algorithm(a.get("algorithm"))?
                ));
                Ok(Got::done().fact("code", json!(code)))
            }
            "totp" => {
                let code = call!(tessera_host::totp(
                    hex(&a.str("secret")?)?,
                    a.at()?,
                    a.opt_i64("period")?.unwrap_or(30),
                    digits_of(a)?,
                    algorithm(a.get("algorithm"))?
                ));
                Ok(Got::done().fact("code", json!(code)))
            }
            "verifyHotp" | "verifyTotp" | "resyncHotp" => {
                let name = a.str("verifier")?;
                let config = verifier_config(a.get("config").ok_or("missing input `config`")?)?;
                let state = match a.get("state") {
                    Some(s) => verifier_state(s)?,
                    None => self.verifiers.get(&name).copied().unwrap_or_default(),
                };
                let at = a.at()?;
                let check = match op {
                    "verifyHotp" => call!(tessera_host::verify_hotp(config, state, a.str("code")?, at)),
                    "verifyTotp" => call!(tessera_host::verify_totp(config, state, a.str("code")?, at)),
                    _ => call!(tessera_host::resync_hotp(
                        config,
                        state,
                        a.str("code1")?,
                        a.str("code2")?,
                        a.i64("window")?,
                        at
                    )),
                };
                self.verifiers.insert(name, check.state);
                let got = Got::verdict(check.verdict, Vec::new()).fact("drift", json!(check.drift));
                Ok(match check.matched {
                    Some(m) => got.fact("matched", json!(m)),
                    None => got,
                })
            }
            "unlock" => {
                let name = a.str("verifier")?;
                let state = self.verifiers.get(&name).copied().unwrap_or_default();
                let state = call!(tessera_host::unlock_verifier(state));
                self.verifiers.insert(name, state);
                Ok(Got::done())
            }
            _ => Err(format!("unknown op {op:?}")),
        }
    }
}

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

fn code_of(v: &Value) -> Step<ErrorCode> {
    let s = v.as_str().ok_or_else(|| format!("an error code must be a string, not {v}"))?;
    ErrorCode::parse(s).ok_or_else(|| format!("unknown error code {s:?}"))
}

fn describe(got: &Got) -> String {
    match got {
        Got::Threw(e) => format!("threw {} ({})", e.code(), e.detail()),
        Got::Done { verdict: Some(Verdict::Refused { code, detail }), .. } => format!("refused {code} ({detail})"),
        Got::Done { verdict, facts, .. } => format!(
            "{} {}",
            verdict.as_ref().map_or("ok", |v| match v {
                Verdict::Accepted => "accepted",
                Verdict::Repeated => "repeated",
                Verdict::Refused { .. } => "refused",
            }),
            Value::Object(facts.clone())
        ),
    }
}

fn check(expect: Option<&Value>, events: Option<&Value>, expect_keys: &[&str], got: &Got) -> Step<()> {
    let fail = |want: &str| Err(format!("expected {want}, got {}", describe(got)));
    let succeeded = |allow_repeated: bool| match got {
        Got::Done { verdict: None | Some(Verdict::Accepted), .. } => true,
        Got::Done { verdict: Some(Verdict::Repeated), .. } => allow_repeated,
        _ => false,
    };
    match expect {
        None => {
            if !succeeded(false) {
                return fail("ok");
            }
        }
        Some(Value::String(s)) => match s.as_str() {
            "ok" => {
                if !succeeded(false) {
                    return fail("ok");
                }
            }
            "accepted" => {
                if !matches!(got, Got::Done { verdict: Some(Verdict::Accepted), .. }) {
                    return fail("accepted");
                }
            }
            "repeated" => {
                if !matches!(got, Got::Done { verdict: Some(Verdict::Repeated), .. }) {
                    return fail("repeated");
                }
            }
            other => return Err(format!("unknown expectation {other:?}")),
        },
        Some(Value::Object(m)) if m.contains_key("refused") || m.contains_key("error") => {
            if m.len() != 1 {
                return Err(format!("`refused`/`error` stands alone in an expectation: {}", Value::Object(m.clone())));
            }
            if let Some(c) = m.get("refused") {
                let want = code_of(c)?;
                if !matches!(got, Got::Done { verdict: Some(Verdict::Refused { code, .. }), .. } if *code == want) {
                    return fail(&format!("refused {want}"));
                }
            } else {
                let want = code_of(&m["error"])?;
                if !matches!(got, Got::Threw(e) if e.code() == want) {
                    return fail(&format!("error {want}"));
                }
            }
        }
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| !expect_keys.contains(&k.as_str())) {
                return Err(format!("unknown expectation key `{k}` for this op"));
            }
            if !succeeded(false) {
                return fail(&Value::Object(m.clone()).to_string());
            }
            let Got::Done { facts, .. } = got else { unreachable!() };
            for (k, want) in m {
                let have = facts.get(k).unwrap_or(&Value::Null);
                if have != want {
                    return Err(format!("expected {k} = {want}, got {have}"));
                }
            }
        }
        Some(v) => return Err(format!("unknown expectation {v}")),
    }
    if let Some(want) = events {
        let have = match got {
            Got::Done { events, .. } => json!(events),
            Got::Threw(_) => json!([]),
        };
        if &have != want {
            return Err(format!("expected events {want}, got {have}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Report {
    files: usize,
    steps: usize,
    skipped: Vec<String>,
}

/// Run one scenario; `Err` names the file and the failing step.
fn run_scenario(file: &str, doc: &Value, report: &mut Report) -> Result<(), String> {
    let top = doc.as_object().ok_or_else(|| format!("{file}: not a JSON object"))?;
    if let Some(k) = top.keys().find(|k| !["name", "about", "steps"].contains(&k.as_str())) {
        return Err(format!("{file}: unknown key `{k}`"));
    }
    for k in ["name", "about"] {
        if !top.get(k).is_some_and(Value::is_string) {
            return Err(format!("{file}: `{k}` must be a string"));
        }
    }
    let steps = top.get("steps").and_then(Value::as_array).ok_or_else(|| format!("{file}: no `steps` array"))?;
    if steps.is_empty() {
        return Err(format!("{file}: no steps"));
    }
    let mut world = World::default();
    for (i, step) in steps.iter().enumerate() {
        let op = step.get("do").and_then(Value::as_str).unwrap_or("?");
        let at = |e: String| format!("{file}: step {i} ({op}): {e}");
        let m = step.as_object().ok_or_else(|| at("a step is an object".into()))?;
        let (inputs, expect_keys) = op_keys(op).ok_or_else(|| at(format!("unknown op {op:?}")))?;
        if let Some(k) = m.keys().find(|k| !COMMON.contains(&k.as_str()) && !inputs.contains(&k.as_str())) {
            return Err(at(format!("unknown key `{k}`")));
        }
        if let Some(reason) = m.get("skip") {
            let reason = reason.as_str().ok_or_else(|| at("`skip` is the reason, a string".into()))?;
            report.skipped.push(format!("{file}: step {i} ({op}): {reason}"));
            continue;
        }
        let got = world.run(op, &Args(m)).map_err(at)?;
        check(m.get("expect"), m.get("events"), expect_keys, &got).map_err(at)?;
        report.steps += 1;
    }
    report.files += 1;
    Ok(())
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/scenarios")
}

fn load_all() -> Vec<(String, Value)> {
    let dir = scenario_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            let doc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, doc)
        })
        .collect()
}

fn load(name: &str) -> Value {
    load_all().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no scenario {name}")).1
}

#[test]
fn every_scenario_file_passes() {
    // RustCrypto, or the provider TESSERA_CRYPTO names (scripts/test.sh
    // runs the files again on AWS-LC; the CLI runner uses AWS-LC too).
    let provider = tessera_crypto_aws_lc::install_from_env(&tessera_core::provider::RUST_CRYPTO).unwrap();
    println!("crypto provider: {}", provider.name());
    let files = load_all();
    assert!(
        files.len() >= MIN_FILES,
        "only {} scenario files in {} (at least {MIN_FILES} expected)",
        files.len(),
        scenario_dir().display()
    );
    let mut report = Report::default();
    let failures: Vec<String> =
        files.iter().filter_map(|(name, doc)| run_scenario(name, doc, &mut report).err()).collect();
    println!(
        "scenarios: {} of {} files passed, {} steps ran, {} skipped",
        report.files,
        files.len(),
        report.steps,
        report.skipped.len()
    );
    for s in &report.skipped {
        println!("  skipped: {s}");
    }
    assert!(failures.is_empty(), "{} scenario file(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// `SCENARIO=link-success cargo test -p tessera-host --test scenarios one`:
/// run the files whose name contains the text, with their step counts
/// (does nothing without `SCENARIO`; the full run is the test above).
#[test]
fn one_scenario() {
    let Ok(filter) = std::env::var("SCENARIO") else { return };
    for (name, doc) in load_all().iter().filter(|(n, _)| n.contains(&filter)) {
        let mut report = Report::default();
        run_scenario(name, doc, &mut report).unwrap_or_else(|e| panic!("{e}"));
        println!("{name}: {} steps ran, {} skipped", report.steps, report.skipped.len());
    }
}

// ---------------------------------------------------------------------------
// Negative controls: the runner cannot pass vacuously
// ---------------------------------------------------------------------------

/// Run `file` with one step changed by `f`; the runner must report that step.
fn must_fail(file: &str, step: usize, f: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut doc = load(file);
    let s = doc["steps"][step].as_object_mut().unwrap_or_else(|| panic!("{file} has no step {step}"));
    f(s);
    let err = run_scenario(file, &doc, &mut Report::default()).expect_err("the changed scenario must fail");
    assert!(err.starts_with(&format!("{file}: step {step} ")), "the failure names the file and step: {err}");
    err
}

/// The index of the first step of `file` matching `p`.
fn find_step(file: &str, p: impl Fn(&Map<String, Value>) -> bool) -> usize {
    let doc = load(file);
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().position(|s| s.as_object().is_some_and(&p)))
        .unwrap_or_else(|| panic!("{file}: no such step"))
}

#[test]
fn a_flipped_expectation_fails() {
    // The genuine files pass.
    for f in ["link-check-code.json", "otp-hotp-rfc4226.json"] {
        run_scenario(f, &load(f), &mut Report::default()).unwrap_or_else(|e| panic!("{e}"));
    }
    // Another refusal code.
    let i = find_step("link-check-code.json", |s| s.get("expect") == Some(&json!({"refused": "LOCKED_OUT"})));
    let e = must_fail("link-check-code.json", i, |s| {
        s.insert("expect".into(), json!({"refused": "CHECK_CODE_MISMATCH"}));
    });
    assert!(e.contains("LOCKED_OUT"), "{e}");
    // Accepted where it was refused, and the other way round.
    must_fail("link-check-code.json", i, |s| {
        s.insert("expect".into(), json!("accepted"));
    });
    let i = find_step("link-check-code.json", |s| s.get("expect") == Some(&json!("accepted")));
    must_fail("link-check-code.json", i, |s| {
        s.insert("expect".into(), json!({"refused": "CHECK_CODE_MISMATCH"}));
    });
    // A wrong code value; an absent expectation means ok.
    must_fail("otp-hotp-rfc4226.json", 0, |s| {
        s.insert("expect".into(), json!({"code": "755225"}));
    });
    let i = find_step("link-check-code.json", |s| s.get("expect").is_some_and(|e| e.get("refused").is_some()));
    must_fail("link-check-code.json", i, |s| {
        s.remove("expect");
    });
    // Wrong events.
    let i = find_step("link-success.json", |s| s.contains_key("events"));
    must_fail("link-success.json", i, |s| {
        s.insert("events".into(), json!(["deviceUnlinked"]));
    });
}

#[test]
fn unknown_ops_and_keys_fail() {
    let e = must_fail("otp-hotp-rfc4226.json", 0, |s| {
        s.insert("do".into(), json!("hotpp"));
    });
    assert!(e.contains("unknown op"), "{e}");
    let e = must_fail("otp-hotp-rfc4226.json", 0, |s| {
        s.insert("countr".into(), json!(1));
    });
    assert!(e.contains("unknown key"), "{e}");
    let e = must_fail("otp-hotp-rfc4226.json", 0, |s| {
        s.insert("expect".into(), json!({"cod": "755224"}));
    });
    assert!(e.contains("unknown expectation key"), "{e}");
    let mut doc = load("otp-hotp-rfc4226.json");
    doc.as_object_mut().map(|m| m.insert("extra".into(), json!(1)));
    assert!(run_scenario("x.json", &doc, &mut Report::default()).is_err());
}
