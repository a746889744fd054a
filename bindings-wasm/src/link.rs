//! Linking a device by single-use QR code (flow 1), both sides: the device
//! (`TesseraDevice`, `PendingLink`; mirrors `ffi/src/link.rs`) and the portal
//! (`TesseraPortal`, `LinkRequest`), plus `linkQrSvg` to draw the QR code.
//!
//! Glue only: every rule is in `tessera_core::link`. Portal records cross
//! as plain JSON-able objects (`Stored*`): the query columns next to
//! `sealed`, the whole record sealed under the portal's storage key,
//! base64url. Only `sealed` is read back (the sealed copy is the truth).

use crate::MAX_SAFE_INTEGER;
use crate::{
    given, invalid, js_error, new_object, set, thrown, to_bool, to_bytes, to_string, to_u64, JsObject, JsResult,
};
use js_sys::{Array, Uint8Array};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use std::rc::Rc;
use tessera_core::crypto::RandomSource;
use tessera_core::encoding::{base64url_decode_as, base64url_encode};
use tessera_core::link::{
    self, DeviceRecord, DeviceState, LinkOfferRecord, PasscodePolicy, PendingDeviceLink, PendingLinkRecord, Portal,
    PortalEvent, StoredDevice, StoredOffer, StoredPendingLink, UserFactor,
};
use tessera_core::ErrorCode;
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
  /** Portal key fingerprint (16 hex characters; apps may pin it). */
  portalFingerprint: string;
  /** Expiry, unix seconds. */
  expiresAt: number;
  /** Rules to enforce while the user chooses a passcode. */
  passcodeRules: PasscodeRules;
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
  /** Unix seconds. */
  now: number;
}

/** Result of `TesseraDevice.startLink`. */
export interface LinkStart {
  /** Text to send to the portal. */
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
  /** Record to store, keyed by `offerId`. */
  offer: StoredOffer;
}

/**
 * A stored link offer. Stored records are plain JSON: the columns to query
 * next to `sealed` (base64url), the whole record sealed under the portal's
 * key. Only `sealed` is read back; any change to it is `STATE_CORRUPT`.
 */
export interface StoredOffer {
  offerId: string;
  account: string;
  expiresAt: number;
  /** When a device used it (single use), else null. */
  usedAt: number | null;
  sealed: string;
}

/** A stored pending link: a device waiting for its check code. */
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
  sealed: string;
}

/** Registry status of a device. */
export type DeviceStatus = "active" | "unlinked";

/** A stored registry entry (one linked device). */
export interface StoredDevice {
  deviceId: string;
  account: string;
  name: string;
  linkedAt: number;
  lastUsedAt: number | null;
  status: DeviceStatus;
  sealed: string;
}

/** What happened, for the host to act on (notification e-mail, audit log). */
export type PortalEvent =
  | { type: "linkRequested"; account: string; deviceId: string; deviceName: string; at: number }
  | { type: "deviceLinked"; account: string; deviceId: string; deviceName: string; at: number }
  | { type: "deviceRenamed"; account: string; deviceId: string; name: string; at: number }
  | { type: "deviceUnlinked"; account: string; deviceId: string; at: number };

/** Result of `LinkRequest.accept`: always an answer for the device. */
export interface LinkAcceptResult {
  /** Text to send back to the device (success or an authenticated refusal). */
  answer: string;
  accepted: boolean;
  /** Why not: "TOKEN_UNKNOWN", "TOKEN_ALREADY_USED", "TOKEN_EXPIRED". */
  errorCode?: TesseraErrorCode;
  /** The offer, now used: store it with a compare-and-set on `usedAt === null`. */
  offer?: StoredOffer;
  /** The pending link to store, waiting for the check code. */
  pending?: StoredPendingLink;
  events: PortalEvent[];
}

