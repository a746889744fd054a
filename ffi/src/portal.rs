//! Portal side of linking for JVM and Swift servers: offers, accept,
//! check-code confirmation, registry operations and status answers. Every
//! record crosses as plain columns plus `sealed` bytes; the sealed copy is
//! the truth and is what each operation reads back. Operations never change
//! what they were given: they return [`RecordWrite`]s, compare-and-sets the
//! host applies in one transaction before acting on the result (on a
//! conflict: read again and call again; `docs/DESIGN.md`, "Host contract").

use crate::link::{OsRandom, PasscodeRules};
use crate::{Result, TesseraError};
use std::sync::Arc;
use tessera_core::host::Outcome;
use tessera_core::link::{
    self, Accept, DeviceKeyUse, DeviceRecord, LinkOfferRecord, OpenedLinkRequest, PasscodePolicy, PendingLinkRecord,
    Portal, PortalEvent,
};
use tessera_core::ErrorCode;

/// A stored link offer (columns + sealed record), keyed by `offer_id`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoredOffer {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account.
    pub account: String,
    /// Expiry, unix seconds.
    pub expires_at: u64,
    /// When a device used it.
    pub used_at: Option<u64>,
    /// Record version (1 when created, +1 on every change).
    pub version: u64,
    /// Sealed record (the truth; bound to this row's key, account and version).
    pub sealed: Vec<u8>,
}

/// A stored pending link, keyed by `device_id`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoredPendingLink {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Device name.
    pub device_name: String,
    /// Deadline for the check code.
    pub confirm_by: u64,
    /// Wrong check codes so far.
    pub attempts: u32,
    /// Confirmed or cancelled: no longer usable (keep it: it answers the
    /// device's status request).
    pub closed: bool,
    /// Record version.
    pub version: u64,
    /// Sealed record (the truth).
    pub sealed: Vec<u8>,
}

/// Registry status of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceStatus {
    /// Linked and usable.
    Active,
    /// Unlinked by the portal (final); the device wipes its account on next contact.
    Unlinked,
}

/// A stored registry entry, keyed by `device_id`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoredDevice {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Display name.
    pub name: String,
    /// Link time.
    pub linked_at: u64,
    /// Last use.
    pub last_used_at: Option<u64>,
    /// Active or unlinked.
    pub status: DeviceStatus,
    /// Record version.
    pub version: u64,
    /// Sealed record (the truth).
    pub sealed: Vec<u8>,
}

/// One compare-and-set for the host: `expected_version` null means
/// `INSERT` (fails if the key exists), else `UPDATE … WHERE key = ? AND
/// version = expected_version`. Apply all writes of a result atomically.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecordWrite {
    /// An offer row.
    Offer { row: StoredOffer, expected_version: Option<u64> },
    /// A pending-link row.
    PendingLink { row: StoredPendingLink, expected_version: Option<u64> },
    /// A registry row.
    Device { row: StoredDevice, expected_version: Option<u64> },
}

/// Something for the host to act on once the writes committed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkEvent {
    /// `link_requested`, `device_linked` (send the e-mail), `device_renamed`, `device_unlinked`.
    pub kind: String,
    /// Account.
    pub account: String,
    /// Device id.
    pub device_id: String,
    /// Device name (when known).
    pub device_name: Option<String>,
    /// Time.
    pub at: u64,
}

fn event(e: &PortalEvent) -> LinkEvent {
    let (kind, account, device_id, device_name, at) = match e {
        PortalEvent::LinkRequested { account, device_id, device_name, at } => {
            ("link_requested", account, device_id, Some(device_name), at)
        }
        PortalEvent::DeviceLinked { account, device_id, device_name, at } => {
            ("device_linked", account, device_id, Some(device_name), at)
        }
        PortalEvent::DeviceRenamed { account, device_id, name, at } => {
            ("device_renamed", account, device_id, Some(name), at)
        }
        PortalEvent::DeviceUnlinked { account, device_id, at } => ("device_unlinked", account, device_id, None, at),
    };
    LinkEvent {
        kind: kind.into(),
        account: account.clone(),
        device_id: device_id.clone(),
        device_name: device_name.cloned(),
        at: *at,
    }
}

