//! Alerts for the privacy officer: an emergency access was opened, a user read an unusual number
//! of patients. An alert names the organisation, the user and what happened, and (for emergency
//! access) the review to look at; never a patient, never clinical content.
//!
//! [`FileAlerts`] appends one JSON object per line to a file the privacy officer's tooling
//! watches (and logs a warning); the open reviews themselves are in the store
//! (`tsunagu review list`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// An emergency window was opened; `review` is the review Task's id.
    EmergencyAccess {
        review: String,
        organisation: String,
        user: String,
    },
    /// `user` read `patients` different patients within `window_seconds`.
    UnusualAccess {
        organisation: String,
        user: String,
        patients: usize,
        window_seconds: u64,
    },
}

impl Alert {
    /// The alert as one JSON object (what [`FileAlerts`] writes).
    pub fn to_json(&self, at: &str) -> Value {
        match self {
            Alert::EmergencyAccess {
                review,
                organisation,
                user,
            } => json!({
                "at": at,
                "kind": "emergency-access",
                "organisation": organisation,
                "user": user,
                "review": review,
            }),
            Alert::UnusualAccess {
                organisation,
                user,
                patients,
                window_seconds,
            } => json!({
                "at": at,
                "kind": "unusual-access",
                "organisation": organisation,
                "user": user,
                "distinct_patients": patients,
                "window_seconds": window_seconds,
            }),
        }
    }
}

/// Where alerts go.
pub trait AlertSink: Send + Sync + std::fmt::Debug {
    /// Raises an alert. Must not fail the request: a sink that cannot deliver logs an error.
    fn raise(&self, alert: &Alert);
}

/// Appends alerts to a JSON-lines file and logs each as a warning.
#[derive(Debug)]
pub struct FileAlerts {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileAlerts {
    /// Alerts appended to `path` (created when missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileAlerts {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }
}

impl AlertSink for FileAlerts {
    fn raise(&self, alert: &Alert) {
        let line = alert.to_json(&app::now().to_fhir_instant()).to_string();
        tracing::warn!(target: "tsunagu::alert", alert = %line, "alert for the privacy officer");
        let _guard = self.lock.lock();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(error) = written {
            tracing::error!(%error, "the alert could not be written to the alerts file");
        }
    }
}
