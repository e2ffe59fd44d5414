//! The code tables under `data/` (embedded at compile time, parsed once) and the facility table
//! derived from them. `data/SOURCES.md` says where each table comes from and how sure its codes are.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::codes;
use crate::rng::Rng;

/// Sex as FHIR `Patient.gender` has it for the generated people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// The birth era a given name was common in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Born before 1960.
    Old,
    /// Born 1960-1989.
    Mid,
    /// Born 1990 or later.
    Young,
}

impl Era {
    pub fn of_birth_year(year: i32) -> Era {
        match year {
            ..1960 => Era::Old,
            1960..1990 => Era::Mid,
            _ => Era::Young,
        }
    }
}

#[derive(Debug)]
pub struct FamilyName {
    pub kanji: &'static str,
    pub kana: &'static str,
    pub weight: u32,
}

#[derive(Debug)]
pub struct GivenName {
    pub kanji: &'static str,
    pub kana: &'static str,
    pub sex: Sex,
    pub era: Era,
    pub weight: u32,
}

#[derive(Debug)]
pub struct Prefecture {
    /// JIS X 0401 two-digit code.
    pub code: &'static str,
    pub name: &'static str,
    /// Population in thousands: the weight of the prefecture.
    pub weight: u32,
    /// Indices into [`Tables::municipalities`].
    pub municipalities: Vec<usize>,
    /// Indices into [`Tables::facilities`]: clinics first, then hospitals.
    pub facilities: Vec<usize>,
}

#[derive(Debug)]
pub struct Municipality {
    /// The six-digit local government code (JIS X 0402 code plus check digit).
    pub code: String,
    pub name: &'static str,
    /// Index into [`Tables::prefectures`].
    pub prefecture: usize,
    pub weight: u32,
    /// The first three digits of postal codes delivered there.
    pub postal3: Vec<&'static str>,
}

/// How chronic a diagnosis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    /// Stays active once diagnosed.
    Chronic,
    /// Resolves after days to weeks.
    Acute,
    /// A malignancy: active, long-term stored, sometimes not yet told to the patient.
    Cancer,
}

/// Which kind of facility sees a condition, has a person's chronic care, or sends a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacilityKind {
    Clinic,
    Hospital,
}

#[derive(Debug)]
pub struct Condition {
    pub key: &'static str,
    /// MEDIS 病名管理番号.
    pub medis: &'static str,
    pub medis_display: &'static str,
    /// ICD-10 (MHLW 2013) code without the dot.
    pub icd10: &'static str,
    pub icd10_display: &'static str,
    pub text: &'static str,
    pub kind: ConditionKind,
    pub facility: FacilityKind,
    pub min_age: i32,
    /// Share of people aged 70 who have it.
    pub prevalence: f64,
    pub source: &'static str,
    /// Index into [`Tables::departments`] of the department that diagnoses it.
    pub department: usize,
}

/// A clinical department (SS-MIX2 診療科コード).
#[derive(Debug)]
pub struct Department {
    pub code: &'static str,
    pub display: &'static str,
    pub source: &'static str,
}

/// The usage (用法) coding of a prescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSystem {
    /// JAMI 16-digit usage code.
    Jami,
    /// The JP-CLINS "uncoded usage" code.
    Uncoded,
}

#[derive(Debug)]
pub struct Drug {
    pub key: &'static str,
    /// YJ code.
    pub yj: &'static str,
    pub display: &'static str,
    /// Indices into [`Tables::conditions`] of the conditions it treats.
    pub treats: Vec<usize>,
    pub dose_per_time: u32,
    pub times_per_day: u32,
    pub days: u32,
    pub usage: UsageSystem,
    pub usage_code: &'static str,
    pub usage_display: &'static str,
    pub usage_text: &'static str,
    /// The display of the same usage code in the MHLW e-prescription usage system (JAMI usages).
    pub eprescription_display: &'static str,
    pub source: &'static str,
}

