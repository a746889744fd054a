//! The portal operations, once: `tessera portal …` prints what they return
//! (`--json`: [`Output::json`], else [`Output::text`]) and `tessera serve`
//! answers with the same JSON.
//!
//! Every decision is tessera-host's: each state change goes through
//! [`PortalDb::run`], the host contract (read the rows, call
//! `tessera_host::Portal`, compare-and-set the writes of its `PortalChange`
//! in one transaction, retry on a conflict). A refusal (`Verdict::Refused`)
//! was stored (a wrong code counts) and is a [`Failure`] whose `json` tells
//! the verdict and events of the stored change; a failed call stored nothing.

use crate::cli_err;
use crate::store::{name_of, read, Applied, PortalDb, Ran};
use crate::util::secs;
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_host::{
    Approval, ChallengeIssued, ChallengeSettings, ErrorCode, LinkConfirmation, LinkLookup, LinkOffer, LinkRequest,
    OfferSettings, Portal, PortalChange, RecordWrite, StatusLookup, StoredChallenge, StoredDevice,
    TesseraError as Error, Timestamp, Verdict,
};

/// What an operation returns: its JSON (`--json`, the HTTP body), its text
/// (stdout without `--json`) and a note for a person (stderr, text mode).
/// Its `Debug` shows neither (they hold QR texts and answers).
pub struct Output {
    pub json: Value,
    pub text: String,
    pub note: Option<String>,
}

impl Output {
    fn new(json: Value, text: impl Into<String>) -> Self {
        Output { json, text: text.into(), note: None }
    }
}

/// A failed operation: the error, and what is still shown before it (a
/// refusal's verdict and events; a refused link's answer for the device).
/// Its `Debug` shows the error only.
pub struct Failure {
    pub error: Error,
    pub json: Option<Value>,
    pub text: Option<String>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, json: None, text: None }
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failure").field("error", &self.error).finish_non_exhaustive()
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

/// The store, the portal and the time of one operation. `notify`: act on a
/// committed change's events (the CLI prints its notifications; the
/// service leaves them in the events table, `GET /v1/events`).
pub struct Ctx<'a> {
    pub db: &'a mut PortalDb,
    pub portal: &'a Arc<Portal>,
    pub now: Timestamp,
    pub notify: fn(&PortalChange),
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("now", &self.now.secs()).finish_non_exhaustive()
    }
}

/// How a new offer's device links: its lifetime, passcode rules and the
/// time-based codes it will show (CLI flags and JSON bodies alike).
#[derive(Args, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfferOptions {
    /// Lifetime in seconds (default 300, at most 600).
    #[arg(long)]
    pub ttl: Option<i64>,
    /// Passcode minimum length (6–16; default 6).
    #[arg(long)]
    pub passcode_min: Option<i32>,
    /// Passcode maximum length (6–16; default 6).
    #[arg(long)]
    pub passcode_max: Option<i32>,
    /// Allow letters and symbols in passcodes.
    #[arg(long)]
    pub alphanumeric: bool,
    /// Do not allow biometrics.
    #[arg(long)]
    pub no_biometrics: bool,
    /// Digits of the device's time-based codes (6–8; default 6).
    #[arg(long)]
    pub code_digits: Option<i32>,
    /// Seconds per step of the device's codes (15–120; default 30).
    #[arg(long)]
    pub code_period: Option<i64>,
    /// Hash of the device's codes: sha1, sha256 or sha512 (default sha256).
    #[arg(long)]
    pub code_algorithm: Option<String>,
}

impl OfferOptions {
    pub fn settings(&self) -> std::result::Result<OfferSettings, Error> {
        use tessera_host::{DeviceCodeRules, PasscodeRules};
        let d = PasscodeRules::default();
        let rules = PasscodeRules {
            min_len: self.passcode_min.unwrap_or(d.min_len),
            max_len: self.passcode_max.unwrap_or(d.max_len),
            digits_only: d.digits_only && !self.alphanumeric,
            biometrics_allowed: d.biometrics_allowed && !self.no_biometrics,
        };
        let device_codes = if self.code_digits.is_none() && self.code_period.is_none() && self.code_algorithm.is_none()
        {
            None
        } else {
            let d = DeviceCodeRules::default();
            Some(DeviceCodeRules {
                algorithm: match &self.code_algorithm {
                    Some(a) => Some(crate::otp_cmd::algorithm(Some(a))?),
                    None => d.algorithm,
                },
                digits: self.code_digits.unwrap_or(d.digits),
                period_seconds: self.code_period.unwrap_or(d.period_seconds),
            })
        };
        Ok(OfferSettings { ttl_seconds: self.ttl, rules: Some(rules), device_codes })
    }
}

