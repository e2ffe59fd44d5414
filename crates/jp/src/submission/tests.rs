//! Submissions: the published Bundles are accepted, and each rule rejects a mutated copy naming the
//! element.

use serde_json::json;

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../fixtures/jp/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap()
}

const OBSERVATIONS: &str = "clins/Bundle-Bundle-CLINS-Observations-Example-01.json";
const REFERRAL: &str = "clins/Bundle-Bundle-CLINS-Referral-Example-01.json";

fn rejected(bundle: &Value) -> Vec<String> {
    let issues = validate_submission(bundle).expect_err("the bundle is rejected");
    issues
        .iter()
        .map(|issue| {
            format!(
                "{} {}",
                issue.expression.as_deref().unwrap_or_default(),
                issue.diagnostics
            )
        })
        .collect()
}

/// A Condition entry for a collection, built from the published Condition example.
fn condition_entry() -> Value {
    let condition = fixture("clins/Bundle-Bundle-CLINS-PCS-Example-01.json")["entry"][6].clone();
    assert_eq!(condition["resource"]["resourceType"], "Condition");
    condition
}

#[test]
fn the_published_lab_collection_is_accepted() {
    let submission = validate_submission(&fixture(OBSERVATIONS)).unwrap();
    assert_eq!(
        submission.kind,
        SubmissionKind::Collection {
            item: InformationItem::Observation
        }
    );
    assert_eq!(
        submission.identifier.to_string(),
        "1318814790^2024^0123-IDa-203949583949"
    );
    assert_eq!(submission.identifier.facility.as_str(), "1318814790");
    assert!(!submission.withdrawal);
    let insured = submission.patient.insured.unwrap();
    assert_eq!(insured.to_string(), "00012345:あいう:187:01");
    assert_eq!(submission.patient.public_payer, None);
    assert_eq!(submission.patient.facility_ids.len(), 1);
    assert_eq!(
        submission.patient.facility_ids[0].facility.as_str(),
        "1318814790"
    );
    assert_eq!(submission.patient.facility_ids[0].value, "000999739");
}

#[test]
fn the_published_documents_are_accepted() {
    for (name, kind) in [
        (REFERRAL, DocumentKind::Referral),
        (
            "clins/Bundle-Bundle-CLINS-Referral-NoEntry-Example-01.json",
            DocumentKind::Referral,
        ),
        (
            "clins/Bundle-Bundle-CLINS-PCS-Example-01.json",
            DocumentKind::PatientSummary,
        ),
    ] {
        let submission = validate_submission(&fixture(name))
            .unwrap_or_else(|issues| panic!("{name}: {issues:#?}"));
        assert_eq!(submission.kind, SubmissionKind::Document { kind }, "{name}");
        assert!(!submission.withdrawal);
        assert_eq!(
            submission.patient.insured.unwrap().to_string(),
            "00012345:あいう:187:05"
        );
    }
}

#[test]
fn the_echeckup_sample_declares_the_non_clins_profile_and_is_refused_as_a_submission() {
    // The sample (eCheckupReport package 1.0.0-temp) predates the CLINS variant of the profile: it
    // declares the eCheckup guide's own Bundle profile, a documentInstance identifier and a Patient
    // without an insured-person identifier.
    let issues = rejected(&fixture(
        "echeckup/Bundle-Bundle-eCheckupReport-Sample-01.json",
    ));
    assert_eq!(issues.len(), 3, "{issues:#?}");
    assert!(issues[0].starts_with("Bundle.identifier.system R02151"));
    assert!(
        issues[1].starts_with("Bundle.meta.profile a document submission declares exactly one of")
    );
    assert!(issues[1].contains("the eCheckup guide's own profile URL is not a CLINS submission"));
    assert!(issues[2].starts_with("Bundle.entry[1].resource.identifier R1012"));
}

