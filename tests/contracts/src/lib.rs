//! Behavioural scenarios and invariant checks for the OpenLedger contract suite.
//!
//! Scenarios ([`scenarios`]) and the random-operation invariant checker ([`invariants`]) are
//! written against [`backend::Chain`], which only moves bytes; [`evm::AnvilChain`] runs them on
//! a real anvil node with the Solidity implementation. A backend for the ink! implementation
//! runs the same functions.
//!
//! Not for: production code. Needs the anvil binary from `npm ci` (see [`evm`]).

pub mod backend;
pub mod evm;
pub mod fixtures;
pub mod invariants;
pub mod scenarios;
pub mod suite;
