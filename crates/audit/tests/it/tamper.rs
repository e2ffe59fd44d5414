//! Tampering with the SQLite file directly, as someone with write access to it but without the
//! signing key would: every edit, deletion, insertion and reordering is found by `verify`, with
//! the first bad entry or head named. Where the attacker also recomputes everything unsigned
//! (leaf hashes, tree nodes, the patient index), the signed tree heads still catch it.

use audit::merkle::{self, Frontier};
use audit::{
    AuditKey, AuditRecord, HeadKind, Problem, SignedTreeHead, verify, verify_with_witnesses,
};
use rusqlite::{Connection, params};

use crate::{Fixture, attacker_connection, record};

/// Entries in the tampered logs; each went in its own batch, so each has its own head.
const COUNT: u64 = 12;

fn bytes_of(connection: &Connection, seq: u64) -> Vec<u8> {
    connection
        .query_row(
            "SELECT bytes FROM entry WHERE seq = ?1",
            [seq as i64],
            |row| row.get(0),
        )
        .unwrap()
}

/// The bytes of entry `seq` with a denial turned into a permission, or the user changed: the
/// edits someone hiding an access would make. Still a canonical record.
fn forged_bytes(connection: &Connection, seq: u64) -> Vec<u8> {
    let text = String::from_utf8(bytes_of(connection, seq)).unwrap();
    let forged = text.replacen("\"user_id\":\"user-", "\"user_id\":\"user-x", 1);
    assert_ne!(forged, text);
    AuditRecord::from_canonical_bytes(forged.as_bytes()).unwrap();
    forged.into_bytes()
}

/// Recomputes everything that is not signed: leaf hashes from bytes, the node table and the
/// patient index, in the order of the rows.
fn rebuild_unsigned(connection: &Connection) {
    let rows: Vec<(i64, Vec<u8>)> = connection
        .prepare("SELECT seq, bytes FROM entry ORDER BY seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    connection
        .execute_batch("DELETE FROM node; DELETE FROM entry_patient;")
        .unwrap();
    let mut frontier = Frontier::new();
    for (seq, bytes) in rows {
        let leaf = merkle::leaf_hash(&bytes);
        connection
            .execute(
                "UPDATE entry SET leaf_hash = ?1 WHERE seq = ?2",
                params![leaf.as_bytes(), seq],
            )
            .unwrap();
        let mut completed = Vec::new();
        frontier.push(leaf, |level, index, hash| {
            completed.push((level, index, *hash))
        });
        for (level, index, hash) in completed {
            connection
                .execute(
                    "INSERT INTO node (level, idx, hash) VALUES (?1, ?2, ?3)",
                    params![level, index as i64, hash.as_bytes()],
                )
                .unwrap();
        }
        if let Some(patient) = AuditRecord::from_canonical_bytes(&bytes).unwrap().patient {
            connection
                .execute(
                    "INSERT INTO entry_patient (seq, patient) VALUES (?1, ?2)",
                    params![seq, patient],
                )
                .unwrap();
        }
    }
}

/// Runs `tamper` on a fresh log of [`COUNT`] entries and verifies it.
fn tampered(tamper: impl FnOnce(&Connection)) -> (Fixture, audit::Report) {
    let fixture = Fixture::with_sequential_entries(COUNT);
    tamper(&attacker_connection(&fixture.path));
    let report = verify(&fixture.path, &fixture.key().public_key()).unwrap();
    (fixture, report)
}

#[test]
fn an_untouched_log_is_intact() {
    let (_fixture, report) = tampered(|_| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, COUNT);
    assert_eq!(report.tree_heads, COUNT);
    assert_eq!(report.consistency_proofs, COUNT - 1);
    assert_eq!(report.latest_head.as_ref().unwrap().tree_size, COUNT);
    assert_eq!(report.root, report.latest_head.unwrap().root_hash);
    let leaves: Vec<_> = (0..COUNT)
        .map(|i| merkle::leaf_hash(&record(i).to_canonical_bytes().unwrap()))
        .collect();
    assert_eq!(report.root, merkle::root(&leaves));
}

#[test]
fn editing_an_entrys_bytes_is_detected_at_that_entry() {
    let (_fixture, report) = tampered(|connection| {
        let forged = forged_bytes(connection, 5);
        connection
            .execute("UPDATE entry SET bytes = ?1 WHERE seq = 5", [forged])
            .unwrap();
    });
    assert_eq!(report.problems[0], Problem::LeafHashMismatch { seq: 5 });
    assert_eq!(report.first_bad_entry, Some(5));
    // The recomputed tree no longer matches any signed head from size 6 on.
    assert!(report.problems.contains(&Problem::HeadRootMismatch {
        kind: HeadKind::Stored,
        tree_size: 6,
        unproven_from: 5,
    }));
    assert_eq!(report.first_bad_head, Some(6));
    let text = report.to_string();
    assert!(text.contains("first bad entry: 5"), "{text}");
    assert!(
        !text.contains("user-") && !text.contains("patient-"),
        "{text}"
    );
}

#[test]
fn editing_bytes_with_every_unsigned_hash_recomputed_is_caught_by_the_signed_heads() {
    let (_fixture, report) = tampered(|connection| {
        let forged = forged_bytes(connection, 5);
        connection
            .execute("UPDATE entry SET bytes = ?1 WHERE seq = 5", [forged])
            .unwrap();
        rebuild_unsigned(connection);
    });
    assert_eq!(
        report.problems[0],
        Problem::HeadRootMismatch {
            kind: HeadKind::Stored,
            tree_size: 6,
            unproven_from: 5,
        }
    );
    // Every later head fails too; nothing else looks wrong.
    assert_eq!(report.problems_total, COUNT - 5);
    assert_eq!(report.first_bad_entry, Some(5));
    assert_eq!(report.latest_head.unwrap().tree_size, 5);
}

#[test]
fn editing_only_a_stored_leaf_hash_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute(
                "UPDATE entry SET leaf_hash = ?1 WHERE seq = 7",
                [merkle::leaf_hash(b"forged").as_bytes()],
            )
            .unwrap();
    });
    assert_eq!(report.problems, [Problem::LeafHashMismatch { seq: 7 }]);
    assert_eq!(report.first_bad_entry, Some(7));
}

