//! The results: the JSON document (field names are stable; docs/benchmarks.md, "Load driver",
//! describes each) and the table printed at the end of a run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::mix::{Class, Mix};
use crate::run::{Measured, Mode};
use crate::server::{Sample, ServerSample as ServerReading};
use crate::setup::SetupReport;
use crate::stats::{Percentiles, new_histogram};

/// The version of the JSON document's shape; raised when a field changes meaning or goes.
pub const FORMAT_VERSION: u64 = 1;

/// How the run was set up, for the report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub base_url: String,
    pub server_pid: Option<u32>,
    pub spawned: bool,
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub mix: Mix,
    pub seed: u64,
    pub as_of: String,
    pub people: u64,
    pub client_threads: usize,
    pub started_at: SystemTime,
}

/// The results document.
pub fn results(info: &RunInfo, setup: &SetupReport, measured: &Measured) -> Value {
    let seconds = info.duration.as_secs_f64();
    let recorder = &measured.recorder;
    let mut shown: Vec<Class> = info.mix.classes();
    for class in Class::ALL {
        if recorder.classes()[class.index()]
            .statuses
            .values()
            .sum::<u64>()
            > 0
            && !shown.contains(&class)
        {
            shown.push(class);
        }
    }
    shown.sort();
    let mut overall_latency = new_histogram();
    let (mut requests, mut ok, mut dropped) = (0, 0, 0);
    let mut overall_errors: Map<String, Value> = Map::new();
    let mut classes = Vec::new();
    for class in &shown {
        let stats = &recorder.classes()[class.index()];
        overall_latency
            .add(&stats.latency)
            .expect("histograms of equal bounds");
        requests += stats.requests;
        ok += stats.ok;
        dropped += stats.dropped;
        for (label, count) in &stats.errors {
            let entry = overall_errors.entry(label.clone()).or_insert(json!(0));
            *entry = json!(entry.as_u64().unwrap_or(0) + count);
        }
        classes.push(json!({
            "name": class.name(),
            "token_request": class.is_token(),
            "expected_statuses": class.expected(),
            "requests": stats.requests,
            "ok": stats.ok,
            "errors": stats.error_count(),
            "dropped": stats.dropped,
            "throughput_per_s": rounded(stats.requests as f64 / seconds),
            "latency_ms": latency(&Percentiles::of(&stats.latency)),
            "statuses": stats.statuses,
            "errors_by_status": stats.errors,
        }));
    }
    let timeline = recorder.timeline();
    let mut by_class = Map::new();
    for class in &shown {
        by_class.insert(
            class.name().to_owned(),
            json!(
                timeline
                    .iter()
                    .map(|second| second.completed[class.index()])
                    .collect::<Vec<_>>()
            ),
        );
    }
    let (mode, connections, rate, max_in_flight) = match info.mode {
        Mode::Closed { connections } => ("closed", Some(connections), None, None),
        Mode::Open {
            rate,
            max_in_flight,
        } => ("open", None, Some(rate), Some(max_in_flight)),
    };
    let mix: Map<String, Value> = info
        .mix
        .entries()
        .into_iter()
        .map(|(name, weight)| (name.to_owned(), json!(weight)))
        .collect();
    json!({
        "tool": "tsunagu-loadgen",
        "format_version": FORMAT_VERSION,
        "started_at": rfc3339(info.started_at),
        "target": {
            "base_url": info.base_url,
            "server_pid": info.server_pid,
            "spawned": info.spawned,
        },
        "config": {
            "mode": mode,
            "connections": connections,
            "rate_per_s": rate,
            "max_in_flight": max_in_flight,
            "warmup_s": info.warmup.as_secs_f64(),
            "duration_s": seconds,
            "timeout_s": info.timeout.as_secs_f64(),
            "seed": info.seed,
            "as_of": info.as_of,
            "people": info.people,
            "client_threads": info.client_threads,
            "mix": mix,
        },
        "setup": {
            "seconds": rounded(setup.seconds),
            "organisations_added": setup.organisations_added,
            "clients_added": setup.clients_added,
            "people_found": setup.people_found,
            "people_submitted": setup.people_submitted,
            "bundles_submitted": setup.bundles_submitted,
            "accounts_added": setup.accounts_added,
            "accounts_reused": setup.accounts_reused,
            "people_without_account": setup.people_without_account,
            "password_hashing_seconds": rounded(setup.password_hashing_seconds),
            "consents_found": setup.consents_found,
            "consents_added": setup.consents_added,
        },
        "overall": {
            "requests": requests,
            "ok": ok,
            "errors": requests - ok,
            "dropped": dropped,
            "throughput_per_s": rounded(requests as f64 / seconds),
            "latency_ms": latency(&Percentiles::of(&overall_latency)),
            "errors_by_status": overall_errors,
        },
        "classes": classes,
        "timeline": {
            "interval_s": 1,
            "requests_per_s": timeline.iter().map(|second| second.completed.iter().sum::<u64>()).collect::<Vec<_>>(),
            "errors_per_s": timeline.iter().map(|second| second.errors).collect::<Vec<_>>(),
            "by_class": by_class,
        },
        "server": server(&measured.samples, measured.peak_rss_bytes, info.server_pid, requests),
        "machine": machine(&measured.samples),
        "sign_in": measured.sign_in.map(|sign_in| json!({
            "identities": sign_in.identities,
            "seconds": rounded(sign_in.seconds),
        })),
        "client": {
            "new_person_bundle_waits": measured.fresh_waits,
        },
    })
}

