//! The mix: names, parsing and the classes it sends.

use super::{Class, Mix, Operation};

#[test]
fn class_names_are_unique_and_in_order() {
    for (position, class) in Class::ALL.iter().enumerate() {
        assert_eq!(class.index(), position);
    }
    let mut names: Vec<&str> = Class::ALL.iter().map(|class| class.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Class::ALL.len());
}

#[test]
fn a_mix_spec_changes_only_what_it_names() {
    let mix = Mix::parse("clinician_labs=30, emergency=0").unwrap();
    assert_eq!(mix.weight(Operation::ClinicianLabs), 30);
    assert_eq!(mix.weight(Operation::Emergency), 0);
    assert_eq!(
        mix.weight(Operation::PatientRead),
        Operation::PatientRead.default_weight()
    );
    let classes = mix.classes();
    assert!(!classes.contains(&Class::EmergencyAccess));
    assert!(!classes.contains(&Class::EmergencySummary));
    assert!(classes.contains(&Class::TokenPatient));
}

#[test]
fn bad_mix_specs_are_refused() {
    assert!(Mix::parse("nothing=3").is_err());
    assert!(Mix::parse("clinician_labs").is_err());
    assert!(Mix::parse("clinician_labs=x").is_err());
    let all_zero: Vec<String> = Operation::ALL
        .iter()
        .map(|operation| format!("{}=0", operation.name()))
        .collect();
    assert!(Mix::parse(&all_zero.join(",")).is_err());
}

#[test]
fn the_default_mix_sends_every_class() {
    assert_eq!(Mix::default().classes(), Class::ALL.to_vec());
}

#[test]
fn every_deck_of_draws_follows_the_mix_exactly() {
    let mix = Mix::parse("clinician_labs=3,emergency=1,denied_read=0").unwrap();
    let total: u32 = mix.entries().iter().map(|(_, weight)| weight).sum();
    let mut deck = mix.deck();
    let mut random = synth::rng::Rng::new(7);
    for _ in 0..3 {
        let drawn: Vec<Operation> = (0..total).map(|_| deck.draw(&mut random)).collect();
        for operation in Operation::ALL {
            let count = drawn.iter().filter(|drawn| **drawn == operation).count();
            assert_eq!(count as u32, mix.weight(operation), "{operation:?}");
        }
    }
}
