//! Linking a device by single-use QR code (flow 1), both sides: the device
//! (`TesseraDevice`, `PendingLink`; mirrors `ffi/src/link.rs`) and the portal
//! (`TesseraPortal`, `LinkRequest`), plus `linkQrSvg` to draw the QR code.
//!
//! Glue only: every rule is in `tessera_core::link` and `tessera_core::host`.
//! Portal records cross as plain JSON-able rows (`Stored*`): the query
//! columns, `version`, and `sealed` (the whole record sealed under the
//! portal's storage key, base64url). A row is read back from its key,
//! `account`, `version` and `sealed`, which the seal binds together. State
//! changes come back as `writes`, versioned compare-and-sets the host
//! applies in one transaction (`docs/DESIGN.md`, "Host contract").

use crate::{
    from_u64, given, invalid, js_error, new_object, set, thrown, to_bool, to_bytes, to_string, to_u64, JsObject,
    JsResult, MAX_SAFE_INTEGER,
};
use js_sys::{Array, Uint8Array};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use std::rc::Rc;
use tessera_core::crypto::RandomSource;
use tessera_core::encoding::{base64url_decode_as, base64url_encode};
use tessera_core::host::Outcome;
use tessera_core::link::{
    self, Accept, DeviceKeyUse, DeviceRecord, DeviceState, LinkOfferRecord, LinkStatus, PasscodePolicy,
    PendingDeviceLink, PendingLinkRecord, Portal, PortalEvent, PortalRecord, ScannedOffer, StoredDevice, StoredOffer,
    StoredPendingLink, StoredWrite, UserFactor,
};
use tessera_core::{ErrorCode, SecretBytes};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

#[wasm_bindgen(typescript_custom_section)]
const TS_LINK_TYPES: &'static str = r#"
/** Passcode rules a portal announces in its link QR code. */
export interface PasscodeRules {
  /** Minimum length in characters (6..=16). */
  minLen: number;
  /** Maximum length in characters (minLen..=16). */
  maxLen: number;
  /** Digits 0-9 only. */
  digitsOnly: boolean;
  /** The device may offer biometrics instead of the passcode. */
  biometricsAllowed: boolean;
}

/** What a scanned link QR code says: show it before linking. */
export interface LinkOfferInfo {
  /** Portal name ("Link this phone to …?"). */
  portalName: string;
  /** Portal key fingerprint (16 hex characters). */
  portalFingerprint: string;
  /** Expiry, unix seconds. */
  expiresAt: number;
  /** Rules to enforce while the user chooses a passcode. */
  passcodeRules: PasscodeRules;
}

/** Options of `TesseraDevice.scanLinkQr`. */
export interface ScanOptions {
  /**
   * For apps that know their portal: its 33-byte `TesseraPortal.publicKey()`.
   * A QR code carrying another key (a look-alike) throws `WRONG_ACCOUNT`.
   */
  pinnedPortalKey?: Uint8Array | null;
}

/** Public facts of the account a device holds. */
export interface LinkedAccount {
  portalName: string;
  portalFingerprint: string;
  account: string;
  /** Device id (16 hex characters), as the portal lists it. */
  deviceId: string;
  deviceName: string;
  /** When the portal accepted the link (unix seconds). */
  linkedAt: number;
  /** Deadline to type the check code on the portal (unix seconds). */
  confirmBy: number;
  biometrics: boolean;
}

/** Input of `TesseraDevice.startLink`. */
export interface LinkStartParams {
  /** The scanned QR text (`TS:…`). */
  qrText: string;
  /** Name the user gives the device ("Anna's Pixel"), 1..=64 bytes. */
  deviceName: string;
  /** The passcode the user chose (checked against the portal's rules). */
  passcode: string;
  /** Offer biometrics (default false). */
  biometrics?: boolean;
  /** The stored device state, if any: a device holds one account. */
  currentState?: Uint8Array | null;
  /** As in `scanLinkQr`: the portal key the QR code must carry (`WRONG_ACCOUNT`). */
  pinnedPortalKey?: Uint8Array | null;
  /** Unix seconds. */
  now: number;
}

/** Result of `TesseraDevice.startLink`. */
export interface LinkStart {
  /** Text to send to the portal (`pending.request()` gives it again). */
  request: string;
  /** The link in progress (save `pending.sealed()` if the app may stop). */
  pending: PendingLink;
  /** With biometrics on: 32 bytes to keep behind biometrics in the platform keystore. */
  biometricSecret?: Uint8Array;
}

/** Result of `PendingLink.finish`. */
export interface LinkFinish {
  /** The sealed device state to store (replaces the pending link). */
  state: Uint8Array;
  /** Check code to show; the user types it on the portal. */
  checkCode: string;
  account: LinkedAccount;
}

/** How the user unlocks the device's answering secret: exactly one of the two. */
export type Unlock = { passcode: string } | { biometricSecret: Uint8Array };

/** Result of `TesseraDevice.statusRequest`. */
export interface StatusCheck {
  /** Text to send to the portal. */
  request: string;
  /** Keep it to read the answer (single use). */
  probe: StatusProbe;
}

/**
 * What the portal said about this device's link (`readStatusAnswer`):
 * linked, or linked on the device and waiting for the check code to be typed.
 */
export type LinkStatus = "active" | "awaiting_confirmation";

/** Input of `TesseraPortal.createOffer`. */
export interface LinkOfferParams {
  /** Account the QR code links to (1..=128 bytes). */
  account: string;
  /** Lifetime in seconds, 1..=600 (default 300). */
  ttl?: number;
  /** Passcode rules; each field defaults to 6 digits exactly, biometrics allowed. */
  passcode?: Partial<PasscodeRules>;
  /** Unix seconds. */
  now: number;
}

/** Result of `TesseraPortal.createOffer`. */
export interface LinkOffer {
  /** Text of the QR code to show (`linkQrSvg(qrText)` draws it). */
  qrText: string;
  /** Row to INSERT, keyed by `offerId` (version 1). */
  offer: StoredOffer;
}

