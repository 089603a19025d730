//! The `[oracle]`, `[oracle.engine]` and `[oracle.tch]` tables: settings of the oracle node.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use openledger_engine::{EngineConfig, WeightFormat};
use openledger_oracle::{BackendKind, TchConfig};
use serde::Deserialize;

use crate::{Paths, set};

/// Oracle node settings: the `[oracle]` table, `OPENLEDGER_ORACLE_*` env and these flags.
///
/// Resolves to [`openledger_oracle::Config`]; a field left `None` keeps the lower layer's value.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OracleOptions {
    /// Address the HTTP API listens on [default: 127.0.0.1:8080]
    #[arg(long, env = "OPENLEDGER_ORACLE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// `max_tokens` of a chat request that gives none; completions default to 16, as OpenAI's
    /// [default: 256]
    #[arg(long, env = "OPENLEDGER_ORACLE_DEFAULT_MAX_TOKENS", value_name = "N")]
    pub default_max_tokens: Option<usize>,
    /// Upper bound on a request's `max_tokens` [default: 2048]
    #[arg(long, env = "OPENLEDGER_ORACLE_MAX_TOKENS_LIMIT", value_name = "N")]
    pub max_tokens_limit: Option<usize>,
    /// Inference backend: candle (GGUF models) or tch (TorchScript; needs a build with the
    /// `tch` feature) [default: candle]
    #[arg(long, env = "OPENLEDGER_ORACLE_BACKEND", value_name = "BACKEND")]
    pub backend: Option<BackendKind>,
    /// The inference engine: the `[oracle.engine]` table.
    #[command(flatten)]
    pub engine: EngineOptions,
    /// The libtorch backend: the `[oracle.tch]` table.
    #[command(flatten)]
    pub tch: TchOptions,
}

/// libtorch backend settings (used with `backend = "tch"`): the `[oracle.tch]` table,
/// `OPENLEDGER_ORACLE_TCH_*` env and `--tch-*` flags. Resolves to [`TchConfig`].
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TchOptions {
    /// TorchScript model file (`torch.jit.script(model).save(path)`) [default: none]
    #[arg(
        id = "tch_model",
        long = "tch-model",
        visible_alias = "model",
        env = "OPENLEDGER_ORACLE_TCH_MODEL",
        value_name = "FILE"
    )]
    pub model: Option<PathBuf>,
    /// GGUF file whose tokenizer the TorchScript model uses [default: none, meaning the
    /// engine's model_path]
    #[arg(
        id = "tch_tokenizer",
        long = "tch-tokenizer",
        visible_alias = "tokenizer",
        env = "OPENLEDGER_ORACLE_TCH_TOKENIZER",
        value_name = "FILE"
    )]
    pub tokenizer: Option<PathBuf>,
    /// Name the TorchScript model is served under [default: torchscript]
    #[arg(
        id = "tch_model_name",
        long = "tch-model-name",
        env = "OPENLEDGER_ORACLE_TCH_MODEL_NAME",
        value_name = "NAME"
    )]
    pub model_name: Option<String>,
    /// Longest sequence (prompt + generated) run through the module [default: 2048]
    #[arg(
        id = "tch_context_len",
        long = "tch-context-len",
        env = "OPENLEDGER_ORACLE_TCH_CONTEXT_LEN",
        value_name = "N"
    )]
    pub context_len: Option<usize>,
    /// Generations run at once [default: 4]
    #[arg(
        id = "tch_max_active",
        long = "tch-max-active",
        env = "OPENLEDGER_ORACLE_TCH_MAX_ACTIVE",
        value_name = "N"
    )]
    pub max_active: Option<usize>,
}

impl TchOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            model: self.model.or(lower.model),
            tokenizer: self.tokenizer.or(lower.tokenizer),
            model_name: self.model_name.or(lower.model_name),
            context_len: self.context_len.or(lower.context_len),
            max_active: self.max_active.or(lower.max_active),
        }
    }

    /// Writes the set options into `c`.
    pub fn apply(self, c: &mut TchConfig) {
        if self.model.is_some() {
            c.model = self.model;
        }
        if self.tokenizer.is_some() {
            c.tokenizer = self.tokenizer;
        }
        set(&mut c.model_name, self.model_name);
        set(&mut c.context_len, self.context_len);
        set(&mut c.max_active, self.max_active);
    }
}

