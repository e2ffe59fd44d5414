//! The tree math against a literal transcription of RFC 6962 §2.1 on every size up to 70, and
//! against the Certificate Transparency test vectors (the eight leaves of the CT reference
//! implementation's `merkle_tree_test`, as also used by transparency-dev/merkle).

use super::*;

/// SHA-256, straight from the primitive.
fn sha256_of(bytes: &[u8]) -> Hash {
    Hash::from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref()).unwrap()
}

/// RFC 6962 `MTH(D[n])`, literally, over entries.
fn reference_root(entries: &[Vec<u8>]) -> Hash {
    match entries.len() {
        0 => sha256_of(&[]),
        1 => reference_leaf(&entries[0]),
        n => {
            let k = reference_split(n);
            reference_node(
                &reference_root(&entries[..k]),
                &reference_root(&entries[k..]),
            )
        }
    }
}

fn reference_leaf(entry: &[u8]) -> Hash {
    let mut bytes = vec![0x00];
    bytes.extend_from_slice(entry);
    sha256_of(&bytes)
}

fn reference_node(left: &Hash, right: &Hash) -> Hash {
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(&left.0);
    bytes.extend_from_slice(&right.0);
    sha256_of(&bytes)
}

/// The largest power of two smaller than `n`, by counting up.
fn reference_split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 `PATH(m, D[n])`.
fn reference_path(m: usize, entries: &[Vec<u8>]) -> Vec<Hash> {
    let n = entries.len();
    if n == 1 {
        return Vec::new();
    }
    let k = reference_split(n);
    if m < k {
        let mut path = reference_path(m, &entries[..k]);
        path.push(reference_root(&entries[k..]));
        path
    } else {
        let mut path = reference_path(m - k, &entries[k..]);
        path.push(reference_root(&entries[..k]));
        path
    }
}

/// RFC 6962 `PROOF(m, D[n])` = `SUBPROOF(m, D[n], true)`.
fn reference_proof(m: usize, entries: &[Vec<u8>]) -> Vec<Hash> {
    fn subproof(m: usize, entries: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = entries.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![reference_root(entries)]
            };
        }
        let k = reference_split(n);
        if m <= k {
            let mut proof = subproof(m, &entries[..k], b);
            proof.push(reference_root(&entries[k..]));
            proof
        } else {
            let mut proof = subproof(m - k, &entries[k..], false);
            proof.push(reference_root(&entries[..k]));
            proof
        }
    }
    if m == 0 || m == entries.len() {
        return Vec::new();
    }
    subproof(m, entries, true)
}

/// Distinct entries of varying length (the empty entry included).
fn entries(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| (0..(i % 7)).map(|j| (i * 31 + j) as u8).collect())
        .collect()
}

fn hashes(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries.iter().map(|entry| leaf_hash(entry)).collect()
}

fn hex(text: &str) -> Hash {
    Hash::from_hex(text).unwrap()
}

/// The CT test leaves: "", 00, 10, 2021, 3031, 40414243, 5051525354555657,
/// 606162636465666768696a6b6c6d6e6f.
fn ct_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|text| crate::hash::hex_decode(text).unwrap())
    .collect()
}

/// Roots of the first n CT leaves, n = 0..=8.
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_the_ct_vectors() {
    let leaves = hashes(&ct_leaves());
    for (size, expected) in CT_ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..size]), hex(expected), "size {size}");
    }
    assert_eq!(empty_root(), hex(CT_ROOTS[0]));
    // A one-leaf tree's root is the leaf hash of the empty entry.
    assert_eq!(leaf_hash(b""), hex(CT_ROOTS[1]));
}