#[derive(Debug)]
pub struct Allergen {
    pub key: &'static str,
    /// `food` or `medication` (AllergyIntolerance.category).
    pub category: &'static str,
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
    pub text: &'static str,
    pub weight: u32,
    pub source: &'static str,
}

/// Where a lab test's specimen comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Specimen {
    Serum,
    Blood,
    Urine,
}

#[derive(Debug)]
pub struct Lab {
    pub key: &'static str,
    /// Concept group in the core-labo CodeSystem; `None` for eGFR (coded in the JLAC10 master only).
    pub group: Option<&'static str>,
    pub jlac10: &'static str,
    /// The fixed display of the coding slice.
    pub display: &'static str,
    pub local: &'static str,
    pub text: &'static str,
    pub unit: &'static str,
    pub ucum: &'static str,
    /// Reference range by sex: (low, high), `None` where the range has no bound.
    pub male: (Option<f64>, Option<f64>),
    pub female: (Option<f64>, Option<f64>),
    pub decimals: u32,
    pub specimen: Specimen,
}

#[derive(Debug)]
pub struct InfectionLab {
    pub key: &'static str,
    pub group: &'static str,
    pub jlac10: &'static str,
    pub display: &'static str,
    pub local: &'static str,
    pub text: &'static str,
    pub positive_rate: f64,
    pub tested_share: f64,
}

#[derive(Debug)]
pub struct CheckupItem {
    pub key: &'static str,
    pub code: &'static str,
    pub display: &'static str,
    pub category: &'static str,
    pub unit: &'static str,
    pub ucum: &'static str,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub decimals: u32,
    /// Qualitative urine test (coded -, ±, +, …) rather than a quantity.
    pub urine: bool,
}

/// One facility of the synthetic facility table.
#[derive(Debug)]
pub struct Facility {
    /// Ten-digit medical institution number (valid check digit).
    pub number: String,
    pub name: String,
    pub kind: FacilityKind,
    pub prefecture: usize,
    pub municipality: usize,
    pub postal_code: String,
    pub address: String,
    /// Doctors working there: (family name index, given name index).
    pub doctors: Vec<(usize, usize)>,
}

/// A JLAC10 CodeSystem of the JP-CLINS package: which codes each concept group holds.
#[derive(Debug)]
pub struct LaboCodeSystem {
    pub url: String,
    pub groups: HashMap<String, Vec<String>>,
}

impl LaboCodeSystem {
    /// Whether `code` is a member of `group`.
    pub fn contains(&self, group: &str, code: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|codes| codes.iter().any(|member| member == code))
    }
}

/// Every table, parsed once.
#[derive(Debug)]
pub struct Tables {
    pub family_names: Vec<FamilyName>,
    pub given_names: Vec<GivenName>,
    pub prefectures: Vec<Prefecture>,
    pub municipalities: Vec<Municipality>,
    pub departments: Vec<Department>,
    pub conditions: Vec<Condition>,
    pub drugs: Vec<Drug>,
    pub allergens: Vec<Allergen>,
    pub labs: Vec<Lab>,
    pub infection_labs: Vec<InfectionLab>,
    pub checkup_items: Vec<CheckupItem>,
    pub facilities: Vec<Facility>,
    pub core_labo: LaboCodeSystem,
    pub infection_labo: LaboCodeSystem,
    /// Weights of [`Tables::family_names`], for weighted picks.
    pub family_weights: Vec<u32>,
    /// Given-name indices and weights by (sex, era).
    pub given_by_kind: HashMap<(u8, u8), (Vec<usize>, Vec<u32>)>,
    pub prefecture_weights: Vec<u32>,
}

/// Clinics and hospitals the facility table holds per prefecture.
pub const CLINICS_PER_PREFECTURE: usize = 12;
pub const HOSPITALS_PER_PREFECTURE: usize = 4;