#[test]
fn the_echeckup_sample_with_clins_profile_identifier_and_insured_id_is_a_checkup() {
    let mut bundle = fixture("echeckup/Bundle-Bundle-eCheckupReport-Sample-01.json");
    bundle["meta"]["profile"] = json!([bundle_profiles::CHECKUP_GENERAL]);
    bundle["identifier"] =
        json!({"system": BUNDLE_IDENTIFIER_SYSTEM, "value": "1311234567^2024^CHK-1"});
    bundle["entry"][1]["resource"]["identifier"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"system": INSURED_PERSON_SYSTEM, "value": "06123456:１２３４５:６７８９０:01"}),
        );
    let submission = validate_submission(&bundle).unwrap_or_else(|issues| panic!("{issues:#?}"));
    assert_eq!(
        submission.kind,
        SubmissionKind::Document {
            kind: DocumentKind::CheckupGeneral
        }
    );
    assert_eq!(
        submission.patient.insured.unwrap().to_string(),
        "06123456:12345:67890:01"
    );
}

#[test]
fn a_patient_only_collection_is_a_withdrawal() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"].as_array_mut().unwrap().truncate(1);
    let submission = validate_submission(&bundle).unwrap();
    assert!(submission.withdrawal);
    assert_eq!(
        submission.kind,
        SubmissionKind::Collection {
            item: InformationItem::Observation
        }
    );
}

#[test]
fn a_condition_collection_built_from_published_conditions_is_accepted() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"]["tag"][0]["code"] = json!("Condition");
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.truncate(1);
    entries.push(condition_entry());
    let submission = validate_submission(&bundle).unwrap_or_else(|issues| panic!("{issues:#?}"));
    assert_eq!(
        submission.kind,
        SubmissionKind::Collection {
            item: InformationItem::Condition
        }
    );
}

#[test]
fn mixed_resource_types_break_the_single_type_rule() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"]
        .as_array_mut()
        .unwrap()
        .push(condition_entry());
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[5].resource single-type rule: this submission declares Observation in Bundle.meta.tag, so every entry after the Patient is an Observation"
        ]
    );
}

#[test]
fn encounters_travel_only_as_contained_resources() {
    let mut bundle = fixture(OBSERVATIONS);
    let encounter = bundle["entry"][1]["resource"]["contained"][0].clone();
    bundle["entry"].as_array_mut().unwrap().push(
        json!({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": encounter}),
    );
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[5].resource an Encounter travels only as a contained resource of the Observation it belongs to"
        ]
    );
}

#[test]
fn the_patient_comes_first() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"].as_array_mut().unwrap().swap(0, 1);
    let issues = rejected(&bundle);
    assert!(
        issues.contains(&"Bundle.entry[0].resource R0211: the first entry of a collection submission is the Patient".to_owned()),
        "{issues:#?}"
    );
}

#[test]
fn the_resource_type_tag_is_required_and_limited_to_three_items() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"]["tag"] = json!([]);
    let issues = rejected(&bundle);
    assert!(
        issues
            .iter()
            .any(|issue| issue.starts_with("Bundle.meta.tag R02141")),
        "{issues:#?}"
    );

    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"]["tag"][0]["code"] = json!("MedicationRequest");
    let issues = rejected(&bundle);
    assert!(
        issues.contains(&"Bundle.meta.tag[0].code R02142: the declared resource type is Condition, AllergyIntolerance or Observation (prescriptions travel only inside documents)".to_owned()),
        "{issues:#?}"
    );
}

#[test]
fn the_bundle_identifier_has_the_clins_system_and_format() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["identifier"]["value"] = json!("1318814790^24^0123");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.identifier.value R2152: the year of a bundle identifier (second part) must be 4 half-width digits from 2020 to 2039"
        ]
    );
    bundle["identifier"]["value"] = json!("4818814790^2024^0123");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.identifier.value R2152: the prefecture code of an institution number (digits 1-2) must be 01 to 47"
        ]
    );
    bundle["identifier"]["system"] = json!("http://example.org/ids");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.identifier.system R02151: the Bundle identifier system must be http://jpfhir.jp/fhir/clins/bundle-identifier"
        ]
    );
    bundle.as_object_mut().unwrap().remove("identifier");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.identifier a submission needs Bundle.identifier (system http://jpfhir.jp/fhir/clins/bundle-identifier)"
        ]
    );
}

