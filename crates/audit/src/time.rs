//! UTC instants with microsecond precision and one fixed text form,
//! `YYYY-MM-DDThh:mm:ss.ffffffZ`, which is both a FHIR `instant` and canonical (one instant, one
//! string), so records that carry it hash the same however they were built.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in microseconds since 1970-01-01T00:00:00Z, years 0000 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

/// Microseconds from 0000-01-01T00:00:00Z to the epoch, and from the epoch to the end of 9999.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl UtcTime {
    /// The wall clock.
    pub fn now() -> UtcTime {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UtcTime(
            i64::try_from(since_epoch.as_micros())
                .map_or(MAX_MICROS, |micros| micros.min(MAX_MICROS)),
        )
    }

    /// From microseconds since the epoch; `None` outside years 0000–9999.
    pub fn from_unix_micros(micros: i64) -> Option<UtcTime> {
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(UtcTime(micros))
    }

    /// Microseconds since the epoch.
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// `YYYY-MM-DDThh:mm:ss.ffffffZ`.
    pub fn to_rfc3339(self) -> String {
        let seconds = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let (year, month, day) = civil::civil_from_days(seconds.div_euclid(86_400));
        let second_of_day = seconds.rem_euclid(86_400);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }

    /// Parses exactly the form [`UtcTime::to_rfc3339`] writes (no other offsets or precisions),
    /// so that a parsed instant prints back to the same text.
    pub fn parse_rfc3339(text: &str) -> Option<UtcTime> {
        let bytes = text.as_bytes();
        if bytes.len() != 27 {
            return None;
        }
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ];
        if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
            return None;
        }
        let number = |from: usize, to: usize| -> Option<i64> {
            bytes[from..to].iter().try_fold(0i64, |value, &digit| {
                digit
                    .is_ascii_digit()
                    .then(|| value * 10 + i64::from(digit - b'0'))
            })
        };
        let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
        let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
        let micros = number(20, 26)?;
        if !(1..=12).contains(&month) || day < 1 || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let days = civil::days_from_civil(year, month as u32, day as u32);
        // A day past the end of its month comes back as another date.
        if civil::civil_from_days(days) != (year, month as u32, day as u32) {
            return None;
        }
        let total = ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros;
        UtcTime::from_unix_micros(total)
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UtcTime::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected YYYY-MM-DDThh:mm:ss.ffffffZ"))
    }
}

#[cfg(test)]
mod tests {
    use super::UtcTime;

    #[test]
    fn formats_and_parses_one_canonical_form() {
        let at = UtcTime::from_unix_micros(1_795_512_600_125_000).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-24T09:30:00.125000Z");
        assert_eq!(
            UtcTime::parse_rfc3339("2026-11-24T09:30:00.125000Z"),
            Some(at)
        );
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400_000_001, "2000-02-29T00:00:00.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (super::MIN_MICROS, "0000-01-01T00:00:00.000000Z"),
            (super::MAX_MICROS, "9999-12-31T23:59:59.999999Z"),
        ];
        for (micros, text) in cases {
            let at = UtcTime::from_unix_micros(micros).unwrap();
            assert_eq!(at.to_rfc3339(), text);
            assert_eq!(UtcTime::parse_rfc3339(text), Some(at), "{text}");
        }
        assert_eq!(UtcTime::from_unix_micros(super::MAX_MICROS + 1), None);
    }

    #[test]
    fn refuses_every_other_spelling() {
        for text in [
            "2026-11-24T09:30:00.125Z",
            "2026-11-24T09:30:00.125000+09:00",
            "2026-11-24 09:30:00.125000Z",
            "2026-02-29T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-11-24T24:00:00.000000Z",
            "2026-11-24T09:60:00.000000Z",
            "2026-11-24T09:30:60.000000Z",
            "2026-11-2aT09:30:00.000000Z",
            "+026-11-24T09:30:00.000000Z",
        ] {
            assert_eq!(UtcTime::parse_rfc3339(text), None, "{text}");
        }
    }
}
