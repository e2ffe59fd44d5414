//! The recorder: the window, the outcomes, the timeline.

use std::time::{Duration, Instant};

use super::{Outcome, Percentiles, Recorder};
use crate::http::Failure;
use crate::mix::Class;

#[test]
fn only_requests_started_in_the_window_count() {
    let start = Instant::now() + Duration::from_secs(10);
    let mut recorder = Recorder::new(start, Duration::from_secs(2));
    let before = start - Duration::from_millis(1);
    recorder.record(
        Class::ClinicianRead,
        before,
        start + Duration::from_millis(5),
        Outcome::Expected(200),
    );
    let after = start + Duration::from_secs(2);
    recorder.record(Class::ClinicianRead, after, after, Outcome::Expected(200));
    assert_eq!(recorder.classes()[Class::ClinicianRead.index()].requests, 0);

    recorder.record(
        Class::ClinicianRead,
        start,
        start + Duration::from_millis(3),
        Outcome::Expected(200),
    );
    recorder.record(
        Class::ClinicianRead,
        start + Duration::from_millis(1500),
        start + Duration::from_millis(1600),
        Outcome::Unexpected(500),
    );
    recorder.record(
        Class::ClinicianRead,
        start + Duration::from_millis(1700),
        start + Duration::from_millis(1700),
        Outcome::Dropped,
    );
    recorder.record(
        Class::ClinicianRead,
        start + Duration::from_millis(1800),
        start + Duration::from_secs(40),
        Outcome::Failed(Failure::Timeout),
    );
    let stats = &recorder.classes()[Class::ClinicianRead.index()];
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.ok, 1);
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.error_count(), 2);
    assert_eq!(
        stats.statuses.keys().cloned().collect::<Vec<_>>(),
        ["200", "500", "dropped", "timeout"]
    );
    assert_eq!(stats.errors.get("200"), None);
    assert_eq!(stats.latency.len(), 1);
    let latency = Percentiles::of(&stats.latency);
    assert!((latency.p50 - 3.0).abs() < 0.01, "{latency:?}");
    // The late timeout is put in the last second.
    let timeline = recorder.timeline();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0].completed[Class::ClinicianRead.index()], 1);
    assert_eq!(timeline[1].completed[Class::ClinicianRead.index()], 2);
    assert_eq!(timeline[1].errors, 3);
}

#[test]
fn percentiles_of_nothing_are_zero() {
    assert_eq!(
        Percentiles::of(&super::new_histogram()),
        Percentiles::default()
    );
}
