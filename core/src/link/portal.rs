//! Portal side of linking: offers, accepting requests, check-code
//! confirmation, the device registry records and status answers.

use super::passcode::PasscodePolicy;
use super::*;
use crate::crypto::{
    decode_public, ecdh, encode_public, hkdf, hmac_sha256, open_blob, open_once, random_array, seal_blob, seal_once,
    RandomSource, PUBLIC_KEY_LEN,
};
use crate::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier, Verified};
use crate::secret::{ct_eq, SecretBytes};
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
    sk: SecretKey,
    pk: [u8; PUBLIC_KEY_LEN],
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

/// A new offer: the QR text to show, the record to store, and an event.
#[derive(Debug, Clone)]
pub struct LinkOfferQr {
    /// Text to put in the QR code (`TS:…`, QR alphanumeric mode).
    pub qr_text: String,
    /// Record to store, keyed by `offer_id`.
    pub record: LinkOfferRecord,
}

/// A pending offer as the portal stores it. Holds no secret: the QR secret
/// is only in the QR code; `offer_id` is its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOfferRecord {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account the offer links to.
    pub account: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// Passcode policy announced in the QR code.
    pub policy: PasscodePolicy,
    /// When a device used it (single use).
    pub used_at: Option<u64>,
}

/// A device that linked and waits for the user to type its check code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLinkRecord {
    /// Device id (hex).
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Name the user gave the device.
    pub device_name: String,
    /// Offer it came from.
    pub offer_id: String,
    /// When the device sent its request.
    pub created_at: u64,
    /// Deadline for the check code.
    pub confirm_by: u64,
    /// Wrong check codes so far.
    pub attempts: u32,
    /// Biometrics enabled on the device.
    pub biometrics: bool,
    /// Confirmed, cancelled or locked: no longer usable.
    pub closed: bool,
    pub(crate) device_pk: SecretBytes,
    pub(crate) answer_key: SecretBytes,
    pub(crate) channel_key: SecretBytes,
    pub(crate) check_code: SecretBytes,
}

/// A record type the portal stores sealed; `TAG` is authenticated with it.
pub trait PortalRecord: Serialize + serde::de::DeserializeOwned {
    /// Frozen record-type tag (docs/PROTOCOL.md).
    const TAG: u8;
}

impl PortalRecord for LinkOfferRecord {
    const TAG: u8 = 1;
}
impl PortalRecord for PendingLinkRecord {
    const TAG: u8 = 2;
}
impl PortalRecord for DeviceRecord {
    const TAG: u8 = 3;
}

/// Registry status of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Linked and usable.
    Active,
    /// Unlinked by the portal (lost, stolen, or removed by the user).
    Unlinked,
}

impl DeviceStatus {
    /// `active` / `unlinked`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Unlinked => "unlinked",
        }
    }
}

/// A linked device in the portal's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Device id (hex), unique.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Display name.
    pub name: String,
    /// When the link was confirmed.
    pub linked_at: u64,
    /// Last successful use.
    pub last_used_at: Option<u64>,
    /// Active or unlinked.
    pub status: DeviceStatus,
    /// When it was unlinked.
    pub unlinked_at: Option<u64>,
    /// Biometrics enabled on the device.
    pub biometrics: bool,
    /// OTP verifier state (replay and lockout) of this device's codes.
    pub otp_state: OtpState,
    pub(crate) device_pk: SecretBytes,
    pub(crate) answer_key: SecretBytes,
    pub(crate) channel_key: SecretBytes,
}

/// What happened, for the host to act on (e-mail, audit log).
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