/**
 * A stored link offer. Stored rows are plain JSON: the columns to query,
 * `version` (1 when created, +1 on every change) and `sealed` (base64url),
 * the whole record sealed under the portal's key. The SDK reads a row from
 * its key (`offerId` / `deviceId`), `account`, `version` and `sealed`: the
 * seal binds them, so a changed `sealed`, or a row moved to another key,
 * account or version, is `STATE_CORRUPT`. Other columns are for queries only.
 */
export interface StoredOffer {
  offerId: string;
  account: string;
  expiresAt: number;
  /** When a device used it (single use), else null. */
  usedAt: number | null;
  version: number;
  sealed: string;
}

/** A stored pending link (keyed by `deviceId`): a device waiting for its check code. */
export interface StoredPendingLink {
  deviceId: string;
  account: string;
  deviceName: string;
  /** Deadline for the check code. */
  confirmBy: number;
  /** Wrong check codes so far. */
  attempts: number;
  /** Confirmed, cancelled or locked: no longer usable. */
  closed: boolean;
  version: number;
  sealed: string;
}

/** Registry status of a device. */
export type DeviceStatus = "active" | "unlinked";

/** A stored registry entry (one linked device, keyed by `deviceId`). */
export interface StoredDevice {
  deviceId: string;
  account: string;
  name: string;
  linkedAt: number;
  lastUsedAt: number | null;
  status: DeviceStatus;
  version: number;
  sealed: string;
}

/**
 * One compare-and-set on (`key`, version) in the table of `kind`:
 * `expectedVersion === null`: INSERT `row` (fails if a row with `key` exists);
 * otherwise UPDATE to `row` WHERE key = `key` AND version = `expectedVersion`
 * (fails if no row matched). Apply all writes of one result in one
 * transaction, before sending its answer or acting on it; if any write
 * fails, roll back, read the rows again and repeat the call.
 */
export type StoredWrite =
  | { kind: "offer"; key: string; version: number; expectedVersion: number | null; row: StoredOffer }
  | { kind: "pendingLink"; key: string; version: number; expectedVersion: number | null; row: StoredPendingLink }
  | { kind: "device"; key: string; version: number; expectedVersion: number | null; row: StoredDevice };

/** What happened, for the host to act on (notification e-mail, audit log) once the writes committed. */
export type PortalEvent =
  | { type: "linkRequested"; account: string; deviceId: string; deviceName: string; at: number }
  | { type: "deviceLinked"; account: string; deviceId: string; deviceName: string; at: number }
  | { type: "deviceRenamed"; account: string; deviceId: string; name: string; at: number }
  | { type: "deviceUnlinked"; account: string; deviceId: string; at: number };

/** What a state-changing portal call decided: writes to apply atomically, then events. */
export interface PortalOutcome {
  /** Compare-and-set writes, all or nothing (may be empty). */
  writes: StoredWrite[];
  events: PortalEvent[];
}

/**
 * Whether the requesting device's id is already in use: "seen" if a
 * pending link or a device row (of any account) has `LinkRequest.deviceId`,
 * else "fresh". One device key links to one account.
 */
export type DeviceKeyUse = "fresh" | "seen";

/** Result of `LinkRequest.accept`: always an answer for the device, sent once the writes committed. */
export interface LinkAcceptResult extends PortalOutcome {
  /** Text to send back to the device (acceptance or an authenticated refusal). */
  answer: string;
  accepted: boolean;
  /** The same request again (a retry): `answer` is the original answer byte for byte, no writes. */
  repeated: boolean;
  /** Why not: "TOKEN_UNKNOWN", "TOKEN_ALREADY_USED", "TOKEN_EXPIRED", "DEVICE_ALREADY_LINKED", "PASSCODE_POLICY", "INVALID_TIME". */
  errorCode?: TesseraErrorCode;
}

/** Result of `TesseraPortal.confirmLink`. Apply `writes` in every case (wrong codes are counted). */
export interface LinkConfirmResult extends PortalOutcome {
  linked: boolean;
  /** "CHECK_CODE_MISMATCH", "LOCKED_OUT" (5th wrong code), "TOKEN_EXPIRED", "INVALID_STATE" (closed), "INVALID_TIME". */
  errorCode?: TesseraErrorCode;
}

/** Result of `TesseraPortal.verifyDeviceTotp`. Apply `writes` in every case (failures are counted). */
export interface DeviceTotpCheck extends PortalOutcome {
  accepted: boolean;
  /** "OTP_MISMATCH", "OTP_REPLAYED", "LOCKED_OUT", "DEVICE_REVOKED", "INVALID_INPUT", "INVALID_TIME". */
  errorCode?: TesseraErrorCode;
}

/** The rows `TesseraPortal.answerStatus` answers from: the device row with the request's `deviceId`, else its pending link. */
export interface StatusRecords {
  device?: StoredDevice | null;
  pending?: StoredPendingLink | null;
}
"#;

// ---------------------------------------------------------------- helpers

/// `crypto.getRandomValues` as a core [`RandomSource`]. The trait cannot
/// fail, so a failure is remembered and [`with_rng`] discards the output.
struct WasmRandom {
    failed: bool,
}

impl RandomSource for WasmRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if getrandom::fill(dest).is_err() {
            dest.fill(0);
            self.failed = true;
        }
    }
}

/// Run `f` with the platform CSPRNG; `INTERNAL` if it failed at any point.
fn with_rng<T>(f: impl FnOnce(&mut dyn RandomSource) -> T) -> JsResult<T> {
    let mut rng = WasmRandom { failed: false };
    let out = f(&mut rng);
    if rng.failed {
        return Err(js_error(ErrorCode::Internal, "the system random generator failed"));
    }
    Ok(out)
}

/// A time going out: a date past 2^53-1 seconds cannot come from valid
/// input and is clamped (like `lockedUntil`).
fn time_out(t: u64) -> f64 {
    t.min(MAX_SAFE_INTEGER) as f64
}

fn opt_time(t: Option<u64>) -> JsValue {
    t.map_or(JsValue::NULL, |t| JsValue::from_f64(time_out(t)))
}