impl From<link::StoredOffer> for StoredOffer {
    fn from(s: link::StoredOffer) -> Self {
        let link::StoredOffer { offer_id, account, expires_at, used_at, version, sealed } = s;
        StoredOffer { offer_id, account, expires_at, used_at, version, sealed }
    }
}

impl From<link::StoredPendingLink> for StoredPendingLink {
    fn from(s: link::StoredPendingLink) -> Self {
        let link::StoredPendingLink { device_id, account, device_name, confirm_by, attempts, closed, version, sealed } =
            s;
        StoredPendingLink { device_id, account, device_name, confirm_by, attempts, closed, version, sealed }
    }
}

impl From<link::StoredDevice> for StoredDevice {
    fn from(s: link::StoredDevice) -> Self {
        let link::StoredDevice { device_id, account, name, linked_at, last_used_at, status, version, sealed } = s;
        let status = match status {
            link::DeviceStatus::Active => DeviceStatus::Active,
            link::DeviceStatus::Unlinked { .. } => DeviceStatus::Unlinked,
        };
        StoredDevice { device_id, account, name, linked_at, last_used_at, status, version, sealed }
    }
}

impl TesseraPortal {
    /// The writes of an outcome sealed as rows, and its events.
    fn seal<T>(&self, o: &Outcome<T>) -> (Vec<RecordWrite>, Vec<LinkEvent>) {
        let writes = o.writes.iter().map(|w| {
            let (s, expected_version) = (self.portal.store_write(w, &mut OsRandom), w.expected_version());
            match s {
                link::StoredWrite::Offer(r) => RecordWrite::Offer { row: r.into(), expected_version },
                link::StoredWrite::PendingLink(r) => RecordWrite::PendingLink { row: r.into(), expected_version },
                link::StoredWrite::Device(r) => RecordWrite::Device { row: r.into(), expected_version },
            }
        });
        (writes.collect(), o.events.iter().map(event).collect())
    }

    /// The record a row holds (`STATE_CORRUPT` if its blob was made for
    /// another row, account or version).
    fn open_device(&self, d: &StoredDevice) -> Result<DeviceRecord> {
        Ok(self.portal.open_record(&d.device_id, &d.account, d.version, &d.sealed)?)
    }
    fn open_pending(&self, p: &StoredPendingLink) -> Result<PendingLinkRecord> {
        Ok(self.portal.open_record(&p.device_id, &p.account, p.version, &p.sealed)?)
    }
    fn update(&self, o: Outcome<()>) -> Result<DeviceUpdate> {
        let (writes, events) = self.seal(&o);
        o.result?;
        Ok(DeviceUpdate { writes, events })
    }
}

/// Result of [`LinkRequest::accept`]: always an answer for the device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AcceptResult {
    /// Send this to the device once `writes` committed (acceptance or a
    /// typed refusal).
    pub answer: String,
    /// True when the link was accepted (also when `repeated`).
    pub accepted: bool,
    /// The same request again (a phone that lost the answer): `answer` is
    /// the original answer, byte for byte, and there is nothing to write.
    pub repeated: bool,
    /// The refusal's code (`TOKEN_UNKNOWN`, `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`,
    /// `DEVICE_ALREADY_LINKED`, `PASSCODE_POLICY`, `INVALID_TIME`).
    pub error_code: Option<String>,
    /// The used offer (update) and the new pending link (insert).
    pub writes: Vec<RecordWrite>,
    /// Events (`link_requested`).
    pub events: Vec<LinkEvent>,
}

/// Result of [`TesseraPortal::confirm_link`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConfirmResult {
    /// True when the device is now linked.
    pub linked: bool,
    /// Why not (`CHECK_CODE_MISMATCH`, `LOCKED_OUT`, `TOKEN_EXPIRED`, `INVALID_STATE`, `INVALID_TIME`).
    pub error_code: Option<String>,
    /// The pending link (attempt counted, or closed) and, when linked, the
    /// new registry entry (insert). Apply them also when refused.
    pub writes: Vec<RecordWrite>,
    /// Events (`device_linked`: send the notification e-mail).
    pub events: Vec<LinkEvent>,
}

/// A rename or unlink: the device row to write and its event.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceUpdate {
    /// The device row (update).
    pub writes: Vec<RecordWrite>,
    /// What happened.
    pub events: Vec<LinkEvent>,
}