/// A decrypted link request, before the host looked up its offer.
pub struct OpenedLinkRequest {
    offer_id: String,
    offer_secret: [u8; 16],
    eph_pk: [u8; PUBLIC_KEY_LEN],
    device_pk: [u8; PUBLIC_KEY_LEN],
    device_id: String,
    device_name: String,
    biometrics: bool,
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

/// Result of [`OpenedLinkRequest::accept`]: always an answer for the device,
/// and on success the records to store.
#[derive(Debug)]
pub struct AcceptOutcome {
    /// Text to send back to the device (success or a typed refusal).
    pub answer: String,
    /// The records to store, or why the link was refused.
    pub result: Result<AcceptedLink>,
}

/// Records produced by a successful accept.
#[derive(Debug, Clone)]
pub struct AcceptedLink {
    /// The offer, now marked used. Store it with a compare-and-set on
    /// `used_at IS NULL`; if that fails another server won: answer the device
    /// with [`OpenedLinkRequest::refuse`]`(TOKEN_ALREADY_USED)` instead.
    pub offer: LinkOfferRecord,
    /// The pending link, waiting for the check code.
    pub pending: PendingLinkRecord,
    /// Events.
    pub events: Vec<PortalEvent>,
}

/// Body of a link request (postcard, inside the AEAD).
#[derive(Serialize, Deserialize)]
pub(crate) struct RequestBody {
    pub offer_secret: [u8; 16],
    pub device_pk: Vec<u8>,
    pub device_name: String,
    pub answer_key: [u8; 32],
    pub biometrics: bool,
}

/// A status request whose device the host must look up.
#[derive(Debug, Clone)]
pub struct OpenedStatusRequest {
    device_id: String,
    nonce: [u8; 16],
    time: u64,
    mac: [u8; 32],
}

/// Clock difference tolerated on status requests.
const STATUS_SKEW: u64 = 300;

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
        let sk = portal_key(&seed)?;
        let pk = encode_public(&sk.public_key());
        let storage_key = hkdf::<32>(label::LINK_SALT, &seed[..], &[label::PORTAL_STORAGE]);
        Ok(Portal { seed, sk, pk, name: name.into(), storage_key })
    }

    /// The 32-byte seed to store (in an HSM or secret manager).
    pub fn secret(&self) -> SecretBytes {
        SecretBytes::from_slice(&self.seed[..])
    }

    /// Compressed public key.
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

    /// Create a single-use link offer for `account`, valid `ttl` seconds
    /// (1..=600; default [`DEFAULT_OFFER_TTL`]).
    pub fn create_offer(
        &self,
        account: &str,
        policy: PasscodePolicy,
        ttl: u64,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<LinkOfferQr> {
        check_name(account, MAX_ACCOUNT_LEN, "the account")?;
        policy.validate_policy()?;
        if ttl == 0 || ttl > MAX_OFFER_TTL {
            return Err(err(ErrorCode::InvalidInput, "the offer lifetime must be 1 to 600 seconds"));
        }
        let expires_at = now
            .checked_add(ttl)
            .filter(|t| *t <= u64::from(u32::MAX))
            .ok_or(err(ErrorCode::InvalidTime, "the expiry does not fit the QR format (after 2106)"))?;
        let secret = random_array::<16>(rng);
        let mut bytes = Vec::with_capacity(80);
        bytes.extend_from_slice(&wire::header(Kind::LinkOffer));
        bytes.extend_from_slice(&secret);
        bytes.extend_from_slice(&self.pk);
        bytes.extend_from_slice(&(expires_at as u32).to_be_bytes());
        bytes.extend_from_slice(&policy.to_bytes());
        bytes.push(self.name.len() as u8);
        bytes.extend_from_slice(self.name.as_bytes());
        let record = LinkOfferRecord {
            offer_id: offer_id(&secret),
            account: account.into(),
            created_at: now,
            expires_at,
            policy,
            used_at: None,
        };
        Ok(LinkOfferQr { qr_text: wire::to_qr_text(&bytes), record })
    }

    /// Decrypt a link request. The host then loads the offer
    /// [`OpenedLinkRequest::offer_id`] and calls [`OpenedLinkRequest::accept`].
    pub fn open_link_request(&self, text: &str) -> Result<OpenedLinkRequest> {
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::LinkRequest)?;
        if body.len() < PUBLIC_KEY_LEN + 16 {
            return Err(err(ErrorCode::MalformedMessage, "the link request is truncated"));
        }
        let (eph, ct) = body.split_at(PUBLIC_KEY_LEN);
        let eph_pk = decode_public(eph, ErrorCode::MessageTampered)?;
        let shared_e = ecdh(&self.sk, &eph_pk);
        let key = request_key(&shared_e, &self.pk, eph);
        let aad = [&bytes[..2], eph, &self.pk[..]].concat();
        let plain = open_once(&key, &aad, ct)?;
        let rb: RequestBody = wire::decode_body(&plain, ErrorCode::MalformedMessage)?;
        let device_pk: [u8; PUBLIC_KEY_LEN] = wire::fixed(&rb.device_pk, ErrorCode::MalformedMessage)?;
        decode_public(&device_pk, ErrorCode::MalformedMessage)?;
        check_name(&rb.device_name, MAX_DEVICE_NAME_LEN, "the device name")
            .map_err(|_| err(ErrorCode::MalformedMessage, "the device name in the request is invalid"))?;
        Ok(OpenedLinkRequest {
            offer_id: offer_id(&rb.offer_secret),
            offer_secret: rb.offer_secret,
            eph_pk: wire::fixed(eph, ErrorCode::MalformedMessage)?,
            device_id: device_id(&device_pk),
            device_pk,
            device_name: rb.device_name,
            biometrics: rb.biometrics,
            answer_key: Zeroizing::new(rb.answer_key),
            shared_e,
        })
    }

    /// Check the code the user typed for a pending link. Persist `pending`
    /// afterwards in every case (attempts are counted). On success, store the
    /// returned [`DeviceRecord`] and act on the events.
    ///
    /// Errors: `CHECK_CODE_MISMATCH`, `LOCKED_OUT` (5th wrong code: the
    /// pending link is closed), `TOKEN_EXPIRED`, `INVALID_STATE` (closed).
    pub fn confirm_link(
        &self,
        pending: &mut PendingLinkRecord,
        typed: &str,
        now: u64,
    ) -> Result<(DeviceRecord, Vec<PortalEvent>)> {
        if pending.closed {
            return Err(err(ErrorCode::InvalidState, "this link was already confirmed or cancelled"));
        }
        if now >= pending.confirm_by {
            pending.closed = true;
            return Err(err(ErrorCode::TokenExpired, "the check code has expired; link the device again"));
        }
        let typed = typed.trim();
        if !ct_eq(typed.as_bytes(), pending.check_code.expose()) {
            pending.attempts += 1;
            if pending.attempts >= MAX_CONFIRM_ATTEMPTS {
                pending.closed = true;
                return Err(err(ErrorCode::LockedOut, "too many wrong check codes; the link was cancelled"));
            }
            return Err(err(ErrorCode::CheckCodeMismatch, "the check code does not match"));
        }
        pending.closed = true;
        let record = DeviceRecord {
            device_id: pending.device_id.clone(),
            account: pending.account.clone(),
            name: pending.device_name.clone(),
            linked_at: now,
            last_used_at: None,
            status: DeviceStatus::Active,
            unlinked_at: None,
            biometrics: pending.biometrics,
            otp_state: OtpState::default(),
            device_pk: pending.device_pk.clone(),
            answer_key: pending.answer_key.clone(),
            channel_key: pending.channel_key.clone(),
        };
        let ev = PortalEvent::DeviceLinked {
            account: record.account.clone(),
            device_id: record.device_id.clone(),
            device_name: record.name.clone(),
            at: now,
        };
        Ok((record, vec![ev]))
    }

    /// Parse a status request; the host then loads the device
    /// [`OpenedStatusRequest::device_id`] and calls [`OpenedStatusRequest::answer`].
    pub fn open_status_request(&self, text: &str) -> Result<OpenedStatusRequest> {
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::StatusRequest)?;
        if body.len() != 8 + 16 + 8 + 32 {
            return Err(err(ErrorCode::MalformedMessage, "the status request has the wrong length"));
        }
        Ok(OpenedStatusRequest {
            device_id: crate::encoding::hex_encode(&body[..8]),
            nonce: wire::fixed(&body[8..24], ErrorCode::MalformedMessage)?,
            time: u64::from_be_bytes(wire::fixed(&body[24..32], ErrorCode::MalformedMessage)?),
            mac: wire::fixed(&body[32..], ErrorCode::MalformedMessage)?,
        })
    }

    /// Seal a record for storage (XChaCha20-Poly1305 under a key derived
    /// from the portal secret; the blob kind and the record type are
    /// authenticated, so one type of record cannot be passed off as another).
    pub fn seal_record<T: PortalRecord>(&self, record: &T, rng: &mut dyn RandomSource) -> Vec<u8> {
        let plain = Zeroizing::new(wire::encode(Kind::PortalRecord, record));
        let header = wire::header(Kind::PortalRecord);
        let mut out = Vec::from(header);
        out.extend_from_slice(&seal_blob(&self.storage_key, &[header[0], header[1], T::TAG], &plain, rng));
        out
    }

    /// Open a record sealed by [`Portal::seal_record`] (`STATE_CORRUPT` on
    /// any change, another portal's key, or another record type).
    pub fn open_record<T: PortalRecord>(&self, sealed: &[u8]) -> Result<T> {
        let body = wire::strip_header(sealed, Kind::PortalRecord)?;
        let plain = open_blob(&self.storage_key, &[sealed[0], sealed[1], T::TAG], body)?;
        let inner = wire::strip_header(&plain, Kind::PortalRecord)?;
        wire::decode_body(inner, ErrorCode::StateCorrupt)
    }
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
    /// Id of the device that asks.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
    /// Name the user gave the device.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    fn transcript(&self, portal: &Portal) -> [u8; 32] {
        transcript(&portal.pk, &self.eph_pk, &self.device_pk, &self.offer_secret)
    }

    fn answer(&self, portal: &Portal, body: &AnswerBody) -> String {
        let th = self.transcript(portal);
        let keys = link_keys(&self.shared_e, &self.offer_secret, &th);
        let header = wire::header(Kind::LinkAnswer);
        let plain = Zeroizing::new(postcard::to_allocvec(body).unwrap_or_else(|_| unreachable!()));
        let mut out = Vec::from(header);
        out.extend_from_slice(&seal_once(&keys.answer_key, &[&header[..], &th[..]].concat(), &plain));
        wire::to_text(&out)
    }

    /// An authenticated refusal the device app can show (e.g.
    /// `TOKEN_UNKNOWN` when no offer has this id, `TOKEN_ALREADY_USED` when
    /// the host's compare-and-set lost a race).
    pub fn refuse(&self, portal: &Portal, code: ErrorCode) -> String {
        self.answer(portal, &AnswerBody::Refused { code: code.as_str().into() })
    }

    /// Accept the request against its stored offer (`None` if the host found
    /// none). Always returns an answer for the device.
    pub fn accept(self, portal: &Portal, offer: Option<&LinkOfferRecord>, now: u64) -> AcceptOutcome {
        let refused = |code: ErrorCode, detail: &'static str| AcceptOutcome {
            answer: self.refuse(portal, code),
            result: Err(err(code, detail)),
        };
        let offer = match offer {
            Some(o) if ct_eq(o.offer_id.as_bytes(), self.offer_id.as_bytes()) => o,
            _ => return refused(ErrorCode::TokenUnknown, "no pending offer matches this QR code"),
        };
        if offer.used_at.is_some() {
            return refused(ErrorCode::TokenAlreadyUsed, "this QR code was already used");
        }
        if now >= offer.expires_at {
            return refused(ErrorCode::TokenExpired, "this QR code has expired");
        }
        let th = self.transcript(portal);
        let keys = link_keys(&self.shared_e, &self.offer_secret, &th);
        // Decoded when the request was opened, so this cannot fail.
        let dpk = match decode_public(&self.device_pk, ErrorCode::Internal) {
            Ok(p) => p,
            Err(e) => return AcceptOutcome { answer: self.refuse(portal, ErrorCode::Internal), result: Err(e) },
        };
        let channel = channel_key(&ecdh(&portal.sk, &dpk), &th);
        let confirm_by = now.saturating_add(CONFIRM_TTL);
        let pending = PendingLinkRecord {
            device_id: self.device_id.clone(),
            account: offer.account.clone(),
            device_name: self.device_name.clone(),
            offer_id: offer.offer_id.clone(),
            created_at: now,
            confirm_by,
            attempts: 0,
            biometrics: self.biometrics,
            closed: false,
            device_pk: SecretBytes::from_slice(&self.device_pk),
            answer_key: SecretBytes::from_slice(&self.answer_key[..]),
            channel_key: SecretBytes::from_slice(&channel[..]),
            check_code: SecretBytes::from_slice(keys.check_code.as_bytes()),
        };
        let mut used = offer.clone();
        used.used_at = Some(now);
        let answer = self.answer(
            portal,
            &AnswerBody::Accepted {
                account: offer.account.clone(),
                device_id: self.device_id.clone(),
                linked_at: now,
                confirm_by,
            },
        );
        let events = vec![PortalEvent::LinkRequested {
            account: offer.account.clone(),
            device_id: self.device_id.clone(),
            device_name: self.device_name.clone(),
            at: now,
        }];
        AcceptOutcome { answer, result: Ok(AcceptedLink { offer: used, pending, events }) }
    }
}