/// Common town names used for street addresses (fictional block numbers follow them).
pub const TOWNS: [&str; 20] = [
    "本町",
    "中央",
    "栄町",
    "旭町",
    "緑町",
    "幸町",
    "東町",
    "西町",
    "南町",
    "北町",
    "新町",
    "元町",
    "大手町",
    "錦町",
    "桜町",
    "末広町",
    "若葉町",
    "青葉町",
    "日吉町",
    "宮前町",
];

impl Tables {
    /// The tables (parsed on first use).
    pub fn get() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(Tables::load)
    }

    fn load() -> Tables {
        let family_names: Vec<FamilyName> = rows(include_str!("../data/family_names.tsv"))
            .map(|row| FamilyName {
                kanji: row[0],
                kana: row[1],
                weight: number(row[2]),
            })
            .collect();
        let given_names: Vec<GivenName> = rows(include_str!("../data/given_names.tsv"))
            .map(|row| GivenName {
                kanji: row[0],
                kana: row[1],
                sex: if row[2] == "male" {
                    Sex::Male
                } else {
                    Sex::Female
                },
                era: match row[3] {
                    "old" => Era::Old,
                    "mid" => Era::Mid,
                    _ => Era::Young,
                },
                weight: number(row[4]),
            })
            .collect();
        let mut prefectures: Vec<Prefecture> = rows(include_str!("../data/prefectures.tsv"))
            .map(|row| Prefecture {
                code: row[0],
                name: row[1],
                weight: number(row[2]),
                municipalities: Vec::new(),
                facilities: Vec::new(),
            })
            .collect();
        let municipalities: Vec<Municipality> = rows(include_str!("../data/municipalities.tsv"))
            .map(|row| {
                let prefecture = prefectures
                    .iter()
                    .position(|prefecture| prefecture.code == &row[0][..2])
                    .expect("municipality of a listed prefecture");
                Municipality {
                    code: codes::municipality_code(row[0]),
                    name: row[1],
                    prefecture,
                    weight: number(row[2]),
                    postal3: row[3].split(',').collect(),
                }
            })
            .collect();
        for (index, municipality) in municipalities.iter().enumerate() {
            prefectures[municipality.prefecture]
                .municipalities
                .push(index);
        }
        let departments: Vec<Department> = rows(include_str!("../data/departments.tsv"))
            .map(|row| Department {
                code: row[0],
                display: row[1],
                source: row[2],
            })
            .collect();
        let conditions: Vec<Condition> = rows(include_str!("../data/conditions.tsv"))
            .map(|row| Condition {
                key: row[0],
                medis: row[1],
                medis_display: row[2],
                icd10: row[3],
                icd10_display: row[4],
                text: row[5],
                kind: match row[6] {
                    "chronic" => ConditionKind::Chronic,
                    "cancer" => ConditionKind::Cancer,
                    _ => ConditionKind::Acute,
                },
                facility: facility_kind(row[7]),
                min_age: number(row[8]) as i32,
                prevalence: decimal(row[9]),
                source: row[10],
                department: departments
                    .iter()
                    .position(|department| department.code == row[11])
                    .expect("condition of a listed department"),
            })
            .collect();
        let drugs = rows(include_str!("../data/drugs.tsv"))
            .map(|row| Drug {
                key: row[0],
                yj: row[1],
                display: row[2],
                treats: row[3]
                    .split(',')
                    .map(|key| {
                        conditions
                            .iter()
                            .position(|condition| condition.key == key)
                            .expect("drug for a listed condition")
                    })
                    .collect(),
                dose_per_time: number(row[4]),
                times_per_day: number(row[5]),
                days: number(row[6]),
                usage: if row[7] == "jami" {
                    UsageSystem::Jami
                } else {
                    UsageSystem::Uncoded
                },
                usage_code: row[8],
                usage_display: row[9],
                usage_text: row[10],
                source: row[11],
                eprescription_display: row[12],
            })
            .collect();
        let allergens = rows(include_str!("../data/allergens.tsv"))
            .map(|row| Allergen {
                key: row[0],
                category: row[1],
                system: row[2],
                code: row[3],
                display: row[4],
                text: row[5],
                weight: number(row[6]),
                source: row[7],
            })
            .collect();
        let labs = rows(include_str!("../data/labs.tsv"))
            .map(|row| Lab {
                key: row[0],
                group: (row[1] != "-").then_some(row[1]),
                jlac10: row[2],
                display: row[3],
                local: row[4],
                text: row[5],
                unit: row[6],
                ucum: row[7],
                male: (optional(row[8]), optional(row[9])),
                female: (optional(row[10]), optional(row[11])),
                decimals: number(row[12]),
                specimen: match row[13] {
                    "serum" => Specimen::Serum,
                    "urine" => Specimen::Urine,
                    _ => Specimen::Blood,
                },
            })
            .collect();
        let infection_labs = rows(include_str!("../data/infection_labs.tsv"))
            .map(|row| InfectionLab {
                key: row[0],
                group: row[1],
                jlac10: row[2],
                display: row[3],
                local: row[4],
                text: row[5],
                positive_rate: decimal(row[6]),
                tested_share: decimal(row[7]),
            })
            .collect();
        let checkup_items = rows(include_str!("../data/checkup_items.tsv"))
            .map(|row| CheckupItem {
                key: row[0],
                code: row[1],
                display: row[2],
                category: row[3],
                unit: row[4],
                ucum: row[5],
                low: optional(row[6]),
                high: optional(row[7]),
                decimals: number(row[8]),
                urine: row[9] == "urine",
            })
            .collect();
        let core_labo = labo_code_system(include_str!(
            "../data/CodeSystem-jp-clins-codesystem-JLAC10-corelabo-cs.json"
        ));
        let infection_labo = labo_code_system(include_str!(
            "../data/CodeSystem-jp-clins-codesystem-JLAC10-infectionlabo-cs.json"
        ));
        let family_weights = family_names.iter().map(|name| name.weight).collect();
        let mut given_by_kind: HashMap<(u8, u8), (Vec<usize>, Vec<u32>)> = HashMap::new();
        for (index, name) in given_names.iter().enumerate() {
            let entry = given_by_kind
                .entry((name.sex as u8, name.era as u8))
                .or_default();
            entry.0.push(index);
            entry.1.push(name.weight);
        }
        let prefecture_weights = prefectures
            .iter()
            .map(|prefecture| prefecture.weight)
            .collect();
        let mut tables = Tables {
            family_names,
            given_names,
            prefectures,
            municipalities,
            departments,
            conditions,
            drugs,
            allergens,
            labs,
            infection_labs,
            checkup_items,
            facilities: Vec::new(),
            core_labo,
            infection_labo,
            family_weights,
            given_by_kind,
            prefecture_weights,
        };
        tables.facilities = build_facilities(&tables);
        for (index, facility) in tables.facilities.iter().enumerate() {
            tables.prefectures[facility.prefecture]
                .facilities
                .push(index);
        }
        tables
    }

    /// A given name for `sex` born in `era`, drawn by popularity.
    pub fn given_name(&self, random: &mut Rng, sex: Sex, era: Era) -> usize {
        let (indices, weights) = &self.given_by_kind[&(sex as u8, era as u8)];
        indices[random.weighted(weights)]
    }

    /// The department of internal medicine (内科), where anything without a department of its own is
    /// seen.
    pub fn internal_medicine(&self) -> usize {
        self.departments
            .iter()
            .position(|department| department.code == "01")
            .unwrap_or(0)
    }

    /// The facility with this institution number.
    pub fn facility(&self, number: &str) -> Option<&Facility> {
        self.facilities
            .iter()
            .find(|facility| facility.number == number)
    }
}