/// Result of a device TOTP check.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceTotpCheck {
    /// Accepted.
    pub accepted: bool,
    /// Why not (`OTP_MISMATCH`, `OTP_REPLAYED`, `LOCKED_OUT`, `DEVICE_REVOKED`, `INVALID_TIME`, …).
    pub error_code: Option<String>,
    /// The device row whenever its verifier state changed, accepted or not.
    pub writes: Vec<RecordWrite>,
}

/// A portal identity and its operations.
#[derive(uniffi::Object)]
pub struct TesseraPortal {
    portal: Portal,
}

impl std::fmt::Debug for TesseraPortal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.portal.fmt(f)
    }
}

fn code_of<T>(r: &tessera_core::Result<T>) -> Option<String> {
    r.as_ref().err().map(|e| e.code().as_str().to_owned())
}

#[uniffi::export]
impl TesseraPortal {
    /// A new portal identity (store [`TesseraPortal::secret`] in a secret manager).
    #[uniffi::constructor]
    pub fn generate(name: String) -> Result<Arc<Self>> {
        Ok(Arc::new(TesseraPortal { portal: Portal::generate(&name, &mut OsRandom)? }))
    }

    /// Restore from the 32-byte secret.
    #[uniffi::constructor]
    pub fn from_secret(secret: Vec<u8>, name: String) -> Result<Arc<Self>> {
        Ok(Arc::new(TesseraPortal { portal: Portal::from_secret(&secret, &name)? }))
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> Vec<u8> {
        self.portal.secret().expose().to_vec()
    }

    /// The 33-byte compressed public key (apps that know their portal pin it
    /// when they scan: `portalKey` of `TesseraDevice.scanLinkQr`).
    pub fn public_key(&self) -> Vec<u8> {
        self.portal.public_key().to_vec()
    }

    /// Public key fingerprint (16 hex characters).
    pub fn fingerprint(&self) -> String {
        self.portal.fingerprint()
    }

    /// Display name.
    pub fn name(&self) -> String {
        self.portal.name().to_owned()
    }

    /// A single-use link QR for `account`, valid `ttl` seconds (default 300,
    /// at most 600), with the passcode `rules` (default: exactly 6 digits,
    /// biometrics allowed). Insert the offer (version 1).
    #[uniffi::method(default(ttl = 300))]
    pub fn create_offer(&self, account: String, ttl: u64, rules: PasscodeRules, now: u64) -> Result<LinkOfferCreated> {
        let policy = PasscodePolicy {
            min_len: rules.min_len,
            max_len: rules.max_len,
            digits_only: rules.digits_only,
            allow_biometrics: rules.biometrics_allowed,
        };
        let o = self.portal.create_offer(&account, policy, ttl, now, &mut OsRandom)?;
        Ok(LinkOfferCreated { qr_text: o.qr_text, offer: self.portal.store_offer(&o.record, &mut OsRandom).into() })
    }

    /// Decrypt a device's request; then look up [`LinkRequest::offer_id`]
    /// and whether [`LinkRequest::device_id`] has a pending link or device
    /// row, and accept.
    pub fn open_link_request(&self, request: String) -> Result<Arc<LinkRequest>> {
        Ok(Arc::new(LinkRequest(self.portal.open_link_request(&request)?)))
    }

    /// Check the code the user typed. Never throws for a wrong code: apply
    /// the writes in every case (attempts are counted).
    pub fn confirm_link(&self, pending: StoredPendingLink, code: String, now: u64) -> Result<ConfirmResult> {
        let o = self.portal.confirm_link(&self.open_pending(&pending)?, &code, now);
        let (writes, events) = self.seal(&o);
        Ok(ConfirmResult { linked: o.result.is_ok(), error_code: code_of(&o.result), writes, events })
    }

    /// Rename a device (`INVALID_INPUT` for a bad name).
    pub fn rename_device(&self, device: StoredDevice, name: String, now: u64) -> Result<DeviceUpdate> {
        self.update(self.open_device(&device)?.rename(&name, now))
    }

    /// Unlink a device (no device needed: lost or stolen phone).
    /// `INVALID_STATE` if it is already unlinked.
    pub fn unlink_device(&self, device: StoredDevice, now: u64) -> Result<DeviceUpdate> {
        self.update(self.open_device(&device)?.unlink(now))
    }

    /// The device id a status request claims (to look up its device row,
    /// else its pending link).
    pub fn status_request_device(&self, request: String) -> Result<String> {
        Ok(self.portal.open_status_request(&request)?.device_id().to_owned())
    }

    /// Answer a device's status request from its device row or, for a
    /// device whose link was never confirmed, its pending link. Writes
    /// nothing. Throws `DEVICE_UNKNOWN` (neither row), `MESSAGE_TAMPERED`,
    /// `INVALID_TIME`.
    pub fn answer_status(
        &self,
        request: String,
        device: Option<StoredDevice>,
        pending: Option<StoredPendingLink>,
        now: u64,
    ) -> Result<String> {
        let opened = self.portal.open_status_request(&request)?;
        let device = device.map(|d| self.open_device(&d)).transpose()?;
        let pending = pending.map(|p| self.open_pending(&p)).transpose()?;
        Ok(opened.answer(device.as_ref(), pending.as_ref(), now)?)
    }

    /// Verify a time-based code shown by a linked device; apply the writes in every case.
    pub fn verify_device_totp(&self, device: StoredDevice, code: String, now: u64) -> Result<DeviceTotpCheck> {
        let o = self.open_device(&device)?.verify_totp(&code, now);
        Ok(DeviceTotpCheck { accepted: o.result.is_ok(), error_code: code_of(&o.result), writes: self.seal(&o).0 })
    }
}

/// A new offer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LinkOfferCreated {
    /// Text of the QR code to show.
    pub qr_text: String,
    /// Row to insert (version 1).
    pub offer: StoredOffer,
}

