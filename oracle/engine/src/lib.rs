//! The OpenLedger oracle's inference engine.
//!
//! **What it is for:** running a real quantized Llama-family GGUF model (the default is
//! SmolLM2-135M-Instruct Q4_1) on candle, CPU by default and CUDA with the `cuda` feature;
//! sampling (temperature, top-p, max tokens, stop sequences, seed) with deterministic output
//! for a fixed seed; the model's ChatML chat template; streaming tokens; **continuous
//! batching** (requests join and leave a running decode batch at step boundaries, a slow
//! consumer never stalls the others); and **many LoRA adapters on one base** (OpenLoRA:
//! adapters are safetensors files addressed by SHA-256, applied at run time per batch row,
//! never merged, cached in an LRU with pinning).
//!
//! It implements the inference interface of `openledger-inference` ([`Backend`]): the request,
//! event and usage types, the stop rules, the chat template and the incremental detokenizer
//! live there, shared with the libtorch backend (`openledger-engine-tch`).
//!
//! **What it is not for:** HTTP, billing or receipts (see `openledger-oracle`), tokenizing
//! (`openledger-tokenizer` is the single tokenizer, so billing counts match the model), or
//! training adapters.
//!
//! # Building with CUDA
//! `cargo build -p openledger-engine --features cuda` forwards to candle's `cuda` feature and
//! needs `nvcc` at build time (no GPU: set `CUDA_COMPUTE_CAP`, e.g. `90` for H100/H200).
//! Without a system CUDA toolkit, `eval "$(scripts/setup-cuda.sh)"` installs CUDA 13.4 from
//! NVIDIA's PyPI wheels and sets `PATH`, `CUDA_HOME` and `CUDA_COMPUTE_CAP` (the test command
//! does this and checks that the oracle compiles with the feature). cudarc refuses toolkits
//! newer than 13.4. A cold build takes about 17 minutes on 2 cores; linking a binary also
//! needs the driver's `libcuda.so`. Select the device with the `device` field of [`EngineConfig`]
//! (`cuda:0`): the linear layers then run candle's Q8_0 (or GGUF/f32) kernels and attention
//! runs as candle ops; the int8, 4-bit and attention kernels of this crate are for the CPU.
//!
//! # CPU kernels
//! The default weight format ([`WeightFormat::Q4`]) keeps the file's 4-bit tensors and runs
//! them with [`q4`] (AVX2 + FMA), the rest with [`int8`] (AVX-512 VNNI, AVX2 or portable,
//! chosen at run time). `OPENLEDGER_KERNEL=avx512vnni|avx2|portable` forces the int8 kernel
//! (`portable` also turns the 4-bit kernel off), to measure a slower CPU's path on a faster
//! one; [`Llama::kernels`] (logged at load) says what runs.
//!
//! # Example
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use openledger_engine::{Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
//! let engine = Engine::start(EngineConfig::default())?;
//! let out = engine.generate_blocking(GenerateRequest {
//!     prompt: Prompt::Text("The capital of France is".into()),
//!     adapter: None,
//!     params: SamplingParams { temperature: 0.0, max_tokens: 8, ..Default::default() },
//! })?;
//! println!("{} ({} tokens)", out.text, out.usage.completion_tokens);
//! # Ok(()) }
//! ```

mod attention;
mod config;
mod engine;
pub mod int8;
pub mod lora;
pub mod metrics;
pub mod model;
pub mod q4;
mod scheduler;
pub use openledger_inference as inference;
pub use openledger_sampling as sampling;
pub use openledger_tokenizer::{DEFAULT_MODEL_FILE, default_model_dir};

use std::path::PathBuf;

pub use candle_core::Device;
pub use config::EngineConfig;
pub use engine::Engine;
pub use lora::{AdapterStore, LoraAdapter, Target};
pub use model::{Llama, LlamaConfig, WeightFormat};
pub use openledger_inference::{
    Backend, ChatMessage, Completion, Event, FinishReason, GenerateRequest, Generation, Prompt,
    Usage, render_chatml,
};
pub use sampling::SamplingParams;

/// Errors of the inference engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be opened. Run `scripts/fetch-model.sh` (or set
    /// `OPENLEDGER_MODEL_DIR`) so the GGUF file exists.
    #[error(
        "cannot open model file {path}: {source}; run scripts/fetch-model.sh or set OPENLEDGER_MODEL_DIR"
    )]
    ModelFile {
        /// The path that was tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file is not a supported GGUF Llama model.
    #[error("unsupported or corrupt model: {reason}")]
    ModelFormat {
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer could not be rebuilt from the GGUF metadata.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] openledger_tokenizer::Error),
    /// A tensor operation failed (a bug or an out-of-memory condition).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The model produced a row of logits with nothing to sample from (a broken model).
    #[error(transparent)]
    Sampling(openledger_sampling::Error),
    /// The request is invalid (parameter out of range, empty prompt, ...).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Which parameter and why.
        reason: String,
    },
    /// The prompt (plus what is already generated) does not fit in the context window.
    #[error(
        "the prompt has {tokens} tokens but the model's context window is {limit} tokens; shorten the prompt"
    )]
    ContextOverflow {
        /// Tokens needed.
        tokens: usize,
        /// Context window of the model.
        limit: usize,
    },
    /// No adapter with this name or content id is known.
    #[error("unknown adapter {adapter:?}; GET /v1/models lists the available ones")]
    UnknownAdapter {
        /// The name or id asked for.
        adapter: String,
    },
    /// An adapter file could not be read.
    #[error("cannot read adapter file {path}: {source}")]
    AdapterFile {
        /// File or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An adapter file is malformed or does not fit the base model.
    #[error("adapter {adapter}: {source}")]
    AdapterFormat {
        /// Adapter name.
        adapter: String,
        /// What is wrong.
        source: openledger_adapter::Error,
    },
    /// An adapter file changed on disk since it was indexed (its hash differs).
    #[error(
        "adapter {adapter}: the file changed since it was indexed; rescan the adapter directory"
    )]
    AdapterChanged {
        /// Adapter name.
        adapter: String,
    },
    /// A configuration value is invalid.
    #[error("invalid config {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for openledger_inference::Error {
    /// A failure while serving a request: unknown or unusable adapters and bad requests are
    /// the client's, anything else the node's.
    fn from(e: Error) -> Self {
        use openledger_inference::Error as E;
        match e {
            Error::UnknownAdapter { adapter } => E::UnknownAdapter { adapter },
            Error::AdapterFile { ref path, .. } => E::AdapterUnusable {
                adapter: path.display().to_string(),
                reason: e.to_string(),
            },
            Error::AdapterFormat { adapter, source } => E::AdapterUnusable {
                adapter,
                reason: source.to_string(),
            },
            Error::AdapterChanged { ref adapter } => E::AdapterUnusable {
                adapter: adapter.clone(),
                reason: e.to_string(),
            },
            Error::InvalidRequest { reason } => E::InvalidParam {
                param: "prompt",
                reason,
            },
            Error::ContextOverflow { tokens, limit } => E::ContextOverflow { tokens, limit },
            other => E::Inference {
                reason: other.to_string(),
            },
        }
    }
}

impl From<openledger_sampling::Error> for Error {
    /// Out-of-range parameters are the caller's mistake ([`Error::InvalidRequest`]); anything
    /// else is the model's ([`Error::Sampling`]).
    fn from(e: openledger_sampling::Error) -> Self {
        match e {
            openledger_sampling::Error::InvalidParams { reason, .. } => {
                Error::InvalidRequest { reason }
            }
            other => Error::Sampling(other),
        }
    }
}
