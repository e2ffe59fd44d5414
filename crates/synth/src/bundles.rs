//! Turns a person's [`Plan`] into the JP-CLINS submissions a real deployment would receive, shaped
//! like the published examples (`../shared/fixtures/jp/`): collection Bundles `JP_Bundle_CLINS`
//! (Patient first with the insured-person identifier, then resources of one type declared in
//! `meta.tag`, Encounter/Practitioner/Specimen contained) for diagnoses, allergies and lab results,
//! and document Bundles (Composition first) for referral letters `JP_Bundle_eReferral` (which carry
//! the prescriptions) and checkup reports `JP_Bundle_eCheckupGeneral`.
//!
//! Every system and profile URL below is copied from the examples or the computable profiles.

use serde_json::{Value, json};

use crate::codes;
use crate::date::Date;
use crate::plan::{Checkup, Diagnosis, InfectionPanel, LabVisit, Plan, Prescription, Referral};
use crate::rng::Rng;
use crate::tables::{ConditionKind, Department, Facility, Sex, Specimen, Tables, UsageSystem};

/// Profile and system URLs, as the JP-CLINS packages spell them.
pub mod url {
    pub const BUNDLE_CLINS: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_CLINS|1";
    pub const BUNDLE_REFERRAL: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eReferral|1";
    pub const BUNDLE_CHECKUP: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eCheckupGeneral";
    pub const PATIENT: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Patient_eCS";
    pub const CONDITION: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Condition_eCS|1";
    pub const ALLERGY: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_AllergyIntolerance_eCS|1";
    pub const LAB_RESULT: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Observation_LabResult_eCS|1";
    pub const MEDICATION_REQUEST: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_MedicationRequest_eCS|1";
    pub const COMPOSITION_REFERRAL: &str =
        "http://jpfhir.jp/fhir/eReferral/StructureDefinition/JP_Composition_eReferral|1";
    pub const ENCOUNTER_ECS: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Encounter_eCS";
    pub const PRACTITIONER_ECS: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Practitioner_eCS";
    pub const ORGANIZATION_ECS: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Organization_eCS";
    pub const ENCOUNTER_CORE: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Encounter";
    pub const PRACTITIONER_CORE: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Practitioner";
    pub const SPECIMEN_CORE: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Specimen";
    pub const COMPOSITION_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Composition_eCheckupGeneral";
    pub const PRACTITIONER_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Practitioner_eCheckupGeneral";
    pub const ORGANIZATION_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Organization_eCheckupGeneral";
    pub const ENCOUNTER_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Encounter_eCheckupGeneral";
    pub const COVERAGE_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_CoverageInsurance_eCheckupGeneral";
    pub const INSURER_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_OrganizationInsurer_eCheckupGeneral";
    pub const OBSERVATION_CHECKUP: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Observation_eCheckupGeneral";

    pub const BUNDLE_IDENTIFIER: &str = "http://jpfhir.jp/fhir/clins/bundle-identifier";
    pub const BUNDLE_RESOURCE_TYPE: &str =
        "http://jpfhir.jp/fhir/clins/CodeSystem/BundleResourceType_CS";
    pub const MEMBER_ID: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
    /// Followed by the ten-digit institution number.
    pub const PATIENT_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.1";
    /// Followed by the ten-digit institution number.
    pub const PRACTITIONER_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.41.1";
    pub const RESOURCE_INSTANCE: &str =
        "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier";
    pub const INSTITUTION_EXTENSION: &str =
        "http://jpfhir.jp/fhir/clins/Extension/StructureDefinition/JP_eCS_InstitutionNumber";
    pub const INSTITUTION_NUMBER: &str =
        "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
    pub const DEPARTMENT_EXTENSION: &str =
        "http://jpfhir.jp/fhir/eCS/Extension/StructureDefinition/JP_eCS_Department";
    pub const DEPARTMENT: &str = "http://jami.jp/SS-MIX2/CodeSystem/ClinicalDepartment";
    pub const INDICATION: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication";
    pub const REPRESENTATION: &str =
        "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
    pub const MEDIS_DISEASE: &str = "http://medis.or.jp/CodeSystem/master-disease-keyNumber";
    pub const ICD10: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
    pub const OBSERVATION_CATEGORY: &str =
        "http://jpfhir.jp/fhir/core/CodeSystem/JP_SimpleObservationCategory_CS";
    pub const LOCAL_LAB_CODE: &str =
        "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_ObsLabResult_LocalCode_CS";
    pub const JLAC10_MASTER: &str = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits";
    pub const YJ: &str = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
    pub const UCUM: &str = "http://unitsofmeasure.org";
    pub const DOCUMENT_SECTION: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/document-section";
}

/// The kind of a submission; each kind goes to its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubmissionKind {
    /// `JP_Bundle_CLINS` of Conditions (傷病名).
    Condition,
    /// `JP_Bundle_CLINS` of AllergyIntolerances (アレルギー・薬剤禁忌).
    AllergyIntolerance,
    /// `JP_Bundle_CLINS` of lab-result Observations (検査, 感染症).
    Observation,
    /// `JP_Bundle_eReferral` document (診療情報提供書), with the prescriptions.
    Referral,
    /// `JP_Bundle_eCheckupGeneral` document (健康診断結果報告書).
    Checkup,
}

impl SubmissionKind {
    pub const ALL: [SubmissionKind; 5] = [
        SubmissionKind::Condition,
        SubmissionKind::AllergyIntolerance,
        SubmissionKind::Observation,
        SubmissionKind::Referral,
        SubmissionKind::Checkup,
    ];

