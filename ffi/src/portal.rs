//! Portal side of linking for JVM and Swift servers: offers, accept,
//! check-code confirmation, registry operations and status answers. Every
//! record crosses as plain columns plus `sealed` bytes; the sealed copy is
//! the truth and is what each operation reads back.

use crate::link::{OsRandom, PasscodeRules};
use crate::{Result, TesseraError};
use std::sync::{Arc, Mutex};
use tessera_core::link::{
    self, DeviceRecord, LinkOfferRecord, OpenedLinkRequest, PasscodePolicy, PendingLinkRecord, Portal, PortalEvent,
};
use tessera_core::ErrorCode;

/// A stored link offer (columns + sealed record).
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
    /// Sealed record (the truth).
    pub sealed: Vec<u8>,
}

/// A stored pending link.
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
    /// No longer usable.
    pub closed: bool,
    /// Sealed record (the truth).
    pub sealed: Vec<u8>,
}

/// Registry status of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceStatus {
    /// Linked and usable.
    Active,
    /// Unlinked by the portal; the device wipes its account on next contact.
    Unlinked,
}

/// A stored registry entry.
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
    /// Sealed record (the truth).
    pub sealed: Vec<u8>,
}

/// Something for the host to act on.
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

impl TesseraPortal {
    fn offer(&self, r: &LinkOfferRecord) -> StoredOffer {
        let s = self.portal.store_offer(r, &mut OsRandom);
        StoredOffer {
            offer_id: s.offer_id,
            account: s.account,
            expires_at: s.expires_at,
            used_at: s.used_at,
            sealed: s.sealed,
        }
    }
    fn pending(&self, r: &PendingLinkRecord) -> StoredPendingLink {
        let s = self.portal.store_pending(r, &mut OsRandom);
        StoredPendingLink {
            device_id: s.device_id,
            account: s.account,
            device_name: s.device_name,
            confirm_by: s.confirm_by,
            attempts: s.attempts,
            closed: s.closed,
            sealed: s.sealed,
        }
    }
    fn device(&self, r: &DeviceRecord) -> StoredDevice {
        let s = self.portal.store_device(r, &mut OsRandom);
        StoredDevice {
            device_id: s.device_id,
            account: s.account,
            name: s.name,
            linked_at: s.linked_at,
            last_used_at: s.last_used_at,
            status: match s.status {
                link::DeviceStatus::Active => DeviceStatus::Active,
                link::DeviceStatus::Unlinked => DeviceStatus::Unlinked,
            },
            sealed: s.sealed,
        }
    }
    fn open_device(&self, d: &StoredDevice) -> Result<DeviceRecord> {
        Ok(self.portal.open_record(&d.sealed)?)
    }
}

/// Result of [`LinkRequest::accept`]: always an answer for the device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AcceptResult {
    /// Send this to the device (acceptance or a typed refusal).
    pub answer: String,
    /// True when the link was accepted.
    pub accepted: bool,
    /// The refusal's code.
    pub error_code: Option<String>,
    /// The offer, now used: store it with a compare-and-set on `used_at IS NULL`.
    pub offer: Option<StoredOffer>,
    /// The pending link to store.
    pub pending: Option<StoredPendingLink>,
    /// Events.
    pub events: Vec<LinkEvent>,
}

/// Result of [`TesseraPortal::confirm_link`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConfirmResult {
    /// True when the device is now linked.
    pub linked: bool,
    /// Why not (`CHECK_CODE_MISMATCH`, `LOCKED_OUT`, `TOKEN_EXPIRED`, `INVALID_STATE`).
    pub error_code: Option<String>,
    /// The pending link to store back (attempts are counted).
    pub pending: StoredPendingLink,
    /// The new registry entry.
    pub device: Option<StoredDevice>,
    /// Events (`device_linked`: send the notification e-mail).
    pub events: Vec<LinkEvent>,
}

/// A device record after an operation, with its event.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceUpdate {
    /// Store this back.
    pub device: StoredDevice,
    /// What happened.
    pub event: LinkEvent,
}

/// A status answer and the updated record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StatusAnswer {
    /// Send this to the device.
    pub answer: String,
    /// Store this back (last use updated).
    pub device: StoredDevice,
}

/// Result of a device TOTP check.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceTotpCheck {
    /// Accepted.
    pub accepted: bool,
    /// Why not (`OTP_MISMATCH`, `OTP_REPLAYED`, `LOCKED_OUT`, `DEVICE_REVOKED`, …).
    pub error_code: Option<String>,
    /// Store this back in every case.
    pub device: StoredDevice,
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

