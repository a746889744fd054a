#![doc = include_str!("../README.md")]

//! ## For maintainers
//!
//! Shells only: every type, default and rule is in `tessera-host` (its
//! records derive their TypeScript declarations there). Each export
//! decodes its arguments with `tessera_host::js` (a wrong type, a missing field, `NaN`,
//! a fraction or an integer above 2^53 − 1 becomes a thrown `TesseraError`
//! with code `INVALID_INPUT`), calls the host layer and encodes the result.

use std::sync::Arc;
use tessera_host::js::{FromJs, ToJs};
use tessera_host::{self as host, ErrorCode, TesseraError, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(typescript_custom_section)]
const TS_ERRORS: &'static str = r#"
/** Every stable error code (docs/ERRORS.md), generated from the core's table. */
export type TesseraErrorCode = ErrorCode;

/** What every Tessera call throws: an `Error` with a stable `code` and an English `message` without secrets. */
export interface TesseraError extends Error {
  name: "TesseraError";
  code: TesseraErrorCode;
}
"#;

type JsResult<T> = Result<T, JsValue>;

/// `new` on a class that only the SDK makes: `INVALID_STATE` (without a
/// constructor, `new` would give an empty object whose methods throw a
/// plain "null pointer passed to rust").
fn sdk_made(class: &str, how: &str) -> JsValue {
    TesseraError::new(ErrorCode::InvalidState, format!("{class} objects come from {how}, not from `new {class}()`"))
        .into()
}

fn invalid(what: &str, e: impl std::fmt::Display) -> JsValue {
    TesseraError::new(ErrorCode::InvalidInput, format!("{what}: {e}")).into()
}

/// A refused argument: `what` and the place below it (`settings.digits`),
/// then what was expected (never the value: it may be a secret). The
/// caller's own exception (a throwing getter or Proxy trap) is rethrown as it is.
fn undecodable(what: &str, e: &host::js::Bad) -> JsValue {
    if let Some(thrown) = e.caller_exception() {
        return thrown.clone();
    }
    invalid(&format!("{what}{}", e.path()), e.detail())
}

/// A required argument of type `T` (a record: unknown keys refused, except
/// inside stored rows, whose keys are not checked: `StoredOffer`,
/// `StoredPendingLink`, `StoredDevice`, `StoredChallenge`,
/// `StoredAuthenticator`, `StoredOrder`, `StoredActivation`,
/// `StoredCredentials` may carry the host's own properties, a database id).
fn arg<T: FromJs>(v: JsValue, what: &str) -> JsResult<T> {
    host::js::from_value(&v).map_err(|e| undecodable(what, &e))
}

/// An optional argument (`undefined` or `null`: the default).
fn opt<T: FromJs + Default>(v: JsValue, what: &str) -> JsResult<T> {
    if v.is_undefined() || v.is_null() {
        Ok(T::default())
    } else {
        arg(v, what)
    }
}

/// A string argument.
fn string(v: JsValue, what: &str) -> JsResult<String> {
    arg(v, what)
}

/// An integer argument: a number without a fraction, at most 2^53 - 1 in
/// size (no `BigInt`, no numeric strings).
fn int(v: JsValue, what: &str) -> JsResult<i64> {
    arg(v, what)
}

/// An optional integer argument (`undefined` or `null`: none).
fn opt_int(v: JsValue, what: &str) -> JsResult<Option<i64>> {
    arg(v, what)
}

/// An optional boolean argument (`undefined` or `null`: false).
fn flag(v: JsValue, what: &str) -> JsResult<bool> {
    opt(v, what)
}

/// A time: epoch milliseconds (`Date.now()`) or a `Date`.
fn time(v: JsValue) -> JsResult<Timestamp> {
    arg(v, "now")
}

/// A result for JavaScript.
fn out<T: ToJs + ?Sized>(v: &T) -> JsResult<JsValue> {
    // Only a number beyond 2^53 - 1 fails here (a HOTP counter at the end
    // of JavaScript's integers): not the caller's input, so INTERNAL.
    v.to_js().map_err(|e| TesseraError::new(ErrorCode::Internal, format!("result{}: {}", e.path(), e.detail())).into())
}

