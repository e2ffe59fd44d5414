//! The synthetic population the benchmarks load: JP-CLINS-like laboratory results. Each *group* is
//! one Patient (kanji and kana names, a hospital patient number, an insurance member id, address)
//! followed by its lab-result Observations, each coded in JLAC10 and LOINC, with category
//! `laboratory`, an effective date, a `valueQuantity` in UCUM, a reference range and, when out of
//! range, an interpretation. A Patient carries about 20 search-index entries and an Observation about
//! 15.
//!
//! Everything is a pure function of the group number, so every run and every machine loads the same
//! data. Entirely fictional; the JLAC10 codes are shaped like the real 17-character codes but are not
//! checked against the master.

use std::ops::Range;

use serde_json::{Value, json};

use crate::rng::Rng;

/// LOINC's system URI.
pub const LOINC: &str = "http://loinc.org";
/// JLAC10's system URI (as used by the JP Core and JP-CLINS profiles).
pub const JLAC10: &str = "urn:oid:1.2.392.200119.4.504";
/// The id of the hospital every Patient and Observation points at; see [`hospital`].
pub const HOSPITAL_ID: &str = "bench-hospital";
/// Observations per Patient in the default shape: one Patient plus 19 results make groups of 20, so a
/// Bundle of 1,000 entries holds exactly 50 groups.
pub const DEFAULT_OBSERVATIONS_PER_PATIENT: usize = 19;

const UCUM: &str = "http://unitsofmeasure.org";
const PATIENT_NUMBER_SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.51.11318814790";
const INSURANCE_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
const INSTANCE_SYSTEM: &str = "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier";
const REPRESENTATION: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
const SEED: u64 = 0x7473_756E_6167_7521;

/// One laboratory test: its codes, its unit and its reference range.
#[derive(Debug, Clone, Copy)]
pub struct LabTest {
    pub jlac10: &'static str,
    pub loinc: &'static str,
    pub name: &'static str,
    /// UCUM code, also used as the display unit.
    pub unit: &'static str,
    pub low: f64,
    pub high: f64,
    /// Fraction digits the analyser reports.
    pub decimals: usize,
}

/// The tests results are drawn from (a common Japanese outpatient panel).
pub const LAB_TESTS: [LabTest; 24] = [
    lab("3D046000002227101", "4548-4", "HbA1c", "%", 4.6, 6.2, 1),
    lab(
        "3D010000001926101",
        "2345-7",
        "グルコース",
        "mg/dL",
        73.0,
        109.0,
        0,
    ),
    lab(
        "3F050000002327101",
        "2093-3",
        "総コレステロール",
        "mg/dL",
        142.0,
        248.0,
        0,
    ),
    lab(
        "3F077000002327101",
        "13457-7",
        "LDLコレステロール",
        "mg/dL",
        65.0,
        163.0,
        0,
    ),
    lab(
        "3F070000002327101",
        "2085-9",
        "HDLコレステロール",
        "mg/dL",
        40.0,
        90.0,
        0,
    ),
    lab(
        "3F015000002327101",
        "2571-8",
        "中性脂肪",
        "mg/dL",
        40.0,
        149.0,
        0,
    ),
    lab(
        "3C015000002327101",
        "2160-0",
        "クレアチニン",
        "mg/dL",
        0.46,
        1.07,
        2,
    ),
    lab(
        "3C025000002327101",
        "3094-0",
        "尿素窒素",
        "mg/dL",
        8.0,
        20.0,
        1,
    ),
    lab("3C020000002327101", "3084-1", "尿酸", "mg/dL", 2.6, 7.0, 1),
    lab("3B035000002327201", "1920-8", "AST", "U/L", 13.0, 30.0, 0),
    lab("3B045000002327201", "1742-6", "ALT", "U/L", 7.0, 42.0, 0),
    lab("3B090000002327201", "2324-2", "γ-GT", "U/L", 9.0, 64.0, 0),
    lab("3B070000002327201", "6768-6", "ALP", "U/L", 38.0, 113.0, 0),
    lab("3B050000002327201", "2532-0", "LD", "U/L", 124.0, 222.0, 0),
    lab(
        "3J010000002327101",
        "1975-2",
        "総ビリルビン",
        "mg/dL",
        0.4,
        1.5,
        1,
    ),
    lab(
        "3A015000002327101",
        "1751-7",
        "アルブミン",
        "g/dL",
        4.1,
        5.1,
        1,
    ),
    lab("3A010000002327101", "2885-2", "総蛋白", "g/dL", 6.6, 8.1, 1),
    lab(
        "3H010000002327101",
        "2951-2",
        "ナトリウム",
        "mmol/L",
        138.0,
        145.0,
        0,
    ),
    lab(
        "3H015000002327101",
        "2823-3",
        "カリウム",
        "mmol/L",
        3.6,
        4.8,
        1,
    ),
    lab(
        "2A990000001930101",
        "6690-2",
        "白血球数",
        "10*3/uL",
        3.3,
        8.6,
        1,
    ),
    lab(
        "2A030000001930101",
        "718-7",
        "ヘモグロビン",
        "g/dL",
        11.6,
        16.8,
        1,
    ),
    lab(
        "2A050000001930101",
        "777-3",
        "血小板数",
        "10*3/uL",
        158.0,
        348.0,
        0,
    ),
    lab("5C070000002327101", "1988-5", "CRP", "mg/dL", 0.0, 0.14, 2),
    lab(
        "8A065000002391901",
        "33914-3",
        "eGFR",
        "mL/min/{1.73_m2}",
        60.0,
        120.0,
        1,
    ),
];

