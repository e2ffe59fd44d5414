//! Writes a population to a directory, streaming (one person in memory at a time):
//!
//! ```text
//! DIR/manifest.json                        seed, as-of date, version, counts, bytes, facilities used
//! DIR/truth.jsonl                          one ground-truth object per person (JSON Lines)
//! DIR/bundles/clins-condition.ndjson       JP_Bundle_CLINS of Conditions, one Bundle per line
//! DIR/bundles/clins-allergyintolerance.ndjson
//! DIR/bundles/clins-observation.ndjson     lab results and infection results
//! DIR/bundles/ereferral.ndjson             JP_Bundle_eReferral documents (with prescriptions)
//! DIR/bundles/echeckup.ndjson              JP_Bundle_eCheckupGeneral documents
//! ```
//!
//! Within each file the Bundles are in person order, and a person's Bundles in the order a facility
//! would send them. `tsunagu import DIR/bundles` reads them (each line is a Bundle resource); the
//! ground truth and the manifest are not FHIR and stay outside `bundles/`. Nothing that varies
//! between runs (times, paths) is written, so the same seed gives byte-identical files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::Generator;
use crate::bundles::SubmissionKind;

/// Version of the directory layout and file formats above.
pub const FORMAT_VERSION: u32 = 1;

/// What [`write_dataset`] wrote.
#[derive(Debug, Clone, Default)]
pub struct DatasetSummary {
    pub persons: u64,
    /// Bundles per kind.
    pub bundles: BTreeMap<SubmissionKind, u64>,
    /// Resources (Bundle entries) per resource type, over all Bundles.
    pub resources: BTreeMap<String, u64>,
    /// Resources carrying each flag of `JP_ehrshrs_indication`.
    pub flags: BTreeMap<String, u64>,
    /// Bytes per file, by path relative to the output directory.
    pub bytes: BTreeMap<String, u64>,
    /// Institution numbers of the facilities that submitted or received something.
    pub facilities: BTreeSet<String>,
}

impl DatasetSummary {
    pub fn total_bytes(&self) -> u64 {
        self.bytes.values().sum()
    }

    pub fn total_bundles(&self) -> u64 {
        self.bundles.values().sum()
    }
}

