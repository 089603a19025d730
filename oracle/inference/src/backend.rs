//! The seam between the HTTP server and an inference backend.

use openledger_tokenizer::Tokenizer;

use crate::{GenerateRequest, Generation, Result};

/// An adapter a backend can serve on top of its base model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// The name requests use (`<model>:<name>`).
    pub name: String,
    /// Content id (SHA-256 of the file, hex); requests may use it instead of the name.
    pub id: String,
}

/// How busy a backend is, for `/health` and load balancing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Generations running now.
    pub active: u64,
    /// Requests waiting to start.
    pub queued: u64,
}

/// An inference backend the server can serve through: the candle engine
/// (`openledger_engine::Engine`) or the libtorch one (`openledger_engine_tch::TchEngine`).
///
/// Every backend counts tokens with [`Backend::tokenizer`] (so billing matches what the model
/// saw), applies the chat template of [`crate::Prompt::tokens`], ends generations with
/// [`crate::stop_ids`] and turns tokens into text with [`crate::Decoder`], so the same request
/// means the same thing on each.
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// The backend's name in logs and errors (`candle`, `tch`).
    fn kind(&self) -> &'static str;

    /// The name under which the base model is served.
    fn model_name(&self) -> &str;

    /// The model's tokenizer (the one billing counts with).
    fn tokenizer(&self) -> &Tokenizer;

    /// The adapters this backend can serve (empty for a backend without adapters).
    fn adapters(&self) -> Vec<AdapterInfo>;

    /// Whether `key` (an adapter name or content id) names a servable adapter.
    fn has_adapter(&self, key: &str) -> bool;

    /// Checks the request and starts it; its events arrive on the returned [`Generation`].
    /// Errors here come before any compute. Tokenizing and loading an adapter are CPU and disk
    /// work: call it from a blocking context (`tokio::task::spawn_blocking`).
    fn generate(&self, req: GenerateRequest) -> Result<Generation>;

    /// How busy the backend is now.
    fn load(&self) -> Load;
}
