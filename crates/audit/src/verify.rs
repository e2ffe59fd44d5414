//! [`verify`]: checks an audit log file from its stored bytes up, trusting nothing in it but the
//! public key, and reports the first bad entry or tree head.
//!
//! In one read transaction (one snapshot, so a live log can be verified), streaming in sequence
//! order with O(log n) memory:
//!
//! 1. every entry's sequence number follows the last (a gap is a deleted entry), its leaf hash is
//!    recomputed from its bytes and compared with the stored one, its bytes decode as a canonical
//!    record, and its patient index row agrees with the record;
//! 2. the recomputed leaf is appended to a compact tree; every perfect subtree that completes is
//!    compared with the stored `node` row (proofs are served from those);
//! 3. whenever the count of entries reaches the size of a stored tree head (or a witnessed one),
//!    the head's signature is checked with the public key and its root against the recomputed
//!    root of exactly that many entries; stored heads must not go back in time;
//! 4. between consecutive good heads an RFC 6962 consistency proof is built from the recomputed
//!    tree and verified against the two signed roots, exactly as an outside party holding the
//!    older head would check the newer one; by transitivity every good head is consistent with
//!    the last, and the last must cover every entry;
//! 5. finally heads beyond the last entry (a truncated tail), entries beyond the last good head
//!    (an unsigned or unproven tail), surplus `node` rows and orphaned index rows are reported.
//!
//! A changed entry whose stored leaf hash was changed to match cannot be told from its
//! neighbours by hashes alone: it is reported as the first entry not covered by a good head,
//! which is exact when every entry was its own batch and otherwise the start of the batch.

use std::fmt;
use std::path::Path;

use rusqlite::Connection;

use crate::AuditError;
use crate::hash::Hash;
use crate::head::SignedTreeHead;
use crate::key::PublicKey;
use crate::log::storage::{head_from_row, open_reader};
use crate::merkle::{self, Frontier, Subtrees};
use crate::record::AuditRecord;

/// The most problems kept in a [`Report`]; the rest are only counted.
const MAX_PROBLEMS: usize = 100;

/// The most leaves kept between two good heads for the consistency proof (32 MiB). A healthy
/// log has a head every batch; a span longer than this is still checked by its recomputed roots.
const MAX_WINDOW: usize = 1 << 20;

/// Whether a tree head came from the file or from an outside witness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    Stored,
    Witnessed,
}

/// One thing found wrong. Names sequence numbers and sizes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Sequence numbers `from..to` are missing: entries were deleted.
    MissingEntries { from: u64, to: u64 },
    /// A row with a sequence number that cannot be there (negative or out of order).
    UnexpectedEntry { seq: i64 },
    /// The stored leaf hash is not the hash of the stored bytes.
    LeafHashMismatch { seq: u64 },
    /// The bytes are not a canonical audit record.
    NotCanonical { seq: u64 },
    /// The patient index row disagrees with the record (missing, extra or another patient).
    PatientIndexMismatch { seq: u64 },
    /// Index rows point at entries that do not exist.
    OrphanedIndexRows { count: u64 },
    /// A stored perfect subtree is missing or differs from the recomputed one.
    NodeMismatch { level: u32, index: u64 },
    /// More `node` rows than the entries complete.
    SurplusNodes { expected: u64, found: u64 },
    /// A tree head whose signature does not verify with the public key (or is malformed).
    HeadSignatureInvalid { kind: HeadKind, tree_size: i64 },
    /// A validly signed head whose root is not the root of the first `tree_size` stored entries:
    /// something in `unproven_from..tree_size` was changed, inserted, removed or reordered.
    HeadRootMismatch {
        kind: HeadKind,
        tree_size: u64,
        unproven_from: u64,
    },
    /// A validly signed head covers more entries than the file has: the tail was truncated.
    HeadBeyondLog {
        kind: HeadKind,
        tree_size: u64,
        entries: u64,
    },
    /// A stored head is older than the one before it.
    HeadTimestampDecreasing { tree_size: u64 },
    /// The consistency proof between two good heads did not verify.
    InconsistentHeads { old_size: u64, tree_size: u64 },
    /// Entries from `from` on are covered by no good tree head (appended outside the writer, or
    /// left unproven because the heads that covered them are bad), and no other problem names an
    /// earlier entry.
    UnprovenEntries { from: u64, count: u64 },
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entry rows read.
    pub entries: u64,
    /// Stored tree head rows read.
    pub tree_heads: u64,
    /// Pairs of consecutive good heads whose consistency proof was verified.
    pub consistency_proofs: u64,
    /// The root recomputed over all entry rows.
    pub root: Hash,
    /// The newest stored head that verified (signature and root).
    pub latest_head: Option<SignedTreeHead>,
    /// The first [`MAX_PROBLEMS`] problems, in log order.
    pub problems: Vec<Problem>,
    /// How many problems there were in all.
    pub problems_total: u64,
    /// The smallest sequence number implicated by any problem.
    pub first_bad_entry: Option<u64>,
    /// The smallest size of a tree head (stored or witnessed) found bad.
    pub first_bad_head: Option<u64>,
}

