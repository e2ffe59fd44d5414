//! Dates of the report.

use std::time::{Duration, UNIX_EPOCH};

use super::rfc3339;

#[test]
fn dates_are_utc_rfc3339() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    // 2026-11-25T12:34:56Z, and a leap day.
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_610_096)),
        "2026-11-25T12:34:56Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00Z"
    );
}