/// Writes persons `0..persons` of `generator` under `dir` (created if missing; files in it are
/// replaced). `progress` is called with the number of persons written so far, every 1,000 persons
/// and at the end.
pub fn write_dataset(
    generator: &Generator,
    persons: u64,
    dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> io::Result<DatasetSummary> {
    let bundle_dir = dir.join("bundles");
    std::fs::create_dir_all(&bundle_dir)?;
    let mut writers: BTreeMap<SubmissionKind, Counted<BufWriter<File>>> = BTreeMap::new();
    for kind in SubmissionKind::ALL {
        let file = File::create(bundle_dir.join(kind.file_name()))?;
        writers.insert(kind, Counted::new(BufWriter::with_capacity(1 << 20, file)));
    }
    let mut truth = Counted::new(BufWriter::with_capacity(
        1 << 20,
        File::create(dir.join("truth.jsonl"))?,
    ));
    let mut summary = DatasetSummary {
        persons,
        ..DatasetSummary::default()
    };
    for number in 0..persons {
        let person = generator.person(number);
        for submission in &person.submissions {
            let writer = writers
                .get_mut(&submission.kind)
                .expect("a writer per kind");
            serde_json::to_writer(&mut *writer, &submission.bundle)?;
            writer.write_all(b"\n")?;
            *summary.bundles.entry(submission.kind).or_default() += 1;
            count_resources(&submission.bundle, &mut summary);
        }
        for facility in &person.truth.facilities {
            summary.facilities.insert(facility.number.clone());
        }
        serde_json::to_writer(&mut truth, &person.truth.to_json())?;
        truth.write_all(b"\n")?;
        if (number + 1) % 1000 == 0 {
            progress(number + 1);
        }
    }
    for (kind, mut writer) in writers {
        writer.flush()?;
        summary
            .bytes
            .insert(format!("bundles/{}", kind.file_name()), writer.bytes);
    }
    truth.flush()?;
    summary.bytes.insert("truth.jsonl".to_owned(), truth.bytes);
    let manifest = manifest(generator, &summary);
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    std::fs::write(dir.join("manifest.json"), &text)?;
    summary
        .bytes
        .insert("manifest.json".to_owned(), text.len() as u64);
    progress(persons);
    Ok(summary)
}

fn count_resources(bundle: &Value, summary: &mut DatasetSummary) {
    let Some(entries) = bundle["entry"].as_array() else {
        return;
    };
    for entry in entries {
        let resource = &entry["resource"];
        if let Some(resource_type) = resource["resourceType"].as_str() {
            *summary
                .resources
                .entry(resource_type.to_owned())
                .or_default() += 1;
        }
        for tag in resource["meta"]["tag"].as_array().into_iter().flatten() {
            if tag["system"] == crate::bundles::url::INDICATION
                && let Some(code) = tag["code"].as_str()
            {
                *summary.flags.entry(code.to_owned()).or_default() += 1;
            }
        }
    }
}

fn manifest(generator: &Generator, summary: &DatasetSummary) -> Value {
    let tables = generator.tables();
    let files: BTreeMap<String, Value> = summary
        .bytes
        .iter()
        .filter(|(path, _)| path.as_str() != "manifest.json")
        .map(|(path, bytes)| {
            let kind = SubmissionKind::ALL
                .into_iter()
                .find(|kind| path.ends_with(kind.file_name()));
            let lines = match kind {
                Some(kind) => summary.bundles.get(&kind).copied().unwrap_or(0),
                None => summary.persons,
            };
            let description = kind.map_or("ground truth, one JSON object per person", |kind| {
                match kind {
                    SubmissionKind::Condition => "JP_Bundle_CLINS collection Bundles of Condition",
                    SubmissionKind::AllergyIntolerance => {
                        "JP_Bundle_CLINS collection Bundles of AllergyIntolerance"
                    }
                    SubmissionKind::Observation => {
                        "JP_Bundle_CLINS collection Bundles of lab-result Observation"
                    }
                    SubmissionKind::Referral => {
                        "JP_Bundle_eReferral document Bundles (referral letters with prescriptions)"
                    }
                    SubmissionKind::Checkup => {
                        "JP_Bundle_eCheckupGeneral document Bundles (checkup reports)"
                    }
                }
            });
            (
                path.clone(),
                json!({"lines": lines, "bytes": bytes, "content": description}),
            )
        })
        .collect();
    let facilities: Vec<Value> = summary
        .facilities
        .iter()
        .filter_map(|number| tables.facility(number))
        .map(|facility| {
            json!({
                "number": facility.number,
                "name": facility.name,
                "kind": match facility.kind {
                    crate::tables::FacilityKind::Clinic => "clinic",
                    crate::tables::FacilityKind::Hospital => "hospital",
                },
                "prefecture": tables.prefectures[facility.prefecture].code,
                "municipality": tables.municipalities[facility.municipality].code,
            })
        })
        .collect();
    json!({
        "generator": "tsunagu synth",
        "version": env!("CARGO_PKG_VERSION"),
        "format": FORMAT_VERSION,
        "seed": generator.seed(),
        "as_of": generator.options().as_of.to_string(),
        "persons": summary.persons,
        "files": files,
        "bundles": summary.bundles.iter().map(|(kind, count)| (kind.as_str(), *count)).collect::<BTreeMap<_, _>>(),
        "resources": summary.resources,
        "flags": summary.flags,
        "facilities": facilities,
        "notes": "Synthetic, fictional data. Import with `tsunagu import DIR/bundles`. Code tables and their sources: crates/synth/data/SOURCES.md.",
    })
}

/// A writer that counts the bytes written through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted { inner, bytes: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