/// Every stable error code, in table order.
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "TesseraErrorCode[]")]
pub fn error_codes() -> JsResult<JsValue> {
    out(&host::error_codes())
}

/// Whether `e` is an error thrown by Tessera (a type guard).
#[wasm_bindgen(js_name = isTesseraError, unchecked_return_type = "e is TesseraError")]
pub fn is_tessera_error(e: JsValue) -> bool {
    e.is_instance_of::<js_sys::Error>()
        && js_sys::Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).as_deref() == Some("TesseraError")
        && js_sys::Reflect::get(&e, &"code".into())
            .ok()
            .and_then(|c| c.as_string())
            .is_some_and(|c| ErrorCode::parse(&c).is_some())
}

/// An SVG drawing of a QR text.
#[wasm_bindgen(js_name = qrSvg)]
pub fn qr_svg(#[wasm_bindgen(unchecked_param_type = "string")] text: JsValue) -> JsResult<String> {
    Ok(host::qr_svg(string(text, "text")?)?)
}

/// A fresh 32-byte storage key.
#[wasm_bindgen(js_name = newStorageKey)]
pub fn new_storage_key() -> JsResult<Vec<u8>> {
    Ok(host::new_storage_key()?)
}

/// The device side, bound to the app's 32-byte storage key.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Device(host::Device);

#[wasm_bindgen]
impl Device {
    /// A device bound to a 32-byte storage key.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")] key: JsValue,
    ) -> JsResult<Device> {
        Ok(Device(host::Device::new(bytes(key, "storageKey")?)?))
    }

    /// Read a scanned link QR text (with the pinned portal key, if the app knows its portal).
    #[wasm_bindgen(js_name = scanLinkQr, unchecked_return_type = "LinkOfferInfo")]
    pub fn scan_link_qr(
        &self,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
        #[wasm_bindgen(js_name = pinnedPortalKey, unchecked_param_type = "Uint8Array | null | undefined")]
        pinned: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.scan_link_qr(string(qr_text, "qrText")?, time(now)?, bytes_opt(pinned, "pinnedPortalKey")?)?)
    }

    /// Start linking; `currentState` is the stored device state, if any.
    #[wasm_bindgen(js_name = startLink)]
    pub fn start_link(
        &self,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LinkChoices")] choices: JsValue,
        #[wasm_bindgen(js_name = currentState, unchecked_param_type = "Uint8Array | null | undefined")]
        current: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
        #[wasm_bindgen(js_name = pinnedPortalKey, unchecked_param_type = "Uint8Array | null | undefined")]
        pinned: JsValue,
    ) -> JsResult<PendingLink> {
        let p = self.0.start_link(
            string(qr_text, "qrText")?,
            arg(choices, "choices")?,
            bytes_opt(current, "currentState")?,
            time(now)?,
            bytes_opt(pinned, "pinnedPortalKey")?,
        )?;
        Ok(PendingLink(p))
    }

    /// Restore a pending link saved with `PendingLink.sealed()`.
    #[wasm_bindgen(js_name = openPendingLink)]
    pub fn open_pending_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] sealed: JsValue,
    ) -> JsResult<PendingLink> {
        Ok(PendingLink(self.0.open_pending_link(bytes(sealed, "sealed")?)?))
    }

    /// Facts of the linked account in `state`.
    #[wasm_bindgen(unchecked_return_type = "LinkedAccount")]
    pub fn account(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue) -> JsResult<JsValue> {
        out(&self.0.account(bytes(state, "state")?)?)
    }

    /// The device's time-based code.
    pub fn code(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Unlock")] unlock: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<String> {
        Ok(self.0.code(bytes(state, "state")?, arg(unlock, "unlock")?, time(now)?)?)
    }

    /// Ask the portal whether this link still exists.
    #[wasm_bindgen(js_name = statusRequest)]
    pub fn status_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<StatusProbe> {
        Ok(StatusProbe(self.0.status_request(bytes(state, "state")?, time(now)?)?))
    }

    /// Restore a status probe saved with `StatusProbe.sealed()`.
    #[wasm_bindgen(js_name = openStatusProbe)]
    pub fn open_status_probe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] sealed: JsValue,
    ) -> JsResult<StatusProbe> {
        Ok(StatusProbe(self.0.open_status_probe(bytes(state, "state")?, bytes(sealed, "sealed")?)?))
    }

    /// Read a challenge QR text: who asks and exactly what is approved.
    #[wasm_bindgen(js_name = readChallenge, unchecked_return_type = "ChallengeView")]
    pub fn read_challenge(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.read_challenge(bytes(state, "state")?, string(qr_text, "qrText")?, time(now)?)?)
    }

    /// The code to type into the portal, after the user approved.
    #[wasm_bindgen(js_name = answerChallenge)]
    pub fn answer_challenge(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Unlock")] unlock: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<String> {
        Ok(self.0.answer_challenge(
            bytes(state, "state")?,
            string(qr_text, "qrText")?,
            arg(unlock, "unlock")?,
            time(now)?,
        )?)
    }

    /// A signed answer for the portal (store `state` first).
    #[wasm_bindgen(js_name = signChallenge, unchecked_return_type = "SignedChallenge")]
    pub fn sign_challenge(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Unlock")] unlock: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.sign_challenge(
            bytes(state, "state")?,
            string(qr_text, "qrText")?,
            arg(unlock, "unlock")?,
            time(now)?,
        )?)
    }

    /// Unlink locally (then delete the state and the biometric secret).
    #[wasm_bindgen(js_name = unlinkLocally, unchecked_return_type = "LinkedAccount")]
    pub fn unlink_locally(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.unlink_locally(bytes(state, "state")?)?)
    }
}

