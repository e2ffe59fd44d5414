//! The ground truth says what the Bundles say: read back from the Bundles alone, the diagnoses,
//! allergies, latest labs, infection results, current medications and documents of each person
//! are exactly the ones in `truth`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use synth::bundles::url;
use synth::plan::CURRENT_MEDICATION_DAYS;
use synth::{Date, Generator, SubmissionKind, codes};

fn date_of(text: &str) -> Date {
    Date::parse(&text[..10]).expect("a date")
}

fn flags(resource: &Value) -> BTreeSet<String> {
    resource["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tag| tag["system"] == url::INDICATION)
        .filter_map(|tag| tag["code"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn ground_truth_agrees_with_the_bundles() {
    let generator = Generator::new(9);
    let as_of = generator.options().as_of;
    let mut people_with_medications = 0;
    for person in generator.persons().take(300) {
        let truth = &person.truth;
        let mut diagnoses = BTreeSet::new();
        let mut allergies = BTreeSet::new();
        let mut latest: BTreeMap<String, (Date, String)> = BTreeMap::new();
        let mut infections = BTreeSet::new();
        let mut medications = BTreeSet::new();
        let mut referrals = BTreeSet::new();
        let mut checkups = BTreeSet::new();
        for submission in &person.submissions {
            let entries = submission.bundle["entry"].as_array().expect("entries");
            for entry in entries {
                let resource = &entry["resource"];
                if resource["resourceType"] == "Patient" {
                    let member = resource["identifier"]
                        .as_array()
                        .expect("identifiers")
                        .iter()
                        .find(|identifier| identifier["system"] == url::MEMBER_ID)
                        .expect("member id");
                    assert_eq!(member["value"].as_str(), Some(truth.member_id.as_str()));
                    assert_eq!(
                        resource["birthDate"].as_str(),
                        Some(truth.birth_date.to_string().as_str())
                    );
                }
            }
            match submission.kind {
                SubmissionKind::Condition => {
                    for entry in &entries[1..] {
                        let resource = &entry["resource"];
                        let medis = resource["code"]["coding"][0]["code"]
                            .as_str()
                            .expect("MEDIS")
                            .to_owned();
                        let status = resource["clinicalStatus"]["coding"][0]["code"]
                            .as_str()
                            .expect("status")
                            .to_owned();
                        let identifier = resource["identifier"][0]["value"]
                            .as_str()
                            .expect("identifier")
                            .to_owned();
                        diagnoses.insert((
                            identifier,
                            medis,
                            status,
                            flags(resource),
                            submission.facility.clone(),
                        ));
                    }
                }
                SubmissionKind::AllergyIntolerance => {
                    for entry in &entries[1..] {
                        let resource = &entry["resource"];
                        allergies.insert((
                            resource["identifier"][0]["value"]
                                .as_str()
                                .expect("identifier")
                                .to_owned(),
                            resource["code"]["coding"][0]["code"]
                                .as_str()
                                .expect("code")
                                .to_owned(),
                            resource["criticality"]
                                .as_str()
                                .expect("criticality")
                                .to_owned(),
                            flags(resource),
                        ));
                    }
                }
                SubmissionKind::Observation => {
                    for entry in &entries[1..] {
                        let resource = &entry["resource"];
                        let code = resource["code"]["coding"][1]["code"]
                            .as_str()
                            .expect("JLAC10")
                            .to_owned();
                        let date =
                            date_of(resource["effectiveDateTime"].as_str().expect("effective"));
                        if let Some(value) = resource["valueQuantity"]["value"].as_f64() {
                            let newer = latest.get(&code).is_none_or(|(seen, _)| *seen <= date);
                            if newer {
                                latest.insert(code, (date, format!("{value}")));
                            }
                        } else {
                            let positive = resource["valueString"] == "陽性";
                            infections.insert((code, positive, date));
                        }
                    }
                }
                SubmissionKind::Referral => {
                    referrals.insert(submission.identifier.clone());
                    let destination = entries
                        .iter()
                        .map(|entry| &entry["resource"])
                        .filter(|resource| resource["resourceType"] == "Organization")
                        .filter_map(|resource| resource["identifier"][0]["value"].as_str())
                        .find(|number| *number != submission.facility)
                        .expect("a destination organization");
                    assert_eq!(Some(destination), truth.referrals[0].destination.as_deref());
                    for resource in entries.iter().map(|entry| &entry["resource"]) {
                        if resource["resourceType"] == "MedicationRequest" {
                            let authored =
                                date_of(resource["authoredOn"].as_str().expect("authoredOn"));
                            if as_of.days_since(authored) <= CURRENT_MEDICATION_DAYS {
                                medications.insert((
                                    resource["medicationCodeableConcept"]["coding"][0]["code"]
                                        .as_str()
                                        .expect("YJ")
                                        .to_owned(),
                                    authored,
                                    submission.identifier.clone(),
                                ));
                            }
                        }
                    }
                }
                SubmissionKind::Checkup => {
                    checkups.insert(submission.identifier.clone());
                }
            }
        }
        let expected_diagnoses: BTreeSet<_> = truth
            .diagnoses
            .iter()
            .map(|diagnosis| {
                let mut flags = BTreeSet::new();
                for (set, name) in [
                    (diagnosis.lts, "LTS"),
                    (diagnosis.uninformed, "UNINFORMED"),
                    (diagnosis.undelivered, "UNDELIVERED"),
                ] {
                    if set {
                        flags.insert(name.to_owned());
                    }
                }
                (
                    diagnosis.identifier.clone(),
                    diagnosis.medis.to_owned(),
                    diagnosis.clinical_status.to_owned(),
                    flags,
                    diagnosis.facility.clone(),
                )
            })
            .collect();
        assert_eq!(diagnoses, expected_diagnoses, "person {}", person.number);
        let expected_allergies: BTreeSet<_> = truth
            .allergies
            .iter()
            .map(|allergy| {
                let flags = if allergy.lts {
                    BTreeSet::from(["LTS".to_owned()])
                } else {
                    BTreeSet::new()
                };
                (
                    allergy.identifier.clone(),
                    allergy.code.to_owned(),
                    allergy.criticality.to_owned(),
                    flags,
                )
            })
            .collect();
        assert_eq!(allergies, expected_allergies, "person {}", person.number);
        for allergy in &truth.allergies {
            assert_eq!(
                allergy.contraindication,
                allergy.category == "medication" && allergy.criticality == "high"
            );
        }
        let expected_latest: BTreeMap<String, (Date, String)> = truth
            .latest_labs
            .iter()
            .map(|lab| (lab.jlac10.to_owned(), (lab.date, format!("{}", lab.value))))
            .collect();
        assert_eq!(latest, expected_latest, "person {}", person.number);
        let expected_infections: BTreeSet<_> = truth
            .infections
            .iter()
            .map(|infection| {
                (
                    infection.jlac10.to_owned(),
                    infection.positive,
                    infection.date,
                )
            })
            .collect();
        assert_eq!(infections, expected_infections, "person {}", person.number);
        let expected_medications: BTreeSet<_> = truth
            .current_medications
            .iter()
            .map(|medication| {
                (
                    medication.yj.to_owned(),
                    medication.authored_on,
                    medication.document.clone(),
                )
            })
            .collect();
        assert_eq!(
            medications, expected_medications,
            "person {}",
            person.number
        );
        people_with_medications += usize::from(!medications.is_empty());
        let expected_referrals: BTreeSet<_> = truth
            .referrals
            .iter()
            .map(|document| document.identifier.clone())
            .collect();
        assert_eq!(referrals, expected_referrals);
        let expected_checkups: BTreeSet<_> = truth
            .checkups
            .iter()
            .map(|document| document.identifier.clone())
            .collect();
        assert_eq!(checkups, expected_checkups);
        assert_eq!(
            truth.member_id_normalized,
            codes::to_halfwidth(&truth.member_id)
        );
        let counted: usize = truth.submissions.values().sum();
        assert_eq!(counted, person.submissions.len());
    }
    assert!(people_with_medications > 20, "{people_with_medications}");
}

#[test]
fn truth_json_carries_what_a_summary_test_needs() {
    let person = Generator::new(9)
        .persons()
        .find(|person| {
            !person.truth.current_medications.is_empty() && !person.truth.latest_labs.is_empty()
        })
        .expect("someone on medication with labs");
    let json = person.truth.to_json();
    for key in [
        "member_id",
        "member_id_normalized",
        "diagnoses",
        "allergies",
        "latest_labs",
        "infections",
        "current_medications",
        "referrals",
        "checkups",
        "facilities",
    ] {
        assert!(!json[key].is_null(), "{key}");
    }
    assert_eq!(
        json["current_medications"][0]["yj"].as_str().map(str::len),
        Some(12)
    );
    assert!(json["latest_labs"][0]["value"].is_number());
}