#[test]
fn deleting_an_entry_is_detected_as_a_gap() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute_batch("DELETE FROM entry WHERE seq = 5")
            .unwrap();
    });
    assert_eq!(
        report.problems[0],
        Problem::MissingEntries { from: 5, to: 6 }
    );
    assert_eq!(report.first_bad_entry, Some(5));
}

#[test]
fn deleting_an_entry_and_renumbering_the_rest_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute_batch(
                "DELETE FROM entry WHERE seq = 5;
                 UPDATE entry SET seq = seq - 1 WHERE seq > 5;",
            )
            .unwrap();
        rebuild_unsigned(connection);
    });
    assert_eq!(
        report.problems[0],
        Problem::HeadRootMismatch {
            kind: HeadKind::Stored,
            tree_size: 6,
            unproven_from: 5,
        }
    );
    assert!(report.problems.contains(&Problem::HeadBeyondLog {
        kind: HeadKind::Stored,
        tree_size: COUNT,
        entries: COUNT - 1,
    }));
    assert_eq!(report.first_bad_entry, Some(5));
}

#[test]
fn deleting_the_last_entry_is_detected_by_its_head() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute_batch("DELETE FROM entry WHERE seq = 11")
            .unwrap();
    });
    assert!(report.problems.contains(&Problem::HeadBeyondLog {
        kind: HeadKind::Stored,
        tree_size: COUNT,
        entries: COUNT - 1,
    }));
    assert_eq!(report.first_bad_entry, Some(COUNT - 1));
}

#[test]
fn cutting_the_tail_with_its_heads_is_found_only_by_a_witnessed_head() {
    let fixture = Fixture::with_sequential_entries(COUNT);
    let public_key = fixture.key().public_key();
    // A witness kept heads of sizes 8 and 12.
    let witnessed: Vec<SignedTreeHead> = {
        let log = fixture.open();
        vec![
            log.consistency_proof_between(1, 8).unwrap().new_head,
            log.tree_head().unwrap(),
        ]
    };
    let connection = attacker_connection(&fixture.path);
    connection
        .execute_batch(
            "DELETE FROM entry WHERE seq >= 10;
             DELETE FROM entry_patient WHERE seq >= 10;
             DELETE FROM tree_head WHERE size > 10;",
        )
        .unwrap();
    rebuild_unsigned(&connection);

    // The file alone is a consistent log of 10 entries: this limit is why heads are published.
    let alone = verify(&fixture.path, &public_key).unwrap();
    assert!(alone.is_intact(), "{alone}");
    assert_eq!(alone.entries, 10);

    let witnessed_report = verify_with_witnesses(&fixture.path, &public_key, &witnessed).unwrap();
    assert_eq!(
        witnessed_report.problems,
        [Problem::HeadBeyondLog {
            kind: HeadKind::Witnessed,
            tree_size: COUNT,
            entries: 10,
        }]
    );
    assert_eq!(witnessed_report.first_bad_entry, Some(10));
    // The witnessed head of size 8 matched the stored one.
    assert_eq!(
        witnessed_report.consistency_proofs,
        alone.consistency_proofs
    );
}