fn key32(v: &JsValue) -> JsResult<Zeroizing<[u8; 32]>> {
    let b = to_bytes(v, "storageKey")?;
    let k: [u8; 32] = b.expose().try_into().map_err(|_| invalid("storageKey must be 32 bytes"))?;
    Ok(Zeroizing::new(k))
}

fn consumed(what: &str) -> JsValue {
    js_error(ErrorCode::AlreadyConsumed, &format!("this {what} was already used; start again"))
}

/// Read a link QR code, pinned to a portal key when one is given.
fn scan(qr_text: &str, pinned: Option<SecretBytes>, now: u64) -> JsResult<ScannedOffer> {
    match pinned {
        Some(key) => link::scan_link_qr_pinned(qr_text, key.expose(), now),
        None => link::scan_link_qr(qr_text, now),
    }
    .map_err(thrown)
}

// ----------------------------------------------------------------- device

fn rules_to_js(p: &PasscodePolicy) -> JsValue {
    let o = new_object();
    set(&o, "minLen", p.min_len);
    set(&o, "maxLen", p.max_len);
    set(&o, "digitsOnly", p.digits_only);
    set(&o, "biometricsAllowed", p.allow_biometrics);
    o
}

fn account_to_js(i: &link::DeviceInfo) -> JsValue {
    let o = new_object();
    set(&o, "portalName", i.portal_name.as_str());
    set(&o, "portalFingerprint", i.portal_fingerprint.as_str());
    set(&o, "account", i.account.as_str());
    set(&o, "deviceId", i.device_id.as_str());
    set(&o, "deviceName", i.device_name.as_str());
    set(&o, "linkedAt", time_out(i.linked_at));
    set(&o, "confirmBy", time_out(i.confirm_by));
    set(&o, "biometrics", i.biometrics);
    o
}

/// A fresh 32-byte storage key for `new TesseraDevice(key)`; keep it in the
/// platform keystore (it seals every blob the device stores).
/// @throws {TesseraError} `INTERNAL` when no CSPRNG is available.
#[wasm_bindgen(js_name = newStorageKey)]
pub fn new_storage_key() -> JsResult<Uint8Array> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut k[..]).map_err(|_| js_error(ErrorCode::Internal, "the system random generator failed"))?;
    Ok(Uint8Array::from(&k[..]))
}

/// The device side of linking, bound to the app's 32-byte storage key.
///
/// The app keeps the key in the platform keystore and stores the sealed
/// blobs this API returns: a pending link between request and answer, then
/// the device state (one account).
#[wasm_bindgen]
pub struct TesseraDevice {
    key: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for TesseraDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TesseraDevice(<key redacted>)")
    }
}

impl TesseraDevice {
    fn state(&self, v: &JsValue) -> JsResult<DeviceState> {
        let sealed = to_bytes(v, "state")?;
        DeviceState::open(&self.key, sealed.expose()).map_err(thrown)
    }
}

