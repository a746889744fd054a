//! Portal side of linking: offers, accepting requests, check-code
//! confirmation, the device registry records and status answers.
//!
//! Every operation is a pure function of the records the host read: it
//! returns the records to write ([`Write`], each a versioned
//! compare-and-set), the events, and the result. The host applies all
//! writes of one outcome atomically and acts on the result only after they
//! committed; on a conflict it reads again and repeats the call (see
//! `docs/DESIGN.md`, "Host contract").

use super::messages::{
    status_byte, AcceptedBody, AnswerBody, LinkAnswer, LinkRequest, RefusedBody, StatusAnswer, StatusRequest,
};
use super::passcode::PasscodePolicy;
use super::*;
use crate::crypto::{
    decode_public, hkdf, open_blob, public_of, random_array, seal_blob, verify, AgreementKey, RandomSource,
    PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use crate::host::{Outcome, Write};
use crate::limits::{Attempts, Expiry, SingleUse, Usage, UseDecision};
use crate::otp::{OtpState, Totp, TotpVerifier, Verified};
use crate::secret::{ct_eq, SecretBytes};
use crate::time::check_now;
use crate::wire::{self, Kind};
use alloc::vec;
use alloc::vec::Vec;
use p256::SecretKey;

/// A portal identity: its P-256 key pair and display name. The host stores
/// [`Portal::secret`], a 32-byte seed from which the key pair and the
/// record-sealing key are derived, in its secret store. The private key
/// itself never leaves this type.
pub struct Portal {
    seed: Zeroizing<[u8; 32]>,
    /// The P-256 key, held by the process's crypto provider.
    sk: AgreementKey,
    pub(crate) pk: [u8; PUBLIC_KEY_LEN],
    name: String,
    storage_key: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for Portal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Portal")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A new offer: the QR text to show and the record to insert.
#[derive(Clone)]
pub struct LinkOfferQr {
    /// Text to put in the QR code (`TS:…`, QR alphanumeric mode). Whoever
    /// reads it can use the offer: show it, never log it.
    pub qr_text: String,
    /// Record to insert (version 1), keyed by `offer_id`.
    pub record: LinkOfferRecord,
}

impl core::fmt::Debug for LinkOfferQr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkOfferQr").field("record", &self.record).finish_non_exhaustive()
    }
}

/// Whether an offer was used, and by which request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfferState {
    /// Waiting for a device.
    Open,
    /// Used by one request (single use). A repeat of that very request gets
    /// `answer` again, byte for byte; any other request is refused.
    Used {
        /// When.
        at: u64,
        /// The device that used it.
        device_id: String,
        /// SHA-256 of the request that used it.
        request_hash: [u8; 32],
        /// The answer that request got.
        answer: String,
    },
    /// A request came after the expiry: closed for good. Written (not just
    /// answered), so that a server refusing from a snapshot taken before
    /// another server's acceptance loses its compare-and-set and reads again.
    Expired {
        /// When the first late request came.
        at: u64,
    },
}

/// A link offer as the portal stores it. The QR holds only a commitment to
/// `portal_nonce`; `offer_id` is a hash of that commitment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOfferRecord {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account the offer links to.
    pub account: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// First second at which the offer is refused.
    pub expires_at: u64,
    /// Passcode policy announced in the QR code; the portal enforces the
    /// part it can see (biometrics).
    pub policy: PasscodePolicy,
    /// Time-based codes the device will show (flow 5).
    pub totp: DeviceTotpPolicy,
    /// How the link is confirmed: a check code typed on the portal (flow 1)
    /// or a challenge answered by an existing authenticator (flow 2).
    pub confirm: ConfirmMethod,
    /// Open or used.
    pub state: OfferState,
    /// Record version (1 when created; +1 on every change).
    pub version: u64,
    pub(crate) portal_nonce: SecretBytes,
}

impl core::fmt::Debug for LinkOfferRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkOfferRecord")
            .field("offer_id", &self.offer_id)
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .field(
                "state",
                &match self.state {
                    OfferState::Open => "open",
                    OfferState::Used { .. } => "used",
                    OfferState::Expired { .. } => "expired",
                },
            )
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Why a pending link ended without a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// Too many wrong check codes.
    LockedOut,
    /// The check code was not typed in time.
    Expired,
}

/// Where a pending link stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingState {
    /// Waiting for the check code; `attempts` wrong codes so far (fewer
    /// than [`MAX_CONFIRM_ATTEMPTS`]: the last one cancels the link).
    Open {
        /// Wrong check codes so far.
        attempts: Attempts,
    },
    /// The check code matched: the device is in the registry.
    Confirmed {
        /// When.
        at: u64,
    },
    /// Ended without a device. Keep the record: the device learns from it
    /// (status `NOT_CONFIRMED`) that it must clear its link.
    Cancelled {
        /// When.
        at: u64,
        /// Why.
        reason: CancelReason,
    },
}

/// A device that linked and waits for the user to type its check code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLinkRecord {
    /// Device id (hex); unique across all accounts.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Name the user gave the device.
    pub device_name: String,
    /// Offer it came from.
    pub offer_id: String,
    /// When the portal accepted the request.
    pub created_at: u64,
    /// First second at which the check code is refused.
    pub confirm_by: u64,
    /// Biometrics enabled on the device.
    pub biometrics: bool,
    /// Time-based codes the device shows (flow 5).
    pub totp: DeviceTotpPolicy,
    /// Check code (flow 1) or an existing authenticator (flow 2).
    pub confirm: ConfirmMethod,
    /// Open, confirmed or cancelled.
    pub state: PendingState,
    /// Record version (1 when created; +1 on every change).
    pub version: u64,
    pub(crate) device_pk: SecretBytes,
    pub(crate) answer_key: SecretBytes,
    /// The channel key, or what the portal derives it from when it first
    /// needs it (see [`PendingChannel`]).
    pub(crate) channel_key: PendingChannel,
    pub(crate) check_code: SecretBytes,
}

/// The channel key of a pending link as stored. `accept` (the step any
/// sender can make the portal run) does no agreement with the device key:
/// it stores the transcript hash, and the portal derives
/// `channel_key = HKDF(salt = th, ikm = ECDH(p, D), "tessera/v1/channel-key")`
/// when it first needs it: on a successful confirmation (the device record
/// gets it) and for each status answer of a pending link without a device
/// record. A wrong check code or vouch code costs no agreement.
///
/// Encoding (postcard, in place of the `channel_key: bytes` of records
/// stored before): `bytes` (the 32-byte key), or an empty `bytes` followed
/// by `th: [u8; 32]`. Records holding the key still open and work.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PendingChannel {
    /// The channel key itself (pending links stored before the lazy
    /// derivation).
    Key(SecretBytes),
    /// Not derived yet: the link's transcript hash (not secret).
    Deferred {
        /// Transcript hash of the link request.
        th: [u8; 32],
    },
}

