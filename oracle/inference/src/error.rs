//! Typed errors of a generation: each says who can fix it.

/// Errors of a generation request.
///
/// [`Error::is_client_error`] splits them: the request is at fault (a 4xx answer; a paid
/// request is not charged) or the node is (a 5xx answer; the node is at fault and refunds).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A request parameter is out of range or malformed.
    #[error("invalid request: {reason}")]
    InvalidParam {
        /// The request field at fault (`temperature`, `max_tokens`, `prompt`, ...).
        param: &'static str,
        /// Why, with what is allowed.
        reason: String,
    },
    /// The prompt (plus the tokens to generate) does not fit in the context window.
    #[error(
        "the prompt has {tokens} tokens but the model's context window is {limit} tokens; shorten the prompt"
    )]
    ContextOverflow {
        /// Tokens needed.
        tokens: usize,
        /// Context window of the model.
        limit: usize,
    },
    /// No adapter with this name or content id is served.
    #[error("unknown adapter {adapter:?}; GET /v1/models lists the available ones")]
    UnknownAdapter {
        /// The name or id asked for.
        adapter: String,
    },
    /// The adapter asked for exists but cannot be used with this base model (malformed or
    /// unreadable file, wrong shapes).
    #[error("adapter {adapter} cannot be used: {reason}")]
    AdapterUnusable {
        /// Adapter name or id.
        adapter: String,
        /// What is wrong.
        reason: String,
    },
    /// The backend does not support what was asked (e.g. adapters on a backend without them).
    #[error("not supported by the {backend} backend: {what}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// What was asked for.
        what: String,
    },
    /// The request queue is full; retry later.
    #[error("the engine is at capacity ({queued} requests waiting); retry later")]
    Overloaded {
        /// Requests already waiting.
        queued: usize,
    },
    /// The inference worker has stopped (after a fatal error); the node must be restarted.
    #[error("the inference engine has stopped; see the logs and restart")]
    Stopped,
    /// The generation failed inside the backend (a forward pass failed, the model returned
    /// unusable logits, a worker panicked).
    #[error("inference failed: {reason}")]
    Inference {
        /// What failed.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the client can fix this by changing the request (4xx), as opposed to a fault or
    /// a capacity limit of the node (5xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::InvalidParam { .. }
            | Error::ContextOverflow { .. }
            | Error::UnknownAdapter { .. }
            | Error::AdapterUnusable { .. }
            | Error::Unsupported { .. } => true,
            Error::Overloaded { .. } | Error::Stopped | Error::Inference { .. } => false,
        }
    }

    /// The request field at fault, when there is one.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Error::InvalidParam { param, .. } => Some(param),
            Error::ContextOverflow { .. } => Some("messages"),
            Error::UnknownAdapter { .. }
            | Error::AdapterUnusable { .. }
            | Error::Unsupported { .. } => Some("model"),
            Error::Overloaded { .. } | Error::Stopped | Error::Inference { .. } => None,
        }
    }
}

impl From<openledger_sampling::Error> for Error {
    /// Out-of-range parameters are the caller's; logits with nothing to sample are the model's.
    fn from(e: openledger_sampling::Error) -> Self {
        match e {
            openledger_sampling::Error::InvalidParams { param, reason } => {
                Error::InvalidParam { param, reason }
            }
            other => Error::Inference {
                reason: other.to_string(),
            },
        }
    }
}