/// Verifies the log at `path` with `public_key`. Opens the file read-only and never changes it.
///
/// # Errors
/// [`AuditError::Storage`] if the file cannot be opened or read as an audit database at all;
/// everything wrong *inside* it is in the [`Report`].
pub fn verify(path: impl AsRef<Path>, public_key: &PublicKey) -> Result<Report, AuditError> {
    verify_with_witnesses(path, public_key, &[])
}

/// [`verify`], also checking tree heads that were published to outside witnesses earlier. A
/// witnessed head beyond the end of the file shows a truncation that the file alone cannot.
///
/// # Errors
/// As [`verify`].
pub fn verify_with_witnesses(
    path: impl AsRef<Path>,
    public_key: &PublicKey,
    witnessed: &[SignedTreeHead],
) -> Result<Report, AuditError> {
    let connection = open_reader(path.as_ref())?;
    // One snapshot for everything read below.
    let transaction = connection.unchecked_transaction()?;
    let mut witnessed = witnessed.to_vec();
    witnessed.sort_by_key(|head| head.tree_size);
    let report = Verifier::new(&transaction, public_key).run(witnessed)?;
    transaction.rollback()?;
    Ok(report)
}

impl Report {
    /// No problem found.
    pub fn is_intact(&self) -> bool {
        self.problems_total == 0
    }
}

impl Problem {
    /// The first entry this problem implicates.
    pub fn first_entry(&self) -> Option<u64> {
        match *self {
            Problem::MissingEntries { from, .. } => Some(from),
            Problem::LeafHashMismatch { seq }
            | Problem::NotCanonical { seq }
            | Problem::PatientIndexMismatch { seq } => Some(seq),
            Problem::HeadRootMismatch { unproven_from, .. } => Some(unproven_from),
            Problem::HeadBeyondLog { entries, .. } => Some(entries),
            Problem::UnprovenEntries { from, .. } => Some(from),
            Problem::UnexpectedEntry { .. }
            | Problem::OrphanedIndexRows { .. }
            | Problem::NodeMismatch { .. }
            | Problem::SurplusNodes { .. }
            | Problem::HeadSignatureInvalid { .. }
            | Problem::HeadTimestampDecreasing { .. }
            | Problem::InconsistentHeads { .. } => None,
        }
    }

    /// The size of the tree head this problem is about.
    pub fn head_size(&self) -> Option<u64> {
        match *self {
            Problem::HeadSignatureInvalid { tree_size, .. } => Some(tree_size.max(0) as u64),
            Problem::HeadRootMismatch { tree_size, .. }
            | Problem::HeadBeyondLog { tree_size, .. }
            | Problem::HeadTimestampDecreasing { tree_size }
            | Problem::InconsistentHeads { tree_size, .. } => Some(tree_size),
            _ => None,
        }
    }
}

