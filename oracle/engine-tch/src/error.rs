//! The error type of this crate.

/// Errors of the libtorch backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file does not exist.
    #[error(
        "TorchScript model {path} not found: export one with torch.jit.script(model).save(path)"
    )]
    ModelNotFound {
        /// The path that was given.
        path: String,
    },
    /// libtorch could not load the file as a TorchScript module (not a TorchScript archive,
    /// truncated, or saved by a newer PyTorch than libtorch 2.13.0).
    #[error(
        "cannot load TorchScript model {path}: {reason} (save it with torch.jit.script or \
         torch.jit.trace, PyTorch 2.13 or older)"
    )]
    Load {
        /// The model file.
        path: String,
        /// libtorch's message (first line).
        reason: String,
    },
    /// The module loaded but does not behave as a causal LM over this tokenizer: its
    /// `forward` does not take ids `[1, T]` (int64) or does not return logits `[1, T, V]`
    /// with `V` the tokenizer's vocabulary size.
    #[error("model {path} is not a causal LM for this tokenizer: {reason}")]
    BadModel {
        /// The model file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The forward pass failed (for example, a prompt longer than the model's context).
    #[error("forward pass failed on {tokens} tokens: {reason}")]
    Forward {
        /// Length of the sequence that was run.
        tokens: usize,
        /// libtorch's message (first line).
        reason: String,
    },
    /// A row of logits had no finite value: the model is broken (NaN weights or overflow).
    #[error("the model returned no finite logit in a row of {len}")]
    InvalidLogits {
        /// Length of the row.
        len: usize,
    },
    /// Sampling parameters out of range.
    #[error("invalid sampling parameters: {reason}")]
    InvalidParams {
        /// The request field at fault.
        param: &'static str,
        /// Which parameter, and its allowed range.
        reason: String,
    },
    /// A serving setting is out of range.
    #[error("invalid config: {reason}")]
    InvalidConfig {
        /// Which setting and why.
        reason: String,
    },
    /// The prompt encodes to no tokens: there is nothing to condition on.
    #[error("the prompt is empty: give at least one token of text")]
    EmptyPrompt,
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<openledger_sampling::Error> for Error {
    fn from(e: openledger_sampling::Error) -> Self {
        match e {
            openledger_sampling::Error::InvalidParams { param, reason } => {
                Error::InvalidParams { param, reason }
            }
            openledger_sampling::Error::InvalidLogits { len } => Error::InvalidLogits { len },
        }
    }
}