const FAMILY: [(&str, &str); 10] = [
    ("山田", "ヤマダ"),
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
];
const GIVEN: [(&str, &str, &str); 8] = [
    ("太郎", "タロウ", "male"),
    ("花子", "ハナコ", "female"),
    ("一郎", "イチロウ", "male"),
    ("美咲", "ミサキ", "female"),
    ("健太", "ケンタ", "male"),
    ("由美", "ユミ", "female"),
    ("翔", "ショウ", "male"),
    ("陽菜", "ヒナ", "female"),
];
const CITIES: [(&str, &str); 5] = [
    ("東京都千代田区", "100"),
    ("大阪府大阪市北区", "530"),
    ("愛知県名古屋市中区", "460"),
    ("福岡県福岡市博多区", "812"),
    ("北海道札幌市中央区", "060"),
];

/// The shape of the population: how many results each Patient has.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub observations_per_patient: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            observations_per_patient: DEFAULT_OBSERVATIONS_PER_PATIENT,
        }
    }
}

impl Shape {
    /// Resources per group: the Patient and its results.
    pub fn group_size(&self) -> usize {
        1 + self.observations_per_patient
    }

    /// Groups needed for at least `resources` resources.
    pub fn groups_for(&self, resources: usize) -> usize {
        resources.div_ceil(self.group_size())
    }

    /// Groups per Bundle of at most `entries` entries (at least one group).
    pub fn groups_per_bundle(&self, entries: usize) -> usize {
        (entries / self.group_size()).max(1)
    }

    /// One transaction Bundle creating `groups`: each Patient is POSTed with a `urn:uuid` fullUrl
    /// and its results reference that fullUrl, as a JP-CLINS document submission does.
    pub fn transaction_bundle(&self, groups: Range<usize>) -> Value {
        let mut entries = Vec::with_capacity(groups.len() * self.group_size());
        for number in groups {
            let patient_url = full_url(1, number as u64);
            entries.push(post(&patient_url, patient(number)));
            for index in 0..self.observations_per_patient {
                let serial = (number * self.observations_per_patient + index) as u64;
                entries.push(post(
                    &full_url(2, serial),
                    observation(number, index, &patient_url),
                ));
            }
        }
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    }
}