impl fmt::Display for HeadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadKind::Stored => "stored",
            HeadKind::Witnessed => "witnessed",
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingEntries { from, to } => {
                write!(f, "entries {from} to {} are missing (deleted)", to - 1)
            }
            Problem::UnexpectedEntry { seq } => {
                write!(f, "an entry with impossible sequence number {seq}")
            }
            Problem::LeafHashMismatch { seq } => {
                write!(
                    f,
                    "entry {seq}: stored leaf hash is not the hash of its bytes"
                )
            }
            Problem::NotCanonical { seq } => {
                write!(f, "entry {seq}: bytes are not a canonical audit record")
            }
            Problem::PatientIndexMismatch { seq } => {
                write!(f, "entry {seq}: patient index disagrees with the record")
            }
            Problem::OrphanedIndexRows { count } => {
                write!(f, "{count} patient index rows point at no entry")
            }
            Problem::NodeMismatch { level, index } => write!(
                f,
                "stored tree node at level {level}, index {index} is missing or wrong"
            ),
            Problem::SurplusNodes { expected, found } => {
                write!(f, "{found} tree node rows where {expected} were expected")
            }
            Problem::HeadSignatureInvalid { kind, tree_size } => write!(
                f,
                "{kind} tree head of size {tree_size}: signature does not verify"
            ),
            Problem::HeadRootMismatch {
                kind,
                tree_size,
                unproven_from,
            } => write!(
                f,
                "{kind} tree head of size {tree_size}: root does not match the entries; \
                 an entry from {unproven_from} on was changed, inserted, removed or reordered"
            ),
            Problem::HeadBeyondLog {
                kind,
                tree_size,
                entries,
            } => write!(
                f,
                "{kind} tree head of size {tree_size} but the log has {entries} entries: \
                 entries from {entries} on were removed"
            ),
            Problem::HeadTimestampDecreasing { tree_size } => write!(
                f,
                "stored tree head of size {tree_size} is older than the head before it"
            ),
            Problem::InconsistentHeads {
                old_size,
                tree_size,
            } => write!(
                f,
                "tree heads of sizes {old_size} and {tree_size} are not consistent"
            ),
            Problem::UnprovenEntries { from, count } => write!(
                f,
                "{count} entries from {from} on are covered by no valid tree head"
            ),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_intact() {
            write!(
                f,
                "audit log intact: {} entries, {} tree heads, {} consistency proofs, root {}",
                self.entries, self.tree_heads, self.consistency_proofs, self.root
            )?;
            return Ok(());
        }
        write!(
            f,
            "audit log NOT intact: {} problem(s) in {} entries and {} tree heads",
            self.problems_total, self.entries, self.tree_heads
        )?;
        if let Some(seq) = self.first_bad_entry {
            write!(f, "\nfirst bad entry: {seq}")?;
        }
        if let Some(size) = self.first_bad_head {
            write!(f, "\nfirst bad tree head: size {size}")?;
        }
        for problem in &self.problems {
            write!(f, "\n- {problem}")?;
        }
        if self.problems_total > self.problems.len() as u64 {
            write!(
                f,
                "\n- ... and {} more",
                self.problems_total - self.problems.len() as u64
            )?;
        }
        Ok(())
    }
}

/// The streaming check.
struct Verifier<'c> {
    connection: &'c Connection,
    public_key: &'c PublicKey,
    report: Report,
    /// Entries processed: the size of `frontier`.
    frontier: Frontier,
    /// The last good head (size, root), stored or witnessed.
    last_good: Option<(u64, Hash)>,
    /// The tree at `last_good` and the leaves since, for the next consistency proof.
    window: Window,
    /// The timestamp of the last stored head whose signature verified.
    last_stored_timestamp: Option<crate::time::UtcTime>,
}

impl<'c> Verifier<'c> {
    fn new(connection: &'c Connection, public_key: &'c PublicKey) -> Self {
        Verifier {
            connection,
            public_key,
            report: Report {
                entries: 0,
                tree_heads: 0,
                consistency_proofs: 0,
                root: merkle::empty_root(),
                latest_head: None,
                problems: Vec::new(),
                problems_total: 0,
                first_bad_entry: None,
                first_bad_head: None,
            },
            frontier: Frontier::new(),
            last_good: None,
            window: Window::new(Frontier::new()),
            last_stored_timestamp: None,
        }
    }