impl OpenedStatusRequest {
    /// Device the request claims to come from.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Authenticate the request against the device's record and answer it
    /// (active, or unlinked: the device then wipes its account). Updates
    /// `last_used_at` of an active device: persist `record` afterwards.
    pub fn answer(&self, record: &mut DeviceRecord, now: u64) -> Result<String> {
        if record.device_id != self.device_id {
            return Err(err(ErrorCode::DeviceUnknown, "the record is for another device"));
        }
        let id = crate::encoding::hex_decode_as(&self.device_id, ErrorCode::Internal)?;
        let header = wire::header(Kind::StatusRequest);
        let mac = hmac_sha256(
            record.channel_key.expose(),
            &[label::STATUS_REQUEST, &header, &id, &self.nonce, &self.time.to_be_bytes()],
        );
        if !ct_eq(&mac, &self.mac) {
            return Err(err(ErrorCode::MessageTampered, "the status request failed authentication"));
        }
        if self.time.abs_diff(now) > STATUS_SKEW {
            return Err(err(ErrorCode::InvalidTime, "the status request is too old or from the future"));
        }
        let status = match record.status {
            DeviceStatus::Active => {
                record.last_used_at = Some(now);
                0u8
            }
            DeviceStatus::Unlinked => 1u8,
        };
        Ok(status_answer(record.channel_key.expose(), &id, &self.nonce, status))
    }
}

