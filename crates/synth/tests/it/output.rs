//! `write_dataset` writes the documented layout, the manifest tells the truth about it, and the same
//! seed writes byte-identical files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use synth::{Generator, SubmissionKind, write_dataset};

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for path in ["manifest.json", "truth.jsonl"] {
        files.insert(
            path.to_owned(),
            std::fs::read(dir.join(path)).expect("file written"),
        );
    }
    for kind in SubmissionKind::ALL {
        let path = format!("bundles/{}", kind.file_name());
        files.insert(
            path.clone(),
            std::fs::read(dir.join(&path)).expect("file written"),
        );
    }
    files
}

#[test]
fn the_dataset_is_deterministic_and_described_by_its_manifest() {
    let first = tempfile::tempdir().expect("temp dir");
    let second = tempfile::tempdir().expect("temp dir");
    let other = tempfile::tempdir().expect("temp dir");
    let mut calls = Vec::new();
    let summary = write_dataset(&Generator::new(11), 120, first.path(), &mut |done| {
        calls.push(done)
    })
    .expect("written");
    write_dataset(&Generator::new(11), 120, second.path(), &mut |_| {}).expect("written");
    write_dataset(&Generator::new(12), 120, other.path(), &mut |_| {}).expect("written");
    assert_eq!(calls.last(), Some(&120));

    let written = files(first.path());
    assert_eq!(written, files(second.path()));
    let different = files(other.path());
    for (path, bytes) in &written {
        assert_ne!(
            Some(bytes),
            different.get(path),
            "{path} does not depend on the seed"
        );
    }

    // Only Bundles under bundles/, so that `tsunagu import DIR/bundles` reads nothing else.
    let listed: Vec<String> = std::fs::read_dir(first.path().join("bundles"))
        .expect("bundles dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        listed.iter().all(|name| name.ends_with(".ndjson")),
        "{listed:?}"
    );

    let manifest: Value =
        serde_json::from_slice(&written["manifest.json"]).expect("manifest parses");
    assert_eq!(manifest["seed"], 11);
    assert_eq!(manifest["persons"], 120);
    assert_eq!(manifest["as_of"], "2026-10-01");
    let mut resources = 0u64;
    for kind in SubmissionKind::ALL {
        let path = format!("bundles/{}", kind.file_name());
        let text = std::str::from_utf8(&written[&path]).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            manifest["files"][&path]["lines"],
            lines.len() as u64,
            "{path}"
        );
        assert_eq!(
            manifest["files"][&path]["bytes"],
            written[&path].len() as u64,
            "{path}"
        );
        assert_eq!(
            summary.bundles.get(&kind).copied().unwrap_or(0),
            lines.len() as u64
        );
        for line in lines {
            // Each line is what the importer parses: one FHIR resource (a Bundle).
            let bundle = fhir::parse_json(line.as_bytes()).expect("a FHIR resource per line");
            assert_eq!(bundle["resourceType"], "Bundle");
            resources += bundle["entry"]
                .as_array()
                .map_or(0, |entries| entries.len() as u64);
        }
    }
    let counted: u64 = manifest["resources"]
        .as_object()
        .expect("resources")
        .values()
        .map(|count| count.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, resources);
    let truth_lines = std::str::from_utf8(&written["truth.jsonl"])
        .expect("utf-8")
        .lines()
        .count();
    assert_eq!(truth_lines, 120);
    // The facilities listed are every facility named in the ground truth.
    let listed_facilities = manifest["facilities"].as_array().expect("facilities").len();
    assert_eq!(listed_facilities, summary.facilities.len());
}