    fn run(mut self, witnessed: Vec<SignedTreeHead>) -> Result<Report, AuditError> {
        let connection = self.connection;
        let mut heads_statement = connection
            .prepare("SELECT size, root, timestamp, signature FROM tree_head ORDER BY size")?;
        let mut stored_heads = heads_statement.query([])?;
        let mut entries_statement = connection.prepare(
            "SELECT e.seq, e.bytes, e.leaf_hash, p.patient
             FROM entry e LEFT JOIN entry_patient p ON p.seq = e.seq
             ORDER BY e.seq",
        )?;
        let mut entry_rows = entries_statement.query([])?;
        let mut witnessed = witnessed.into_iter().peekable();
        // Heads are consumed in size order as the entry count reaches them.
        let mut next_stored = self.next_stored_head(&mut stored_heads)?;
        self.heads_at_size(&mut next_stored, &mut stored_heads, &mut witnessed)?;

        let mut expected_seq: i64 = 0;
        while let Some(row) = entry_rows.next()? {
            let seq: i64 = row.get(0)?;
            if seq < expected_seq {
                self.problem(Problem::UnexpectedEntry { seq });
                continue;
            }
            if seq > expected_seq {
                self.problem(Problem::MissingEntries {
                    from: expected_seq as u64,
                    to: seq as u64,
                });
            }
            expected_seq = seq + 1;
            let seq = seq as u64;
            let bytes = row.get_ref(1)?.as_blob().unwrap_or_default().to_vec();
            let stored_leaf = row.get_ref(2)?.as_blob().ok().and_then(Hash::from_slice);
            let indexed_patient: Option<String> = row.get_ref(3)?.as_str().ok().map(str::to_owned);
            let leaf = merkle::leaf_hash(&bytes);
            if stored_leaf != Some(leaf) {
                self.problem(Problem::LeafHashMismatch { seq });
            }
            match AuditRecord::from_canonical_bytes(&bytes) {
                Ok(record) => {
                    if record.patient != indexed_patient {
                        self.problem(Problem::PatientIndexMismatch { seq });
                    }
                }
                Err(_) => self.problem(Problem::NotCanonical { seq }),
            }
            self.append_leaf(leaf)?;
            self.heads_at_size(&mut next_stored, &mut stored_heads, &mut witnessed)?;
        }

        let entries = self.frontier.size();
        while let Some(stored) = next_stored.take() {
            self.head_beyond_log(HeadKind::Stored, stored, entries);
            next_stored = self.next_stored_head(&mut stored_heads)?;
        }
        for head in witnessed {
            self.head_beyond_log(
                HeadKind::Witnessed,
                (head.tree_size as i64, Some(head)),
                entries,
            );
        }
        // The writer always commits a head covering every entry, so entries past the last good
        // head are unproven; say so unless an earlier entry was already named.
        let proven = self.last_good.map_or(0, |(size, _)| size);
        if proven < entries
            && self
                .report
                .first_bad_entry
                .is_none_or(|first| first > proven)
        {
            self.problem(Problem::UnprovenEntries {
                from: proven,
                count: entries - proven,
            });
        }
        self.check_table_counts(entries)?;
        self.report.entries = entries;
        self.report.root = self.frontier.root();
        Ok(self.report)
    }

    fn next_stored_head(
        &mut self,
        rows: &mut rusqlite::Rows<'_>,
    ) -> Result<Option<(i64, Option<SignedTreeHead>)>, AuditError> {
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        self.report.tree_heads += 1;
        let size: i64 = row.get_ref(0)?.as_i64().unwrap_or(-1);
        Ok(Some((size, head_from_row(row)?)))
    }

    /// Checks every stored and witnessed head whose size is the number of entries processed, and
    /// skips stored rows whose size can never be reached (negative).
    fn heads_at_size(
        &mut self,
        next_stored: &mut Option<(i64, Option<SignedTreeHead>)>,
        stored_rows: &mut rusqlite::Rows<'_>,
        witnessed: &mut std::iter::Peekable<std::vec::IntoIter<SignedTreeHead>>,
    ) -> Result<(), AuditError> {
        let size = self.frontier.size();
        while let Some((stored_size, _)) = next_stored {
            if *stored_size >= 0 && *stored_size as u64 > size {
                break;
            }
            let (stored_size, head) = next_stored.take().expect("just matched");
            match head {
                Some(head) if stored_size as u64 == size => self.check_head(HeadKind::Stored, head),
                // A malformed row, or a negative size: it cannot verify.
                _ => self.problem(Problem::HeadSignatureInvalid {
                    kind: HeadKind::Stored,
                    tree_size: stored_size,
                }),
            }
            *next_stored = self.next_stored_head(stored_rows)?;
        }
        while witnessed.peek().is_some_and(|head| head.tree_size == size) {
            let head = witnessed.next().expect("just peeked");
            self.check_head(HeadKind::Witnessed, head);
        }
        Ok(())
    }

    fn check_head(&mut self, kind: HeadKind, head: SignedTreeHead) {
        let size = head.tree_size;
        if !head.verify(self.public_key) {
            self.problem(Problem::HeadSignatureInvalid {
                kind,
                tree_size: size as i64,
            });
            return;
        }
        if head.root_hash != self.frontier.root() {
            let unproven_from = self.last_good.map_or(0, |(good_size, _)| good_size);
            self.problem(Problem::HeadRootMismatch {
                kind,
                tree_size: size,
                unproven_from,
            });
            return;
        }
        if kind == HeadKind::Stored {
            if self
                .last_stored_timestamp
                .is_some_and(|previous| head.timestamp < previous)
            {
                self.problem(Problem::HeadTimestampDecreasing { tree_size: size });
            }
            self.last_stored_timestamp = Some(head.timestamp);
        }
        if let Some((old_size, old_root)) = self.last_good
            && old_size < size
            && !self.window.overflowed
        {
            let proof = merkle::consistency_proof_from(&mut self.window, old_size, size);
            let verified = matches!(proof, Ok(Ok(ref path))
                if merkle::verify_consistency(old_size, size, &old_root, &head.root_hash, path).is_ok());
            if verified {
                self.report.consistency_proofs += 1;
            } else {
                self.problem(Problem::InconsistentHeads {
                    old_size,
                    tree_size: size,
                });
            }
        }
        self.last_good = Some((size, head.root_hash));
        self.window = Window::new(self.frontier.clone());
        if kind == HeadKind::Stored {
            self.report.latest_head = Some(head);
        }
    }