/// An opened link request. Keep it to accept again after a write conflict.
#[derive(Debug, uniffi::Object)]
pub struct LinkRequest(OpenedLinkRequest);

#[uniffi::export]
impl LinkRequest {
    /// Offer the request claims (look it up in your store).
    pub fn offer_id(&self) -> String {
        self.0.offer_id().into()
    }
    /// Requesting device (look up whether a pending link or device row has it).
    pub fn device_id(&self) -> String {
        self.0.device_id().into()
    }
    /// Name the user gave the device.
    pub fn device_name(&self) -> String {
        self.0.device_name().into()
    }

    /// Accept against the stored offer (`null` when none was found) and
    /// whether a pending link or device row (of any account, or its
    /// tombstone) has [`LinkRequest::device_id`], both read from one
    /// snapshot. Apply the writes, then send the answer;
    /// on a conflict read both again and call again. Throws only
    /// `STATE_CORRUPT` (the offer row does not hold its own record).
    pub fn accept(
        &self,
        portal: Arc<TesseraPortal>,
        offer: Option<StoredOffer>,
        device_key_seen: bool,
        now: u64,
    ) -> Result<AcceptResult> {
        let record: Option<LinkOfferRecord> =
            offer.map(|o| portal.portal.open_record(&o.offer_id, &o.account, o.version, &o.sealed)).transpose()?;
        let key_use = if device_key_seen { DeviceKeyUse::Seen } else { DeviceKeyUse::Fresh };
        let out = self.0.accept(&portal.portal, record.as_ref(), key_use, now);
        let (writes, events) = portal.seal(&out.outcome);
        let r = &out.outcome.result;
        Ok(AcceptResult {
            answer: out.answer,
            accepted: r.is_ok(),
            repeated: matches!(r, Ok(Accept::Repeated)),
            error_code: code_of(r),
            writes,
            events,
        })
    }

    /// An authenticated refusal the device shows (`INVALID_INPUT` for a code
    /// that is not in the table). A host that gives up after repeated write
    /// conflicts sends `INTERNAL`, which the phone does not treat as final
    /// (the conflict may be this very request's acceptance on another
    /// server; the phone sends the request again and gets the stored answer).
    pub fn refuse(&self, code: String) -> Result<String> {
        let c = ErrorCode::from_str_code(&code)
            .ok_or_else(|| TesseraError::from_code(ErrorCode::InvalidInput, "unknown error code"))?;
        Ok(self.0.refuse(c))
    }
}
