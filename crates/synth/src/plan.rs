//! What happens to one synthetic person, before any FHIR is written: who they are, where they live,
//! how they are insured, which facilities see them, what they are diagnosed with, what they are
//! allergic to, which lab results, prescriptions, referral letters and checkups they get. Every
//! choice comes from the person's own random stream, so a person is a pure function of (seed,
//! number, options) and persons can be generated in any order.

use crate::codes;
use crate::date::Date;
use crate::rng::Rng;
use crate::tables::{ConditionKind, Era, FacilityKind, Sex, Tables};

/// Days back from the as-of date that the generated history covers.
pub const HISTORY_DAYS: i32 = 5 * 365;
/// A prescription authored this many days before the as-of date or later is current.
pub const CURRENT_MEDICATION_DAYS: i32 = 100;

/// One person's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub number: u64,
    pub sex: Sex,
    pub birth: Date,
    /// Age on the as-of date.
    pub age: i32,
    /// Index into [`Tables::family_names`].
    pub family: usize,
    /// Index into [`Tables::given_names`].
    pub given: usize,
    pub prefecture: usize,
    pub municipality: usize,
    pub postal_code: String,
    /// The street part of the address (town, block numbers), after prefecture and municipality.
    pub street: String,
    pub insurance: Insurance,
    /// The facilities that see the person; slot 0 is the usual (primary) one.
    pub facilities: Vec<PlannedFacility>,
    pub diagnoses: Vec<Diagnosis>,
    pub allergies: Vec<Allergy>,
    pub lab_visits: Vec<LabVisit>,
    pub infection_panels: Vec<InfectionPanel>,
    /// Current prescriptions (sent inside the referral letter).
    pub prescriptions: Vec<Prescription>,
    pub referral: Option<Referral>,
    pub checkups: Vec<Checkup>,
}

/// How the person is insured, and the insured-person identifier built from it.
#[derive(Debug, Clone)]
pub struct Insurance {
    /// 法別番号 as a label: `01` 協会けんぽ, `06` 組合健保, `31` 共済, `39` 後期高齢者, `00` 国保.
    pub law: &'static str,
    /// Eight-digit insurer number.
    pub insurer: String,
    pub symbol: String,
    pub number: String,
    pub branch: String,
    /// The identifier as facilities send it (full-width digits for some people).
    pub member_id: String,
    /// The identifier with full-width characters read as half-width.
    pub member_id_normalized: String,
}

/// A facility that sees the person, and the person's patient number there.
#[derive(Debug, Clone)]
pub struct PlannedFacility {
    /// Index into [`Tables::facilities`].
    pub facility: usize,
    pub patient_id: String,
}

/// A diagnosis reported by one facility.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// Index into [`Tables::conditions`].
    pub condition: usize,
    pub onset: Date,
    pub recorded: Date,
    /// When an acute condition resolved.
    pub abatement: Option<Date>,
    /// The facility slot that reports it.
    pub slot: usize,
    pub lts: bool,
    pub uninformed: bool,
    pub undelivered: bool,
    /// resourceInstance-identifier value.
    pub identifier: String,
}

/// An allergy or drug contraindication reported by one facility.
#[derive(Debug, Clone)]
pub struct Allergy {
    /// Index into [`Tables::allergens`].
    pub allergen: usize,
    /// `high` for a drug contraindication (薬剤禁忌), else `low` or `unable-to-assess`.
    pub criticality: &'static str,
    pub onset: Date,
    pub recorded: Date,
    pub slot: usize,
    pub lts: bool,
    pub identifier: String,
}

/// Lab tests done on one day at one facility.
#[derive(Debug, Clone)]
pub struct LabVisit {
    pub date: Date,
    pub slot: usize,
    /// Index into [`Tables::departments`] of the ordering department.
    pub department: usize,
    /// (index into [`Tables::labs`], value rounded to the lab's decimals).
    pub results: Vec<(usize, f64)>,
}

/// Infection tests done on one day at one facility.
#[derive(Debug, Clone)]
pub struct InfectionPanel {
    pub date: Date,
    pub slot: usize,
    /// Index into [`Tables::departments`] of the ordering department.
    pub department: usize,
    /// (index into [`Tables::infection_labs`], positive).
    pub results: Vec<(usize, bool)>,
}