#[wasm_bindgen]
impl TesseraDevice {
    /// A device bound to a 32-byte storage key (see `newStorageKey()`).
    /// @throws {TesseraError} `INVALID_INPUT` unless the key is a 32-byte Uint8Array.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")] storage_key: &JsValue,
    ) -> JsResult<TesseraDevice> {
        Ok(TesseraDevice { key: key32(storage_key)? })
    }

    /// Read a scanned QR text at unix time `now`, to show the portal name
    /// and the passcode rules before linking. With `pinnedPortalKey` (an app
    /// that knows its portal) a QR code carrying another key is refused.
    /// @throws {TesseraError} `MALFORMED_MESSAGE` (not a Tessera QR code), `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`, `TOKEN_EXPIRED`, `WRONG_ACCOUNT` (not the pinned portal), `INVALID_TIME` (`now` not in unix seconds of the years 2000..3000).
    #[wasm_bindgen(js_name = scanLinkQr, unchecked_return_type = "LinkOfferInfo")]
    pub fn scan_link_qr(
        &self,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ScanOptions")] options: Option<JsValue>,
    ) -> JsResult<JsValue> {
        let qr_text = to_string(qr_text, "qrText")?;
        let now = to_u64(now, "now")?;
        let pinned = match given(options) {
            Some(v) => JsObject::new(&v, "options")?.get_bytes("pinnedPortalKey")?,
            None => None,
        };
        let o = scan(&qr_text, pinned, now)?;
        let out = new_object();
        set(&out, "portalName", o.portal_name.as_str());
        set(&out, "portalFingerprint", o.portal_fingerprint.as_str());
        set(&out, "expiresAt", time_out(o.expires_at));
        set(&out, "passcodeRules", rules_to_js(&o.policy));
        Ok(out)
    }

    /// Start linking with a scanned QR text: checks the device holds no
    /// account (`currentState`), the passcode against the portal's rules,
    /// and encrypts the request to the portal.
    /// @throws {TesseraError} `DEVICE_ALREADY_LINKED`, `WEAK_PASSCODE`, `PASSCODE_POLICY`, `TOKEN_EXPIRED`, `INVALID_INPUT` (device name), and the errors of `scanLinkQr` (`WRONG_ACCOUNT` with `pinnedPortalKey`).
    #[wasm_bindgen(js_name = startLink, unchecked_return_type = "LinkStart")]
    pub fn start_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "LinkStartParams")] params: &JsValue,
    ) -> JsResult<JsValue> {
        let p = JsObject::new(params, "params")?;
        let qr_text = to_string(&p.require("qrText")?, &p.path("qrText"))?;
        let device_name = to_string(&p.require("deviceName")?, &p.path("deviceName"))?;
        let passcode = Zeroizing::new(to_string(&p.require("passcode")?, &p.path("passcode"))?);
        let biometrics = to_bool(p.get("biometrics")?, &p.path("biometrics"), false)?;
        let already_linked = p.get_bytes("currentState")?.is_some();
        let pinned = p.get_bytes("pinnedPortalKey")?;
        let now = to_u64(&p.require("now")?, &p.path("now"))?;
        let offer = scan(&qr_text, pinned, now)?;
        let s =
            with_rng(|rng| link::start_link(&offer, &device_name, &passcode, biometrics, already_linked, now, rng))?
                .map_err(thrown)?;
        let out = new_object();
        set(&out, "request", s.request.as_str());
        set(&out, "pending", PendingLink { key: self.key.clone(), inner: Some(s.pending) });
        if let Some(b) = &s.biometric_secret {
            set(&out, "biometricSecret", Uint8Array::from(b.expose()));
        }
        Ok(out)
    }

    /// Restore a pending link saved with `PendingLink.sealed()`.
    /// @throws {TesseraError} `STATE_CORRUPT` (changed, or sealed under another key).
    #[wasm_bindgen(js_name = openPendingLink)]
    pub fn open_pending_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] sealed: &JsValue,
    ) -> JsResult<PendingLink> {
        let sealed = to_bytes(sealed, "sealed")?;
        let p = PendingDeviceLink::open(&self.key, sealed.expose()).map_err(thrown)?;
        Ok(PendingLink { key: self.key.clone(), inner: Some(p) })
    }

    /// Facts of the linked account in `state`.
    /// @throws {TesseraError} `STATE_CORRUPT`.
    #[wasm_bindgen(unchecked_return_type = "LinkedAccount")]
    pub fn account(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue) -> JsResult<JsValue> {
        Ok(account_to_js(self.state(state)?.info()))
    }

    /// The device's time-based code at unix `now` (flow 5). A wrong
    /// passcode gives a wrong code that only the portal can detect.
    /// @throws {TesseraError} `STATE_CORRUPT`, `INVALID_INPUT` (unlock not exactly one of passcode / 32-byte biometricSecret), `INVALID_TIME`.
    #[wasm_bindgen]
    pub fn totp(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "Unlock")] unlock: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<String> {
        let u = JsObject::new(unlock, "unlock")?;
        let passcode = u.get_string("passcode")?.map(Zeroizing::new);
        let bio = u.get_bytes("biometricSecret")?;
        let now = to_u64(now, "now")?;
        let st = self.state(state)?;
        let factor = match (&passcode, &bio) {
            (Some(p), None) => UserFactor::Passcode(p),
            (None, Some(b)) => UserFactor::Biometric(b.expose()),
            _ => return Err(invalid("unlock must have exactly one of passcode or biometricSecret")),
        };
        st.totp(factor, now).map_err(thrown)
    }

    /// A status request (does the portal still list this device?). Send
    /// `request`, keep `probe` to read the answer.
    /// @throws {TesseraError} `STATE_CORRUPT`, `INVALID_TIME`.
    #[wasm_bindgen(js_name = statusRequest, unchecked_return_type = "StatusCheck")]
    pub fn status_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let now = to_u64(now, "now")?;
        let st = self.state(state)?;
        let (request, probe) = with_rng(|rng| st.status_request(now, rng))?.map_err(thrown)?;
        let out = new_object();
        set(&out, "request", request);
        set(&out, "probe", StatusProbe(probe));
        Ok(out)
    }

    /// Read the portal's status answer with the probe of the request
    /// (single use): `"active"`, or `"awaiting_confirmation"` while the
    /// check code has not been typed on the portal. Throws `DEVICE_REVOKED`
    /// (the portal unlinked this device) or `LINK_NOT_CONFIRMED` (the check
    /// code was never typed in time, or too many wrong ones): delete the
    /// state (and biometric secret); the user may link again.
    /// @throws {TesseraError} `DEVICE_REVOKED`, `LINK_NOT_CONFIRMED`, `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, `STATE_CORRUPT`, `ALREADY_CONSUMED` (probe used).
    #[wasm_bindgen(js_name = readStatusAnswer, unchecked_return_type = "LinkStatus")]
    pub fn read_status_answer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "StatusProbe")] probe: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] answer: &JsValue,
    ) -> JsResult<String> {
        let answer = to_string(answer, "answer")?;
        let st = self.state(state)?;
        // Last: taking the probe out of its JS object consumes it.
        let probe = take_probe(probe)?;
        Ok(match st.read_status_answer(&probe.0, &answer).map_err(thrown)? {
            LinkStatus::Active => "active",
            LinkStatus::AwaitingConfirmation => "awaiting_confirmation",
        }
        .to_owned())
    }

    /// Unlink locally: checks `state` is this device's and returns its
    /// account facts; the app then deletes the state and the biometric
    /// secret. (The portal lists the device until it is removed there.)
    /// @throws {TesseraError} `STATE_CORRUPT`.
    #[wasm_bindgen(js_name = unlinkLocally, unchecked_return_type = "LinkedAccount")]
    pub fn unlink_locally(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue,
    ) -> JsResult<JsValue> {
        self.account(state)
    }
}

/// A link in progress on the device (single use: a successful `finish`, or
/// the portal's refusal, spends it).
#[wasm_bindgen]
pub struct PendingLink {
    key: Zeroizing<[u8; 32]>,
    inner: Option<PendingDeviceLink>,
}

impl core::fmt::Debug for PendingLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PendingLink(<redacted>)")
    }
}

#[wasm_bindgen]
impl PendingLink {
    /// Not constructible from JavaScript: use TesseraDevice.startLink or openPendingLink. Throws `INVALID_STATE`.
    #[wasm_bindgen(constructor)]
    pub fn new_unavailable() -> Result<PendingLink, JsValue> {
        Err(crate::js_error(
            ErrorCode::InvalidState,
            "PendingLink is not constructible: use TesseraDevice.startLink or openPendingLink",
        ))
    }

    /// Sealed copy to store while waiting for the portal's answer (reopen it
    /// with `TesseraDevice.openPendingLink`).
    /// @throws {TesseraError} `ALREADY_CONSUMED` after `finish`.
    pub fn sealed(&self) -> JsResult<Uint8Array> {
        let p = self.inner.as_ref().ok_or_else(|| consumed("pending link"))?;
        let sealed = with_rng(|rng| p.seal(&self.key, rng))?;
        Ok(Uint8Array::from(&sealed[..]))
    }

