//! The load driver's smoke test (CI keeps it working; timings are never asserted): `loadgen`
//! spawns `tsunagu serve --demo` itself and runs a few seconds of closed loop, its users signing
//! in as they go; then a few seconds of open loop against a server started here on the same data,
//! where its setup must find everything it registered, submitted and consented the first time, and
//! every user signs in before the load. Each run must have sent every class of request (the token
//! requests only in the first) with no error and nothing dropped, and written the documented JSON
//! and a well-formed SVG chart with its series. Everything stays in the test's temp dir.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{DataDir, Server};

/// Every operation once per deck: a short run still sends every class.
const EVEN_MIX: &str = "submit_new=1,resubmit=1,clinician_summary=1,clinician_labs=1,\
    clinician_read=1,pharmacist_medications=1,pharmacist_allergies=1,patient_read=1,\
    patient_summary=1,patient_history=1,emergency=1,denied_read=1,denied_search=1";

/// Every request class the driver reports.
const CLASSES: [&str; 17] = [
    "submit_new",
    "resubmit",
    "clinician_summary",
    "clinician_labs",
    "clinician_read",
    "pharmacist_medications",
    "pharmacist_allergies",
    "patient_read",
    "patient_summary",
    "patient_history",
    "emergency_access",
    "emergency_summary",
    "denied_read",
    "denied_search",
    "token_member",
    "token_challenge",
    "token_patient",
];

/// The driver's arguments shared by both runs: a tiny population and cheap password hashes.
fn common(data: &Path, out: &Path, name: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "loadgen",
        "--people",
        "3",
        "--hospitals",
        "1",
        "--clinics",
        "1",
        "--pharmacies",
        "1",
        "--users",
        "2",
        "--password-iterations",
        "1000",
        "--mix",
        EVEN_MIX,
        "--warmup",
        "0s",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push("--data".into());
    args.push(data.into());
    args.push("--json".into());
    args.push(out.join(format!("{name}.json")).into());
    args.push("--svg".into());
    args.push(out.join(format!("{name}.svg")).into());
    args
}

#[test]
fn the_load_driver_runs_closed_and_open_loop_against_serve_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let database = format!("sqlite://{}", data.join("tsunagu.db").display());

    // Closed loop; the driver starts and stops `serve --demo`.
    let mut args = common(&data, &out, "closed");
    args.extend(
        [
            "--no-sign-in",
            "--connections",
            "4",
            "--duration",
            "3s",
            "--database",
            &database,
            "--spawn",
            env!("CARGO_BIN_EXE_tsunagu"),
            "--",
            "--demo",
        ]
        .map(OsString::from),
    );
    loadgen::main_with_args(args).expect("the closed-loop run");
    let closed = results(&out.join("closed.json"), true);
    assert_eq!(closed["config"]["mode"], "closed");
    assert_eq!(closed["target"]["spawned"], true);
    assert!(closed["sign_in"].is_null());
    let setup = &closed["setup"];
    assert_eq!(setup["people_submitted"], 3, "{setup}");
    assert!(
        setup["organisations_added"].as_u64().unwrap() > 5,
        "{setup}"
    );
    assert_eq!(setup["accounts_added"], 3, "{setup}");
    assert_eq!(setup["consents_added"], 9, "{setup}");
    check_chart(&out.join("closed.svg"), CLASSES.len());

    // Open loop against a server started here, on the same data: the setup reuses everything.
    let server_data = DataDir::new(&data);
    let server = Server::start(
        &server_data,
        &["--database", &database],
        &[],
        Duration::from_secs(60),
    );
    let mut args = common(&data, &out, "open");
    args.extend(
        [
            "--url".to_owned(),
            format!("http://127.0.0.1:{}", server.port),
            "--server-pid".to_owned(),
            server.pid().to_string(),
            "--rate".to_owned(),
            "40".to_owned(),
            "--duration".to_owned(),
            "2s".to_owned(),
        ]
        .map(OsString::from),
    );
    loadgen::main_with_args(args).expect("the open-loop run");
    let open = results(&out.join("open.json"), false);
    assert_eq!(open["config"]["mode"], "open");
    assert_eq!(open["config"]["rate_per_s"], 40.0);
    assert_eq!(open["target"]["spawned"], false);
    assert!(
        open["sign_in"]["identities"].as_u64().unwrap() > 10,
        "{}",
        open["sign_in"]
    );
    let setup = &open["setup"];
    for added in [
        "organisations_added",
        "clients_added",
        "people_submitted",
        "accounts_added",
        "consents_added",
    ] {
        assert_eq!(setup[added], 0, "a second setup added {added}: {setup}");
    }
    assert_eq!(setup["people_found"], 3, "{setup}");
    assert_eq!(setup["accounts_reused"], 3, "{setup}");
    assert_eq!(setup["consents_found"], 9, "{setup}");
    // No marker for the token requests, which were all made before the load.
    check_chart(&out.join("open.svg"), CLASSES.len() - 3);
    server.stop();
    // Everything the load did was audited, and the log is intact.
    assert!(server_data.verify_audit_log() > 0);

    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["closed.json", "closed.svg", "open.json", "open.svg"]
    );
}