/// A current prescription.
#[derive(Debug, Clone)]
pub struct Prescription {
    /// Index into [`Tables::drugs`].
    pub drug: usize,
    pub authored: Date,
    pub slot: usize,
    pub identifier: String,
}

/// A referral letter from one facility to another.
#[derive(Debug, Clone)]
pub struct Referral {
    pub date: Date,
    pub from: usize,
    pub to: usize,
    pub purpose: &'static str,
}

/// A yearly checkup (特定健診).
#[derive(Debug, Clone)]
pub struct Checkup {
    pub date: Date,
    pub slot: usize,
    /// (index into [`Tables::checkup_items`], value; urine items hold the result code 1, 2 or 3).
    pub values: Vec<(usize, f64)>,
}

/// The latent physiology a person's lab values are drawn around.
#[derive(Debug, Clone)]
struct Physiology {
    sex: Sex,
    age: i32,
    diabetes: bool,
    hypertension: bool,
    lipids: bool,
    heart_failure: bool,
    cancer: bool,
    /// Per lab key: (value at the as-of date, change per year, visit-to-visit noise).
    baselines: Vec<(f64, f64, f64)>,
}

/// Makes the plan of person `number`.
pub fn plan(tables: &Tables, seed: u64, number: u64, as_of: Date) -> Plan {
    let mut random = Rng::for_stream(seed, number);
    let sex = if random.chance(0.49) {
        Sex::Male
    } else {
        Sex::Female
    };
    let age = draw_age(&mut random);
    let birth = as_of
        .plus_days(-(age * 365 + age / 4))
        .plus_days(-(random.below(365) as i32));
    let age = as_of.years_since(birth);
    let family = random.weighted(&tables.family_weights);
    let given = tables.given_name(&mut random, sex, Era::of_birth_year(birth.year()));
    let prefecture = random.weighted(&tables.prefecture_weights);
    let municipalities = &tables.prefectures[prefecture].municipalities;
    let municipality_weights: Vec<u32> = municipalities
        .iter()
        .map(|&index| tables.municipalities[index].weight)
        .collect();
    let municipality = municipalities[random.weighted(&municipality_weights)];
    let postal_code = format!(
        "{}-{:04}",
        random.pick(&tables.municipalities[municipality].postal3),
        random.below(10_000)
    );
    let street = format!(
        "{}{}丁目{}-{}",
        random.pick(&crate::tables::TOWNS),
        random.between(1, 6),
        random.between(1, 40),
        random.between(1, 25)
    );
    let insurance = draw_insurance(&mut random, tables, prefecture, municipality, age);

    let mut plan = Plan {
        number,
        sex,
        birth,
        age,
        family,
        given,
        prefecture,
        municipality,
        postal_code,
        street,
        insurance,
        facilities: Vec::new(),
        diagnoses: Vec::new(),
        allergies: Vec::new(),
        lab_visits: Vec::new(),
        infection_panels: Vec::new(),
        prescriptions: Vec::new(),
        referral: None,
        checkups: Vec::new(),
    };
    let clinic = pick_facility(&mut random, tables, prefecture, FacilityKind::Clinic);
    add_facility(&mut plan, &mut random, clinic);
    draw_diagnoses(&mut plan, &mut random, tables, as_of);
    draw_allergies(&mut plan, &mut random, tables, as_of);
    let physiology = physiology(&plan, &mut random, tables);
    draw_labs(&mut plan, &mut random, tables, &physiology, as_of);
    draw_infection_panels(&mut plan, &mut random, tables, as_of);
    draw_prescriptions_and_referral(&mut plan, &mut random, tables, as_of);
    draw_checkups(&mut plan, &mut random, tables, &physiology, as_of);
    plan
}

/// Ages skewed like Japan's population (many old people), 0-99.
fn draw_age(random: &mut Rng) -> i32 {
    // Share of the population by decade (0-9, 10-19, ... 90-99), in per mille, rounded.
    const DECADES: [u32; 10] = [78, 88, 100, 113, 146, 134, 128, 128, 66, 19];
    let decade = random.weighted(&DECADES) as i32;
    decade * 10 + random.below(10) as i32
}

