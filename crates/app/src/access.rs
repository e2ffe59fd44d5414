//! What one request touched, for its audit entries: every patient whose data the façade showed
//! (permitted) or withheld (denied) while answering, and whether an emergency window was used.
//!
//! The façade records here at the points where it decides (`App::permits`, the narrowing of
//! searches, the summaries, consents, submissions, emergency access); the server reads the ledger
//! after the handler ran and writes one audit entry per patient before the response leaves
//! (docs/security.md). Only patient ids are kept, never content.

use std::collections::BTreeMap;
use std::sync::Mutex;

use store::StoredResource;

use crate::App;

/// At most this many distinct patients are kept per request; a larger answer is recorded as the
/// first ones plus [`Accesses::truncated`]. Pages are at most 1,000 entries, so this only bounds
/// unusual requests.
const MAX_PATIENTS: usize = 10_000;

/// What one façade (one request) touched.
#[derive(Debug, Default)]
pub(crate) struct AccessLedger {
    state: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
struct LedgerState {
    /// Patient id → whether anything of theirs was shown (true wins over a denial).
    patients: BTreeMap<String, bool>,
    emergency: bool,
    truncated: bool,
}

/// The patients a request touched, in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accesses {
    /// `(patient id, permitted)`: permitted when some of their data was shown, denied when it was
    /// asked for and withheld.
    pub patients: Vec<(String, bool)>,
    /// Whether the answer used an emergency-access window.
    pub emergency: bool,
    /// Whether more patients were touched than were kept.
    pub truncated: bool,
}

impl AccessLedger {
    pub(crate) fn record(&self, patient: &str, permitted: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(seen) = state.patients.get_mut(patient) {
            *seen |= permitted;
        } else if state.patients.len() < MAX_PATIENTS {
            state.patients.insert(patient.to_owned(), permitted);
        } else {
            state.truncated = true;
        }
    }

    pub(crate) fn emergency(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.emergency = true;
        }
    }

    fn snapshot(&self) -> Accesses {
        self.state
            .lock()
            .map(|state| Accesses {
                patients: state
                    .patients
                    .iter()
                    .map(|(patient, permitted)| (patient.clone(), *permitted))
                    .collect(),
                emergency: state.emergency,
                truncated: state.truncated,
            })
            .unwrap_or_default()
    }
}

impl App {
    /// The patients this façade touched so far (one façade serves one request).
    pub fn accesses(&self) -> Accesses {
        self.ledger.snapshot()
    }

    /// Records that `patient`'s data was shown (`true`) or withheld (`false`).
    pub(crate) fn record_access(&self, patient: &str, permitted: bool) {
        self.ledger.record(patient, permitted);
    }

    /// Records the patients of resources shown to an identified reader (members and patients;
    /// the service's own maintenance and unauthenticated library use are not audited per patient).
    pub(crate) fn record_shown(&self, resources: &[StoredResource]) {
        if !matches!(
            self.viewer,
            crate::Viewer::Member(_) | crate::Viewer::Patient(_)
        ) {
            return;
        }
        for resource in resources {
            if resource.deleted {
                continue;
            }
            if resource.resource_type == "Patient" {
                self.ledger.record(&resource.id, true);
                continue;
            }
            if let Some(patient) = crate::consent::patient_of_json(
                &resource.resource_type,
                &resource.id,
                &resource.json,
            ) {
                self.ledger.record(&patient, true);
            }
        }
    }
}