/// Inference engine settings: the `[oracle.engine]` table, `OPENLEDGER_ORACLE_*` env and these
/// flags. Resolves to [`EngineConfig`].
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// GGUF model file [default: $OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf]
    #[arg(long, env = "OPENLEDGER_ORACLE_MODEL_PATH", value_name = "FILE")]
    pub model_path: Option<PathBuf>,
    /// Name the base model is served under [default: smollm2-135m]
    #[arg(long, env = "OPENLEDGER_ORACLE_MODEL_NAME", value_name = "NAME")]
    pub model_name: Option<String>,
    /// `cpu` or `cuda:N` (cuda needs a build with the `cuda` feature) [default: cpu]
    #[arg(long, env = "OPENLEDGER_ORACLE_DEVICE")]
    pub device: Option<String>,
    /// Weights in memory: q4, q8_0, gguf or f32 [default: q4]
    #[arg(long, env = "OPENLEDGER_ORACLE_WEIGHT_FORMAT", value_name = "FORMAT")]
    pub weight_format: Option<WeightFormat>,
    /// Directory of LoRA adapters (`*.safetensors`) [default: none]
    #[arg(long, env = "OPENLEDGER_ORACLE_ADAPTER_DIR", value_name = "DIR")]
    pub adapter_dir: Option<PathBuf>,
    /// Unpinned adapters kept in memory [default: 64]
    #[arg(long, env = "OPENLEDGER_ORACLE_ADAPTER_CACHE", value_name = "N")]
    pub adapter_cache: Option<usize>,
    /// Adapters (names or ids, comma-separated) loaded at start and never evicted
    /// [default: none]
    #[arg(
        long,
        env = "OPENLEDGER_ORACLE_PINNED_ADAPTERS",
        value_name = "NAMES",
        value_delimiter = ',',
        value_parser = adapter_name
    )]
    pub pinned_adapters: Option<Vec<String>>,
    /// Most sequences decoded together in one step [default: 16]
    #[arg(long, env = "OPENLEDGER_ORACLE_MAX_BATCH", value_name = "N")]
    pub max_batch: Option<usize>,
    /// Most requests waiting to join the batch before new ones are refused [default: 256]
    #[arg(long, env = "OPENLEDGER_ORACLE_MAX_QUEUE", value_name = "N")]
    pub max_queue: Option<usize>,
    /// Prompt tokens prefilled per step over all sequences; longer prompts are prefilled in
    /// chunks [default: 128]
    #[arg(long, env = "OPENLEDGER_ORACLE_MAX_PREFILL_TOKENS", value_name = "N")]
    pub max_prefill_tokens: Option<usize>,
    /// Events buffered per request before its sequence is parked [default: 64]
    #[arg(long, env = "OPENLEDGER_ORACLE_STREAM_BUFFER", value_name = "N")]
    pub stream_buffer: Option<usize>,
}

impl OracleOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            listen: self.listen.or(lower.listen),
            default_max_tokens: self.default_max_tokens.or(lower.default_max_tokens),
            max_tokens_limit: self.max_tokens_limit.or(lower.max_tokens_limit),
            backend: self.backend.or(lower.backend),
            engine: self.engine.over(lower.engine),
            tch: self.tch.over(lower.tch),
        }
    }

    /// The oracle config: library defaults (the model in [`Paths::model_dir`]) with the set
    /// options applied.
    pub fn resolve(self, paths: &Paths) -> openledger_oracle::Config {
        let mut c = openledger_oracle::Config::default();
        c.engine.model_path = paths.default_model_path();
        set(&mut c.listen, self.listen);
        set(&mut c.default_max_tokens, self.default_max_tokens);
        set(&mut c.max_tokens_limit, self.max_tokens_limit);
        set(&mut c.backend, self.backend);
        self.engine.apply(&mut c.engine);
        self.tch.apply(&mut c.tch);
        c
    }
}

impl EngineOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            model_path: self.model_path.or(lower.model_path),
            model_name: self.model_name.or(lower.model_name),
            device: self.device.or(lower.device),
            weight_format: self.weight_format.or(lower.weight_format),
            adapter_dir: self.adapter_dir.or(lower.adapter_dir),
            adapter_cache: self.adapter_cache.or(lower.adapter_cache),
            pinned_adapters: self.pinned_adapters.or(lower.pinned_adapters),
            max_batch: self.max_batch.or(lower.max_batch),
            max_queue: self.max_queue.or(lower.max_queue),
            max_prefill_tokens: self.max_prefill_tokens.or(lower.max_prefill_tokens),
            stream_buffer: self.stream_buffer.or(lower.stream_buffer),
        }
    }

    /// Writes the set options into `c`.
    pub fn apply(self, c: &mut EngineConfig) {
        set(&mut c.model_path, self.model_path);
        set(&mut c.model_name, self.model_name);
        set(&mut c.device, self.device);
        set(&mut c.weight_format, self.weight_format);
        if self.adapter_dir.is_some() {
            c.adapter_dir = self.adapter_dir;
        }
        set(&mut c.adapter_cache, self.adapter_cache);
        set(&mut c.pinned_adapters, self.pinned_adapters);
        set(&mut c.max_batch, self.max_batch);
        set(&mut c.max_queue, self.max_queue);
        set(&mut c.max_prefill_tokens, self.max_prefill_tokens);
        set(&mut c.stream_buffer, self.stream_buffer);
    }
}

/// One adapter name of a comma-separated list, trimmed; empty names are refused.
fn adapter_name(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("empty adapter name in the list".to_string()),
        name => Ok(name.to_string()),
    }
}