impl core::fmt::Debug for PendingChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PendingChannel::Key(_) => "Key(<redacted>)",
            PendingChannel::Deferred { .. } => "Deferred",
        })
    }
}

impl Serialize for PendingChannel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self {
            PendingChannel::Key(k) => {
                let mut t = s.serialize_tuple(1)?;
                t.serialize_element(k)?;
                t.end()
            }
            PendingChannel::Deferred { th } => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&SecretBytes::default())?;
                t.serialize_element(th)?;
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for PendingChannel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PendingChannel;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a channel key, or an empty one and a transcript hash")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> core::result::Result<PendingChannel, A::Error> {
                use serde::de::Error;
                let key: SecretBytes = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                if !key.is_empty() {
                    return Ok(PendingChannel::Key(key));
                }
                let th: [u8; 32] = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                Ok(PendingChannel::Deferred { th })
            }
        }
        d.deserialize_tuple(2, V)
    }
}

impl core::fmt::Debug for PendingLinkRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingLinkRecord")
            .field("device_id", &self.device_id)
            .field("account", &self.account)
            .field("device_name", &self.device_name)
            .field("confirm_by", &self.confirm_by)
            .field("state", &self.state)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl PendingLinkRecord {
    /// A copy at the next version (the record a write replaces it with).
    pub(crate) fn next(&self) -> PendingLinkRecord {
        let mut n = self.clone();
        n.version = self.version.saturating_add(1);
        n
    }

    /// Wrong check codes counted so far.
    pub fn attempts(&self) -> u32 {
        match self.state {
            PendingState::Open { attempts } => attempts.failures(),
            PendingState::Confirmed { .. } => 0,
            PendingState::Cancelled { reason: CancelReason::LockedOut, .. } => MAX_CONFIRM_ATTEMPTS,
            PendingState::Cancelled { .. } => 0,
        }
    }
    /// Confirmed or cancelled: no check code is accepted any more.
    pub fn is_closed(&self) -> bool {
        !matches!(self.state, PendingState::Open { .. })
    }

    /// The link's channel key: the stored one, or derived now with one
    /// ECDH (the portal's key and the device key). Deterministic: servers
    /// racing to confirm one link derive the same key. `STATE_CORRUPT`
    /// when the stored device key is not a P-256 point.
    pub(crate) fn derive_channel_key(&self, portal: &Portal) -> Result<SecretBytes> {
        match &self.channel_key {
            PendingChannel::Key(k) => Ok(k.clone()),
            PendingChannel::Deferred { th } => {
                let shared = portal.sk.ecdh(self.device_pk.expose(), ErrorCode::StateCorrupt).map_err(|_| {
                    err(ErrorCode::StateCorrupt, "the pending link's device key is not a valid P-256 point")
                })?;
                Ok(SecretBytes::from_slice(&channel_key(&shared, th)[..]))
            }
        }
    }
}

/// A record type the portal stores sealed. The seal authenticates the tag,
/// the record's key, account and version, so a sealed blob cannot be moved
/// to another row, account or version column.
pub trait PortalRecord: Serialize + serde::de::DeserializeOwned {
    /// Frozen record-type tag (docs/PROTOCOL.md).
    const TAG: u8;
    /// The record's key (offer id or device id).
    fn key(&self) -> &str;
    /// The account it belongs to.
    fn account(&self) -> &str;
    /// Its version.
    fn version(&self) -> u64;
}

impl PortalRecord for LinkOfferRecord {
    const TAG: u8 = 1;
    fn key(&self) -> &str {
        &self.offer_id
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn version(&self) -> u64 {
        self.version
    }
}
impl PortalRecord for PendingLinkRecord {
    const TAG: u8 = 2;
    fn key(&self) -> &str {
        &self.device_id
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn version(&self) -> u64 {
        self.version
    }
}
impl PortalRecord for DeviceRecord {
    const TAG: u8 = 3;
    fn key(&self) -> &str {
        &self.device_id
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// Registry status of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Linked and usable.
    Active,
    /// Unlinked by the portal (lost, stolen, or removed by the user). Final.
    Unlinked {
        /// When.
        at: u64,
    },
}

impl DeviceStatus {
    /// `active` / `unlinked`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Unlinked { .. } => "unlinked",
        }
    }
}

/// A linked device in the portal's registry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Device id (hex), unique across all accounts.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Display name.
    pub name: String,
    /// When the link was confirmed.
    pub linked_at: u64,
    /// Last accepted code.
    pub last_used_at: Option<u64>,
    /// Active or unlinked.
    pub status: DeviceStatus,
    /// Biometrics enabled on the device.
    pub biometrics: bool,
    /// OTP verifier state (replay and lockout) of this device's codes and
    /// challenge answers: one lockout for both.
    pub otp_state: OtpState,
    /// Time-based codes the device shows (flow 5).
    pub totp: DeviceTotpPolicy,
    /// Answered a challenge successfully at least once: may vouch for a
    /// new device (flow 2).
    pub proven: bool,
    /// Last signature counter accepted from this device.
    pub signed_counter: Option<u64>,
    /// When the last signature counter was accepted.
    pub signed_counter_at: Option<u64>,
    /// Wrong codes of new devices this authenticator was asked to vouch
    /// for (flow 2); at [`crate::challenge::MAX_VOUCH_FAILURES`] it vouches
    /// no more until unlocked. Separate from the login lockout.
    pub vouch_failures: u32,
    /// A copy of its keys answered (`DEVICE_CLONED`): it answers nothing
    /// more; only unlinking clears it.
    pub clone_suspected: bool,
    /// An offline authenticator activated with a delay (flow 3): no
    /// challenge includes it and no code of it is accepted before this
    /// time (`DEVICE_NOT_YET_USABLE`). `None`: usable at once.
    pub usable_from: Option<u64>,
    /// The serial number of an offline authenticator (flow 3); `None` for
    /// a linked phone. Such a device answers typed challenges only.
    pub serial: Option<String>,
    /// Record version (1 when created; +1 on every change).
    pub version: u64,
    pub(crate) device_pk: SecretBytes,
    pub(crate) answer_key: SecretBytes,
    pub(crate) channel_key: SecretBytes,
}

