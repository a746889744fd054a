//! Device side of linking: scan the QR, build the request, finish with the
//! portal's answer, and the sealed device state.

use super::messages::{
    status_byte, AnswerBody, LinkAnswer, LinkOffer, LinkRequest, RequestBody, StatusAnswer, StatusRequest,
};
use super::passcode::PasscodePolicy;
use super::portal::{device_totp, fingerprint};
use super::*;
use crate::crypto::{
    decode_public, ecdh, generate_secret_key, open_blob, public_of, random_array, seal_blob, secret_bytes,
    secret_key_from_bytes, sign, RandomSource, PUBLIC_KEY_LEN,
};
use crate::limits::Expiry;
use crate::secret::{ct_eq, SecretBytes};
use crate::time::check_now;
use crate::wire::{self, Kind};
use alloc::vec::Vec;

/// A scanned link QR code: what the app shows before linking.
#[derive(Clone)]
pub struct ScannedOffer {
    /// Portal name to show ("Link this phone to …?").
    pub portal_name: String,
    /// Portal key fingerprint (apps may pin it).
    pub portal_fingerprint: String,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// Passcode policy to enforce while the user chooses a passcode.
    pub policy: PasscodePolicy,
    pub(crate) commitment: [u8; 16],
    pub(crate) portal_pk: [u8; PUBLIC_KEY_LEN],
}

impl core::fmt::Debug for ScannedOffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScannedOffer")
            .field("portal_name", &self.portal_name)
            .field("portal_fingerprint", &self.portal_fingerprint)
            .field("expires_at", &self.expires_at)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Read a scanned QR text. Errors: `MALFORMED_MESSAGE` (not a Tessera QR,
/// truncated), `WRONG_MESSAGE_KIND` (another Tessera QR), `UNSUPPORTED_VERSION`,
/// `TOKEN_EXPIRED`, `INVALID_TIME`.
pub fn scan_link_qr(text: &str, now: u64) -> Result<ScannedOffer> {
    check_now(now)?;
    let m = LinkOffer::decode(text)?;
    if (Expiry { expires_at: u64::from(m.expires_at) }).is_past(now) {
        return Err(err(ErrorCode::TokenExpired, "this QR code has expired; generate a new one"));
    }
    Ok(ScannedOffer {
        portal_fingerprint: fingerprint(&m.portal_pk),
        expires_at: u64::from(m.expires_at),
        policy: m.policy,
        commitment: m.commitment,
        portal_pk: m.portal_pk,
        portal_name: m.portal_name,
    })
}

/// [`scan_link_qr`] for an app that knows its portal: the QR code must carry
/// exactly `portal_key` (the 33-byte compressed key of
/// `Portal::public_key`), else `WRONG_ACCOUNT`, so a look-alike QR code
/// with another key is refused before the user types anything.
pub fn scan_link_qr_pinned(text: &str, portal_key: &[u8], now: u64) -> Result<ScannedOffer> {
    let offer = scan_link_qr(text, now)?;
    if !ct_eq(&offer.portal_pk, portal_key) {
        return Err(err(ErrorCode::WrongAccount, "this QR code is not from the expected portal"));
    }
    Ok(offer)
}

/// What [`start_link`] produces.
#[derive(Debug)]
pub struct LinkStart {
    /// Text to send to the portal.
    pub request: String,
    /// State to keep (sealed with [`PendingDeviceLink::seal`]) until the answer.
    pub pending: PendingDeviceLink,
    /// With biometrics on: the secret to store in the platform keystore
    /// behind biometrics (Android Keystore / iOS Keychain with
    /// `biometryCurrentSet`). Answering with it equals answering with the passcode.
    pub biometric_secret: Option<SecretBytes>,
}

/// A link in progress on the device (single use: consumed by [`finish_link`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingDeviceLink {
    portal_pk: Vec<u8>,
    portal_name: String,
    commitment: [u8; 16],
    request: String,
    th: [u8; 32],
    /// Answer keys (acceptance || refusal, 2 × 64 bytes) and the check-code
    /// key: what finishing needs. Not the ephemeral key: with it, the stored
    /// link would decrypt its own request, whose answer key tests passcodes.
    answer_keys: SecretBytes,
    code_key: SecretBytes,
    device_sk: SecretBytes,
    otp_root: SecretBytes,
    device_name: String,
    biometrics: bool,
    policy: PasscodePolicy,
    expires_at: u64,
}

