//! OpenLedger's billing rules, as libraries with no I/O (DESIGN §5–6): what a request costs,
//! whether a voucher pays for it, what the node records, and how records become a batch the
//! settlement contract accepts.
//!
//! - [`meter`]: the fee rule, `ceil(tokens × pricePer1kTokens / 1000)` wei, checked.
//! - [`voucher`]: the API key (a signed voucher) and the checks before any compute is spent.
//! - [`receipt`]: the per-inference [`Receipt`], a `sol!` struct with its validation.
//! - [`merkle`]: the receipts tree, laid out as OpenZeppelin's `StandardMerkleTree`.
//! - [`credit`]: the credit rule, one model's data share divided by the receipts' weights.
//! - [`batch`]: the batch builder and signer.
//!
//! Not for: HTTP, the journal, chain reads or posting. Chain facts come in as values
//! ([`voucher::ChainFacts`]) and the batch goes out as a `settleBatch` call; the server and
//! the chain crate do the I/O. Money is `U256` wei throughout, in exact integer arithmetic:
//! no wei is created or lost, and overflow is an [`Error`], never a panic.

pub mod batch;
pub mod credit;
pub mod error;
pub mod merkle;
pub mod meter;
pub mod receipt;
pub mod voucher;

pub use error::{Error, Result};
pub use receipt::{AttributionWeight, Receipt};
