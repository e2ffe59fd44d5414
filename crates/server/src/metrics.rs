//! Prometheus metrics: request counts and latency histograms per FHIR interaction, rendered in the
//! text exposition format at `/metrics`. Labels are interaction names and status classes only: never
//! ids, URLs or anything else a client controls.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// All request metrics of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, &'static str), std::sync::Arc<Series>>>,
}

/// One (interaction, status class) series: a count and a latency histogram.
#[derive(Debug, Default)]
struct Series {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, interaction: &'static str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let series = {
            let mut map = self
                .series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry((interaction, class)).or_default().clone()
        };
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in series.buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let map = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str(
            "# HELP tsunagu_requests_total FHIR requests by interaction and status class.\n",
        );
        out.push_str("# TYPE tsunagu_requests_total counter\n");
        for ((interaction, class), series) in map.iter() {
            let _ = writeln!(
                out,
                "tsunagu_requests_total{{interaction=\"{interaction}\",status=\"{class}\"}} {}",
                series.count.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP tsunagu_request_duration_seconds Latency of FHIR requests by interaction.\n",
        );
        out.push_str("# TYPE tsunagu_request_duration_seconds histogram\n");
        for ((interaction, class), series) in map.iter() {
            let labels = format!("interaction=\"{interaction}\",status=\"{class}\"");
            for (bucket, bound) in series.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "tsunagu_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = series.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tsunagu_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = series.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0;
            let _ = writeln!(
                out,
                "tsunagu_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "tsunagu_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("read", 200, Duration::from_micros(700));
        metrics.observe("read", 200, Duration::from_millis(20));
        metrics.observe("read", 404, Duration::from_millis(1));
        let text = metrics.render();
        assert!(text.contains("tsunagu_requests_total{interaction=\"read\",status=\"2xx\"} 2"));
        assert!(text.contains("tsunagu_requests_total{interaction=\"read\",status=\"4xx\"} 1"));
        assert!(text.contains("tsunagu_request_duration_seconds_bucket{interaction=\"read\",status=\"2xx\",le=\"0.001\"} 1"));
        assert!(text.contains("tsunagu_request_duration_seconds_bucket{interaction=\"read\",status=\"2xx\",le=\"0.025\"} 2"));
        assert!(text.contains(
            "tsunagu_request_duration_seconds_count{interaction=\"read\",status=\"2xx\"} 2"
        ));
    }
}