fn draw_insurance(
    random: &mut Rng,
    tables: &Tables,
    prefecture: usize,
    municipality: usize,
    age: i32,
) -> Insurance {
    const NHI_SYMBOLS: [&str; 6] = ["あいう", "国保", "一般", "退", "千代", "市"];
    let prefecture_number: u8 = tables.prefectures[prefecture].code.parse().unwrap_or(13);
    let municipality_serial: u16 = tables.municipalities[municipality].code[2..5]
        .parse()
        .unwrap_or(1);
    let dependant = age < 20 || (age < 65 && random.chance(0.15));
    let branch = if dependant {
        format!("{:02}", random.between(1, 4))
    } else {
        "00".to_owned()
    };
    let (law, insurer, symbol, number, branch) = if age >= 75 {
        (
            "39",
            codes::insurer_number(39, prefecture_number, 1),
            String::new(),
            format!("{:08}", random.below(100_000_000)),
            "00".to_owned(),
        )
    } else if age < 65 && random.chance(0.7) {
        let roll = random.unit();
        let (law, label, insurer_serial) = if roll < 0.55 {
            (1u8, "01", 1u16)
        } else if roll < 0.9 {
            (6, "06", random.between(100, 999) as u16)
        } else {
            (31, "31", random.between(100, 999) as u16)
        };
        (
            label,
            codes::insurer_number(law, prefecture_number, insurer_serial),
            format!("{}", random.between(1000, 99_999_999)),
            format!("{}", random.between(1, 9_999_999)),
            branch,
        )
    } else {
        let symbol = if random.chance(0.5) {
            random.pick(&NHI_SYMBOLS).to_string()
        } else {
            format!("{}", random.between(1, 9999))
        };
        (
            "00",
            codes::insurer_number(0, prefecture_number, municipality_serial),
            symbol,
            format!("{}", random.between(1, 999_999)),
            branch,
        )
    };
    let member_id_normalized = codes::member_id(&insurer, &symbol, &number, &branch);
    // Some facility systems write the card's symbol and number in full-width digits.
    let member_id = if random.chance(0.15) {
        codes::member_id(
            &insurer,
            &codes::to_fullwidth_digits(&symbol),
            &codes::to_fullwidth_digits(&number),
            &branch,
        )
    } else {
        member_id_normalized.clone()
    };
    Insurance {
        law,
        insurer,
        symbol,
        number,
        branch,
        member_id,
        member_id_normalized,
    }
}

fn pick_facility(
    random: &mut Rng,
    tables: &Tables,
    prefecture: usize,
    kind: FacilityKind,
) -> usize {
    let candidates: Vec<usize> = tables.prefectures[prefecture]
        .facilities
        .iter()
        .copied()
        .filter(|&index| tables.facilities[index].kind == kind)
        .collect();
    *random.pick(&candidates)
}

/// The slot of `facility` in the plan, adding it (with a new patient number) if it is not there.
fn add_facility(plan: &mut Plan, random: &mut Rng, facility: usize) -> usize {
    if let Some(slot) = plan
        .facilities
        .iter()
        .position(|planned| planned.facility == facility)
    {
        return slot;
    }
    plan.facilities.push(PlannedFacility {
        facility,
        patient_id: format!("{:08}", random.below(100_000_000)),
    });
    plan.facilities.len() - 1
}

/// The slot of a hospital of the person's prefecture (their hospital if they have one, else a new
/// one while fewer than three facilities see them, else the primary facility).
fn hospital_slot(plan: &mut Plan, random: &mut Rng, tables: &Tables) -> usize {
    if let Some(slot) = plan
        .facilities
        .iter()
        .position(|planned| tables.facilities[planned.facility].kind == FacilityKind::Hospital)
    {
        return slot;
    }
    if plan.facilities.len() >= 3 {
        return 0;
    }
    let hospital = pick_facility(random, tables, plan.prefecture, FacilityKind::Hospital);
    add_facility(plan, random, hospital)
}

