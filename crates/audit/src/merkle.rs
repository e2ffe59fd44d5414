//! RFC 6962 §2.1 Merkle tree math, pure: leaf and node hashes, tree roots, inclusion and
//! consistency proofs, and their verifiers (the verification algorithms of RFC 9162 §2.1.3.2 and
//! §2.1.4.2, which check exactly the proofs RFC 6962 defines).
//!
//! Leaves are numbered from 0. A tree of `n` leaves has root `MTH(D[0:n])`: the hash of the empty
//! string for `n = 0`, the leaf hash for `n = 1`, otherwise `node_hash(MTH(D[0:k]), MTH(D[k:n]))`
//! with `k` the largest power of two smaller than `n`. Every subtree the proofs need is either a
//! *perfect* subtree (`2^level` leaves starting at a multiple of `2^level`) or built from perfect
//! ones, so proof generation asks a [`Subtrees`] source only for perfect subtrees: a slice of leaf
//! hashes in memory, the node table of the live log, or the verifier's sliding window.

use crate::hash::{Hash, sha256};

/// Why a proof did not verify. Carries no data from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size, or the old size is above the new one.
    #[error("the sizes or index do not describe a valid proof")]
    BadSizes,
    /// The proof has too few or too many hashes for the sizes it claims.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The hashes recomputed from the proof differ from the root(s) given.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    /// The signature of a tree head the proof is checked against does not verify.
    #[error("a tree head signature does not verify")]
    BadSignature,
}

/// `SHA-256(0x00 || entry)`: the hash of one log entry.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0x00], entry])
}

/// `SHA-256(0x01 || left || right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], &left.0, &right.0])
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// `MTH(D[0:n])` over leaf hashes (not entries: hash them with [`leaf_hash`] first).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf, |_, _, _| {});
    }
    frontier.root()
}

/// The inclusion proof `PATH(index, D[0:n])` for the leaf at `index` in the tree of `leaves`.
///
/// # Errors
/// [`ProofError::BadSizes`] if `index` is not below `leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    inclusion_proof_from(&mut LeafSlice(leaves), index, size)?.map_err(|never| match never {})
}

/// The consistency proof `PROOF(old_size, D[0:n])` between the first `old_size` leaves and all of
/// `leaves`. Empty when `old_size` is 0 or equals the tree size.
///
/// # Errors
/// [`ProofError::BadSizes`] if `old_size` exceeds `leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    consistency_proof_from(&mut LeafSlice(leaves), old_size, size)?.map_err(|never| match never {})
}

