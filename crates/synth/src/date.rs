//! Calendar dates without a dependency: days since 1970-01-01 in the proleptic Gregorian calendar
//! (H. Hinnant's `days_from_civil` / `civil_from_days`), and the few formats FHIR needs. Times are
//! Japan Standard Time (`+09:00`), which has no daylight saving.

use std::fmt;

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The day `year`-`month`-`day`; the parts must name a real day.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Date {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month_index = (month + 9) % 12;
        let day_of_year = (153 * month_index + 2) / 5 + day - 1;
        let day_of_era =
            year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year as i32;
        Date(era * 146_097 + day_of_era - 719_468)
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
        let days = self.0 + 719_468;
        let era = days.div_euclid(146_097);
        let day_of_era = days - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        } as u32;
        let year = year_of_era + era * 400 + i32::from(month <= 2);
        (year, month, day)
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
