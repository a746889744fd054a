//! Records as a portal stores them, the compare-and-set writes that change
//! them, and the events that follow.
//!
//! A row is the plain columns a host queries (ids, account, times, status,
//! version) next to `sealed`, the whole record encrypted and authenticated
//! under the portal's storage key and bound to the row's key, account and
//! version. The sealed copy is the truth: a row whose columns were edited,
//! or a blob copied to another row, is refused with `STATE_CORRUPT`.

use crate::{Portal, Result, Timestamp};
use serde::{Deserialize, Serialize};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{self, OfferState};

/// Record versions and other counts cross as signed 64-bit integers (Java
/// `long`); versions start at 1.
pub(crate) fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored link offer, keyed by `offer_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredOffer {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account.
    pub account: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// When a device used it.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub used_at: Option<Timestamp>,
    /// Record version (1 when created, +1 on every change).
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// Where a pending link stands.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PendingStatus {
    /// Waiting for the check code.
    Open,
    /// The check code was typed: the device row exists.
    Confirmed,
    /// Expired or locked out (too many wrong check codes).
    Cancelled,
}

/// A stored pending link (waiting for its check code), keyed by `device_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredPendingLink {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Device name.
    pub device_name: String,
    /// Deadline for the check code.
    pub confirm_by: Timestamp,
    /// Wrong check codes so far.
    pub attempts: i32,
    /// Open, confirmed or cancelled.
    pub status: PendingStatus,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// Status of a registry entry.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeviceStatus {
    /// Linked and usable.
    Active,
    /// Unlinked by the portal (final); the device wipes on next contact.
    Unlinked,
}

/// A stored registry entry, keyed by `device_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredDevice {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Display name.
    pub name: String,
    /// When the link was confirmed.
    pub linked_at: Timestamp,
    /// Last accepted code.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub last_used_at: Option<Timestamp>,
    /// Active or unlinked.
    pub status: DeviceStatus,
    /// Refuses something until the portal acts: locked after 5 failed
    /// answers or codes in a row, or after 20 wrong codes of new devices it
    /// was asked to vouch for (`Portal::unlock_device` clears both), or its
    /// keys were copied (`DEVICE_CLONED`: only unlinking clears that).
    pub locked: bool,
    /// An offline authenticator's serial number (flow 3); none for a phone.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub serial: Option<String>,
    /// An activated offline authenticator is usable from this time on
    /// (`DEVICE_NOT_YET_USABLE` before).
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub usable_from: Option<Timestamp>,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// Where a challenge stands.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChallengeStatus {
    /// Waiting for its answer.
    Open,
    /// Answered (single use).
    Answered,
    /// Expired (an answer came too late).
    Expired,
}

/// What a challenge approves.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChallengeKind {
    /// A login.
    Login,
    /// A payment.
    Transaction,
    /// A new device joining the account (flow 2).
    LinkDevice,
}

/// A stored challenge, keyed by `challenge_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredChallenge {
    /// Challenge id (hex).
    pub challenge_id: String,
    /// Account.
    pub account: String,
    /// The devices that can answer it (read their rows to verify).
    pub device_ids: Vec<String>,
    /// What it approves (the same names as `Approval`'s kinds).
    pub kind: ChallengeKind,
    /// When answers stop being accepted.
    pub expires_at: Timestamp,
    /// Open or answered.
    pub status: ChallengeStatus,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// One compare-and-set: `expected_version` absent means INSERT (fails if
