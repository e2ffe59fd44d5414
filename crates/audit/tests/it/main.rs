//! Integration tests of the audit log on real SQLite files: appends, group commit, failure,
//! reads, proofs from a live log, and tampering with the file behind the log's back.

mod log;
mod tamper;

use std::path::{Path, PathBuf};

use audit::{
    Action, Agent, AuditKey, AuditLog, AuditRecord, Decision, Interaction, OrganisationId, Outcome,
    PurposeOfUse, UtcTime, query_parameter_names,
};

/// A record for request `i` about patient `patient-{i % 3}` (every fifth has no patient).
pub(crate) fn record(i: u64) -> AuditRecord {
    AuditRecord {
        recorded: UtcTime::from_unix_micros(1_795_512_600_000_000 + i as i64 * 1_000).unwrap(),
        request_id: format!("request-{i:06}"),
        agent: Agent {
            user_id: format!("user-{}", i % 7),
            display_name: "佐藤 花子".to_owned(),
            role: "doctor".to_owned(),
            organisation: Some(OrganisationId::institution_number("1312345678")),
            client_id: Some("emr-1".to_owned()),
        },
        purpose_of_use: PurposeOfUse::Treatment,
        patient: (i % 5 != 4).then(|| format!("patient-{}", i % 3)),
        action: Action {
            interaction: Interaction::SearchType,
            operation: None,
            resource_type: Some("Observation".to_owned()),
            resource_id: None,
            query: query_parameter_names("patient=x&code=y"),
        },
        outcome: Outcome {
            decision: if i % 4 == 3 {
                Decision::Denied
            } else {
                Decision::Permitted
            },
            http_status: if i % 4 == 3 { 404 } else { 200 },
        },
        emergency: i % 11 == 10,
    }
}

/// A temporary directory with a key and the path of a log inside it.
pub(crate) struct Fixture {
    pub(crate) directory: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) key_path: PathBuf,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.sqlite");
        let key_path = directory.path().join("audit.key");
        AuditKey::generate_to_file(&key_path).unwrap();
        Fixture {
            directory,
            path,
            key_path,
        }
    }

    pub(crate) fn key(&self) -> AuditKey {
        AuditKey::load(&self.key_path).unwrap()
    }

    pub(crate) fn open(&self) -> AuditLog {
        AuditLog::open(&self.path, self.key()).unwrap()
    }

    /// A log of `count` entries appended one at a time (one batch and one head per entry).
    pub(crate) fn with_sequential_entries(count: u64) -> Fixture {
        let fixture = Fixture::new();
        let log = fixture.open();
        for i in 0..count {
            let receipt = log.append_blocking(&record(i)).unwrap();
            assert_eq!(receipt.seq, i);
            assert_eq!(receipt.tree_head.tree_size, i + 1);
        }
        log.close();
        fixture
    }
}

/// A plain connection to the log file with the append-only triggers dropped, as an attacker
/// with write access to the file would have.
pub(crate) fn attacker_connection(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    let triggers: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(triggers.len(), 8, "every table is guarded");
    for trigger in triggers {
        connection
            .execute_batch(&format!("DROP TRIGGER {trigger}"))
            .unwrap();
    }
    connection
}
