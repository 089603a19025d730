//! The indexer: follows the OpenLedger suite's events over JSON-RPC into a database (SQLite by
//! default, PostgreSQL by URL) that the GraphQL API reads.
//!
//! - [`catalog`] describes the indexed tables; [`db`] opens either database and reads or writes
//!   catalog rows; [`store`] commits blocks and reverts them on a reorg.
//!
//! Not for: serving queries (the `openledger-graphql` crate), or anything that signs.

pub mod apply;
pub mod catalog;
pub mod db;
pub mod error;
pub mod schema;
pub mod store;
pub mod value;

pub use error::{Error, Result};