impl core::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("device_id", &self.device_id)
            .field("account", &self.account)
            .field("name", &self.name)
            .field("status", &self.status)
            .field("otp_state", &self.otp_state)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What happened, for the host to act on (e-mail, audit log) once the
/// writes of the same outcome committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortalEvent {
    /// A device used an offer and waits for its check code.
    LinkRequested {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Device name.
        device_name: String,
        /// Time.
        at: u64,
    },
    /// A device is linked: send the "device linked" notification.
    DeviceLinked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Device name.
        device_name: String,
        /// Time.
        at: u64,
    },
    /// A device was renamed.
    DeviceRenamed {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// New name.
        name: String,
        /// Time.
        at: u64,
    },
    /// A challenge was answered (login or transaction approved).
    ChallengeAnswered {
        /// Account.
        account: String,
        /// Challenge.
        challenge_id: String,
        /// Device that answered.
        device_id: String,
        /// Time.
        at: u64,
    },
    /// A device reached the failure limit: tell the user, who must
    /// re-identify before the portal unlocks it.
    DeviceLocked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: u64,
    },
    /// An offline authenticator was activated (flow 3): tell the user on
    /// every channel (a fraudulent activation can be cancelled by
    /// unlinking the device before `usable_from`).
    DeviceActivated {
        /// Account.
        account: String,
        /// The device's id in the registry.
        device_id: String,
        /// Its serial number.
        serial: String,
        /// When it becomes usable.
        usable_from: u64,
        /// Time.
        at: u64,
    },
    /// An order's activation code or initial password was guessed wrong
    /// too often: the order is locked; tell the user (a new order is needed).
    OrderLocked {
        /// Account.
        account: String,
        /// The order's user ID.
        user_id: String,
        /// Time.
        at: u64,
    },
    /// The account password or recovery codes were guessed wrong too often.
    CredentialsLocked {
        /// Account.
        account: String,
        /// Time.
        at: u64,
    },
    /// A signed answer's counter went back: two copies of the device's
    /// keys exist. Investigate; unlinking the device is the safe reaction.
    DeviceCloneSuspected {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: u64,
    },
    /// A device was unlinked.
    DeviceUnlinked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: u64,
    },
}

/// A decrypted, authenticated link request, before the host looked up its
/// offer. Keep it to call [`OpenedLinkRequest::accept`] again after a
/// write conflict.
pub struct OpenedLinkRequest {
    offer_id: String,
    commitment: [u8; 16],
    request_hash: [u8; 32],
    th: [u8; 32],
    device_pk: [u8; PUBLIC_KEY_LEN],
    /// `device_pk` decoded once, when the request was opened.
    device_id: String,
    device_name: String,
    biometrics: bool,
    policy: [u8; 2],
    answer_key: Zeroizing<[u8; 32]>,
    shared_e: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for OpenedLinkRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedLinkRequest")
            .field("offer_id", &self.offer_id)
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// Whether the device key of a request was seen before (as a pending link
/// or a device of any account). A device key links to one account, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKeyUse {
    /// No pending link or device record has this device id.
    Fresh,
    /// A pending link or device record already has this device id.
    Seen,
}

/// Result of [`OpenedLinkRequest::accept`]: always an answer for the device.
#[derive(Debug)]
pub struct AcceptOutcome {
    /// Text to send back to the device once `outcome.writes` committed.
    pub answer: String,
    /// Text to send back instead when the writes could not be committed
    /// (the host gave up after repeated compare-and-set conflicts, or its
    /// store failed): the authenticated refusal with code `INTERNAL`, which
    /// is not final for the phone ([`super::FinishError::retry`]): it keeps
    /// its pending link and may send the same request again. Hosts never
    /// build refusals themselves.
    pub if_not_stored: String,
    /// The writes (used offer + new pending link) and the result:
    /// `Ok(Accepted)`, `Ok(Repeated)` (the same request again: no writes,
    /// `answer` is the original answer) or the refusal.
    pub outcome: Outcome<Accept>,
}

/// How an accepted request was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// First acceptance: apply the writes.
    Accepted,
    /// A repeat of the request that already used the offer (a retry by a
    /// phone that lost the answer): nothing to write, same answer bytes.
    Repeated,
}

/// A status request whose device the host must look up.
#[derive(Debug, Clone)]
pub struct OpenedStatusRequest {
    device_id: String,
    request: StatusRequest,
}

/// Clock difference tolerated on status requests.
pub const STATUS_SKEW: u64 = 300;

/// Longest link request text accepted before any decoding or public-key
/// work (a genuine one is about 330 characters).
pub const MAX_REQUEST_TEXT: usize = 1024;

impl Portal {
    /// A new portal identity.
    pub fn generate(name: &str, rng: &mut dyn RandomSource) -> Result<Portal> {
        let seed = Zeroizing::new(random_array::<32>(rng));
        Portal::from_secret(&seed[..], name)
    }

    /// Restore from [`Portal::secret`] (exactly 32 bytes).
    pub fn from_secret(secret: &[u8], name: &str) -> Result<Portal> {
        check_name(name, MAX_PORTAL_NAME_LEN, "the portal name")?;
        let seed: [u8; 32] = secret
            .try_into()
            .map_err(|_| err(ErrorCode::InvalidInput, "the portal secret must be exactly 32 bytes"))?;
        let seed = Zeroizing::new(seed);
        let key = portal_key(&seed)?;
        let (sk, pk) = (AgreementKey::new(&key)?, public_of(&key));
        let storage_key = hkdf::<32>(label::LINK_SALT, &seed[..], &[label::PORTAL_STORAGE]);
        Ok(Portal { seed, sk, pk, name: name.into(), storage_key })
    }

    /// The 32-byte seed to store (in an HSM or secret manager).
    pub fn secret(&self) -> SecretBytes {
        SecretBytes::from_slice(&self.seed[..])
    }

