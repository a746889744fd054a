//! Portal side of linking: offers, link requests, check codes, the device
//! registry and status answers. Calls never change what they were given:
//! they return a [`PortalChange`] for the host to apply (`docs/DESIGN.md`,
//! "Host contract").

use crate::{
    ErrorCode, OsRandom, PortalChange, Result, StoredDevice, StoredOffer, StoredPendingLink, TesseraError, Timestamp,
    Verdict,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tessera_core::link::{self, DeviceKeyUse, OpenedLinkRequest, PasscodePolicy};

/// Passcode rules a portal sets for the devices it links.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PasscodeRules {
    /// Minimum length (6..=16, default 6).
    #[cfg_attr(feature = "uniffi", uniffi(default = 6))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub min_len: i32,
    /// Maximum length (default 6).
    #[cfg_attr(feature = "uniffi", uniffi(default = 6))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub max_len: i32,
    /// Digits only (default true).
    #[cfg_attr(feature = "uniffi", uniffi(default = true))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub digits_only: bool,
    /// Biometrics may replace the passcode (default true).
    #[cfg_attr(feature = "uniffi", uniffi(default = true))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub biometrics_allowed: bool,
}

impl Default for PasscodeRules {
    fn default() -> Self {
        PasscodePolicy::default().into()
    }
}

impl From<PasscodePolicy> for PasscodeRules {
    fn from(p: PasscodePolicy) -> Self {
        PasscodeRules {
            min_len: p.min_len.into(),
            max_len: p.max_len.into(),
            digits_only: p.digits_only,
            biometrics_allowed: p.allow_biometrics,
        }
    }
}

impl PasscodeRules {
    pub(crate) fn policy(self) -> Result<PasscodePolicy> {
        let len = |v: i32| {
            u8::try_from(v).map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "passcode lengths are 6 to 16"))
        };
        Ok(PasscodePolicy {
            min_len: len(self.min_len)?,
            max_len: len(self.max_len)?,
            digits_only: self.digits_only,
            allow_biometrics: self.biometrics_allowed,
        })
    }
}

/// Settings of a new link offer.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OfferSettings {
    /// Seconds the QR code stays valid (default 300, at most 600).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub ttl_seconds: Option<i64>,
    /// Passcode rules (default: exactly 6 digits, biometrics allowed).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub rules: Option<PasscodeRules>,
    /// The time-based codes the device will show (default TOTP-SHA256,
    /// 6 digits, 30 s).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device_codes: Option<crate::DeviceCodeRules>,
}

impl OfferSettings {
    pub(crate) fn options(&self) -> Result<link::OfferOptions> {
        let ttl = match self.ttl_seconds {
            None => link::DEFAULT_OFFER_TTL,
            Some(t) => u64::try_from(t).map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "ttl is negative"))?,
        };
        Ok(link::OfferOptions {
            policy: self.rules.unwrap_or_default().policy()?,
            ttl,
            totp: self.device_codes.unwrap_or_default().policy()?,
        })
    }
}

/// A new offer: show `qr_text`, store the change (it inserts the offer).
/// `Debug` leaves the QR text out: whoever reads it can use the offer.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkOffer {
    /// Text of the QR code (`qr_svg` draws it).
    pub qr_text: String,
    /// Offer id (the row's key).
    pub offer_id: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Inserts the offer row.
    pub change: PortalChange,
}

impl std::fmt::Debug for LinkOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOffer")
            .field("offer_id", &self.offer_id)
            .field("expires_at", &self.expires_at)
            .field("change", &self.change)
            .finish_non_exhaustive()
    }
}

/// What the host read for a link request, from one snapshot.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkLookup {
    /// The offer row with [`LinkRequest::offer_id`], if any.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub offer: Option<StoredOffer>,
    /// Whether any pending-link or device row (of any account, tombstones
    /// included) has [`LinkRequest::device_id`]: a device key links once.
    /// Required in every language (no default), so that a host cannot
    /// forget the lookup.
    pub device_key_seen: bool,
}

/// The portal's answer to a link request.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkAnswer {
    /// Accepted, repeated or refused (the device learns the refusal from `answer`).
    pub verdict: Verdict,
    /// Send this to the device once `change` committed.
    pub answer: String,
    /// Send this instead when `change` could not be committed (the host
    /// gave up after repeated conflicts): the device keeps its request and
    /// sends it again.
    pub if_not_stored: String,
    /// The used offer (update) and the new pending link (insert).
    pub change: PortalChange,
}