#[test]
fn inclusion_proofs_match_the_ct_vectors() {
    let leaves = hashes(&ct_leaves());
    // (leaf index, tree size, proof); the published table numbers leaves from 1.
    let vectors: [(u64, usize, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, expected) in vectors {
        let expected: Vec<Hash> = expected.iter().map(|text| hex(text)).collect();
        let proof = inclusion_proof(&leaves[..size], index).unwrap();
        assert_eq!(proof, expected, "leaf {index} of {size}");
        let tree_root = hex(CT_ROOTS[size]);
        verify_inclusion(
            &leaves[index as usize],
            index,
            size as u64,
            &proof,
            &tree_root,
        )
        .unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_ct_vectors() {
    let leaves = hashes(&ct_leaves());
    let vectors: [(u64, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old_size, size, expected) in vectors {
        let expected: Vec<Hash> = expected.iter().map(|text| hex(text)).collect();
        let proof = consistency_proof(&leaves[..size], old_size).unwrap();
        assert_eq!(proof, expected, "{old_size} -> {size}");
        verify_consistency(
            old_size,
            size as u64,
            &hex(CT_ROOTS[old_size as usize]),
            &hex(CT_ROOTS[size]),
            &proof,
        )
        .unwrap();
    }
}

#[test]
fn roots_and_frontiers_match_the_rfc_on_every_size_up_to_70() {
    let all = entries(70);
    let leaves = hashes(&all);
    let mut frontier = Frontier::new();
    let mut completed = Vec::new();
    for size in 0..=70usize {
        let expected = reference_root(&all[..size]);
        assert_eq!(root(&leaves[..size]), expected, "size {size}");
        assert_eq!(frontier.root(), expected, "frontier at size {size}");
        assert_eq!(frontier.size(), size as u64);
        // The frontier's nodes are exactly the perfect subtrees at `positions(size)`.
        let positions: Vec<(u32, u64)> = Frontier::positions(size as u64).collect();
        assert_eq!(positions.len(), frontier.nodes().len());
        for ((level, index), node) in positions.iter().zip(frontier.nodes()) {
            let start = (index << level) as usize;
            let expected = reference_root(&all[start..start + (1 << level)]);
            assert_eq!(*node, expected, "size {size} level {level}");
        }
        let rebuilt = Frontier::from_nodes(size as u64, frontier.nodes().to_vec()).unwrap();
        assert_eq!(rebuilt, frontier);
        if size < 70 {
            frontier.push(leaves[size], |level, index, hash| {
                completed.push((level, index, *hash));
            });
        }
    }
    // Every perfect subtree of level >= 1 inside 70 leaves was reported once, with its hash.
    let expected_count: usize = (1..7).map(|level| 70 >> level).sum();
    assert_eq!(completed.len(), expected_count);
    for (level, index, hash) in completed {
        let start = (index << level) as usize;
        assert_eq!(hash, reference_root(&all[start..start + (1 << level)]));
    }
    assert!(Frontier::from_nodes(3, vec![Hash::default()]).is_none());
}

#[test]
fn inclusion_proofs_match_the_rfc_and_verify_on_every_leaf_of_every_size_up_to_70() {
    let all = entries(70);
    let leaves = hashes(&all);
    for size in 1..=70usize {
        let tree_root = reference_root(&all[..size]);
        for index in 0..size {
            let proof = inclusion_proof(&leaves[..size], index as u64).unwrap();
            assert_eq!(
                proof,
                reference_path(index, &all[..size]),
                "{index} of {size}"
            );
            verify_inclusion(
                &leaves[index],
                index as u64,
                size as u64,
                &proof,
                &tree_root,
            )
            .unwrap();
            assert_inclusion_mutations_fail(&leaves, index as u64, size as u64, &proof, &tree_root);
        }
        assert_eq!(
            inclusion_proof(&leaves[..size], size as u64),
            Err(ProofError::BadSizes)
        );
    }
}

/// Every way of lying about a valid inclusion proof is refused. Sizes are mutated by doubling and
/// halving only: a path fixes its *shape*, and leaf 0 of 3 has the shape of leaf 0 of 4, so a
/// proof means something only against a root whose size is bound to it, as a signed tree head
/// binds them.
fn assert_inclusion_mutations_fail(
    leaves: &[Hash],
    index: u64,
    size: u64,
    proof: &[Hash],
    tree_root: &Hash,
) {
    let leaf = leaves[index as usize];
    let other = Hash([0xab; 32]);
    let mut claims: Vec<(u64, u64, Hash, Vec<Hash>, Hash)> = vec![
        (index + 1, size, leaf, proof.to_vec(), *tree_root),
        (index ^ 2, size, leaf, proof.to_vec(), *tree_root),
        (index, size * 2, leaf, proof.to_vec(), *tree_root),
        (index, size / 2, leaf, proof.to_vec(), *tree_root),
        (index, size, other, proof.to_vec(), *tree_root),
        (index, size, leaf, proof.to_vec(), empty_root()),
        (index, size, leaf, proof.to_vec(), other),
        (index, size, leaf, [proof, &[other]].concat(), *tree_root),
        (
            index,
            size,
            leaf,
            [proof, &[*tree_root]].concat(),
            *tree_root,
        ),
        (index, size, leaf, [&[other], proof].concat(), *tree_root),
        (
            index,
            size,
            leaf,
            [&[*tree_root], proof].concat(),
            *tree_root,
        ),
    ];
    if index > 0 {
        claims.push((index - 1, size, leaf, proof.to_vec(), *tree_root));
    }
    if !proof.is_empty() {
        claims.push((
            index,
            size,
            leaf,
            proof[..proof.len() - 1].to_vec(),
            *tree_root,
        ));
        for position in 0..proof.len() {
            let mut flipped = proof.to_vec();
            flipped[position].0[0] ^= 8;
            claims.push((index, size, leaf, flipped, *tree_root));
        }
    }
    if proof.len() > 1 {
        let mut inserted = proof.to_vec();
        inserted.insert(1, other);
        claims.push((index, size, leaf, inserted, *tree_root));
    }
    for (claimed_index, claimed_size, claimed_leaf, claimed_proof, claimed_root) in claims {
        // A claim that happens to be true (the same leaf hash at another index cannot occur: the
        // leaves are distinct) must be the original one.
        let honest = claimed_index == index
            && claimed_size == size
            && claimed_leaf == leaf
            && claimed_proof == proof
            && claimed_root == *tree_root;
        assert!(!honest);
        assert!(
            verify_inclusion(
                &claimed_leaf,
                claimed_index,
                claimed_size,
                &claimed_proof,
                &claimed_root
            )
            .is_err(),
            "a mutated proof of leaf {index} of {size} verified"
        );
    }
}

#[test]
fn consistency_proofs_match_the_rfc_and_verify_for_every_pair_of_sizes_up_to_70() {
    let all = entries(70);
    let leaves = hashes(&all);
    let roots: Vec<Hash> = (0..=70).map(|size| reference_root(&all[..size])).collect();
    for size in 0..=70usize {
        for old_size in 0..=size {
            let proof = consistency_proof(&leaves[..size], old_size as u64).unwrap();
            assert_eq!(
                proof,
                reference_proof(old_size, &all[..size]),
                "{old_size} -> {size}"
            );
            verify_consistency(
                old_size as u64,
                size as u64,
                &roots[old_size],
                &roots[size],
                &proof,
            )
            .unwrap();
            assert_consistency_mutations_fail(&roots, old_size as u64, size as u64, &proof);
        }
        assert_eq!(
            consistency_proof(&leaves[..size], size as u64 + 1),
            Err(ProofError::BadSizes)
        );
    }
}

/// Every way of lying about a valid consistency proof is refused.
fn assert_consistency_mutations_fail(roots: &[Hash], old_size: u64, size: u64, proof: &[Hash]) {
    let old_root = roots[old_size as usize];
    let new_root = roots[size as usize];
    let other = Hash([0xcd; 32]);
    let mut claims: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        (old_size, size, other, new_root, proof.to_vec()),
        (old_size, size, old_root, other, proof.to_vec()),
        (
            old_size,
            size,
            old_root,
            new_root,
            [proof, &[other]].concat(),
        ),
        (
            old_size,
            size,
            old_root,
            new_root,
            [&[other], proof].concat(),
        ),
        (
            old_size,
            size,
            old_root,
            new_root,
            [proof, &[old_root]].concat(),
        ),
        (
            old_size,
            size,
            old_root,
            new_root,
            [&[new_root], proof].concat(),
        ),
    ];
    if old_size != size {
        claims.push((old_size, size, new_root, old_root, proof.to_vec()));
        claims.push((size, old_size, old_root, new_root, proof.to_vec()));
    }
    if !proof.is_empty() {
        claims.push((old_size, size, old_root, new_root, Vec::new()));
        claims.push((
            old_size,
            size,
            old_root,
            new_root,
            proof[..proof.len() - 1].to_vec(),
        ));
        claims.push((
            old_size,
            size,
            old_root,
            new_root,
            [&[proof[0]], proof].concat(),
        ));
        for position in 0..proof.len() {
            let mut flipped = proof.to_vec();
            flipped[position].0[0] ^= 16;
            claims.push((old_size, size, old_root, new_root, flipped));
        }
        // Other sizes with the same roots and proof: only the true sizes fit.
        for (claimed_old, claimed_new) in [
            (old_size - 1, size),
            (old_size + 1, size),
            (old_size ^ 2, size),
            (old_size, size * 2),
            (old_size, size / 2),
        ] {
            claims.push((claimed_old, claimed_new, old_root, new_root, proof.to_vec()));
        }
    }
    for (claimed_old, claimed_new, claimed_old_root, claimed_new_root, claimed_proof) in claims {
        // Claims that are in fact true are skipped: every tree extends the empty one, whatever
        // its root, and a mutated size may land on a pair the reference agrees with.
        let extends_empty = claimed_old == 0
            && claimed_new > 0
            && claimed_old_root == empty_root()
            && claimed_proof.is_empty();
        let true_claim = extends_empty
            || ((claimed_old as usize) < roots.len()
                && (claimed_new as usize) < roots.len()
                && claimed_old <= claimed_new
                && roots[claimed_old as usize] == claimed_old_root
                && roots[claimed_new as usize] == claimed_new_root
                && claimed_proof
                    == consistency_proof_reference(roots.len(), claimed_old, claimed_new));
        if true_claim {
            continue;
        }
        assert!(
            verify_consistency(
                claimed_old,
                claimed_new,
                &claimed_old_root,
                &claimed_new_root,
                &claimed_proof
            )
            .is_err(),
            "a mutated proof {old_size} -> {size} verified"
        );
    }
}

fn consistency_proof_reference(count: usize, old_size: u64, size: u64) -> Vec<Hash> {
    let all = entries(count - 1);
    reference_proof(old_size as usize, &all[..size as usize])
}

#[test]
fn degenerate_consistency_claims() {
    let a = leaf_hash(b"a");
    // Equal sizes: roots must agree and the proof be empty.
    verify_consistency(1, 1, &a, &a, &[]).unwrap();
    assert_eq!(
        verify_consistency(1, 1, &a, &empty_root(), &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(1, 1, &a, &a, &[a]),
        Err(ProofError::WrongLength)
    );
    // From the empty tree: only the empty root, only an empty proof.
    verify_consistency(0, 5, &empty_root(), &a, &[]).unwrap();
    assert_eq!(
        verify_consistency(0, 5, &a, &a, &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[a]),
        Err(ProofError::WrongLength)
    );
    // Time travel.
    assert_eq!(
        verify_consistency(2, 1, &a, &a, &[]),
        Err(ProofError::BadSizes)
    );
    // Inclusion in the empty tree or beyond the end.
    assert_eq!(
        verify_inclusion(&a, 0, 0, &[], &empty_root()),
        Err(ProofError::BadSizes)
    );
    assert_eq!(
        verify_inclusion(&a, 2, 1, &[], &a),
        Err(ProofError::BadSizes)
    );
    verify_inclusion(&a, 0, 1, &[], &a).unwrap();
}

#[test]
fn proofs_from_large_trees_verify() {
    // Sizes around powers of two far beyond the exhaustive range, with the frontier as the root.
    let leaves: Vec<Hash> = (0..1100u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for size in [511usize, 512, 513, 1023, 1024, 1025, 1100] {
        let tree_root = root(&leaves[..size]);
        for index in [0, 1, size / 3, size - 2, size - 1] {
            let proof = inclusion_proof(&leaves[..size], index as u64).unwrap();
            verify_inclusion(
                &leaves[index],
                index as u64,
                size as u64,
                &proof,
                &tree_root,
            )
            .unwrap();
        }
        for old_size in [1usize, 2, 255, 256, 257, size - 1] {
            let proof = consistency_proof(&leaves[..size], old_size as u64).unwrap();
            verify_consistency(
                old_size as u64,
                size as u64,
                &root(&leaves[..old_size]),
                &tree_root,
                &proof,
            )
            .unwrap();
        }
    }
}