pub(crate) fn status_answer(channel_key: &[u8], device_id: &[u8], nonce: &[u8; 16], status: u8) -> String {
    let header = wire::header(Kind::StatusAnswer);
    let mac = hmac_sha256(channel_key, &[label::STATUS_ANSWER, &header, device_id, nonce, &[status]]);
    let mut out = Vec::from(header);
    out.extend_from_slice(nonce);
    out.push(status);
    out.extend_from_slice(&mac);
    wire::to_text(&out)
}

/// The device's TOTP: TOTP-SHA256 over the answer key, 30 s, 6 digits.
pub(crate) fn device_totp(answer_key: &[u8]) -> Result<Totp> {
    Totp::new(answer_key.to_vec(), Algorithm::Sha256, 6, 30, 0)
}

impl DeviceRecord {
    /// Rename the device (1..=64 bytes of text).
    pub fn rename(&mut self, name: &str, now: u64) -> Result<PortalEvent> {
        check_name(name, MAX_DEVICE_NAME_LEN, "the device name")?;
        self.name = name.into();
        Ok(PortalEvent::DeviceRenamed {
            account: self.account.clone(),
            device_id: self.device_id.clone(),
            name: self.name.clone(),
            at: now,
        })
    }

    /// Unlink the device (works without it: lost or stolen phone). Keep the
    /// record: its keys authenticate the "unlinked" answer the device gets
    /// on its next contact. Unlinking twice is refused with `INVALID_STATE`.
    pub fn unlink(&mut self, now: u64) -> Result<PortalEvent> {
        if self.status == DeviceStatus::Unlinked {
            return Err(err(ErrorCode::InvalidState, "the device is already unlinked"));
        }
        self.status = DeviceStatus::Unlinked;
        self.unlinked_at = Some(now);
        Ok(PortalEvent::DeviceUnlinked { account: self.account.clone(), device_id: self.device_id.clone(), at: now })
    }

    /// Verify a time-based code shown by the device (flow 5). A wrong
    /// passcode on the device gives a wrong code, counted here; the lock
    /// follows [`ThrottlePolicy::default`] (5 failures). Persist the record
    /// afterwards in every case. An unlinked device gets `DEVICE_REVOKED`.
    pub fn verify_totp(&mut self, code: &str, now: u64) -> Result<Verified> {
        if self.status == DeviceStatus::Unlinked {
            return Err(err(ErrorCode::DeviceRevoked, "this device was unlinked"));
        }
        let v = TotpVerifier::new(device_totp(self.answer_key.expose())?, 1, ThrottlePolicy::default());
        let r = v.verify(&mut self.otp_state, code, now)?;
        self.last_used_at = Some(now);
        Ok(r)
    }
}