/// Checks that `proof` shows the leaf `leaf` at `index` in the tree of `size` leaves with root
/// `root` (RFC 9162 §2.1.3.2).
///
/// # Errors
/// Which check failed; never which value.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::BadSizes);
    }
    let mut position = index;
    let mut last = size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(ProofError::WrongLength);
        }
        if position & 1 == 1 || position == last {
            hash = node_hash(sibling, &hash);
            if position & 1 == 0 {
                // A right-most node with no right sibling at this level: climb until it is a right
                // child again (or the root of the left part).
                while position & 1 == 0 && position != 0 {
                    position >>= 1;
                    last >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::WrongLength);
    }
    if hash != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root` (RFC 9162 §2.1.4.2). For `old_size == new_size` the proof must be
/// empty and the roots equal; for `old_size == 0` the proof must be empty and `old_root` the
/// empty root.
///
/// # Errors
/// Which check failed; never which value.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::BadSizes);
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        let roots_agree = if old_size == 0 {
            *old_root == empty_root() && (new_size > 0 || *new_root == empty_root())
        } else {
            old_root == new_root
        };
        if !roots_agree {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // When the old tree is perfect, its root is the first node of the path and is not sent.
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or(ProofError::WrongLength)?
    };
    let mut position = old_size - 1;
    let mut last = new_size - 1;
    while position & 1 == 1 {
        position >>= 1;
        last >>= 1;
    }
    let mut old_hash = first;
    let mut new_hash = first;
    for sibling in path {
        if last == 0 {
            return Err(ProofError::WrongLength);
        }
        if position & 1 == 1 || position == last {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            if position & 1 == 0 {
                while position & 1 == 0 && position != 0 {
                    position >>= 1;
                    last >>= 1;
                }
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::WrongLength);
    }
    if old_hash != *old_root || new_hash != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A source of perfect subtree hashes: the `2^level` leaves starting at leaf `index << level`.
/// Level 0 is a leaf hash.
pub trait Subtrees {
    /// Why a subtree could not be had (a storage error, a missing row).
    type Error;

    /// The root of the perfect subtree at `level` and `index`.
    ///
    /// # Errors
    /// Whatever the source cannot supply.
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// `PATH(index, D[0:size])` from a [`Subtrees`] source. The outer `Result` is about the sizes, the
/// inner one about the source.
///
/// # Errors
/// [`ProofError::BadSizes`] if `index` is not below `size`.
pub fn inclusion_proof_from<S: Subtrees>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, S::Error>, ProofError> {
    if index >= size {
        return Err(ProofError::BadSizes);
    }
    let mut proof = Vec::new();
    Ok(path(source, index, 0, size, &mut proof).map(|()| proof))
}

/// `PROOF(old_size, D[0:size])` from a [`Subtrees`] source. Empty when `old_size` is 0 or equals
/// `size`.
///
/// # Errors
/// [`ProofError::BadSizes`] if `old_size` exceeds `size`.
pub fn consistency_proof_from<S: Subtrees>(
    source: &mut S,
    old_size: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, S::Error>, ProofError> {
    if old_size > size {
        return Err(ProofError::BadSizes);
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == size {
        return Ok(Ok(proof));
    }
    Ok(subproof(source, old_size, 0, size, true, &mut proof).map(|()| proof))
}

/// `MTH(D[start:end])` from perfect subtrees.
pub fn range_hash<S: Subtrees>(source: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let count = end - start;
    debug_assert!(count > 0, "an empty range has no subtree hash");
    if count.is_power_of_two() && start.is_multiple_of(count) {
        return source.perfect(count.trailing_zeros(), start >> count.trailing_zeros());
    }
    let split = largest_power_of_two_below(count);
    let left = range_hash(source, start, start + split)?;
    let right = range_hash(source, start + split, end)?;
    Ok(node_hash(&left, &right))
}

/// RFC 6962 `PATH(m, D[start:end])`, `index` absolute.
fn path<S: Subtrees>(
    source: &mut S,
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if end - start == 1 {
        return Ok(());
    }
    let split = start + largest_power_of_two_below(end - start);
    if index < split {
        path(source, index, start, split, proof)?;
        proof.push(range_hash(source, split, end)?);
    } else {
        path(source, index, split, end, proof)?;
        proof.push(range_hash(source, start, split)?);
    }
    Ok(())
}

/// RFC 6962 `SUBPROOF(m, D[start:end], b)`, `old_end` the absolute old size.
fn subproof<S: Subtrees>(
    source: &mut S,
    old_end: u64,
    start: u64,
    end: u64,
    complete: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if old_end == end {
        if !complete {
            proof.push(range_hash(source, start, end)?);
        }
        return Ok(());
    }
    let split = start + largest_power_of_two_below(end - start);
    if old_end <= split {
        subproof(source, old_end, start, split, complete, proof)?;
        proof.push(range_hash(source, split, end)?);
    } else {
        subproof(source, old_end, split, end, false, proof)?;
        proof.push(range_hash(source, start, split)?);
    }
    Ok(())
}

/// The largest power of two strictly below `count` (`count >= 2`).
fn largest_power_of_two_below(count: u64) -> u64 {
    debug_assert!(count >= 2);
    1 << (63 - (count - 1).leading_zeros())
}

/// Leaf hashes in memory as a [`Subtrees`] source (perfect subtrees recomputed on demand).
struct LeafSlice<'a>(&'a [Hash]);

impl Subtrees for LeafSlice<'_> {
    type Error = std::convert::Infallible;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let start = (index << level) as usize;
        let leaves = &self.0[start..start + (1usize << level)];
        Ok(perfect_root(leaves))
    }
}

/// The root of a power-of-two number of leaf hashes.
pub(crate) fn perfect_root(leaves: &[Hash]) -> Hash {
    debug_assert!(leaves.len().is_power_of_two());
    if leaves.len() == 1 {
        return leaves[0];
    }
    let (left, right) = leaves.split_at(leaves.len() / 2);
    node_hash(&perfect_root(left), &perfect_root(right))
}

/// The compact form of a tree of `size` leaves: the roots of its perfect subtrees, one per set
/// bit of `size`, largest (left-most) first. Enough to append leaves and compute the root in
/// O(log n) memory; the writer keeps one, and so does the verifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// A tree of `size` leaves from its perfect subtree roots, largest first; `None` if their
    /// number is not the number of set bits of `size`.
    pub fn from_nodes(size: u64, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// The (level, index) of each perfect subtree of a tree of `size` leaves, largest first.
    pub fn positions(size: u64) -> impl Iterator<Item = (u32, u64)> {
        (0..64u32)
            .rev()
            .filter(move |level| size & (1 << level) != 0)
            .map(move |level| {
                let start = size & !((1u64 << level << 1).wrapping_sub(1));
                (level, start >> level)
            })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash. `completed(level, index, hash)` is called for every perfect subtree of
    /// level 1 or more that this leaf completes, lowest level first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let position = self.size;
        let mut hash = leaf;
        let mut level = 0u32;
        while position & (1 << level) != 0 {
            let left = self.nodes.pop().expect("a set bit of the size has a node");
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, position >> level, &hash);
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// `MTH` of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests;