#[test]
fn meta_profile_is_required_on_the_bundle_and_every_entry() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"].as_object_mut().unwrap().remove("profile");
    bundle["entry"][2]["resource"]["meta"]
        .as_object_mut()
        .unwrap()
        .remove("profile");
    let issues = rejected(&bundle);
    for expected in [
        "Bundle.meta.profile R0213: a collection submission declares the profile JP_Bundle_CLINS",
        "Bundle.entry[2].resource.meta.profile every resource of a submission declares its profile in meta.profile",
        "Bundle.entry[2].resource.meta.profile an Observation entry declares the profile JP_Observation_LabResult_eCS",
    ] {
        assert!(
            issues.contains(&expected.to_owned()),
            "{expected}\n{issues:#?}"
        );
    }
}

#[test]
fn a_lab_entry_without_local_code_is_rejected_at_its_entry() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"][3]["resource"]["code"]["coding"]
        .as_array_mut()
        .unwrap()
        .retain(|coding| coding["system"] != json!(crate::lab_systems::LOCAL));
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[3].resource.code.coding a lab result needs a coding with the facility's own code (system JP_CLINS_ObsLabResult_LocalCode_CS)"
        ]
    );
}

#[test]
fn collection_entries_need_institution_number_department_and_contained_encounter() {
    let mut bundle = fixture(OBSERVATIONS);
    let observation = &mut bundle["entry"][1]["resource"];
    observation.as_object_mut().unwrap().remove("extension");
    observation["contained"].as_array_mut().unwrap().remove(0);
    observation.as_object_mut().unwrap().remove("encounter");
    let issues = rejected(&bundle);
    assert_eq!(issues.len(), 3, "{issues:#?}");
    assert!(issues[0].starts_with("Bundle.entry[1].resource.extension R9011"));
    assert!(issues[1].starts_with("Bundle.entry[1].resource.extension R9014"));
    assert!(issues[2].starts_with("Bundle.entry[1].resource.contained R9013"));
}

#[test]
fn conditions_in_a_collection_state_their_onset() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"]["tag"][0]["code"] = json!("Condition");
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.truncate(1);
    let mut condition = condition_entry();
    condition["resource"]
        .as_object_mut()
        .unwrap()
        .remove("onsetDateTime");
    entries.push(condition);
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[1].resource.onsetDateTime R9013C: every Condition states its onset as onsetDateTime"
        ]
    );
}

#[test]
fn full_urls_are_required_and_unique() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"][2]["fullUrl"] = bundle["entry"][1]["fullUrl"].clone();
    bundle["entry"][3]
        .as_object_mut()
        .unwrap()
        .remove("fullUrl");
    let issues = rejected(&bundle);
    assert!(issues.contains(
        &"Bundle.entry[2].fullUrl fullUrl must be unique within the Bundle (bdl-7)".to_owned()
    ));
    assert!(issues.contains(
        &"Bundle.entry[3].fullUrl every entry needs a fullUrl (a fresh urn:uuid)".to_owned()
    ));
}

#[test]
fn the_patient_needs_a_valid_insured_person_identifier() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"][0]["resource"]["identifier"][1]["value"] = json!("00012345:あいう:１８７");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[0].resource.identifier[1].value R1013: an insured-person identifier must be 4 parts joined by the half-width colon `:`"
        ]
    );
}

#[test]
fn a_transaction_or_unknown_type_is_not_a_submission() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["type"] = json!("transaction");
    let issues = rejected(&bundle);
    assert!(
        issues[0].starts_with("Bundle.type a submission is a `collection` Bundle"),
        "{issues:#?}"
    );
    assert_eq!(
        rejected(&json!({"resourceType": "Patient"})),
        ["Bundle a submission is a Bundle resource"]
    );
}

