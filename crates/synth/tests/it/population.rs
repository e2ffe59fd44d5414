//! The population looks like Japan's and its values behave: prevalence grows with age, diabetics
//! have higher HbA1c, flags and full-width identifiers occur at low rates, infections are mostly
//! negative, every identifier is valid. 2,000 people, generated in the test suite.

use std::time::Instant;

use synth::{Generator, codes};

#[test]
fn two_thousand_people_look_plausible() {
    let generator = Generator::new(2026);
    let as_of = generator.options().as_of;
    let started = Instant::now();
    let people: Vec<synth::Person> = generator.persons().take(2000).collect();
    // Reported, never asserted: timings depend on the machine.
    eprintln!(
        "generated 2,000 people in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let age = |person: &synth::Person| as_of.years_since(person.truth.birth_date);
    let has = |person: &synth::Person, medis: &str| {
        person
            .truth
            .active_diagnoses()
            .any(|diagnosis| diagnosis.medis == medis)
    };
    let share = |people: &[&synth::Person], test: &dyn Fn(&synth::Person) -> bool| {
        people.iter().filter(|person| test(person)).count() as f64 / people.len().max(1) as f64
    };
    let old: Vec<&synth::Person> = people.iter().filter(|person| age(person) >= 65).collect();
    let young: Vec<&synth::Person> = people.iter().filter(|person| age(person) < 40).collect();
    assert!(
        old.len() > 400 && young.len() > 500,
        "{} old, {} young",
        old.len(),
        young.len()
    );
    let hypertension_old = share(&old, &|person| has(person, "20061593"));
    let hypertension_young = share(&young, &|person| has(person, "20061593"));
    assert!(
        (0.25..0.65).contains(&hypertension_old),
        "{hypertension_old}"
    );
    assert!(
        hypertension_young < hypertension_old / 3.0,
        "{hypertension_young}"
    );

    let latest = |person: &synth::Person, key: &str| {
        person
            .truth
            .latest_labs
            .iter()
            .find(|lab| lab.key == key)
            .map(|lab| lab.value)
    };
    let diabetic_hba1c: Vec<f64> = people
        .iter()
        .filter(|person| has(person, "20050020"))
        .filter_map(|person| latest(person, "HbA1c"))
        .collect();
    let other_hba1c: Vec<f64> = people
        .iter()
        .filter(|person| !has(person, "20050020"))
        .filter_map(|person| latest(person, "HbA1c"))
        .collect();
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    assert!(diabetic_hba1c.len() > 30, "{}", diabetic_hba1c.len());
    assert!(mean(&diabetic_hba1c) > 6.5 && mean(&diabetic_hba1c) > mean(&other_hba1c) + 1.0);
    let egfr_by = |group: &[&synth::Person]| {
        mean(
            &group
                .iter()
                .filter_map(|person| latest(person, "eGFR"))
                .collect::<Vec<_>>(),
        )
    };
    assert!(
        egfr_by(&young) > egfr_by(&old) + 15.0,
        "{} vs {}",
        egfr_by(&young),
        egfr_by(&old)
    );

    let diagnoses = people
        .iter()
        .flat_map(|person| person.truth.diagnoses.iter());
    let (mut lts, mut uninformed, mut undelivered, mut total) = (0, 0, 0, 0);
    for diagnosis in diagnoses {
        total += 1;
        lts += usize::from(diagnosis.lts);
        uninformed += usize::from(diagnosis.uninformed);
        undelivered += usize::from(diagnosis.undelivered);
    }
    assert!(total > 1000, "{total}");
    assert!(
        lts > 0 && uninformed > 0 && undelivered > 0,
        "{lts} {uninformed} {undelivered}"
    );
    assert!(
        (lts + uninformed + undelivered) * 5 < total,
        "flags are rare"
    );

    let contraindications = people
        .iter()
        .flat_map(|person| &person.truth.allergies)
        .filter(|allergy| allergy.contraindication)
        .count();
    assert!(contraindications > 10, "{contraindications}");
    let fullwidth = people
        .iter()
        .filter(|person| person.truth.member_id != person.truth.member_id_normalized)
        .count();
    assert!((50..600).contains(&fullwidth), "{fullwidth}");

    let tests: Vec<bool> = people
        .iter()
        .flat_map(|person| {
            person
                .truth
                .infections
                .iter()
                .map(|infection| infection.positive)
        })
        .collect();
    assert!(tests.len() > 500, "{}", tests.len());
    assert!(
        tests.iter().filter(|positive| **positive).count() * 30 < tests.len(),
        "infections are mostly negative"
    );

    for person in &people {
        let truth = &person.truth;
        assert!(
            codes::is_valid_member_id(&truth.member_id),
            "{}",
            person.number
        );
        assert!(codes::is_valid_insurer_number(&truth.insurer));
        assert!(codes::is_valid_municipality_code(&truth.municipality_code));
        assert_eq!(&truth.municipality_code[..2], truth.prefecture_code);
        assert!(
            (1..=3).contains(&truth.facilities.len()),
            "{}",
            person.number
        );
        assert!(
            truth
                .facilities
                .iter()
                .all(|facility| codes::is_valid_institution_number(&facility.number))
        );
        assert!(truth.birth_date <= as_of);
        assert!(
            truth
                .diagnoses
                .iter()
                .all(|diagnosis| diagnosis.onset >= truth.birth_date),
            "{}",
            person.number
        );
        assert!(
            truth
                .diagnoses
                .iter()
                .all(|diagnosis| diagnosis.onset <= as_of
                    && diagnosis.abatement.is_none_or(|date| date <= as_of))
        );
        assert!(truth.latest_labs.iter().all(|lab| lab.date <= as_of));
        assert!(truth.postal_code.len() == 8 && truth.postal_code.as_bytes()[3] == b'-');
        // People aged 75 or more are insured by 後期高齢者医療 (法別番号 39).
        if age(person) >= 75 {
            assert!(truth.insurer.starts_with("39"), "{}", person.number);
        }
    }
    let surnames: std::collections::BTreeSet<&str> = people
        .iter()
        .map(|person| person.truth.family_name.as_str())
        .collect();
    assert!(surnames.len() > 80, "{}", surnames.len());
    let sato = people
        .iter()
        .filter(|person| person.truth.family_name == "佐藤")
        .count();
    assert!(
        sato > people
            .iter()
            .filter(|person| person.truth.family_name == "菊地")
            .count()
            * 3
    );
}