impl core::fmt::Debug for PendingDeviceLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingDeviceLink")
            .field("portal_name", &self.portal_name)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

impl PendingDeviceLink {
    /// Seal for storage between request and answer.
    pub fn seal(&self, storage_key: &[u8; 32], rng: &mut dyn RandomSource) -> Vec<u8> {
        seal_stored(Kind::DevicePendingLink, self, storage_key, rng)
    }
    /// Open a sealed pending link (`STATE_CORRUPT` on any change).
    pub fn open(storage_key: &[u8; 32], sealed: &[u8]) -> Result<Self> {
        open_stored(Kind::DevicePendingLink, storage_key, sealed)
    }
    /// Portal name.
    pub fn portal_name(&self) -> &str {
        &self.portal_name
    }
    /// When to stop waiting for an answer (the offer's expiry plus the
    /// check-code window plus the servers' clock skew): after it, no portal
    /// can still accept or confirm this link, so the app discards it
    /// whatever the last error was.
    pub fn give_up_at(&self) -> u64 {
        self.expires_at.saturating_add(CONFIRM_TTL).saturating_add(super::portal::STATUS_SKEW)
    }
    /// The request, to send again byte for byte if the answer was lost:
    /// the portal answers a repeat with the same answer.
    pub fn request(&self) -> &str {
        &self.request
    }
}

fn seal_stored<T: Serialize>(kind: Kind, v: &T, key: &[u8; 32], rng: &mut dyn RandomSource) -> Vec<u8> {
    let plain = Zeroizing::new(postcard::to_allocvec(v).unwrap_or_else(|_| unreachable!()));
    let header = wire::header(kind);
    let mut out = Vec::from(header);
    out.extend_from_slice(&seal_blob(key, &header, &plain, rng));
    out
}

fn open_stored<T: serde::de::DeserializeOwned>(kind: Kind, key: &[u8; 32], sealed: &[u8]) -> Result<T> {
    let body = wire::strip_header(sealed, kind)?;
    let plain = open_blob(key, &sealed[..2], body)?;
    wire::decode_body(&plain, ErrorCode::StateCorrupt)
}

/// Start linking: check the device holds no account, check the passcode
/// against the policy, make the device key and answering secrets, and
/// encrypt the request to the portal.
#[allow(clippy::too_many_arguments)]
pub fn start_link(
    offer: &ScannedOffer,
    device_name: &str,
    passcode: &str,
    biometrics: bool,
    already_linked: bool,
    now: u64,
    rng: &mut dyn RandomSource,
) -> Result<LinkStart> {
    check_now(now)?;
    if already_linked {
        return Err(err(ErrorCode::DeviceAlreadyLinked, "this device already holds an account; unlink it first"));
    }
    if (Expiry { expires_at: offer.expires_at }).is_past(now) {
        return Err(err(ErrorCode::TokenExpired, "this QR code has expired; generate a new one"));
    }
    check_name(device_name, MAX_DEVICE_NAME_LEN, "the device name")?;
    offer.policy.check(passcode)?;
    if biometrics && !offer.policy.allow_biometrics {
        return Err(err(ErrorCode::PasscodePolicy, "this portal does not allow biometrics"));
    }
    let eph_sk = generate_secret_key(rng)?;
    let device_sk = generate_secret_key(rng)?;
    let otp_root = Zeroizing::new(random_array::<32>(rng));
    Ok(build_request(offer, device_name, passcode, biometrics, eph_sk, device_sk, &otp_root))
}

