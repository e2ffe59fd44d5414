//! The consent decision kept across requests: what it is decided from (the index's periods) and
//! when it is looked up again (a Consent write by anyone, through any store on the database).

use std::sync::Arc;

use serde_json::{Value, json};
use store::{Store, Timestamp};

use super::{Period, patient_of, patient_of_json};
use crate::{App, Settings};

const DAY: i64 = 86_400_000_000;

/// 2025-11-25T00:00:00Z in microseconds.
const NOV_25: i64 = 1_764_028_800_000_000;

fn periods_of(period: serde_json::Value) -> Option<Period> {
    let consent = json!({
        "resourceType": "Consent",
        "status": "active",
        "provision": {"period": period}
    });
    Period::of(&search::Registry::r4().extract("Consent", &consent))
}

#[test]
fn a_period_covers_its_first_and_last_microsecond_and_nothing_outside() {
    let period = periods_of(json!({"start": "2025-11-25", "end": "2025-11-26"})).expect("period");
    assert!(!period.covers(Timestamp(NOV_25 - 1)));
    assert!(period.covers(Timestamp(NOV_25)));
    // A date end covers its whole day.
    assert!(period.covers(Timestamp(NOV_25 + 2 * DAY - 1)));
    assert!(!period.covers(Timestamp(NOV_25 + 2 * DAY)));
}

#[test]
fn an_open_end_never_ends_and_no_period_is_never_in_force() {
    let open = periods_of(json!({"start": "2025-11-25T09:00:00+09:00"})).expect("period");
    assert!(open.covers(Timestamp(NOV_25 + 100_000 * DAY)));
    assert!(!open.covers(Timestamp(NOV_25 - 1)));
    let consent = json!({"resourceType": "Consent", "status": "active"});
    assert_eq!(
        Period::of(&search::Registry::r4().extract("Consent", &consent)),
        None
    );
}

/// Two stores on one database file, as the server and an admin command in another process.
struct TwoProcesses {
    _dir: tempfile::TempDir,
    server: App,
    other: App,
    server_store: Arc<dyn Store>,
}

fn two_processes() -> TwoProcesses {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.db");
    let open = || -> Arc<dyn Store> {
        Arc::new(
            store_sqlite::SqliteStore::open(
                &path,
                store_sqlite::SqliteOptions::default(),
                Arc::new(store::SystemClock),
            )
            .expect("open store"),
        )
    };
    let server_store = open();
    TwoProcesses {
        server: App::new(Arc::clone(&server_store), Settings::default()),
        other: App::new(open(), Settings::default()),
        server_store,
        _dir: dir,
    }
}

impl TwoProcesses {
    /// The server's store's count of Consent writes.
    async fn consent_writes(&self) -> Option<u64> {
        self.server_store
            .write_generation("Consent")
            .await
            .expect("count")
    }
}

async fn patient(app: &App) -> String {
    app.for_viewer(crate::Viewer::Service)
        .create(
            "Patient",
            json!({"resourceType": "Patient", "name": [{"family": "Test"}]}),
            None,
        )
        .await
        .expect("patient")
        .resource
        .id
}

/// Decides as a fresh request would (the per-request decisions start empty).
async fn decided(app: &App, patient: &str, organisation: &str, now: Timestamp) -> bool {
    app.for_viewer(crate::Viewer::Service)
        .consented(patient, organisation, now)
        .await
        .expect("decision")
}

#[tokio::test]
async fn a_kept_decision_follows_the_clock_and_every_consent_write_from_any_process() {
    let processes = two_processes();
    let (server, other) = (&processes.server, &processes.other);
    let person = patient(server).await;
    let now = crate::now();
    assert!(!decided(server, &person, "org-a", now).await);

    // Granted by another process: the server's next decision sees it.
    let consent = other
        .grant_consent(&person, "org-a", now, Timestamp(now.0 + DAY))
        .await
        .expect("grant");
    assert!(decided(server, &person, "org-a", now).await);
    // Kept: the same count of Consent writes, so no search; the period is still compared with the
    // time of each decision.
    let generation = processes.consent_writes().await;
    assert!(decided(server, &person, "org-a", Timestamp(now.0 + DAY / 2)).await);
    assert!(!decided(server, &person, "org-a", Timestamp(now.0 + 2 * DAY)).await);
    assert!(!decided(server, &person, "org-b", now).await);
    assert_eq!(processes.consent_writes().await, generation);

    // Revoked by the other process: the very next decision is without it.
    other.revoke_consent(&consent.id).await.expect("revoke");
    assert!(!decided(server, &person, "org-a", now).await);

    // Writes of other types leave the count (and what was kept) alone.
    patient(other).await;
    assert_ne!(processes.consent_writes().await, generation);
    let after_revoke = processes.consent_writes().await;
    patient(other).await;
    assert_eq!(processes.consent_writes().await, after_revoke);
}

#[test]
fn the_patient_of_json_text_is_the_patient_of_its_body() {
    let cases = [
        (
            "Observation",
            r#"{"subject":{"reference":"Patient/p1"},"valueString":"x"}"#,
        ),
        (
            "AllergyIntolerance",
            r#"{"patient":{"reference":"Patient/p2"}}"#,
        ),
        ("Coverage", r#"{"beneficiary":{"reference":"Patient/p3"}}"#),
        // A subject that is not a patient, then a patient.
        (
            "Observation",
            r#"{"subject":{"reference":"Group/g"},"patient":{"reference":"Patient/p4"}}"#,
        ),
        ("Observation", r#"{"subject":{"display":"no reference"}}"#),
        ("Observation", r#"{"subject":{"reference":"Group/g"}}"#),
        // Not a Reference (Contract.subject is a list): the whole body decides.
        (
            "Contract",
            r#"{"subject":[{"reference":"Patient/p5"}],"patient":{"reference":"Patient/p6"}}"#,
        ),
        ("Basic", r#"{"code":{"text":"x"}}"#),
        ("Patient", r#"{"id":"self"}"#),
    ];
    for (resource_type, json) in cases {
        let body: Value = serde_json::from_str(json).expect("json");
        assert_eq!(
            patient_of_json(resource_type, "self", json),
            patient_of(resource_type, "self", &body),
            "{json}"
        );
    }
    assert_eq!(
        patient_of_json(
            "Observation",
            "o",
            r#"{"subject":{"reference":"Patient/p1"}}"#
        )
        .as_deref(),
        Some("p1")
    );
}
