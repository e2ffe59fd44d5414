//! Every generated submission passes the project's JP-CLINS validator (`jp::validate_submission`),
//! which is derived from the computable profiles independently of this crate.

use synth::Generator;

#[test]
fn every_submission_passes_the_jp_clins_validator() {
    let generator = Generator::new(4);
    let mut failures = Vec::new();
    for person in generator.persons().take(200) {
        for submission in &person.submissions {
            if let Err(issues) = jp::validate_submission(&submission.bundle) {
                failures.push(format!(
                    "person {} {:?}: {issues:?}",
                    person.number, submission.kind
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