    /// The request of `startLink`, byte for byte: send it again when the
    /// portal's answer was lost (the portal answers a repeat with the same
    /// answer).
    /// @throws {TesseraError} `ALREADY_CONSUMED` after `finish`.
    pub fn request(&self) -> JsResult<String> {
        Ok(self.inner.as_ref().ok_or_else(|| consumed("pending link"))?.request().to_owned())
    }

    /// Finish with the portal's answer (once; `ALREADY_CONSUMED` after).
    /// Throws the portal's refusal (`TOKEN_ALREADY_USED`, …), which spends
    /// the link. A damaged or forged answer (`MESSAGE_TAMPERED`,
    /// `MALFORMED_MESSAGE`, …) does not: finish again with the genuine one;
    /// nor does the portal's own fault (`INVALID_TIME`, `INTERNAL`): send
    /// `request()` again later.
    /// @throws {TesseraError} `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`, `TOKEN_UNKNOWN`, `DEVICE_ALREADY_LINKED`, `PASSCODE_POLICY`, `INVALID_STATE` (another refusal), `INVALID_TIME`, `INTERNAL`, `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `ALREADY_CONSUMED`.
    #[wasm_bindgen(unchecked_return_type = "LinkFinish")]
    pub fn finish(&mut self, #[wasm_bindgen(unchecked_param_type = "string")] answer: &JsValue) -> JsResult<JsValue> {
        let answer = to_string(answer, "answer")?;
        let p = self.inner.clone().ok_or_else(|| consumed("pending link"))?;
        // On a random-generator failure nothing was decided: keep the link.
        match with_rng(|rng| link::finish_link(p, &answer, &self.key, rng))? {
            Ok(l) => {
                self.inner = None;
                let out = new_object();
                set(&out, "state", Uint8Array::from(&l.state[..]));
                set(&out, "checkCode", l.check_code.as_str());
                set(&out, "account", account_to_js(&l.info));
                Ok(out)
            }
            Err(e) => {
                if link::finish_error_is_final(&e) {
                    self.inner = None;
                }
                Err(thrown(e))
            }
        }
    }
}

/// A status request in flight: pass it to `readStatusAnswer` (single use).
#[wasm_bindgen]
#[derive(Debug)]
pub struct StatusProbe(link::StatusProbe);

#[wasm_bindgen]
impl StatusProbe {
    /// Not constructible from JavaScript: use TesseraDevice.statusRequest. Throws `INVALID_STATE`.
    #[wasm_bindgen(constructor)]
    pub fn new_unavailable() -> Result<StatusProbe, JsValue> {
        Err(crate::js_error(
            ErrorCode::InvalidState,
            "StatusProbe is not constructible: use TesseraDevice.statusRequest",
        ))
    }
}

/// Take the probe out of its JS object (which is then spent).
fn take_probe(v: &JsValue) -> JsResult<StatusProbe> {
    let not_probe = || invalid("probe must be the StatusProbe of statusRequest");
    // The `instanceof` check below reads the prototype without a catch: a
    // proxy whose trap throws must not get that far.
    if !v.is_object() || js_sys::Reflect::get_prototype_of(v).is_err() {
        return Err(not_probe());
    }
    if let Some(p) = StatusProbe::try_from_js_value_ref(v) {
        return Ok(p);
    }
    // A spent StatusProbe is still an instance, with a null pointer.
    let spent = v.is_object()
        && js_sys::Reflect::get(v, &JsValue::from_str("constructor"))
            .ok()
            .and_then(|c| js_sys::Reflect::get(&c, &JsValue::from_str("name")).ok())
            .and_then(|n| n.as_string())
            .is_some_and(|n| n == "StatusProbe");
    Err(if spent { consumed("status probe") } else { not_probe() })
}

// ----------------------------------------------------------------- portal

fn events_to_js(events: &[PortalEvent]) -> Array {
    events
        .iter()
        .map(|e| {
            let (kind, account, device_id, at) = match e {
                PortalEvent::LinkRequested { account, device_id, at, .. } => ("linkRequested", account, device_id, at),
                PortalEvent::DeviceLinked { account, device_id, at, .. } => ("deviceLinked", account, device_id, at),
                PortalEvent::DeviceRenamed { account, device_id, at, .. } => ("deviceRenamed", account, device_id, at),
                PortalEvent::DeviceUnlinked { account, device_id, at } => ("deviceUnlinked", account, device_id, at),
            };
            let o = new_object();
            set(&o, "type", kind);
            set(&o, "account", account.as_str());
            set(&o, "deviceId", device_id.as_str());
            match e {
                PortalEvent::LinkRequested { device_name, .. } | PortalEvent::DeviceLinked { device_name, .. } => {
                    set(&o, "deviceName", device_name.as_str());
                }
                PortalEvent::DeviceRenamed { name, .. } => set(&o, "name", name.as_str()),
                PortalEvent::DeviceUnlinked { .. } => {}
            }
            set(&o, "at", time_out(*at));
            o
        })
        .collect()
}

fn version_out(v: u64) -> JsResult<f64> {
    from_u64(v, "the record version")
}

fn offer_to_js(s: &StoredOffer) -> JsResult<JsValue> {
    let o = new_object();
    set(&o, "offerId", s.offer_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "expiresAt", time_out(s.expires_at));
    set(&o, "usedAt", opt_time(s.used_at));
    set(&o, "version", version_out(s.version)?);
    set(&o, "sealed", base64url_encode(&s.sealed));
    Ok(o)
}

fn pending_to_js(s: &StoredPendingLink) -> JsResult<JsValue> {
    let o = new_object();
    set(&o, "deviceId", s.device_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "deviceName", s.device_name.as_str());
    set(&o, "confirmBy", time_out(s.confirm_by));
    set(&o, "attempts", s.attempts);
    set(&o, "closed", s.closed);
    set(&o, "version", version_out(s.version)?);
    set(&o, "sealed", base64url_encode(&s.sealed));
    Ok(o)
}