    /// A stable name (manifest keys, ground truth).
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::Condition => "clins-condition",
            SubmissionKind::AllergyIntolerance => "clins-allergyintolerance",
            SubmissionKind::Observation => "clins-observation",
            SubmissionKind::Referral => "ereferral",
            SubmissionKind::Checkup => "echeckup",
        }
    }

    /// The NDJSON file the kind is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            SubmissionKind::Condition => "clins-condition.ndjson",
            SubmissionKind::AllergyIntolerance => "clins-allergyintolerance.ndjson",
            SubmissionKind::Observation => "clins-observation.ndjson",
            SubmissionKind::Referral => "ereferral.ndjson",
            SubmissionKind::Checkup => "echeckup.ndjson",
        }
    }
}

/// One submission: a Bundle as a facility would send it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub kind: SubmissionKind,
    /// Ten-digit institution number of the submitting facility.
    pub facility: String,
    /// The Bundle identifier value (`facility10^YYYY^local-id`).
    pub identifier: String,
    pub bundle: Value,
}

/// Builds the submissions of one plan. `ids` makes the `urn:uuid` fullUrls.
pub fn submissions(tables: &Tables, plan: &Plan, ids: Rng) -> Vec<Submission> {
    let mut builder = Builder { tables, plan, ids };
    let mut out = Vec::new();
    for slot in 0..plan.facilities.len() {
        let diagnoses: Vec<&Diagnosis> = plan
            .diagnoses
            .iter()
            .filter(|diagnosis| diagnosis.slot == slot)
            .collect();
        if !diagnoses.is_empty() {
            out.push(builder.condition_bundle(slot, &diagnoses));
        }
    }
    for slot in 0..plan.facilities.len() {
        if plan.allergies.iter().any(|allergy| allergy.slot == slot) {
            out.push(builder.allergy_bundle(slot));
        }
    }
    for visit in &plan.lab_visits {
        out.push(builder.lab_bundle(visit));
    }
    for panel in &plan.infection_panels {
        out.push(builder.infection_bundle(panel));
    }
    if let Some(referral) = &plan.referral {
        out.push(builder.referral_bundle(referral));
    }
    for checkup in &plan.checkups {
        out.push(builder.checkup_bundle(checkup));
    }
    out
}

struct Builder<'a> {
    tables: &'a Tables,
    plan: &'a Plan,
    ids: Rng,
}

