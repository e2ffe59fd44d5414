//! Calendar dates: days since 1970-01-01 in the proleptic Gregorian calendar (`civil`), and the
//! few formats FHIR needs. Times are Japan Standard Time (`+09:00`), which has no daylight saving.

use std::fmt;

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The day `year`-`month`-`day`; the parts must name a real day.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Date {
        let days = civil::days_from_civil(i64::from(year), month, day);
        // Every date the generator makes is within a few centuries of 1970.
        Date(i32::try_from(days).unwrap_or(i32::MAX))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let year: i32 = parts.next()?.parse().ok()?;
        let month: u32 = parts.next()?.parse().ok()?;
        let day: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        let date = Date::from_ymd(year, month, day);
        (date.ymd() == (year, month, day)).then_some(date)
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i32, u32, u32) {
        let (year, month, day) = civil::civil_from_days(i64::from(self.0));
        (i32::try_from(year).unwrap_or(i32::MAX), month, day)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// The day `days` later (earlier if negative).
    pub fn plus_days(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    /// Days from `earlier` to `self`.
    pub fn days_since(self, earlier: Date) -> i32 {
        self.0 - earlier.0
    }

    /// Whole years from `birth` to `self` (an age).
    pub fn years_since(self, birth: Date) -> i32 {
        let (year, month, day) = self.ymd();
        let (birth_year, birth_month, birth_day) = birth.ymd();
        let mut years = year - birth_year;
        if (month, day) < (birth_month, birth_day) {
            years -= 1;
        }
        years
    }

    /// `YYYYMMDD`, for identifiers.
    pub fn compact(self) -> String {
        let (year, month, day) = self.ymd();
        format!("{year:04}{month:02}{day:02}")
    }

    /// A FHIR dateTime at `hour:minute` Japan time.
    pub fn at(self, hour: u32, minute: u32) -> String {
        format!("{self}T{hour:02}:{minute:02}:00+09:00")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(formatter, "{year:04}-{month:02}-{day:02}")
    }
}
