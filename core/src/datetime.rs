//! Wall-clock dates of the interfaces (decision 12).
//!
//! - Nexmile: `yyyy/MM/dd HH:mm:ss` (every `…Time` field of chapters 4–7).
//! - ImageFlux: `2021-11-20 10:00:00` generally, `Y/m/d H:i:s` where a field
//!   table says so (same as the Nexmile form), and `2021-11-19T12:00:00` in
//!   schedule listings.
//!
//! Parsing accepts all three forms everywhere; each formatter writes one.
//! Dates carry no zone on the wire: they are local time of the deployment
//! (Japan, +09:00, by default), converted from [`UnixMillis`] with an offset.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::clock::UnixMillis;

const NEXMILE: &[BorrowedFormatItem<'_>] =
    format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
const IMAGEFLUX_PLAIN: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const IMAGEFLUX_LISTING: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// Japan Standard Time, the default zone of the interfaces' local dates.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+09:00 is a valid offset"),
};

/// Coordinated Universal Time (the social stream's `createdAt`).
pub const UTC: UtcOffset = UtcOffset::UTC;

/// A date string in none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a date like 2024/01/31 23:59:59, 2024-01-31 23:59:59 or 2024-01-31T23:59:59"
)]
pub struct InvalidDate(String);

/// A local date-time at second resolution, as the interfaces carry it.
/// Serializes in the Nexmile form `yyyy/MM/dd HH:mm:ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WireDateTime(PrimitiveDateTime);

impl WireDateTime {
    /// The local date-time of `at` in `offset`. Milliseconds are dropped, not
    /// rounded: a date shows the second it falls in (§4.3.5 ③).
    pub fn from_unix_millis(at: UnixMillis, offset: UtcOffset) -> Self {
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let local = utc.to_offset(offset);
        Self(PrimitiveDateTime::new(
            local.date(),
            local.time().replace_nanosecond(0).expect("0 ns is valid"),
        ))
    }

    /// The instant this local time names in `offset`.
    pub fn to_unix_millis(self, offset: UtcOffset) -> UnixMillis {
        let nanos = self.0.assume_offset(offset).unix_timestamp_nanos();
        UnixMillis(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }

    /// Accepts `yyyy/MM/dd HH:mm:ss`, `yyyy-MM-dd HH:mm:ss` and `yyyy-MM-ddTHH:mm:ss`.
    pub fn parse(text: &str) -> Result<Self, InvalidDate> {
        let trimmed = text.trim();
        [NEXMILE, IMAGEFLUX_PLAIN, IMAGEFLUX_LISTING]
            .iter()
            .find_map(|format| PrimitiveDateTime::parse(trimmed, format).ok())
            .map(Self)
            .ok_or_else(|| InvalidDate(text.chars().take(40).collect()))
    }

    /// `2024/01/31 23:59:59`: the Nexmile interface and ImageFlux `Y/m/d H:i:s`.
    pub fn nexmile(self) -> String {
        self.0.format(NEXMILE).expect("formats every date")
    }

    /// `2024-01-31 23:59:59`: the ImageFlux default.
    pub fn imageflux_plain(self) -> String {
        self.0.format(IMAGEFLUX_PLAIN).expect("formats every date")
    }

    /// `2024-01-31T23:59:59`: ImageFlux schedule listings.
    pub fn imageflux_listing(self) -> String {
        self.0
            .format(IMAGEFLUX_LISTING)
            .expect("formats every date")
    }
}

impl fmt::Display for WireDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.nexmile())
    }
}

impl Serialize for WireDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.nexmile())
    }
}

impl<'de> Deserialize<'de> for WireDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_documented_form_parses_and_formats() {
        // Decision 12.
        let nexmile = WireDateTime::parse("2021/10/30 12:00:00").unwrap();
        let plain = WireDateTime::parse("2021-10-30 12:00:00").unwrap();
        let listing = WireDateTime::parse("2021-10-30T12:00:00").unwrap();
        assert_eq!(nexmile, plain);
        assert_eq!(plain, listing);
        assert_eq!(nexmile.nexmile(), "2021/10/30 12:00:00");
        assert_eq!(nexmile.imageflux_plain(), "2021-10-30 12:00:00");
        assert_eq!(nexmile.imageflux_listing(), "2021-10-30T12:00:00");
        assert_eq!(
            serde_json::to_string(&nexmile).unwrap(),
            "\"2021/10/30 12:00:00\""
        );
        for bad in [
            "",
            "2021/13/01 00:00:00",
            "2021/10/30",
            "30/10/2021 12:00:00",
            "2021/10/30 25:00:00",
        ] {
            assert!(WireDateTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converts_instants_to_japan_local_time_dropping_milliseconds() {
        // 2024-01-31T14:59:59.999Z is 23:59:59 in Japan.
        let at = UnixMillis(1_706_713_199_999);
        let local = WireDateTime::from_unix_millis(at, JST);
        assert_eq!(local.nexmile(), "2024/01/31 23:59:59");
        assert_eq!(local.to_unix_millis(JST), UnixMillis(1_706_713_199_000));
        assert_eq!(
            WireDateTime::from_unix_millis(at, UtcOffset::UTC).nexmile(),
            "2024/01/31 14:59:59"
        );
    }
}