/// The request of [`start_link`] from given keys (tests use it to play an
/// attacker that chooses its keys).
pub(crate) fn build_request(
    offer: &ScannedOffer,
    device_name: &str,
    passcode: &str,
    biometrics: bool,
    eph_sk: p256::SecretKey,
    device_sk: p256::SecretKey,
    otp_root: &[u8; 32],
) -> LinkStart {
    let eph_pk = public_of(&eph_sk);
    let device_pk = public_of(&device_sk);
    let id = device_id(&device_pk);
    let factor = user_factor(otp_root, passcode);
    let ak = answer_key(otp_root, &factor, &id);
    let th = transcript(&TranscriptInput {
        portal_pk: &offer.portal_pk,
        eph_pk: &eph_pk,
        device_pk: &device_pk,
        commitment: &offer.commitment,
        biometrics,
        policy: offer.policy,
        device_name,
    });
    let body = RequestBody {
        commitment: offer.commitment,
        device_pk: device_pk.to_vec(),
        device_name: device_name.into(),
        answer_key: *ak,
        biometrics,
        policy: offer.policy.to_bytes(),
        pop: sign(&device_sk, &[label::LINK_POP, &th]).to_vec(),
    };
    let shared_e = match ecdh(&secret_bytes(&eph_sk), &offer.portal_pk, ErrorCode::MalformedMessage) {
        Ok(s) => s,
        // The portal's key was checked when the QR was scanned.
        Err(_) => unreachable!(),
    };
    let key = request_key(&shared_e, &offer.portal_pk, &eph_pk);
    let request = LinkRequest::seal(&key, &eph_pk, &offer.portal_pk, &body);

    let mut keys = Zeroizing::new([0u8; 128]);
    keys[..64].copy_from_slice(&answer_keys(&shared_e, &offer.commitment, &th, true)[..]);
    keys[64..].copy_from_slice(&answer_keys(&shared_e, &offer.commitment, &th, false)[..]);
    let pending = PendingDeviceLink {
        portal_pk: offer.portal_pk.to_vec(),
        portal_name: offer.portal_name.clone(),
        commitment: offer.commitment,
        request: request.clone(),
        th,
        answer_keys: SecretBytes::from_slice(&keys[..]),
        code_key: SecretBytes::from_slice(&check_code_key(&shared_e, &offer.commitment, &th)[..]),
        device_sk: SecretBytes::from_slice(&device_sk.to_bytes()),
        otp_root: SecretBytes::from_slice(&otp_root[..]),
        device_name: device_name.into(),
        biometrics,
        policy: offer.policy,
        expires_at: offer.expires_at,
    };
    LinkStart { request, pending, biometric_secret: biometrics.then(|| SecretBytes::from_slice(&factor[..])) }
}

/// A [`finish_link`] error, with the pending link back when the error is
/// not final.
///
/// Errors from an authenticated answer (the portal's refusal:
/// `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`, …) spend the pending link:
/// `retry` is `None`, the app discards it. A damaged, forged or foreign
/// message (`MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`,
/// `MESSAGE_TAMPERED`) does not: `retry` holds the pending link, unchanged,
/// to keep and finish with the genuine answer, so that an attacker cannot
/// cancel a link by sending junk. Nor do the portal's own faults
/// (`INVALID_TIME`, `INTERNAL`): the offer was not touched, and the same
/// request ([`PendingDeviceLink::request`]) may be sent again, until
/// [`PendingDeviceLink::give_up_at`].
pub struct FinishError {
    /// What went wrong.
    pub error: crate::Error,
    /// The pending link to keep (seal it again) and finish later, exactly
    /// when the error is not final; `None`: discard the link.
    pub retry: Option<PendingDeviceLink>,
}

impl FinishError {
    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.error.code()
    }

    /// The one rule of which finish errors keep the pending link.
    fn new(error: crate::Error, pending: PendingDeviceLink) -> FinishError {
        let keep = matches!(
            error.code(),
            ErrorCode::MalformedMessage
                | ErrorCode::WrongMessageKind
                | ErrorCode::UnsupportedVersion
                | ErrorCode::MessageTampered
                | ErrorCode::InvalidTime
                | ErrorCode::Internal
        );
        FinishError { error, retry: keep.then_some(pending) }
    }
}

impl core::fmt::Debug for FinishError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FinishError")
            .field("error", &self.error)
            .field("retry", &self.retry.as_ref().map(|_| "<pending link>"))
            .finish()
    }
}

impl core::fmt::Display for FinishError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.error, f)
    }
}

impl core::error::Error for FinishError {}

impl From<FinishError> for crate::Error {
    /// The error alone (the pending link, if any, is dropped).
    fn from(e: FinishError) -> crate::Error {
        e.error
    }
}

