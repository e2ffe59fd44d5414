//! The ground truth of one person: what was generated and submitted, in the terms a server's
//! `$summary` or `$emergency-summary` should reproduce (active diagnoses, allergies and drug
//! contraindications, the latest result of each lab test, infection results, current medications),
//! with the flags that restrict who may see each item. It is made from the same plan as the
//! Bundles, and the crate's tests check that the two agree.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::bundles::{Submission, SubmissionKind, url};
use crate::date::Date;
use crate::plan::{CURRENT_MEDICATION_DAYS, Plan};
use crate::tables::{FacilityKind, Tables};

/// One person's ground truth.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    pub person: u64,
    /// The insured-person identifier as the facilities send it.
    pub member_id: String,
    /// The same with full-width characters read as half-width: the national key.
    pub member_id_normalized: String,
    pub insurer: String,
    pub family_name: String,
    pub given_name: String,
    pub family_name_kana: String,
    pub given_name_kana: String,
    pub gender: &'static str,
    pub birth_date: Date,
    pub prefecture_code: String,
    /// Six-digit local government code of the municipality of residence.
    pub municipality_code: String,
    pub postal_code: String,
    pub facilities: Vec<TruthFacility>,
    pub diagnoses: Vec<TruthDiagnosis>,
    pub allergies: Vec<TruthAllergy>,
    /// The latest result of each lab test, across facilities.
    pub latest_labs: Vec<TruthLab>,
    pub infections: Vec<TruthInfection>,
    /// Prescriptions authored within [`CURRENT_MEDICATION_DAYS`] of the as-of date. They arrive
    /// inside a referral letter (`document`), whose contents a server holds back until the patient
    /// consents to the letter's destination.
    pub current_medications: Vec<TruthMedication>,
    pub referrals: Vec<TruthDocument>,
    pub checkups: Vec<TruthDocument>,
    /// Submissions per kind ([`SubmissionKind::as_str`]).
    pub submissions: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone)]
pub struct TruthFacility {
    pub number: String,
    pub name: String,
    pub kind: &'static str,
    /// `urn:oid:1.2.392.100495.20.3.51.1` + the institution number.
    pub patient_id_system: String,
    pub patient_id: String,
}

#[derive(Debug, Clone)]
pub struct TruthDiagnosis {
    pub medis: &'static str,
    pub icd10: &'static str,
    pub display: &'static str,
    pub onset: Date,
    pub abatement: Option<Date>,
    /// `active` or `resolved`.
    pub clinical_status: &'static str,
    pub facility: String,
    /// resourceInstance-identifier value.
    pub identifier: String,
    pub lts: bool,
    pub uninformed: bool,
    pub undelivered: bool,
}

#[derive(Debug, Clone)]
pub struct TruthAllergy {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
    pub category: &'static str,
    pub criticality: &'static str,
    /// A medication allergy with criticality high (薬剤禁忌).
    pub contraindication: bool,
    pub facility: String,
    pub identifier: String,
    pub lts: bool,
}

#[derive(Debug, Clone)]
pub struct TruthLab {
    /// The lab key of `data/labs.tsv` (e.g. `HbA1c`, `eGFR`).
    pub key: &'static str,
    pub jlac10: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub date: Date,
    pub facility: String,
}

#[derive(Debug, Clone)]
pub struct TruthInfection {
    pub key: &'static str,
    pub jlac10: &'static str,
    pub positive: bool,
    pub date: Date,
    pub facility: String,
}

#[derive(Debug, Clone)]
pub struct TruthMedication {
    pub yj: &'static str,
    pub display: &'static str,
    pub authored_on: Date,
    pub days: u32,
    pub facility: String,
    pub identifier: String,
    /// The Bundle identifier of the referral letter that carries it.
    pub document: String,
}

#[derive(Debug, Clone)]
pub struct TruthDocument {
    /// The Bundle identifier value.
    pub identifier: String,
    pub facility: String,
    /// The referral's destination facility.
    pub destination: Option<String>,
    pub date: Date,
}

impl GroundTruth {
    /// Active diagnoses (clinical status `active`).
    pub fn active_diagnoses(&self) -> impl Iterator<Item = &TruthDiagnosis> {
        self.diagnoses
            .iter()
            .filter(|diagnosis| diagnosis.clinical_status == "active")
    }

