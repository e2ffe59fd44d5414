//! Signed tree heads: `(tree_size, root_hash, timestamp)` under the log's Ed25519 key, and the
//! inclusion and consistency proofs that are checked against them.
//!
//! The signed message is fixed binary, domain-separated so the key signs nothing else by accident:
//!
//! ```text
//! "tsunagu-audit-tree-head-v1\n" || tree_size (u64, big-endian)
//!                                 || timestamp (i64 µs since the epoch, big-endian)
//!                                 || root_hash (32 bytes)
//! ```
//!
//! The JSON form (for publishing heads to witnesses, and for proofs over HTTP) writes hashes and
//! the signature in hex and the timestamp as `YYYY-MM-DDThh:mm:ss.ffffffZ`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{Hash, hex_decode, hex_encode};
use crate::key::{AuditKey, PublicKey};
use crate::merkle::{self, ProofError};
use crate::time::UtcTime;

/// The domain separator at the start of every signed tree head message.
const DOMAIN: &[u8] = b"tsunagu-audit-tree-head-v1\n";

/// A commitment by the log's key to the first `tree_size` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    /// The number of entries the root covers.
    pub tree_size: u64,
    /// `MTH` of those entries.
    pub root_hash: Hash,
    /// When the head was signed (never earlier than the previous head's).
    pub timestamp: UtcTime,
    /// Ed25519 over the message in the module doc.
    pub signature: Signature,
}

/// A 64-byte Ed25519 signature (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// Proof that entry `leaf_index` is in the tree `tree_head` signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry's sequence number.
    pub leaf_index: u64,
    /// The head the proof leads to.
    pub tree_head: SignedTreeHead,
    /// RFC 6962 `PATH`, from the leaf up.
    pub path: Vec<Hash>,
}

/// Proof that `new_head` extends the tree of `old_size` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The size of the older tree (the verifier holds a signed head of that size).
    pub old_size: u64,
    /// The newer head.
    pub new_head: SignedTreeHead,
    /// RFC 6962 `PROOF`.
    pub path: Vec<Hash>,
}

impl SignedTreeHead {
    /// Signs a head.
    pub fn sign(key: &AuditKey, tree_size: u64, root_hash: Hash, timestamp: UtcTime) -> Self {
        let message = message(tree_size, &root_hash, timestamp);
        SignedTreeHead {
            tree_size,
            root_hash,
            timestamp,
            signature: Signature(key.sign(&message)),
        }
    }

    /// Whether the signature is `key`'s over this size, root and timestamp.
    pub fn verify(&self, key: &PublicKey) -> bool {
        key.verifies(
            &message(self.tree_size, &self.root_hash, self.timestamp),
            &self.signature.0,
        )
    }
}

impl InclusionProof {
    /// Checks the head's signature, then that `leaf_hash` (see [`crate::merkle::leaf_hash`] of
    /// the entry's stored bytes) is at `leaf_index` under the head's root.
    ///
    /// # Errors
    /// [`ProofError::BadSignature`] or why the path does not fit.
    pub fn verify(&self, leaf_hash: &Hash, key: &PublicKey) -> Result<(), ProofError> {
        if !self.tree_head.verify(key) {
            return Err(ProofError::BadSignature);
        }
        merkle::verify_inclusion(
            leaf_hash,
            self.leaf_index,
            self.tree_head.tree_size,
            &self.path,
            &self.tree_head.root_hash,
        )
    }
}

impl ConsistencyProof {
    /// Checks both heads' signatures, that `old_head` has `old_size` entries, and the path.
    ///
    /// # Errors
    /// [`ProofError::BadSignature`], [`ProofError::BadSizes`], or why the path does not fit.
    pub fn verify(&self, old_head: &SignedTreeHead, key: &PublicKey) -> Result<(), ProofError> {
        if !old_head.verify(key) || !self.new_head.verify(key) {
            return Err(ProofError::BadSignature);
        }
        if old_head.tree_size != self.old_size {
            return Err(ProofError::BadSizes);
        }
        merkle::verify_consistency(
            self.old_size,
            self.new_head.tree_size,
            &old_head.root_hash,
            &self.new_head.root_hash,
            &self.path,
        )
    }
}

