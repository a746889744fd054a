//! Portal side of challenge/response: issue a challenge for an account's
//! devices, verify the typed or signed answer (single use, expiry, one
//! lockout per device shared with the device's time-based codes), and the
//! flow-2 link confirmed by an existing authenticator.

use super::messages::{
    challenge_hash_of, challenge_id, response, typed_code_matches, ChallengeBody, ChallengeBodyRef, ChallengeQrMsg,
    SignedAnswerMsg,
};
use super::{Approval, ChallengeSettings, ANSWER_DIGITS, MAX_CHALLENGE_DEVICES};
use crate::crypto::{decode_public, random_array, verify, RandomSource};
use crate::error::{err, ErrorCode, Result};
use crate::host::{Outcome, Write};
use crate::limits::{AttemptPolicy, Expiry};
use crate::link::{
    ConfirmMethod, DeviceRecord, DeviceStatus, PendingLinkRecord, PendingState, Portal, PortalEvent, PortalRecord,
    STATUS_SKEW,
};
use crate::secret::ct_eq;
use crate::time::check_now;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The lockout of a device's answers and codes: PSD2 RTS art. 4(3)(b), 5
/// consecutive failures, locked until the portal unlocks it
/// ([`DeviceRecord::unlock`]) after the user re-identified.
pub const DEVICE_LOCKOUT: AttemptPolicy = AttemptPolicy { max_failures: 5, lock_seconds: None };

/// Wrong flow-2 codes an authenticator absorbs (summed over the links it was
/// asked to vouch for) before it vouches no more until the portal unlocks
/// it: a stranger who knows the account name gets at most this many guesses
/// per device, however many links they start. Logins are not affected.
pub const MAX_VOUCH_FAILURES: u32 = 20;

/// A signed counter this far below the last accepted one is no genuine
/// answer that was overtaken (a phone does not sign and lose that many
/// answers while an older one is in flight): a copy of the keys signed it.
pub const MAX_STALE_COUNTER_GAP: u64 = 8;

/// A new challenge: the QR text to show and the record to insert.
#[derive(Clone, Debug)]
pub struct ChallengeQr {
    /// Text of the QR code (`TS:…`); only the account's devices can read it.
    pub qr_text: String,
    /// The record to insert (version 1), keyed by `challenge_id`.
    pub record: ChallengeRecord,
}

/// Where a challenge stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeState {
    /// Waiting for its answer.
    Open,
    /// Answered (single use): every later answer is `TOKEN_ALREADY_USED`.
    Answered {
        /// When.
        at: u64,
        /// The device that answered.
        device_id: String,
    },
    /// An answer came at or after the expiry: closed for good. Written (not
    /// just refused), so that a server refusing from a snapshot taken
    /// before another server's acceptance loses its compare-and-set and
    /// reads again (as link offers do).
    Expired {
        /// When the first late answer came.
        at: u64,
    },
}

/// A challenge as the portal stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// Lookup key (hex, 32 characters).
    pub challenge_id: String,
    /// Account.
    pub account: String,
    /// The devices that can read and answer it.
    pub device_ids: Vec<String>,
    /// What is approved.
    pub approval: Approval,
    /// Digits of the typed answer.
    pub digits: u8,
    /// Creation time.
    pub created_at: u64,
    /// First second at which answers are refused.
    pub expires_at: u64,
    /// Flow 2: the pending link this challenge vouches for.
    pub for_link: Option<String>,
    /// Open or answered.
    pub state: ChallengeState,
    /// Record version (1 when created; +1 on every change).
    pub version: u64,
    pub(crate) nonce: [u8; 16],
}

impl ChallengeRecord {
    /// A copy at the next version (the record a write replaces it with).
    fn next(&self) -> ChallengeRecord {
        let mut c = self.clone();
        c.version = self.version.saturating_add(1);
        c
    }

    /// The challenge hash of what this record says is approved
    /// (`docs/PROTOCOL.md`): what every answer covers.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let body = ChallengeBodyRef { expires_at: self.expires_at, digits: self.digits, approval: &self.approval };
        challenge_hash_of(&self.nonce, &body)
    }
}