/// A byte argument: a `Uint8Array` (a Node `Buffer` is one), nothing else
/// (not a plain array, an `ArrayBuffer` or a string).
fn bytes(v: JsValue, what: &str) -> JsResult<Vec<u8>> {
    host::js::bytes(&v).map_err(|e| undecodable(what, &e))
}

/// An optional byte argument (`undefined` or `null`: none).
fn bytes_opt(v: JsValue, what: &str) -> JsResult<Option<Vec<u8>>> {
    if v.is_undefined() || v.is_null() {
        Ok(None)
    } else {
        bytes(v, what).map(Some)
    }
}

/// A link in progress, finished once.
#[wasm_bindgen]
#[derive(Debug)]
pub struct PendingLink(Arc<host::PendingLink>);

#[wasm_bindgen]
impl PendingLink {
    /// Not for apps: Device.startLink or Device.openPendingLink make these (throws `INVALID_STATE`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsResult<PendingLink> {
        Err(sdk_made("PendingLink", "Device.startLink or Device.openPendingLink"))
    }

    /// The request to send (again, byte for byte, when the answer was lost).
    pub fn request(&self) -> JsResult<String> {
        Ok(self.0.request()?)
    }

    /// With biometrics, right after `startLink`: the secret to keep behind a biometric prompt.
    #[wasm_bindgen(js_name = biometricSecret)]
    pub fn biometric_secret(&self) -> Option<Vec<u8>> {
        self.0.biometric_secret()
    }

    /// Seal for storage while waiting for the answer.
    pub fn sealed(&self) -> JsResult<Vec<u8>> {
        Ok(self.0.sealed()?)
    }

    /// When to stop sending the request again (epoch milliseconds).
    #[wasm_bindgen(js_name = giveUpAt)]
    pub fn give_up_at(&self) -> JsResult<f64> {
        Ok(self.0.give_up_at()?.millis_f64())
    }

    /// Finish with the portal's answer.
    #[wasm_bindgen(unchecked_return_type = "LinkFinish")]
    pub fn finish(&self, #[wasm_bindgen(unchecked_param_type = "string")] answer: JsValue) -> JsResult<JsValue> {
        out(&self.0.finish(string(answer, "answer")?)?)
    }
}