#[test]
fn inserting_an_entry_in_the_middle_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        let forged = forged_bytes(connection, 5);
        connection
            .execute_batch(
                "UPDATE entry SET seq = seq + 1000 WHERE seq >= 5;
                 UPDATE entry SET seq = seq - 999 WHERE seq >= 1000;",
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO entry (seq, bytes, leaf_hash) VALUES (5, ?1, ?2)",
                params![forged, merkle::leaf_hash(&forged).as_bytes()],
            )
            .unwrap();
        rebuild_unsigned(connection);
    });
    assert_eq!(
        report.problems[0],
        Problem::HeadRootMismatch {
            kind: HeadKind::Stored,
            tree_size: 6,
            unproven_from: 5,
        }
    );
    assert_eq!(report.first_bad_entry, Some(5));
    // The log is one entry longer than its last head, which does not match either.
    assert!(report.problems.contains(&Problem::HeadRootMismatch {
        kind: HeadKind::Stored,
        tree_size: COUNT,
        unproven_from: 5,
    }));
}

#[test]
fn appending_an_entry_behind_the_logs_back_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        let bytes = record(99).to_canonical_bytes().unwrap();
        connection
            .execute(
                "INSERT INTO entry (seq, bytes, leaf_hash) VALUES (?1, ?2, ?3)",
                params![COUNT as i64, bytes, merkle::leaf_hash(&bytes).as_bytes()],
            )
            .unwrap();
    });
    assert_eq!(
        report.problems,
        [Problem::UnprovenEntries {
            from: COUNT,
            count: 1
        }]
    );
    assert_eq!(report.first_bad_entry, Some(COUNT));
}

#[test]
fn reordering_two_entries_is_detected_at_the_first() {
    let (_fixture, report) = tampered(|connection| {
        let third = bytes_of(connection, 3);
        let eighth = bytes_of(connection, 8);
        connection
            .execute("UPDATE entry SET bytes = ?1 WHERE seq = 3", [eighth])
            .unwrap();
        connection
            .execute("UPDATE entry SET bytes = ?1 WHERE seq = 8", [third])
            .unwrap();
        rebuild_unsigned(connection);
    });
    assert_eq!(
        report.problems[0],
        Problem::HeadRootMismatch {
            kind: HeadKind::Stored,
            tree_size: 4,
            unproven_from: 3,
        }
    );
    assert_eq!(report.first_bad_entry, Some(3));
}

#[test]
fn editing_a_tree_head_is_detected_by_its_signature() {
    for (statement, size) in [
        (
            "UPDATE tree_head SET root = zeroblob(32) WHERE size = 4",
            4i64,
        ),
        (
            "UPDATE tree_head SET timestamp = timestamp + 1 WHERE size = 6",
            6,
        ),
        ("UPDATE tree_head SET size = 70 WHERE size = 12", 70),
        (
            "UPDATE tree_head SET signature = zeroblob(64) WHERE size = 9",
            9,
        ),
    ] {
        let (_fixture, report) = tampered(|connection| {
            connection.execute_batch(statement).unwrap();
        });
        assert!(
            report.problems.contains(&Problem::HeadSignatureInvalid {
                kind: HeadKind::Stored,
                tree_size: size,
            }),
            "{statement}: {report}"
        );
        assert_eq!(report.first_bad_head, Some(size as u64), "{statement}");
    }
    // Moving the last head out of reach leaves the last entry unproven.
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute_batch("UPDATE tree_head SET size = 70 WHERE size = 12")
            .unwrap();
    });
    assert_eq!(report.first_bad_entry, Some(COUNT - 1));
}

