//! The demo population loaded by `serve --demo` into an empty store: one hospital, one clinic, and
//! a few dozen synthetic Japanese patients with diagnoses, allergies, lab results and prescriptions.
//! Deterministic (same data on every machine); entirely fictional. A richer generator arrives with
//! the clinical-content work (`synth`).

use anyhow::Context as _;
use app::App;
use serde_json::{Value, json};

/// Number of demo patients.
const PATIENTS: usize = 24;

const FAMILY: [(&str, &str); 8] = [
    ("山田", "ヤマダ"),
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("中村", "ナカムラ"),
];
const GIVEN: [(&str, &str, &str); 6] = [
    ("太郎", "タロウ", "male"),
    ("花子", "ハナコ", "female"),
    ("一郎", "イチロウ", "male"),
    ("美咲", "ミサキ", "female"),
    ("健太", "ケンタ", "male"),
    ("由美", "ユミ", "female"),
];
/// (MEDIS 病名管理番号, ICD-10, 病名)
const DIAGNOSES: [(&str, &str, &str); 5] = [
    ("20061089", "I10", "本態性高血圧症"),
    ("20084591", "E119", "2型糖尿病"),
    ("20056741", "E785", "高脂血症"),
    ("20083418", "J45", "気管支喘息"),
    ("20087095", "K210", "逆流性食道炎"),
];
/// (JLAC10, LOINC, name, unit, low, high)
const LABS: [(&str, &str, &str, &str, f64, f64); 4] = [
    ("3D046000002227101", "4548-4", "HbA1c", "%", 4.6, 6.2),
    (
        "3F015000002327101",
        "2093-3",
        "総コレステロール",
        "mg/dL",
        142.0,
        248.0,
    ),
    (
        "3C015000002327101",
        "2160-0",
        "クレアチニン",
        "mg/dL",
        0.46,
        1.07,
    ),
    ("3B035000002327201", "1742-6", "ALT", "U/L", 7.0, 42.0),
];

/// Loads the demo population when the store holds nothing yet.
pub(crate) async fn load_if_empty(app: &App) -> anyhow::Result<()> {
    if !app.resource_types_in_use().await?.is_empty() {
        tracing::info!("the store already holds data: demo population not loaded");
        return Ok(());
    }
    let outcome = app
        .process_bundle(bundle())
        .await
        .context("loading the demo population failed")?;
    tracing::info!(
        resources = outcome.entries.len(),
        patients = PATIENTS,
        "demo population loaded"
    );
    Ok(())
}

/// A small deterministic generator (64-bit LCG), enough to vary the demo data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

/// The demo population as one transaction Bundle.
pub(crate) fn bundle() -> Value {
    let mut random = Lcg(20_261_124);
    let mut entries = vec![
        put(json!({
            "resourceType": "Organization",
            "id": "demo-hospital",
            "identifier": [{"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "1318814790"}],
            "active": true,
            "name": "つなぐ総合病院（デモ）"
        })),
        put(json!({
            "resourceType": "Organization",
            "id": "demo-clinic",
            "identifier": [{"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "2712345678"}],
            "active": true,
            "name": "なにわ内科クリニック（デモ）"
        })),
        put(json!({
            "resourceType": "Practitioner",
            "id": "demo-doctor",
            "name": [{"text": "医師 一郎", "family": "医師", "given": ["一郎"]}]
        })),
    ];
    for number in 0..PATIENTS {
        let (family, family_kana) = FAMILY[random.next(FAMILY.len())];
        let (given, given_kana, gender) = GIVEN[random.next(GIVEN.len())];
        let patient_id = format!("demo-patient-{:03}", number + 1);
        let year = 1940 + random.next(70);
        let month = 1 + random.next(12);
        let day = 1 + random.next(28);
        entries.push(put(json!({
            "resourceType": "Patient",
            "id": patient_id,
            "identifier": [
                {"system": "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID", "value": format!("00012345:記号{}:{}:00", number % 7, 1000 + number)},
                {"system": "urn:oid:1.2.392.100495.20.3.51.11318814790", "value": format!("{:08}", 500 + number)}
            ],
            "active": true,
            "name": [
                {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "IDE"}], "use": "official", "text": format!("{family} {given}"), "family": family, "given": [given]},
                {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "SYL"}], "use": "official", "text": format!("{family_kana} {given_kana}"), "family": family_kana, "given": [given_kana]}
            ],
            "gender": gender,
            "birthDate": format!("{year:04}-{month:02}-{day:02}"),
            "managingOrganization": {"reference": "Organization/demo-hospital"}
        })));
        let subject = json!({"reference": format!("Patient/{patient_id}")});
        let (medis, icd10, diagnosis) = DIAGNOSES[random.next(DIAGNOSES.len())];
        entries.push(put(json!({
            "resourceType": "Condition",
            "id": format!("{patient_id}-condition"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}]}],
            "code": {"coding": [
                {"system": "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "code": medis, "display": diagnosis},
                {"system": "http://jpfhir.jp/fhir/core/CodeSystem/JP_ICD10_CodeSystem", "code": icd10}
            ], "text": diagnosis},
            "subject": subject,
            "onsetDateTime": format!("{:04}-{:02}-01", 2015 + random.next(10), 1 + random.next(12)),
            "recorder": {"reference": "Practitioner/demo-doctor"}
        })));
        if random.next(3) == 0 {
            entries.push(put(json!({
                "resourceType": "AllergyIntolerance",
                "id": format!("{patient_id}-allergy"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "type": "allergy",
                "category": ["medication"],
                "criticality": "high",
                "code": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.74", "code": "1149019F1", "display": "ペニシリン系抗生物質"}], "text": "ペニシリン"},
                "patient": subject
            })));
        }
        for (index, (jlac10, loinc, name, unit, low, high)) in LABS.iter().enumerate() {
            let span = high - low;
            let value = low + span * (random.next(140) as f64 / 100.0);
            entries.push(put(json!({
                "resourceType": "Observation",
                "id": format!("{patient_id}-lab-{index}"),
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [
                    {"system": "urn:oid:1.2.392.200119.4.504", "code": jlac10, "display": name},
                    {"system": "http://loinc.org", "code": loinc}
                ], "text": name},
                "subject": subject,
                "effectiveDateTime": format!("2026-{:02}-{:02}T09:30:00+09:00", 1 + random.next(10), 1 + random.next(28)),
                "valueQuantity": {"value": decimal(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                "referenceRange": [{"low": {"value": decimal(*low), "unit": unit}, "high": {"value": decimal(*high), "unit": unit}}]
            })));
        }
        entries.push(put(json!({
            "resourceType": "MedicationRequest",
            "id": format!("{patient_id}-medication"),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.74", "code": "2149039F1020", "display": "アムロジピン錠5mg"}], "text": "アムロジピン錠5mg"},
            "subject": subject,
            "authoredOn": "2026-10-01",
            "requester": {"reference": "Practitioner/demo-doctor"},
            "dosageInstruction": [{"text": "1日1回朝食後 1錠"}]
        })));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// A decimal with two fractional digits, kept as written (arbitrary precision JSON numbers).
fn decimal(value: f64) -> Value {
    serde_json::from_str(&format!("{value:.2}")).unwrap_or(Value::Null)
}

fn put(resource: Value) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    json!({"resource": resource, "request": {"method": "PUT", "url": url}})
}
