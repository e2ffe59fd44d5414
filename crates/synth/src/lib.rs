//! A deterministic Japanese synthetic population, as the JP-CLINS submissions a real deployment of
//! tsunagu would receive, with the ground truth of each person.
//!
//! ```ignore
//! let generator = synth::Generator::new(42);
//! for person in generator.persons().take(100) {
//!     for submission in &person.submissions {
//!         // submission.kind, submission.facility, submission.identifier, submission.bundle (FHIR JSON)
//!     }
//!     // person.truth: diagnoses, allergies, latest labs, current medications, ...
//! }
//! ```
//!
//! A person is a pure function of (seed, person number, [`Options`]): [`Generator::person`] gives
//! any person directly, and two runs with the same seed produce byte-identical output on the same
//! platform. [`write_dataset`] streams a population to a directory (layout in [`output`]).
//!
//! The shapes follow the published JP-CLINS examples and profiles; the code tables are in `data/`
//! with their sources in `data/SOURCES.md`. Everything is fictional: names are common Japanese
//! names drawn by frequency, facilities are named "テスト", identifiers are random but have valid
//! check digits.

pub mod bundles;
pub mod codes;
pub mod date;
pub mod output;
pub mod plan;
pub mod rng;
pub mod tables;
pub mod truth;

pub use bundles::{Submission, SubmissionKind};
pub use date::Date;
pub use output::{DatasetSummary, write_dataset};
pub use truth::GroundTruth;

use crate::rng::Rng;
use crate::tables::Tables;

/// What a generated population depends on besides the seed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The day the population is observed: every generated event happens on or before it, recent
    /// lab results and current prescriptions are recent relative to it. Fixed by default (so a seed
    /// alone fixes the output); set it near today to load data that retention rules keep.
    pub as_of: Date,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            as_of: Date::from_ymd(2026, 10, 1),
        }
    }
}

/// Generates persons of one population.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    options: Options,
    tables: &'static Tables,
}

/// One generated person: the Bundles facilities submit about them, and the ground truth.
#[derive(Debug, Clone)]
pub struct Person {
    pub number: u64,
    pub submissions: Vec<Submission>,
    pub truth: GroundTruth,
}

impl Generator {
    /// A generator of the population fixed by `seed`, observed on the default as-of date.
    pub fn new(seed: u64) -> Self {
        Generator::with_options(seed, Options::default())
    }

    pub fn with_options(seed: u64, options: Options) -> Self {
        Generator {
            seed,
            options,
            tables: Tables::get(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The code tables and the facility table the population is drawn from.
    pub fn tables(&self) -> &'static Tables {
        self.tables
    }

    /// Person `number` (0-based) of the population.
    pub fn person(&self, number: u64) -> Person {
        let as_of = self.options.as_of;
        let plan = plan::plan(self.tables, self.seed, number, as_of);
        let ids = Rng::for_stream(self.seed ^ 0x7572_6E3A_7575_6964, number);
        let submissions = bundles::submissions(self.tables, &plan, ids);
        let truth = truth::ground_truth(self.tables, &plan, &submissions, as_of);
        Person {
            number,
            submissions,
            truth,
        }
    }

    /// Persons 0, 1, 2, … (endless: `take` what you need).
    pub fn persons(&self) -> impl Iterator<Item = Person> + '_ {
        (0u64..).map(|number| self.person(number))
    }
}

#[cfg(test)]
mod tests;
