//! The wire messages of flow 1, each a type with its encoding and decoding
//! in this one module (docs/PROTOCOL.md): the link QR code ([`LinkOffer`]),
//! the encrypted link request ([`LinkRequest`] around [`RequestBody`]), the
//! link answer ([`LinkAnswer`] around [`AnswerBody`]), and the status
//! request and answer, whose MAC input is defined once ([`status_mac`]).
//! Both sides use these types: no message is built or parsed elsewhere.

use super::passcode::PasscodePolicy;
use super::{check_name, label, MAX_PORTAL_NAME_LEN, MAX_REQUEST_TEXT};
use crate::crypto::{decode_public, hmac_sha256, open_once, open_siv, seal_once, seal_siv, sha256, PUBLIC_KEY_LEN};
use crate::error::{err, ErrorCode, Result};
use crate::secret::ct_eq;
use crate::wire::{self, Kind};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The link QR code (kind `0x01`): `commitment (16) || portal_pk (33) ||
/// expires_at (u32) || policy (2) || name_len (1) || portal_name`.
pub(crate) struct LinkOffer {
    pub commitment: [u8; 16],
    pub portal_pk: [u8; PUBLIC_KEY_LEN],
    pub expires_at: u32,
    pub policy: PasscodePolicy,
    pub portal_name: String,
}

const OFFER_FIXED: usize = 16 + PUBLIC_KEY_LEN + 4 + 2 + 1;

impl LinkOffer {
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(2 + OFFER_FIXED + self.portal_name.len());
        b.extend_from_slice(&wire::header(Kind::LinkOffer));
        b.extend_from_slice(&self.commitment);
        b.extend_from_slice(&self.portal_pk);
        b.extend_from_slice(&self.expires_at.to_be_bytes());
        b.extend_from_slice(&self.policy.to_bytes());
        b.push(self.portal_name.len() as u8);
        b.extend_from_slice(self.portal_name.as_bytes());
        wire::to_qr_text(&b)
    }

    pub fn decode(text: &str) -> Result<LinkOffer> {
        let bytes = wire::from_qr_text(text)?;
        let body = wire::strip_header(&bytes, Kind::LinkOffer)?;
        if body.len() < OFFER_FIXED {
            return Err(err(ErrorCode::MalformedMessage, "the QR code is truncated"));
        }
        let (commitment, rest) = body.split_at(16);
        let (pk, rest) = rest.split_at(PUBLIC_KEY_LEN);
        let (exp, rest) = rest.split_at(4);
        let (pol, rest) = rest.split_at(2);
        let (len, name) = rest.split_at(1);
        if name.len() != usize::from(len[0]) {
            return Err(err(ErrorCode::MalformedMessage, "the QR code is truncated or has extra bytes"));
        }
        let portal_pk: [u8; PUBLIC_KEY_LEN] = wire::fixed(pk, ErrorCode::MalformedMessage)?;
        decode_public(&portal_pk, ErrorCode::MalformedMessage)?;
        let portal_name =
            core::str::from_utf8(name).map_err(|_| err(ErrorCode::MalformedMessage, "the portal name is not UTF-8"))?;
        check_name(portal_name, MAX_PORTAL_NAME_LEN, "the portal name")
            .map_err(|_| err(ErrorCode::MalformedMessage, "the portal name in the QR code is invalid"))?;
        Ok(LinkOffer {
            commitment: wire::fixed(commitment, ErrorCode::MalformedMessage)?,
            portal_pk,
            expires_at: u32::from_be_bytes(wire::fixed(exp, ErrorCode::MalformedMessage)?),
            policy: PasscodePolicy::from_bytes([pol[0], pol[1]])?,
            portal_name: portal_name.into(),
        })
    }
}

/// Body of a link request (postcard, inside the AEAD).
#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub(crate) struct RequestBody {
    pub commitment: [u8; 16],
    pub device_pk: Vec<u8>,
    pub device_name: String,
    pub answer_key: [u8; 32],
    pub biometrics: bool,
    /// The passcode policy the device saw in the QR code (2 bytes).
    pub policy: [u8; 2],
    /// ECDSA by the device key over `LINK_POP || transcript`.
    pub pop: Vec<u8>,
}

