//! The wire messages of challenge/response: the challenge QR code (kind
//! `0x20`) and the signed answer (kind `0x21`). Both sides use these types.

use super::{displayable, label, Approval, ANSWER_DIGITS, MAX_CHALLENGE_DEVICES};
use crate::crypto::{hkdf, hmac_sha256, open_once_into, seal_once, sha256, SIGNATURE_LEN};
use crate::error::{err, ErrorCode, Result};
use crate::secret::ct_eq;
use crate::wire::{self, Kind};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Longest challenge QR text read (4 devices and the longest transaction
/// are about 640 characters): longer texts are refused before any work.
pub(crate) const MAX_CHALLENGE_QR_TEXT: usize = 1024;

/// Bytes of one recipient slot: `tag (4) || k XOR pad (16)`.
pub(crate) const SLOT_LEN: usize = 20;

/// The encrypted part of a challenge QR (postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChallengeBody {
    pub expires_at: u64,
    pub digits: u8,
    pub approval: Approval,
}

/// [`ChallengeBody`] by reference: the same postcard bytes, for hashing a
/// stored record without copying its approval.
#[derive(Serialize)]
pub(crate) struct ChallengeBodyRef<'a> {
    pub expires_at: u64,
    pub digits: u8,
    pub approval: &'a Approval,
}

/// Per-device slot tag and pad, from the device's channel key and the
/// challenge nonce.
pub(crate) fn slot_keys(channel_key: &[u8], nonce: &[u8; 16]) -> ([u8; 4], Zeroizing<[u8; 16]>) {
    let tag = hkdf::<4>(nonce, channel_key, &[label::CHALLENGE_TAG]);
    let pad = hkdf::<16>(nonce, channel_key, &[label::CHALLENGE_WRAP]);
    (*tag, pad)
}

fn body_key(k: &[u8; 16], nonce: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    hkdf(nonce, k, &[label::CHALLENGE_BODY])
}

/// `challenge_id = hex(H("tessera/v1/challenge-id" || nonce)[..16])`.
pub(crate) fn challenge_id(nonce: &[u8; 16]) -> alloc::string::String {
    crate::encoding::hex_encode(&sha256(&[label::CHALLENGE_ID, nonce])[..16])
}

/// `H("tessera/v1/challenge" || 20 01 || nonce || postcard(body))`: what the
/// answer covers, every byte the device showed.
pub(crate) fn challenge_hash(nonce: &[u8; 16], body: &[u8]) -> [u8; 32] {
    sha256(&[label::CHALLENGE_HASH, &wire::header(Kind::ChallengeQr), nonce, body])
}

/// [`challenge_hash`] of `postcard(body)`, the postcard bytes streamed into
/// the hash instead of collected in a growing `Vec` (the portal hashes its
/// stored record on every answer it checks).
pub(crate) fn challenge_hash_of(nonce: &[u8; 16], body: &ChallengeBodyRef<'_>) -> [u8; 32] {
    use sha2::Digest;
    /// A postcard output that hashes what it is given.
    struct Hashing(sha2::Sha256);
    impl postcard::ser_flavors::Flavor for Hashing {
        type Output = [u8; 32];
        fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
            self.0.update(data);
            Ok(())
        }
        fn try_push(&mut self, data: u8) -> postcard::Result<()> {
            self.0.update([data]);
            Ok(())
        }
        fn finalize(self) -> postcard::Result<[u8; 32]> {
            Ok(self.0.finalize().into())
        }
    }
    let mut h = sha2::Sha256::new();
    h.update(label::CHALLENGE_HASH);
    h.update(wire::header(Kind::ChallengeQr));
    h.update(nonce);
    postcard::serialize_with_flavor(body, Hashing(h)).unwrap_or_else(|_| unreachable!())
}

/// `HMAC(answer_key, "tessera/v1/challenge-response" || challenge_hash)`.
pub(crate) fn response(answer_key: &[u8], hash: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(answer_key, &[label::CHALLENGE_RESPONSE, hash]))
}

/// Room for every digit of a `u64`: 10 (the longest of `ANSWER_DIGITS`)
/// would do, 20 keeps the text of a record with out-of-range digits too.
pub(crate) const MAX_DIGITS: usize = 20;

