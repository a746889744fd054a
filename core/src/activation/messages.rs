//! The two activation QR codes (kind `0x30`). Fixed layouts, read in place
//! by the device (no allocation):
//!
//! ```text
//! possession: 30 01 || 01 || hint (4) || E (33) || name_len (1) || portal name || mac (16)
//!             mac = HMAC(K_qr, every byte before it)[..16]
//! binding:    30 01 || 02 || hint (4) || E (33) || generation (4, BE)
//!             || ChaCha20-Poly1305(K_wrap, nonce 0, aad = every byte before,
//!                  name_len (1) || portal name || uid_len (1) || user ID)
//! ```
//!
//! `E` is a fresh P-256 key of the portal for each QR code; the keys come
//! from `ECDH(e, D)` with the device's key `D` (see `super`).

use super::{label, MAX_USER_ID_LEN};
use crate::crypto::{hmac_sha256, open_once_into, seal_once, PUBLIC_KEY_LEN};
use crate::error::{err, ErrorCode, Result};
use crate::link::{name_ok, MAX_PORTAL_NAME_LEN};
use crate::secret::ct_eq;
use crate::wire::{self, Kind};
use alloc::string::String;
use alloc::vec::Vec;

pub(crate) const STEP_POSSESSION: u8 = 1;
pub(crate) const STEP_BINDING: u8 = 2;
/// Bytes of the binding plaintext at most: two lengths, two texts.
pub(crate) const MAX_BINDING_PLAIN: usize = 1 + MAX_PORTAL_NAME_LEN + 1 + MAX_USER_ID_LEN;

/// The first QR code, as the portal makes it.
pub(crate) fn possession_qr(qr_key: &[u8; 32], hint: &[u8; 4], e_pk: &[u8], portal_name: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + 1 + 4 + PUBLIC_KEY_LEN + 1 + portal_name.len() + 16);
    b.extend_from_slice(&wire::header(Kind::ActivationQr));
    b.push(STEP_POSSESSION);
    b.extend_from_slice(hint);
    b.extend_from_slice(e_pk);
    b.push(portal_name.len() as u8);
    b.extend_from_slice(portal_name.as_bytes());
    let mac = hmac_sha256(qr_key, &[&b]);
    b.extend_from_slice(&mac[..16]);
    b
}

/// The second QR code, as the portal makes it.
pub(crate) fn binding_qr(
    wrap_key: &[u8; 32],
    hint: &[u8; 4],
    e_pk: &[u8],
    generation: u32,
    portal_name: &str,
    user_id: &str,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + 1 + 4 + PUBLIC_KEY_LEN + 4 + MAX_BINDING_PLAIN + 16);
    b.extend_from_slice(&wire::header(Kind::ActivationQr));
    b.push(STEP_BINDING);
    b.extend_from_slice(hint);
    b.extend_from_slice(e_pk);
    b.extend_from_slice(&generation.to_be_bytes());
    let mut plain = Vec::with_capacity(MAX_BINDING_PLAIN);
    plain.push(portal_name.len() as u8);
    plain.extend_from_slice(portal_name.as_bytes());
    plain.push(user_id.len() as u8);
    plain.extend_from_slice(user_id.as_bytes());
    let ct = seal_once(wrap_key, &b, &plain);
    b.extend_from_slice(&ct);
    b
}

/// An activation QR code read in place.
pub(crate) enum ActivationQrRef<'a> {
    /// The first QR code: the device shows its device code.
    Possession {
        /// Which device it is for.
        hint: [u8; 4],
        /// The portal's ephemeral key.
        e_pk: [u8; PUBLIC_KEY_LEN],
        /// The bytes the MAC covers.
        signed: &'a [u8],
        /// The MAC.
        mac: &'a [u8],
        /// Whom the device is activated for.
        portal_name: &'a str,
    },
    /// The second QR code: the binding to a user.
    Binding {
        /// Which device it is for.
        hint: [u8; 4],
        /// The portal's ephemeral key.
        e_pk: [u8; PUBLIC_KEY_LEN],
        /// The binding's generation (higher than any earlier one).
        generation: u32,
        /// The associated data (every byte before the ciphertext).
        aad: &'a [u8],
        /// The sealed binding.
        ciphertext: &'a [u8],
    },
}

fn malformed() -> crate::Error {
    err(ErrorCode::MalformedMessage, "the activation QR code is malformed or truncated")
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if b.len() < n {
        return Err(malformed());
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn array<const N: usize>(b: &mut &[u8]) -> Result<[u8; N]> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(b, N)?);
    Ok(a)
}