fn device_to_js(s: &StoredDevice) -> JsResult<JsValue> {
    let o = new_object();
    set(&o, "deviceId", s.device_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "name", s.name.as_str());
    set(&o, "linkedAt", time_out(s.linked_at));
    set(&o, "lastUsedAt", opt_time(s.last_used_at));
    set(&o, "status", s.status.as_str());
    set(&o, "version", version_out(s.version)?);
    set(&o, "sealed", base64url_encode(&s.sealed));
    Ok(o)
}

/// `{ kind, key, version, expectedVersion, row }` of one sealed write.
fn write_to_js(w: &StoredWrite) -> JsResult<JsValue> {
    let (kind, key, version, row) = match w {
        StoredWrite::Offer(r) => ("offer", &r.offer_id, r.version, offer_to_js(r)?),
        StoredWrite::PendingLink(r) => ("pendingLink", &r.device_id, r.version, pending_to_js(r)?),
        StoredWrite::Device(r) => ("device", &r.device_id, r.version, device_to_js(r)?),
    };
    let o = new_object();
    set(&o, "kind", kind);
    set(&o, "key", key.as_str());
    set(&o, "version", version_out(version)?);
    let expected = match w.expected_version() {
        Some(v) => JsValue::from_f64(version_out(v)?),
        None => JsValue::NULL,
    };
    set(&o, "expectedVersion", expected);
    set(&o, "row", row);
    Ok(o)
}

/// The record a stored row holds, read from the row's key column
/// (`key_field`), `account`, `version` and `sealed`: the core refuses a blob
/// that is not exactly this row's (`STATE_CORRUPT`). Other columns are
/// ignored.
fn open_row<T: PortalRecord>(portal: &Portal, v: &JsValue, what: &'static str, key_field: &str) -> JsResult<T> {
    let o = JsObject::new(v, what)?;
    let key = to_string(&o.require(key_field)?, &o.path(key_field))?;
    let account = to_string(&o.require("account")?, &o.path("account"))?;
    let version = to_u64(&o.require("version")?, &o.path("version"))?;
    let text = to_string(&o.require("sealed")?, &o.path("sealed"))?;
    let sealed = base64url_decode_as(&text, ErrorCode::StateCorrupt).map_err(thrown)?;
    portal.open_record::<T>(&key, &account, version, &sealed).map_err(thrown)
}

fn policy_from_js(v: Option<JsValue>) -> JsResult<PasscodePolicy> {
    let d = PasscodePolicy::default();
    let Some(v) = v else { return Ok(d) };
    let p = JsObject::new(&v, "params.passcode")?;
    let len = |key: &str, default: u8| -> JsResult<u8> {
        match p.get_u64(key)? {
            None => Ok(default),
            Some(n) => u8::try_from(n).map_err(|_| invalid(&format!("{} must be at most 255", p.path(key)))),
        }
    };
    Ok(PasscodePolicy {
        min_len: len("minLen", d.min_len)?,
        max_len: len("maxLen", d.max_len)?,
        digits_only: to_bool(p.get("digitsOnly")?, &p.path("digitsOnly"), d.digits_only)?,
        allow_biometrics: to_bool(p.get("biometricsAllowed")?, &p.path("biometricsAllowed"), d.allow_biometrics)?,
    })
}

/// A plain object with the outcome's `writes` (sealed) and `events`, and
/// with `ok_field`: whether the result is `Ok`, and `errorCode` if not.
fn outcome_to_js<T>(portal: &Portal, o: &Outcome<T>, ok_field: Option<&str>) -> JsResult<JsValue> {
    let sealed = with_rng(|rng| o.writes.iter().map(|w| portal.store_write(w, rng)).collect::<Vec<_>>())?;
    let out = new_object();
    if let Some(field) = ok_field {
        set(&out, field, o.result.is_ok());
        if let Err(e) = &o.result {
            set(&out, "errorCode", e.code().as_str());
        }
    }
    set(&out, "writes", sealed.iter().map(write_to_js).collect::<JsResult<Array>>()?);
    set(&out, "events", events_to_js(&o.events));
    Ok(out)
}

/// A portal identity (P-256 key pair and display name) and its side of
/// linking. Store `secret()` in a secret manager and restore the portal
/// with `TesseraPortal.fromSecret`; apply the `writes` it returns to your
/// database (versioned compare-and-sets, see `StoredWrite`).
#[wasm_bindgen]
pub struct TesseraPortal {
    portal: Rc<Portal>,
}

impl core::fmt::Debug for TesseraPortal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.portal.fmt(f)
    }
}

impl TesseraPortal {
    fn device(&self, v: &JsValue, what: &'static str) -> JsResult<DeviceRecord> {
        open_row(&self.portal, v, what, "deviceId")
    }

    /// Rename and unlink: `{ writes, events }`, or the refusal thrown (both
    /// refuse before deciding anything: no writes come with an error).
    fn changed(&self, o: &Outcome<()>) -> JsResult<JsValue> {
        if let Err(e) = &o.result {
            return Err(js_error(e.code(), e.detail()));
        }
        outcome_to_js(&self.portal, o, None)
    }
}

#[wasm_bindgen]
impl TesseraPortal {
    /// Not constructible from JavaScript: use TesseraPortal.generate or TesseraPortal.fromSecret. Throws `INVALID_STATE`.
    #[wasm_bindgen(constructor)]
    pub fn new_unavailable() -> Result<TesseraPortal, JsValue> {
        Err(crate::js_error(
            ErrorCode::InvalidState,
            "TesseraPortal is not constructible: use TesseraPortal.generate or TesseraPortal.fromSecret",
        ))
    }

    /// A new portal identity named `name` (1..=20 bytes, shown by the app).
    /// @throws {TesseraError} `INVALID_INPUT` (name), `INTERNAL` (no CSPRNG).
    pub fn generate(#[wasm_bindgen(unchecked_param_type = "string")] name: &JsValue) -> JsResult<TesseraPortal> {
        let name = to_string(name, "name")?;
        let portal = with_rng(|rng| Portal::generate(&name, rng))?.map_err(thrown)?;
        Ok(TesseraPortal { portal: Rc::new(portal) })
    }