/// A status request in flight.
#[wasm_bindgen]
#[derive(Debug)]
pub struct StatusProbe(Arc<host::StatusProbe>);

#[wasm_bindgen]
impl StatusProbe {
    /// Not for apps: Device.statusRequest make these (throws `INVALID_STATE`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsResult<StatusProbe> {
        Err(sdk_made("StatusProbe", "Device.statusRequest"))
    }

    /// Text to send to the portal.
    pub fn request(&self) -> JsResult<String> {
        Ok(self.0.request()?)
    }

    /// Seal for storage until the answer arrives (`Device.openStatusProbe`).
    pub fn sealed(&self) -> JsResult<Vec<u8>> {
        Ok(self.0.sealed()?)
    }

    /// Read the portal's answer (once per probe).
    #[wasm_bindgen(unchecked_return_type = "LinkStatus")]
    pub fn read(&self, #[wasm_bindgen(unchecked_param_type = "string")] answer: JsValue) -> JsResult<JsValue> {
        out(&self.0.read(string(answer, "answer")?)?)
    }
}

/// A portal identity and its operations.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Portal(Arc<host::Portal>);

#[wasm_bindgen]
impl Portal {
    /// Not for apps: Portal.generate or Portal.fromSecret make these (throws `INVALID_STATE`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsResult<Portal> {
        Err(sdk_made("Portal", "Portal.generate or Portal.fromSecret"))
    }

    /// A new portal identity.
    pub fn generate(#[wasm_bindgen(unchecked_param_type = "string")] name: JsValue) -> JsResult<Portal> {
        Ok(Portal(Arc::new(host::Portal::generate(string(name, "name")?)?)))
    }

    /// Restore from the 32-byte secret.
    #[wasm_bindgen(js_name = fromSecret)]
    pub fn from_secret(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
    ) -> JsResult<Portal> {
        Ok(Portal(Arc::new(host::Portal::from_secret(bytes(secret, "secret")?, string(name, "name")?)?)))
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> Vec<u8> {
        self.0.secret()
    }

    /// The 33-byte public key.
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    /// Public key fingerprint.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    /// Display name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// A single-use link QR code for `account`.
    #[wasm_bindgen(js_name = createOffer, unchecked_return_type = "LinkOffer")]
    pub fn create_offer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] account: JsValue,
        #[wasm_bindgen(unchecked_param_type = "OfferSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.create_offer(string(account, "account")?, opt(settings, "settings")?, time(now)?)?)
    }

    /// Decrypt a device's link request.
    #[wasm_bindgen(js_name = openLinkRequest)]
    pub fn open_link_request(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: JsValue,
    ) -> JsResult<LinkRequest> {
        Ok(LinkRequest(self.0.clone().open_link_request(string(request, "request")?)?))
    }

    /// Check a typed code against the links of one account waiting for it.
    #[wasm_bindgen(js_name = confirmLink, unchecked_return_type = "LinkConfirmation")]
    pub fn confirm_link(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredPendingLink[]")] pendings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.confirm_link(arg(pendings, "pendings")?, string(code, "code")?, time(now)?)?)
    }

    /// Rename a device.
    #[wasm_bindgen(js_name = renameDevice, unchecked_return_type = "PortalChange")]
    pub fn rename_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.rename_device(arg(device, "device")?, string(name, "name")?, time(now)?)?)
    }

    /// Unlink a device.
    #[wasm_bindgen(js_name = unlinkDevice, unchecked_return_type = "PortalChange")]
    pub fn unlink_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.unlink_device(arg(device, "device")?, time(now)?)?)
    }

    /// The device id a status request claims.
    #[wasm_bindgen(js_name = statusRequestDevice)]
    pub fn status_request_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: JsValue,
    ) -> JsResult<String> {
        Ok(self.0.status_request_device(string(request, "request")?)?)
    }

    /// Answer a device's status request.
    #[wasm_bindgen(js_name = answerStatus)]
    pub fn answer_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] request: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StatusLookup")] lookup: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<String> {
        Ok(self.0.answer_status(string(request, "request")?, opt(lookup, "lookup")?, time(now)?)?)
    }

    /// Verify a time-based code shown by a linked device.
    #[wasm_bindgen(js_name = verifyDeviceCode, unchecked_return_type = "CodeCheck")]
    pub fn verify_device_code(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.verify_device_code(arg(device, "device")?, string(code, "code")?, time(now)?)?)
    }

    /// A login or transaction challenge for the account's device rows (or the one the user picked).
    #[wasm_bindgen(js_name = createChallenge, unchecked_return_type = "ChallengeIssued")]
    pub fn create_challenge(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice[]")] devices: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Approval")] approval: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ChallengeSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.create_challenge(
            arg(devices, "devices")?,
            arg(approval, "approval")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Judge a challenge answer (typed digits or a signed answer); store the change whatever the verdict.
    #[wasm_bindgen(js_name = verifyAnswer, unchecked_return_type = "AnswerCheck")]
    pub fn verify_answer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredChallenge")] challenge: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice[]")] devices: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] answer: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.verify_answer(
            arg(challenge, "challenge")?,
            arg(devices, "devices")?,
            string(answer, "answer")?,
            time(now)?,
        )?)
    }

    /// Unlock a locked device after the user re-identified.
    #[wasm_bindgen(js_name = unlockDevice, unchecked_return_type = "PortalChange")]
    pub fn unlock_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice")] device: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.unlock_device(arg(device, "device")?, time(now)?)?)
    }

    /// Flow 2: an offer for a new device of `account`, vouched for by one of its devices.
    #[wasm_bindgen(js_name = createOfferForNewDevice, unchecked_return_type = "LinkOffer")]
    pub fn create_offer_for_new_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] account: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice[]")] devices: JsValue,
        #[wasm_bindgen(unchecked_param_type = "OfferSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.create_offer_for_new_device(
            string(account, "account")?,
            arg(devices, "devices")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Flow 2: the challenge a new device shows to an existing authenticator, for its pending link.
    #[wasm_bindgen(js_name = createLinkChallenge, unchecked_return_type = "ChallengeIssued")]
    pub fn create_link_challenge(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredPendingLink")] pending: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice[]")] devices: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ChallengeSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.create_link_challenge(
            arg(pending, "pending")?,
            arg(devices, "devices")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Flow 2: confirm the pending link with the authenticator's answer to its link challenge.
    #[wasm_bindgen(js_name = confirmWithAuthenticator, unchecked_return_type = "LinkConfirmation")]
    pub fn confirm_with_authenticator(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredPendingLink")] pending: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredChallenge")] challenge: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredDevice[]")] devices: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] answer: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.confirm_with_authenticator(
            arg(pending, "pending")?,
            arg(challenge, "challenge")?,
            arg(devices, "devices")?,
            string(answer, "answer")?,
            time(now)?,
        )?)
    }

    /// Flow 3: import a maker's factory file (`alreadyImported`: its serial numbers you hold, see `factoryFileSerials`).
    #[wasm_bindgen(js_name = importDevices, unchecked_return_type = "DeviceImport")]
    pub fn import_devices(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] file: JsValue,
        #[wasm_bindgen(js_name = alreadyImported, unchecked_param_type = "string[]")] already: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.import_devices(string(file, "file")?, arg(already, "alreadyImported")?, time(now)?)?)
    }

    /// Flow 3: an order for `account` with the activation code the user chose; sends the in-stock `authenticator`.
    #[wasm_bindgen(js_name = orderDevice, unchecked_return_type = "DeviceOrder")]
    pub fn order_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] account: JsValue,
        #[wasm_bindgen(js_name = activationCode, unchecked_param_type = "string")] code: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredAuthenticator")] authenticator: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ActivationSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.order_device(
            string(account, "account")?,
            string(code, "activationCode")?,
            arg(authenticator, "authenticator")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Flow 3: start (or restart) the activation of an order: the first QR code.
    #[wasm_bindgen(js_name = startActivation, unchecked_return_type = "ActivationUpdate")]
    pub fn start_activation(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredOrder")] order: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredAuthenticator")] authenticator: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ActivationSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.start_activation(
            arg(order, "order")?,
            arg(authenticator, "authenticator")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Flow 3: the user's entry for the current step; store the change whatever the verdict.
    #[wasm_bindgen(js_name = activationNext, unchecked_return_type = "ActivationUpdate")]
    #[allow(clippy::too_many_arguments)] // the host call's arguments, one each
    pub fn activation_next(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredActivation")] activation: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredOrder")] order: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredAuthenticator")] authenticator: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredCredentials | null | undefined")] credentials: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ActivationSettings | null | undefined")] settings: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.activation_next(
            arg(activation, "activation")?,
            arg(order, "order")?,
            arg(authenticator, "authenticator")?,
            arg(credentials, "credentials")?,
            string(input, "input")?,
            opt(settings, "settings")?,
            time(now)?,
        )?)
    }

    /// Flow 3: where an activation stands, with the QR code of its step (nothing to store).
    #[wasm_bindgen(js_name = activationStatus, unchecked_return_type = "ActivationUpdate")]
    pub fn activation_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredActivation")] activation: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.activation_status(arg(activation, "activation")?)?)
    }

    /// Flow 3: check the account password the activation set; store the change whatever the verdict.
    #[wasm_bindgen(js_name = verifyPassword, unchecked_return_type = "CredentialCheck")]
    pub fn verify_password(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredCredentials")] credentials: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] password: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.verify_password(arg(credentials, "credentials")?, string(password, "password")?, time(now)?)?)
    }

    /// Flow 3: drop the password and recovery codes a later activation set while they wait for its delay.
    #[wasm_bindgen(js_name = cancelPendingCredentials, unchecked_return_type = "PortalChange")]
    pub fn cancel_pending_credentials(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredCredentials")] credentials: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.cancel_pending_credentials(arg(credentials, "credentials")?, time(now)?)?)
    }

    /// Flow 3: use one recovery code (single use); store the change whatever the verdict.
    #[wasm_bindgen(js_name = redeemRecoveryCode, unchecked_return_type = "CredentialCheck")]
    pub fn redeem_recovery_code(
        &self,
        #[wasm_bindgen(unchecked_param_type = "StoredCredentials")] credentials: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.redeem_recovery_code(arg(credentials, "credentials")?, string(code, "code")?, time(now)?)?)
    }
}

