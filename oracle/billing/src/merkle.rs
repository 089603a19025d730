//! The receipts Merkle tree, laid out exactly as OpenZeppelin's `StandardMerkleTree`
//! (npm `@openzeppelin/merkle-tree`) lays it out, so its root, proofs and JSON `tree` array are
//! interchangeable with that package's and Solidity's `MerkleProof.verify` checks our proofs.
//!
//! - **Leaf**: `keccak256(keccak256(abi.encode(receipt)))` — Solidity's
//!   `keccak256(bytes.concat(keccak256(abi.encode(r))))`, and the package's leaf for the
//!   single value `[receipt]` with leaf encoding `["(bytes32,address,…)"]` (the struct as one
//!   bare tuple).
//! - **Node**: `keccak256(min(a, b) ‖ max(a, b))` — sorted pairs, so a proof is just the
//!   siblings, with no left/right flags.
//! - **Layout**: the leaves are sorted by hash (bytewise ascending), then stored in an array of
//!   `2n − 1` nodes, leaf `i` of the sorted list at index `2n − 2 − i` (the last `n` slots, in
//!   reverse); every internal node `i` is the hash of its children `2i + 1` and `2i + 2`,
//!   computed from the back; the root is node 0. A proof for the leaf at tree index `j` lists
//!   the sibling of `j` (`j + 1` when `j` is odd, `j − 1` when even) and then of each parent
//!   `(j − 1) / 2` up to the root.
//!
//! An empty tree has no root ([`Error::EmptyTree`]); a single receipt's root is its leaf.

use alloy::{
    primitives::{B256, keccak256},
    sol_types::SolValue,
};

use crate::{
    error::{Error, Result},
    receipt::Receipt,
};

/// The leaf of `receipt`: `keccak256(keccak256(abi.encode(receipt)))`.
pub fn leaf_hash(receipt: &Receipt) -> B256 {
    keccak256(keccak256(receipt.abi_encode()))
}

/// An internal node: the keccak256 of the two children, smaller first.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The root a proof leads to from `leaf`.
pub fn process_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof
        .iter()
        .fold(leaf, |node, sibling| hash_pair(node, *sibling))
}

/// Whether `proof` proves `leaf` under `root` (what `MerkleProof.verify` answers).
pub fn verify(root: B256, leaf: B256, proof: &[B256]) -> bool {
    process_proof(leaf, proof) == root
}

/// A built tree over some leaves, remembering where each input leaf went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// All `2n − 1` nodes, root first (the package's `tree` array).
    nodes: Vec<B256>,
    /// For input leaf `i`, its index in `nodes`.
    positions: Vec<usize>,
}

impl MerkleTree {
    /// The tree over `receipts`, in the order given (proofs are asked by that order).
    pub fn of_receipts(receipts: &[Receipt]) -> Result<Self> {
        Self::from_leaves(receipts.iter().map(leaf_hash).collect())
    }

    /// The tree over already-hashed leaves.
    pub fn from_leaves(leaves: Vec<B256>) -> Result<Self> {
        let n = leaves.len();
        if n == 0 {
            return Err(Error::EmptyTree);
        }
        let mut order: Vec<usize> = (0..n).collect();
        // Stable, like JavaScript's sort: equal leaves keep their input order.
        order.sort_by_key(|&i| leaves[i]);
        let size = 2 * n - 1;
        let mut nodes = vec![B256::ZERO; size];
        let mut positions = vec![0; n];
        for (sorted_index, &input_index) in order.iter().enumerate() {
            let at = size - 1 - sorted_index;
            nodes[at] = leaves[input_index];
            positions[input_index] = at;
        }
        for i in (0..size - n).rev() {
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        Ok(Self { nodes, positions })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Always false: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// All nodes, root first: the `tree` array of the package's `dump()`.
    pub fn nodes(&self) -> &[B256] {
        &self.nodes
    }

    /// The leaf of input `index`.
    pub fn leaf(&self, index: usize) -> Result<B256> {
        Ok(self.nodes[self.position(index)?])
    }

    /// Where input leaf `index` sits in [`MerkleTree::nodes`] (the package's `treeIndex`).
    pub fn position(&self, index: usize) -> Result<usize> {
        self.positions.get(index).copied().ok_or(Error::NoSuchLeaf {
            index,
            len: self.len(),
        })
    }

    /// The proof for input leaf `index`: its siblings from the leaf up to the root.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>> {
        let mut at = self.position(index)?;
        let mut proof = Vec::new();
        while at > 0 {
            let sibling = if at % 2 == 1 { at + 1 } else { at - 1 };
            proof.push(self.nodes[sibling]);
            at = (at - 1) / 2;
        }
        Ok(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<B256> {
        (1..=n).map(|i| keccak256([i])).collect()
    }

    #[test]
    fn one_leaf_is_its_own_root() {
        let l = leaves(1);
        let t = MerkleTree::from_leaves(l.clone()).unwrap();
        assert_eq!(t.root(), l[0]);
        assert!(t.proof(0).unwrap().is_empty());
    }

    #[test]
    fn two_leaves_hash_sorted() {
        let l = leaves(2);
        let t = MerkleTree::from_leaves(l.clone()).unwrap();
        let (lo, hi) = if l[0] < l[1] {
            (l[0], l[1])
        } else {
            (l[1], l[0])
        };
        assert_eq!(t.root(), keccak256([lo.as_slice(), hi.as_slice()].concat()));
        assert_eq!(t.proof(0).unwrap(), vec![l[1]]);
    }

    #[test]
    fn empty_and_missing_leaves_are_errors() {
        assert_eq!(MerkleTree::from_leaves(vec![]), Err(Error::EmptyTree));
        let t = MerkleTree::from_leaves(leaves(3)).unwrap();
        assert_eq!(t.proof(3), Err(Error::NoSuchLeaf { index: 3, len: 3 }));
    }
}