/// The verdict on a typed check code.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkConfirmation {
    /// Accepted (the device is linked) or refused: `CHECK_CODE_MISMATCH`,
    /// `LOCKED_OUT`, `TOKEN_EXPIRED`, `TOKEN_UNKNOWN`, and for
    /// `confirmWithAuthenticator` also `INVALID_ANSWER`, `INVALID_STATE`,
    /// `INVALID_INPUT`, `DEVICE_CLONED`, `DEVICE_REVOKED`. A clock outside
    /// the years 2000 to 3000 throws `INVALID_TIME` (nothing counted).
    pub verdict: Verdict,
    /// The new registry row when accepted.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device: Option<StoredDevice>,
    /// Store it in every case: attempts are counted.
    pub change: PortalChange,
}

/// The verdict on a one-time code.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeCheck {
    /// Accepted or refused (`OTP_MISMATCH`, `OTP_REPLAYED`, `LOCKED_OUT`, `DEVICE_REVOKED`, …).
    pub verdict: Verdict,
    /// The matched time step when accepted.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub matched: Option<i64>,
    /// Signed distance of the match from the current step (0 when refused).
    pub drift: i64,
    /// Store it in every case (replay and lockout state).
    pub change: PortalChange,
}

/// The rows a status request needs (from one snapshot).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusLookup {
    /// The device row with that id, if any.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device: Option<StoredDevice>,
    /// Else its pending link, if any.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub pending: Option<StoredPendingLink>,
}

