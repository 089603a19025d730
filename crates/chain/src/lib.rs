//! Chain-facing plumbing shared by the CLI, the oracle, the indexer and the tests: deploying and
//! wiring the contract suite, reading and writing the deployment manifest, and starting a local
//! anvil node from the pinned npm package.
//!
//! Not for: contract semantics (they live in `contracts/`), or signing formats (see
//! `openledger-primitives`).

pub mod anvil;
pub mod deploy;
mod error;

pub use error::{Error, Result};
