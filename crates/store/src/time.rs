//! Time as the store sees it: microseconds since the Unix epoch, and an injectable clock.

use std::sync::atomic::{AtomicI64, Ordering};

/// An instant in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A source of the current time. Injected so tests can control it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until told to move. For tests.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        FixedClock(AtomicI64::new(at.0))
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    pub fn advance_micros(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl Timestamp {
    /// Formats as a FHIR `instant` in UTC with millisecond precision, e.g. `2026-11-24T09:30:00.125Z`.
    pub fn to_fhir_instant(self) -> String {
        let (date, seconds_of_day, micros) = self.split();
        let (year, month, day) = civil::civil_from_days(date);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            seconds_of_day / 3600,
            (seconds_of_day / 60) % 60,
            seconds_of_day % 60,
            micros / 1000
        )
    }

    /// Formats as an HTTP date (RFC 9110 IMF-fixdate), e.g. `Tue, 24 Nov 2026 09:30:00 GMT`.
    pub fn to_http_date(self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (date, seconds_of_day, _) = self.split();
        let (year, month, day) = civil::civil_from_days(date);
        format!(
            "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
            DAYS[date.rem_euclid(7) as usize],
            MONTHS[(month - 1) as usize],
            seconds_of_day / 3600,
            (seconds_of_day / 60) % 60,
            seconds_of_day % 60,
        )
    }

    /// Days since the epoch, seconds into that day, and microseconds into that second.
    fn split(self) -> (i64, i64, i64) {
        let seconds = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        (
            seconds.div_euclid(86_400),
            seconds.rem_euclid(86_400),
            micros,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn formats_instants_and_http_dates() {
        let at = Timestamp(1_795_512_600_125_000);
        assert_eq!(at.to_fhir_instant(), "2026-11-24T09:30:00.125Z");
        assert_eq!(at.to_http_date(), "Tue, 24 Nov 2026 09:30:00 GMT");
        assert_eq!(Timestamp(0).to_fhir_instant(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(951_782_400_000_000).to_fhir_instant(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