/// The serial numbers of a maker's factory file (to look up which are imported already).
#[wasm_bindgen(js_name = factoryFileSerials, unchecked_return_type = "string[]")]
pub fn factory_file_serials(#[wasm_bindgen(unchecked_param_type = "string")] file: JsValue) -> JsResult<JsValue> {
    out(&host::factory_file_serials(string(file, "file")?)?)
}

/// An app acting as an offline authenticator (flow 3), bound to the app's 32-byte storage key.
#[wasm_bindgen]
#[derive(Debug)]
pub struct OfflineAuthenticator(Arc<host::OfflineAuthenticator>);

#[wasm_bindgen]
impl OfflineAuthenticator {
    /// An authenticator bound to a 32-byte storage key.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")] key: JsValue,
    ) -> JsResult<OfflineAuthenticator> {
        Ok(OfflineAuthenticator(host::OfflineAuthenticator::new(bytes(key, "storageKey")?)?))
    }

    /// A new authenticator with serial number `serial`: its state and its factory record line.
    #[wasm_bindgen(unchecked_return_type = "NewAuthenticator")]
    pub fn create(&self, #[wasm_bindgen(unchecked_param_type = "string")] serial: JsValue) -> JsResult<JsValue> {
        out(&self.0.create(string(serial, "serial")?)?)
    }

    /// Scan an activation or challenge QR code: what to show (store the new `state`).
    #[wasm_bindgen(unchecked_return_type = "AuthenticatorScreen")]
    pub fn scan(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue,
        #[wasm_bindgen(js_name = qrText, unchecked_param_type = "string")] qr_text: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.scan(bytes(state, "state")?, string(qr_text, "qrText")?)?)
    }

    /// Serial number and binding of a state.
    #[wasm_bindgen(unchecked_return_type = "AuthenticatorInfo")]
    pub fn info(&self, #[wasm_bindgen(unchecked_param_type = "Uint8Array")] state: JsValue) -> JsResult<JsValue> {
        out(&self.0.info(bytes(state, "state")?)?)
    }
}