impl PortalRecord for ChallengeRecord {
    const TAG: u8 = 4;
    fn key(&self) -> &str {
        &self.challenge_id
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// A verified answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerAccepted {
    /// The device that answered.
    pub device_id: String,
}

fn check_devices(devices: &[DeviceRecord]) -> Result<()> {
    let Some(first) = devices.first() else {
        return Err(err(ErrorCode::DeviceUnknown, "no device is linked to this account"));
    };
    if devices.iter().any(|d| d.account != first.account) {
        return Err(err(ErrorCode::InvalidInput, "the devices are of several accounts"));
    }
    if devices.iter().enumerate().any(|(i, d)| devices[..i].iter().any(|e| e.device_id == d.device_id)) {
        return Err(err(ErrorCode::InvalidInput, "a device is listed twice"));
    }
    Ok(())
}

impl Portal {
    /// Issue a challenge (login or transaction) that only `devices` can
    /// read: all the account's devices, or the one the user picked.
    /// Unlinked devices are left out; if none is left, `DEVICE_REVOKED`.
    /// Errors: `DEVICE_UNKNOWN` (no device), `INVALID_INPUT` (devices of
    /// several accounts, more than 4 active devices: name one; a
    /// [`Approval::LinkDevice`], which is [`Portal::create_link_challenge`]'s),
    /// `INVALID_DIGITS`, `INVALID_TIME`.
    pub fn create_challenge(
        &self,
        devices: &[DeviceRecord],
        approval: Approval,
        settings: ChallengeSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<ChallengeQr> {
        if matches!(approval, Approval::LinkDevice { .. }) {
            return Err(err(ErrorCode::InvalidInput, "a link-device challenge comes from create_link_challenge"));
        }
        self.issue(devices, approval, settings, None, now, rng)
    }

    fn issue(
        &self,
        devices: &[DeviceRecord],
        approval: Approval,
        settings: ChallengeSettings,
        for_link: Option<String>,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<ChallengeQr> {
        check_now(now)?;
        settings.validate()?;
        approval.validate()?;
        check_devices(devices)?;
        let linked: Vec<&DeviceRecord> = devices.iter().filter(|d| d.status == DeviceStatus::Active).collect();
        if linked.is_empty() {
            return Err(err(ErrorCode::DeviceRevoked, "the device was unlinked from the account"));
        }
        let active: Vec<&DeviceRecord> = linked.into_iter().filter(|d| !d.clone_suspected).collect();
        if active.is_empty() {
            return Err(copied());
        }
        // An offline authenticator activated less than the portal's delay ago is left out.
        let active: Vec<&DeviceRecord> = active.into_iter().filter(|d| d.check_usable(now).is_ok()).collect();
        if active.is_empty() {
            return Err(err(
                ErrorCode::DeviceNotYetUsable,
                "the device was activated recently and is not usable yet (the portal's delay)",
            ));
        }
        if active.len() > MAX_CHALLENGE_DEVICES {
            return Err(err(ErrorCode::InvalidInput, "more than 4 devices: let the user pick one"));
        }
        let nonce = random_array::<16>(rng);
        let k = zeroize::Zeroizing::new(random_array::<16>(rng));
        let expires_at = now.saturating_add(settings.ttl);
        let body = ChallengeBody { expires_at, digits: settings.digits, approval: approval.clone() };
        let keys: Vec<&[u8]> = active.iter().map(|d| d.channel_key.expose()).collect();
        let (qr_text, _) = ChallengeQrMsg::seal(nonce, &k, &keys, &body);
        let record = ChallengeRecord {
            challenge_id: challenge_id(&nonce),
            account: active[0].account.clone(),
            device_ids: active.iter().map(|d| d.device_id.clone()).collect(),
            approval,
            digits: settings.digits,
            created_at: now,
            expires_at,
            for_link,
            state: ChallengeState::Open,
            version: 1,
            nonce,
        };
        Ok(ChallengeQr { qr_text, record })
    }

    /// Verify the answer to `challenge`: the typed digits, or a signed
    /// answer's text. `devices` are the challenge's devices as stored now.
    ///
    /// The answer is accepted once (`TOKEN_ALREADY_USED` after), before
    /// the expiry (`TOKEN_EXPIRED`). A wrong answer (a wrong code, a code
    /// computed with a wrong passcode, a code for another transaction, a
    /// signature that does not verify) is `INVALID_ANSWER` and counts one
    /// failure on each device that could have given it; the 5th locks the
    /// device (`LOCKED_OUT`, also for its time-based codes; event
    /// [`PortalEvent::DeviceLocked`]) until [`DeviceRecord::unlock`]; a
    /// success resets the count. A signed answer whose counter is not above
    /// the last accepted one, for a challenge made at least
    /// [`crate::link::STATUS_SKEW`] after that acceptance, is
    /// `DEVICE_CLONED` (nothing consumed; event
    /// [`PortalEvent::DeviceCloneSuspected`]); for an older challenge it is
    /// a genuine answer overtaken by a later one: `INVALID_ANSWER`, nothing
    /// counted, answer again. `DEVICE_REVOKED` when every device of the
    /// challenge was unlinked; `MALFORMED_MESSAGE` for a signed answer that
    /// does not decode (nothing counted); `INVALID_STATE` for a flow-2 link
    /// challenge (it confirms a link, never a login:
    /// [`Portal::confirm_with_authenticator`]); `INVALID_TIME`.
    pub fn verify_answer(
        &self,
        challenge: &ChallengeRecord,
        devices: &[DeviceRecord],
        answer: &str,
        now: u64,
    ) -> Outcome<AnswerAccepted> {
        if challenge.for_link.is_some() || matches!(challenge.approval, Approval::LinkDevice { .. }) {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "this challenge vouches for a new device; it approves nothing else",
            ));
        }
        match self.judge(challenge, devices, answer, now) {
            Judged::Right { device, counter } => {
                let (writes, events) = accepted(challenge, device, counter, now);
                Outcome { writes, events, result: Ok(AnswerAccepted { device_id: device.device_id.clone() }) }
            }
            Judged::Wrong(candidates) => wrong(&candidates, now),
            Judged::Cloned(d) => cloned(d, now),
            Judged::Refused(e) => Outcome::refused(e),
            Judged::Expired => expired(challenge, now),
        }
    }