/// The typed code as ASCII digits in a stack buffer (no allocation: the
/// portal computes one per device for every typed answer it checks):
/// the first 8 bytes of the response, big-endian, mod 10^digits, with
/// leading zeros. The code is `buf[..digits]`.
pub(crate) fn typed_code_digits(answer_key: &[u8], hash: &[u8; 32], digits: u8) -> Zeroizing<[u8; MAX_DIGITS]> {
    let r = response(answer_key, hash);
    let mut first = [0u8; 8];
    first.copy_from_slice(&r[..8]);
    let digits = usize::from(digits).min(MAX_DIGITS);
    let mut n = u64::from_be_bytes(first);
    let mut buf = Zeroizing::new([b'0'; MAX_DIGITS]);
    // n mod 10^digits, written right to left (the same text as
    // `format!("{:0digits$}", n % 10^digits)`).
    for b in buf[..digits].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf
}

/// Whether `typed` is the typed code, compared in constant time.
pub(crate) fn typed_code_matches(answer_key: &[u8], hash: &[u8; 32], digits: u8, typed: &[u8]) -> bool {
    let code = typed_code_digits(answer_key, hash, digits);
    ct_eq(typed, &code[..usize::from(digits).min(MAX_DIGITS)])
}

/// The typed code: the first 8 bytes of the response, big-endian, mod 10^digits.
pub(crate) fn typed_code(answer_key: &[u8], hash: &[u8; 32], digits: u8) -> Zeroizing<alloc::string::String> {
    let buf = typed_code_digits(answer_key, hash, digits);
    let code = &buf[..usize::from(digits).min(MAX_DIGITS)];
    Zeroizing::new(code.iter().map(|&b| char::from(b)).collect())
}

/// The challenge QR: `20 01 || nonce (16) || n (1) || n slots || AEAD(k_body, 0, aad, body)`,
/// `aad` = every byte before the ciphertext.
pub(crate) struct ChallengeQrMsg {
    pub nonce: [u8; 16],
    bytes: Vec<u8>,
}

impl ChallengeQrMsg {
    fn prefix(nonce: &[u8; 16], slots: &[[u8; SLOT_LEN]]) -> Vec<u8> {
        let mut b = Vec::with_capacity(19 + slots.len() * SLOT_LEN);
        b.extend_from_slice(&wire::header(Kind::ChallengeQr));
        b.extend_from_slice(nonce);
        b.push(slots.len() as u8);
        for s in slots {
            b.extend_from_slice(s);
        }
        b
    }

    /// Seal `body` for the devices whose channel keys are given.
    pub fn seal(
        nonce: [u8; 16],
        k: &[u8; 16],
        channel_keys: &[&[u8]],
        body: &ChallengeBody,
    ) -> (alloc::string::String, [u8; 32]) {
        let slots: Vec<[u8; SLOT_LEN]> = channel_keys
            .iter()
            .map(|ck| {
                let (tag, pad) = slot_keys(ck, &nonce);
                let mut s = [0u8; SLOT_LEN];
                s[..4].copy_from_slice(&tag);
                for i in 0..16 {
                    s[4 + i] = k[i] ^ pad[i];
                }
                s
            })
            .collect();
        let plain = Zeroizing::new(postcard::to_allocvec(body).unwrap_or_else(|_| unreachable!()));
        let hash = challenge_hash(&nonce, &plain);
        let mut out = Self::prefix(&nonce, &slots);
        let ct = seal_once(&body_key(k, &nonce), &out, &plain);
        out.extend_from_slice(&ct);
        (wire::to_qr_text(&out), hash)
    }

    pub fn decode(text: &str) -> Result<ChallengeQrMsg> {
        if text.len() > MAX_CHALLENGE_QR_TEXT {
            return Err(err(ErrorCode::MalformedMessage, "the challenge QR code is too long"));
        }
        let bytes = wire::from_qr_text(text)?;
        let parsed = ChallengeQrRef::parse(&bytes)?;
        Ok(ChallengeQrMsg { nonce: parsed.nonce, bytes })
    }