/// The hospital (an Organization with a fixed id) that must exist before the population is loaded.
pub fn hospital() -> Value {
    json!({
        "resourceType": "Organization",
        "id": HOSPITAL_ID,
        "identifier": [{"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "1318814790"}],
        "active": true,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
        "name": "つなぐベンチ病院"
    })
}

/// Patient number `number` (from zero), without an id.
pub fn patient(number: usize) -> Value {
    let mut random = Rng::new(SEED ^ (number as u64).wrapping_mul(0x9E37_79B9));
    let (family, family_kana) = *random.pick(&FAMILY);
    let (given, given_kana, gender) = *random.pick(&GIVEN);
    let (city, postal_prefix) = *random.pick(&CITIES);
    let birth_date = format!(
        "{:04}-{:02}-{:02}",
        random.between(1930, 2020),
        random.between(1, 12),
        random.between(1, 28)
    );
    json!({
        "resourceType": "Patient",
        "meta": {"profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient"]},
        "identifier": [
            {"system": PATIENT_NUMBER_SYSTEM, "value": format!("{:08}", number + 1)},
            {"system": INSURANCE_SYSTEM, "value": format!("06{:06}:記号{}:{}:00", number % 1_000_000, number % 97, 1000 + number)}
        ],
        "active": true,
        "name": [
            {"extension": [{"url": REPRESENTATION, "valueCode": "IDE"}], "use": "official", "text": format!("{family} {given}"), "family": family, "given": [given]},
            {"extension": [{"url": REPRESENTATION, "valueCode": "SYL"}], "use": "official", "text": format!("{family_kana} {given_kana}"), "family": family_kana, "given": [given_kana]}
        ],
        "telecom": [{"system": "phone", "value": format!("0{}-{:04}-{:04}", random.between(3, 99), random.below(10_000), random.below(10_000)), "use": "home"}],
        "gender": gender,
        "birthDate": birth_date,
        "address": [{
            "text": format!("{city}{}丁目{}番{}号", random.between(1, 9), random.between(1, 30), random.between(1, 20)),
            "postalCode": format!("{postal_prefix}-{:04}", random.below(10_000)),
            "country": "JP"
        }],
        "managingOrganization": {"reference": format!("Organization/{HOSPITAL_ID}")}
    })
}

/// Result `index` of patient `number`, about the Patient at `subject` (a reference string).
pub fn observation(number: usize, index: usize, subject: &str) -> Value {
    let mut random = observation_random(number, index);
    let test = random.pick(&LAB_TESTS);
    // Values spread a little beyond the range on both sides, so some results are flagged.
    let span = test.high - test.low;
    let value = (test.low - span * 0.2 + span * 1.4 * random.unit()).max(0.0);
    let (year, month, day) = (
        random.between(2019, 2025),
        random.between(1, 12),
        random.between(1, 28),
    );
    let (hour, minute) = (random.between(8, 16), random.below(60));
    let mut result = json!({
        "resourceType": "Observation",
        "meta": {"profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_LabResult"]},
        "identifier": [{"system": INSTANCE_SYSTEM, "value": format!("1318814790-{number}-{index}")}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory", "display": "Laboratory"}]}],
        "code": {
            "coding": [
                {"system": JLAC10, "code": test.jlac10, "display": test.name},
                {"system": LOINC, "code": test.loinc}
            ],
            "text": test.name
        },
        "subject": {"reference": subject},
        "effectiveDateTime": format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00+09:00"),
        "issued": format!("{year:04}-{month:02}-{day:02}T{:02}:{minute:02}:00+09:00", hour + 2),
        "performer": [{"reference": format!("Organization/{HOSPITAL_ID}")}],
        "valueQuantity": quantity(value, test),
        "referenceRange": [{"low": quantity(test.low, test), "high": quantity(test.high, test)}]
    });
    let flag = if value < test.low {
        Some("L")
    } else if value > test.high {
        Some("H")
    } else {
        None
    };
    if let (Some(flag), Value::Object(object)) = (flag, &mut result) {
        object.insert(
            "interpretation".into(),
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag}]}]),
        );
    }
    result
}

/// The test of result `index` of patient `number` (what [`observation`] draws first).
pub fn lab_test(number: usize, index: usize) -> &'static LabTest {
    observation_random(number, index).pick(&LAB_TESTS)
}

fn observation_random(number: usize, index: usize) -> Rng {
    Rng::new(SEED ^ ((number as u64) << 20 | index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D))
}

/// A UCUM quantity with the test's precision (kept as written: the workspace's `serde_json` has
/// arbitrary precision).
fn quantity(value: f64, test: &LabTest) -> Value {
    let digits = format!("{value:.precision$}", precision = test.decimals);
    let number = digits
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number);
    json!({"value": number, "unit": test.unit, "system": UCUM, "code": test.unit})
}

/// A deterministic `urn:uuid:` fullUrl; `kind` keeps Patients and Observations apart.
fn full_url(kind: u32, serial: u64) -> String {
    format!("urn:uuid:{kind:08x}-0000-4000-8000-{serial:012x}")
}

fn post(full_url: &str, resource: Value) -> Value {
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource_type}})
}

const fn lab(
    jlac10: &'static str,
    loinc: &'static str,
    name: &'static str,
    unit: &'static str,
    low: f64,
    high: f64,
    decimals: usize,
) -> LabTest {
    LabTest {
        jlac10,
        loinc,
        name,
        unit,
        low,
        high,
        decimals,
    }
}

#[cfg(test)]
mod tests;