fn draw_diagnoses(plan: &mut Plan, random: &mut Rng, tables: &Tables, as_of: Date) {
    let earliest = as_of.plus_days(-HISTORY_DAYS);
    for (index, condition) in tables.conditions.iter().enumerate() {
        if plan.age < condition.min_age {
            continue;
        }
        let reach = ((plan.age - condition.min_age) as f64
            / (70 - condition.min_age).max(1) as f64)
            .min(1.0);
        let probability = match condition.kind {
            // Acute conditions are counted over the history window, whatever the age.
            ConditionKind::Acute => condition.prevalence,
            _ => condition.prevalence * reach,
        };
        if !random.chance(probability) {
            continue;
        }
        let (onset, abatement) = match condition.kind {
            ConditionKind::Acute => {
                let onset = earliest
                    .plus_days(random.below(HISTORY_DAYS as usize) as i32)
                    .max(plan.birth);
                let abatement = onset.plus_days(random.between(5, 60) as i32);
                (onset, (abatement < as_of).then_some(abatement))
            }
            _ => {
                // Diagnosed somewhere between the minimum age and now; at most 25 years ago.
                let years_possible = (plan.age - condition.min_age).clamp(0, 25);
                let days_ago = random.below((years_possible * 365 + 30) as usize) as i32;
                (as_of.plus_days(-days_ago), None)
            }
        };
        let slot = match condition.facility {
            FacilityKind::Clinic => 0,
            FacilityKind::Hospital => hospital_slot(plan, random, tables),
        };
        let cancer = condition.kind == ConditionKind::Cancer;
        // A diagnosis made before the history window is re-recorded inside it.
        let recorded = onset
            .max(earliest)
            .plus_days(random.below(14) as i32)
            .min(as_of);
        let identifier = format!(
            "{}-{}-DX{:03}",
            tables.facilities[plan.facilities[slot].facility].number,
            plan.facilities[slot].patient_id,
            plan.diagnoses.len() + 1
        );
        plan.diagnoses.push(Diagnosis {
            condition: index,
            onset,
            recorded,
            abatement,
            slot,
            lts: if cancer {
                random.chance(0.8)
            } else {
                random.chance(0.05)
            },
            uninformed: cancer && random.chance(0.4),
            undelivered: random.chance(0.02),
            identifier,
        });
    }
}

fn draw_allergies(plan: &mut Plan, random: &mut Rng, tables: &Tables, as_of: Date) {
    if !random.chance(0.15) {
        return;
    }
    let weights: Vec<u32> = tables
        .allergens
        .iter()
        .map(|allergen| allergen.weight)
        .collect();
    let count = if random.chance(0.2) { 2 } else { 1 };
    for _ in 0..count {
        let allergen = random.weighted(&weights);
        if plan
            .allergies
            .iter()
            .any(|allergy| allergy.allergen == allergen)
        {
            continue;
        }
        let medication = tables.allergens[allergen].category == "medication";
        let criticality = if medication {
            // Most recorded drug allergies are contraindications (薬剤禁忌).
            if random.chance(0.7) { "high" } else { "low" }
        } else if random.chance(0.5) {
            "low"
        } else {
            "unable-to-assess"
        };
        let onset_years = random.below((plan.age.max(1) as usize).min(40)) as i32;
        let onset = as_of.plus_days(-(onset_years * 365) - random.below(365) as i32);
        let recorded = as_of.plus_days(-(random.below(HISTORY_DAYS as usize) as i32));
        let identifier = format!(
            "{}-{}-AL{:03}",
            tables.facilities[plan.facilities[0].facility].number,
            plan.facilities[0].patient_id,
            plan.allergies.len() + 1
        );
        plan.allergies.push(Allergy {
            allergen,
            criticality,
            onset: onset.min(recorded).max(plan.birth),
            recorded,
            slot: 0,
            lts: random.chance(0.3),
            identifier,
        });
    }
}

fn has(plan: &Plan, tables: &Tables, key: &str) -> bool {
    plan.diagnoses.iter().any(|diagnosis| {
        tables.conditions[diagnosis.condition].key == key && diagnosis.abatement.is_none()
    })
}