    /// Open with one device's channel key: `NOT_FOR_THIS_DEVICE` when no
    /// slot is this device's, `MESSAGE_TAMPERED` when the bytes changed.
    /// Returns the body and the challenge hash.
    pub fn open(&self, channel_key: &[u8]) -> Result<(ChallengeBody, [u8; 32])> {
        let parsed = ChallengeQrRef::parse(&self.bytes)?;
        let mut plain = Zeroizing::new(alloc::vec![0u8; parsed.ciphertext.len()]);
        let n = parsed.open_into(channel_key, &mut plain)?;
        let plain = &plain[..n];
        let body: ChallengeBody = wire::decode_body(plain, ErrorCode::MalformedMessage)?;
        if !ANSWER_DIGITS.contains(&body.digits)
            || body.approval.validate().is_err()
            || !approval_displayable(&body.approval)
        {
            return Err(err(ErrorCode::MalformedMessage, "the challenge holds values a device must not show"));
        }
        Ok((body, challenge_hash(&self.nonce, plain)))
    }
}

/// A challenge QR's bytes, parsed in place (no allocation: the offline
/// authenticator reads challenges on the stack).
pub(crate) struct ChallengeQrRef<'a> {
    pub nonce: [u8; 16],
    /// Every byte before the ciphertext (the AEAD's associated data).
    prefix: &'a [u8],
    slots: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> ChallengeQrRef<'a> {
    /// Check the header and layout of a challenge QR's bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<ChallengeQrRef<'a>> {
        let body = wire::strip_header(bytes, Kind::ChallengeQr)?;
        let short = || err(ErrorCode::MalformedMessage, "the challenge QR code is truncated");
        if body.len() < 17 {
            return Err(short());
        }
        let (nonce, rest) = body.split_at(16);
        let n = usize::from(rest[0]);
        if n == 0 || n > MAX_CHALLENGE_DEVICES {
            return Err(err(ErrorCode::MalformedMessage, "the challenge QR code has a bad recipient count"));
        }
        let rest = &rest[1..];
        // The ciphertext holds at least the 16-byte tag and a 3-byte body.
        if rest.len() < n * SLOT_LEN + 16 + 3 {
            return Err(short());
        }
        let (slots, ciphertext) = rest.split_at(n * SLOT_LEN);
        let prefix = &bytes[..bytes.len() - ciphertext.len()];
        Ok(ChallengeQrRef { nonce: wire::fixed(nonce, ErrorCode::MalformedMessage)?, prefix, slots, ciphertext })
    }

    /// Decrypt the body into `out` (at least the ciphertext's length) with
    /// one device's channel key; returns the body's length.
    /// `NOT_FOR_THIS_DEVICE` when no slot is this device's,
    /// `MESSAGE_TAMPERED` when the bytes changed.
    pub fn open_into(&self, channel_key: &[u8], out: &mut [u8]) -> Result<usize> {
        let (tag, pad) = slot_keys(channel_key, &self.nonce);
        // Every slot whose 4-byte tag is this device's is tried (two devices'
        // tags collide once in 2^32): the body key of the right one opens it.
        let mut mine = self.slots.chunks_exact(SLOT_LEN).filter(|s| ct_eq(&s[..4], &tag)).peekable();
        if mine.peek().is_none() {
            return Err(err(ErrorCode::NotForThisDevice, "this QR code is for another device or account"));
        }
        for slot in mine {
            let mut k = Zeroizing::new([0u8; 16]);
            for i in 0..16 {
                k[i] = slot[4 + i] ^ pad[i];
            }
            if let Ok(n) = open_once_into(&body_key(&k, &self.nonce), self.prefix, self.ciphertext, out) {
                return Ok(n);
            }
        }
        Err(err(ErrorCode::MessageTampered, "the message failed authentication"))
    }
}

fn approval_displayable(a: &Approval) -> bool {
    match a {
        Approval::Login => true,
        Approval::Transaction(t) => displayable(&t.payee) && t.text.iter().all(|l| displayable(l)),
        Approval::LinkDevice { device_name, .. } => displayable(device_name),
    }
}

/// Signed answer (kind `0x21`): `21 01 || nonce (16) || device_id (8) ||
/// counter (u64) || signature (64)`; the signature covers
/// `"tessera/v1/challenge-signature" || challenge_hash || device_id ||
/// counter || response`, where `response` is the (untransmitted) HMAC of
/// the typed code: only a holder of the device key **and** the passcode
/// (or biometric secret) can sign.
pub(crate) struct SignedAnswerMsg {
    pub nonce: [u8; 16],
    pub device_id: [u8; 8],
    pub counter: u64,
    pub signature: [u8; SIGNATURE_LEN],
}