    /// Compressed public key (apps that know their portal pin it, see
    /// [`super::scan_link_qr_pinned`]).
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.pk
    }

    /// Short fingerprint of the public key (hex, 16 characters).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.pk)
    }

    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tests: ECDH computed with the portal key so far.
    #[cfg(test)]
    pub(crate) fn agreements(&self) -> usize {
        self.sk.uses()
    }

    /// Create a single-use link offer for `account`, valid `ttl` seconds
    /// (1..=600; default [`DEFAULT_OFFER_TTL`]). Insert the record.
    pub fn create_offer(
        &self,
        account: &str,
        policy: PasscodePolicy,
        ttl: u64,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<LinkOfferQr> {
        self.create_offer_with(account, OfferOptions { policy, ttl, ..OfferOptions::default() }, now, rng)
    }

    /// [`Portal::create_offer`] with every option (the device's TOTP
    /// policy as well).
    pub fn create_offer_with(
        &self,
        account: &str,
        options: OfferOptions,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<LinkOfferQr> {
        self.offer(account, options, ConfirmMethod::CheckCode, now, rng)
    }

    /// Flow 2: an offer for a new device that links without a logged-in
    /// computer, sent to that device (not shown as a QR code). The link is
    /// confirmed only by a challenge answered on one of `devices`, the
    /// account's existing authenticators ([`Portal::create_link_challenge`]).
    /// Errors: `DEVICE_UNKNOWN` (no device), `DEVICE_REVOKED` (none active),
    /// `AUTHENTICATOR_NEVER_USED` (none ever answered a challenge), and
    /// those of [`Portal::create_offer`].
    pub fn create_offer_for_new_device(
        &self,
        account: &str,
        devices: &[DeviceRecord],
        options: OfferOptions,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<LinkOfferQr> {
        check_now(now)?;
        let mine: Vec<&DeviceRecord> = devices.iter().filter(|d| d.account == account).collect();
        if mine.is_empty() {
            return Err(err(ErrorCode::DeviceUnknown, "no device is linked to this account"));
        }
        let active: Vec<&&DeviceRecord> = mine.iter().filter(|d| d.status == DeviceStatus::Active).collect();
        if active.is_empty() {
            return Err(err(ErrorCode::DeviceRevoked, "the account has no linked device left"));
        }
        // Offline authenticators (no PIN) never vouch: only phones count here.
        if !active.iter().any(|d| d.proven && d.serial.is_none()) {
            return Err(err(
                ErrorCode::AuthenticatorNeverUsed,
                "no phone of this account has answered a challenge yet (offline authenticators cannot vouch)",
            ));
        }
        if !active.iter().any(|d| d.may_vouch()) {
            return Err(err(
                ErrorCode::LockedOut,
                "too many wrong codes for new devices: link with a QR code on a logged-in computer, or have the portal unlock the device",
            ));
        }
        self.offer(account, options, ConfirmMethod::Authenticator, now, rng)
    }

    fn offer(
        &self,
        account: &str,
        options: OfferOptions,
        confirm: ConfirmMethod,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<LinkOfferQr> {
        let OfferOptions { policy, ttl, totp } = options;
        check_now(now)?;
        totp.validate()?;
        check_name(account, MAX_ACCOUNT_LEN, "the account")?;
        policy.validate_policy()?;
        if ttl == 0 || ttl > MAX_OFFER_TTL {
            return Err(err(ErrorCode::InvalidInput, "the offer lifetime must be 1 to 600 seconds"));
        }
        let expires_at = now
            .checked_add(ttl)
            .filter(|t| *t <= u64::from(u32::MAX))
            .ok_or(err(ErrorCode::InvalidTime, "the expiry does not fit the QR format (after 2106)"))?;
        let nonce = Zeroizing::new(random_array::<32>(rng));
        let commitment = offer_commitment(&nonce);
        let qr = super::messages::LinkOffer {
            commitment,
            portal_pk: self.pk,
            expires_at: expires_at as u32,
            policy,
            portal_name: self.name.clone(),
        };
        let record = LinkOfferRecord {
            offer_id: offer_id(&commitment),
            account: account.into(),
            created_at: now,
            expires_at,
            policy,
            totp,
            confirm,
            state: OfferState::Open,
            version: 1,
            portal_nonce: SecretBytes::from_slice(&nonce[..]),
        };
        Ok(LinkOfferQr { qr_text: qr.encode(), record })
    }

    /// Decrypt and authenticate a link request: the device proves it holds
    /// the key it asks to link. The host then loads the offer
    /// [`OpenedLinkRequest::offer_id`] and calls [`OpenedLinkRequest::accept`].
    pub fn open_link_request(&self, text: &str) -> Result<OpenedLinkRequest> {
        let req = LinkRequest::decode(text)?;
        let eph = &req.eph_pk[..];
        // The provider checks the point as part of the agreement.
        let shared_e = self.sk.ecdh(eph, ErrorCode::MessageTampered)?;
        let key = request_key(&shared_e, &self.pk, eph);
        let rb = req.open(&key, &self.pk)?;
        let device_pk: [u8; PUBLIC_KEY_LEN] = wire::fixed(&rb.device_pk, ErrorCode::MalformedMessage)?;
        if device_pk[..] == eph[..] || device_pk == self.pk {
            return Err(err(ErrorCode::MalformedMessage, "the device key repeats another key of the exchange"));
        }
        if rb.answer_key.iter().all(|b| *b == 0) {
            return Err(err(ErrorCode::MalformedMessage, "the answer key is degenerate"));
        }
        check_name(&rb.device_name, MAX_DEVICE_NAME_LEN, "the device name")
            .map_err(|_| err(ErrorCode::MalformedMessage, "the device name in the request is invalid"))?;
        let policy = PasscodePolicy::from_bytes(rb.policy)?;
        let th = transcript(&TranscriptInput {
            portal_pk: &self.pk,
            eph_pk: eph,
            device_pk: &device_pk,
            commitment: &rb.commitment,
            biometrics: rb.biometrics,
            policy,
            device_name: &rb.device_name,
        });
        if rb.pop.len() != SIGNATURE_LEN {
            return Err(err(ErrorCode::MalformedMessage, "the proof of possession has the wrong length"));
        }
        // The signature check also checks the device key is a point; only
        // a failure pays for telling the two apart.
        if let Err(e) = verify(&device_pk, &[label::LINK_POP, &th], &rb.pop, ErrorCode::MessageTampered) {
            decode_public(&device_pk, ErrorCode::MalformedMessage)?;
            return Err(e);
        }
        Ok(OpenedLinkRequest {
            offer_id: offer_id(&rb.commitment),
            commitment: rb.commitment,
            request_hash: req.hash(),
            th,
            device_id: device_id(&device_pk),
            device_pk,
            device_name: rb.device_name.clone(),
            biometrics: rb.biometrics,
            policy: rb.policy,
            answer_key: Zeroizing::new(rb.answer_key),
            shared_e,
        })
    }

    /// Check the code the user typed for a pending link. Writes: the pending
    /// link (attempt counted, or closed) and, on success, the new device
    /// record, which is also the result. Errors: `CHECK_CODE_MISMATCH`,
    /// `LOCKED_OUT` (the 5th wrong code closes the link), `TOKEN_EXPIRED`,
    /// `INVALID_STATE` (closed), `INVALID_TIME`. A portal that does not
    /// know which device the user means calls [`Portal::confirm_any`].
    pub fn confirm_link(&self, pending: &PendingLinkRecord, typed: &str, now: u64) -> Outcome<DeviceRecord> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        let attempts = match pending.state {
            PendingState::Open { attempts } => attempts,
            _ => return Outcome::refused(err(ErrorCode::InvalidState, "this link was already confirmed or cancelled")),
        };
        if pending.confirm != ConfirmMethod::CheckCode {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "this link is confirmed by an existing authenticator, not by a check code",
            ));
        }
        let mut next = pending.clone();
        next.version = pending.version.saturating_add(1);
        if (Expiry { expires_at: pending.confirm_by }).is_past(now) {
            next.state = PendingState::Cancelled { at: now, reason: CancelReason::Expired };
            return Outcome::new(
                vec![Write::PendingLink(next)],
                Err(err(ErrorCode::TokenExpired, "the check code has expired; link the device again")),
            );
        }
        // Exactly the 6 digits: a prefix, an empty string or a longer code
        // never matches (ct_eq compares lengths first).
        if !ct_eq(typed.trim().as_bytes(), pending.check_code.expose()) {
            let mut attempts = attempts;
            let e = if attempts.record_failure(&CONFIRM_ATTEMPTS) {
                next.state = PendingState::Cancelled { at: now, reason: CancelReason::LockedOut };
                err(ErrorCode::LockedOut, "too many wrong check codes; the link was cancelled")
            } else {
                next.state = PendingState::Open { attempts };
                err(ErrorCode::CheckCodeMismatch, "the check code does not match")
            };
            return Outcome::new(vec![Write::PendingLink(next)], Err(e));
        }
        self.confirm_pending(pending, now)
    }

    /// Confirm an open pending link (its check or vouch was right): the
    /// pending link closes as confirmed and the device record is inserted,
    /// with the channel key derived now (one ECDH, only on this success
    /// path). `STATE_CORRUPT`, with nothing written, when the stored device
    /// key is not a point.
    pub(crate) fn confirm_pending(&self, pending: &PendingLinkRecord, now: u64) -> Outcome<DeviceRecord> {
        let channel_key = match pending.derive_channel_key(self) {
            Ok(k) => k,
            Err(e) => return Outcome::refused(e),
        };
        let mut next = pending.clone();
        next.version = pending.version.saturating_add(1);
        next.state = PendingState::Confirmed { at: now };
        let record = DeviceRecord {
            device_id: pending.device_id.clone(),
            account: pending.account.clone(),
            name: pending.device_name.clone(),
            linked_at: now,
            last_used_at: None,
            status: DeviceStatus::Active,
            biometrics: pending.biometrics,
            otp_state: OtpState::default(),
            totp: pending.totp,
            proven: false,
            signed_counter: None,
            signed_counter_at: None,
            vouch_failures: 0,
            clone_suspected: false,
            usable_from: None,
            serial: None,
            version: 1,
            device_pk: pending.device_pk.clone(),
            answer_key: pending.answer_key.clone(),
            channel_key,
        };
        let ev = PortalEvent::DeviceLinked {
            account: record.account.clone(),
            device_id: record.device_id.clone(),
            device_name: record.name.clone(),
            at: now,
        };
        Outcome {
            writes: vec![Write::PendingLink(next), Write::Device(record.clone())],
            events: vec![ev],
            result: Ok(record),
        }
    }

    /// Check a typed code against every pending link of one account (the
    /// portal asks the user for the code, not for the device). The links
    /// still waiting for their code are tried; the one whose code matches
    /// is confirmed, and the outcome holds only its writes and events, the
    /// others are untouched. If none matches, the wrong code counts against
    /// every waiting link, all in this one outcome, and the error is the
    /// first link's (`CHECK_CODE_MISMATCH`, `LOCKED_OUT`, `TOKEN_EXPIRED`).
    ///
    /// Errors without writes: `TOKEN_UNKNOWN` (no link is waiting),
    /// `INVALID_INPUT` (links of several accounts, or one link twice),
    /// `INVALID_TIME`.
    pub fn confirm_any(&self, pendings: &[PendingLinkRecord], typed: &str, now: u64) -> Outcome<DeviceRecord> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        let Some(first) = pendings.first() else {
            return Outcome::refused(err(
                ErrorCode::TokenUnknown,
                "no device of this account is waiting for a check code",
            ));
        };
        if pendings.iter().any(|p| p.account != first.account) {
            return Outcome::refused(err(ErrorCode::InvalidInput, "the pending links are of several accounts"));
        }
        if pendings.iter().enumerate().any(|(i, p)| pendings[..i].iter().any(|q| q.device_id == p.device_id)) {
            return Outcome::refused(err(ErrorCode::InvalidInput, "a pending link is listed twice"));
        }
        let mut outcomes: Vec<Outcome<DeviceRecord>> = pendings
            .iter()
            .filter(|p| !p.is_closed() && p.confirm == ConfirmMethod::CheckCode)
            .map(|p| self.confirm_link(p, typed, now))
            .collect();
        if outcomes.is_empty() {
            return Outcome::refused(err(
                ErrorCode::TokenUnknown,
                "no device of this account is waiting for a check code",
            ));
        }
        // A match confirms that link alone (should two links draw the same
        // code, the first listed); the others are not touched.
        if let Some(i) = outcomes.iter().position(|o| o.result.is_ok()) {
            return outcomes.swap_remove(i);
        }
        // No match: the code counts against every waiting link, and the user
        // hears the most telling refusal: a lock first, then a wrong code
        // (some link still waits), then an expiry.
        let rank = |e: &crate::Error| match e.code() {
            ErrorCode::LockedOut => 0,
            ErrorCode::CheckCodeMismatch => 1,
            ErrorCode::TokenExpired => 2,
            _ => 3,
        };
        let (mut writes, mut events, mut worst) = (Vec::new(), Vec::new(), None::<crate::Error>);
        for o in outcomes {
            writes.extend(o.writes);
            events.extend(o.events);
            if let Err(e) = o.result {
                if worst.as_ref().is_none_or(|w| rank(&e) < rank(w)) {
                    worst = Some(e);
                }
            }
        }
        let e = worst.unwrap_or(err(ErrorCode::CheckCodeMismatch, "the check code does not match"));
        Outcome { writes, events, result: Err(e) }
    }

    /// Parse a status request; the host then loads the device (or pending
    /// link) [`OpenedStatusRequest::device_id`] and calls
    /// [`OpenedStatusRequest::answer`].
    pub fn open_status_request(&self, text: &str) -> Result<OpenedStatusRequest> {
        let request = StatusRequest::decode(text)?;
        Ok(OpenedStatusRequest { device_id: crate::encoding::hex_encode(&request.device_id), request })
    }

    /// Seal a record for storage (XChaCha20-Poly1305 under a key derived
    /// from the portal secret). The associated data binds the blob kind,
    /// the record type, its key, account and version: a sealed record
    /// cannot pass for another type, row, account or version.
    pub fn seal_record<T: PortalRecord>(&self, record: &T, rng: &mut dyn RandomSource) -> Vec<u8> {
        let plain = Zeroizing::new(wire::encode(Kind::PortalRecord, record));
        let header = wire::header(Kind::PortalRecord);
        let aad = record_aad::<T>(record.key(), record.account(), record.version());
        let mut out = Vec::from(header);
        out.extend_from_slice(&seal_blob(&self.storage_key, &aad, &plain, rng));
        out
    }

    /// Open a record sealed by [`Portal::seal_record`], given the key,
    /// account and version columns of the row it was read from
    /// (`STATE_CORRUPT` on any change, another portal's key, another record
    /// type, or a blob moved to another row, account or version).
    pub fn open_record<T: PortalRecord>(&self, key: &str, account: &str, version: u64, sealed: &[u8]) -> Result<T> {
        let body = wire::strip_header(sealed, Kind::PortalRecord)?;
        let plain = open_blob(&self.storage_key, &record_aad::<T>(key, account, version), body)?;
        let inner = wire::strip_header(&plain, Kind::PortalRecord)?;
        let r: T = wire::decode_body(inner, ErrorCode::StateCorrupt)?;
        if r.key() != key || r.account() != account || r.version() != version {
            return Err(err(ErrorCode::StateCorrupt, "the stored record does not match its row"));
        }
        Ok(r)
    }
}