/// What a challenge approves: a login, or a transaction when `amount` is
/// given (with `currency` and `payee`: PSD2 dynamic linking).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeOptions {
    pub device: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub payee: Option<String>,
    pub text: Vec<String>,
    pub digits: Option<i32>,
    pub ttl: Option<i64>,
}

impl ChallengeOptions {
    pub fn approval(&self) -> std::result::Result<Approval, Error> {
        match (&self.amount, &self.currency, &self.payee) {
            (Some(amount), Some(currency), Some(payee)) => Ok(Approval::Transaction {
                amount: amount.clone(),
                currency: currency.clone(),
                payee: payee.clone(),
                text: self.text.clone(),
            }),
            (None, None, None) if self.text.is_empty() => Ok(Approval::Login),
            _ => Err(cli_err(
                ErrorCode::InvalidInput,
                "a transaction needs amount, currency and payee (and text only with them); a login none",
            )),
        }
    }

    pub fn settings(&self) -> ChallengeSettings {
        ChallengeSettings { digits: self.digits, ttl_seconds: self.ttl }
    }
}

/// The events of a change, in tessera-host's one JSON shape
/// (`{"kind": "deviceLinked", …}`).
pub fn events_json(change: &PortalChange) -> Value {
    serde_json::to_value(&change.events).unwrap_or(Value::Null)
}

/// A verdict in tessera-host's JSON shape (`{"kind": "refused", "code": …}`).
pub fn verdict_json(v: &Verdict) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub fn device_json(d: &StoredDevice) -> Value {
    json!({"id": d.device_id, "name": d.name, "linked_at": secs(d.linked_at),
           "last_used_at": d.last_used_at.map(secs), "status": name_of(&d.status), "locked": d.locked,
           "serial": d.serial, "usable_from": d.usable_from.map(secs)})
}

fn no_such_challenge() -> Error {
    cli_err(ErrorCode::TokenUnknown, "no such challenge")
}

fn no_such_link() -> Error {
    cli_err(ErrorCode::TokenUnknown, "no link of this device id is known (run `tessera portal link-accept` first)")
}

fn no_such_device() -> Error {
    cli_err(ErrorCode::DeviceUnknown, "no such device for this account")
}

/// Once the change committed: act on its events (a refusal's too: a
/// device locked, a clone suspected); a refused verdict is a [`Failure`]
/// showing the verdict and the events of its stored change.
fn check_verdict(cx: &Ctx<'_>, v: &Verdict, change: &PortalChange) -> Result<()> {
    (cx.notify)(change);
    if let Err(error) = v.check() {
        let json = json!({"verdict": verdict_json(v), "events": events_json(change)});
        return Err(Failure { error, json: Some(json), text: None });
    }
    Ok(())
}

/// The device row a change writes.
fn written_device(change: &PortalChange) -> Option<&StoredDevice> {
    change.writes.iter().rev().find_map(|w| match w {
        RecordWrite::Device { row, .. } => Some(row),
        _ => None,
    })
}

/// The deadline of the pending link a change writes.
fn written_confirm_by(change: &PortalChange) -> Option<Timestamp> {
    change.writes.iter().find_map(|w| match w {
        RecordWrite::PendingLink { row, .. } => Some(row.confirm_by),
        _ => None,
    })
}

/// The challenge row a change writes.
fn written_challenge(change: &PortalChange) -> Option<&StoredChallenge> {
    change.writes.iter().find_map(|w| match w {
        RecordWrite::Challenge { row, .. } => Some(row),
        _ => None,
    })
}

/// A new offer: its text (JSON: with its id, expiry and events).
fn offer_output(offer: &LinkOffer) -> Output {
    Output::new(
        json!({"qr_text": offer.qr_text, "offer_id": offer.offer_id, "expires_at": secs(offer.expires_at),
               "events": events_json(&offer.change)}),
        offer.qr_text.clone(),
    )
}