fn physiology(plan: &Plan, random: &mut Rng, tables: &Tables) -> Physiology {
    let diabetes = has(plan, tables, "type2_diabetes");
    let hypertension = has(plan, tables, "hypertension");
    let lipids = has(plan, tables, "hyperlipidaemia");
    let heart_failure = has(plan, tables, "heart_failure");
    let cancer = plan
        .diagnoses
        .iter()
        .any(|diagnosis| tables.conditions[diagnosis.condition].kind == ConditionKind::Cancer);
    let male = plan.sex == Sex::Male;
    let drinker = male && random.chance(0.2);
    let age = plan.age as f64;
    let pick = |male_value: f64, female_value: f64| if male { male_value } else { female_value };
    let mut baselines = Vec::with_capacity(tables.labs.len());
    for lab in &tables.labs {
        let (base, slope, noise) = match lab.key {
            "eGFR" => {
                let mut base = 115.0 - 0.65 * age + random.normal(0.0, 10.0);
                let mut slope = -0.4;
                if diabetes {
                    base -= 10.0;
                    slope -= 1.5;
                }
                if hypertension {
                    base -= 5.0;
                    slope -= 0.8;
                }
                if heart_failure {
                    base -= 15.0;
                    slope -= 1.5;
                }
                (base.clamp(12.0, 130.0), slope, 3.0)
            }
            "HbA1c" if diabetes => (random.normal(7.4, 0.6), random.normal(-0.1, 0.25), 0.15),
            "HbA1c" => (random.normal(5.5, 0.25), 0.02, 0.1),
            "LDL-C" if lipids => (random.normal(125.0, 20.0), random.normal(-8.0, 5.0), 8.0),
            "LDL-C" => (random.normal(112.0, 22.0), 0.5, 8.0),
            "HDL-C" => (
                random.normal(pick(55.0, 66.0), 10.0) - if lipids { 5.0 } else { 0.0 },
                0.0,
                4.0,
            ),
            "TG" => {
                let extra = if lipids { 40.0 } else { 0.0 } + if diabetes { 20.0 } else { 0.0 };
                (random.normal(pick(120.0, 90.0) + extra, 30.0), 0.0, 18.0)
            }
            "K" => (random.normal(4.2, 0.2), 0.0, 0.2),
            "Na" => (random.normal(141.0, 1.2), 0.0, 1.0),
            "AST" => (
                random.normal(22.0, 4.0) + if drinker { 8.0 } else { 0.0 },
                0.0,
                3.0,
            ),
            "ALT" => (
                random.normal(pick(24.0, 16.0), 5.0) + if drinker { 8.0 } else { 0.0 },
                0.0,
                3.0,
            ),
            "GGT" => (
                random.normal(pick(35.0, 20.0), 8.0) + if drinker { 40.0 } else { 0.0 },
                0.0,
                5.0,
            ),
            "UA" => (
                random.normal(pick(6.0, 4.5), 0.8) + if hypertension { 0.4 } else { 0.0 },
                0.0,
                0.3,
            ),
            "BUN" => (random.normal(14.0, 2.5), 0.0, 1.5),
            "ALB" => {
                let mut base = random.normal(4.35, 0.2);
                if cancer {
                    base -= 0.4;
                }
                if heart_failure {
                    base -= 0.3;
                }
                if age > 80.0 {
                    base -= 0.2;
                }
                (base, 0.0, 0.1)
            }
            "Hb" => {
                let mut base = random.normal(pick(14.8, 12.9), 0.8);
                if cancer {
                    base -= 1.5;
                }
                if age > 75.0 {
                    base -= 0.7;
                }
                (base, 0.0, 0.3)
            }
            "WBC" => (random.normal(6.0, 1.1), 0.0, 0.6),
            "PLT" => (random.normal(240.0, 45.0), 0.0, 15.0),
            "CRP" => (
                if cancer {
                    random.normal(0.6, 0.3)
                } else {
                    random.normal(0.07, 0.03)
                },
                0.0,
                0.03,
            ),
            "NT-proBNP" if heart_failure => {
                (random.normal(900.0, 300.0), random.normal(60.0, 80.0), 80.0)
            }
            "NT-proBNP" => (random.normal(45.0 + age * 0.8, 15.0), 1.0, 8.0),
            // Values derived from others (Cre from eGFR, BS from HbA1c) are computed per visit.
            _ => (0.0, 0.0, 0.0),
        };
        baselines.push((base, slope, noise));
    }
    Physiology {
        sex: plan.sex,
        age: plan.age,
        diabetes,
        hypertension,
        lipids,
        heart_failure,
        cancer,
        baselines,
    }
}