    /// Restore a portal from its 32-byte `secret()`.
    /// @throws {TesseraError} `INVALID_INPUT` (not 32 bytes, or the name), `STATE_CORRUPT` (not a valid key).
    #[wasm_bindgen(js_name = fromSecret)]
    pub fn from_secret(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: &JsValue,
    ) -> JsResult<TesseraPortal> {
        let secret = to_bytes(secret, "secret")?;
        if secret.len() != 32 {
            return Err(invalid("secret must be the 32 bytes of TesseraPortal.secret()"));
        }
        let name = to_string(name, "name")?;
        let portal = Portal::from_secret(secret.expose(), &name).map_err(thrown)?;
        Ok(TesseraPortal { portal: Rc::new(portal) })
    }

    /// The 32-byte secret to keep in a secret manager.
    pub fn secret(&self) -> Uint8Array {
        Uint8Array::from(self.portal.secret().expose())
    }

    /// The portal's public key (33 bytes, compressed P-256): apps that know
    /// their portal pin it (`scanLinkQr(qrText, now, { pinnedPortalKey })`).
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(&self) -> Uint8Array {
        Uint8Array::from(&self.portal.public_key()[..])
    }

    /// Short fingerprint of the portal's public key (16 hex characters),
    /// the one devices show.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.portal.fingerprint()
    }

    /// Display name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.portal.name().to_owned()
    }

    /// A single-use link offer for `account`: show `qrText` as a QR code
    /// (`linkQrSvg`) and INSERT `offer` keyed by `offerId`.
    /// @throws {TesseraError} `INVALID_INPUT` (account, ttl outside 1..=600, passcode rules), `INVALID_TIME`.
    #[wasm_bindgen(js_name = createOffer, unchecked_return_type = "LinkOffer")]
    pub fn create_offer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "LinkOfferParams")] params: &JsValue,
    ) -> JsResult<JsValue> {
        let p = JsObject::new(params, "params")?;
        let account = to_string(&p.require("account")?, &p.path("account"))?;
        let ttl = p.get_u64("ttl")?.unwrap_or(link::DEFAULT_OFFER_TTL);
        let policy = policy_from_js(p.get("passcode")?)?;
        let now = to_u64(&p.require("now")?, &p.path("now"))?;
        let (qr, stored) = with_rng(|rng| {
            let qr = self.portal.create_offer(&account, policy, ttl, now, rng)?;
            let stored = self.portal.store_offer(&qr.record, rng);
            Ok::<_, tessera_core::Error>((qr, stored))
        })?
        .map_err(thrown)?;
        let out = new_object();
        set(&out, "qrText", qr.qr_text.as_str());
        set(&out, "offer", offer_to_js(&stored)?);
        Ok(out)
    }

    /// Decrypt a device's link request (the device proves it holds its
    /// key); then read the offer `request.offerId`, whether `deviceId` is in
    /// use, and call `request.accept(offer, keyUse, now)`.
    /// @throws {TesseraError} `MESSAGE_TAMPERED` (changed, for another portal, or no proof of possession), `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`.
    #[wasm_bindgen(js_name = openLinkRequest)]
    pub fn open_link_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: &JsValue,
    ) -> JsResult<LinkRequest> {
        let text = to_string(request, "request")?;
        let inner = self.portal.open_link_request(&text).map_err(thrown)?;
        Ok(LinkRequest { portal: Rc::clone(&self.portal), inner })
    }

    /// Check the code the user typed for a pending link (exactly the 6
    /// digits). A wrong code is a result, not an exception: apply `writes`
    /// in every case (attempts are counted; the 5th wrong code cancels the
    /// link); on success they insert the new device row.
    /// @throws {TesseraError} only `STATE_CORRUPT` or `INVALID_INPUT` for bad arguments.
    #[wasm_bindgen(js_name = confirmLink, unchecked_return_type = "LinkConfirmResult")]
    pub fn confirm_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredPendingLink")] pending: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let rec: PendingLinkRecord = open_row(&self.portal, pending, "pending", "deviceId")?;
        let code = Zeroizing::new(to_string(code, "code")?);
        let now = to_u64(now, "now")?;
        outcome_to_js(&self.portal, &self.portal.confirm_link(&rec, &code, now), Some("linked"))
    }

    /// Rename a linked device (1..=64 bytes of text).
    /// @throws {TesseraError} `INVALID_INPUT` (name), `INVALID_TIME`, `STATE_CORRUPT`.
    #[wasm_bindgen(js_name = renameDevice, unchecked_return_type = "PortalOutcome")]
    pub fn rename_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let rec = self.device(device, "device")?;
        let name = to_string(name, "name")?;
        let now = to_u64(now, "now")?;
        self.changed(&rec.rename(&name, now))
    }

    /// Unlink a device, without it (lost or stolen phone). The row stays,
    /// unlinked for good: the device learns it on its next status request
    /// and wipes its account.
    /// @throws {TesseraError} `INVALID_STATE` (already unlinked), `INVALID_TIME`, `STATE_CORRUPT`.
    #[wasm_bindgen(js_name = unlinkDevice, unchecked_return_type = "PortalOutcome")]
    pub fn unlink_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let rec = self.device(device, "device")?;
        let now = to_u64(now, "now")?;
        self.changed(&rec.unlink(now))
    }

    /// Read which device a status request claims to come from; then read
    /// that device's row (else its pending link) and call `answerStatus`.
    /// @throws {TesseraError} `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`.
    #[wasm_bindgen(js_name = openStatusRequest, unchecked_return_type = "{ deviceId: string }")]
    pub fn open_status_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: &JsValue,
    ) -> JsResult<JsValue> {
        let text = to_string(request, "request")?;
        let opened = self.portal.open_status_request(&text).map_err(thrown)?;
        let out = new_object();
        set(&out, "deviceId", opened.device_id());
        Ok(out)
    }

    /// Authenticate a status request and return the answer to send: from
    /// the device's row (active or unlinked) or, for a device whose link was
    /// never confirmed, its pending link (awaiting confirmation, or not
    /// confirmed: the device then clears itself). Read-only: nothing to store.
    /// @throws {TesseraError} `DEVICE_UNKNOWN` (no row for this device), `MESSAGE_TAMPERED`, `INVALID_TIME` (clock skew over 5 minutes, or `now` invalid), `STATE_CORRUPT`, and the errors of `openStatusRequest`.
    #[wasm_bindgen(js_name = answerStatus)]
    pub fn answer_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "StatusRecords")] records: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<String> {
        let text = to_string(request, "request")?;
        let r = JsObject::new(records, "records")?;
        if r.get("sealed")?.is_some() {
            return Err(invalid("records must be { device?, pending? }, not a row"));
        }
        let device = r.get("device")?.map(|v| self.device(&v, "records.device")).transpose()?;
        let pending: Option<PendingLinkRecord> =
            r.get("pending")?.map(|v| open_row(&self.portal, &v, "records.pending", "deviceId")).transpose()?;
        let now = to_u64(now, "now")?;
        let opened = self.portal.open_status_request(&text).map_err(thrown)?;
        opened.answer(device.as_ref(), pending.as_ref(), now).map_err(thrown)
    }

    /// Verify a time-based code shown by a linked device (once per step;
    /// locks after 5 consecutive failures). A refusal is a result, not an
    /// exception: apply `writes` in every case.
    /// @throws {TesseraError} only `STATE_CORRUPT` or `INVALID_INPUT` for bad arguments.
    #[wasm_bindgen(js_name = verifyDeviceTotp, unchecked_return_type = "DeviceTotpCheck")]
    pub fn verify_device_totp(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let rec = self.device(device, "device")?;
        let code = to_string(code, "code")?;
        let now = to_u64(now, "now")?;
        outcome_to_js(&self.portal, &rec.verify_totp(&code, now), Some("accepted"))
    }
}

