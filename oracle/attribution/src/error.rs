//! The crate's error type.

use crate::{ContentHash, ContributionId};

/// Errors of Proof of Attribution indexing and persistence (queries cannot fail).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing an index file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A contribution's content does not hash to its registered content hash: the content is not
    /// what was accepted on chain. It is not indexed; fetch the right content and retry.
    #[error(
        "content hash mismatch for contribution {contribution}: registered {expected}, \
         content hashes to {actual}"
    )]
    ContentHashMismatch {
        /// The contribution.
        contribution: ContributionId,
        /// The registered (on-chain) keccak-256 hash.
        expected: ContentHash,
        /// The keccak-256 hash of the content that was supplied.
        actual: ContentHash,
    },
    /// A contribution id was added twice (to one segment, or to two segments of one index).
    /// Each accepted contribution is indexed exactly once.
    #[error("contribution {contribution} is already indexed")]
    DuplicateContribution {
        /// The contribution.
        contribution: ContributionId,
    },
    /// A token id is not below [`crate::TOKEN_ID_LIMIT`].
    #[error("contribution {contribution} has token id {token}, above the supported maximum")]
    TokenOutOfRange {
        /// The contribution.
        contribution: ContributionId,
        /// The offending token id.
        token: u32,
    },
    /// A segment would exceed the largest supported size (2^31 − 1 tokens including one
    /// boundary per contribution). Split the contributions over several segments.
    #[error("segment of {tokens} tokens exceeds the maximum of {max}; use several segments")]
    SegmentTooLarge {
        /// Tokens (including boundaries) the segment would hold.
        tokens: u64,
        /// The maximum.
        max: u64,
    },
    /// A text contribution is not valid UTF-8 and cannot be tokenized as text.
    #[error("contribution {contribution} is not valid UTF-8 text")]
    NotUtf8 {
        /// The contribution.
        contribution: ContributionId,
    },
    /// An index file was written by an unsupported format version. Rebuild the index.
    #[error(
        "{path}: index format version {found} is not supported (expected {supported}); rebuild the index"
    )]
    UnsupportedVersion {
        /// The file.
        path: String,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// An index file is corrupt or truncated (bad magic, wrong length, checksum mismatch,
    /// inconsistent tables). It is refused, not trusted: delete it and rebuild the index.
    #[error("{path}: corrupt index file: {reason}; delete it and rebuild the index")]
    Corrupt {
        /// The file.
        path: String,
        /// What check failed.
        reason: String,
    },
    /// Suffix array construction failed inside `libsais` (invalid input or out of memory).
    #[error("suffix array construction failed: {reason}")]
    SuffixArray {
        /// The error reported by libsais.
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