    /// The ground truth as one JSON object (a line of `truth.jsonl`).
    pub fn to_json(&self) -> Value {
        json!({
            "person": self.person,
            "member_id": self.member_id,
            "member_id_normalized": self.member_id_normalized,
            "insurer": self.insurer,
            "name": {
                "family": self.family_name,
                "given": self.given_name,
                "family_kana": self.family_name_kana,
                "given_kana": self.given_name_kana,
            },
            "gender": self.gender,
            "birth_date": self.birth_date.to_string(),
            "prefecture_code": self.prefecture_code,
            "municipality_code": self.municipality_code,
            "postal_code": self.postal_code,
            "facilities": self.facilities.iter().map(|facility| json!({
                "number": facility.number,
                "name": facility.name,
                "kind": facility.kind,
                "patient_id_system": facility.patient_id_system,
                "patient_id": facility.patient_id,
            })).collect::<Vec<_>>(),
            "diagnoses": self.diagnoses.iter().map(|diagnosis| json!({
                "medis": diagnosis.medis,
                "icd10": diagnosis.icd10,
                "display": diagnosis.display,
                "onset": diagnosis.onset.to_string(),
                "abatement": diagnosis.abatement.map(|date| date.to_string()),
                "clinical_status": diagnosis.clinical_status,
                "facility": diagnosis.facility,
                "identifier": diagnosis.identifier,
                "flags": flags(diagnosis.lts, diagnosis.uninformed, diagnosis.undelivered),
            })).collect::<Vec<_>>(),
            "allergies": self.allergies.iter().map(|allergy| json!({
                "system": allergy.system,
                "code": allergy.code,
                "display": allergy.display,
                "category": allergy.category,
                "criticality": allergy.criticality,
                "contraindication": allergy.contraindication,
                "facility": allergy.facility,
                "identifier": allergy.identifier,
                "flags": flags(allergy.lts, false, false),
            })).collect::<Vec<_>>(),
            "latest_labs": self.latest_labs.iter().map(|lab| json!({
                "key": lab.key,
                "jlac10": lab.jlac10,
                "value": lab.value,
                "unit": lab.unit,
                "date": lab.date.to_string(),
                "facility": lab.facility,
            })).collect::<Vec<_>>(),
            "infections": self.infections.iter().map(|infection| json!({
                "key": infection.key,
                "jlac10": infection.jlac10,
                "positive": infection.positive,
                "date": infection.date.to_string(),
                "facility": infection.facility,
            })).collect::<Vec<_>>(),
            "current_medications": self.current_medications.iter().map(|medication| json!({
                "yj": medication.yj,
                "display": medication.display,
                "authored_on": medication.authored_on.to_string(),
                "days": medication.days,
                "facility": medication.facility,
                "identifier": medication.identifier,
                "document": medication.document,
            })).collect::<Vec<_>>(),
            "referrals": self.referrals.iter().map(document).collect::<Vec<_>>(),
            "checkups": self.checkups.iter().map(document).collect::<Vec<_>>(),
            "submissions": self.submissions,
        })
    }
}

fn flags(lts: bool, uninformed: bool, undelivered: bool) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if lts {
        flags.push("LTS");
    }
    if uninformed {
        flags.push("UNINFORMED");
    }
    if undelivered {
        flags.push("UNDELIVERED");
    }
    flags
}

fn document(document: &TruthDocument) -> Value {
    json!({
        "identifier": document.identifier,
        "facility": document.facility,
        "destination": document.destination,
        "date": document.date.to_string(),
    })
}

