//! The host contract: how a portal host persists what the core decides.
//!
//! Every portal operation is a pure function of the records the host read.
//! It returns an [`Outcome`]: the records to write, the events, and the
//! result. Every record carries a `version` (1 when created, +1 on every
//! change), and every [`Write`] is a compare-and-set on (record key,
//! version):
//!
//! - a record at version 1 is **inserted**, and the insert fails if a
//!   record with that key exists;
//! - any other record **replaces** the stored one only if the stored
//!   version is still `version - 1`.
//!
//! The host applies all writes of one outcome in one transaction, and only
//! after they committed does it send answers, act on events or report the
//! result. If any write fails its check, another server changed the state
//! first: the host rolls back, reads the records again and repeats the
//! call. That single rule is what keeps single use, the lockout count and
//! unlinking exact across many servers (`docs/DESIGN.md`).

use crate::activation::{AccountCredentials, ActivationRecord, EnrolmentRecord, TokenRecord};
use crate::challenge::ChallengeRecord;
use crate::link::{DeviceRecord, LinkOfferRecord, PendingLinkRecord};
use crate::Result;
use alloc::vec::Vec;

/// One compare-and-set for the host to apply (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A link offer, keyed by `offer_id`.
    Offer(LinkOfferRecord),
    /// A pending link, keyed by `device_id`.
    PendingLink(PendingLinkRecord),
    /// A registry entry, keyed by `device_id`.
    Device(DeviceRecord),
    /// A challenge, keyed by `challenge_id`.
    Challenge(ChallengeRecord),
    /// An imported offline authenticator, keyed by `serial`.
    Token(TokenRecord),
    /// An order (the letter), keyed by `user_id`.
    Enrolment(EnrolmentRecord),
    /// An activation, keyed by `activation_id`.
    Activation(ActivationRecord),
    /// An account's password and recovery codes, keyed by `account`.
    Credentials(AccountCredentials),
}

impl Write {
    /// The version the stored record must have for this write to apply:
    /// `None` means insert (no record with this key may exist).
    pub fn expected_version(&self) -> Option<u64> {
        let v = self.version();
        (v > 1).then(|| v - 1)
    }

    /// The version the record has after this write.
    pub fn version(&self) -> u64 {
        match self {
            Write::Offer(r) => r.version,
            Write::PendingLink(r) => r.version,
            Write::Device(r) => r.version,
            Write::Challenge(r) => r.version,
            Write::Token(r) => r.version,
            Write::Enrolment(r) => r.version,
            Write::Activation(r) => r.version,
            Write::Credentials(r) => r.version,
        }
    }

    /// The record's key (offer id, device id, challenge id, serial, user ID,
    /// activation id or account).
    pub fn key(&self) -> &str {
        match self {
            Write::Offer(r) => &r.offer_id,
            Write::PendingLink(r) => &r.device_id,
            Write::Device(r) => &r.device_id,
            Write::Challenge(r) => &r.challenge_id,
            Write::Token(r) => &r.serial,
            Write::Enrolment(r) => &r.user_id,
            Write::Activation(r) => &r.activation_id,
            Write::Credentials(r) => &r.account,
        }
    }
}

/// What a portal operation decided: writes to apply atomically, events to
/// act on once they committed, and the result to report.
#[derive(Debug)]
#[must_use = "apply the writes atomically before acting on the result"]
pub struct Outcome<T> {
    /// Compare-and-set writes, all or nothing (may be empty).
    pub writes: Vec<Write>,
    /// Events (notification e-mail, audit log), after the writes committed.
    pub events: Vec<crate::link::PortalEvent>,
    /// The result. An error can come with writes (a wrong code is counted).
    pub result: Result<T>,
}

impl<T> Outcome<T> {
    pub(crate) fn new(writes: Vec<Write>, result: Result<T>) -> Self {
        Outcome { writes, events: Vec::new(), result }
    }

    pub(crate) fn refused(e: crate::Error) -> Self {
        Outcome { writes: Vec::new(), events: Vec::new(), result: Err(e) }
    }
}
