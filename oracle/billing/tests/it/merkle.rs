//! The receipts tree against the real npm `@openzeppelin/merkle-tree` (vectors written by
//! `vectors/oz_merkle.mjs`, committed), against hand-built trees, and under random receipts.

use alloy::primitives::{B256, U256, keccak256};
use openledger_billing::{
    Error, Receipt,
    merkle::{MerkleTree, hash_pair, leaf_hash, process_proof, verify},
};
use proptest::prelude::*;
use serde::Deserialize;

use crate::common::{self, receipt};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    generator: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    receipts: Vec<Receipt>,
    root: B256,
    tree: Vec<B256>,
    tree_index: Vec<usize>,
    leaves: Vec<B256>,
    proofs: Vec<Vec<B256>>,
}

#[test]
fn matches_openzeppelin_standard_merkle_tree() {
    let v: Vectors = serde_json::from_str(include_str!("vectors/oz_merkle.json")).unwrap();
    assert!(v.generator.starts_with("@openzeppelin/merkle-tree "));
    assert_eq!(
        v.cases.iter().map(|c| c.receipts.len()).collect::<Vec<_>>(),
        [1, 2, 3, 5, 8]
    );
    for case in &v.cases {
        let n = case.receipts.len();
        let tree = MerkleTree::of_receipts(&case.receipts).unwrap();
        assert_eq!(tree.root(), case.root, "root of {n}");
        assert_eq!(tree.nodes(), case.tree.as_slice(), "tree array of {n}");
        for i in 0..n {
            assert_eq!(
                leaf_hash(&case.receipts[i]),
                case.leaves[i],
                "leaf {i} of {n}"
            );
            assert_eq!(
                tree.position(i).unwrap(),
                case.tree_index[i],
                "treeIndex {i} of {n}"
            );
            assert_eq!(tree.proof(i).unwrap(), case.proofs[i], "proof {i} of {n}");
            assert!(verify(case.root, case.leaves[i], &case.proofs[i]));
        }
    }
}

fn sorted_pair_hash(a: B256, b: B256) -> B256 {
    // Written out independently of the crate: keccak256(min ‖ max).
    let mut bytes = Vec::new();
    if a.as_slice() < b.as_slice() {
        bytes.extend_from_slice(a.as_slice());
        bytes.extend_from_slice(b.as_slice());
    } else {
        bytes.extend_from_slice(b.as_slice());
        bytes.extend_from_slice(a.as_slice());
    }
    keccak256(bytes)
}

fn leaves(n: u64) -> (Vec<Receipt>, Vec<B256>) {
    let receipts: Vec<Receipt> = (0..n)
        .map(|i| receipt(i + 1, common::key(1).address(), 1, U256::from(i + 7), &[]))
        .collect();
    let leaves = receipts
        .iter()
        .map(|r| {
            use alloy::sol_types::SolValue;
            keccak256(keccak256(r.abi_encode()))
        })
        .collect();
    (receipts, leaves)
}

fn sorted(mut v: Vec<B256>) -> Vec<B256> {
    v.sort();
    v
}

#[test]
fn hand_built_trees_of_two_three_and_five() {
    // Two: root = H(a, b).
    let (r, l) = leaves(2);
    assert_eq!(
        MerkleTree::of_receipts(&r).unwrap().root(),
        sorted_pair_hash(l[0], l[1])
    );

    // Three, sorted a < b < c: nodes [H(H(a,b),c), H(a,b), c, b, a] (leaves from the back).
    let (r, l) = leaves(3);
    let s = sorted(l.clone());
    let t = MerkleTree::of_receipts(&r).unwrap();
    let ab = sorted_pair_hash(s[0], s[1]);
    assert_eq!(
        t.nodes(),
        &[sorted_pair_hash(ab, s[2]), ab, s[2], s[1], s[0]]
    );

    // Five, sorted a..e in slots 8,7,6,5,4: node3 = H(n7, n8) = H(b, a), node2 = H(n5, n6) =
    // H(d, c), node1 = H(n3, n4) = H(H(a,b), e), root = H(node1, node2).
    let (r, l) = leaves(5);
    let s = sorted(l);
    let t = MerkleTree::of_receipts(&r).unwrap();
    let n3 = sorted_pair_hash(s[1], s[0]);
    let n2 = sorted_pair_hash(s[3], s[2]);
    let n1 = sorted_pair_hash(n3, s[4]);
    assert_eq!(t.root(), sorted_pair_hash(n1, n2));
    assert_eq!(&t.nodes()[..4], &[sorted_pair_hash(n1, n2), n1, n2, n3]);
}