/// The bytes a tree head signature covers.
fn message(tree_size: u64, root_hash: &Hash, timestamp: UtcTime) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 8 + 8 + 32);
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(&tree_size.to_be_bytes());
    message.extend_from_slice(&timestamp.unix_micros().to_be_bytes());
    message.extend_from_slice(root_hash.as_bytes());
    message
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex_encode(&self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex_decode(&text)
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .map(Signature)
            .ok_or_else(|| serde::de::Error::custom("expected 128 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n",
        )
        .unwrap()
    }

    #[test]
    fn a_head_verifies_only_as_signed() {
        let key = key();
        let at = UtcTime::from_unix_micros(1_795_512_600_125_000).unwrap();
        let head = SignedTreeHead::sign(&key, 7, merkle::leaf_hash(b"x"), at);
        assert!(head.verify(&key.public_key()));
        let other_key = AuditKey::generate().unwrap();
        assert!(!head.verify(&other_key.public_key()));
        let mut changed = head.clone();
        changed.tree_size = 8;
        assert!(!changed.verify(&key.public_key()));
        let mut changed = head.clone();
        changed.timestamp = UtcTime::from_unix_micros(at.unix_micros() + 1).unwrap();
        assert!(!changed.verify(&key.public_key()));
        let mut changed = head.clone();
        changed.root_hash.0[31] ^= 1;
        assert!(!changed.verify(&key.public_key()));
    }

    #[test]
    fn heads_round_trip_through_json() {
        let key = key();
        let at = UtcTime::from_unix_micros(0).unwrap();
        let head = SignedTreeHead::sign(&key, 1, merkle::leaf_hash(b""), at);
        let json = serde_json::to_string(&head).unwrap();
        assert!(json.starts_with(
            r#"{"tree_size":1,"root_hash":"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d","timestamp":"1970-01-01T00:00:00.000000Z","signature":""#
        ));
        let back: SignedTreeHead = serde_json::from_str(&json).unwrap();
        assert_eq!(back, head);
        assert!(back.verify(&key.public_key()));
    }

    #[test]
    fn proofs_check_the_heads_they_lean_on() {
        let key = key();
        let public = key.public_key();
        let at = UtcTime::from_unix_micros(0).unwrap();
        let leaves: Vec<Hash> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let old_head = SignedTreeHead::sign(&key, 3, merkle::root(&leaves[..3]), at);
        let new_head = SignedTreeHead::sign(&key, 5, merkle::root(&leaves), at);

        let inclusion = InclusionProof {
            leaf_index: 4,
            tree_head: new_head.clone(),
            path: merkle::inclusion_proof(&leaves, 4).unwrap(),
        };
        inclusion.verify(&leaves[4], &public).unwrap();
        assert_eq!(
            inclusion.verify(&leaves[3], &public),
            Err(ProofError::RootMismatch)
        );
        let mut forged = inclusion.clone();
        forged.tree_head.root_hash = merkle::root(&leaves[..4]);
        assert_eq!(
            forged.verify(&leaves[4], &public),
            Err(ProofError::BadSignature)
        );

        let consistency = ConsistencyProof {
            old_size: 3,
            new_head: new_head.clone(),
            path: merkle::consistency_proof(&leaves, 3).unwrap(),
        };
        consistency.verify(&old_head, &public).unwrap();
        let other_old = SignedTreeHead::sign(&key, 4, merkle::root(&leaves[..4]), at);
        assert_eq!(
            consistency.verify(&other_old, &public),
            Err(ProofError::BadSizes)
        );
        let stranger = AuditKey::generate().unwrap();
        let foreign_old = SignedTreeHead::sign(&stranger, 3, merkle::root(&leaves[..3]), at);
        assert_eq!(
            consistency.verify(&foreign_old, &public),
            Err(ProofError::BadSignature)
        );
    }
}