/// The ground truth of `plan`, whose submissions are `submissions`.
pub fn ground_truth(
    tables: &Tables,
    plan: &Plan,
    submissions: &[Submission],
    as_of: Date,
) -> GroundTruth {
    let facility_number = |slot: usize| {
        tables.facilities[plan.facilities[slot].facility]
            .number
            .clone()
    };
    let family = &tables.family_names[plan.family];
    let given = &tables.given_names[plan.given];
    let facilities = plan
        .facilities
        .iter()
        .map(|planned| {
            let facility = &tables.facilities[planned.facility];
            TruthFacility {
                number: facility.number.clone(),
                name: facility.name.clone(),
                kind: match facility.kind {
                    FacilityKind::Clinic => "clinic",
                    FacilityKind::Hospital => "hospital",
                },
                patient_id_system: format!("{}{}", url::PATIENT_ID_PREFIX, facility.number),
                patient_id: planned.patient_id.clone(),
            }
        })
        .collect();
    let diagnoses = plan
        .diagnoses
        .iter()
        .map(|diagnosis| {
            let condition = &tables.conditions[diagnosis.condition];
            TruthDiagnosis {
                medis: condition.medis,
                icd10: condition.icd10,
                display: condition.medis_display,
                onset: diagnosis.onset,
                abatement: diagnosis.abatement,
                clinical_status: if diagnosis.abatement.is_some() {
                    "resolved"
                } else {
                    "active"
                },
                facility: facility_number(diagnosis.slot),
                identifier: diagnosis.identifier.clone(),
                lts: diagnosis.lts,
                uninformed: diagnosis.uninformed,
                undelivered: diagnosis.undelivered,
            }
        })
        .collect();
    let allergies = plan
        .allergies
        .iter()
        .map(|allergy| {
            let allergen = &tables.allergens[allergy.allergen];
            TruthAllergy {
                system: allergen.system,
                code: allergen.code,
                display: allergen.display,
                category: allergen.category,
                criticality: allergy.criticality,
                contraindication: allergen.category == "medication"
                    && allergy.criticality == "high",
                facility: facility_number(allergy.slot),
                identifier: allergy.identifier.clone(),
                lts: allergy.lts,
            }
        })
        .collect();
    // Visits are in date order: a later result of the same test replaces an earlier one.
    let mut latest: BTreeMap<usize, TruthLab> = BTreeMap::new();
    for visit in &plan.lab_visits {
        for &(index, value) in &visit.results {
            let lab = &tables.labs[index];
            let newer = latest
                .get(&index)
                .is_none_or(|existing| existing.date <= visit.date);
            if newer {
                latest.insert(
                    index,
                    TruthLab {
                        key: lab.key,
                        jlac10: lab.jlac10,
                        value,
                        unit: lab.unit,
                        date: visit.date,
                        facility: facility_number(visit.slot),
                    },
                );
            }
        }
    }
    let infections = plan
        .infection_panels
        .iter()
        .flat_map(|panel| {
            panel.results.iter().map(move |&(index, positive)| {
                let lab = &tables.infection_labs[index];
                TruthInfection {
                    key: lab.key,
                    jlac10: lab.jlac10,
                    positive,
                    date: panel.date,
                    facility: facility_number(panel.slot),
                }
            })
        })
        .collect();
    let referral_identifier = submissions
        .iter()
        .find(|submission| submission.kind == SubmissionKind::Referral)
        .map(|submission| submission.identifier.clone())
        .unwrap_or_default();
    let current_medications = plan
        .prescriptions
        .iter()
        .filter(|prescription| as_of.days_since(prescription.authored) <= CURRENT_MEDICATION_DAYS)
        .map(|prescription| {
            let drug = &tables.drugs[prescription.drug];
            TruthMedication {
                yj: drug.yj,
                display: drug.display,
                authored_on: prescription.authored,
                days: drug.days,
                facility: facility_number(prescription.slot),
                identifier: prescription.identifier.clone(),
                document: referral_identifier.clone(),
            }
        })
        .collect();
    let mut referrals = Vec::new();
    let mut checkups = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = SubmissionKind::ALL
        .iter()
        .map(|kind| (kind.as_str(), 0))
        .collect();
    for submission in submissions {
        *counts.entry(submission.kind.as_str()).or_default() += 1;
    }
    if let Some(referral) = &plan.referral
        && let Some(submission) = submissions
            .iter()
            .find(|submission| submission.kind == SubmissionKind::Referral)
    {
        referrals.push(TruthDocument {
            identifier: submission.identifier.clone(),
            facility: submission.facility.clone(),
            destination: Some(facility_number(referral.to)),
            date: referral.date,
        });
    }
    for (checkup, submission) in plan.checkups.iter().zip(
        submissions
            .iter()
            .filter(|submission| submission.kind == SubmissionKind::Checkup),
    ) {
        checkups.push(TruthDocument {
            identifier: submission.identifier.clone(),
            facility: submission.facility.clone(),
            destination: None,
            date: checkup.date,
        });
    }
    GroundTruth {
        person: plan.number,
        member_id: plan.insurance.member_id.clone(),
        member_id_normalized: plan.insurance.member_id_normalized.clone(),
        insurer: plan.insurance.insurer.clone(),
        family_name: family.kanji.to_owned(),
        given_name: given.kanji.to_owned(),
        family_name_kana: family.kana.to_owned(),
        given_name_kana: given.kana.to_owned(),
        gender: plan.sex.as_str(),
        birth_date: plan.birth,
        prefecture_code: tables.prefectures[plan.prefecture].code.to_owned(),
        municipality_code: tables.municipalities[plan.municipality].code.clone(),
        postal_code: plan.postal_code.clone(),
        facilities,
        diagnoses,
        allergies,
        latest_labs: latest.into_values().collect(),
        infections,
        current_medications,
        referrals,
        checkups,
        submissions: counts,
    }
}