/// A new challenge: the QR text, then its id (JSON: `{"qr", "challenge_id", …}`).
fn challenge_output(issued: &ChallengeIssued) -> Output {
    let row = written_challenge(&issued.change);
    Output::new(
        json!({"qr": issued.qr_text, "challenge_id": issued.challenge_id, "expires_at": secs(issued.expires_at),
               "kind": row.map(|r| name_of(&r.kind)), "device_ids": row.map(|r| r.device_ids.clone()),
               "events": events_json(&issued.change)}),
        format!("{}\n{}", issued.qr_text, issued.challenge_id),
    )
}

/// A link confirmed (by its check code, or vouched for by an authenticator:
/// then `new_device` names the linked device; the change also writes the
/// authenticator's row, which `LinkConfirmation::device` may be).
fn linked_output(
    cx: &Ctx<'_>,
    change: &PortalChange,
    confirmation: &LinkConfirmation,
    new_device: Option<&str>,
) -> Result<Output> {
    check_verdict(cx, &confirmation.verdict, change)?;
    let written = new_device.and_then(|id| {
        change.writes.iter().find_map(|w| match w {
            RecordWrite::Device { row, .. } if row.device_id == id => Some(row),
            _ => None,
        })
    });
    let row = written
        .or(confirmation.device.as_ref())
        .ok_or_else(|| cli_err(ErrorCode::Internal, "an accepted link without a device row"))?;
    Ok(Output::new(
        json!({"device": device_json(row), "verdict": verdict_json(&confirmation.verdict),
               "events": events_json(change)}),
        format!("linked device {} \"{}\" to {}", row.device_id, row.name, row.account),
    ))
}

/// A device row after a rename, an unlink or an unlock.
fn device_output(cx: &Ctx<'_>, change: &PortalChange, text: impl Fn(&StoredDevice) -> String) -> Result<Output> {
    let row = written_device(change).ok_or_else(|| cli_err(ErrorCode::Internal, "the change wrote no device row"))?;
    (cx.notify)(change);
    let mut j = device_json(row);
    j["events"] = events_json(change);
    Ok(Output::new(j, text(row)))
}

/// A registry operation on one device row of `account`, under the host
/// contract. Returns the committed change and what `op` returned with it.
fn device_op<T>(
    cx: &mut Ctx<'_>,
    account: &str,
    device: &str,
    op: impl Fn(StoredDevice) -> std::result::Result<(PortalChange, T), Error>,
) -> Result<(PortalChange, T)> {
    Ok(cx.db.run(cx.now, |c| op(read::device_of(c, account, device)?.ok_or_else(no_such_device)?))?.stored()?)
}

/// A single-use link offer for `account` (the QR text a phone scans).
pub fn link_offer(cx: &mut Ctx<'_>, account: &str, o: &OfferOptions) -> Result<Output> {
    let offer = cx.portal.create_offer(account.to_owned(), o.settings()?, cx.now)?;
    if let Applied::Conflict(what) = cx.db.apply(&offer.change, cx.now)? {
        // A fresh random offer id already taken: not a race, a fault.
        return Err(cli_err(ErrorCode::Internal, format!("new offer: {what}")).into());
    }
    Ok(offer_output(&offer))
}

/// Flow 2: an offer for a new device, vouched for by an existing authenticator.
pub fn offer_new_device(cx: &mut Ctx<'_>, account: &str, o: &OfferOptions) -> Result<Output> {
    let (portal, now, settings) = (cx.portal, cx.now, o.settings()?);
    let (_, offer) = cx
        .db
        .run(now, |c| {
            let rows = read::devices_by_id(c, account)?;
            let offer = portal.create_offer_for_new_device(account.to_owned(), rows, settings, now)?;
            Ok((offer.change.clone(), offer))
        })?
        .stored()?;
    let mut out = offer_output(&offer);
    out.note = Some(
        "send this text to the new device (`tessera device link --qr TEXT`); after `link-accept`, \
         `tessera portal link-challenge --device NEWID` gives the challenge for an existing authenticator"
            .into(),
    );
    Ok(out)
}

/// Accept a device's link request: the answer the device reads.
pub fn link_accept(cx: &mut Ctx<'_>, request: &str) -> Result<Output> {
    let req = Arc::clone(cx.portal).open_link_request(request.to_owned())?;
    link_accept_opened(cx, req)
}