impl Builder<'_> {
    fn uuid(&mut self) -> String {
        let high = self.ids.next_u64();
        let low = self.ids.next_u64();
        format!(
            "urn:uuid:{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xFFFF,
            high & 0x0FFF,
            ((low >> 48) & 0x3FFF) | 0x8000,
            low & 0xFFFF_FFFF_FFFF
        )
    }

    fn facility(&self, slot: usize) -> &Facility {
        &self.tables.facilities[self.plan.facilities[slot].facility]
    }

    fn patient_id(&self, slot: usize) -> &str {
        &self.plan.facilities[slot].patient_id
    }

    /// The Patient as facility `slot` knows the person.
    fn patient(&self, slot: usize, profile: &str, updated: &str) -> Value {
        let tables = self.tables;
        let plan = self.plan;
        let family = &tables.family_names[plan.family];
        let given = &tables.given_names[plan.given];
        let prefecture = &tables.prefectures[plan.prefecture];
        let municipality = &tables.municipalities[plan.municipality];
        let mut patient = json!({
            "resourceType": "Patient",
            "meta": {"lastUpdated": updated, "profile": [profile]},
            "identifier": [
                {
                    "system": format!("{}{}", url::PATIENT_ID_PREFIX, self.facility(slot).number),
                    "value": self.patient_id(slot),
                },
                {"system": url::MEMBER_ID, "value": plan.insurance.member_id},
            ],
            "name": null,
            "gender": plan.sex.as_str(),
            "birthDate": plan.birth.to_string(),
            "address": [{
                "text": format!("{}{}{}", prefecture.name, municipality.name, plan.street),
                "line": [plan.street],
                "city": municipality.name,
                "state": prefecture.name,
                "postalCode": plan.postal_code,
                "country": "JP",
            }],
        });
        patient["name"] = names(family, given);
        patient
    }

    /// A collection Bundle of `resource_type` with the Patient first.
    fn clins_bundle(
        &mut self,
        slot: usize,
        resource_type: &str,
        local_id: String,
        date: Date,
        resources: Vec<Value>,
        patient_url: String,
    ) -> Submission {
        let timestamp = date.at(18, 0);
        let facility = self.facility(slot).number.clone();
        let identifier = codes::bundle_identifier(&facility, date.year(), &local_id);
        let mut entries = Vec::with_capacity(resources.len() + 1);
        entries.push(entry(
            patient_url,
            self.patient(slot, url::PATIENT, &timestamp),
        ));
        for resource in resources {
            entries.push(entry(self.uuid(), resource));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "meta": {
                "lastUpdated": timestamp,
                "profile": [url::BUNDLE_CLINS],
                "tag": [{"system": url::BUNDLE_RESOURCE_TYPE, "code": resource_type}],
            },
            "identifier": {"system": url::BUNDLE_IDENTIFIER, "value": identifier},
            "type": "collection",
            "timestamp": timestamp,
            "entry": null,
        });
        bundle["entry"] = Value::Array(entries);
        let kind = match resource_type {
            "Condition" => SubmissionKind::Condition,
            "AllergyIntolerance" => SubmissionKind::AllergyIntolerance,
            _ => SubmissionKind::Observation,
        };
        Submission {
            kind,
            facility,
            identifier,
            bundle,
        }
    }

    fn condition_bundle(&mut self, slot: usize, diagnoses: &[&Diagnosis]) -> Submission {
        let patient_url = self.uuid();
        let date = diagnoses
            .iter()
            .map(|diagnosis| {
                diagnosis
                    .abatement
                    .unwrap_or(diagnosis.recorded)
                    .max(diagnosis.recorded)
            })
            .max()
            .unwrap_or(self.plan.birth);
        let resources = diagnoses
            .iter()
            .map(|diagnosis| self.condition(slot, diagnosis, &patient_url, date))
            .collect();
        let local_id = format!("DX-{}", self.patient_id(slot));
        self.clins_bundle(slot, "Condition", local_id, date, resources, patient_url)
    }

    fn condition(
        &self,
        slot: usize,
        diagnosis: &Diagnosis,
        patient_url: &str,
        date: Date,
    ) -> Value {
        let condition = &self.tables.conditions[diagnosis.condition];
        let mut tags = Vec::new();
        if diagnosis.lts {
            tags.push(flag("LTS", "長期保存"));
        }
        if diagnosis.uninformed {
            tags.push(flag("UNINFORMED", "未告知"));
        }
        if diagnosis.undelivered {
            tags.push(flag("UNDELIVERED", "未提供"));
        }
        let mut meta = json!({"lastUpdated": date.at(18, 0), "profile": [url::CONDITION]});
        if !tags.is_empty() {
            meta["tag"] = Value::Array(tags);
        }
        let resolved = diagnosis.abatement.is_some();
        let category = if condition.kind == ConditionKind::Acute {
            "encounter-diagnosis"
        } else {
            "problem-list-item"
        };
        let mut resource = json!({
            "resourceType": "Condition",
            "meta": null,
            "extension": null,
            "contained": null,
            "identifier": [{"system": url::RESOURCE_INSTANCE, "value": diagnosis.identifier}],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": if resolved { "resolved" } else { "active" },
            }]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed",
            }]},
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": category,
            }]}],
            "code": {
                "coding": [
                    {"system": url::MEDIS_DISEASE, "code": condition.medis, "display": condition.medis_display},
                    {"system": url::ICD10, "code": condition.icd10, "display": condition.icd10_display},
                ],
                "text": condition.text,
            },
            "subject": {"reference": patient_url},
            "encounter": {"reference": "#enc"},
            "onsetDateTime": diagnosis.onset.to_string(),
            "recordedDate": diagnosis.recorded.to_string(),
        });
        resource["meta"] = meta;
        resource["extension"] = Value::Array(vec![
            institution_extension(&self.facility(slot).number),
            department_extension(&self.tables.departments[condition.department]),
        ]);
        resource["contained"] = Value::Array(vec![contained_encounter(
            "enc",
            &format!("{}-{}", self.patient_id(slot), diagnosis.recorded.compact()),
        )]);
        if let Some(abatement) = diagnosis.abatement {
            resource["abatementDateTime"] = Value::String(abatement.to_string());
        }
        resource
    }

    fn allergy_bundle(&mut self, slot: usize) -> Submission {
        let patient_url = self.uuid();
        let allergies: Vec<_> = self
            .plan
            .allergies
            .iter()
            .filter(|allergy| allergy.slot == slot)
            .collect();
        let date = allergies
            .iter()
            .map(|allergy| allergy.recorded)
            .max()
            .unwrap_or(self.plan.birth);
        let resources = allergies
            .iter()
            .map(|allergy| {
                let allergen = &self.tables.allergens[allergy.allergen];
                let mut meta = json!({"lastUpdated": date.at(18, 0), "profile": [url::ALLERGY]});
                if allergy.lts {
                    meta["tag"] = json!([flag("LTS", "長期保存")]);
                }
                let mut resource = json!({
                    "resourceType": "AllergyIntolerance",
                    "meta": meta,
                    "extension": [institution_extension(&self.facility(slot).number)],
                    "identifier": [{"system": url::RESOURCE_INSTANCE, "value": allergy.identifier}],
                    "clinicalStatus": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }]},
                    "verificationStatus": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                        "code": "confirmed",
                    }]},
                    "type": "allergy",
                    "category": [allergen.category],
                    "criticality": allergy.criticality,
                    "code": {
                        "coding": [{"system": allergen.system, "code": allergen.code, "display": allergen.display}],
                        "text": allergen.text,
                    },
                    "patient": {"reference": patient_url},
                    "onsetDateTime": allergy.onset.to_string(),
                    "recordedDate": allergy.recorded.to_string(),
                });
                if allergy.criticality == "high" {
                    resource["reaction"] = json!([{
                        "manifestation": [{"text": "全身の発疹"}],
                        "severity": "severe",
                    }]);
                }
                resource
            })
            .collect();
        let local_id = format!("AL-{}", self.patient_id(slot));
        self.clins_bundle(
            slot,
            "AllergyIntolerance",
            local_id,
            date,
            resources,
            patient_url,
        )
    }

    fn lab_bundle(&mut self, visit: &LabVisit) -> Submission {
        let patient_url = self.uuid();
        let slot = visit.slot;
        let facility = self.facility(slot).number.clone();
        let visit_id = format!("{}-{}", self.patient_id(slot), visit.date.compact());
        let resources = visit
            .results
            .iter()
            .enumerate()
            .map(|(position, &(index, value))| {
                let lab = &self.tables.labs[index];
                let (low, high) = match self.plan.sex {
                    Sex::Male => lab.male,
                    Sex::Female => lab.female,
                };
                let mut coding = vec![json!({"system": url::LOCAL_LAB_CODE, "code": lab.local, "display": lab.text})];
                // The core-labo CodeSystem where the test is one of its items, else the JLAC10 master
                // (as the JP-CLINS eGFR example does).
                let system = if lab.group.is_some() { self.tables.core_labo.url.as_str() } else { url::JLAC10_MASTER };
                coding.push(json!({"system": system, "code": lab.jlac10, "display": lab.display}));
                let quantity = |amount: f64| json!({"value": amount, "unit": lab.unit, "system": url::UCUM, "code": lab.ucum});
                let mut range = serde_json::Map::new();
                if let Some(low) = low {
                    range.insert("low".into(), quantity(low));
                }
                if let Some(high) = high {
                    range.insert("high".into(), quantity(high));
                }
                let flag = if low.is_some_and(|low| value < low) {
                    Some(("L", "Low"))
                } else if high.is_some_and(|high| value > high) {
                    Some(("H", "High"))
                } else {
                    None
                };
                let identifier = format!("{facility}-{visit_id}-LAB{}", position + 1);
                lab_observation(LabObservation {
                    identifier: &identifier,
                    facility: &facility,
                    department: &self.tables.departments[visit.department],
                    visit_id: &visit_id,
                    date: visit.date,
                    coding,
                    text: lab.text,
                    patient_url: &patient_url,
                    value: ("valueQuantity", quantity(value)),
                    interpretation: flag,
                    range: (!range.is_empty()).then_some(Value::Object(range)),
                    specimen: lab.specimen,
                })
            })
            .collect();
        let local_id = format!("LAB-{visit_id}");
        self.clins_bundle(
            slot,
            "Observation",
            local_id,
            visit.date.plus_days(1),
            resources,
            patient_url,
        )
    }

    fn infection_bundle(&mut self, panel: &InfectionPanel) -> Submission {
        let patient_url = self.uuid();
        let slot = panel.slot;
        let facility = self.facility(slot).number.clone();
        let visit_id = format!("{}-{}", self.patient_id(slot), panel.date.compact());
        let resources = panel
            .results
            .iter()
            .enumerate()
            .map(|(position, &(index, positive))| {
                let lab = &self.tables.infection_labs[index];
                let coding = vec![
                    json!({"system": url::LOCAL_LAB_CODE, "code": lab.local, "display": lab.text}),
                    json!({"system": self.tables.infection_labo.url, "code": lab.jlac10, "display": lab.display}),
                ];
                let identifier = format!("{facility}-{visit_id}-INF{}", position + 1);
                lab_observation(LabObservation {
                    identifier: &identifier,
                    facility: &facility,
                    department: &self.tables.departments[panel.department],
                    visit_id: &visit_id,
                    date: panel.date,
                    coding,
                    text: lab.text,
                    patient_url: &patient_url,
                    value: ("valueString", json!(if positive { "陽性" } else { "陰性" })),
                    interpretation: Some(if positive { ("POS", "Positive") } else { ("NEG", "Negative") }),
                    range: None,
                    specimen: Specimen::Serum,
                })
            })
            .collect();
        let local_id = format!("INF-{visit_id}");
        self.clins_bundle(
            slot,
            "Observation",
            local_id,
            panel.date.plus_days(2),
            resources,
            patient_url,
        )
    }

    fn organization(&self, slot: usize) -> Value {
        let facility = self.facility(slot);
        organization_resource(self.tables, facility)
    }

    fn practitioner(&self, slot: usize, doctor: usize, profile: &str) -> Value {
        let facility = self.facility(slot);
        let (family, given) = facility.doctors[doctor % facility.doctors.len()];
        let family = &self.tables.family_names[family];
        let given = &self.tables.given_names[given];
        let mut practitioner = json!({
            "resourceType": "Practitioner",
            "meta": {"profile": [profile]},
            "identifier": [{
                "system": format!("{}{}", url::PRACTITIONER_ID_PREFIX, facility.number),
                "value": format!("D{:03}", doctor % facility.doctors.len() + 1),
            }],
            "name": null,
        });
        practitioner["name"] = names(family, given);
        practitioner
    }

    fn referral_bundle(&mut self, referral: &Referral) -> Submission {
        let tables = self.tables;
        let plan = self.plan;
        let from = referral.from;
        let timestamp = referral.date.at(17, 30);
        let facility = self.facility(from).number.clone();
        let local_id = format!("REF-{}-{}", self.patient_id(from), referral.date.compact());
        let identifier = codes::bundle_identifier(&facility, referral.date.year(), &local_id);
        let composition_url = self.uuid();
        let patient_url = self.uuid();
        let encounter_url = self.uuid();
        let author_url = self.uuid();
        let from_org_url = self.uuid();
        let to_org_url = self.uuid();
        let purpose_url = self.uuid();
        let active: Vec<&Diagnosis> = plan
            .diagnoses
            .iter()
            .filter(|diagnosis| diagnosis.abatement.is_none() && !diagnosis.undelivered)
            .collect();
        let condition_entries: Vec<(String, Value)> = active
            .iter()
            .map(|diagnosis| {
                let url = self.uuid();
                let resource =
                    self.condition(diagnosis.slot, diagnosis, &patient_url, referral.date);
                (url, resource)
            })
            .collect();
        let allergy_entries: Vec<(String, Value)> = plan
            .allergies
            .iter()
            .map(|allergy| {
                let allergen = &tables.allergens[allergy.allergen];
                let url = self.uuid();
                let mut meta = json!({"lastUpdated": timestamp, "profile": [url::ALLERGY]});
                if allergy.lts {
                    meta["tag"] = json!([flag("LTS", "長期保存")]);
                }
                let resource = json!({
                    "resourceType": "AllergyIntolerance",
                    "meta": meta,
                    "identifier": [{"system": url::RESOURCE_INSTANCE, "value": allergy.identifier}],
                    "clinicalStatus": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }]},
                    "type": "allergy",
                    "category": [allergen.category],
                    "criticality": allergy.criticality,
                    "code": {
                        "coding": [{"system": allergen.system, "code": allergen.code, "display": allergen.display}],
                        "text": allergen.text,
                    },
                    "patient": {"reference": patient_url},
                    "recordedDate": allergy.recorded.to_string(),
                });
                (url, resource)
            })
            .collect();
        let medication_entries: Vec<(String, Value)> = plan
            .prescriptions
            .iter()
            .enumerate()
            .map(|(position, prescription)| {
                let url = self.uuid();
                (
                    url,
                    self.medication_request(prescription, position, &patient_url),
                )
            })
            .collect();

        let reference = |url: &str, kind: &str, display: &str| json!({"reference": url, "type": kind, "display": display});
        let section = |code: &str, title: &str, display: &str, text: &str, entries: Vec<Value>| {
            let mut section = json!({
                "title": title,
                "code": {"coding": [{"system": url::DOCUMENT_SECTION, "code": code, "display": display}]},
                "text": {"status": "additional", "div": xhtml(text)},
            });
            if !entries.is_empty() {
                section["entry"] = Value::Array(entries);
            }
            section
        };
        let diagnosis_text = if active.is_empty() {
            "特記事項なし".to_owned()
        } else {
            active
                .iter()
                .map(|diagnosis| tables.conditions[diagnosis.condition].text)
                .collect::<Vec<_>>()
                .join("、")
        };
        let allergy_text = if plan.allergies.is_empty() {
            "なし".to_owned()
        } else {
            plan.allergies
                .iter()
                .map(|allergy| tables.allergens[allergy.allergen].text)
                .collect::<Vec<_>>()
                .join("、")
        };
        let medication_text = if plan.prescriptions.is_empty() {
            "なし".to_owned()
        } else {
            plan.prescriptions
                .iter()
                .map(|prescription| tables.drugs[prescription.drug].display)
                .collect::<Vec<_>>()
                .join("、")
        };
        let from_name = self.facility(from).name.clone();
        let to_name = self.facility(referral.to).name.clone();
        let structured = json!({
            "title": "構造情報",
            "code": {"coding": [{"system": url::DOCUMENT_SECTION, "code": "300", "display": "構造情報セクション"}]},
            "section": [
                section("950", "紹介目的", "紹介目的セクション", referral.purpose,
                    vec![reference(&purpose_url, "Encounter", "紹介目的")]),
                section("340", "傷病名・主訴", "傷病名・主訴セクション", &diagnosis_text,
                    condition_entries.iter().map(|(url, _)| reference(url, "Condition", "傷病名・主訴")).collect()),
                section("510", "アレルギー・不耐性反応", "アレルギー・不耐性反応セクション", &allergy_text,
                    allergy_entries.iter().map(|(url, _)| reference(url, "AllergyIntolerance", "アレルギー・不耐性反応")).collect()),
                section("430", "投薬指示", "投薬指示セクション", &medication_text,
                    medication_entries.iter().map(|(url, _)| reference(url, "MedicationRequest", "投薬指示")).collect()),
            ],
        });
        let composition = json!({
            "resourceType": "Composition",
            "meta": {"lastUpdated": timestamp, "profile": [url::COMPOSITION_REFERRAL]},
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber",
                "valueString": "1.0",
            }],
            "identifier": {"system": url::RESOURCE_INSTANCE, "value": format!("{facility}-{local_id}")},
            "status": "final",
            "type": {"coding": [{
                "system": "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes",
                "code": "57133-1",
                "display": "診療情報提供書",
            }]},
            "category": [{"coding": [{
                "system": "http://jpfhir.jp/fhir/Common/CodeSystem/doc-subtypecodes",
                "code": "OUTPATIENT",
                "display": "外来文書",
            }]}],
            "subject": reference(&patient_url, "Patient", "患者"),
            "encounter": reference(&encounter_url, "Encounter", "受診"),
            "date": timestamp,
            "author": [
                reference(&author_url, "Practitioner", "紹介元医師"),
                reference(&from_org_url, "Organization", "紹介元医療機関"),
            ],
            "title": "診療情報提供書",
            "custodian": reference(&from_org_url, "Organization", "紹介元医療機関"),
            "event": [{"code": [{"text": "診療情報提供書発行"}], "period": {"start": referral.date.to_string()}}],
            "section": [
                section("920", "紹介元情報", "紹介元情報セクション", &from_name, vec![
                    reference(&from_org_url, "Organization", "紹介元医療機関"),
                    reference(&author_url, "Practitioner", "紹介元医師"),
                ]),
                section("910", "紹介先情報", "紹介先情報セクション", &to_name, vec![
                    reference(&to_org_url, "Organization", "紹介先医療機関"),
                ]),
                structured,
            ],
        });
        let visit_encounter = json!({
            "resourceType": "Encounter",
            "meta": {"lastUpdated": timestamp, "profile": [url::ENCOUNTER_ECS]},
            "identifier": [{"system": url::RESOURCE_INSTANCE, "value": format!("{}-{}", self.patient_id(from), referral.date.compact())}],
            "status": "finished",
            "class": ambulatory(),
        });
        let purpose_encounter = json!({
            "resourceType": "Encounter",
            "meta": {"lastUpdated": timestamp, "profile": [url::ENCOUNTER_ECS]},
            "identifier": [{"system": url::RESOURCE_INSTANCE, "value": format!("{}-{}-P", self.patient_id(from), referral.date.compact())}],
            "status": "finished",
            "class": ambulatory(),
            "reasonCode": [{"text": referral.purpose}],
        });
        let mut entries = vec![
            entry(composition_url, composition),
            entry(patient_url, self.patient(from, url::PATIENT, &timestamp)),
            entry(encounter_url, visit_encounter),
            entry(
                author_url,
                self.practitioner(from, plan.number as usize, url::PRACTITIONER_ECS),
            ),
            entry(from_org_url, self.organization(from)),
            entry(to_org_url, self.organization(referral.to)),
            entry(purpose_url, purpose_encounter),
        ];
        for (url, resource) in condition_entries
            .into_iter()
            .chain(allergy_entries)
            .chain(medication_entries)
        {
            entries.push(entry(url, resource));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "meta": {"lastUpdated": timestamp, "profile": [url::BUNDLE_REFERRAL]},
            "identifier": {"system": url::BUNDLE_IDENTIFIER, "value": identifier},
            "type": "document",
            "timestamp": timestamp,
            "entry": null,
        });
        bundle["entry"] = Value::Array(entries);
        Submission {
            kind: SubmissionKind::Referral,
            facility,
            identifier,
            bundle,
        }
    }

    fn medication_request(
        &self,
        prescription: &Prescription,
        position: usize,
        patient_url: &str,
    ) -> Value {
        let drug = &self.tables.drugs[prescription.drug];
        let slot = prescription.slot;
        let facility = &self.facility(slot).number;
        let per_day = drug.dose_per_time * drug.times_per_day;
        let total = per_day * drug.days;
        // A JAMI usage code goes with the same code in the MHLW e-prescription usage system (as the
        // JP-CLINS examples write it); without a standard code, the examples' dummy usage code.
        let usage_coding = match drug.usage {
            UsageSystem::Jami => json!([
                {"system": "http://jami.jp/CodeSystem/MedicationUsage", "code": drug.usage_code, "display": drug.usage_display},
                {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUsage_ePrescription", "code": drug.usage_code, "display": drug.eprescription_display},
            ]),
            UsageSystem::Uncoded => json!([
                {"system": "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_MedicationUsage_Uncoded_CS", "code": drug.usage_code, "display": drug.usage_display},
            ]),
        };
        let tablet = |amount: u32| {
            json!({
                "value": amount,
                "unit": "錠",
                "system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUnitMERIT9Code",
                "code": "TAB",
            })
        };
        let days =
            |amount: u32| json!({"value": amount, "unit": "日", "system": url::UCUM, "code": "d"});
        let authored = prescription.authored;
        let doctor = self.practitioner(slot, self.plan.number as usize, url::PRACTITIONER_CORE);
        let mut doctor = doctor;
        doctor["id"] = json!("prescriber");
        json!({
            "resourceType": "MedicationRequest",
            "meta": {"lastUpdated": authored.at(12, 0), "profile": [url::MEDICATION_REQUEST]},
            "extension": [institution_extension(facility)],
            "contained": [doctor],
            "identifier": [
                {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/Medication-RPGroupNumber", "value": (position + 1).to_string()},
                {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/MedicationAdministrationIndex", "value": "1"},
                {"system": url::RESOURCE_INSTANCE, "value": prescription.identifier},
            ],
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": url::YJ, "code": drug.yj, "display": drug.display}],
                "text": drug.display,
            },
            "subject": {"reference": patient_url},
            "authoredOn": authored.at(11, 0),
            "requester": {"reference": "#prescriber", "type": "Practitioner"},
            "dosageInstruction": [{
                "extension": [{
                    "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_MedicationDosage_PeriodOfUse",
                    "valuePeriod": {"start": authored.to_string()},
                }],
                "text": format!("{} １回{}錠 {}日分", drug.usage_text, drug.dose_per_time, drug.days),
                "timing": {
                    "code": {
                        "coding": usage_coding,
                        "text": drug.usage_text,
                    },
                    "repeat": {
                        "boundsDuration": days(drug.days),
                        "frequency": drug.times_per_day,
                        "period": 1,
                        "periodUnit": "d",
                    },
                },
                "route": {"coding": [{"system": "http://jpfhir.jp/fhir/core/CodeSystem/route-codes", "code": "PO", "display": "口"}]},
                "method": {"coding": [{"system": "http://jami.jp/CodeSystem/MedicationMethodBasicUsage", "code": "1", "display": "内服"}]},
                "doseAndRate": [{
                    "type": {"coding": [{
                        "system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationIngredientStrengthStrengthType",
                        "code": "1",
                        "display": "製剤量",
                    }]},
                    "doseQuantity": tablet(drug.dose_per_time),
                    "rateRatio": {"numerator": tablet(per_day), "denominator": days(1)},
                }],
            }],
            "dispenseRequest": {"quantity": tablet(total), "expectedSupplyDuration": days(drug.days)},
        })
    }

    fn checkup_bundle(&mut self, checkup: &Checkup) -> Submission {
        let tables = self.tables;
        let plan = self.plan;
        let slot = checkup.slot;
        let facility = self.facility(slot).number.clone();
        let timestamp = checkup.date.plus_days(14).at(10, 0);
        let local_id = format!("CHK-{}-{}", self.patient_id(slot), checkup.date.compact());
        let identifier =
            codes::bundle_identifier(&facility, checkup.date.plus_days(14).year(), &local_id);
        let composition_url = self.uuid();
        let patient_url = self.uuid();
        let practitioner_url = self.uuid();
        let organization_url = self.uuid();
        let encounter_url = self.uuid();
        let coverage_url = self.uuid();
        let insurer_url = self.uuid();
        let effective = checkup.date.to_string();
        let mut observation_entries = Vec::with_capacity(checkup.values.len());
        for &(index, value) in &checkup.values {
            let item = &tables.checkup_items[index];
            let mut observation = json!({
                "resourceType": "Observation",
                "meta": {"lastUpdated": timestamp, "profile": [url::OBSERVATION_CHECKUP]},
                "status": "final",
                "category": [{"coding": [{"system": url::OBSERVATION_CATEGORY, "code": item.category}]}],
                "code": {"coding": [{"system": "urn:oid:1.2.392.200119.6.1005", "code": item.code, "display": item.display}]},
                "subject": {"reference": patient_url},
                "effectiveDateTime": effective,
            });
            if item.urine {
                // 健診定性検査結果コード (urn:oid:1.2.392.200119.6.2102): 1 is written "－" in the
                // eCheckup sample, 2 "±" and 3 "1+" as in the CodeSystem.
                let (code, display) = match value as u32 {
                    3 => ("3", "1+"),
                    2 => ("2", "±"),
                    _ => ("1", "－"),
                };
                observation["specimen"] = json!({"type": "Specimen", "display": "尿"});
                observation["valueCodeableConcept"] = json!({"coding": [{
                    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": value as u32}],
                    "system": "urn:oid:1.2.392.200119.6.2102",
                    "code": code,
                    "display": display,
                }]});
            } else {
                let quantity = |amount: f64| json!({"value": amount, "unit": item.unit, "system": url::UCUM, "code": item.ucum});
                observation["valueQuantity"] = quantity(value);
                if let (Some(low), Some(high)) = (item.low, item.high) {
                    let code = if value < low {
                        "L"
                    } else if value > high {
                        "H"
                    } else {
                        "N"
                    };
                    observation["interpretation"] = json!([{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": code,
                    }]}]);
                    observation["referenceRange"] =
                        json!([{"low": quantity(low), "high": quantity(high)}]);
                }
            }
            observation_entries.push((self.uuid(), observation));
        }
        let insurance = &plan.insurance;
        let composition = json!({
            "resourceType": "Composition",
            "meta": {"lastUpdated": timestamp, "profile": [url::COMPOSITION_CHECKUP]},
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber",
                "valueString": "1.0",
            }],
            "identifier": {"system": url::RESOURCE_INSTANCE, "value": format!("{facility}-{local_id}")},
            "status": "final",
            "type": {"coding": [{
                "system": "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes",
                "code": "53576-5",
                "display": "検診・健診報告書",
            }]},
            "category": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.2.1.6.1001", "code": "10", "display": "特定健診"}]}],
            "subject": {"reference": patient_url},
            "encounter": {"reference": encounter_url},
            "date": timestamp,
            "author": [{"reference": practitioner_url}, {"reference": organization_url}],
            "title": "健康診断結果のお知らせ",
            "custodian": {"reference": organization_url},
            "event": [{
                "code": [{"coding": [{"system": "urn:oid:1.2.392.200119.6.1002", "code": "010", "display": "特定健診"}]}],
                "period": {"start": effective, "end": effective},
                "detail": [{"reference": encounter_url}],
            }],
            "section": [{
                "title": "健診セクション",
                "code": {"coding": [{
                    "system": "http://jpfhir.jp/fhir/eCheckup/CodeSystem/section-code",
                    "code": "01011",
                    "display": "特定健診検査結果セクション",
                }]},
                "text": {"status": "generated", "div": xhtml("特定健診検査結果")},
                "entry": observation_entries.iter().map(|(url, _)| json!({"reference": url})).collect::<Vec<_>>(),
            }],
        });
        let mut organization = self.organization(slot);
        organization["meta"] = json!({"profile": [url::ORGANIZATION_CHECKUP]});
        let encounter = json!({
            "resourceType": "Encounter",
            "meta": {"lastUpdated": timestamp, "profile": [url::ENCOUNTER_CHECKUP]},
            "status": "finished",
            "class": {"system": "http://jpfhir.jp/fhir/eCheckup/CodeSystem/encounter-category", "code": "checkup", "display": "健診"},
            "period": {"start": effective, "end": effective},
            "serviceProvider": {"reference": organization_url},
        });
        let quoted = |parts: &[&str]| {
            parts
                .iter()
                .map(|part| format!("\"{part}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut coverage = json!({
            "resourceType": "Coverage",
            "meta": {"lastUpdated": timestamp, "profile": [url::COVERAGE_CHECKUP]},
            "extension": [
                {"url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSymbol", "valueString": insurance.symbol},
                {"url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonNumber", "valueString": insurance.number},
                {"url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSubNumber", "valueString": insurance.branch},
            ],
            "identifier": [{"value": quoted(&[&insurance.symbol, &insurance.number, &insurance.branch])}],
            "status": "active",
            "type": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.61", "code": "1"}]},
            "subscriberId": quoted(&[&insurance.symbol, &insurance.number]),
            "beneficiary": {"reference": patient_url},
            "dependent": insurance.branch,
            "payor": [{"reference": insurer_url}],
        });
        if insurance.symbol.is_empty() {
            // 後期高齢者医療 cards carry no symbol; an empty string is not valid FHIR.
            coverage["extension"]
                .as_array_mut()
                .map(|extensions| extensions.remove(0));
        }
        if insurance.branch == "00" {
            coverage["relationship"] = json!({"coding": [{"system": "urn:oid:1.2.392.100495.20.2.62", "code": "1", "display": "被保険者"}]});
        }
        let insurer = json!({
            "resourceType": "Organization",
            "meta": {"lastUpdated": timestamp, "profile": [url::INSURER_CHECKUP]},
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.61", "value": insurance.insurer}],
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "ins"}]}],
            "name": insurer_name(insurance.law),
        });
        let mut entries = vec![
            entry(composition_url, composition),
            // JP_Patient_eCS as in every other submission (the checkup Bundle profile of the
            // eCheckup package names a clins-URL variant; the project's validator wants this one).
            entry(patient_url, self.patient(slot, url::PATIENT, &timestamp)),
            entry(
                practitioner_url,
                self.practitioner(slot, plan.number as usize + 1, url::PRACTITIONER_CHECKUP),
            ),
            entry(organization_url, organization),
            entry(encounter_url, encounter),
            entry(coverage_url, coverage),
            entry(insurer_url, insurer),
        ];
        for (url, observation) in observation_entries {
            entries.push(entry(url, observation));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "meta": {"lastUpdated": timestamp, "profile": [url::BUNDLE_CHECKUP]},
            "identifier": {"system": url::BUNDLE_IDENTIFIER, "value": identifier},
            "type": "document",
            "timestamp": timestamp,
            "entry": null,
        });
        bundle["entry"] = Value::Array(entries);
        Submission {
            kind: SubmissionKind::Checkup,
            facility,
            identifier,
            bundle,
        }
    }
}