/// An opened link request (keep it to accept again after a write conflict).
#[wasm_bindgen]
#[derive(Debug)]
pub struct LinkRequest(Arc<host::LinkRequest>);

#[wasm_bindgen]
impl LinkRequest {
    /// Not for apps: Portal.openLinkRequest make these (throws `INVALID_STATE`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsResult<LinkRequest> {
        Err(sdk_made("LinkRequest", "Portal.openLinkRequest"))
    }

    /// The offer it claims.
    #[wasm_bindgen(getter, js_name = offerId)]
    pub fn offer_id(&self) -> String {
        self.0.offer_id()
    }

    /// The requesting device.
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.0.device_id()
    }

    /// The name the user gave the device.
    #[wasm_bindgen(getter, js_name = deviceName)]
    pub fn device_name(&self) -> String {
        self.0.device_name()
    }

    /// Decide from the rows read in one snapshot.
    #[wasm_bindgen(unchecked_return_type = "LinkAnswer")]
    pub fn accept(
        &self,
        #[wasm_bindgen(unchecked_param_type = "LinkLookup")] lookup: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    ) -> JsResult<JsValue> {
        out(&self.0.accept(arg(lookup, "lookup")?, time(now)?)?)
    }
}

/// The challenge a signed answer is for (look up that row, then `Portal.verifyAnswer`).
#[wasm_bindgen(js_name = signedAnswerChallengeId)]
pub fn signed_answer_challenge_id(
    #[wasm_bindgen(unchecked_param_type = "string")] answer: JsValue,
) -> JsResult<String> {
    Ok(host::signed_answer_challenge_id(string(answer, "answer")?)?)
}

