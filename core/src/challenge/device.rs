//! Device side of challenge/response: read a challenge QR, show it, answer.

use super::messages::{response, typed_code, ChallengeQrMsg, SignedAnswerMsg};
use super::{Approval, CHALLENGE_SKEW};
use crate::crypto::{secret_key_from_bytes, sign, RandomSource};
use crate::error::{err, ErrorCode, Result};
use crate::link::{DeviceState, UserFactor};
use crate::time::check_now;
use alloc::string::String;
use alloc::vec::Vec;

/// A challenge this device read and authenticated: what the app shows
/// before it asks for the passcode or biometrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The portal's id of the challenge (hex).
    pub challenge_id: String,
    /// Who asks (the portal this device is linked to).
    pub portal_name: String,
    /// The account.
    pub account: String,
    /// Exactly what is approved.
    pub approval: Approval,
    /// When the portal stops accepting the answer.
    pub expires_at: u64,
    /// Digits of the typed answer.
    pub digits: u8,
    pub(crate) nonce: [u8; 16],
    pub(crate) hash: [u8; 32],
}

/// A signed answer and the device state to store **before** sending it
/// (the state holds the new counter).
#[derive(Clone)]
pub struct SignedAnswer {
    /// Text to send to the portal.
    pub answer: String,
    /// The sealed device state with the counter advanced.
    pub state: Vec<u8>,
}

impl core::fmt::Debug for SignedAnswer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SignedAnswer").finish_non_exhaustive()
    }
}

impl DeviceState {
    /// Read a challenge QR: `NOT_FOR_THIS_DEVICE` (another device or
    /// account; a device the portal unlinked gets this too, and learns
    /// `DEVICE_REVOKED` from a status request), `MESSAGE_TAMPERED`,
    /// `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`, `UNSUPPORTED_VERSION`,
    /// `TOKEN_EXPIRED` (more than [`CHALLENGE_SKEW`] past its expiry by
    /// this device's clock), `INVALID_TIME`.
    pub fn read_challenge(&self, qr: &str, now: u64) -> Result<Challenge> {
        check_now(now)?;
        let msg = ChallengeQrMsg::decode(qr)?;
        let (body, hash) = msg.open(self.channel_key.expose())?;
        if now >= body.expires_at.saturating_add(CHALLENGE_SKEW) {
            return Err(err(ErrorCode::TokenExpired, "this challenge has expired; ask the portal for a new one"));
        }
        Ok(Challenge {
            challenge_id: super::messages::challenge_id(&msg.nonce),
            portal_name: self.info.portal_name.clone(),
            account: self.info.account.clone(),
            approval: body.approval,
            expires_at: body.expires_at,
            digits: body.digits,
            nonce: msg.nonce,
            hash,
        })
    }

    /// The code the user types into the portal. A wrong passcode gives a
    /// wrong code, told apart only by the portal (which counts it).
    pub fn answer_code(&self, challenge: &Challenge, factor: UserFactor<'_>) -> Result<String> {
        let key = self.answer_key(factor)?;
        Ok(String::clone(&typed_code(&key[..], &challenge.hash, challenge.digits)))
    }

    /// A signed answer for a device with network: the device key signs the
    /// challenge, the next counter value and the response of `factor`.
    /// Store [`SignedAnswer::state`] before sending [`SignedAnswer::answer`]:
    /// a counter that goes back is how the portal spots a clone.
    pub fn answer_signed(
        &self,
        challenge: &Challenge,
        factor: UserFactor<'_>,
        storage_key: &[u8; 32],
        rng: &mut dyn RandomSource,
    ) -> Result<SignedAnswer> {
        let key = self.answer_key(factor)?;
        let counter = self
            .signed_counter
            .checked_add(1)
            .ok_or(err(ErrorCode::InvalidState, "this device has used up its signature counter"))?;
        let device_id = self.raw_device_id()?;
        let r = response(&key[..], &challenge.hash);
        let sk = secret_key_from_bytes(self.device_sk.expose())?;
        let cb = counter.to_be_bytes();
        let signature = sign(&sk, &SignedAnswerMsg::signed_parts(&challenge.hash, &device_id, &cb, &r));
        let answer = SignedAnswerMsg { nonce: challenge.nonce, device_id, counter, signature }.encode();
        let mut next = self.clone();
        next.signed_counter = counter;
        Ok(SignedAnswer { answer, state: next.seal(storage_key, rng) })
    }
}