/// What the device shows and stores after [`finish_link`].
#[derive(Clone)]
pub struct LinkedDevice {
    /// The sealed device state to store (replaces any pending link).
    pub state: Vec<u8>,
    /// Check code to show; the user types it on the portal.
    pub check_code: String,
    /// What the app shows.
    pub info: DeviceInfo,
}

impl core::fmt::Debug for LinkedDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkedDevice").field("info", &self.info).finish_non_exhaustive()
    }
}

/// Public facts of a linked device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Portal name.
    pub portal_name: String,
    /// Portal key fingerprint.
    pub portal_fingerprint: String,
    /// Account.
    pub account: String,
    /// Device id.
    pub device_id: String,
    /// Device name.
    pub device_name: String,
    /// When the portal accepted the link.
    pub linked_at: u64,
    /// Deadline to type the check code on the portal.
    pub confirm_by: u64,
    /// Biometrics enabled.
    pub biometrics: bool,
    /// Passcode policy.
    pub policy: PasscodePolicy,
    /// The time-based codes this device shows (flow 5), from the portal.
    pub totp: DeviceTotpPolicy,
}

/// Finish linking with the portal's answer. Consumes the pending link; an
/// error that is not final gives it back in [`FinishError::retry`].
/// Errors: the portal's refusal (`TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`,
/// `TOKEN_UNKNOWN`, …; final), `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`
/// (not final).
// The error hands the pending link itself back (`retry`), moved once per
// failed finish: not worth a box.
#[allow(clippy::result_large_err)]
pub fn finish_link(
    pending: PendingDeviceLink,
    answer: &str,
    storage_key: &[u8; 32],
    rng: &mut dyn RandomSource,
) -> core::result::Result<LinkedDevice, FinishError> {
    finish(&pending, answer, storage_key, rng).map_err(|e| FinishError::new(e, pending))
}

fn finish(
    pending: &PendingDeviceLink,
    answer: &str,
    storage_key: &[u8; 32],
    rng: &mut dyn RandomSource,
) -> Result<LinkedDevice> {
    let answer = LinkAnswer::decode(answer)?;
    let portal_pk = decode_public(&pending.portal_pk, ErrorCode::StateCorrupt)?;
    let device_sk = secret_key_from_bytes(pending.device_sk.expose())?;
    let device_pk = public_of(&device_sk);
    let th = pending.th;
    let all: [u8; 128] = wire::fixed(pending.answer_keys.expose(), ErrorCode::StateCorrupt)?;
    let mut keys = Zeroizing::new([0u8; 64]);
    keys.copy_from_slice(if answer.accepted { &all[..64] } else { &all[64..] });
    let code_key: Zeroizing<[u8; 32]> =
        Zeroizing::new(wire::fixed(pending.code_key.expose(), ErrorCode::StateCorrupt)?);
    let ab = match answer.open(&keys, &th)? {
        AnswerBody::Refused(r) => return Err(refused_error(&r.code)),
        AnswerBody::Accepted(ab) => ab,
    };
    if offer_commitment(&ab.portal_nonce) != pending.commitment {
        return Err(err(ErrorCode::MessageTampered, "the portal's nonce does not match the QR code"));
    }
    if ab.device_id != device_id(&device_pk) {
        return Err(err(ErrorCode::MessageTampered, "the answer is for another device"));
    }
    check_name(&ab.account, MAX_ACCOUNT_LEN, "the account")
        .map_err(|_| err(ErrorCode::MalformedMessage, "the account name in the answer is invalid"))?;
    if check_now(ab.linked_at).is_err() || ab.confirm_by <= ab.linked_at || ab.confirm_by > ab.linked_at + CONFIRM_TTL {
        return Err(err(ErrorCode::MalformedMessage, "the link times in the answer are not plausible"));
    }
    ab.totp
        .validate()
        .map_err(|_| err(ErrorCode::MalformedMessage, "the time-based code policy in the answer is invalid"))?;
    let check_code = check_code(&code_key, &ab.portal_nonce, &th);
    let channel = channel_key(&*ecdh(&secret_bytes(&device_sk), &portal_pk, ErrorCode::StateCorrupt)?, &th);
    let info = DeviceInfo {
        portal_name: pending.portal_name.clone(),
        portal_fingerprint: fingerprint(&pending.portal_pk),
        account: ab.account.clone(),
        device_id: ab.device_id.clone(),
        device_name: pending.device_name.clone(),
        linked_at: ab.linked_at,
        confirm_by: ab.confirm_by,
        biometrics: pending.biometrics,
        policy: pending.policy,
        totp: ab.totp,
    };
    let state = DeviceState {
        info: info.clone(),
        portal_pk: pending.portal_pk.clone(),
        device_sk: pending.device_sk.clone(),
        otp_root: pending.otp_root.clone(),
        channel_key: SecretBytes::from_slice(&channel[..]),
        signed_counter: 0,
    };
    Ok(LinkedDevice { state: state.seal(storage_key, rng), check_code: String::clone(&check_code), info })
}

