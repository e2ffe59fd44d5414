//! What the driver sends: the request classes (each with the statuses that count as the expected
//! answer), the operations the mix draws (an operation is one request, or for an emergency the
//! opening of the window and the read under it), and their default weights.

use std::fmt;

/// One kind of request, reported on its own. Names are stable (JSON field values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A facility submits the first JP-CLINS Bundle of a person the server has never seen.
    SubmitNew,
    /// A facility submits again a Bundle it submitted before (same identifier: replaces it).
    Resubmit,
    /// A clinician of another hospital or a clinic, with the patient's consent: `$summary`.
    ClinicianSummary,
    /// … `Observation?patient=X&category=laboratory&_sort=-date`.
    ClinicianLabs,
    /// … `Patient/X` (read by id).
    ClinicianRead,
    /// A pharmacist with consent: `MedicationRequest?patient=X`.
    PharmacistMedications,
    /// … `AllergyIntolerance?patient=X`.
    PharmacistAllergies,
    /// A patient reads their own `Patient`.
    PatientRead,
    /// … their own `$summary`.
    PatientSummary,
    /// … their access history, `AuditEvent?patient=<own>`.
    PatientHistory,
    /// A hospital doctor holding the emergency privilege opens the window
    /// (`$emergency-access` with a reason) on a patient without consent.
    EmergencyAccess,
    /// … and reads `$emergency-summary` under it.
    EmergencySummary,
    /// A clinic without consent reads `Patient/X`: the answer is 404, as for nobody.
    DeniedRead,
    /// … searches `Observation?patient=X`: an empty searchset.
    DeniedSearch,
    /// `POST /auth/token`, `client_credentials` with a signed assertion (a facility system).
    TokenMember,
    /// `POST /auth/challenge` before a patient's login.
    TokenChallenge,
    /// `POST /auth/token`, a patient's password and card signature.
    TokenPatient,
}

impl Class {
    pub const ALL: [Class; 17] = [
        Class::SubmitNew,
        Class::Resubmit,
        Class::ClinicianSummary,
        Class::ClinicianLabs,
        Class::ClinicianRead,
        Class::PharmacistMedications,
        Class::PharmacistAllergies,
        Class::PatientRead,
        Class::PatientSummary,
        Class::PatientHistory,
        Class::EmergencyAccess,
        Class::EmergencySummary,
        Class::DeniedRead,
        Class::DeniedSearch,
        Class::TokenMember,
        Class::TokenChallenge,
        Class::TokenPatient,
    ];

    /// The stable name (JSON, `--mix`, the chart).
    pub fn name(self) -> &'static str {
        match self {
            Class::SubmitNew => "submit_new",
            Class::Resubmit => "resubmit",
            Class::ClinicianSummary => "clinician_summary",
            Class::ClinicianLabs => "clinician_labs",
            Class::ClinicianRead => "clinician_read",
            Class::PharmacistMedications => "pharmacist_medications",
            Class::PharmacistAllergies => "pharmacist_allergies",
            Class::PatientRead => "patient_read",
            Class::PatientSummary => "patient_summary",
            Class::PatientHistory => "patient_history",
            Class::EmergencyAccess => "emergency_access",
            Class::EmergencySummary => "emergency_summary",
            Class::DeniedRead => "denied_read",
            Class::DeniedSearch => "denied_search",
            Class::TokenMember => "token_member",
            Class::TokenChallenge => "token_challenge",
            Class::TokenPatient => "token_patient",
        }
    }

    /// The statuses that count as the expected answer; anything else is an error. (A denied
    /// search must also come back empty: see `run.rs`.)
    pub fn expected(self) -> &'static [u16] {
        match self {
            // 201 for a new Bundle identifier, 200 when it replaces one.
            Class::SubmitNew | Class::Resubmit => &[200, 201],
            Class::DeniedRead => &[404],
            _ => &[200],
        }
    }

    /// Whether this is a token request (obtained when needed, not drawn by the mix).
    pub fn is_token(self) -> bool {
        matches!(
            self,
            Class::TokenMember | Class::TokenChallenge | Class::TokenPatient
        )
    }

    /// The position in [`Class::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the mix draws: one operation of one simulated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SubmitNew,
    Resubmit,
    ClinicianSummary,
    ClinicianLabs,
    ClinicianRead,
    PharmacistMedications,
    PharmacistAllergies,
    PatientRead,
    PatientSummary,
    PatientHistory,
    /// `$emergency-access`, then `$emergency-summary` when it was granted.
    Emergency,
    DeniedRead,
    DeniedSearch,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::SubmitNew,
        Operation::Resubmit,
        Operation::ClinicianSummary,
        Operation::ClinicianLabs,
        Operation::ClinicianRead,
        Operation::PharmacistMedications,
        Operation::PharmacistAllergies,
        Operation::PatientRead,
        Operation::PatientSummary,
        Operation::PatientHistory,
        Operation::Emergency,
        Operation::DeniedRead,
        Operation::DeniedSearch,
    ];

    /// The name `--mix` uses (the class name of its first request; `emergency` for the pair).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Emergency => "emergency",
            other => other.first_class().name(),
        }
    }

    /// The class of the operation's first request (the one its scheduled time applies to).
    pub fn first_class(self) -> Class {
        match self {
            Operation::SubmitNew => Class::SubmitNew,
            Operation::Resubmit => Class::Resubmit,
            Operation::ClinicianSummary => Class::ClinicianSummary,
            Operation::ClinicianLabs => Class::ClinicianLabs,
            Operation::ClinicianRead => Class::ClinicianRead,
            Operation::PharmacistMedications => Class::PharmacistMedications,
            Operation::PharmacistAllergies => Class::PharmacistAllergies,
            Operation::PatientRead => Class::PatientRead,
            Operation::PatientSummary => Class::PatientSummary,
            Operation::PatientHistory => Class::PatientHistory,
            Operation::Emergency => Class::EmergencyAccess,
            Operation::DeniedRead => Class::DeniedRead,
            Operation::DeniedSearch => Class::DeniedSearch,
        }
    }

    /// The default weight: reads by clinicians and pharmacists with consent dominate, facilities
    /// submit steadily, patients look at their record now and then, emergencies and denied
    /// attempts are rare.
    pub fn default_weight(self) -> u32 {
        match self {
            Operation::SubmitNew => 4,
            Operation::Resubmit => 2,
            Operation::ClinicianSummary => 12,
            Operation::ClinicianLabs => 16,
            Operation::ClinicianRead => 12,
            Operation::PharmacistMedications => 10,
            Operation::PharmacistAllergies => 8,
            Operation::PatientRead => 5,
            Operation::PatientSummary => 5,
            Operation::PatientHistory => 4,
            Operation::Emergency => 2,
            Operation::DeniedRead => 3,
            Operation::DeniedSearch => 2,
        }
    }
}