/// Link request (kind `0x02`): `eph_pk (33) || ChaCha20-Poly1305(request
/// key, zero nonce, aad = 02 01 || eph_pk || portal_pk, postcard(body))`.
pub(crate) struct LinkRequest {
    pub eph_pk: [u8; PUBLIC_KEY_LEN],
    pub sealed: Vec<u8>,
}

impl LinkRequest {
    fn aad(eph_pk: &[u8], portal_pk: &[u8]) -> Vec<u8> {
        [&wire::header(Kind::LinkRequest)[..], eph_pk, portal_pk].concat()
    }

    /// Encrypt `body` to the portal under `key` (one request per key).
    pub fn seal(key: &[u8; 32], eph_pk: &[u8; PUBLIC_KEY_LEN], portal_pk: &[u8], body: &RequestBody) -> String {
        let plain = Zeroizing::new(postcard::to_allocvec(body).unwrap_or_else(|_| unreachable!()));
        let sealed = seal_once(key, &Self::aad(eph_pk, portal_pk), &plain);
        LinkRequest { eph_pk: *eph_pk, sealed }.encode()
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + PUBLIC_KEY_LEN + self.sealed.len());
        out.extend_from_slice(&wire::header(Kind::LinkRequest));
        out.extend_from_slice(&self.eph_pk);
        out.extend_from_slice(&self.sealed);
        out
    }

    pub fn encode(&self) -> String {
        wire::to_text(&self.to_bytes())
    }

    /// SHA-256 of the whole message (header included): a repeat of the
    /// request that used an offer has the same hash.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&[&self.to_bytes()])
    }

    /// The structure, before any public-key work: at most
    /// [`MAX_REQUEST_TEXT`] characters, the right kind, not truncated.
    pub fn decode(text: &str) -> Result<LinkRequest> {
        if text.len() > MAX_REQUEST_TEXT {
            return Err(err(ErrorCode::MalformedMessage, "the link request is too long"));
        }
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::LinkRequest)?;
        if body.len() < PUBLIC_KEY_LEN + 16 {
            return Err(err(ErrorCode::MalformedMessage, "the link request is truncated"));
        }
        let (eph, sealed) = body.split_at(PUBLIC_KEY_LEN);
        Ok(LinkRequest { eph_pk: wire::fixed(eph, ErrorCode::MalformedMessage)?, sealed: sealed.to_vec() })
    }

    /// Decrypt the body with the request key derived for `portal_pk`.
    pub fn open(&self, key: &[u8; 32], portal_pk: &[u8]) -> Result<RequestBody> {
        let plain = open_once(key, &Self::aad(&self.eph_pk, portal_pk), &self.sealed)?;
        wire::decode_body(&plain, ErrorCode::MalformedMessage)
    }
}

/// Body of an accepting link answer (postcard, inside the AEAD).
#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub(crate) struct AcceptedBody {
    pub portal_nonce: [u8; 32],
    pub account: String,
    pub device_id: String,
    pub linked_at: u64,
    pub confirm_by: u64,
    #[zeroize(skip)]
    pub totp: super::DeviceTotpPolicy,
}

/// Body of a refusing link answer (postcard, inside the AEAD).
#[derive(Serialize, Deserialize)]
pub(crate) struct RefusedBody {
    pub code: String,
}

/// What a link answer says.
pub(crate) enum AnswerBody {
    /// Status byte 0, sealed under the acceptance keys.
    Accepted(AcceptedBody),
    /// Status byte 1, sealed under the refusal keys.
    Refused(RefusedBody),
}

/// Cleartext byte after the answer header: which key sealed the body.
const ANSWER_ACCEPTED: u8 = 0;
const ANSWER_REFUSED: u8 = 1;

/// Link answer (kind `0x03`): `status (1) || SIV-seal(answer keys of the
/// status, aad = 03 01 || status || transcript, postcard(body))`.
pub(crate) struct LinkAnswer {
    /// Whether the acceptance keys sealed the body (status byte 0).
    pub accepted: bool,
    pub sealed: Vec<u8>,
}

impl LinkAnswer {
    fn aad(accepted: bool, th: &[u8; 32]) -> Vec<u8> {
        let status = if accepted { ANSWER_ACCEPTED } else { ANSWER_REFUSED };
        [&wire::header(Kind::LinkAnswer)[..], &[status], &th[..]].concat()
    }