    /// The decision on an answer, before anything is written.
    fn judge<'a>(
        &self,
        challenge: &ChallengeRecord,
        devices: &'a [DeviceRecord],
        answer: &str,
        now: u64,
    ) -> Judged<'a> {
        if let Err(e) = check_now(now) {
            return Judged::Refused(e);
        }
        match challenge.state {
            ChallengeState::Answered { .. } => {
                return Judged::Refused(err(ErrorCode::TokenAlreadyUsed, "this challenge was already answered"))
            }
            ChallengeState::Expired { .. } => {
                return Judged::Refused(err(ErrorCode::TokenExpired, "this challenge has expired"))
            }
            ChallengeState::Open => {}
        }
        if (Expiry { expires_at: challenge.expires_at }).is_past(now) {
            return Judged::Expired;
        }
        if !ANSWER_DIGITS.contains(&challenge.digits) {
            return Judged::Refused(err(ErrorCode::StateCorrupt, "the stored challenge has an impossible digit count"));
        }
        if devices.iter().enumerate().any(|(i, d)| devices[..i].iter().any(|e| e.device_id == d.device_id)) {
            return Judged::Refused(err(ErrorCode::InvalidInput, "a device is listed twice"));
        }
        // Lazy filters, not collected: nothing is allocated unless a wrong
        // answer needs the list of devices to count a failure on.
        let mine = devices
            .iter()
            .filter(move |d| d.account == challenge.account && challenge.device_ids.contains(&d.device_id));
        let linked = mine.clone().filter(|d| d.status == DeviceStatus::Active);
        // A device whose keys were copied answers nothing; the account's
        // other devices still do.
        let active = linked.clone().filter(|d| !d.clone_suspected);
        let open = active.clone().filter(move |d| !d.otp_state.throttle.is_locked(now));
        if linked.clone().next().is_none() {
            return Judged::Refused(if mine.clone().next().is_none() {
                err(ErrorCode::DeviceUnknown, "none of this challenge's devices was given")
            } else {
                err(ErrorCode::DeviceRevoked, "the device was unlinked from the account")
            });
        }
        if active.clone().next().is_none() {
            return Judged::Refused(copied());
        }
        if open.clone().next().is_none() {
            return Judged::Refused(err(ErrorCode::LockedOut, "too many failed attempts; the device is locked"));
        }
        // The answer covers what the record says is approved: the hash is
        // recomputed from the record's own fields, never taken on trust.
        let hash = challenge.hash();
        let typed = answer.trim();
        if !typed.is_empty() && typed.bytes().all(|b| b.is_ascii_digit()) {
            let hit = open.clone().find(|d| {
                typed.len() == usize::from(challenge.digits)
                    && typed_code_matches(d.answer_key.expose(), &hash, challenge.digits, typed.as_bytes())
            });
            return match hit {
                Some(device) => Judged::Right { device, counter: None },
                None => Judged::Wrong(open.collect()),
            };
        }
        let signed = match SignedAnswerMsg::decode(typed) {
            Ok(s) => s,
            Err(e) => return Judged::Refused(e),
        };
        let signer = crate::encoding::hex_encode(&signed.device_id);
        if linked.clone().any(|d| d.device_id == signer && d.clone_suspected) {
            return Judged::Refused(copied());
        }
        let Some(d) = open.clone().find(|d| d.device_id == signer) else {
            return Judged::Refused(if active.clone().any(|d| d.device_id == signer) {
                err(ErrorCode::LockedOut, "too many failed attempts; the device is locked")
            } else {
                err(ErrorCode::InvalidAnswer, "the answer is not correct")
            });
        };
        if signed.counter == 0 {
            // Devices count from 1: nobody's genuine answer, nothing to count.
            return Judged::Refused(err(ErrorCode::InvalidAnswer, "the answer is not correct"));
        }
        if !ct_eq(&signed.nonce, &challenge.nonce) {
            return Judged::Wrong(vec![d]);
        }
        if d.serial.is_some() {
            // An offline authenticator types codes; it has no key to sign with.
            return Judged::Refused(err(ErrorCode::InvalidAnswer, "this device types its answers; it signs nothing"));
        }
        let r = response(d.answer_key.expose(), &hash);
        let cb = signed.counter.to_be_bytes();
        let parts = SignedAnswerMsg::signed_parts(&hash, &signed.device_id, &cb, &r);
        if verify(d.device_pk.expose(), &parts, &signed.signature, ErrorCode::InvalidAnswer).is_err() {
            // The check covers the stored key too; only a failure asks
            // which of the two was wrong.
            if let Err(e) = decode_public(d.device_pk.expose(), ErrorCode::StateCorrupt) {
                return Judged::Refused(e);
            }
            return Judged::Wrong(vec![d]);
        }
        if let Some(last) = d.signed_counter {
            if signed.counter <= last {
                // The genuine device signs each counter once, rising. A seen
                // counter means a copy signed it when it is the very last
                // one (signed again for another challenge), far below it,
                // or on a challenge made after the last accepted answer
                // (clock skew allowed); else it may be a genuine answer that
                // a later one overtook.
                let last_at = d.signed_counter_at.unwrap_or(0);
                let copied = signed.counter == last
                    || last - signed.counter >= MAX_STALE_COUNTER_GAP
                    || challenge.created_at >= last_at.saturating_add(STATUS_SKEW);
                return if copied {
                    Judged::Cloned(d)
                } else {
                    Judged::Refused(err(
                        ErrorCode::InvalidAnswer,
                        "a later signed answer of this device was accepted first; answer this challenge again",
                    ))
                };
            }
        }
        Judged::Right { device: d, counter: Some(signed.counter) }
    }
    /// Flow 2: the challenge a new device shows to one of the account's
    /// existing authenticators, for `pending` (a link from an offer made by
    /// [`Portal::create_offer_for_new_device`]). Only devices that once
    /// answered a challenge can vouch (`AUTHENTICATOR_NEVER_USED`).
    /// Errors also: `INVALID_STATE` (the link is closed or waits for a check
    /// code instead), `DEVICE_UNKNOWN`, `DEVICE_REVOKED`, `INVALID_TIME`.
    pub fn create_link_challenge(
        &self,
        pending: &PendingLinkRecord,
        devices: &[DeviceRecord],
        settings: ChallengeSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<ChallengeQr> {
        check_now(now)?;
        settings.validate()?;
        if settings.digits < 8 {
            return Err(err(ErrorCode::InvalidDigits, "a link challenge has 8 to 10 digits"));
        }
        if pending.confirm != ConfirmMethod::Authenticator || !matches!(pending.state, PendingState::Open { .. }) {
            return Err(err(ErrorCode::InvalidState, "this link does not wait for an existing authenticator"));
        }
        check_devices(devices)?;
        if devices.iter().any(|d| d.account != pending.account) {
            return Err(err(ErrorCode::InvalidInput, "the devices are of another account"));
        }
        let active: Vec<DeviceRecord> = devices.iter().filter(|d| d.status == DeviceStatus::Active).cloned().collect();
        if active.is_empty() {
            return Err(err(ErrorCode::DeviceRevoked, "the account has no linked device left"));
        }
        let proven: Vec<DeviceRecord> = active.into_iter().filter(|d| d.proven).collect();
        if proven.is_empty() {
            return Err(err(
                ErrorCode::AuthenticatorNeverUsed,
                "no authenticator of this account has answered a challenge yet",
            ));
        }
        let proven: Vec<DeviceRecord> = proven.into_iter().filter(DeviceRecord::may_vouch).collect();
        if proven.is_empty() {
            return Err(vouching_locked());
        }
        if (Expiry { expires_at: pending.confirm_by }).is_past(now) {
            return Err(err(ErrorCode::TokenExpired, "the link was not confirmed in time; link again"));
        }
        let ttl = settings.ttl.min(pending.confirm_by - now);
        let approval =
            Approval::LinkDevice { device_name: pending.device_name.clone(), device_id: pending.device_id.clone() };
        self.issue(&proven, approval, ChallengeSettings { ttl, ..settings }, Some(pending.device_id.clone()), now, rng)
    }

    /// Flow 2: confirm `pending` with the code (or signed answer) the
    /// existing authenticator gave for `challenge`, typed into the new
    /// device. On success the outcome holds the answered challenge, the
    /// voucher's record, the confirmed pending link and the new device
    /// (events `ChallengeAnswered`, `DeviceLinked`). A wrong code counts on
    /// the pending link, not on the authenticator (a stranger who started
    /// the link must not lock the user's devices): `INVALID_ANSWER`, and the
    /// 5th closes the link (`LOCKED_OUT`). `INVALID_INPUT` when the
    /// challenge is not this link's; `TOKEN_EXPIRED` after the link's
    /// deadline; otherwise the refusals of [`Portal::verify_answer`].
    pub fn confirm_with_authenticator(
        &self,
        pending: &PendingLinkRecord,
        challenge: &ChallengeRecord,
        devices: &[DeviceRecord],
        answer: &str,
        now: u64,
    ) -> Outcome<DeviceRecord> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        let vouches_for_it = matches!(&challenge.approval,
            Approval::LinkDevice { device_id, .. } if *device_id == pending.device_id);
        if challenge.for_link.as_deref() != Some(pending.device_id.as_str())
            || challenge.account != pending.account
            || !vouches_for_it
        {
            return Outcome::refused(err(ErrorCode::InvalidInput, "this challenge does not vouch for this link"));
        }
        if pending.confirm != ConfirmMethod::Authenticator || !matches!(pending.state, PendingState::Open { .. }) {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "this link does not wait for an existing authenticator",
            ));
        }
        if (Expiry { expires_at: pending.confirm_by }).is_past(now) {
            // Written, as for check codes: a server refusing from a snapshot
            // older than another's confirmation loses its compare-and-set.
            let mut next = pending.next();
            next.state = PendingState::Cancelled { at: now, reason: crate::link::CancelReason::Expired };
            return Outcome::new(
                vec![Write::PendingLink(next)],
                Err(err(ErrorCode::TokenExpired, "the link was not confirmed in time; link again")),
            );
        }
        // Authenticators that may not vouch (budget spent, keys copied) are
        // no candidates; unlinked ones stay, for judge's DEVICE_REVOKED.
        let vouchers: Vec<DeviceRecord> =
            devices.iter().filter(|d| d.status != DeviceStatus::Active || d.may_vouch()).cloned().collect();
        if vouchers.is_empty() && devices.iter().any(|d| challenge.device_ids.contains(&d.device_id)) {
            return Outcome::refused(vouching_locked());
        }
        match self.judge(challenge, &vouchers, answer, now) {
            Judged::Right { device, counter } => {
                // The new device's channel key is derived here, on success
                // only; a stored device key that is no point refuses the
                // whole outcome (`STATE_CORRUPT`, nothing written).
                let linked = self.confirm_pending(pending, now);
                if let Err(e) = &linked.result {
                    return Outcome::refused(e.clone());
                }
                let (mut writes, mut events) = accepted(challenge, device, counter, now);
                for w in &mut writes {
                    if let Write::Device(d) = w {
                        d.vouch_failures = 0;
                    }
                }
                writes.extend(linked.writes);
                events.extend(linked.events);
                Outcome { writes, events, result: linked.result }
            }
            // Wrong vouch codes count on the pending link (the 5th closes it),
            // never on the authenticator: whoever knows an account name can
            // start a link, and must not be able to lock the user's devices.
            Judged::Wrong(candidates) => {
                let PendingState::Open { mut attempts } = pending.state else {
                    return Outcome::refused(err(ErrorCode::InvalidState, "this link is closed"));
                };
                // Each authenticator that could have vouched absorbs the
                // guess in its vouch budget (not its login lockout).
                let mut writes: Vec<Write> = candidates
                    .iter()
                    .map(|d| {
                        let mut n = d.next();
                        n.vouch_failures = n.vouch_failures.saturating_add(1);
                        Write::Device(n)
                    })
                    .collect();
                let mut next = pending.next();
                let e = if attempts.record_failure(&crate::link::CONFIRM_ATTEMPTS) {
                    next.state = PendingState::Cancelled { at: now, reason: crate::link::CancelReason::LockedOut };
                    err(ErrorCode::LockedOut, "too many wrong codes; the link was cancelled")
                } else {
                    next.state = PendingState::Open { attempts };
                    err(ErrorCode::InvalidAnswer, "the answer is not correct")
                };
                writes.push(Write::PendingLink(next));
                Outcome { writes, events: vec![], result: Err(e) }
            }
            Judged::Cloned(d) => cloned(d, now),
            // A spent challenge says nothing about the link, which another
            // server may have confirmed with a newer challenge since this
            // snapshot: the link is written (unchanged, next version), so a
            // stale refusal loses its compare-and-set and reads again.
            Judged::Refused(e) if matches!(e.code(), ErrorCode::TokenExpired | ErrorCode::TokenAlreadyUsed) => {
                let touched = pending.next();
                Outcome::new(vec![Write::PendingLink(touched)], Err(e))
            }
            Judged::Refused(e) => Outcome::refused(e),
            Judged::Expired => {
                // The link is written too (unchanged, next version): a
                // server refusing from a snapshot older than another's
                // confirmation with a newer link challenge loses its
                // compare-and-set, and reads that the link is confirmed.
                let mut o = expired(challenge, now);
                let touched = pending.next();
                o.writes.push(Write::PendingLink(touched));
                o
            }
        }
    }
}

