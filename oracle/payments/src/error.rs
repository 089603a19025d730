//! Errors of the paid mode.

use std::path::PathBuf;

/// Errors of the paid mode's I/O: the journal, the chain, the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The paid mode is misconfigured (manifest, RPC URL, keys).
    #[error("paid mode: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The journal could not be read or written.
    #[error("journal {}: {source}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A journal line other than the last one is unreadable: the file was damaged.
    #[error("journal {} is corrupt at line {line}: {reason}; restore it from a backup (it is the node's record of what users owe)", path.display())]
    JournalCorrupt {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// Why it does not parse.
        reason: String,
    },
    /// The journal's records contradict each other.
    #[error("journal replay: {0}")]
    Replay(String),
    /// A file of the node could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A chain read failed.
    #[error("chain call {call} failed: {reason}")]
    Rpc {
        /// Which call.
        call: &'static str,
        /// The transport's or contract's message.
        reason: String,
    },
    /// Sending or reading back a batch failed.
    #[error("posting the batch failed: {0}")]
    Post(String),
    /// Building an attribution index failed.
    #[error("attribution: {0}")]
    Attribution(String),
    /// A billing rule refused (a batch that cannot be built).
    #[error(transparent)]
    Billing(#[from] openledger_billing::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