/// [`link_accept`] of a request already opened (by the service's rate
/// limiter, which needs its account).
pub fn link_accept_opened(cx: &mut Ctx<'_>, req: Arc<LinkRequest>) -> Result<Output> {
    let now = cx.now;
    let (device_id, device_name) = (req.device_id(), req.device_name());
    let ran = cx.db.run(now, |c| {
        let lookup = LinkLookup {
            offer: read::offer(c, &req.offer_id())?,
            // One device id across all accounts, pending or registered.
            device_key_seen: read::device_id_seen(c, &device_id)?,
        };
        let a = req.accept(lookup, now)?;
        // A repeat writes nothing: its deadline is the stored row's.
        let confirm_by = match written_confirm_by(&a.change) {
            Some(t) => Some(t),
            None => read::pending(c, &device_id)?.map(|p| p.confirm_by),
        };
        Ok((a.change.clone(), (a, confirm_by)))
    })?;
    let (change, (a, confirm_by)) = match ran {
        Ran::Stored(change, v) => (change, v),
        Ran::GaveUp((a, _)) => {
            // Nothing stored: the device keeps its request and sends it again.
            return Err(Failure {
                error: crate::store::gave_up(),
                json: Some(json!({"answer": a.if_not_stored, "error": ErrorCode::Storage.as_str()})),
                text: Some(a.if_not_stored),
            });
        }
    };
    let repeated = a.verdict == Verdict::Repeated;
    if let Err(error) = a.verdict.check() {
        // The device still needs the (authenticated) refusal.
        return Err(Failure {
            error: error.clone(),
            json: Some(json!({"answer": a.answer, "error": error.code().as_str(), "verdict": verdict_json(&a.verdict),
                              "if_not_stored": a.if_not_stored, "events": events_json(&change)})),
            text: Some(a.answer),
        });
    }
    (cx.notify)(&change);
    let note = if repeated {
        format!("device \"{device_name}\" ({device_id}) sent its accepted request again: same answer, nothing changed")
    } else {
        format!(
            "device \"{device_name}\" ({device_id}) waits for its check code until {}",
            crate::util::when(confirm_by.map(secs).unwrap_or_default())
        )
    };
    Ok(Output {
        json: json!({"answer": a.answer, "device_id": device_id, "device_name": device_name,
                     "confirm_by": confirm_by.map(secs), "repeated": repeated, "verdict": verdict_json(&a.verdict),
                     "if_not_stored": a.if_not_stored, "events": events_json(&change)}),
        text: a.answer.clone(),
        note: Some(note),
    })
}

/// Confirm a link with the check code typed on the portal: every open
/// pending link of the account in one call (the matching one is
/// confirmed, a wrong code counts against each).
pub fn link_confirm(cx: &mut Ctx<'_>, account: &str, code: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, confirmation) = cx
        .db
        .run(now, |c| {
            let l = portal.confirm_link(read::open_pendings(c, account)?, code.to_owned(), now)?;
            Ok((l.change.clone(), l))
        })?
        .stored()?;
    linked_output(cx, &change, &confirmation, None)
}

/// The links of an account waiting for their check code.
pub fn pending_links(cx: &mut Ctx<'_>, account: &str) -> Result<Output> {
    let rows = cx.db.read(|c| read::open_pendings(c, account))?;
    let now = cx.now.secs();
    let mut text = format!("{:<18} {:<24} {:>12} {:>8} STATUS", "ID", "NAME", "CONFIRM_BY", "ATTEMPTS");
    let mut list = Vec::new();
    for p in &rows {
        let status = name_of(&p.status);
        text.push_str(&format!(
            "\n{:<18} {:<24} {:>12} {:>8} {status}",
            p.device_id,
            p.device_name,
            secs(p.confirm_by),
            p.attempts
        ));
        list.push(json!({"device_id": p.device_id, "device_name": p.device_name, "confirm_by": secs(p.confirm_by),
                         "attempts": p.attempts, "status": status, "expired": secs(p.confirm_by) < now}));
    }
    Ok(Output::new(Value::Array(list), text))
}

