//! Shape checks of JP-CLINS Bundles, written from the published examples and profiles, shared by
//! the tests. Each returns the list of problems found (empty when the Bundle is well formed), naming
//! the element.

use std::collections::HashSet;

use serde_json::Value;
use synth::bundles::url;
use synth::codes;
use synth::tables::Tables;

/// Problems of any generated Bundle.
pub fn problems(bundle: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let tables = Tables::get();
    if bundle["resourceType"] != "Bundle" {
        problems.push("resourceType".to_owned());
        return problems;
    }
    let identifier = &bundle["identifier"];
    if identifier["system"] != url::BUNDLE_IDENTIFIER {
        problems.push("Bundle.identifier.system".to_owned());
    }
    let identifier_value = identifier["value"].as_str().unwrap_or_default();
    if !codes::is_valid_bundle_identifier(identifier_value) {
        problems.push("Bundle.identifier.value".to_owned());
    }
    let submitter = identifier_value.split('^').next().unwrap_or_default();
    if bundle["meta"]["profile"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        problems.push("Bundle.meta.profile".to_owned());
    }
    if bundle["meta"]["lastUpdated"].as_str().is_none() || bundle["timestamp"].as_str().is_none() {
        problems.push("Bundle.meta.lastUpdated/timestamp".to_owned());
    }
    let Some(entries) = bundle["entry"].as_array() else {
        problems.push("Bundle.entry".to_owned());
        return problems;
    };
    let mut full_urls = HashSet::new();
    for entry in entries {
        let full_url = entry["fullUrl"].as_str().unwrap_or_default();
        if !full_url.starts_with("urn:uuid:") || full_url.len() != 45 || !full_urls.insert(full_url)
        {
            problems.push("Bundle.entry.fullUrl".to_owned());
        }
    }
    // Every reference points at an entry of the Bundle or a contained resource of its resource.
    for entry in entries {
        let resource = &entry["resource"];
        let contained: HashSet<&str> = resource["contained"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["id"].as_str())
            .collect();
        let mut references = Vec::new();
        collect_references(resource, &mut references);
        for reference in references {
            let resolves = match reference.strip_prefix('#') {
                Some(id) => contained.contains(id),
                None => full_urls.contains(reference),
            };
            if !resolves {
                problems.push(format!(
                    "{}: reference does not resolve",
                    resource["resourceType"].as_str().unwrap_or_default()
                ));
            }
        }
        problems.extend(resource_problems(tables, resource, submitter));
    }
    match bundle["type"].as_str() {
        Some("collection") => problems.extend(collection_problems(bundle, entries)),
        Some("document") => problems.extend(document_problems(bundle, entries)),
        _ => problems.push("Bundle.type".to_owned()),
    }
    problems
}

fn collect_references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "reference" {
                    if let Some(text) = child.as_str() {
                        out.push(text);
                    }
                } else if key != "contained" {
                    collect_references(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, out)),
        _ => {}
    }
}