/// The facility table: per prefecture, [`CLINICS_PER_PREFECTURE`] clinics and
/// [`HOSPITALS_PER_PREFECTURE`] hospitals in its listed municipalities, with fictional names, valid
/// institution numbers and three doctors each. It depends on no seed: every dataset shares it.
fn build_facilities(tables: &Tables) -> Vec<Facility> {
    const KANJI_NUMBERS: [&str; 4] = ["一", "二", "三", "四"];
    const CLINIC_SUFFIXES: [&str; 4] = [
        "内科テストクリニック",
        "テスト医院",
        "循環器内科テストクリニック",
        "消化器内科テストクリニック",
    ];
    let mut facilities = Vec::new();
    for (prefecture_index, prefecture) in tables.prefectures.iter().enumerate() {
        let mut random = Rng::for_stream(0x6661_6369_6C69_7479, prefecture_index as u64);
        let weights: Vec<u32> = prefecture
            .municipalities
            .iter()
            .map(|&index| tables.municipalities[index].weight)
            .collect();
        let prefecture_number: u8 = prefecture.code.parse().unwrap_or(1);
        for serial in 0..CLINICS_PER_PREFECTURE + HOSPITALS_PER_PREFECTURE {
            let kind = if serial < CLINICS_PER_PREFECTURE {
                FacilityKind::Clinic
            } else {
                FacilityKind::Hospital
            };
            let slot = random.weighted(&weights);
            let municipality_index = prefecture.municipalities[slot];
            let municipality = &tables.municipalities[municipality_index];
            let name = match kind {
                FacilityKind::Clinic => {
                    let family = &tables.family_names[random.weighted(&tables.family_weights)];
                    format!("{}{}", family.kanji, random.pick(&CLINIC_SUFFIXES))
                }
                FacilityKind::Hospital => format!(
                    "{}第{}テスト病院",
                    municipality.name,
                    KANJI_NUMBERS[serial - CLINICS_PER_PREFECTURE]
                ),
            };
            let district = (slot + 1) as u8;
            let institution_serial = 1000 + ((serial as u32 * 523) % 9000) as u16;
            let number =
                codes::institution_number(prefecture_number, 1, district, institution_serial);
            let postal_code = format!(
                "{}-{:04}",
                random.pick(&municipality.postal3),
                random.below(10_000)
            );
            let address = format!(
                "{}{}{}{}丁目{}-{}",
                prefecture.name,
                municipality.name,
                random.pick(&TOWNS),
                random.between(1, 5),
                random.between(1, 30),
                random.between(1, 20)
            );
            let doctors = (0..3)
                .map(|_| {
                    let sex = if random.chance(0.7) {
                        Sex::Male
                    } else {
                        Sex::Female
                    };
                    let era = if random.chance(0.5) {
                        Era::Old
                    } else {
                        Era::Mid
                    };
                    (
                        random.weighted(&tables.family_weights),
                        tables.given_name(&mut random, sex, era),
                    )
                })
                .collect();
            facilities.push(Facility {
                number,
                name,
                kind,
                prefecture: prefecture_index,
                municipality: municipality_index,
                postal_code,
                address,
                doctors,
            });
        }
    }
    facilities
}

/// The data rows of a TSV table: comment lines (`#`) and blank lines skipped, cells split on tabs.
fn rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').collect())
}

fn number(cell: &str) -> u32 {
    cell.trim().parse().expect("a whole number in a data table")
}

fn decimal(cell: &str) -> f64 {
    cell.trim().parse().expect("a number in a data table")
}

fn optional(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    (!cell.is_empty()).then(|| decimal(cell))
}

fn facility_kind(cell: &str) -> FacilityKind {
    if cell == "hospital" {
        FacilityKind::Hospital
    } else {
        FacilityKind::Clinic
    }
}

fn labo_code_system(text: &str) -> LaboCodeSystem {
    let value: Value = serde_json::from_str(text).expect("the shipped JLAC10 CodeSystem parses");
    let url = value["url"].as_str().unwrap_or_default().to_owned();
    let groups = value["concept"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| {
            let code = group["code"].as_str().unwrap_or_default().to_owned();
            let members = group["concept"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|member| member["code"].as_str().map(str::to_owned))
                .collect();
            (code, members)
        })
        .collect();
    LaboCodeSystem { url, groups }
}