/// HOTP (RFC 4226) code.
#[wasm_bindgen]
pub fn hotp(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] counter: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number | undefined")] digits: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OtpAlgorithm | undefined")] algorithm: JsValue,
) -> JsResult<String> {
    let digits = opt_int(digits, "digits")?.map_or(Ok(6), |d| i32::try_from(d).map_err(|e| invalid("digits", e)))?;
    Ok(host::hotp(bytes(secret, "secret")?, int(counter, "counter")?, digits, opt(algorithm, "algorithm")?)?)
}

/// TOTP (RFC 6238) code.
#[wasm_bindgen]
pub fn totp(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    #[wasm_bindgen(js_name = periodSeconds, unchecked_param_type = "number | undefined")] period: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number | undefined")] digits: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OtpAlgorithm | undefined")] algorithm: JsValue,
) -> JsResult<String> {
    let period = opt_int(period, "periodSeconds")?.unwrap_or(30);
    let digits = opt_int(digits, "digits")?.map_or(Ok(6), |d| i32::try_from(d).map_err(|e| invalid("digits", e)))?;
    Ok(host::totp(bytes(secret, "secret")?, time(now)?, period, digits, opt(algorithm, "algorithm")?)?)
}

/// OCRA (RFC 6287) response.
#[wasm_bindgen]
pub fn ocra(
    #[wasm_bindgen(unchecked_param_type = "string")] suite: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] key: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OcraParams")] params: JsValue,
) -> JsResult<String> {
    Ok(host::ocra(string(suite, "suite")?, bytes(key, "key")?, opt(params, "params")?)?)
}

/// RFC 4648 base32 without padding.
#[wasm_bindgen(js_name = base32Encode)]
pub fn base32_encode(#[wasm_bindgen(unchecked_param_type = "Uint8Array")] data: JsValue) -> JsResult<String> {
    Ok(host::base32_encode(bytes(data, "data")?))
}