/// The one account a device holds; stored sealed under a key from the
/// platform keystore. It holds no passcode and nothing that can test one.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceState {
    pub(crate) info: DeviceInfo,
    portal_pk: Vec<u8>,
    pub(crate) device_sk: SecretBytes,
    otp_root: SecretBytes,
    pub(crate) channel_key: SecretBytes,
    /// Last signature counter used (0: none yet).
    pub(crate) signed_counter: u64,
}

impl core::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceState").field("info", &self.info).finish_non_exhaustive()
    }
}

/// How the user unlocks the answering secrets.
#[derive(Clone, Copy)]
pub enum UserFactor<'a> {
    /// The passcode typed by the user.
    Passcode(&'a str),
    /// The biometric secret released by the platform keystore.
    Biometric(&'a [u8]),
}

impl core::fmt::Debug for UserFactor<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UserFactor::Passcode(_) => "UserFactor::Passcode(<redacted>)",
            UserFactor::Biometric(_) => "UserFactor::Biometric(<redacted>)",
        })
    }
}

/// A status request in flight (keep it to read the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusProbe {
    nonce: [u8; 16],
    request: String,
}

impl StatusProbe {
    /// The request text to send.
    pub fn request(&self) -> &str {
        &self.request
    }
    /// Seal for storage between sending the request and reading the answer.
    pub fn seal(&self, storage_key: &[u8; 32], rng: &mut dyn RandomSource) -> Vec<u8> {
        seal_stored(Kind::DeviceStatusProbe, self, storage_key, rng)
    }
    /// Open (`STATE_CORRUPT` on any change or a wrong key).
    pub fn open(storage_key: &[u8; 32], sealed: &[u8]) -> Result<Self> {
        open_stored(Kind::DeviceStatusProbe, storage_key, sealed)
    }
}