/// A decrypted, authenticated link request (from
/// `TesseraPortal.openLinkRequest`). `accept` may be called again, with the
/// rows read again, after the host's compare-and-set lost a race.
#[wasm_bindgen]
pub struct LinkRequest {
    portal: Rc<Portal>,
    inner: link::OpenedLinkRequest,
}

impl core::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

#[wasm_bindgen]
impl LinkRequest {
    /// Not constructible from JavaScript: use TesseraPortal.openLinkRequest. Throws `INVALID_STATE`.
    #[wasm_bindgen(constructor)]
    pub fn new_unavailable() -> Result<LinkRequest, JsValue> {
        Err(crate::js_error(
            ErrorCode::InvalidState,
            "LinkRequest is not constructible: use TesseraPortal.openLinkRequest",
        ))
    }

    /// Lookup key of the offer this request claims (read that `StoredOffer`).
    #[wasm_bindgen(getter, js_name = offerId)]
    pub fn offer_id(&self) -> String {
        self.inner.offer_id().to_owned()
    }

    /// Id of the device that asks (is a pending link or device row using it?).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_owned()
    }

    /// Name the user gave the device.
    #[wasm_bindgen(getter, js_name = deviceName)]
    pub fn device_name(&self) -> String {
        self.inner.device_name().to_owned()
    }

    /// Accept the request against its stored offer (`null` if no row has
    /// `offerId`) and `keyUse` ("seen" if a pending link or device row has
    /// `deviceId`). Always returns an `answer`; a refusal is a result. Apply
    /// `writes` (used offer + new pending link) in one transaction, then
    /// send `answer`; if a write fails, read the rows again and call
    /// `accept` again. The same request again gets the same answer bytes
    /// (`repeated: true`, no writes).
    /// @throws {TesseraError} `STATE_CORRUPT`, `INVALID_INPUT`.
    #[wasm_bindgen(unchecked_return_type = "LinkAcceptResult")]
    pub fn accept(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredOffer | null")] offer: &JsValue,
        #[wasm_bindgen(js_name = keyUse, unchecked_param_type = "DeviceKeyUse")] key_use: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let offer: Option<LinkOfferRecord> =
            given(Some(offer.clone())).map(|v| open_row(&self.portal, &v, "offer", "offerId")).transpose()?;
        let key_use = match key_use.as_string().as_deref() {
            Some("fresh") => DeviceKeyUse::Fresh,
            Some("seen") => DeviceKeyUse::Seen,
            _ => return Err(invalid(r#"keyUse must be "fresh" or "seen""#)),
        };
        let now = to_u64(now, "now")?;
        let out = self.inner.accept(&self.portal, offer.as_ref(), key_use, now);
        let o = outcome_to_js(&self.portal, &out.outcome, Some("accepted"))?;
        set(&o, "answer", out.answer.as_str());
        set(&o, "repeated", out.outcome.result == Ok(Accept::Repeated));
        Ok(o)
    }

    /// An authenticated refusal the device shows (e.g. when the host
    /// declines the request for its own reasons). One code always gives the
    /// same bytes, sealed under a key of its own.
    /// @throws {TesseraError} `INVALID_INPUT` (not an error code).
    pub fn refuse(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TesseraErrorCode")] code: &JsValue,
    ) -> JsResult<String> {
        let code = to_string(code, "code")?;
        let code = ErrorCode::from_str_code(&code).ok_or_else(|| invalid("code must be a TesseraErrorCode"))?;
        Ok(self.inner.refuse(code))
    }
}

// ------------------------------------------------------------------ QR SVG

/// An SVG drawing of a QR code of `qrText` (error correction M, 4-module
/// quiet zone, at least 256×256 user units with a `viewBox`, black on
/// white), to put in a page as is. Size it with CSS; keep it at least
/// about 3 px per module on screen.
/// @throws {TesseraError} `INVALID_INPUT` (not a string, or too long for a QR code).
#[wasm_bindgen(js_name = linkQrSvg)]
pub fn link_qr_svg(
    #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: &JsValue,
) -> JsResult<String> {
    let text = to_string(qr_text, "qrText")?;
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| invalid("qrText is too long for a QR code"))?;
    let svg = code.render::<svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build();
    // Drop the XML declaration so the markup can go straight into HTML.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}