/// An account's devices.
pub fn devices(cx: &mut Ctx<'_>, account: &str) -> Result<Output> {
    let rows = cx.db.read(|c| read::devices_of(c, account))?;
    let or_dash = |t: Option<Timestamp>| t.map(|t| t.secs().to_string()).unwrap_or_else(|| "-".into());
    let mut text = format!(
        "{:<18} {:<24} {:>12} {:>12} {:<8} {:<16} USABLE_FROM",
        "ID", "NAME", "LINKED_AT", "LAST_USED", "STATUS", "SERIAL"
    );
    for r in &rows {
        text.push_str(&format!(
            "\n{:<18} {:<24} {:>12} {:>12} {:<8} {:<16} {}",
            r.device_id,
            r.name,
            r.linked_at.secs(),
            or_dash(r.last_used_at),
            name_of(&r.status),
            r.serial.as_deref().unwrap_or("-"),
            or_dash(r.usable_from)
        ));
    }
    Ok(Output::new(Value::Array(rows.iter().map(device_json).collect()), text))
}

pub fn rename(cx: &mut Ctx<'_>, account: &str, device: &str, name: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, ()) =
        device_op(cx, account, device, |row| Ok((portal.rename_device(row, name.to_owned(), now)?, ())))?;
    device_output(cx, &change, |r| format!("renamed {} to \"{}\"", r.device_id, r.name))
}

/// Unlink a device (works without it: lost or stolen phone).
pub fn unlink(cx: &mut Ctx<'_>, account: &str, device: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, ()) = device_op(cx, account, device, |row| Ok((portal.unlink_device(row, now)?, ())))?;
    device_output(cx, &change, |r| {
        format!("unlinked {} \"{}\"; the device wipes the account on its next contact", r.device_id, r.name)
    })
}

/// Answer a device's sealed status request (read-only: a status answer
/// writes nothing, so it can never overwrite an unlink).
pub fn status(cx: &mut Ctx<'_>, request: &str) -> Result<Output> {
    let device_id = cx.portal.status_request_device(request.to_owned())?;
    let lookup = cx.db.read(|c| {
        let device = read::device(c, &device_id)?;
        let pending = if device.is_none() { read::pending(c, &device_id)? } else { None };
        Ok(StatusLookup { device, pending })
    })?;
    // Which row the answer was made from, as stored (what the answer
    // tells the device is tessera-host's decision, sealed for it).
    let (status, pending) = match (&lookup.device, &lookup.pending) {
        (Some(d), _) => (Some(name_of(&d.status)), None),
        (None, Some(p)) => (Some("pending".to_owned()), Some(name_of(&p.status))),
        (None, None) => (None, None),
    };
    let answer = cx.portal.answer_status(request.to_owned(), lookup, cx.now)?;
    Ok(Output::new(json!({"answer": answer, "status": status, "pending": pending}), answer))
}

/// Verify a time-based code shown by a linked device.
pub fn verify_totp(cx: &mut Ctx<'_>, account: &str, device: &str, code: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, (verdict, step, drift)) = device_op(cx, account, device, |row| {
        let check = portal.verify_device_code(row, code.to_owned(), now)?;
        Ok((check.change, (check.verdict, check.matched, check.drift)))
    })?;
    check_verdict(cx, &verdict, &change)?;
    Ok(Output::new(
        json!({"accepted": true, "verdict": verdict_json(&verdict), "step": step, "drift": drift,
               "events": events_json(&change)}),
        format!("accepted (step {}, drift {drift})", step.unwrap_or_default()),
    ))
}

/// A login or transaction challenge for every device of the account (or
/// only `o.device`).
pub fn challenge(cx: &mut Ctx<'_>, account: &str, o: &ChallengeOptions) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (approval, settings) = (o.approval()?, o.settings());
    let (_, issued) = cx
        .db
        .run(now, |c| {
            let rows = match &o.device {
                Some(id) => vec![read::device_of(c, account, id)?.ok_or_else(no_such_device)?],
                None => read::devices_by_id(c, account)?,
            };
            let issued = portal.create_challenge(rows, approval.clone(), settings, now)?;
            Ok((issued.change.clone(), issued))
        })?
        .stored()?;
    Ok(challenge_output(&issued))
}

/// Where a challenge stands, without its secrets: kind, account, devices,
/// expiry and whether it was answered.
pub fn challenge_status(cx: &mut Ctx<'_>, challenge_id: &str) -> Result<Output> {
    let row = cx.db.read(|c| read::challenge(c, challenge_id))?.ok_or_else(no_such_challenge)?;
    let expired = secs(row.expires_at) < cx.now.secs();
    let json = json!({"challenge_id": row.challenge_id, "account": row.account, "kind": name_of(&row.kind),
                      "device_ids": row.device_ids, "expires_at": secs(row.expires_at), "expired": expired,
                      "status": name_of(&row.status)});
    let text = format!("{} {} of {}: {}", name_of(&row.kind), row.challenge_id, row.account, name_of(&row.status));
    Ok(Output::new(json, text))
}