/** Result of `TesseraPortal.confirmLink`. Store `pending` in every case. */
export interface LinkConfirmResult {
  linked: boolean;
  /** "CHECK_CODE_MISMATCH", "LOCKED_OUT" (5th wrong code), "TOKEN_EXPIRED", "INVALID_STATE" (closed). */
  errorCode?: TesseraErrorCode;
  pending: StoredPendingLink;
  /** The new registry entry to store. */
  device?: StoredDevice;
  events: PortalEvent[];
}

/** Result of `renameDevice` / `unlinkDevice`. */
export interface DeviceUpdate {
  device: StoredDevice;
  event: PortalEvent;
}

/** Result of `TesseraPortal.answerStatus`. */
export interface StatusAnswer {
  /** Text to send back to the device. */
  answer: string;
  /** The record to store (`lastUsedAt` moves for an active device). */
  device: StoredDevice;
}

/** Result of `TesseraPortal.verifyDeviceTotp`. Store `device` in every case. */
export interface DeviceTotpCheck {
  accepted: boolean;
  /** "OTP_MISMATCH", "OTP_REPLAYED", "LOCKED_OUT", "DEVICE_REVOKED", "INVALID_INPUT". */
  errorCode?: TesseraErrorCode;
  device: StoredDevice;
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
    /// and the passcode rules before linking.
    /// @throws {TesseraError} `MALFORMED_MESSAGE` (not a Tessera QR code), `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`, `TOKEN_EXPIRED`.
    #[wasm_bindgen(js_name = scanLinkQr, unchecked_return_type = "LinkOfferInfo")]
    pub fn scan_link_qr(
        &self,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let qr_text = to_string(qr_text, "qrText")?;
        let now = to_u64(now, "now")?;
        let o = link::scan_link_qr(&qr_text, now).map_err(thrown)?;
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
    /// @throws {TesseraError} `DEVICE_ALREADY_LINKED`, `WEAK_PASSCODE`, `PASSCODE_POLICY`, `TOKEN_EXPIRED`, `INVALID_INPUT` (device name), and the errors of `scanLinkQr`.
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
        let now = to_u64(&p.require("now")?, &p.path("now"))?;
        let offer = link::scan_link_qr(&qr_text, now).map_err(thrown)?;
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
    /// @throws {TesseraError} `STATE_CORRUPT`, `INVALID_INPUT` (unlock not exactly one of passcode / 32-byte biometricSecret).
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
    /// @throws {TesseraError} `STATE_CORRUPT`.
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
    /// (single use). Returns while linked; throws `DEVICE_REVOKED` when the
    /// portal unlinked this device: delete the state (and biometric secret).
    /// @throws {TesseraError} `DEVICE_REVOKED`, `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, `STATE_CORRUPT`, `ALREADY_CONSUMED` (probe used).
    #[wasm_bindgen(js_name = readStatusAnswer)]
    pub fn read_status_answer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "StatusProbe")] probe: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] answer: &JsValue,
    ) -> JsResult<()> {
        let answer = to_string(answer, "answer")?;
        let st = self.state(state)?;
        // Last: taking the probe out of its JS object consumes it.
        let probe = take_probe(probe)?;
        st.read_status_answer(&probe.0, &answer).map_err(thrown)
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

    /// Finish with the portal's answer (once; `ALREADY_CONSUMED` after).
    /// Throws the portal's refusal (`TOKEN_ALREADY_USED`, …), which spends
    /// the link. A damaged or forged answer (`MESSAGE_TAMPERED`,
    /// `MALFORMED_MESSAGE`, …) does not: finish again with the genuine one.
    /// @throws {TesseraError} `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`, `TOKEN_UNKNOWN`, `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `ALREADY_CONSUMED`.
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

fn event_to_js(e: &PortalEvent) -> JsValue {
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
}

fn events_to_js(events: &[PortalEvent]) -> JsValue {
    events.iter().map(event_to_js).collect::<Array>().into()
}

fn offer_to_js(s: &StoredOffer) -> JsValue {
    let o = new_object();
    set(&o, "offerId", s.offer_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "expiresAt", time_out(s.expires_at));
    set(&o, "usedAt", opt_time(s.used_at));
    set(&o, "sealed", base64url_encode(&s.sealed));
    o
}

fn pending_to_js(s: &StoredPendingLink) -> JsValue {
    let o = new_object();
    set(&o, "deviceId", s.device_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "deviceName", s.device_name.as_str());
    set(&o, "confirmBy", time_out(s.confirm_by));
    set(&o, "attempts", s.attempts);
    set(&o, "closed", s.closed);
    set(&o, "sealed", base64url_encode(&s.sealed));
    o
}

fn device_to_js(s: &StoredDevice) -> JsValue {
    let o = new_object();
    set(&o, "deviceId", s.device_id.as_str());
    set(&o, "account", s.account.as_str());
    set(&o, "name", s.name.as_str());
    set(&o, "linkedAt", time_out(s.linked_at));
    set(&o, "lastUsedAt", opt_time(s.last_used_at));
    set(&o, "status", s.status.as_str());
    set(&o, "sealed", base64url_encode(&s.sealed));
    o
}

/// The bytes of a stored object's `sealed` (the other fields are ignored:
/// the sealed copy is the truth). Open them with `Portal::open_record`.
fn sealed_of(v: &JsValue, what: &'static str) -> JsResult<Vec<u8>> {
    let o = JsObject::new(v, what)?;
    let text = to_string(&o.require("sealed")?, &o.path("sealed"))?;
    base64url_decode_as(&text, ErrorCode::StateCorrupt).map_err(thrown)
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

/// A portal identity (P-256 key pair and display name) and its side of
/// linking. Store `secret()` in a secret manager and restore the portal
/// with `TesseraPortal.fromSecret`; store the `Stored*` records it returns
/// in your database.
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
    fn device(&self, v: &JsValue) -> JsResult<DeviceRecord> {
        self.portal.open_record::<DeviceRecord>(&sealed_of(v, "device")?).map_err(thrown)
    }

    fn store_device(&self, r: &DeviceRecord) -> JsResult<JsValue> {
        Ok(device_to_js(&with_rng(|rng| self.portal.store_device(r, rng))?))
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
        // The core's P-256 parser would left-pad 24..=31 bytes into another key.
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
    /// (`linkQrSvg`) and store `offer` keyed by `offerId`.
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
        set(&out, "offer", offer_to_js(&stored));
        Ok(out)
    }

    /// Decrypt a device's link request; then load the offer
    /// `request.offerId` and call `request.accept(offer, now)`.
    /// @throws {TesseraError} `MESSAGE_TAMPERED` (changed, or for another portal), `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`.
    #[wasm_bindgen(js_name = openLinkRequest)]
    pub fn open_link_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: &JsValue,
    ) -> JsResult<LinkRequest> {
        let text = to_string(request, "request")?;
        let opened = self.portal.open_link_request(&text).map_err(thrown)?;
        Ok(LinkRequest {
            portal: Rc::clone(&self.portal),
            offer_id: opened.offer_id().to_owned(),
            device_id: opened.device_id().to_owned(),
            device_name: opened.device_name().to_owned(),
            text,
            inner: Some(opened),
        })
    }

    /// Check the code the user typed for a pending link. A wrong code is a
    /// result, not an exception: store the returned `pending` in every case
    /// (attempts are counted; the 5th wrong code cancels the link), and on
    /// success the new `device`.
    /// @throws {TesseraError} only `STATE_CORRUPT` or `INVALID_INPUT` for bad arguments.
    #[wasm_bindgen(js_name = confirmLink, unchecked_return_type = "LinkConfirmResult")]
    pub fn confirm_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredPendingLink")] pending: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let mut rec = self.portal.open_record::<PendingLinkRecord>(&sealed_of(pending, "pending")?).map_err(thrown)?;
        let code = Zeroizing::new(to_string(code, "code")?);
        let now = to_u64(now, "now")?;
        let res = self.portal.confirm_link(&mut rec, &code, now);
        let (stored_pending, stored_device) = with_rng(|rng| {
            let p = self.portal.store_pending(&rec, rng);
            let d = res.as_ref().ok().map(|(dev, _)| self.portal.store_device(dev, rng));
            (p, d)
        })?;
        let out = new_object();
        set(&out, "linked", res.is_ok());
        match &res {
            Ok((_, events)) => set(&out, "events", events_to_js(events)),
            Err(e) => {
                set(&out, "errorCode", e.code().as_str());
                set(&out, "events", Array::new());
            }
        }
        set(&out, "pending", pending_to_js(&stored_pending));
        if let Some(d) = &stored_device {
            set(&out, "device", device_to_js(d));
        }
        Ok(out)
    }

    /// Rename a linked device (1..=64 bytes of text).
    /// @throws {TesseraError} `INVALID_INPUT` (name), `STATE_CORRUPT`.
    #[wasm_bindgen(js_name = renameDevice, unchecked_return_type = "DeviceUpdate")]
    pub fn rename_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let mut rec = self.device(device)?;
        let name = to_string(name, "name")?;
        let now = to_u64(now, "now")?;
        let ev = rec.rename(&name, now).map_err(thrown)?;
        let out = new_object();
        set(&out, "device", self.store_device(&rec)?);
        set(&out, "event", event_to_js(&ev));
        Ok(out)
    }

    /// Unlink a device, without it (lost or stolen phone). Keep the record:
    /// the device learns it on its next status request and wipes its account.
    /// @throws {TesseraError} `INVALID_STATE` (already unlinked), `STATE_CORRUPT`.
    #[wasm_bindgen(js_name = unlinkDevice, unchecked_return_type = "DeviceUpdate")]
    pub fn unlink_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let mut rec = self.device(device)?;
        let now = to_u64(now, "now")?;
        let ev = rec.unlink(now).map_err(thrown)?;
        let out = new_object();
        set(&out, "device", self.store_device(&rec)?);
        set(&out, "event", event_to_js(&ev));
        Ok(out)
    }

    /// Read which device a status request claims to come from; then load
    /// that device and call `answerStatus`.
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

    /// Authenticate a status request against the device's record and answer
    /// it (active, or unlinked). Store the returned `device`.
    /// @throws {TesseraError} `MESSAGE_TAMPERED`, `INVALID_TIME` (clock skew over 5 minutes), `DEVICE_UNKNOWN` (record of another device), `STATE_CORRUPT`, and the errors of `openStatusRequest`.
    #[wasm_bindgen(js_name = answerStatus, unchecked_return_type = "StatusAnswer")]
    pub fn answer_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let text = to_string(request, "request")?;
        let mut rec = self.device(device)?;
        let now = to_u64(now, "now")?;
        let opened = self.portal.open_status_request(&text).map_err(thrown)?;
        let answer = opened.answer(&mut rec, now).map_err(thrown)?;
        let out = new_object();
        set(&out, "answer", answer);
        set(&out, "device", self.store_device(&rec)?);
        Ok(out)
    }

    /// Verify a time-based code shown by a linked device (once per step;
    /// locks after 5 consecutive failures). A refusal is a result, not an
    /// exception: store the returned `device` in every case.
    /// @throws {TesseraError} only `STATE_CORRUPT` or `INVALID_INPUT` for bad arguments.
    #[wasm_bindgen(js_name = verifyDeviceTotp, unchecked_return_type = "DeviceTotpCheck")]
    pub fn verify_device_totp(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let mut rec = self.device(device)?;
        let code = to_string(code, "code")?;
        let now = to_u64(now, "now")?;
        let res = rec.verify_totp(&code, now);
        let out = new_object();
        set(&out, "accepted", res.is_ok());
        if let Err(e) = &res {
            set(&out, "errorCode", e.code().as_str());
        }
        set(&out, "device", self.store_device(&rec)?);
        Ok(out)
    }
}

