//! Integration tests of openledger-billing: hand-worked fees, splits and trees to the wei,
//! adversarial vouchers and API keys, and property tests (seeded: see [`common::seed`]).
//! Nothing here needs a chain; the contract scenarios in `tests/contracts` settle batches
//! built by this crate on anvil.

mod abi;
mod batch;
mod common;
mod credit;
mod merkle;
mod meter;
mod voucher;
