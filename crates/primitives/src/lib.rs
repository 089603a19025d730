//! OpenLedger's shared chain vocabulary: the contract bindings generated with alloy's `sol!`
//! from the compiled artifacts of `contracts/` (the single place off-chain code learns what the
//! chain looks like), the EIP-712 domain and signing helpers for vouchers and batches, the fee
//! split arithmetic that mirrors the settlement contract bit for bit, and the deployment
//! manifest type.
//!
//! Not for: talking to a node (see `openledger-chain`), or anything with I/O.

pub mod bindings;
pub mod deployment;
pub mod eip712;
pub mod split;

pub use alloy::primitives::{Address, B256, U256};