/// A decrypted link request (from `TesseraPortal.openLinkRequest`).
/// `accept` is single use; `refuse` works before or after it (for example
/// when storing the used offer lost a compare-and-set).
#[wasm_bindgen]
pub struct LinkRequest {
    portal: Rc<Portal>,
    text: String,
    offer_id: String,
    device_id: String,
    device_name: String,
    inner: Option<link::OpenedLinkRequest>,
}

impl core::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkRequest")
            .field("offer_id", &self.offer_id)
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
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

    /// Lookup key of the offer this request claims (load that `StoredOffer`).
    #[wasm_bindgen(getter, js_name = offerId)]
    pub fn offer_id(&self) -> String {
        self.offer_id.clone()
    }

    /// Id of the device that asks.
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.device_id.clone()
    }

    /// Name the user gave the device.
    #[wasm_bindgen(getter, js_name = deviceName)]
    pub fn device_name(&self) -> String {
        self.device_name.clone()
    }

    /// Accept the request against its stored offer (`null` if none has
    /// `offerId`). Always returns an `answer` for the device; a refusal
    /// (`TOKEN_UNKNOWN`, `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`) is a result.
    /// On success store `offer` (compare-and-set on `usedAt === null`; if
    /// that fails send `refuse("TOKEN_ALREADY_USED")` instead) and `pending`.
    /// @throws {TesseraError} `ALREADY_CONSUMED` (second call), `STATE_CORRUPT`, `INVALID_INPUT`.
    #[wasm_bindgen(unchecked_return_type = "LinkAcceptResult")]
    pub fn accept(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "StoredOffer | null")] offer: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] now: &JsValue,
    ) -> JsResult<JsValue> {
        let offer: Option<LinkOfferRecord> = match given(Some(offer.clone())) {
            Some(v) => Some(self.portal.open_record::<LinkOfferRecord>(&sealed_of(&v, "offer")?).map_err(thrown)?),
            None => None,
        };
        let now = to_u64(now, "now")?;
        let opened = self.inner.take().ok_or_else(|| consumed("link request"))?;
        let out = opened.accept(&self.portal, offer.as_ref(), now);
        let stored = match &out.result {
            Ok(acc) => Some(with_rng(|rng| {
                (self.portal.store_offer(&acc.offer, rng), self.portal.store_pending(&acc.pending, rng))
            })?),
            Err(_) => None,
        };
        let o = new_object();
        set(&o, "answer", out.answer.as_str());
        set(&o, "accepted", out.result.is_ok());
        match &out.result {
            Ok(acc) => set(&o, "events", events_to_js(&acc.events)),
            Err(e) => {
                set(&o, "errorCode", e.code().as_str());
                set(&o, "events", Array::new());
            }
        }
        if let Some((offer, pending)) = &stored {
            set(&o, "offer", offer_to_js(offer));
            set(&o, "pending", pending_to_js(pending));
        }
        Ok(o)
    }

    /// An authenticated refusal the device shows: e.g. `"TOKEN_ALREADY_USED"`
    /// when your compare-and-set on the offer lost a race.
    /// @throws {TesseraError} `INVALID_INPUT` (not an error code).
    pub fn refuse(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TesseraErrorCode")] code: &JsValue,
    ) -> JsResult<String> {
        let code = to_string(code, "code")?;
        let code = ErrorCode::from_str_code(&code).ok_or_else(|| invalid("code must be a TesseraErrorCode"))?;
        match &self.inner {
            Some(opened) => Ok(opened.refuse(&self.portal, code)),
            // After `accept`: open the same request again.
            None => Ok(self.portal.open_link_request(&self.text).map_err(thrown)?.refuse(&self.portal, code)),
        }
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