impl DeviceState {
    /// Seal for storage.
    pub fn seal(&self, storage_key: &[u8; 32], rng: &mut dyn RandomSource) -> Vec<u8> {
        seal_stored(Kind::DeviceState, self, storage_key, rng)
    }
    /// Open (`STATE_CORRUPT` on any change or a wrong key).
    pub fn open(storage_key: &[u8; 32], sealed: &[u8]) -> Result<Self> {
        open_stored(Kind::DeviceState, storage_key, sealed)
    }
    /// Public facts.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn otp_root(&self) -> Result<[u8; 32]> {
        wire::fixed(self.otp_root.expose(), ErrorCode::StateCorrupt)
    }

    /// The answering key for a user factor. Any passcode yields a key; only
    /// the portal can tell whether it was the right one.
    pub(crate) fn answer_key(&self, factor: UserFactor<'_>) -> Result<Zeroizing<[u8; 32]>> {
        let root = Zeroizing::new(self.otp_root()?);
        let f = match factor {
            UserFactor::Passcode(p) => user_factor(&root, p),
            UserFactor::Biometric(b) => Zeroizing::new(
                wire::fixed(b, ErrorCode::InvalidInput)
                    .map_err(|_| err(ErrorCode::InvalidInput, "the biometric secret must be 32 bytes"))?,
            ),
        };
        Ok(answer_key(&root, &f, &self.info.device_id))
    }

    /// The time-based code of this device at `now` (flow 5). A wrong
    /// passcode gives a wrong code that only the portal detects.
    pub fn totp(&self, factor: UserFactor<'_>, now: u64) -> Result<String> {
        check_now(now)?;
        device_totp(&self.answer_key(factor)?[..], self.info.totp)?.generate(now)
    }

    pub(crate) fn raw_device_id(&self) -> Result<[u8; 8]> {
        let id = crate::encoding::hex_decode_as(&self.info.device_id, ErrorCode::StateCorrupt)?;
        wire::fixed(&id, ErrorCode::StateCorrupt)
    }

    /// A status request for the portal (does this link still exist?).
    pub fn status_request(&self, now: u64, rng: &mut dyn RandomSource) -> Result<(String, StatusProbe)> {
        check_now(now)?;
        let nonce = random_array::<16>(rng);
        let request = StatusRequest::seal(self.channel_key.expose(), self.raw_device_id()?, nonce, now);
        Ok((request.clone(), StatusProbe { nonce, request }))
    }

    /// Read the portal's status answer. `Ok(Active)`, or
    /// `Ok(AwaitingConfirmation)` while the check code has not been typed.
    /// `DEVICE_REVOKED` (the portal unlinked this device) and
    /// `LINK_NOT_CONFIRMED` (the check code was never typed, or locked out):
    /// the app wipes the state and may link again.
    pub fn read_status_answer(&self, probe: &StatusProbe, answer: &str) -> Result<LinkStatus> {
        let status = StatusAnswer::open(answer, self.channel_key.expose(), &self.raw_device_id()?, &probe.nonce)?;
        match status {
            status_byte::ACTIVE => Ok(LinkStatus::Active),
            status_byte::AWAITING_CONFIRMATION => Ok(LinkStatus::AwaitingConfirmation),
            status_byte::UNLINKED => {
                Err(err(ErrorCode::DeviceRevoked, "the portal unlinked this device; its account must be wiped"))
            }
            status_byte::NOT_CONFIRMED => Err(err(
                ErrorCode::LinkNotConfirmed,
                "the portal never confirmed this link (check code not typed in time); wipe it and link again",
            )),
            _ => Err(err(ErrorCode::MalformedMessage, "the status answer has an unknown status")),
        }
    }
}

/// What the portal said about this device's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// Linked and usable.
    Active,
    /// Linked on the device, waiting for the user to type the check code
    /// on the portal.
    AwaitingConfirmation,
}

/// Tests: a request whose body says `device_pk` but is signed by `signer`
/// (a sender that does not hold the key it asks to link).
#[cfg(test)]
pub(crate) fn forge_request_with_device_pk(
    offer: &ScannedOffer,
    name: &str,
    eph_sk: p256::SecretKey,
    signer: p256::SecretKey,
    device_pk: &[u8; PUBLIC_KEY_LEN],
    answer_key_seed: &[u8; 32],
) -> String {
    craft_request(offer, name, eph_sk, &signer, device_pk, *answer_key_seed)
}

/// Tests: a request carrying any answer key (a degenerate one).
#[cfg(test)]
pub(crate) fn forge_request_with_answer_key(
    offer: &ScannedOffer,
    eph_sk: p256::SecretKey,
    device_sk: p256::SecretKey,
    answer_key: [u8; 32],
) -> String {
    let dpk = public_of(&device_sk);
    craft_request(offer, "P", eph_sk, &device_sk, &dpk, answer_key)
}

#[cfg(test)]
fn craft_request(
    offer: &ScannedOffer,
    name: &str,
    eph_sk: p256::SecretKey,
    signer: &p256::SecretKey,
    device_pk: &[u8; PUBLIC_KEY_LEN],
    answer_key: [u8; 32],
) -> String {
    let eph_pk = public_of(&eph_sk);
    let th = transcript(&TranscriptInput {
        portal_pk: &offer.portal_pk,
        eph_pk: &eph_pk,
        device_pk,
        commitment: &offer.commitment,
        biometrics: false,
        policy: offer.policy,
        device_name: name,
    });
    let body = RequestBody {
        commitment: offer.commitment,
        device_pk: device_pk.to_vec(),
        device_name: name.into(),
        answer_key,
        biometrics: false,
        policy: offer.policy.to_bytes(),
        pop: sign(signer, &[label::LINK_POP, &th]).to_vec(),
    };
    let shared = ecdh(&secret_bytes(&eph_sk), &offer.portal_pk, ErrorCode::Internal).unwrap();
    let key = request_key(&shared, &offer.portal_pk, &eph_pk);
    LinkRequest::seal(&key, &eph_pk, &offer.portal_pk, &body)
}
