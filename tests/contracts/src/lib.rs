//! Behavioural scenarios and invariant checks for the OpenLedger contract suite.
//!
//! Scenarios ([`scenarios`]) and the random-operation invariant checker ([`invariants`]) are
//! written against [`backend::Chain`], which only moves bytes. [`evm::AnvilChain`] runs them on
//! a real anvil node with the Solidity implementation; [`RevmChain`](crate::revm::RevmChain)
//! runs them on the same EVM in process (no node, no JSON-RPC: fast enough for long invariant
//! runs). A backend for the ink! implementation runs the same functions.
//!
//! Not for: production code. [`evm`] needs the anvil binary from `npm ci`;
//! [`revm`] needs nothing.

pub mod backend;
pub mod evm;
pub mod fixtures;
pub mod invariants;
pub mod revm;
pub mod scenarios;
pub mod suite;