const SIGNED_LEN: usize = 16 + 8 + 8 + SIGNATURE_LEN;

impl SignedAnswerMsg {
    pub fn signed_parts<'a>(
        hash: &'a [u8; 32],
        device_id: &'a [u8; 8],
        counter: &'a [u8; 8],
        response: &'a [u8; 32],
    ) -> [&'a [u8]; 5] {
        [label::CHALLENGE_SIGNATURE, hash, device_id, counter, response]
    }

    pub fn encode(&self) -> alloc::string::String {
        let mut b = Vec::with_capacity(2 + SIGNED_LEN);
        b.extend_from_slice(&wire::header(Kind::ChallengeAnswer));
        b.extend_from_slice(&self.nonce);
        b.extend_from_slice(&self.device_id);
        b.extend_from_slice(&self.counter.to_be_bytes());
        b.extend_from_slice(&self.signature);
        wire::to_text(&b)
    }

    pub fn decode(text: &str) -> Result<SignedAnswerMsg> {
        if text.len() > 256 {
            return Err(err(ErrorCode::MalformedMessage, "the signed answer is too long"));
        }
        let bytes = wire::from_text(text)?;
        let body = wire::strip_header(&bytes, Kind::ChallengeAnswer)?;
        if body.len() != SIGNED_LEN {
            return Err(err(ErrorCode::MalformedMessage, "the signed answer has the wrong length"));
        }
        let (nonce, rest) = body.split_at(16);
        let (id, rest) = rest.split_at(8);
        let (counter, sig) = rest.split_at(8);
        Ok(SignedAnswerMsg {
            nonce: wire::fixed(nonce, ErrorCode::MalformedMessage)?,
            device_id: wire::fixed(id, ErrorCode::MalformedMessage)?,
            counter: u64::from_be_bytes(wire::fixed(counter, ErrorCode::MalformedMessage)?),
            signature: wire::fixed(sig, ErrorCode::MalformedMessage)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack-buffer code is the text `format!` gave (leading zeros too).
    #[test]
    fn typed_code_is_the_zero_padded_remainder() {
        let mut zeros = 0;
        for i in 0..2000u32 {
            let key = sha256(&[b"key", &i.to_be_bytes()]);
            let hash = sha256(&[b"hash", &i.to_be_bytes()]);
            let r = response(&key, &hash);
            let n = u64::from_be_bytes(r[..8].try_into().unwrap_or_else(|_| unreachable!()));
            for digits in ANSWER_DIGITS {
                let want = alloc::format!("{:0w$}", n % 10u64.pow(u32::from(digits)), w = usize::from(digits));
                zeros += usize::from(want.starts_with('0'));
                assert_eq!(*typed_code(&key, &hash, digits), want);
                assert!(typed_code_matches(&key, &hash, digits, want.as_bytes()));
                assert!(!typed_code_matches(&key, &hash, digits, &want.as_bytes()[1..]));
            }
        }
        assert!(zeros > 100);
    }

    /// Streaming the postcard bytes into the hash is hashing them.
    #[test]
    fn challenge_hash_of_is_the_hash_of_the_postcard_bytes() {
        use crate::challenge::{Amount, Transaction};
        let long = "x".repeat(300);
        let approvals = [
            Approval::Login,
            Approval::Transaction(Transaction {
                amount: Amount::parse("125.50").unwrap_or_else(|_| unreachable!()),
                currency: "EUR".into(),
                payee: "ACME Energy Ltd".into(),
                text: alloc::vec!["Invoice 2026-118".into(), "DE89 3704 0044 0532 0130 00".into()],
            }),
            Approval::LinkDevice { device_name: "Anna's Pixel".into(), device_id: "0123456789abcdef".into() },
            // Longer than any valid record: the stream has no size limit.
            Approval::LinkDevice { device_name: long.clone(), device_id: long },
        ];
        for (i, approval) in approvals.iter().enumerate() {
            for (expires_at, digits) in [(0, 6), (1_767_225_900, 8), (u64::MAX, 10)] {
                let nonce = [i as u8; 16];
                let body = ChallengeBodyRef { expires_at, digits, approval };
                let bytes = postcard::to_allocvec(&body).unwrap_or_else(|_| unreachable!());
                assert_eq!(challenge_hash_of(&nonce, &body), challenge_hash(&nonce, &bytes));
            }
        }
    }
}
