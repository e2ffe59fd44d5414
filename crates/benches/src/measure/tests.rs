//! Percentiles are nearest-rank over all samples.

use std::time::Duration;

use super::{Latencies, percentile};

fn millis(values: &[u64]) -> Vec<Duration> {
    values.iter().copied().map(Duration::from_millis).collect()
}

#[test]
fn nearest_rank_percentiles() {
    let samples: Vec<Duration> = millis(&(1..=100).collect::<Vec<_>>());
    assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
    assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
    assert_eq!(percentile(&samples, 99.9), Duration::from_millis(100));
    assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
    assert_eq!(percentile(&[], 50.0), Duration::ZERO);
}

#[test]
fn summary_sorts_and_reports_the_maximum() {
    let mut latencies = Latencies::default();
    for sample in millis(&[7, 1, 9, 3, 5]) {
        latencies.record(sample);
    }
    let summary = latencies.summary();
    assert_eq!(summary.count, 5);
    assert_eq!(summary.p50, Duration::from_millis(5));
    assert_eq!(summary.max, Duration::from_millis(9));
    assert_eq!(summary.mean, Duration::from_millis(5));
}

#[tokio::test]
async fn every_operation_is_run_once() {
    let run = super::run_concurrent(3, 10, 1, |_| async { Ok(2) }).await;
    assert_eq!(run.operations, 10);
    assert_eq!(run.errors, 0);
    assert_eq!(run.output, 20);
}