/// Lenient base32 decoding.
#[wasm_bindgen(js_name = base32Decode)]
pub fn base32_decode(#[wasm_bindgen(unchecked_param_type = "string")] text: JsValue) -> JsResult<Vec<u8>> {
    Ok(host::base32_decode(string(text, "text")?)?)
}

/// A fresh 160-bit OTP secret.
#[wasm_bindgen(js_name = newOtpSecret)]
pub fn new_otp_secret() -> JsResult<Vec<u8>> {
    Ok(host::new_otp_secret()?)
}

/// Parse an `otpauth://` URI.
#[wasm_bindgen(js_name = parseOtpauthUri, unchecked_return_type = "OtpAuthUri")]
pub fn parse_otpauth_uri(
    #[wasm_bindgen(unchecked_param_type = "string")] uri: JsValue,
    #[wasm_bindgen(js_name = allowShortSecret, unchecked_param_type = "boolean | undefined")] allow_short: JsValue,
) -> JsResult<JsValue> {
    out(&host::parse_otpauth_uri(string(uri, "uri")?, flag(allow_short, "allowShortSecret")?)?)
}

/// Format a Key URI in canonical form.
#[wasm_bindgen(js_name = formatOtpauthUri)]
pub fn format_otpauth_uri(#[wasm_bindgen(unchecked_param_type = "OtpAuthUri")] uri: JsValue) -> JsResult<String> {
    Ok(host::format_otpauth_uri(arg(uri, "uri")?)?)
}

/// The current code of an `otpauth://` URI.
#[wasm_bindgen(js_name = otpauthCode)]
pub fn otpauth_code(
    #[wasm_bindgen(unchecked_param_type = "string")] uri: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
    #[wasm_bindgen(js_name = allowShortSecret, unchecked_param_type = "boolean | undefined")] allow_short: JsValue,
) -> JsResult<String> {
    Ok(host::otpauth_code(string(uri, "uri")?, time(now)?, flag(allow_short, "allowShortSecret")?)?)
}

/// Verify a TOTP code; store `state` in every case.
#[wasm_bindgen(js_name = verifyTotp, unchecked_return_type = "OtpCheck")]
pub fn verify_totp(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierState | undefined")] state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
) -> JsResult<JsValue> {
    out(&host::verify_totp(arg(config, "config")?, opt(state, "state")?, string(code, "code")?, time(now)?)?)
}

/// Verify a HOTP code; store `state` in every case.
#[wasm_bindgen(js_name = verifyHotp, unchecked_return_type = "OtpCheck")]
pub fn verify_hotp(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierState | undefined")] state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
) -> JsResult<JsValue> {
    out(&host::verify_hotp(arg(config, "config")?, opt(state, "state")?, string(code, "code")?, time(now)?)?)
}

/// Resynchronise a HOTP credential with two consecutive codes.
#[wasm_bindgen(js_name = resyncHotp, unchecked_return_type = "OtpCheck")]
pub fn resync_hotp(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: JsValue,
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierState | undefined")] state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code1: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code2: JsValue,
    #[wasm_bindgen(js_name = searchWindow, unchecked_param_type = "number")] window: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Timestamp | Date")] now: JsValue,
) -> JsResult<JsValue> {
    let (c1, c2) = (string(code1, "code1")?, string(code2, "code2")?);
    out(&host::resync_hotp(
        arg(config, "config")?,
        opt(state, "state")?,
        c1,
        c2,
        int(window, "searchWindow")?,
        time(now)?,
    )?)
}

/// Unlock a locked credential: the state to store.
#[wasm_bindgen(js_name = unlockVerifier, unchecked_return_type = "OtpVerifierState")]
pub fn unlock_verifier(#[wasm_bindgen(unchecked_param_type = "OtpVerifierState")] state: JsValue) -> JsResult<JsValue> {
    out(&host::unlock_verifier(arg(state, "state")?)?)
}