#[test]
fn a_document_starts_with_a_composition_of_the_right_type() {
    let mut bundle = fixture(REFERRAL);
    bundle["entry"][0]["resource"]["type"]["coding"][0]["code"] = json!("18842-5");
    let issues = rejected(&bundle);
    assert!(
        issues.contains(&"Bundle.entry[0].resource.type.coding the Composition type (system doc-typecodes) of this document is 57133-1".to_owned()),
        "{issues:#?}"
    );

    let mut bundle = fixture(REFERRAL);
    bundle["entry"].as_array_mut().unwrap().swap(0, 1);
    let issues = rejected(&bundle);
    assert!(
        issues.contains(
            &"Bundle.entry[0].resource the first entry of a document is its Composition (bdl-11)"
                .to_owned()
        ),
        "{issues:#?}"
    );
}

#[test]
fn a_document_composition_is_about_its_patient_entry() {
    let mut bundle = fixture(REFERRAL);
    bundle["entry"][0]["resource"]["subject"]["reference"] =
        json!("urn:uuid:00000000-0000-4000-8000-000000000009");
    assert_eq!(
        rejected(&bundle),
        [
            "Bundle.entry[0].resource.subject.reference the Composition's subject refers to the document's Patient entry by its fullUrl"
        ]
    );
}

#[test]
fn a_document_holds_exactly_one_patient() {
    let mut bundle = fixture(REFERRAL);
    let patient = bundle["entry"][1].clone();
    let mut second = patient.clone();
    second["fullUrl"] = json!("urn:uuid:00000000-0000-4000-8000-000000000002");
    bundle["entry"].as_array_mut().unwrap().push(second);
    assert!(
        rejected(&bundle)
            .contains(&"Bundle.entry a document holds exactly one Patient entry".to_owned())
    );
}

#[test]
fn a_document_bundle_follows_its_profile_cardinalities() {
    let mut bundle = fixture("clins/Bundle-Bundle-CLINS-PCS-Example-01.json");
    bundle.as_object_mut().unwrap().remove("timestamp");
    let issues = rejected(&bundle);
    assert!(
        issues.contains(&"Bundle.timestamp a document needs a timestamp (bdl-10)".to_owned()),
        "{issues:#?}"
    );
    assert!(issues.contains(&"Bundle.timestamp JP_Bundle_ePCS requires at least 1 of this element (profile cardinality)".to_owned()), "{issues:#?}");
}

#[test]
fn the_size_limit_is_ten_megabytes() {
    assert_eq!(MAX_SUBMISSION_BYTES, 10_485_760);
}

#[test]
fn an_allergy_collection_built_from_published_allergies_is_accepted() {
    let referral = fixture(REFERRAL);
    let mut bundle = fixture(OBSERVATIONS);
    bundle["meta"]["tag"][0]["code"] = json!("AllergyIntolerance");
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.truncate(1);
    for index in 13..=15 {
        let allergy = referral["entry"][index].clone();
        assert_eq!(allergy["resource"]["resourceType"], "AllergyIntolerance");
        entries.push(allergy);
    }
    let submission = validate_submission(&bundle).unwrap_or_else(|issues| panic!("{issues:#?}"));
    assert_eq!(
        submission.kind,
        SubmissionKind::Collection {
            item: InformationItem::AllergyIntolerance
        }
    );
}

#[test]
fn a_public_assistance_recipient_is_keyed_by_the_public_payer_id() {
    let mut bundle = fixture(OBSERVATIONS);
    bundle["entry"][0]["resource"]["identifier"][1] =
        json!({"system": PUBLIC_PAYER_SYSTEM, "value": "12131234::ＡＢ12345:"});
    let issues = rejected(&bundle);
    assert_eq!(
        issues,
        [
            "Bundle.entry[0].resource.identifier[1].value R1013: the recipient number (third part) must be either all half-width or all full-width letters and digits"
        ]
    );
    bundle["entry"][0]["resource"]["identifier"][1]["value"] = json!("12131234::１２３４５６７:");
    let submission = validate_submission(&bundle).unwrap();
    assert_eq!(submission.patient.insured, None);
    assert_eq!(
        submission.patient.public_payer.unwrap().to_string(),
        "12131234::1234567:"
    );
}
