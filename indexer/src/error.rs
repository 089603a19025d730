//! The indexer's errors.

use alloy::primitives::Address;

/// What can go wrong while indexing or reading the index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused a statement.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// The database could not be opened.
    #[error(
        "cannot open the database {url}: {source}; check the URL (a file path for SQLite, postgres://… for PostgreSQL) and that the server is up"
    )]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// Why.
        source: diesel::ConnectionError,
    },
    /// A migration failed.
    #[error("migrating the database failed: {message}")]
    Migration {
        /// What the migration harness said.
        message: String,
    },
    /// The database holds another chain's or another deployment's index.
    #[error(
        "the database indexes {found}, not {expected}; point --database at a fresh database or pass --resync to wipe it"
    )]
    OtherDeployment {
        /// This deployment.
        expected: String,
        /// What the database says it holds.
        found: String,
    },
    /// Stored data could not be read back.
    #[error("corrupt index: {what}")]
    Corrupt {
        /// What.
        what: String,
    },
    /// A total would leave the uint256 range: the events contradict each other.
    #[error("amount out of range: {what}")]
    Overflow {
        /// Which total.
        what: String,
    },
    /// The JSON-RPC node failed (retried by the follower; fatal only at start).
    #[error("JSON-RPC {what}: {message}")]
    Rpc {
        /// What was asked.
        what: String,
        /// The node's answer.
        message: String,
    },
    /// The chain reorganised below the window of block hashes the indexer keeps.
    #[error(
        "reorg deeper than the window: block {number} is no longer canonical and the index keeps only the last {window} block hashes (oldest kept: {oldest}); the index cannot be rewound exactly: restart with --resync to re-index from the deployment block, or raise --reorg-window"
    )]
    ReorgTooDeep {
        /// The oldest block found to differ.
        number: u64,
        /// The window size.
        window: u64,
        /// The oldest block the window still held.
        oldest: u64,
    },
    /// A log could not be decoded with the suite's bindings.
    #[error(
        "undecodable {contract} log in block {block} (index {log_index}): {message}; is the manifest's ABI the one deployed?"
    )]
    Decode {
        /// Which contract emitted it.
        contract: &'static str,
        /// Its block.
        block: u64,
        /// Its log index.
        log_index: u64,
        /// The decoder's message.
        message: String,
    },
    /// A value did not fit the schema (an id above 2⁶³).
    #[error("{what} does not fit a 64-bit column")]
    TooLarge {
        /// What.
        what: String,
    },
    /// No receipts API is configured for this operator.
    #[error("no receipts URL for operator {operator}")]
    NoOperatorUrl {
        /// The operator.
        operator: Address,
    },
}

/// The indexer's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