/// The value of lab `index` on `date` (before noise and rounding for derived values).
fn lab_value(
    tables: &Tables,
    physiology: &Physiology,
    random: &mut Rng,
    index: usize,
    date: Date,
    as_of: Date,
) -> f64 {
    let years_to_go = as_of.days_since(date) as f64 / 365.0;
    let latent = |index: usize| {
        let (base, slope, _) = physiology.baselines[index];
        base - slope * years_to_go
    };
    let position = |key: &str| {
        tables
            .labs
            .iter()
            .position(|lab| lab.key == key)
            .expect("a listed lab")
    };
    let lab = &tables.labs[index];
    let value = match lab.key {
        "Cre" => {
            // The Japanese Society of Nephrology eGFR equation, solved for creatinine.
            let egfr = latent(position("eGFR")).clamp(5.0, 150.0);
            let female = if physiology.sex == Sex::Female {
                0.739
            } else {
                1.0
            };
            let age = f64::from(physiology.age.max(18));
            let creatinine = (egfr / (194.0 * age.powf(-0.287) * female)).powf(-1.0 / 1.094);
            creatinine * (1.0 + random.normal(0.0, 0.03))
        }
        "BS" => {
            // Estimated average glucose from HbA1c (ADAG), plus fasting/non-fasting scatter.
            28.7 * latent(position("HbA1c")) - 46.7 + random.normal(0.0, 12.0)
        }
        "BUN" => {
            let egfr = latent(position("eGFR"));
            let (base, _, noise) = physiology.baselines[index];
            base + (60.0 - egfr).max(0.0) * 0.25 + random.normal(0.0, noise)
        }
        "K" => {
            let egfr = latent(position("eGFR"));
            let (base, _, noise) = physiology.baselines[index];
            base + if egfr < 45.0 { 0.3 } else { 0.0 } + random.normal(0.0, noise)
        }
        _ => {
            let (_, _, noise) = physiology.baselines[index];
            latent(index) + random.normal(0.0, noise)
        }
    };
    let (floor, ceiling) = match lab.key {
        "eGFR" => (5.0, 150.0),
        "HbA1c" => (4.3, 13.5),
        "BS" => (60.0, 450.0),
        "Cre" => (0.3, 9.0),
        "CRP" => (0.01, 20.0),
        "NT-proBNP" => (5.0, 20_000.0),
        _ => (0.0, f64::MAX),
    };
    round(value.clamp(floor, ceiling), lab.decimals)
}

/// `value` rounded to `decimals` fraction digits.
pub fn round(value: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    (value * scale).round() / scale
}

fn draw_labs(
    plan: &mut Plan,
    random: &mut Rng,
    tables: &Tables,
    physiology: &Physiology,
    as_of: Date,
) {
    let chronic = plan
        .diagnoses
        .iter()
        .any(|diagnosis| tables.conditions[diagnosis.condition].kind != ConditionKind::Acute);
    let mut panel: Vec<&str> = vec!["Cre", "eGFR", "AST", "ALT", "GGT", "Hb"];
    if physiology.diabetes {
        panel.extend(["HbA1c", "BS"]);
    }
    if physiology.lipids {
        panel.extend(["LDL-C", "HDL-C", "TG"]);
    }
    if physiology.hypertension {
        panel.extend(["K", "Na", "UA", "BUN"]);
    }
    if physiology.heart_failure {
        panel.extend(["NT-proBNP", "BUN", "ALB"]);
    }
    if physiology.cancer {
        panel.extend(["ALB", "CRP", "WBC", "PLT"]);
    }
    let indices: Vec<usize> = tables
        .labs
        .iter()
        .enumerate()
        .filter(|(_, lab)| panel.contains(&lab.key))
        .map(|(index, _)| index)
        .collect();
    let mut dates = Vec::new();
    if chronic {
        // Every two to four months at the usual facility, over the last year or so.
        let mut date = as_of.plus_days(-(random.between(0, 45) as i32));
        let visits = random.between(2, 4);
        for _ in 0..visits {
            dates.push(date);
            date = date.plus_days(-(random.between(60, 120) as i32));
        }
    } else if random.chance(0.25) || nothing_else_to_send(plan) {
        // A routine blood test. Everyone in the population has been seen at least once, so that
        // every generated person reaches the service.
        dates.push(as_of.plus_days(-(random.below(700) as i32)));
    }
    dates.sort();
    let slot = if physiology.heart_failure || physiology.cancer {
        hospital_slot(plan, random, tables)
    } else {
        0
    };
    let department = department_at(plan, tables, slot);
    for date in dates {
        let results = indices
            .iter()
            .map(|&index| {
                (
                    index,
                    lab_value(tables, physiology, random, index, date, as_of),
                )
            })
            .collect();
        plan.lab_visits.push(LabVisit {
            date,
            slot,
            department,
            results,
        });
    }
}