/// The parts of a lab-result Observation that differ between tests.
struct LabObservation<'a> {
    identifier: &'a str,
    facility: &'a str,
    department: &'a Department,
    visit_id: &'a str,
    date: Date,
    coding: Vec<Value>,
    text: &'a str,
    patient_url: &'a str,
    /// (element name, value).
    value: (&'a str, Value),
    /// (code, display) of v3-ObservationInterpretation.
    interpretation: Option<(&'a str, &'a str)>,
    range: Option<Value>,
    specimen: Specimen,
}

fn lab_observation(parts: LabObservation<'_>) -> Value {
    let mut contained = vec![contained_encounter("enc", parts.visit_id)];
    let specimen = match parts.specimen {
        Specimen::Serum => {
            contained.push(json!({
                "resourceType": "Specimen",
                "id": "sp",
                "meta": {"profile": [url::SPECIMEN_CORE]},
                "type": {
                    "coding": [
                        {"system": "http://jpfhir.jp/fhir/core/CodeSystem/JP_ObservationSampleMaterialCode_CS", "code": "023", "display": "血清"},
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0487", "code": "SER", "display": "Serum"},
                    ],
                    "text": "血清",
                },
            }));
            json!({"reference": "#sp", "type": "Specimen"})
        }
        Specimen::Blood => json!({"type": "Specimen", "display": "全血"}),
        Specimen::Urine => json!({"type": "Specimen", "display": "尿"}),
    };
    let mut observation = json!({
        "resourceType": "Observation",
        "meta": {"lastUpdated": parts.date.plus_days(1).at(9, 0), "profile": [url::LAB_RESULT]},
        "extension": null,
        "contained": null,
        "identifier": [{"system": url::RESOURCE_INSTANCE, "value": parts.identifier}],
        "status": "final",
        "category": [{"coding": [{"system": url::OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": null, "text": parts.text},
        "subject": {"reference": parts.patient_url},
        "encounter": {"reference": "#enc"},
        "effectiveDateTime": parts.date.at(10, 30),
        "issued": parts.date.at(15, 0),
        "specimen": null,
    });
    observation["extension"] = Value::Array(vec![
        institution_extension(parts.facility),
        department_extension(parts.department),
    ]);
    observation["contained"] = Value::Array(contained);
    observation["code"]["coding"] = Value::Array(parts.coding);
    observation["specimen"] = specimen;
    let (name, value) = parts.value;
    observation[name] = value;
    if let Some((code, display)) = parts.interpretation {
        observation["interpretation"] = json!([{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": code,
            "display": display,
        }]}]);
    }
    if let Some(range) = parts.range {
        observation["referenceRange"] = json!([range]);
    }
    observation
}

fn organization_resource(tables: &Tables, facility: &Facility) -> Value {
    let prefecture = &tables.prefectures[facility.prefecture];
    json!({
        "resourceType": "Organization",
        "meta": {"profile": [url::ORGANIZATION_ECS]},
        "extension": [
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_PrefectureNo",
                "valueCoding": {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits", "code": prefecture.code},
            },
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_InsuranceOrganizationCategory",
                "valueCoding": {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationFeeScoreType", "code": &facility.number[2..3]},
            },
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_InsuranceOrganizationNo",
                "valueIdentifier": {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/MedicalOrganizationID", "value": &facility.number[3..]},
            },
        ],
        "identifier": [{"system": url::INSTITUTION_NUMBER, "value": facility.number}],
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
        "name": facility.name,
        "address": [{"text": facility.address, "postalCode": facility.postal_code, "country": "JP"}],
    })
}

fn human_name(family: &str, given: &str, representation: &str) -> Value {
    json!({
        "extension": [{"url": url::REPRESENTATION, "valueCode": representation}],
        "use": "official",
        "text": format!("{family} {given}"),
        "family": family,
        "given": [given],
    })
}

fn institution_extension(number: &str) -> Value {
    json!({
        "url": url::INSTITUTION_EXTENSION,
        "valueIdentifier": {"system": url::INSTITUTION_NUMBER, "value": number},
    })
}

fn department_extension(department: &Department) -> Value {
    json!({
        "url": url::DEPARTMENT_EXTENSION,
        "valueCodeableConcept": {
            "coding": [{"system": url::DEPARTMENT, "code": department.code, "display": department.display}],
            "text": department.display,
        },
    })
}

fn flag(code: &str, display: &str) -> Value {
    json!({"system": url::INDICATION, "code": code, "display": display})
}

fn ambulatory() -> Value {
    json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "外来"})
}

