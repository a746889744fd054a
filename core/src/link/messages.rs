//! Fixed-layout messages of flow 1, each a type with `encode`/`decode`
//! (docs/PROTOCOL.md). The encrypted request and answer are built in
//! `device.rs`/`portal.rs` around postcard bodies.

use super::passcode::PasscodePolicy;
use super::{check_name, label, MAX_PORTAL_NAME_LEN};
use crate::crypto::{decode_public, hmac_sha256, PUBLIC_KEY_LEN};
use crate::error::{err, ErrorCode, Result};
use crate::secret::ct_eq;
use crate::wire::{self, Kind};
use alloc::string::String;
use alloc::vec::Vec;

/// The link QR code (kind `0x01`).
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

/// `HMAC(channel_key, label || 04 01 || device_id || nonce || time)`.
pub(crate) fn status_request_mac(channel_key: &[u8], device_id: &[u8], nonce: &[u8; 16], time: u64) -> [u8; 32] {
    let header = wire::header(Kind::StatusRequest);
    hmac_sha256(channel_key, &[label::STATUS_REQUEST, &header, device_id, nonce, &time.to_be_bytes()])
}

/// Status request (kind `0x04`): `device_id (8) || nonce (16) || time (u64) || mac (32)`.
pub(crate) struct StatusRequest {
    pub device_id: [u8; 8],
    pub nonce: [u8; 16],
    pub time: u64,
    pub mac: [u8; 32],
}

impl StatusRequest {
    pub fn seal(channel_key: &[u8], device_id: [u8; 8], nonce: [u8; 16], time: u64) -> String {
        let mac = status_request_mac(channel_key, &device_id, &nonce, time);
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
}

/// Status answer (kind `0x05`): `nonce (16) || status (1) || mac (32)`,
/// `mac = HMAC(channel_key, label || 05 01 || device_id || nonce || status)`.
pub(crate) struct StatusAnswer;

impl StatusAnswer {
    fn mac(channel_key: &[u8], device_id: &[u8], nonce: &[u8; 16], status: u8) -> [u8; 32] {
        let header = wire::header(Kind::StatusAnswer);
        hmac_sha256(channel_key, &[label::STATUS_ANSWER, &header, device_id, nonce, &[status]])
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