#[test]
fn heads_re_signed_with_another_key_are_refused() {
    let (_fixture, report) = tampered(|connection| {
        let forged = forged_bytes(connection, 2);
        connection
            .execute("UPDATE entry SET bytes = ?1 WHERE seq = 2", [forged])
            .unwrap();
        rebuild_unsigned(connection);
        // The attacker signs a fresh set of heads with a key of their own.
        let attacker_key = AuditKey::generate().unwrap();
        let leaves: Vec<_> = (0..COUNT)
            .map(|seq| merkle::leaf_hash(&bytes_of(connection, seq)))
            .collect();
        connection.execute_batch("DELETE FROM tree_head").unwrap();
        for size in 1..=COUNT {
            let head = SignedTreeHead::sign(
                &attacker_key,
                size,
                merkle::root(&leaves[..size as usize]),
                audit::UtcTime::now(),
            );
            connection
                .execute(
                    "INSERT INTO tree_head (size, root, timestamp, signature) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        size as i64,
                        head.root_hash.as_bytes(),
                        head.timestamp.unix_micros(),
                        head.signature.0
                    ],
                )
                .unwrap();
        }
    });
    // Every head is refused, so no entry is proven.
    assert_eq!(report.problems_total, COUNT + 1);
    assert_eq!(
        report.problems[COUNT as usize],
        Problem::UnprovenEntries {
            from: 0,
            count: COUNT
        }
    );
    assert_eq!(report.latest_head, None);
    assert_eq!(report.first_bad_head, Some(1));
    assert_eq!(report.first_bad_entry, Some(0));
}

#[test]
fn editing_a_stored_tree_node_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute(
                "UPDATE node SET hash = ?1 WHERE level = 2 AND idx = 1",
                [merkle::leaf_hash(b"forged").as_bytes()],
            )
            .unwrap();
    });
    assert_eq!(
        report.problems,
        [Problem::NodeMismatch { level: 2, index: 1 }]
    );
}

#[test]
fn editing_the_patient_index_is_detected() {
    let (_fixture, report) = tampered(|connection| {
        connection
            .execute_batch(
                "UPDATE entry_patient SET patient = 'patient-9' WHERE seq = 2;
                 DELETE FROM entry_patient WHERE seq = 6;
                 INSERT INTO entry_patient (seq, patient) VALUES (999, 'patient-0');",
            )
            .unwrap();
    });
    assert_eq!(
        report.problems,
        [
            Problem::PatientIndexMismatch { seq: 2 },
            Problem::PatientIndexMismatch { seq: 6 },
            Problem::OrphanedIndexRows { count: 1 },
        ]
    );
    assert_eq!(report.first_bad_entry, Some(2));
}

#[test]
fn an_edit_inside_a_batch_is_placed_within_that_batch() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let public_key = log.public_key().clone();
    // Three rounds of four concurrent appends: each round may share batches, and every round
    // ends with a head of size 4, 8, 12.
    for round in 0..3u64 {
        std::thread::scope(|scope| {
            for i in 0..4 {
                let log = &log;
                scope.spawn(move || log.append_blocking(&record(round * 4 + i)).unwrap());
            }
        });
        assert_eq!(log.tree_head().unwrap().tree_size, round * 4 + 4);
    }
    log.close();
    let connection = attacker_connection(&fixture.path);
    let forged = forged_bytes(&connection, 6);
    connection
        .execute("UPDATE entry SET bytes = ?1 WHERE seq = 6", [forged])
        .unwrap();
    rebuild_unsigned(&connection);
    let report = verify(&fixture.path, &public_key).unwrap();
    let first = report.first_bad_entry.unwrap();
    // Exactly 6 if entry 6 had its own head, otherwise the start of its batch.
    assert!((4..=6).contains(&first), "{report}");
    assert!(matches!(
        report.problems[0],
        Problem::HeadRootMismatch { tree_size, unproven_from, .. }
            if unproven_from == first && tree_size > 6
    ));
}

#[test]
fn a_live_log_verifies_while_it_is_being_written() {
    let fixture = Fixture::new();
    let log = fixture.open();
    let public_key = log.public_key().clone();
    for i in 0..10 {
        log.append_blocking(&record(i)).unwrap();
    }
    let report = verify(&fixture.path, &public_key).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 10);
    log.append_blocking(&record(10)).unwrap();
    assert_eq!(verify(&fixture.path, &public_key).unwrap().entries, 11);
    log.close();
}