/// Operations drawn without replacement: a deck holding each operation as many times as its
/// weight, shuffled again whenever it runs out, so that every run of `sum(weights)` draws follows
/// the mix exactly (independent draws would leave rare operations out of a short run by chance).
#[derive(Debug, Clone)]
pub struct Deck {
    cards: Vec<Operation>,
    next: usize,
}

impl Deck {
    /// The next operation.
    pub fn draw(&mut self, random: &mut synth::rng::Rng) -> Operation {
        if self.next == 0 {
            // Fisher–Yates.
            for last in (1..self.cards.len()).rev() {
                let other = random.below(last + 1);
                self.cards.swap(last, other);
            }
        }
        let operation = self.cards[self.next];
        self.next = (self.next + 1) % self.cards.len();
        operation
    }
}

/// The weights of the operations, in [`Operation::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<u32>,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            weights: Operation::ALL
                .iter()
                .map(|operation| operation.default_weight())
                .collect(),
        }
    }
}

impl Mix {
    /// The defaults with `spec`'s changes: `name=weight` pairs separated by commas
    /// (`clinician_labs=30,emergency=0`).
    ///
    /// # Errors
    /// An unknown name, a weight that is not a number, or every weight zero.
    pub fn parse(spec: &str) -> anyhow::Result<Mix> {
        let mut mix = Mix::default();
        for pair in spec
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (name, weight) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--mix takes name=weight pairs, got {pair:?}"))?;
            let position = Operation::ALL
                .iter()
                .position(|operation| operation.name() == name.trim())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--mix: no operation {name:?}; the operations are {}",
                        Operation::ALL.map(Operation::name).join(", ")
                    )
                })?;
            mix.weights[position] = weight.trim().parse().map_err(|_| {
                anyhow::anyhow!("--mix: the weight of {name} is not a whole number")
            })?;
        }
        anyhow::ensure!(
            mix.weights.iter().any(|weight| *weight > 0),
            "--mix: every weight is zero"
        );
        Ok(mix)
    }

    /// The weight of `operation`.
    pub fn weight(&self, operation: Operation) -> u32 {
        Operation::ALL
            .iter()
            .position(|candidate| *candidate == operation)
            .map_or(0, |position| self.weights[position])
    }

    /// A deck of this mix: every operation as many times as its weight.
    pub fn deck(&self) -> Deck {
        let cards = Operation::ALL
            .iter()
            .zip(&self.weights)
            .flat_map(|(operation, weight)| std::iter::repeat_n(*operation, *weight as usize))
            .collect();
        Deck { cards, next: 0 }
    }

    /// `(name, weight)` of every operation, for the report.
    pub fn entries(&self) -> Vec<(&'static str, u32)> {
        Operation::ALL
            .iter()
            .zip(&self.weights)
            .map(|(operation, weight)| (operation.name(), *weight))
            .collect()
    }

    /// The classes this mix sends (with the token classes, which any mix needs).
    pub fn classes(&self) -> Vec<Class> {
        let mut classes: Vec<Class> = Vec::new();
        for operation in Operation::ALL {
            if self.weight(operation) == 0 {
                continue;
            }
            classes.push(operation.first_class());
            if operation == Operation::Emergency {
                classes.push(Class::EmergencySummary);
            }
            if matches!(
                operation,
                Operation::PatientRead | Operation::PatientSummary | Operation::PatientHistory
            ) {
                classes.extend([Class::TokenChallenge, Class::TokenPatient]);
            } else {
                classes.push(Class::TokenMember);
            }
        }
        classes.sort();
        classes.dedup();
        classes
    }
}

#[cfg(test)]
mod tests;