/// The results document: the documented fields, every class sent (token requests only when
/// `tokens` is set: otherwise every token was obtained before the load), no error, nothing
/// dropped.
fn results(path: &Path, tokens: bool) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON results");
    let results: Value = serde_json::from_str(&text).expect("valid JSON");
    for field in [
        "tool",
        "format_version",
        "started_at",
        "target",
        "config",
        "setup",
        "overall",
        "classes",
        "timeline",
        "server",
        "machine",
        "sign_in",
        "client",
    ] {
        assert!(results.get(field).is_some(), "no {field} in {text}");
    }
    assert_eq!(results["format_version"], 1);
    let latency_fields = ["p50", "p90", "p99", "p99_9", "max", "mean"];
    let overall = &results["overall"];
    assert_eq!(overall["errors"], 0, "{overall}");
    assert_eq!(overall["dropped"], 0, "{overall}");
    assert!(overall["requests"].as_u64().unwrap() > 0);
    assert!(overall["throughput_per_s"].as_f64().unwrap() > 0.0);
    for field in latency_fields {
        assert!(
            overall["latency_ms"][field].as_f64().unwrap() > 0.0,
            "{field}"
        );
    }
    let classes = results["classes"].as_array().unwrap();
    let names: Vec<&str> = classes
        .iter()
        .map(|class| class["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CLASSES, "the classes, in order");
    for class in classes {
        let name = &class["name"];
        for field in [
            "token_request",
            "expected_statuses",
            "requests",
            "ok",
            "errors",
            "dropped",
            "throughput_per_s",
            "latency_ms",
            "statuses",
            "errors_by_status",
        ] {
            assert!(class.get(field).is_some(), "{name} has no {field}");
        }
        if class["token_request"] == true && !tokens {
            assert_eq!(class["requests"], 0, "{name} while signed in: {class}");
            continue;
        }
        assert!(
            class["requests"].as_u64().unwrap() > 0,
            "{name} got no requests: {class}"
        );
        assert_eq!(class["errors"], 0, "{name}: {class}");
        assert_eq!(class["ok"], class["requests"], "{name}: {class}");
        for field in latency_fields {
            assert!(
                class["latency_ms"][field].as_f64().unwrap() > 0.0,
                "{name} {field}"
            );
        }
    }
    let denied = classes
        .iter()
        .find(|class| class["name"] == "denied_read")
        .unwrap();
    assert_eq!(
        denied["statuses"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["404"]
    );
    let timeline = &results["timeline"];
    let seconds = results["config"]["duration_s"].as_f64().unwrap().ceil() as usize;
    assert_eq!(
        timeline["requests_per_s"].as_array().unwrap().len(),
        seconds
    );
    assert_eq!(timeline["errors_per_s"].as_array().unwrap().len(), seconds);
    assert_eq!(
        timeline["by_class"].as_object().unwrap().len(),
        CLASSES.len()
    );
    let server = &results["server"];
    assert!(server["pid"].as_u64().is_some(), "{server}");
    for field in ["start", "mean", "max", "end"] {
        assert!(server["rss_bytes"][field].as_u64().unwrap() > 0, "{server}");
    }
    assert!(server["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(server["cpu_seconds"].as_f64().is_some());
    assert!(!server["samples"].as_array().unwrap().is_empty());
    let machine = &results["machine"];
    for field in ["busy_cores", "server_cores", "driver_cores", "other_cores"] {
        assert!(machine[field].as_f64().is_some(), "{machine}");
    }
    results
}

/// Well-formed SVG with the percentile series (`markers` markers each: one per class measured),
/// throughput, errors and RSS, and a label per class.
fn check_chart(path: &Path, markers: usize) {
    let text = std::fs::read_to_string(path).expect("the SVG chart");
    let document = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let by_id = |id: &str| {
        document
            .descendants()
            .find(|node| node.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no element {id}"))
    };
    for percentile in ["p50", "p90", "p99", "p99_9"] {
        let drawn = by_id(&format!("series-{percentile}"))
            .children()
            .filter(|node| node.has_tag_name("circle"))
            .count();
        assert_eq!(drawn, markers, "{percentile}");
    }
    for line in ["series-throughput", "series-errors", "series-rss"] {
        let polyline = by_id(line);
        assert!(polyline.has_tag_name("polyline"));
        assert!(!polyline.attribute("points").unwrap().is_empty(), "{line}");
    }
    let labels: Vec<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .collect();
    for class in CLASSES {
        assert!(labels.contains(&class), "no label {class}");
    }
}