    /// Seal `body` under `keys`, the answer keys of its kind (acceptance
    /// or refusal: [`super::answer_keys`]).
    pub fn seal(keys: &[u8; 64], th: &[u8; 32], body: &AnswerBody) -> String {
        let (accepted, plain) = match body {
            AnswerBody::Accepted(b) => (true, postcard::to_allocvec(b)),
            AnswerBody::Refused(b) => (false, postcard::to_allocvec(b)),
        };
        let plain = Zeroizing::new(plain.unwrap_or_else(|_| unreachable!()));
        LinkAnswer { accepted, sealed: seal_siv(keys, &Self::aad(accepted, th), &plain) }.encode()
    }

    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(3 + self.sealed.len());
        out.extend_from_slice(&wire::header(Kind::LinkAnswer));
        out.push(if self.accepted { ANSWER_ACCEPTED } else { ANSWER_REFUSED });
        out.extend_from_slice(&self.sealed);
        wire::to_text(&out)
    }

    /// The structure: kind, status byte.
    pub fn decode(text: &str) -> Result<LinkAnswer> {
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::LinkAnswer)?;
        let (&status, sealed) =
            body.split_first().ok_or(err(ErrorCode::MalformedMessage, "the link answer is truncated"))?;
        let accepted = match status {
            ANSWER_ACCEPTED => true,
            ANSWER_REFUSED => false,
            _ => return Err(err(ErrorCode::MalformedMessage, "the link answer has an unknown status")),
        };
        Ok(LinkAnswer { accepted, sealed: sealed.to_vec() })
    }

    /// Authenticate and decrypt with `keys`, the answer keys of
    /// [`LinkAnswer::accepted`]'s kind.
    pub fn open(&self, keys: &[u8; 64], th: &[u8; 32]) -> Result<AnswerBody> {
        let plain = open_siv(keys, &Self::aad(self.accepted, th), &self.sealed)?;
        Ok(if self.accepted {
            AnswerBody::Accepted(wire::decode_body(&plain, ErrorCode::MalformedMessage)?)
        } else {
            AnswerBody::Refused(wire::decode_body(&plain, ErrorCode::MalformedMessage)?)
        })
    }
}

/// Status byte of a status answer (docs/PROTOCOL.md).
pub(crate) mod status_byte {
    pub const ACTIVE: u8 = 0;
    pub const UNLINKED: u8 = 1;
    pub const NOT_CONFIRMED: u8 = 2;
    pub const AWAITING_CONFIRMATION: u8 = 3;
}

/// The MAC of both status messages, their one definition:
/// `HMAC(channel_key, label || header || device_id || nonce || last)`, with
/// the request's label, header `04 01` and `last = time (u64)`, or the
/// answer's label, header `05 01` and `last = status (1)`.
pub(crate) fn status_mac(channel_key: &[u8], kind: Kind, device_id: &[u8], nonce: &[u8; 16], last: &[u8]) -> [u8; 32] {
    let l = if kind == Kind::StatusRequest { label::STATUS_REQUEST } else { label::STATUS_ANSWER };
    hmac_sha256(channel_key, &[l, &wire::header(kind), device_id, nonce, last])
}

/// Status request (kind `0x04`): `device_id (8) || nonce (16) || time (u64) || mac (32)`.
#[derive(Clone, Debug)]
pub(crate) struct StatusRequest {
    pub device_id: [u8; 8],
    pub nonce: [u8; 16],
    pub time: u64,
    pub mac: [u8; 32],
}

impl StatusRequest {
    fn expected_mac(channel_key: &[u8], device_id: &[u8; 8], nonce: &[u8; 16], time: u64) -> [u8; 32] {
        status_mac(channel_key, Kind::StatusRequest, device_id, nonce, &time.to_be_bytes())
    }

    pub fn seal(channel_key: &[u8], device_id: [u8; 8], nonce: [u8; 16], time: u64) -> String {
        let mac = Self::expected_mac(channel_key, &device_id, &nonce, time);
        let mut b = Vec::from(wire::header(Kind::StatusRequest));
        b.extend_from_slice(&device_id);
        b.extend_from_slice(&nonce);
        b.extend_from_slice(&time.to_be_bytes());
        b.extend_from_slice(&mac);
        wire::to_text(&b)
    }