/// the key exists), else `UPDATE … WHERE key = ? AND version =
/// expected_version`. Apply every write of a change in one transaction,
/// together with the reads the call was given.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum RecordWrite {
    /// An offer row.
    Offer {
        /// The row.
        row: StoredOffer,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// A pending-link row.
    PendingLink {
        /// The row.
        row: StoredPendingLink,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// A registry row.
    Device {
        /// The row.
        row: StoredDevice,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// A challenge row.
    Challenge {
        /// The row.
        row: StoredChallenge,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// An offline authenticator row (flow 3), keyed by serial.
    Authenticator {
        /// The row.
        row: crate::StoredAuthenticator,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// An order row (flow 3), keyed by user ID.
    Order {
        /// The row.
        row: crate::StoredOrder,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// An activation row (flow 3), keyed by activation id.
    Activation {
        /// The row.
        row: crate::StoredActivation,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
    /// An account's password and recovery codes (flow 3), keyed by account.
    Credentials {
        /// The row.
        row: crate::StoredCredentials,
        /// Version the stored row must have.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        expected_version: Option<i64>,
    },
}

impl RecordWrite {
    /// The version the stored row must have (`None`: insert).
    pub fn expected_version(&self) -> Option<i64> {
        match self {
            RecordWrite::Offer { expected_version, .. }
            | RecordWrite::PendingLink { expected_version, .. }
            | RecordWrite::Device { expected_version, .. }
            | RecordWrite::Challenge { expected_version, .. }
            | RecordWrite::Authenticator { expected_version, .. }
            | RecordWrite::Order { expected_version, .. }
            | RecordWrite::Activation { expected_version, .. }
            | RecordWrite::Credentials { expected_version, .. } => *expected_version,
        }
    }
}

/// Something for the host to act on once the writes committed (send the
/// notification e-mail, write the audit log). One shape everywhere: Kotlin
/// `PortalEvent.DeviceLinked(…)`, Swift `.deviceLinked(…)`, JSON/JS
/// `{ "kind": "deviceLinked", … }`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PortalEvent {
    /// A device used an offer and waits for its check code.
    LinkRequested {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Device name.
        device_name: String,
        /// Time.
        at: Timestamp,
    },
    /// A device is linked: send the "a device was linked" notification.
    DeviceLinked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Device name.
        device_name: String,
        /// Time.
        at: Timestamp,
    },
    /// A device was renamed.
    DeviceRenamed {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// New name.
        name: String,
        /// Time.
        at: Timestamp,
    },
    /// A device was unlinked.
    DeviceUnlinked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: Timestamp,
    },
    /// A challenge was answered: the login or transaction is approved.
    ChallengeAnswered {
        /// Account.
        account: String,
        /// Challenge.
        challenge_id: String,
        /// Device that answered.
        device_id: String,
        /// Time.
        at: Timestamp,
    },
    /// A device reached the failure limit: tell the user; unlock it
    /// ([`crate::Portal::unlock_device`]) once they re-identified.
    DeviceLocked {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: Timestamp,
    },
    /// An offline authenticator was activated: notify the user on every
    /// channel; a fraudulent activation can be undone by unlinking the
    /// device before `usable_from`.
    DeviceActivated {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Serial number.
        serial: String,
        /// When it becomes usable.
        usable_from: Timestamp,
        /// Time.
        at: Timestamp,
    },
    /// An order's activation code or initial password was guessed wrong 5
    /// times: it is locked (a new order is needed); tell the user.
    OrderLocked {
        /// Account.
        account: String,
        /// User ID.
        user_id: String,
        /// Time.
        at: Timestamp,
    },
    /// The account's password or recovery codes were guessed wrong 5 times.
    CredentialsLocked {
        /// Account.
        account: String,
        /// Time.
        at: Timestamp,
    },
    /// A signed answer's counter went back: two copies of the device's
    /// keys are in use. Unlinking the device is the safe reaction.
    DeviceCloneSuspected {
        /// Account.
        account: String,
        /// Device.
        device_id: String,
        /// Time.
        at: Timestamp,
    },
}

impl From<&link::PortalEvent> for PortalEvent {
    fn from(e: &link::PortalEvent) -> Self {
        let t = Timestamp::from_secs;
        match e.clone() {
            link::PortalEvent::LinkRequested { account, device_id, device_name, at } => {
                PortalEvent::LinkRequested { account, device_id, device_name, at: t(at) }
            }
            link::PortalEvent::DeviceLinked { account, device_id, device_name, at } => {
                PortalEvent::DeviceLinked { account, device_id, device_name, at: t(at) }
            }
            link::PortalEvent::DeviceRenamed { account, device_id, name, at } => {
                PortalEvent::DeviceRenamed { account, device_id, name, at: t(at) }
            }
            link::PortalEvent::DeviceUnlinked { account, device_id, at } => {
                PortalEvent::DeviceUnlinked { account, device_id, at: t(at) }
            }
            link::PortalEvent::ChallengeAnswered { account, challenge_id, device_id, at } => {
                PortalEvent::ChallengeAnswered { account, challenge_id, device_id, at: t(at) }
            }
            link::PortalEvent::DeviceLocked { account, device_id, at } => {
                PortalEvent::DeviceLocked { account, device_id, at: t(at) }
            }
            link::PortalEvent::DeviceActivated { account, device_id, serial, usable_from, at } => {
                PortalEvent::DeviceActivated { account, device_id, serial, usable_from: t(usable_from), at: t(at) }
            }
            link::PortalEvent::OrderLocked { account, user_id, at } => {
                PortalEvent::OrderLocked { account, user_id, at: t(at) }
            }
            link::PortalEvent::CredentialsLocked { account, at } => {
                PortalEvent::CredentialsLocked { account, at: t(at) }
            }
            link::PortalEvent::DeviceCloneSuspected { account, device_id, at } => {
                PortalEvent::DeviceCloneSuspected { account, device_id, at: t(at) }
            }
        }
    }
}

/// What a portal call changed: writes to apply atomically (compare-and-set,
/// all or nothing; on a conflict read again and call again), then events
/// to act on.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalChange {
    /// Compare-and-set writes (may be empty).
    pub writes: Vec<RecordWrite>,
    /// Events, after the writes committed.
    pub events: Vec<PortalEvent>,
}

/// A portal's decision about a user's input (a link request, a check code,
/// a one-time code). Refusals still come with a change to store: the
/// attempt is counted whichever way the verdict goes.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Verdict {
    /// Accepted (store the change, then act on it).
    Accepted,
    /// The same request again (a phone that lost the answer): nothing new to
    /// store, the answer is the original one, byte for byte.
    Repeated,
    /// Refused, with the reason (store the change all the same).
    Refused {
        /// Stable code (`CHECK_CODE_MISMATCH`, `LOCKED_OUT`, `OTP_REPLAYED`, …).
        code: crate::ErrorCode,
        /// English detail, no secrets.
        detail: String,
    },
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Verdict {
    /// Nothing unless refused; the refusal as the error every other call
    /// throws (call it after storing the change).
    pub fn check(&self) -> Result<()> {
        match self {
            Verdict::Refused { code, detail } => Err(crate::TesseraError::new(*code, detail.clone())),
            _ => Ok(()),
        }
    }
}

impl Verdict {
    /// The verdict on a user's input; a clock outside the years 2000 to
    /// 3000 (`INVALID_TIME`) is the host's fault, not a judgment: thrown
    /// (the core counted and wrote nothing).
    pub(crate) fn judged<T>(r: &tessera_core::Result<T>) -> Result<Verdict> {
        match r {
            Err(e) if e.code() == tessera_core::ErrorCode::InvalidTime => Err(e.clone().into()),
            r => Ok(Verdict::of(r)),
        }
    }

    pub(crate) fn of<T>(r: &tessera_core::Result<T>) -> Verdict {
        match r {
            Ok(_) => Verdict::Accepted,
            Err(e) => Verdict::Refused { code: e.code().into(), detail: e.detail().to_owned() },
        }
    }
}

impl Portal {
    fn seal_write(&self, w: &Write) -> RecordWrite {
        let (p, rng) = (&self.core, &mut crate::OsRandom);
        let expected_version = w.expected_version().map(count);
        match w {
            Write::Offer(r) => RecordWrite::Offer {
                row: StoredOffer {
                    offer_id: r.offer_id.clone(),
                    account: r.account.clone(),
                    expires_at: Timestamp::from_secs(r.expires_at),
                    used_at: match r.state {
                        OfferState::Used { at, .. } => Some(Timestamp::from_secs(at)),
                        _ => None,
                    },
                    version: count(r.version),
                    sealed: p.seal_record(r, rng),
                },
                expected_version,
            },
            Write::PendingLink(r) => RecordWrite::PendingLink {
                row: StoredPendingLink {
                    device_id: r.device_id.clone(),
                    account: r.account.clone(),
                    device_name: r.device_name.clone(),
                    confirm_by: Timestamp::from_secs(r.confirm_by),
                    attempts: i32::try_from(r.attempts()).unwrap_or(i32::MAX),
                    status: match r.state {
                        link::PendingState::Open { .. } => PendingStatus::Open,
                        link::PendingState::Confirmed { .. } => PendingStatus::Confirmed,
                        link::PendingState::Cancelled { .. } => PendingStatus::Cancelled,
                    },
                    version: count(r.version),
                    sealed: p.seal_record(r, rng),
                },
                expected_version,
            },
            Write::Device(r) => RecordWrite::Device {
                row: StoredDevice {
                    device_id: r.device_id.clone(),
                    account: r.account.clone(),
                    name: r.name.clone(),
                    linked_at: Timestamp::from_secs(r.linked_at),
                    last_used_at: r.last_used_at.map(Timestamp::from_secs),
                    status: match r.status {
                        link::DeviceStatus::Active => DeviceStatus::Active,
                        link::DeviceStatus::Unlinked { .. } => DeviceStatus::Unlinked,
                    },
                    locked: r.otp_state.throttle.lock != tessera_core::limits::Lock::Unlocked
                        || r.clone_suspected
                        || r.vouch_failures >= tessera_core::challenge::MAX_VOUCH_FAILURES,
                    serial: r.serial.clone(),
                    usable_from: r.usable_from.map(Timestamp::from_secs),
                    version: count(r.version),
                    sealed: p.seal_record(r, rng),
                },
                expected_version,
            },
            Write::Challenge(r) => RecordWrite::Challenge { row: crate::challenge::row_of(self, r), expected_version },
            w => match self.activation_row(w) {
                Some(row) => row,
                None => unreachable!(),
            },
        }
    }

    /// The change of a core outcome, sealed as rows.
    pub(crate) fn change<T>(&self, o: &Outcome<T>) -> PortalChange {
        PortalChange {
            writes: o.writes.iter().map(|w| self.seal_write(w)).collect(),
            events: o.events.iter().map(PortalEvent::from).collect(),
        }
    }

    fn open<T: link::PortalRecord>(&self, key: &str, account: &str, version: i64, sealed: &[u8]) -> Result<T> {
        let v = u64::try_from(version).unwrap_or(0);
        Ok(self.core.open_record(key, account, v, sealed)?)
    }

    /// The offer a row holds (`STATE_CORRUPT` if the blob is not this row's).
    pub(crate) fn open_offer(&self, r: &StoredOffer) -> Result<link::LinkOfferRecord> {
        self.open(&r.offer_id, &r.account, r.version, &r.sealed)
    }

    /// The pending link a row holds.
    pub(crate) fn open_pending(&self, r: &StoredPendingLink) -> Result<link::PendingLinkRecord> {
        self.open(&r.device_id, &r.account, r.version, &r.sealed)
    }

    /// The challenge a row holds.
    pub(crate) fn open_challenge(&self, r: &StoredChallenge) -> Result<tessera_core::challenge::ChallengeRecord> {
        self.open(&r.challenge_id, &r.account, r.version, &r.sealed)
    }

    /// The registry record a row holds.
    pub(crate) fn open_device(&self, r: &StoredDevice) -> Result<link::DeviceRecord> {
        self.open(&r.device_id, &r.account, r.version, &r.sealed)
    }
}
