use std::path::PathBuf;

/// Errors of chain plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anvil binary was not found where expected.
    #[error(
        "anvil not found at {path}: run `npm ci` in the repository root or set OPENLEDGER_ANVIL"
    )]
    AnvilMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// anvil did not start.
    #[error("anvil failed to start: {0}")]
    AnvilStart(#[from] Box<alloy::node_bindings::NodeError>),
    /// A JSON-RPC call failed.
    #[error("rpc call `{call}` failed: {source}")]
    Rpc {
        /// What was being done.
        call: &'static str,
        /// The transport error.
        #[source]
        source: alloy::transports::TransportError,
    },
    /// A transaction was mined but reverted.
    #[error("transaction `{what}` ({tx}) reverted")]
    Reverted {
        /// What was being done.
        what: &'static str,
        /// Its hash.
        tx: alloy::primitives::B256,
    },
    /// Waiting for a transaction receipt failed.
    #[error("waiting for `{what}` to be mined failed: {source}")]
    Pending {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: alloy::providers::PendingTransactionError,
    },
    /// The deployment configuration is invalid.
    #[error("invalid deployment config: {0}")]
    Config(String),
    /// Reading or writing the manifest failed.
    #[error("deployment manifest {path}: {source}")]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// The I/O or JSON error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