fn collection_problems(bundle: &Value, entries: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    if bundle["meta"]["profile"][0] != url::BUNDLE_CLINS {
        problems.push("Bundle.meta.profile (JP_Bundle_CLINS)".to_owned());
    }
    let tags = bundle["meta"]["tag"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let declared: Vec<&str> = tags
        .iter()
        .filter(|tag| tag["system"] == url::BUNDLE_RESOURCE_TYPE)
        .filter_map(|tag| tag["code"].as_str())
        .collect();
    if declared.len() != 1 {
        problems.push("Bundle.meta.tag (BundleResourceType)".to_owned());
    }
    if entries
        .first()
        .map(|entry| &entry["resource"]["resourceType"])
        != Some(&Value::from("Patient"))
    {
        problems.push("Bundle.entry[0] is not the Patient".to_owned());
    }
    if entries.len() < 2 {
        problems.push("Bundle.entry: nothing after the Patient".to_owned());
    }
    for entry in entries.iter().skip(1) {
        if Some(
            entry["resource"]["resourceType"]
                .as_str()
                .unwrap_or_default(),
        ) != declared.first().copied()
        {
            problems.push("Bundle.entry: a resource of another type than declared".to_owned());
        }
    }
    problems
}

fn document_problems(bundle: &Value, entries: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let composition = &entries[0]["resource"];
    if composition["resourceType"] != "Composition" {
        problems.push("Bundle.entry[0] is not the Composition".to_owned());
    }
    let doc_type = composition["type"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default();
    let profile = bundle["meta"]["profile"][0].as_str().unwrap_or_default();
    match doc_type {
        "57133-1" if profile == url::BUNDLE_REFERRAL => {
            let sections = composition["section"].to_string();
            for code in [
                "\"920\"", "\"910\"", "\"950\"", "\"340\"", "\"510\"", "\"430\"",
            ] {
                if !sections.contains(code) {
                    problems.push(format!("Composition.section {code} missing"));
                }
            }
            let organizations = entries
                .iter()
                .filter(|entry| entry["resource"]["resourceType"] == "Organization")
                .count();
            if organizations < 2 {
                problems.push("referral: fewer than two Organizations".to_owned());
            }
        }
        "53576-5" if profile == url::BUNDLE_CHECKUP => {}
        _ => problems.push("Composition.type / Bundle.meta.profile".to_owned()),
    }
    let patients: Vec<&Value> = entries
        .iter()
        .map(|entry| &entry["resource"])
        .filter(|resource| resource["resourceType"] == "Patient")
        .collect();
    if patients.len() != 1 {
        problems.push("document: not exactly one Patient".to_owned());
    }
    problems
}

fn resource_problems(tables: &Tables, resource: &Value, submitter: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    if resource["meta"]["profile"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        problems.push(format!("{resource_type}.meta.profile"));
    }
    // Flags: LTS anywhere the profiles allow it, UNINFORMED and UNDELIVERED on Condition only.
    for tag in resource["meta"]["tag"].as_array().into_iter().flatten() {
        if tag["system"] != url::INDICATION {
            problems.push(format!("{resource_type}.meta.tag.system"));
        }
        match tag["code"].as_str() {
            Some("LTS") => {}
            Some("UNINFORMED" | "UNDELIVERED") if resource_type == "Condition" => {}
            _ => problems.push(format!("{resource_type}.meta.tag.code")),
        }
    }
    if let Some(extensions) = resource["extension"].as_array() {
        for extension in extensions {
            if extension["url"] == url::INSTITUTION_EXTENSION {
                let number = extension["valueIdentifier"]["value"]
                    .as_str()
                    .unwrap_or_default();
                if extension["valueIdentifier"]["system"] != url::INSTITUTION_NUMBER
                    || !codes::is_valid_institution_number(number)
                {
                    problems.push(format!("{resource_type}.extension (institution number)"));
                }
            }
        }
    }
    let codings = resource["code"]["coding"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |system: &str| codings.iter().any(|coding| coding["system"] == system);
    match resource_type {
        "Patient" => {
            let identifiers = resource["identifier"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let member = identifiers
                .iter()
                .find(|identifier| identifier["system"] == url::MEMBER_ID);
            if !member.is_some_and(|member| {
                codes::is_valid_member_id(member["value"].as_str().unwrap_or_default())
            }) {
                problems.push("Patient.identifier (JP_Insurance_memberID)".to_owned());
            }
            let facility_system = format!("{}{submitter}", url::PATIENT_ID_PREFIX);
            if !identifiers
                .iter()
                .any(|identifier| identifier["system"] == facility_system.as_str())
            {
                problems.push("Patient.identifier (facility patient id)".to_owned());
            }
            let names = resource["name"].as_array().cloned().unwrap_or_default();
            let representations: Vec<&str> = names
                .iter()
                .filter_map(|name| name["extension"][0]["valueCode"].as_str())
                .collect();
            if representations != ["IDE", "SYL"]
                || names.iter().any(|name| {
                    name["family"].as_str().is_none() || name["given"][0].as_str().is_none()
                })
            {
                problems.push("Patient.name (kanji and kana)".to_owned());
            }
            if resource["birthDate"].as_str().is_none()
                || resource["gender"].as_str().is_none()
                || resource["address"][0]["text"].as_str().is_none()
            {
                problems.push("Patient birthDate/gender/address".to_owned());
            }
        }
        "Condition" => {
            let medis = codings
                .iter()
                .find(|coding| coding["system"] == url::MEDIS_DISEASE);
            if !medis.is_some_and(|coding| {
                coding["code"].as_str().is_some_and(|code| {
                    code.len() == 8 && code.bytes().all(|byte| byte.is_ascii_digit())
                }) && coding["display"].as_str().is_some()
            }) {
                problems.push("Condition.code.coding (MEDIS 病名管理番号)".to_owned());
            }
            if !has(url::ICD10) || resource["code"]["text"].as_str().is_none() {
                problems.push("Condition.code (ICD-10, text)".to_owned());
            }
            if resource["identifier"][0]["system"] != url::RESOURCE_INSTANCE
                || resource["verificationStatus"].is_null()
                || resource["category"]
                    .as_array()
                    .is_none_or(|category| category.len() != 1)
            {
                problems.push("Condition identifier/verificationStatus/category".to_owned());
            }
        }
        "AllergyIntolerance" => {
            if codings.is_empty()
                || resource["code"]["text"].as_str().is_none()
                || resource["identifier"][0]["system"] != url::RESOURCE_INSTANCE
            {
                problems.push("AllergyIntolerance.code / identifier".to_owned());
            }
            let medication = resource["category"][0] == "medication";
            let system = codings
                .first()
                .and_then(|coding| coding["system"].as_str())
                .unwrap_or_default();
            if medication != system.contains("JP_JfagyMedicationAllergen_CS") {
                problems.push("AllergyIntolerance.category vs code system".to_owned());
            }
        }
        "Observation" if resource["meta"]["profile"][0] == url::LAB_RESULT => {
            if !has(url::LOCAL_LAB_CODE) {
                problems.push("Observation.code.coding (local code)".to_owned());
            }
            let standard = codings.iter().find(|coding| {
                coding["system"] == tables.core_labo.url.as_str()
                    || coding["system"] == tables.infection_labo.url.as_str()
                    || coding["system"] == url::JLAC10_MASTER
            });
            match standard {
                None => problems.push("Observation.code.coding (JLAC10)".to_owned()),
                Some(coding) => {
                    let code = coding["code"].as_str().unwrap_or_default();
                    let in_table = if coding["system"] == tables.core_labo.url.as_str() {
                        tables.labs.iter().any(|lab| {
                            lab.group
                                .is_some_and(|group| tables.core_labo.contains(group, code))
                                && lab.display == coding["display"]
                        })
                    } else if coding["system"] == tables.infection_labo.url.as_str() {
                        tables.infection_labs.iter().any(|lab| {
                            tables.infection_labo.contains(lab.group, code)
                                && lab.display == coding["display"]
                        })
                    } else {
                        code.len() == 17
                    };
                    if !in_table {
                        problems.push(
                            "Observation.code.coding (JLAC10 code not in its CodeSystem group)"
                                .to_owned(),
                        );
                    }
                }
            }
            if resource["category"][0]["coding"][0]["code"] != "laboratory"
                || resource["effectiveDateTime"].as_str().is_none()
                || resource["identifier"][0]["system"] != url::RESOURCE_INSTANCE
            {
                problems.push("Observation category/effective/identifier".to_owned());
            }
            let quantity = &resource["valueQuantity"];
            let quantity_ok = quantity["value"].is_number()
                && quantity["unit"].is_string()
                && quantity["system"] == url::UCUM;
            if !(quantity_ok || resource["valueString"].is_string()) {
                problems.push("Observation.value".to_owned());
            }
        }
        "MedicationRequest" => {
            let yj = resource["medicationCodeableConcept"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|coding| coding["system"] == url::YJ);
            if !yj.is_some_and(|coding| {
                coding["code"].as_str().is_some_and(|code| code.len() == 12)
                    && coding["display"].is_string()
            }) {
                problems.push("MedicationRequest.medicationCodeableConcept (YJ)".to_owned());
            }
            let dosage = &resource["dosageInstruction"][0];
            if dosage["timing"]["code"]["coding"][0]["code"]
                .as_str()
                .is_none()
                || !dosage["doseAndRate"][0]["doseQuantity"]["value"].is_number()
            {
                problems.push("MedicationRequest.dosageInstruction".to_owned());
            }
            if resource["status"] != "completed"
                || resource["intent"] != "order"
                || resource["authoredOn"].as_str().is_none()
            {
                problems.push("MedicationRequest status/intent/authoredOn".to_owned());
            }
        }
        "Organization" => {
            let number = resource["identifier"][0]["value"]
                .as_str()
                .unwrap_or_default();
            let checkup_insurer =
                resource["identifier"][0]["system"] == "urn:oid:1.2.392.100495.20.3.61";
            let valid = if checkup_insurer {
                codes::is_valid_insurer_number(number)
            } else {
                codes::is_valid_institution_number(number)
            };
            if !valid {
                problems.push("Organization.identifier".to_owned());
            }
        }
        _ => {}
    }
    problems
}