/// The department that sees the person at facility `slot`: that of the first diagnosis made there
/// that is not resolved, else internal medicine.
fn department_at(plan: &Plan, tables: &Tables, slot: usize) -> usize {
    plan.diagnoses
        .iter()
        .find(|diagnosis| diagnosis.slot == slot && diagnosis.abatement.is_none())
        .map_or_else(
            || tables.internal_medicine(),
            |diagnosis| tables.conditions[diagnosis.condition].department,
        )
}

/// Whether nothing but lab results could reach the service about this person (checked before labs
/// are drawn; checkups and referrals only come to people with conditions or of checkup age).
fn nothing_else_to_send(plan: &Plan) -> bool {
    plan.diagnoses.is_empty() && plan.allergies.is_empty() && !(40..=74).contains(&plan.age)
}

fn draw_infection_panels(plan: &mut Plan, random: &mut Rng, tables: &Tables, as_of: Date) {
    // Hospitals test before surgery, endoscopy or admission: people seen at a hospital mostly are.
    let hospital = plan
        .facilities
        .iter()
        .position(|planned| tables.facilities[planned.facility].kind == FacilityKind::Hospital);
    let tested = match hospital {
        Some(_) => random.chance(0.7),
        None => random.chance(0.05),
    };
    if !tested {
        return;
    }
    let slot = hospital.unwrap_or(0);
    let date = as_of.plus_days(-(random.below(3 * 365) as i32));
    let mut results = Vec::new();
    for (index, lab) in tables.infection_labs.iter().enumerate() {
        if random.chance(lab.tested_share) {
            results.push((index, random.chance(lab.positive_rate)));
        }
    }
    plan.infection_panels.push(InfectionPanel {
        date,
        slot,
        department: department_at(plan, tables, slot),
        results,
    });
}

fn draw_prescriptions_and_referral(
    plan: &mut Plan,
    random: &mut Rng,
    tables: &Tables,
    as_of: Date,
) {
    // Current medicines: one drug per active condition that has one; for a condition treated by
    // several drugs, one of them.
    let mut drugs = Vec::new();
    for diagnosis in &plan.diagnoses {
        let recently_resolved = diagnosis
            .abatement
            .is_some_and(|abatement| abatement.days_since(as_of) > -CURRENT_MEDICATION_DAYS / 2);
        if diagnosis.abatement.is_some() && !recently_resolved {
            continue;
        }
        let candidates: Vec<usize> = tables
            .drugs
            .iter()
            .enumerate()
            .filter(|(_, drug)| drug.treats.contains(&diagnosis.condition))
            .map(|(index, _)| index)
            .collect();
        if candidates.is_empty() || random.chance(0.15) {
            continue;
        }
        let drug = *random.pick(&candidates);
        if !drugs.contains(&drug) {
            drugs.push(drug);
        }
    }
    let chronic = plan
        .diagnoses
        .iter()
        .any(|diagnosis| tables.conditions[diagnosis.condition].kind != ConditionKind::Acute);
    let referred = if drugs.is_empty() {
        chronic && random.chance(0.1)
    } else {
        random.chance(0.7)
    };
    if !referred {
        return;
    }
    let date = as_of.plus_days(-(random.below(60) as i32));
    let from = 0;
    let to = if tables.facilities[plan.facilities[0].facility].kind == FacilityKind::Hospital {
        1.min(plan.facilities.len() - 1)
    } else {
        hospital_slot(plan, random, tables)
    };
    if to == from {
        return;
    }
    const PURPOSES: [&str; 4] = [
        "精査加療のお願い",
        "定期検査のお願い",
        "治療方針についてご意見をお願いします。",
        "転居に伴う診療継続のお願い",
    ];
    let purpose: &&'static str = random.pick(&PURPOSES);
    plan.referral = Some(Referral {
        date,
        from,
        to,
        purpose,
    });
    let facility_number = &tables.facilities[plan.facilities[from].facility].number;
    for (position, drug) in drugs.into_iter().enumerate() {
        let authored = date.plus_days(-(random.below(7) as i32));
        plan.prescriptions.push(Prescription {
            drug,
            authored,
            slot: from,
            identifier: format!(
                "{facility_number}-{}-RX{}-{}",
                plan.facilities[from].patient_id,
                authored.compact(),
                position + 1
            ),
        });
    }
}

