//! Records as a host stores them: the plain columns it queries (ids,
//! account, times, status, version) next to `sealed`, the whole record
//! encrypted and authenticated under the portal's storage key. The sealed
//! copy is the truth: operations read it back with the `open_*` methods,
//! which check it against the row's key, account and version columns, so a
//! row whose columns were edited, or a blob copied to another row, cannot
//! change what the SDK does.

use super::portal::{DeviceRecord, DeviceStatus, LinkOfferRecord, OfferState, PendingLinkRecord, Portal};
use crate::crypto::RandomSource;
use crate::host::Write;
use crate::Result;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A stored link offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffer {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account.
    pub account: String,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// When a device used it.
    pub used_at: Option<u64>,
    /// Record version (compare-and-set).
    pub version: u64,
    /// Sealed record.
    pub sealed: Vec<u8>,
}

/// A stored pending link (waiting for its check code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPendingLink {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Device name.
    pub device_name: String,
    /// Deadline for the check code.
    pub confirm_by: u64,
    /// Wrong check codes so far.
    pub attempts: u32,
    /// Confirmed or cancelled.
    pub closed: bool,
    /// Record version (compare-and-set).
    pub version: u64,
    /// Sealed record.
    pub sealed: Vec<u8>,
}

/// A stored registry entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDevice {
    /// Device id.
    pub device_id: String,
    /// Account.
    pub account: String,
    /// Display name.
    pub name: String,
    /// Link time.
    pub linked_at: u64,
    /// Last use.
    pub last_used_at: Option<u64>,
    /// Active or unlinked.
    pub status: DeviceStatus,
    /// Record version (compare-and-set).
    pub version: u64,
    /// Sealed record.
    pub sealed: Vec<u8>,
}

/// A [`Write`] sealed for storage: the row to insert (`expected_version`
/// `None`) or to update where the stored version equals `expected_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredWrite {
    /// An offer row.
    Offer(StoredOffer),
    /// A pending-link row.
    PendingLink(StoredPendingLink),
    /// A registry row.
    Device(StoredDevice),
}

impl StoredWrite {
    /// Version the stored row must have (`None`: insert).
    pub fn expected_version(&self) -> Option<u64> {
        let v = match self {
            StoredWrite::Offer(r) => r.version,
            StoredWrite::PendingLink(r) => r.version,
            StoredWrite::Device(r) => r.version,
        };
        (v > 1).then(|| v - 1)
    }
}

impl Portal {
    /// Seal an offer for storage.
    pub fn store_offer(&self, r: &LinkOfferRecord, rng: &mut dyn RandomSource) -> StoredOffer {
        StoredOffer {
            offer_id: r.offer_id.clone(),
            account: r.account.clone(),
            expires_at: r.expires_at,
            used_at: match r.state {
                OfferState::Open | OfferState::Expired { .. } => None,
                OfferState::Used { at, .. } => Some(at),
            },
            version: r.version,
            sealed: self.seal_record(r, rng),
        }
    }

    /// Seal a pending link for storage.
    pub fn store_pending(&self, r: &PendingLinkRecord, rng: &mut dyn RandomSource) -> StoredPendingLink {
        StoredPendingLink {
            device_id: r.device_id.clone(),
            account: r.account.clone(),
            device_name: r.device_name.clone(),
            confirm_by: r.confirm_by,
            attempts: r.attempts(),
            closed: r.is_closed(),
            version: r.version,
            sealed: self.seal_record(r, rng),
        }
    }

    /// Seal a device record for storage.
    pub fn store_device(&self, r: &DeviceRecord, rng: &mut dyn RandomSource) -> StoredDevice {
        StoredDevice {
            device_id: r.device_id.clone(),
            account: r.account.clone(),
            name: r.name.clone(),
            linked_at: r.linked_at,
            last_used_at: r.last_used_at,
            status: r.status,
            version: r.version,
            sealed: self.seal_record(r, rng),
        }
    }

    /// Seal one write of an outcome.
    pub fn store_write(&self, w: &Write, rng: &mut dyn RandomSource) -> StoredWrite {
        match w {
            Write::Offer(r) => StoredWrite::Offer(self.store_offer(r, rng)),
            Write::PendingLink(r) => StoredWrite::PendingLink(self.store_pending(r, rng)),
            Write::Device(r) => StoredWrite::Device(self.store_device(r, rng)),
        }
    }

    /// The offer a row holds (`STATE_CORRUPT` if the blob is not this row's).
    pub fn open_offer(&self, row: &StoredOffer) -> Result<LinkOfferRecord> {
        self.open_record(&row.offer_id, &row.account, row.version, &row.sealed)
    }

    /// The pending link a row holds.
    pub fn open_pending(&self, row: &StoredPendingLink) -> Result<PendingLinkRecord> {
        self.open_record(&row.device_id, &row.account, row.version, &row.sealed)
    }

    /// The device record a row holds.
    pub fn open_device(&self, row: &StoredDevice) -> Result<DeviceRecord> {
        self.open_record(&row.device_id, &row.account, row.version, &row.sealed)
    }
}