    pub fn decode(text: &str) -> Result<StatusRequest> {
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::StatusRequest)?;
        if body.len() != 8 + 16 + 8 + 32 {
            return Err(err(ErrorCode::MalformedMessage, "the status request has the wrong length"));
        }
        let (id, rest) = body.split_at(8);
        let (nonce, rest) = rest.split_at(16);
        let (time, mac) = rest.split_at(8);
        Ok(StatusRequest {
            device_id: wire::fixed(id, ErrorCode::MalformedMessage)?,
            nonce: wire::fixed(nonce, ErrorCode::MalformedMessage)?,
            time: u64::from_be_bytes(wire::fixed(time, ErrorCode::MalformedMessage)?),
            mac: wire::fixed(mac, ErrorCode::MalformedMessage)?,
        })
    }

    /// Whether the MAC is right under `channel_key` (constant time).
    pub fn is_authentic(&self, channel_key: &[u8]) -> bool {
        ct_eq(&Self::expected_mac(channel_key, &self.device_id, &self.nonce, self.time), &self.mac)
    }
}

/// Status answer (kind `0x05`): `nonce (16) || status (1) || mac (32)`.
pub(crate) struct StatusAnswer;

impl StatusAnswer {
    fn mac(channel_key: &[u8], device_id: &[u8], nonce: &[u8; 16], status: u8) -> [u8; 32] {
        status_mac(channel_key, Kind::StatusAnswer, device_id, nonce, &[status])
    }

    pub fn seal(channel_key: &[u8], device_id: &[u8], nonce: [u8; 16], status: u8) -> String {
        let mut b = Vec::from(wire::header(Kind::StatusAnswer));
        b.extend_from_slice(&nonce);
        b.push(status);
        b.extend_from_slice(&Self::mac(channel_key, device_id, &nonce, status));
        wire::to_text(&b)
    }

    /// The authenticated status byte of an answer to the probe `nonce`.
    pub fn open(text: &str, channel_key: &[u8], device_id: &[u8], nonce: &[u8; 16]) -> Result<u8> {
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::StatusAnswer)?;
        if body.len() != 16 + 1 + 32 {
            return Err(err(ErrorCode::MalformedMessage, "the status answer has the wrong length"));
        }
        let status = body[16];
        let expected = Self::mac(channel_key, device_id, nonce, status);
        if !ct_eq(&body[..16], nonce) || !ct_eq(&expected, &body[17..]) {
            return Err(err(ErrorCode::MessageTampered, "the status answer failed authentication"));
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn vector(key: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(include_str!("../../vectors/link.json")).unwrap();
        v[key].as_str().unwrap().to_string()
    }

    /// Every golden message decodes into its type and encodes back to the
    /// same text: the types are the wire format.
    #[test]
    fn golden_messages_round_trip_through_their_types() {
        let qr = vector("qr_text");
        assert_eq!(LinkOffer::decode(&qr).unwrap().encode(), qr);
        let request = vector("request");
        let r = LinkRequest::decode(&request).unwrap();
        assert_eq!(r.encode(), request);
        assert_eq!(r.hash(), sha256(&[&wire::from_text(&request).unwrap()]));
        let answer = vector("answer");
        let a = LinkAnswer::decode(&answer).unwrap();
        assert!(a.accepted);
        assert_eq!(a.encode(), answer);
    }

    #[test]
    fn status_messages_round_trip_and_authenticate() {
        let key = [7u8; 32];
        let text = StatusRequest::seal(&key, [1; 8], [2; 16], 1_767_225_600);
        let r = StatusRequest::decode(&text).unwrap();
        assert_eq!((r.device_id, r.nonce, r.time), ([1; 8], [2; 16], 1_767_225_600));
        assert!(r.is_authentic(&key));
        assert!(!r.is_authentic(&[8u8; 32]));
        let answer = StatusAnswer::seal(&key, &r.device_id, r.nonce, status_byte::AWAITING_CONFIRMATION);
        assert_eq!(StatusAnswer::open(&answer, &key, &r.device_id, &r.nonce), Ok(status_byte::AWAITING_CONFIRMATION));
        assert_eq!(
            StatusAnswer::open(&answer, &key, &[9; 8], &r.nonce).unwrap_err().code(),
            ErrorCode::MessageTampered
        );
        // The two MACs differ in label and header: one never passes for the other.
        assert_ne!(
            status_mac(&key, Kind::StatusRequest, &[1; 8], &[2; 16], &[0]),
            status_mac(&key, Kind::StatusAnswer, &[1; 8], &[2; 16], &[0])
        );
    }
}