fn latency(percentiles: &Percentiles) -> Value {
    let map: Map<String, Value> = percentiles
        .named()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), json!(rounded(value))))
        .collect();
    Value::Object(map)
}

/// Three decimals are plenty (a microsecond of latency).
fn rounded(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The readings that bound the measured window: the last before it (or the first in it) and the
/// last of all.
fn window(samples: &[Sample]) -> Option<(&Sample, &Sample)> {
    let first = samples
        .iter()
        .rev()
        .find(|sample| sample.at <= 0.0)
        .or_else(|| samples.first())?;
    let last = samples.last()?;
    (last.at > first.at).then_some((first, last))
}

/// The server's memory and CPU during the measured window.
fn server(
    samples: &[Sample],
    peak_rss_bytes: Option<u64>,
    pid: Option<u32>,
    requests: u64,
) -> Value {
    let Some(pid) = pid else {
        return Value::Null;
    };
    let readings: Vec<(f64, ServerReading)> = samples
        .iter()
        .filter_map(|sample| sample.server.map(|server| (sample.at, server)))
        .collect();
    let in_window: Vec<u64> = readings
        .iter()
        .filter(|(at, _)| *at >= 0.0)
        .map(|(_, server)| server.rss_bytes)
        .collect();
    let cpu = window(samples).and_then(|(first, last)| {
        Some((
            last.server?.cpu_seconds - first.server?.cpu_seconds,
            last.at - first.at,
        ))
    });
    let (Some(start), Some(end), Some((cpu_seconds, wall))) =
        (in_window.first(), in_window.last(), cpu)
    else {
        return json!({"pid": pid, "rss_bytes": null, "peak_rss_bytes": peak_rss_bytes, "cpu_seconds": null, "cpu_cores": null, "cpu_us_per_request": null, "samples": []});
    };
    json!({
        "pid": pid,
        "rss_bytes": {
            "start": start,
            "mean": in_window.iter().sum::<u64>() / in_window.len() as u64,
            "max": in_window.iter().max(),
            "end": end,
        },
        "peak_rss_bytes": peak_rss_bytes,
        "cpu_seconds": rounded(cpu_seconds),
        "cpu_cores": rounded(cpu_seconds / wall),
        "cpu_us_per_request": if requests > 0 { rounded(cpu_seconds * 1e6 / requests as f64) } else { 0.0 },
        "samples": readings.iter().map(|(at, server)| json!({
            "t_s": rounded(*at),
            "rss_bytes": server.rss_bytes,
            "cpu_seconds": rounded(server.cpu_seconds),
        })).collect::<Vec<_>>(),
    })
}

/// Where the machine's CPU went during the measured window, in cores.
fn machine(samples: &[Sample]) -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let Some((first, last)) = window(samples) else {
        return json!({"cpus": cpus, "busy_cores": null, "server_cores": null, "driver_cores": null, "other_cores": null});
    };
    let wall = last.at - first.at;
    let busy = (last.machine_busy_seconds - first.machine_busy_seconds) / wall;
    let driver = (last.driver_cpu_seconds - first.driver_cpu_seconds) / wall;
    let server = match (first.server, last.server) {
        (Some(first), Some(last)) => Some((last.cpu_seconds - first.cpu_seconds) / wall),
        _ => None,
    };
    json!({
        "cpus": cpus,
        "busy_cores": rounded(busy),
        "server_cores": server.map(rounded),
        "driver_cores": rounded(driver),
        "other_cores": rounded((busy - driver - server.unwrap_or(0.0)).max(0.0)),
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(at: SystemTime) -> String {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil::civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The table printed at the end: one line per class, then the totals and the server.
pub fn table(results: &Value) -> String {
    let mut out = String::new();
    let config = &results["config"];
    out.push_str(&format!(
        "{} loop, {} s measured after {} s of warm-up{}\n",
        config["mode"].as_str().unwrap_or("?"),
        config["duration_s"],
        config["warmup_s"],
        match config["mode"].as_str() {
            Some("open") => format!(
                ", {} operations/s, at most {} in flight",
                config["rate_per_s"], config["max_in_flight"]
            ),
            _ => format!(", {} connections", config["connections"]),
        }
    ));
    out.push_str(&format!(
        "{:<24} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
        "class",
        "requests",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "errors",
        "statuses"
    ));
    let row = |name: &str, figures: &Value| {
        let latency = &figures["latency_ms"];
        let statuses = figures
            .get("statuses")
            .and_then(Value::as_object)
            .map(|statuses| {
                statuses
                    .iter()
                    .map(|(status, count)| format!("{status}:{count}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        format!(
            "{:<24} {:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}  {}\n",
            name,
            figures["requests"].as_u64().unwrap_or(0),
            figures["throughput_per_s"].as_f64().unwrap_or(0.0),
            latency["p50"].as_f64().unwrap_or(0.0),
            latency["p90"].as_f64().unwrap_or(0.0),
            latency["p99"].as_f64().unwrap_or(0.0),
            latency["p99_9"].as_f64().unwrap_or(0.0),
            latency["max"].as_f64().unwrap_or(0.0),
            figures["errors"].as_u64().unwrap_or(0) + figures["dropped"].as_u64().unwrap_or(0),
            statuses
        )
    };
    for class in results["classes"].as_array().into_iter().flatten() {
        out.push_str(&row(class["name"].as_str().unwrap_or("?"), class));
    }
    out.push_str(&row("overall", &results["overall"]));
    let server = &results["server"];
    if server.is_object() && server["rss_bytes"].is_object() {
        let mib = |value: &Value| value.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
        out.push_str(&format!(
            "server: RSS {:.0} MiB at start, {:.0} MiB max, {:.0} MiB at end (peak of its life {:.0} MiB); CPU {:.2} cores, {:.0} µs per request\n",
            mib(&server["rss_bytes"]["start"]),
            mib(&server["rss_bytes"]["max"]),
            mib(&server["rss_bytes"]["end"]),
            mib(&server["peak_rss_bytes"]),
            server["cpu_cores"].as_f64().unwrap_or(0.0),
            server["cpu_us_per_request"].as_f64().unwrap_or(0.0),
        ));
    }
    let machine = &results["machine"];
    if machine["busy_cores"].is_number() {
        out.push_str(&format!(
            "machine ({} CPUs): {:.2} cores busy: server {}, driver {:.2}, other processes {:.2}\n",
            machine["cpus"],
            machine["busy_cores"].as_f64().unwrap_or(0.0),
            machine["server_cores"]
                .as_f64()
                .map_or_else(|| "?".to_owned(), |cores| format!("{cores:.2}")),
            machine["driver_cores"].as_f64().unwrap_or(0.0),
            machine["other_cores"].as_f64().unwrap_or(0.0),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