impl<'a> ActivationQrRef<'a> {
    /// Parse the bytes of an activation QR code (header checked here).
    pub fn parse(bytes: &'a [u8]) -> Result<ActivationQrRef<'a>> {
        let mut rest = wire::strip_header(bytes, Kind::ActivationQr)?;
        let step = array::<1>(&mut rest)?[0];
        let hint = array::<4>(&mut rest)?;
        let e_pk = array::<PUBLIC_KEY_LEN>(&mut rest)?;
        match step {
            STEP_POSSESSION => {
                let len = usize::from(array::<1>(&mut rest)?[0]);
                let name = core::str::from_utf8(take(&mut rest, len)?).map_err(|_| malformed())?;
                if !name_ok(name, MAX_PORTAL_NAME_LEN) {
                    return Err(malformed());
                }
                let mac = take(&mut rest, 16)?;
                if !rest.is_empty() {
                    return Err(malformed());
                }
                let signed = &bytes[..bytes.len() - 16];
                Ok(ActivationQrRef::Possession { hint, e_pk, signed, mac, portal_name: name })
            }
            STEP_BINDING => {
                let generation = u32::from_be_bytes(array::<4>(&mut rest)?);
                // At least two lengths, one byte of each text, and the tag.
                if rest.len() < 4 + 16 || rest.len() > MAX_BINDING_PLAIN + 16 {
                    return Err(malformed());
                }
                let aad = &bytes[..bytes.len() - rest.len()];
                Ok(ActivationQrRef::Binding { hint, e_pk, generation, aad, ciphertext: rest })
            }
            _ => Err(malformed()),
        }
    }

    /// `NOT_FOR_THIS_DEVICE` unless the QR code names this device's key.
    pub fn check_hint(&self, hint_of_device: &[u8; 4]) -> Result<()> {
        let hint = match self {
            ActivationQrRef::Possession { hint, .. } | ActivationQrRef::Binding { hint, .. } => hint,
        };
        if !ct_eq(hint, hint_of_device) {
            return Err(err(ErrorCode::NotForThisDevice, "this activation QR code is for another device"));
        }
        Ok(())
    }
}

/// Check the first QR code's MAC (`MESSAGE_TAMPERED`).
pub(crate) fn check_possession_mac(qr_key: &[u8; 32], signed: &[u8], mac: &[u8]) -> Result<()> {
    let want = hmac_sha256(qr_key, &[signed]);
    if !ct_eq(&want[..16], mac) {
        return Err(err(ErrorCode::MessageTampered, "the activation QR code failed authentication"));
    }
    Ok(())
}

/// The opened binding, borrowed from the caller's buffer.
pub(crate) struct BindingPlain<'b> {
    pub portal_name: &'b str,
    pub user_id: &'b str,
}

/// Open the second QR code into `buf` (`MESSAGE_TAMPERED`, or
/// `MALFORMED_MESSAGE` for an authentic binding with invalid texts).
pub(crate) fn open_binding<'b>(
    wrap_key: &[u8; 32],
    aad: &[u8],
    ciphertext: &[u8],
    buf: &'b mut [u8; MAX_BINDING_PLAIN],
) -> Result<BindingPlain<'b>> {
    let n = open_once_into(wrap_key, aad, ciphertext, &mut buf[..])?;
    let mut rest: &'b [u8] = &buf[..n];
    let len = usize::from(array::<1>(&mut rest)?[0]);
    let portal_name = core::str::from_utf8(take(&mut rest, len)?).map_err(|_| malformed())?;
    let len = usize::from(array::<1>(&mut rest)?[0]);
    let user_id = core::str::from_utf8(take(&mut rest, len)?).map_err(|_| malformed())?;
    if !rest.is_empty() || !name_ok(portal_name, MAX_PORTAL_NAME_LEN) || !name_ok(user_id, MAX_USER_ID_LEN) {
        return Err(malformed());
    }
    Ok(BindingPlain { portal_name, user_id })
}

/// The device code of a first QR code (its whole bytes).
pub(crate) fn device_code(qr_key: &[u8; 32], qr_bytes: &[u8]) -> super::Code {
    super::code_of(qr_key, label::DEVICE_CODE, qr_bytes, super::DEVICE_CODE_DIGITS)
}

/// The binding code of a second QR code (its whole bytes).
pub(crate) fn binding_code(root: &[u8; 32], qr_bytes: &[u8]) -> super::Code {
    super::code_of(root, label::BINDING_CODE, qr_bytes, super::BINDING_CODE_DIGITS)
}

/// QR text of bytes.
pub(crate) fn qr_text(bytes: &[u8]) -> String {
    wire::to_qr_text(bytes)
}