fn copied() -> crate::Error {
    err(
        ErrorCode::DeviceCloned,
        "this device's keys were copied; it answers nothing until it is unlinked and linked again",
    )
}

fn vouching_locked() -> crate::Error {
    err(
        ErrorCode::LockedOut,
        "too many wrong codes for new devices: link with a QR code on a logged-in computer, or have the portal unlock the device",
    )
}

impl DeviceRecord {
    /// May vouch for a new device (flow 2): active, has answered a
    /// challenge, keys not copied, vouch budget not spent.
    pub fn may_vouch(&self) -> bool {
        // An offline authenticator has no PIN: possession alone must not
        // link a new device (flow 2 is for phones, whose codes need the passcode).
        self.serial.is_none()
            && self.status == DeviceStatus::Active
            && self.proven
            && !self.clone_suspected
            && self.vouch_failures < MAX_VOUCH_FAILURES
    }
}

/// What [`Portal::judge`] decided.
enum Judged<'a> {
    /// The answer of `device` (with its signature counter when signed).
    Right { device: &'a DeviceRecord, counter: Option<u64> },
    /// Wrong: one failure for each device that could have given it.
    Wrong(Vec<&'a DeviceRecord>),
    /// A signed answer from a copy of the device's keys.
    Cloned(&'a DeviceRecord),
    /// Refused without counting anything.
    Refused(crate::Error),
    /// The first answer at or after the expiry: write the challenge expired.
    Expired,
}

/// The challenge closed as expired: `TOKEN_EXPIRED` with its write.
fn expired<T>(challenge: &ChallengeRecord, now: u64) -> Outcome<T> {
    let mut c = challenge.next();
    c.state = ChallengeState::Expired { at: now };
    Outcome {
        writes: vec![Write::Challenge(c)],
        events: vec![],
        result: Err(err(ErrorCode::TokenExpired, "this challenge has expired")),
    }
}

/// The writes of an accepted answer: the challenge answered, the device's
/// count reset (and its counter, when signed).
fn accepted(
    challenge: &ChallengeRecord,
    d: &DeviceRecord,
    counter: Option<u64>,
    now: u64,
) -> (Vec<Write>, Vec<PortalEvent>) {
    let mut c = challenge.next();
    c.state = ChallengeState::Answered { at: now, device_id: d.device_id.clone() };
    let mut n = d.next();
    n.otp_state.throttle.record_success();
    n.last_used_at = Some(now);
    n.proven = true;
    if counter.is_some() {
        n.signed_counter = counter;
        n.signed_counter_at = Some(now);
    }
    let ev = PortalEvent::ChallengeAnswered {
        account: c.account.clone(),
        challenge_id: c.challenge_id.clone(),
        device_id: d.device_id.clone(),
        at: now,
    };
    (vec![Write::Challenge(c), Write::Device(n)], vec![ev])
}

/// A wrong answer: one failure on each device that could have given it.
fn wrong<T>(devices: &[&DeviceRecord], now: u64) -> Outcome<T> {
    let mut writes = Vec::new();
    let mut events = Vec::new();
    let mut all_locked = true;
    for d in devices {
        let mut n = d.next();
        if n.otp_state.throttle.record_failure(now, &DEVICE_LOCKOUT) {
            events.push(PortalEvent::DeviceLocked {
                account: n.account.clone(),
                device_id: n.device_id.clone(),
                at: now,
            });
        }
        all_locked &= n.otp_state.throttle.is_locked(now);
        writes.push(Write::Device(n));
    }
    let e = if all_locked {
        err(ErrorCode::LockedOut, "too many failed attempts; the device is now locked")
    } else {
        err(ErrorCode::InvalidAnswer, "the answer is not correct")
    };
    Outcome { writes, events, result: Err(e) }
}

/// A copy of the device's keys answered: nothing consumed, an event.
fn cloned<T>(d: &DeviceRecord, now: u64) -> Outcome<T> {
    // Flagged for good: a copy that was caught must not approve on its
    // next try, and an unlock (for wrong codes) must not clear it.
    let mut n = d.next();
    n.clone_suspected = true;
    Outcome {
        writes: vec![Write::Device(n)],
        events: vec![PortalEvent::DeviceCloneSuspected {
            account: d.account.clone(),
            device_id: d.device_id.clone(),
            at: now,
        }],
        result: Err(err(
            ErrorCode::DeviceCloned,
            "the device's signature counter went back: its keys may have been copied",
        )),
    }
}

impl DeviceRecord {
    /// Administrative unlock after the user re-identified: a device locked
    /// by wrong answers or codes (`LOCKED_OUT`), or whose vouch budget for
    /// new devices is spent. `INVALID_STATE` when it is neither, unlinked,
    /// or suspected of being cloned (only unlinking clears that).
    pub fn unlock(&self, now: u64) -> Outcome<()> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        if self.clone_suspected {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "the device's keys were copied: unlink it and link the phone again",
            ));
        }
        let vouch_spent = self.vouch_failures >= MAX_VOUCH_FAILURES;
        if self.status != DeviceStatus::Active || !(self.otp_state.throttle.is_locked(now) || vouch_spent) {
            return Outcome::refused(err(ErrorCode::InvalidState, "the device is not locked"));
        }
        let mut n = self.next();
        n.otp_state.unlock();
        n.vouch_failures = 0;
        Outcome { writes: vec![Write::Device(n)], events: vec![], result: Ok(()) }
    }
}