#[test]
fn proofs_of_a_five_leaf_tree_are_siblings_to_the_root() {
    let (r, l) = leaves(5);
    let t = MerkleTree::of_receipts(&r).unwrap();
    let s = sorted(l.clone());
    // The smallest leaf sits at slot 8: siblings slot 7 (b), then node 4 (e), then node 2.
    let smallest = l.iter().position(|x| *x == s[0]).unwrap();
    assert_eq!(t.position(smallest).unwrap(), 8);
    assert_eq!(t.proof(smallest).unwrap(), vec![s[1], s[4], t.nodes()[2]]);
    // The largest (e) sits at slot 4: siblings node 3, then node 2.
    let largest = l.iter().position(|x| *x == s[4]).unwrap();
    assert_eq!(t.proof(largest).unwrap(), vec![t.nodes()[3], t.nodes()[2]]);
}

#[test]
fn errors_for_empty_trees_and_missing_leaves() {
    assert_eq!(MerkleTree::of_receipts(&[]), Err(Error::EmptyTree));
    let (r, _) = leaves(2);
    let t = MerkleTree::of_receipts(&r).unwrap();
    assert_eq!(t.proof(2), Err(Error::NoSuchLeaf { index: 2, len: 2 }));
    assert_eq!(t.leaf(9), Err(Error::NoSuchLeaf { index: 9, len: 2 }));
}

#[test]
fn hash_pair_is_order_free() {
    let (a, b) = (keccak256("a"), keccak256("b"));
    assert_eq!(hash_pair(a, b), hash_pair(b, a));
    assert_eq!(hash_pair(a, b), sorted_pair_hash(a, b));
}

proptest! {
    #![proptest_config(common::config(64))]

    /// Every proof verifies; changing the receipt, the leaf or any proof node breaks it; the
    /// root does not depend on the order of the receipts.
    #[test]
    fn every_proof_verifies_and_tampering_fails(
        fees in proptest::collection::vec(0u64..1_000_000, 1..24),
        pick in any::<prop::sample::Index>(),
        rotate in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let receipts: Vec<Receipt> = fees.iter().enumerate()
            .map(|(i, f)| receipt(i as u64, common::key(1).address(), 1, U256::from(*f), &[]))
            .collect();
        let tree = MerkleTree::of_receipts(&receipts).unwrap();
        let root = tree.root();
        for (i, r) in receipts.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            prop_assert!(verify(root, leaf_hash(r), &proof));
            prop_assert_eq!(process_proof(tree.leaf(i).unwrap(), &proof), root);
        }

        let i = pick.index(receipts.len());
        let proof = tree.proof(i).unwrap();
        let mut tampered = receipts[i].clone();
        tampered.fee += U256::from(1);
        prop_assert!(!verify(root, leaf_hash(&tampered), &proof));
        let mut leaf = leaf_hash(&receipts[i]);
        leaf.0[flip.index(32)] ^= 1;
        prop_assert!(!verify(root, leaf, &proof));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let j = flip.index(bad.len());
            bad[j].0[0] ^= 0x80;
            prop_assert!(!verify(root, leaf_hash(&receipts[i]), &bad));
        }

        let mut reordered = receipts.clone();
        reordered.rotate_left(rotate.index(receipts.len()));
        prop_assert_eq!(MerkleTree::of_receipts(&reordered).unwrap().root(), root);
    }
}
