//! The live log: durable appends with receipts, group commit, failure as an error (the server's
//! 503), reopening, reads for access histories, and proofs checked as an outside party would.

use std::sync::Arc;
use std::time::Duration;

use audit::{AuditError, AuditKey, AuditLog, Options, ProofError, merkle, verify};

use crate::{Fixture, record};

#[test]
fn an_append_is_committed_when_it_returns() {
    let fixture = Fixture::new();
    let log = fixture.open();
    assert_eq!(log.tree_head(), None);
    let receipt = log.append_blocking(&record(0)).unwrap();
    assert_eq!(receipt.seq, 0);
    assert!(receipt.tree_head.verify(log.public_key()));

    // Another connection, as after a crash, sees the entry and its head.
    let other = rusqlite::Connection::open(&fixture.path).unwrap();
    let (entries, heads): (i64, i64) = other
        .query_row(
            "SELECT (SELECT count(*) FROM entry), (SELECT count(*) FROM tree_head)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((entries, heads), (1, 1));
    let bytes: Vec<u8> = other
        .query_row("SELECT bytes FROM entry WHERE seq = 0", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(bytes, record(0).to_canonical_bytes().unwrap());
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(log.tree_head(), Some(receipt.tree_head));
}

#[test]
fn concurrent_appends_share_transactions_and_heads() {
    let fixture = Fixture::new();
    let log = Arc::new(fixture.open());
    // Hold the write lock so that every append queues behind the first batch.
    let blocker = rusqlite::Connection::open(&fixture.path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let receipts = runtime.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move { log.append(&record(i)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        blocker.execute_batch("COMMIT").unwrap();
        let mut receipts = Vec::new();
        for task in tasks {
            receipts.push(task.await.unwrap().unwrap());
        }
        receipts
    });
    let stats = log.stats();
    assert_eq!(stats.appends, 32);
    // The first batch took what had arrived when the writer woke; everything else waited
    // behind the lock and went in one more transaction.
    assert!(stats.batches <= 2, "{stats:?}");
    let mut seqs: Vec<u64> = receipts.iter().map(|receipt| receipt.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..32).collect::<Vec<_>>());
    for receipt in &receipts {
        assert!(receipt.tree_head.tree_size > receipt.seq);
        assert!(receipt.tree_head.verify(log.public_key()));
        let entry = log.entry(receipt.seq).unwrap().unwrap();
        log.inclusion_proof_at(receipt.seq, receipt.tree_head.tree_size)
            .unwrap()
            .verify(&entry.leaf_hash, log.public_key())
            .unwrap();
    }
    let public_key = log.public_key().clone();
    drop(log);
    let report = verify(&fixture.path, &public_key).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 32);
    assert_eq!(report.tree_heads, stats.batches);
}

#[test]
fn several_records_appended_at_once_share_commits_and_keep_their_order() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let blocker = rusqlite::Connection::open(&fixture.path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records: Vec<_> = (0..3).map(record).collect();
    let receipts = runtime.block_on(async {
        let appending = log.append_all(&records);
        tokio::pin!(appending);
        // All three are queued while the writer waits for the lock.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut appending)
                .await
                .is_err()
        );
        blocker.execute_batch("COMMIT").unwrap();
        appending.await.unwrap()
    });
    assert_eq!(
        receipts
            .iter()
            .map(|receipt| receipt.seq)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // The writer may have taken the first before the others were queued, never one batch each.
    assert!(log.stats().batches <= 2, "{:?}", log.stats());
    for (receipt, expected) in receipts.iter().zip(&records) {
        assert_eq!(&log.entry(receipt.seq).unwrap().unwrap().record, expected);
    }
}

#[test]
fn a_lone_append_never_lingers_and_a_busy_writer_lingers_once() {
    let fixture = Fixture::new();
    let linger = Duration::from_secs(2);
    let log = Arc::new(
        AuditLog::open_with(
            &fixture.path,
            fixture.key(),
            Options {
                linger,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let started = std::time::Instant::now();
    log.append_blocking(&record(0)).unwrap();
    assert!(started.elapsed() < linger, "{:?}", started.elapsed());

    // Two appends waiting when the writer wakes: it waits for a third that comes meanwhile and
    // commits all three together.
    let blocker = rusqlite::Connection::open(&fixture.path).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let before = log.stats().batches;
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        // The writer takes the first, then blocks on the lock while two more queue.
        let first = tokio::spawn({
            let log = Arc::clone(&log);
            async move { log.append(&record(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting: Vec<_> = (2..4)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move { log.append(&record(i)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        blocker.execute_batch("COMMIT").unwrap();
        first.await.unwrap().unwrap();
        // The writer found two waiting after its first batch: it lingers, so this one joins them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let late = log.append(&record(4)).await.unwrap();
        for task in waiting {
            let receipt = task.await.unwrap().unwrap();
            assert_eq!(receipt.tree_head, late.tree_head, "one batch");
        }
        assert_eq!(log.stats().batches - before, 2);
    });
}

#[test]
fn committed_entries_are_copied_into_the_database_file_in_the_background() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let size = || std::fs::metadata(&fixture.path).unwrap().len();
    let empty = size();
    // Far fewer WAL pages than SQLite's automatic checkpoint would wait for.
    for i in 0..50 {
        log.append_blocking(&record(i)).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() <= empty {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint copied the WAL back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let public_key = log.public_key().clone();
    log.close();
    assert!(verify(&fixture.path, &public_key).unwrap().is_intact());
}

#[test]
fn closing_the_log_leaves_no_wal_behind() {
    let fixture = Fixture::new();
    let log = fixture.open();
    for i in 0..20 {
        log.append_blocking(&record(i)).unwrap();
    }
    // Reads leave idle read-only connections in the pool.
    assert_eq!(log.entries(0, 5).unwrap().len(), 5);
    log.close();
    let mut wal = fixture.path.clone().into_os_string();
    wal.push("-wal");
    assert!(
        !std::path::Path::new(&wal).exists(),
        "the WAL was left beside the log"
    );
}

#[test]
fn a_failed_commit_is_an_error_for_every_caller_and_the_log_recovers() {
    let fixture = Fixture::new();
    let log = AuditLog::open_with(
        &fixture.path,
        fixture.key(),
        Options {
            busy_timeout: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .unwrap();
    log.append_blocking(&record(0)).unwrap();

    // Another writer holds the lock beyond the busy timeout: the append fails, as the server's
    // request must (503, no data).
    let blocker = rusqlite::Connection::open(&fixture.path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = log.append_blocking(&record(1)).unwrap_err();
    assert!(matches!(error, AuditError::Storage(_)), "{error:?}");
    assert_eq!(error.to_string(), "the audit store is unavailable");
    blocker.execute_batch("COMMIT").unwrap();

    // Nothing of the failed batch was written; the next append takes the next number.
    let receipt = log.append_blocking(&record(2)).unwrap();
    assert_eq!(receipt.seq, 1);
    assert_eq!(log.stats().failed_batches, 1);
    assert_eq!(log.entry(1).unwrap().unwrap().record, record(2));
    let public_key = log.public_key().clone();
    log.close();
    assert!(verify(&fixture.path, &public_key).unwrap().is_intact());
}

#[test]
fn invalid_records_are_refused_before_they_are_queued() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let mut bad = record(0);
    bad.patient = Some("not/a/fhir/id".to_owned());
    assert!(matches!(
        log.append_blocking(&bad),
        Err(AuditError::InvalidRecord(_))
    ));
    assert_eq!(log.stats().appends, 0);
    log.close();
}

#[test]
fn reopening_continues_the_log_and_refuses_another_key() {
    let fixture = Fixture::with_sequential_entries(5);
    let log = fixture.open();
    assert_eq!(log.tree_head().unwrap().tree_size, 5);
    assert_eq!(log.append_blocking(&record(5)).unwrap().seq, 5);
    let public_key = log.public_key().clone();
    log.close();
    assert!(verify(&fixture.path, &public_key).unwrap().is_intact());

    let error = AuditLog::open(&fixture.path, AuditKey::generate().unwrap()).unwrap_err();
    assert!(matches!(error, AuditError::Inconsistent(_)), "{error:?}");
    assert!(error.to_string().contains("created with key"));
}

#[test]
fn opening_refuses_another_database() {
    let fixture = Fixture::new();
    rusqlite::Connection::open(&fixture.path)
        .unwrap()
        .execute_batch("CREATE TABLE resource (id TEXT)")
        .unwrap();
    let error = AuditLog::open(&fixture.path, fixture.key()).unwrap_err();
    assert!(error.to_string().contains("not an audit log"), "{error}");
    let tables: i64 = rusqlite::Connection::open(&fixture.path)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn opening_refuses_a_log_whose_tail_was_cut() {
    let fixture = Fixture::with_sequential_entries(5);
    crate::attacker_connection(&fixture.path)
        .execute_batch("DELETE FROM entry WHERE seq = 4")
        .unwrap();
    let error = AuditLog::open(&fixture.path, fixture.key()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("covers 5 entries but the log ends after 4"),
        "{error}"
    );
}

#[test]
fn the_append_only_triggers_refuse_updates_and_deletes() {
    let fixture = Fixture::with_sequential_entries(2);
    let connection = rusqlite::Connection::open(&fixture.path).unwrap();
    for statement in [
        "UPDATE entry SET bytes = x'00' WHERE seq = 0",
        "DELETE FROM entry WHERE seq = 1",
        "UPDATE tree_head SET size = 9",
        "DELETE FROM tree_head",
        "DELETE FROM entry_patient",
    ] {
        let error = connection.execute_batch(statement).unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}");
    }
}

#[test]
fn entries_and_patient_histories_read_back_newest_first() {
    let fixture = Fixture::with_sequential_entries(20);
    let log = fixture.open();
    let all = log.entries(0, 100).unwrap();
    assert_eq!(all.len(), 20);
    for (i, entry) in all.iter().enumerate() {
        assert_eq!(entry.seq, i as u64);
        assert_eq!(entry.record, record(i as u64));
        assert_eq!(
            entry.leaf_hash,
            merkle::leaf_hash(&record(i as u64).to_canonical_bytes().unwrap())
        );
    }
    assert_eq!(log.entries(18, 5).unwrap().len(), 2);
    assert_eq!(log.entry(20).unwrap(), None);

    let expected: Vec<u64> = (0..20u64)
        .rev()
        .filter(|i| record(*i).patient.as_deref() == Some("patient-1"))
        .collect();
    let first_page = log.patient_history("patient-1", None, 3).unwrap();
    let second_page = log
        .patient_history("patient-1", Some(first_page.last().unwrap().seq), 100)
        .unwrap();
    let seen: Vec<u64> = first_page
        .iter()
        .chain(&second_page)
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(seen, expected);
    assert!(
        log.patient_history("patient-9", None, 10)
            .unwrap()
            .is_empty()
    );

    let event = first_page[0]
        .record
        .to_audit_event(&first_page[0].seq.to_string());
    assert_eq!(event["id"], first_page[0].seq.to_string());
    assert_eq!(event["entity"][1]["what"]["reference"], "Patient/patient-1");
}

#[test]
fn proofs_from_a_live_log_verify_against_signed_heads() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let public_key = log.public_key().clone();
    let mut heads = Vec::new();
    for i in 0..37 {
        heads.push(log.append_blocking(&record(i)).unwrap().tree_head);
    }
    let latest = log.tree_head().unwrap();
    assert_eq!(latest.tree_size, 37);

    for seq in 0..37 {
        let leaf_hash = log.entry(seq).unwrap().unwrap().leaf_hash;
        let proof = log.inclusion_proof(seq).unwrap();
        assert_eq!(proof.tree_head, latest);
        proof.verify(&leaf_hash, &public_key).unwrap();
        // Against the first head that covered the entry, as a receipt holder would check.
        let at_receipt = log.inclusion_proof_at(seq, seq + 1).unwrap();
        assert_eq!(at_receipt.tree_head, heads[seq as usize]);
        at_receipt.verify(&leaf_hash, &public_key).unwrap();
        // Another entry's leaf does not fit the proof.
        let other = log.entry((seq + 1) % 37).unwrap().unwrap().leaf_hash;
        assert_eq!(
            proof.verify(&other, &public_key),
            Err(ProofError::RootMismatch)
        );
    }
    for old_size in 1..=37 {
        let old_head = &heads[old_size as usize - 1];
        let proof = log.consistency_proof(old_size).unwrap();
        proof.verify(old_head, &public_key).unwrap();
        for new_size in old_size..=37 {
            log.consistency_proof_between(old_size, new_size)
                .unwrap()
                .verify(old_head, &public_key)
                .unwrap();
        }
    }
    // A head from another key is refused, and so are sizes the log does not have.
    let stranger = AuditKey::generate().unwrap();
    let foreign = audit::SignedTreeHead::sign(&stranger, 5, heads[4].root_hash, heads[4].timestamp);
    assert_eq!(
        log.consistency_proof(5)
            .unwrap()
            .verify(&foreign, &public_key),
        Err(ProofError::BadSignature)
    );
    assert!(matches!(
        log.inclusion_proof(37),
        Err(AuditError::OutOfRange)
    ));
    assert!(matches!(
        log.inclusion_proof_at(3, 99),
        Err(AuditError::OutOfRange)
    ));
    assert!(matches!(
        log.consistency_proof(38),
        Err(AuditError::OutOfRange)
    ));
    // Proofs travel as JSON.
    let proof = log.inclusion_proof(7).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    let back: audit::InclusionProof = serde_json::from_str(&json).unwrap();
    assert_eq!(back, proof);
}

#[test]
fn an_empty_log_has_no_head_and_verifies() {
    let fixture = Fixture::new();
    let log = fixture.open();
    assert!(matches!(
        log.inclusion_proof(0),
        Err(AuditError::OutOfRange)
    ));
    let public_key = log.public_key().clone();
    log.close();
    let report = verify(&fixture.path, &public_key).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.entries, 0);
    assert_eq!(report.root, merkle::empty_root());
    assert!(verify(fixture.directory.path().join("missing.sqlite"), &public_key).is_err());
}