/// Associated data of a sealed portal record:
/// `13 01 || tag || version (u64) || len || key || len || account`.
fn record_aad<T: PortalRecord>(key: &str, account: &str, version: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + key.len() + account.len());
    aad.extend_from_slice(&wire::header(Kind::PortalRecord));
    aad.push(T::TAG);
    aad.extend_from_slice(&version.to_be_bytes());
    for part in [key.as_bytes(), account.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

/// The portal's P-256 key from its seed: the first of
/// HKDF(salt = "tessera/v1/link", ikm = seed, info = "tessera/v1/portal-key" || i),
/// i = 0, 1, …, that is a valid scalar (in practice always i = 0).
fn portal_key(seed: &[u8; 32]) -> Result<SecretKey> {
    for i in 0..=u8::MAX {
        let candidate = hkdf::<32>(label::LINK_SALT, seed, &[label::PORTAL_KEY, &[i]]);
        if let Ok(sk) = SecretKey::from_slice(&candidate[..]) {
            return Ok(sk);
        }
    }
    Err(err(ErrorCode::Internal, "no valid portal key could be derived"))
}

pub(crate) fn fingerprint(pk: &[u8]) -> String {
    crate::encoding::hex_encode(&crate::crypto::sha256(&[b"tessera/v1/fingerprint", pk])[..8])
}

impl OpenedLinkRequest {
    /// Lookup key of the offer this request claims.
    pub fn offer_id(&self) -> &str {
        &self.offer_id
    }
    /// Id of the device that asks (look up whether a pending link or device
    /// record has it: [`DeviceKeyUse`]).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
    /// Name the user gave the device.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// An authenticated refusal the device app can show (`TOKEN_UNKNOWN`,
    /// `TOKEN_ALREADY_USED`, …). Refusals are sealed under their own key,
    /// never under the key of an acceptance, and one code always gives the
    /// same bytes. Hosts get them from [`OpenedLinkRequest::accept`]
    /// (`answer`, `if_not_stored`), never by hand.
    pub(crate) fn refuse(&self, code: ErrorCode) -> String {
        self.seal_answer(&AnswerBody::Refused(RefusedBody { code: code.as_str().into() }))
    }

    fn seal_answer(&self, body: &AnswerBody) -> String {
        let accepted = matches!(body, AnswerBody::Accepted(_));
        let keys = answer_keys(&self.shared_e, &self.commitment, &self.th, accepted);
        LinkAnswer::seal(&keys, &self.th, body)
    }

    /// Tests: an acceptance carrying any nonce and account, as a relay or a
    /// hostile portal would send it.
    #[cfg(test)]
    pub(crate) fn forge_accepted(&self, portal_nonce: [u8; 32], account: &str, now: u64) -> String {
        let body = AcceptedBody {
            portal_nonce,
            account: account.into(),
            device_id: self.device_id.clone(),
            linked_at: now,
            confirm_by: now + CONFIRM_TTL,
            totp: DeviceTotpPolicy::default(),
        };
        self.seal_answer(&AnswerBody::Accepted(body))
    }

    /// Tests: the ECDH secret with the ephemeral key, and the transcript.
    #[cfg(test)]
    pub(crate) fn secrets_for_test(&self) -> ([u8; 32], [u8; 32]) {
        (*self.shared_e, self.th)
    }

    fn refused(&self, code: ErrorCode, detail: &'static str) -> AcceptOutcome {
        self.answered(self.refuse(code), Outcome::refused(err(code, detail)))
    }

    /// An outcome with its answer, and the late refusal for when its writes
    /// could not be stored.
    fn answered(&self, answer: String, outcome: Outcome<Accept>) -> AcceptOutcome {
        AcceptOutcome { answer, if_not_stored: self.refuse(ErrorCode::Internal), outcome }
    }

    /// Accept the request against its stored offer (`None` if the host found
    /// none) and the device key's use. Borrows `self`: after a write
    /// conflict, read again and call again. Refusals: `TOKEN_UNKNOWN`,
    /// `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED` (at or after `expires_at`),
    /// `DEVICE_ALREADY_LINKED` (device key seen before), `PASSCODE_POLICY`
    /// (biometrics the offer does not allow), `INVALID_TIME`.
    pub fn accept(
        &self,
        // Unused since the channel key is derived on confirmation; kept so
        // that hosts call `accept` as before.
        _portal: &Portal,
        offer: Option<&LinkOfferRecord>,
        key_use: DeviceKeyUse,
        now: u64,
    ) -> AcceptOutcome {
        if check_now(now).is_err() {
            return self.refused(ErrorCode::InvalidTime, "the portal clock is outside the years 2000 to 3000");
        }
        let offer = match offer {
            Some(o) if ct_eq(o.offer_id.as_bytes(), self.offer_id.as_bytes()) => o,
            _ => return self.refused(ErrorCode::TokenUnknown, "no pending offer matches this QR code"),
        };
        let usage = match &offer.state {
            OfferState::Open => Usage::Unused,
            OfferState::Used { request_hash, answer, .. } if ct_eq(request_hash, &self.request_hash) => {
                Usage::UsedByThis(answer)
            }
            OfferState::Used { .. } => Usage::UsedByOther,
            OfferState::Expired { .. } => Usage::Expired,
        };
        match SingleUse::until(offer.expires_at).decide(usage, now) {
            UseDecision::Use => {}
            UseDecision::Repeat(answer) => {
                return self.answered(answer.clone(), Outcome::new(vec![], Ok(Accept::Repeated)));
            }
            UseDecision::Refuse(ErrorCode::TokenAlreadyUsed) => {
                return self.refused(ErrorCode::TokenAlreadyUsed, "this QR code was already used");
            }
            UseDecision::Refuse(code) => return self.refused(code, "this QR code has expired"),
            UseDecision::Expire => {
                let mut expired = offer.clone();
                expired.version = offer.version.saturating_add(1);
                expired.state = OfferState::Expired { at: now };
                return self.answered(
                    self.refuse(ErrorCode::TokenExpired),
                    Outcome::new(
                        vec![Write::Offer(expired)],
                        Err(err(ErrorCode::TokenExpired, "this QR code has expired")),
                    ),
                );
            }
        }
        if key_use == DeviceKeyUse::Seen {
            return self.refused(ErrorCode::DeviceAlreadyLinked, "this device key is already linked");
        }
        if self.policy != offer.policy.to_bytes() {
            return self.refused(ErrorCode::PasscodePolicy, "the device saw another passcode policy than the offer's");
        }
        if self.biometrics && !offer.policy.allow_biometrics {
            return self.refused(ErrorCode::PasscodePolicy, "this offer does not allow biometrics");
        }
        let nonce: [u8; 32] = match wire::fixed(offer.portal_nonce.expose(), ErrorCode::StateCorrupt) {
            Ok(n) if offer_commitment(&n) == self.commitment => n,
            _ => return self.refused(ErrorCode::Internal, "the stored offer does not match its commitment"),
        };
        let code = check_code(&check_code_key(&self.shared_e, &self.commitment, &self.th), &nonce, &self.th);
        let confirm_by = now.saturating_add(CONFIRM_TTL);
        let body = AcceptedBody {
            portal_nonce: nonce,
            account: offer.account.clone(),
            device_id: self.device_id.clone(),
            linked_at: now,
            confirm_by,
            totp: offer.totp,
        };
        let answer = self.seal_answer(&AnswerBody::Accepted(body));
        let pending = PendingLinkRecord {
            device_id: self.device_id.clone(),
            account: offer.account.clone(),
            device_name: self.device_name.clone(),
            offer_id: offer.offer_id.clone(),
            created_at: now,
            confirm_by,
            biometrics: self.biometrics,
            totp: offer.totp,
            confirm: offer.confirm,
            state: PendingState::Open { attempts: Attempts::NONE },
            version: 1,
            device_pk: SecretBytes::from_slice(&self.device_pk),
            answer_key: SecretBytes::from_slice(&self.answer_key[..]),
            // No agreement with the device key here: the channel key is
            // derived on confirmation (and for status answers), see
            // `PendingChannel`. The device key is a point: its signature
            // verified in `open_link_request`.
            channel_key: PendingChannel::Deferred { th: self.th },
            check_code: SecretBytes::from_slice(code.as_bytes()),
        };
        let mut used = offer.clone();
        used.version = offer.version.saturating_add(1);
        used.state = OfferState::Used {
            at: now,
            device_id: self.device_id.clone(),
            request_hash: self.request_hash,
            answer: answer.clone(),
        };
        let events = vec![PortalEvent::LinkRequested {
            account: offer.account.clone(),
            device_id: self.device_id.clone(),
            device_name: self.device_name.clone(),
            at: now,
        }];
        self.answered(
            answer,
            Outcome {
                writes: vec![Write::Offer(used), Write::PendingLink(pending)],
                events,
                result: Ok(Accept::Accepted),
            },
        )
    }
}

impl OpenedStatusRequest {
    /// Device the request claims to come from.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Authenticate the request and answer it from what the portal holds for
    /// this device id: its registry record (active or unlinked) or, for a
    /// device whose link was never confirmed, its pending link (awaiting
    /// confirmation, or not confirmed: the device then clears itself).
    /// Changes nothing: there is nothing to write.
    ///
    /// Cost: a pending link's channel key is derived for each answer (one
    /// ECDH, see [`PendingChannel`]), before the request is authenticated.
    /// That is no more than opening any link request costs, which needs no
    /// knowledge at all; a status request needs the id of a device whose
    /// link was never confirmed (a confirmed one is answered from its
    /// device record, without an agreement).
    /// Errors: `DEVICE_UNKNOWN` (neither record), `MESSAGE_TAMPERED`,
    /// `INVALID_TIME` (request more than 300 s from `now`, or `now` invalid),
    /// `STATE_CORRUPT` (a pending link's device key is not a point).
    pub fn answer(
        &self,
        portal: &Portal,
        device: Option<&DeviceRecord>,
        pending: Option<&PendingLinkRecord>,
        now: u64,
    ) -> Result<String> {
        check_now(now)?;
        let (channel, status) = match (device, pending) {
            (Some(d), _) if d.device_id == self.device_id => (
                d.channel_key.clone(),
                match d.status {
                    DeviceStatus::Active => status_byte::ACTIVE,
                    DeviceStatus::Unlinked { .. } => status_byte::UNLINKED,
                },
            ),
            (_, Some(p)) if p.device_id == self.device_id => (
                p.derive_channel_key(portal)?,
                match p.state {
                    // Until the deadline plus the clock skew servers may
                    // have, a confirmation may still be committing
                    // elsewhere: never tell the phone to wipe itself early.
                    PendingState::Open { .. } if now < p.confirm_by.saturating_add(STATUS_SKEW) => {
                        status_byte::AWAITING_CONFIRMATION
                    }
                    PendingState::Open { .. } | PendingState::Cancelled { .. } => status_byte::NOT_CONFIRMED,
                    // Confirmed, but the host found no device record: a
                    // read that was not one snapshot. Authenticated first
                    // (below), then refused: nothing destructive.
                    PendingState::Confirmed { .. } => CONFIRMED_WITHOUT_DEVICE,
                },
            ),
            _ => return Err(err(ErrorCode::DeviceUnknown, "no device or pending link with this id")),
        };
        if !self.request.is_authentic(channel.expose()) {
            return Err(err(ErrorCode::MessageTampered, "the status request failed authentication"));
        }
        if self.request.time.abs_diff(now) > STATUS_SKEW {
            return Err(err(ErrorCode::InvalidTime, "the status request is too old or from the future"));
        }
        if status == CONFIRMED_WITHOUT_DEVICE {
            return Err(err(ErrorCode::DeviceUnknown, "the link is confirmed but its device record is missing"));
        }
        Ok(StatusAnswer::seal(channel.expose(), &self.request.device_id, self.request.nonce, status))
    }
}

/// Internal marker (never sent): a confirmed pending link whose device
/// record the host did not find.
const CONFIRMED_WITHOUT_DEVICE: u8 = 0xff;

/// The device's TOTP: TOTP-SHA256 over the answer key, 30 s, 6 digits.
pub(crate) fn device_totp(answer_key: &[u8], policy: DeviceTotpPolicy) -> Result<Totp> {
    Totp::new(answer_key.to_vec(), policy.algorithm, policy.digits, u64::from(policy.period), 0)
}

impl DeviceRecord {
    /// `DEVICE_NOT_YET_USABLE` while an activated offline authenticator
    /// waits out the portal's delay.
    pub fn check_usable(&self, now: u64) -> Result<()> {
        match self.usable_from {
            Some(t) if now < t => Err(err(
                ErrorCode::DeviceNotYetUsable,
                "the device was activated recently and is not usable yet (the portal's delay)",
            )),
            _ => Ok(()),
        }
    }

    /// A copy at the next version (the record a write replaces it with).
    pub(crate) fn next(&self) -> DeviceRecord {
        let mut n = self.clone();
        n.version = self.version.saturating_add(1);
        n
    }

    /// Rename an active device (1..=64 bytes of text). Writes the record.
    /// An unlinked device is not renamed (`INVALID_STATE`).
    pub fn rename(&self, name: &str, now: u64) -> Outcome<()> {
        if let Err(e) = check_now(now).and_then(|_| check_name(name, MAX_DEVICE_NAME_LEN, "the device name")) {
            return Outcome::refused(e);
        }
        if matches!(self.status, DeviceStatus::Unlinked { .. }) {
            return Outcome::refused(err(ErrorCode::InvalidState, "the device is unlinked"));
        }
        let mut n = self.next();
        n.name = name.into();
        let ev = PortalEvent::DeviceRenamed {
            account: self.account.clone(),
            device_id: self.device_id.clone(),
            name: n.name.clone(),
            at: now,
        };
        Outcome { writes: vec![Write::Device(n)], events: vec![ev], result: Ok(()) }
    }

    /// Unlink the device (works without it: lost or stolen phone). The
    /// record stays, unlinked for good: its keys authenticate the
    /// "unlinked" answer the device gets on its next contact. Unlinking
    /// twice is refused with `INVALID_STATE`.
    pub fn unlink(&self, now: u64) -> Outcome<()> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        if matches!(self.status, DeviceStatus::Unlinked { .. }) {
            return Outcome::refused(err(ErrorCode::InvalidState, "the device is already unlinked"));
        }
        let mut n = self.next();
        n.status = DeviceStatus::Unlinked { at: now };
        let ev =
            PortalEvent::DeviceUnlinked { account: self.account.clone(), device_id: self.device_id.clone(), at: now };
        Outcome { writes: vec![Write::Device(n)], events: vec![ev], result: Ok(()) }
    }

    /// Verify a time-based code shown by the device (flow 5), with the
    /// portal's rules of this device. A wrong passcode on the device gives a
    /// wrong code, counted here; the lock is the device's one lockout
    /// ([`crate::challenge::DEVICE_LOCKOUT`], shared with challenge answers:
    /// event `DeviceLocked` on the failure that locks). Writes the record
    /// whenever the verifier state changed, success or failure. An unlinked
    /// device gets `DEVICE_REVOKED`.
    pub fn verify_totp(&self, code: &str, now: u64) -> Outcome<Verified> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        if matches!(self.status, DeviceStatus::Unlinked { .. }) {
            return Outcome::refused(err(ErrorCode::DeviceRevoked, "this device was unlinked"));
        }
        if self.clone_suspected {
            return Outcome::refused(err(ErrorCode::DeviceCloned, "this device's keys were copied; unlink it"));
        }
        if self.serial.is_some() {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "an offline authenticator shows no time-based codes",
            ));
        }
        if let Err(e) = self.check_usable(now) {
            return Outcome::refused(e);
        }
        let totp = match device_totp(self.answer_key.expose(), self.totp) {
            Ok(t) => t,
            Err(e) => return Outcome::refused(e),
        };
        let v = TotpVerifier::new(totp, 1, crate::challenge::DEVICE_LOCKOUT);
        let mut n = self.next();
        let r = v.verify(&mut n.otp_state, code, now);
        if r.is_ok() {
            n.last_used_at = Some(now);
        }
        let locked_now = !self.otp_state.throttle.is_locked(now) && n.otp_state.throttle.is_locked(now);
        let events = if locked_now {
            vec![PortalEvent::DeviceLocked {
                account: self.account.clone(),
                device_id: self.device_id.clone(),
                at: now,
            }]
        } else {
            vec![]
        };
        let writes = if n.otp_state != self.otp_state || n.last_used_at != self.last_used_at {
            vec![Write::Device(n)]
        } else {
            vec![]
        };
        Outcome { writes, events, result: r }
    }
}