fn contained_encounter(id: &str, visit: &str) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": id,
        "meta": {"profile": [url::ENCOUNTER_CORE]},
        "identifier": [{"system": url::RESOURCE_INSTANCE, "value": visit}],
        "status": "finished",
        "class": ambulatory(),
    })
}

fn xhtml(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{escaped}</div>")
}

fn insurer_name(law: &str) -> &'static str {
    match law {
        "01" => "全国健康保険協会",
        "06" => "テスト健康保険組合",
        "31" => "テスト共済組合",
        "39" => "テスト後期高齢者医療広域連合",
        _ => "テスト市国民健康保険",
    }
}

/// A Bundle entry (moves the resource in rather than copying it, as `json!` would).
fn entry(full_url: String, resource: Value) -> Value {
    let mut map = serde_json::Map::with_capacity(2);
    map.insert("fullUrl".to_owned(), Value::String(full_url));
    map.insert("resource".to_owned(), resource);
    Value::Object(map)
}

/// The kanji (IDE) and kana (SYL) names of a person.
fn names(family: &crate::tables::FamilyName, given: &crate::tables::GivenName) -> Value {
    Value::Array(vec![
        human_name(family.kanji, given.kanji, "IDE"),
        human_name(family.kana, given.kana, "SYL"),
    ])
}