/// A portal identity and its operations.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct Portal {
    pub(crate) core: link::Portal,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Portal {
    /// A new portal identity (keep [`Portal::secret`] in a secret manager).
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn generate(name: String) -> Result<Self> {
        Ok(Portal { core: link::Portal::generate(&name, &mut OsRandom)? })
    }

    /// Restore from the 32-byte secret.
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn from_secret(secret: Vec<u8>, name: String) -> Result<Self> {
        let secret = zeroize::Zeroizing::new(secret);
        Ok(Portal { core: link::Portal::from_secret(&secret, &name)? })
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> Vec<u8> {
        self.core.secret().expose().to_vec()
    }

    /// The 33-byte public key (apps that know their portal pin it when they scan).
    pub fn public_key(&self) -> Vec<u8> {
        self.core.public_key().to_vec()
    }

    /// Public key fingerprint (16 hex characters).
    pub fn fingerprint(&self) -> String {
        self.core.fingerprint()
    }

    /// Display name.
    pub fn name(&self) -> String {
        self.core.name().to_owned()
    }

    /// A single-use link QR code for `account`.
    pub fn create_offer(&self, account: String, settings: OfferSettings, now: Timestamp) -> Result<LinkOffer> {
        let o = self.core.create_offer_with(&account, settings.options()?, now.secs(), &mut OsRandom)?;
        Ok(self.offer_of(o))
    }

    /// Decrypt a device's link request; then read the offer with
    /// [`LinkRequest::offer_id`] and whether [`LinkRequest::device_id`] was
    /// seen, and [`LinkRequest::accept`].
    pub fn open_link_request(self: Arc<Self>, request: String) -> Result<Arc<LinkRequest>> {
        let opened = self.core.open_link_request(&request)?;
        Ok(Arc::new(LinkRequest { portal: self, opened }))
    }

    /// Check the code the user typed against every link of one account
    /// waiting for its code (`pendings`, read from one snapshot; empty:
    /// `TOKEN_UNKNOWN`). The matching link is confirmed; a wrong code counts
    /// against each of them.
    pub fn confirm_link(
        &self,
        pendings: Vec<StoredPendingLink>,
        code: String,
        now: Timestamp,
    ) -> Result<LinkConfirmation> {
        let records = pendings.iter().map(|p| self.open_pending(p)).collect::<Result<Vec<_>>>()?;
        let o = self.core.confirm_any(&records, &code, now.secs());
        self.confirmation(&o)
    }
    /// Rename a device (`INVALID_INPUT` for a bad name, `INVALID_STATE` once unlinked).
    pub fn rename_device(&self, device: StoredDevice, name: String, now: Timestamp) -> Result<PortalChange> {
        let o = self.open_device(&device)?.rename(&name, now.secs());
        o.result.clone()?;
        Ok(self.change(&o))
    }

    /// Unlink a device; no device needed (lost or stolen phone).
    /// `INVALID_STATE` if it is already unlinked.
    pub fn unlink_device(&self, device: StoredDevice, now: Timestamp) -> Result<PortalChange> {
        let o = self.open_device(&device)?.unlink(now.secs());
        o.result.clone()?;
        Ok(self.change(&o))
    }

    /// The device id a status request claims: read its device row, else its
    /// pending link, then [`Portal::answer_status`].
    pub fn status_request_device(&self, request: String) -> Result<String> {
        Ok(self.core.open_status_request(&request)?.device_id().to_owned())
    }

    /// Answer a device's status request. Writes nothing. Throws
    /// `DEVICE_UNKNOWN` (neither row), `MESSAGE_TAMPERED`, `INVALID_TIME`.
    pub fn answer_status(&self, request: String, lookup: StatusLookup, now: Timestamp) -> Result<String> {
        let opened = self.core.open_status_request(&request)?;
        let device = lookup.device.map(|d| self.open_device(&d)).transpose()?;
        let pending = lookup.pending.map(|p| self.open_pending(&p)).transpose()?;
        Ok(opened.answer(&self.core, device.as_ref(), pending.as_ref(), now.secs())?)
    }

    /// Verify a time-based code shown by a linked device.
    pub fn verify_device_code(&self, device: StoredDevice, code: String, now: Timestamp) -> Result<CodeCheck> {
        let o = self.open_device(&device)?.verify_totp(&code, now.secs());
        let (matched, drift) = crate::otp::matched(&o.result);
        Ok(CodeCheck { verdict: Verdict::judged(&o.result)?, matched, drift, change: self.change(&o) })
    }
}

impl Portal {
    /// The host shape of a new core offer.
    pub(crate) fn offer_of(&self, o: link::LinkOfferQr) -> LinkOffer {
        let change = self.change(&tessera_core::host::Outcome {
            writes: vec![tessera_core::host::Write::Offer(o.record.clone())],
            events: vec![],
            result: Ok(()),
        });
        LinkOffer {
            qr_text: o.qr_text,
            offer_id: o.record.offer_id.clone(),
            expires_at: Timestamp::from_secs(o.record.expires_at),
            change,
        }
    }

    /// The host shape of a confirmation outcome.
    pub(crate) fn confirmation(&self, o: &tessera_core::host::Outcome<link::DeviceRecord>) -> Result<LinkConfirmation> {
        let change = self.change(o);
        // The new registry row is the device insert (a vouched link also
        // updates the authenticator's row).
        let device = o.result.as_ref().ok().and_then(|_| {
            change.writes.iter().find_map(|w| match w {
                crate::RecordWrite::Device { row, expected_version: None } => Some(row.clone()),
                _ => None,
            })
        });
        Ok(LinkConfirmation { verdict: Verdict::judged(&o.result)?, device, change })
    }
}

/// An opened link request, bound to the portal that opened it. Keep it to
/// accept again after a write conflict.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
#[derive(Debug)]
pub struct LinkRequest {
    portal: Arc<Portal>,
    opened: OpenedLinkRequest,
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl LinkRequest {
    /// The offer it claims (read that row).
    pub fn offer_id(&self) -> String {
        self.opened.offer_id().to_owned()
    }

    /// The requesting device (is it known in any pending-link or device row?).
    pub fn device_id(&self) -> String {
        self.opened.device_id().to_owned()
    }

    /// The name the user gave the device.
    pub fn device_name(&self) -> String {
        self.opened.device_name().to_owned()
    }

    /// Decide, from the rows the host read in one snapshot. Store the
    /// change, then send `answer` (or `if_not_stored` when the change could
    /// not be stored). Throws only `STATE_CORRUPT`.
    pub fn accept(&self, lookup: LinkLookup, now: Timestamp) -> Result<LinkAnswer> {
        let portal = &self.portal;
        let offer = lookup.offer.map(|o| portal.open_offer(&o)).transpose()?;
        let key_use = if lookup.device_key_seen { DeviceKeyUse::Seen } else { DeviceKeyUse::Fresh };
        let out = self.opened.accept(&portal.core, offer.as_ref(), key_use, now.secs());
        let verdict = match &out.outcome.result {
            Ok(link::Accept::Repeated) => Verdict::Repeated,
            r => Verdict::of(r),
        };
        Ok(LinkAnswer {
            verdict,
            answer: out.answer,
            if_not_stored: out.if_not_stored,
            change: portal.change(&out.outcome),
        })
    }
}
