//! Points in time, in each platform's own type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, whole seconds since the Unix epoch (the core's unit).
///
/// Kotlin sees `java.time.Instant`, Swift `Date`, JavaScript epoch
/// milliseconds (`Date.now()`, serialised as a number) or a `Date`.
/// Sub-second parts are dropped; times before 1970 become 0, which every
/// step then refuses with `INVALID_TIME` (the core accepts the years 2000
/// to 3000 only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// From Unix seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs)
    }

    /// Unix seconds.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// From epoch milliseconds (`Date.now()`): `None` for NaN, infinities
    /// and fractions of a millisecond are dropped; negative times become 0.
    pub fn from_millis_f64(ms: f64) -> Option<Self> {
        if !ms.is_finite() {
            return None;
        }
        // Saturating float-to-int cast: negative → 0, huge → u64::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(Timestamp((ms / 1000.0).floor() as u64))
    }

    /// Epoch milliseconds.
    #[allow(clippy::cast_precision_loss)]
    pub fn millis_f64(self) -> f64 {
        self.0 as f64 * 1000.0
    }

    /// The current time of the system clock.
    pub fn now() -> Self {
        std::time::SystemTime::now().into()
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        Timestamp(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }
}

/// The last second of the year 9999: every platform's time type holds it
/// (Java's `Instant` stops much later, `SystemTime` may stop earlier).
const LATEST: u64 = 253_402_300_799;

impl From<Timestamp> for std::time::SystemTime {
    /// Saturates at the end of the year 9999 (the core refuses any time
    /// after 3000 anyway), so a conversion never panics.
    fn from(t: Timestamp) -> Self {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.0.min(LATEST))
    }
}

#[cfg(feature = "uniffi")]
uniffi::custom_type!(Timestamp, std::time::SystemTime, {
    lower: |t| t.into(),
    try_lift: |s| Ok(s.into()),
});

/// JSON and JavaScript: epoch milliseconds.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.millis_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ms = f64::deserialize(d)?;
        Timestamp::from_millis_f64(ms).ok_or_else(|| serde::de::Error::custom("a time must be a finite number"))
    }
}

#[cfg(feature = "wasm")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_TIMESTAMP: &'static str = r#"
/** Epoch milliseconds (`Date.now()`); calls also take a `Date`. */
export type Timestamp = number;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_and_bad_numbers() {
        let t = Timestamp::from_millis_f64(1_700_000_000_999.0).unwrap();
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.millis_f64(), 1_700_000_000_000.0);
        assert_eq!(Timestamp::from_millis_f64(-5.0).unwrap().secs(), 0);
        assert!(Timestamp::from_millis_f64(f64::NAN).is_none());
        assert!(Timestamp::from_millis_f64(f64::INFINITY).is_none());
        let st: std::time::SystemTime = Timestamp::from_secs(42).into();
        assert_eq!(Timestamp::from(st).secs(), 42);
        let far: std::time::SystemTime = Timestamp::from_secs(u64::MAX).into();
        assert_eq!(Timestamp::from(far).secs(), LATEST);
    }
}