fn draw_checkups(
    plan: &mut Plan,
    random: &mut Rng,
    tables: &Tables,
    physiology: &Physiology,
    as_of: Date,
) {
    // 特定健診 covers ages 40-74; about seven in ten take it (and everyone with nothing else to send,
    // so that every generated person reaches the service).
    let nothing_yet = plan.diagnoses.is_empty()
        && plan.allergies.is_empty()
        && plan.lab_visits.is_empty()
        && plan.infection_panels.is_empty();
    let takes_it = random.chance(0.7) || nothing_yet;
    if !(40..=74).contains(&plan.age) || !takes_it {
        return;
    }
    let years = random.between(1, 2);
    let day_of_year = random.between(90, 330) as i32;
    let male = physiology.sex == Sex::Male;
    let height = random.normal(
        if male { 171.0 } else { 158.0 } - f64::from(plan.age - 40) * 0.1,
        if male { 5.5 } else { 5.0 },
    );
    let bmi = random.normal(
        23.0 + if physiology.diabetes { 2.0 } else { 0.0 }
            + if physiology.hypertension { 1.5 } else { 0.0 },
        2.8,
    );
    let systolic = if physiology.hypertension {
        138.0
    } else {
        122.0
    };
    let index_of = |key: &str| tables.labs.iter().position(|lab| lab.key == key);
    for year_back in (0..years).rev() {
        let year_start = Date::from_ymd(as_of.year() - year_back as i32, 1, 1);
        let date = year_start.plus_days(day_of_year).min(as_of);
        let years_to_go = as_of.days_since(date) as f64 / 365.0;
        let latent = |key: &str| {
            index_of(key).map_or(0.0, |index| {
                let (base, slope, _) = physiology.baselines[index];
                base - slope * years_to_go
            })
        };
        let bmi_now = bmi + random.normal(0.0, 0.4);
        let weight = bmi_now * (height / 100.0) * (height / 100.0);
        let hba1c = latent("HbA1c");
        let egfr = latent("eGFR");
        let mut values = Vec::with_capacity(tables.checkup_items.len());
        for (index, item) in tables.checkup_items.iter().enumerate() {
            let value = match item.key {
                "height" => height,
                "weight" => weight,
                "bmi" => weight / ((height / 100.0) * (height / 100.0)),
                "waist" => {
                    random.normal(if male { 80.0 } else { 76.0 } + (bmi_now - 22.0) * 2.5, 3.0)
                }
                "sbp" => random.normal(systolic, 10.0),
                "dbp" => random.normal(systolic * 0.62, 7.0),
                "tg" => latent("TG") + random.normal(0.0, 15.0),
                "hdl" => latent("HDL-C") + random.normal(0.0, 3.0),
                "ldl" => latent("LDL-C") + random.normal(0.0, 6.0),
                "ast" => latent("AST") + random.normal(0.0, 3.0),
                "alt" => latent("ALT") + random.normal(0.0, 3.0),
                "ggt" => latent("GGT") + random.normal(0.0, 4.0),
                "hba1c" => hba1c + random.normal(0.0, 0.1),
                // Urine results: 1 (-), 2 (±), 3 (1+).
                "urine_glucose" if hba1c > 8.5 => 3.0,
                "urine_glucose" if hba1c > 7.5 => 2.0,
                "urine_protein" if egfr < 40.0 => 3.0,
                "urine_protein" if egfr < 55.0 => 2.0,
                _ => 1.0,
            };
            let value = if item.urine {
                value
            } else {
                round(value.max(1.0), item.decimals)
            };
            values.push((index, value));
        }
        plan.checkups.push(Checkup {
            date,
            slot: 0,
            values,
        });
    }
}