    fn head_beyond_log(
        &mut self,
        kind: HeadKind,
        (size, head): (i64, Option<SignedTreeHead>),
        entries: u64,
    ) {
        match head {
            Some(head) if head.verify(self.public_key) => self.problem(Problem::HeadBeyondLog {
                kind,
                tree_size: head.tree_size,
                entries,
            }),
            _ => self.problem(Problem::HeadSignatureInvalid {
                kind,
                tree_size: size,
            }),
        }
    }

    /// Appends a recomputed leaf, comparing every perfect subtree it completes with the stored
    /// node.
    fn append_leaf(&mut self, leaf: Hash) -> Result<(), AuditError> {
        let mut completed = Vec::new();
        self.frontier.push(leaf, |level, index, hash| {
            completed.push((level, index, *hash));
        });
        for (level, index, hash) in completed {
            let stored: Option<Vec<u8>> = {
                use rusqlite::OptionalExtension;
                self.connection
                    .prepare_cached("SELECT hash FROM node WHERE level = ?1 AND idx = ?2")?
                    .query_row([i64::from(level), index as i64], |row| row.get(0))
                    .optional()
                    .unwrap_or(None)
            };
            if stored.as_deref().and_then(Hash::from_slice) != Some(hash) {
                self.problem(Problem::NodeMismatch { level, index });
            }
        }
        self.window.push(leaf);
        Ok(())
    }

    fn check_table_counts(&mut self, entries: u64) -> Result<(), AuditError> {
        let nodes: i64 = self
            .connection
            .query_row("SELECT count(*) FROM node", [], |row| row.get(0))?;
        let expected = entries - u64::from(entries.count_ones());
        if nodes as u64 > expected {
            self.problem(Problem::SurplusNodes {
                expected,
                found: nodes as u64,
            });
        }
        let orphans: i64 = self.connection.query_row(
            "SELECT count(*) FROM entry_patient p WHERE NOT EXISTS (SELECT 1 FROM entry e WHERE e.seq = p.seq)",
            [],
            |row| row.get(0),
        )?;
        if orphans > 0 {
            self.problem(Problem::OrphanedIndexRows {
                count: orphans as u64,
            });
        }
        Ok(())
    }

    fn problem(&mut self, problem: Problem) {
        if let Some(seq) = problem.first_entry() {
            self.report.first_bad_entry = Some(
                self.report
                    .first_bad_entry
                    .map_or(seq, |first| first.min(seq)),
            );
        }
        if let Some(size) = problem.head_size() {
            self.report.first_bad_head = Some(
                self.report
                    .first_bad_head
                    .map_or(size, |first| first.min(size)),
            );
        }
        self.report.problems_total += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(problem);
        }
    }
}

/// The recomputed tree at the last good head plus the leaves since: enough to build the
/// consistency proof to the next head.
struct Window {
    base: Frontier,
    leaves: Vec<Hash>,
    overflowed: bool,
}

impl Window {
    fn new(base: Frontier) -> Window {
        Window {
            base,
            leaves: Vec::new(),
            overflowed: false,
        }
    }

    fn push(&mut self, leaf: Hash) {
        if self.leaves.len() >= MAX_WINDOW {
            self.overflowed = true;
            self.leaves.clear();
        }
        if !self.overflowed {
            self.leaves.push(leaf);
        }
    }
}

impl Subtrees for Window {
    type Error = ();

    /// A consistency proof from the base size only asks for perfect subtrees of the base's
    /// frontier (left of the old size) or wholly after it (see `merkle::subproof`).
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, ()> {
        let start = index << level;
        let end = start + (1u64 << level);
        let base_size = self.base.size();
        if start >= base_size {
            let from = usize::try_from(start - base_size).map_err(|_| ())?;
            let to = usize::try_from(end - base_size).map_err(|_| ())?;
            return self
                .leaves
                .get(from..to)
                .map(merkle::perfect_root)
                .ok_or(());
        }
        Frontier::positions(base_size)
            .zip(self.base.nodes())
            .find(|(position, _)| *position == (level, index))
            .map(|(_, node)| *node)
            .ok_or(())
    }
}