fn code_of(e: &tessera_core::Error) -> Option<String> {
    Some(e.code().as_str().to_owned())
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
    /// biometrics allowed).
    #[uniffi::method(default(ttl = 300))]
    pub fn create_offer(&self, account: String, ttl: u64, rules: PasscodeRules, now: u64) -> Result<LinkOfferCreated> {
        let policy = PasscodePolicy {
            min_len: rules.min_len,
            max_len: rules.max_len,
            digits_only: rules.digits_only,
            allow_biometrics: rules.biometrics_allowed,
        };
        let o = self.portal.create_offer(&account, policy, ttl, now, &mut OsRandom)?;
        Ok(LinkOfferCreated { qr_text: o.qr_text, offer: self.offer(&o.record) })
    }

    /// Decrypt a device's request; then look up [`LinkRequest::offer_id`] and accept.
    pub fn open_link_request(&self, request: String) -> Result<Arc<LinkRequest>> {
        let opened = self.portal.open_link_request(&request)?;
        Ok(Arc::new(LinkRequest {
            request,
            offer_id: opened.offer_id().into(),
            device_id: opened.device_id().into(),
            device_name: opened.device_name().into(),
            inner: Mutex::new(Some(opened)),
        }))
    }

    /// Check the code the user typed. Never throws for a wrong code: store
    /// the returned `pending` in every case.
    pub fn confirm_link(&self, pending: StoredPendingLink, code: String, now: u64) -> Result<ConfirmResult> {
        let mut p: PendingLinkRecord = self.portal.open_record(&pending.sealed)?;
        Ok(match self.portal.confirm_link(&mut p, &code, now) {
            Ok((rec, events)) => ConfirmResult {
                linked: true,
                error_code: None,
                pending: self.pending(&p),
                device: Some(self.device(&rec)),
                events: events.iter().map(event).collect(),
            },
            Err(e) => ConfirmResult {
                linked: false,
                error_code: code_of(&e),
                pending: self.pending(&p),
                device: None,
                events: vec![],
            },
        })
    }

    /// Rename a device.
    pub fn rename_device(&self, device: StoredDevice, name: String, now: u64) -> Result<DeviceUpdate> {
        let mut r = self.open_device(&device)?;
        let e = r.rename(&name, now)?;
        Ok(DeviceUpdate { device: self.device(&r), event: event(&e) })
    }

    /// Unlink a device (no device needed: lost or stolen phone).
    pub fn unlink_device(&self, device: StoredDevice, now: u64) -> Result<DeviceUpdate> {
        let mut r = self.open_device(&device)?;
        let e = r.unlink(now)?;
        Ok(DeviceUpdate { device: self.device(&r), event: event(&e) })
    }

    /// The device id a status request claims (to look up its record).
    pub fn status_request_device(&self, request: String) -> Result<String> {
        Ok(self.portal.open_status_request(&request)?.device_id().to_owned())
    }

    /// Answer a device's status request against its record.
    pub fn answer_status(&self, request: String, device: StoredDevice, now: u64) -> Result<StatusAnswer> {
        let opened = self.portal.open_status_request(&request)?;
        let mut r = self.open_device(&device)?;
        let answer = opened.answer(&mut r, now)?;
        Ok(StatusAnswer { answer, device: self.device(&r) })
    }

    /// Verify a time-based code shown by a linked device; store `device` back in every case.
    pub fn verify_device_totp(&self, device: StoredDevice, code: String, now: u64) -> Result<DeviceTotpCheck> {
        let mut r = self.open_device(&device)?;
        let res = r.verify_totp(&code, now);
        Ok(DeviceTotpCheck {
            accepted: res.is_ok(),
            error_code: res.err().as_ref().and_then(code_of),
            device: self.device(&r),
        })
    }
}

/// A new offer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LinkOfferCreated {
    /// Text of the QR code to show.
    pub qr_text: String,
    /// Record to store.
    pub offer: StoredOffer,
}

/// An opened link request (single use).
#[derive(uniffi::Object)]
pub struct LinkRequest {
    request: String,
    offer_id: String,
    device_id: String,
    device_name: String,
    inner: Mutex<Option<OpenedLinkRequest>>,
}

impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRequest")
            .field("offer_id", &self.offer_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

fn consumed() -> TesseraError {
    TesseraError::from_code(ErrorCode::AlreadyConsumed, "this link request was already answered")
}

#[uniffi::export]
impl LinkRequest {
    /// Offer the request claims (look it up in your store).
    pub fn offer_id(&self) -> String {
        self.offer_id.clone()
    }
    /// Requesting device.
    pub fn device_id(&self) -> String {
        self.device_id.clone()
    }
    /// Name the user gave the device.
    pub fn device_name(&self) -> String {
        self.device_name.clone()
    }

    /// Accept against the stored offer (`None` when none was found). Once.
    pub fn accept(&self, portal: Arc<TesseraPortal>, offer: Option<StoredOffer>, now: u64) -> Result<AcceptResult> {
        // A corrupt stored offer is reported without spending the request.
        let record: Option<LinkOfferRecord> = offer.map(|o| portal.portal.open_record(&o.sealed)).transpose()?;
        let opened = self.inner.lock().map_err(|_| consumed())?.take().ok_or_else(consumed)?;
        let out = opened.accept(&portal.portal, record.as_ref(), now);
        Ok(match out.result {
            Ok(acc) => AcceptResult {
                answer: out.answer,
                accepted: true,
                error_code: None,
                offer: Some(portal.offer(&acc.offer)),
                pending: Some(portal.pending(&acc.pending)),
                events: acc.events.iter().map(event).collect(),
            },
            Err(e) => AcceptResult {
                answer: out.answer,
                accepted: false,
                error_code: code_of(&e),
                offer: None,
                pending: None,
                events: vec![],
            },
        })
    }

    /// An authenticated refusal, also after [`LinkRequest::accept`]: e.g.
    /// `TOKEN_ALREADY_USED` when storing the accepted offer lost a
    /// compare-and-set race against another server.
    pub fn refuse(&self, portal: Arc<TesseraPortal>, code: String) -> Result<String> {
        let c = ErrorCode::from_str_code(&code)
            .ok_or_else(|| TesseraError::from_code(ErrorCode::InvalidInput, "unknown error code"))?;
        Ok(portal.portal.open_link_request(&self.request)?.refuse(&portal.portal, c))
    }
}
