//! Every generated Bundle has the JP-CLINS shape (see `check`) and is valid FHIR R4 (the schema
//! tsunagu itself validates with).

use serde_json::Value;
use synth::bundles::url;
use synth::{Generator, SubmissionKind};

use crate::check;

#[test]
fn every_bundle_of_300_people_has_the_jp_clins_shape() {
    let generator = Generator::new(1);
    let mut kinds_seen = std::collections::BTreeSet::new();
    for person in generator.persons().take(300) {
        assert!(
            !person.submissions.is_empty(),
            "person {} has no submission",
            person.number
        );
        for submission in &person.submissions {
            kinds_seen.insert(submission.kind);
            let problems = check::problems(&submission.bundle);
            assert!(
                problems.is_empty(),
                "person {} {:?}: {problems:?}",
                person.number,
                submission.kind
            );
            assert_eq!(
                submission.bundle["identifier"]["value"].as_str(),
                Some(submission.identifier.as_str())
            );
            assert!(
                submission
                    .identifier
                    .starts_with(&format!("{}^", submission.facility))
            );
        }
    }
    assert_eq!(
        kinds_seen.len(),
        SubmissionKind::ALL.len(),
        "{kinds_seen:?}"
    );
}

#[test]
fn every_resource_is_valid_fhir_r4() {
    let generator = Generator::new(2);
    for person in generator.persons().take(60) {
        for submission in &person.submissions {
            let issues = fhir::validate_resource(&submission.bundle);
            assert!(
                issues.is_empty(),
                "person {} {:?}: {issues:?}",
                person.number,
                submission.kind
            );
        }
    }
}

#[test]
fn collection_bundles_point_every_resource_at_their_patient() {
    let generator = Generator::new(3);
    for person in generator.persons().take(200) {
        for submission in person
            .submissions
            .iter()
            .filter(|submission| submission.bundle["type"] == "collection")
        {
            let entries = submission.bundle["entry"].as_array().expect("entries");
            let patient_url = entries[0]["fullUrl"].clone();
            for entry in &entries[1..] {
                let resource = &entry["resource"];
                let subject = if resource["resourceType"] == "AllergyIntolerance" {
                    &resource["patient"]
                } else {
                    &resource["subject"]
                };
                assert_eq!(subject["reference"], patient_url);
                // The submitting facility is the one named in the institution-number extension.
                assert_eq!(
                    resource["extension"][0]["valueIdentifier"]["value"].as_str(),
                    Some(submission.facility.as_str())
                );
            }
        }
    }
}

#[test]
fn the_shapes_match_the_published_examples() {
    // The published collection example and referral example, read the same way as generated ones:
    // what the checks demand is what the specification's own examples show.
    // The copies vendored with the project (fixtures/jp, unmodified, with their attribution).
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/jp/clins");
    let text =
        std::fs::read_to_string(fixtures.join("Bundle-Bundle-CLINS-Observations-Example-01.json"))
            .expect("the vendored JP fixtures in fixtures/jp");
    let example: Value = serde_json::from_str(&text).expect("example parses");
    assert_eq!(example["meta"]["profile"][0], url::BUNDLE_CLINS);
    assert_eq!(example["identifier"]["system"], url::BUNDLE_IDENTIFIER);
    assert_eq!(
        example["meta"]["tag"][0]["system"],
        url::BUNDLE_RESOURCE_TYPE
    );
    assert_eq!(
        example["entry"][0]["resource"]["identifier"][1]["system"],
        url::MEMBER_ID
    );
    assert_eq!(
        example["entry"][1]["resource"]["meta"]["profile"][0],
        url::LAB_RESULT.trim_end_matches("|1")
    );
    let referral: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("Bundle-Bundle-CLINS-Referral-Example-01.json"))
            .expect("referral example"),
    )
    .expect("referral parses");
    assert_eq!(referral["meta"]["profile"][0], url::BUNDLE_REFERRAL);
    assert_eq!(
        referral["entry"][0]["resource"]["meta"]["profile"][0],
        url::COMPOSITION_REFERRAL
    );
    assert_eq!(
        referral["entry"][0]["resource"]["type"]["coding"][0]["code"],
        "57133-1"
    );
}