/// Verify a challenge's answer (typed code, or a signed answer that names
/// its challenge itself). A wrong answer is stored (it counts towards the
/// device's lockout) before the refusal.
pub fn verify(cx: &mut Ctx<'_>, challenge: Option<&str>, answer: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let id = match challenge {
        Some(id) => id.to_owned(),
        None => tessera_host::signed_answer_challenge_id(answer.to_owned()).map_err(|_| {
            cli_err(ErrorCode::InvalidInput, "a typed code needs --challenge (the id `portal challenge` printed)")
        })?,
    };
    let (change, (check, row)) = cx
        .db
        .run(now, |c| {
            let row = read::challenge(c, &id)?.ok_or_else(no_such_challenge)?;
            let devices = read::challenge_devices(c, &row)?;
            let check = portal.verify_answer(row.clone(), devices, answer.to_owned(), now)?;
            Ok((check.change.clone(), (check, row)))
        })?
        .stored()?;
    check_verdict(cx, &check.verdict, &change)?;
    let mut out = Output::new(
        json!({"accepted": true, "verdict": verdict_json(&check.verdict), "challenge_id": row.challenge_id,
               "account": row.account, "kind": row.kind, "device_id": check.device_id,
               "events": events_json(&change)}),
        "accepted",
    );
    out.note = check.device_id.as_ref().map(|d| {
        format!("{} challenge {} of {} answered by device {d}", name_of(&row.kind), row.challenge_id, row.account)
    });
    Ok(out)
}

/// Unlock a device locked by wrong answers or codes (the user re-identified).
pub fn unlock_device(cx: &mut Ctx<'_>, device: &str, account: Option<&str>) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, ()) = cx
        .db
        .run(now, |c| {
            let row = read::device(c, device)?
                .filter(|d| account.is_none_or(|a| a == d.account))
                .ok_or_else(no_such_device)?;
            Ok((portal.unlock_device(row, now)?, ()))
        })?
        .stored()?;
    device_output(cx, &change, |r| format!("unlocked {} \"{}\" of {}", r.device_id, r.name, r.account))
}

/// Flow 2: the challenge a new device shows to an existing authenticator.
pub fn link_challenge(cx: &mut Ctx<'_>, device: &str, settings: ChallengeSettings) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (_, issued) = cx
        .db
        .run(now, |c| {
            let pending = read::pending(c, device)?.ok_or_else(no_such_link)?;
            let rows = read::devices_by_id(c, &pending.account)?;
            let issued = portal.create_link_challenge(pending, rows, settings, now)?;
            Ok((issued.change.clone(), issued))
        })?
        .stored()?;
    Ok(challenge_output(&issued))
}

/// Flow 2: link a new device with the code its existing authenticator gave.
pub fn vouch(cx: &mut Ctx<'_>, device: &str, challenge: &str, code: &str) -> Result<Output> {
    let (portal, now) = (cx.portal, cx.now);
    let (change, confirmation) = cx
        .db
        .run(now, |c| {
            let pending = read::pending(c, device)?.ok_or_else(no_such_link)?;
            let row = read::challenge(c, challenge)?.ok_or_else(no_such_challenge)?;
            let devices = read::challenge_devices(c, &row)?;
            let l = portal.confirm_with_authenticator(pending, row, devices, code.to_owned(), now)?;
            Ok((l.change.clone(), l))
        })?
        .stored()?;
    linked_output(cx, &change, &confirmation, Some(device))
}

/// The stored events after id `after` (an outbox a host polls), at most `limit`.
pub fn events(cx: &mut Ctx<'_>, after: i64, limit: u32) -> Result<Output> {
    let rows = cx.db.events_page(after, i64::from(limit))?;
    let mut text = String::new();
    let mut list = Vec::new();
    for tessera_store::StoredEvent { id, at, json: event } in rows {
        let at = at.secs();
        let e: Value = serde_json::from_str(&event)
            .map_err(|_| cli_err(ErrorCode::StateCorrupt, format!("event {id} is not JSON")))?;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{id} {at} {e}"));
        list.push(json!({"id": id, "at": at, "event": e}));
    }
    Ok(Output::new(Value::Array(list), text))
}
