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
    /// Paid mode: the `[oracle.chain]` table (its flags belong to `openledger oracle serve`,
    /// which flattens [`ChainOptions`] itself).
    #[arg(skip)]
    pub chain: ChainOptions,
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
            chain: self.chain.over(lower.chain),
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
        c.chain = self.chain.resolve();
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

/// Paid mode: the chain the oracle settles on (the `[oracle.chain]` table,
/// `OPENLEDGER_ORACLE_*` env and these flags of `openledger oracle serve`; the flag names are
/// the deployer's). Paid mode is on when a manifest is given; the keys and the keystore
/// password come from env or flags only. Resolves to [`openledger_oracle::ChainConfig`].
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(from = "ChainTable")]
pub struct ChainOptions {
    /// Deployment manifest of the suite to settle on; turns paid mode on [default: none,
    /// unpaid development mode]
    #[arg(long, env = "OPENLEDGER_ORACLE_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// JSON-RPC URL of the chain [default: http://127.0.0.1:8545]
    #[arg(long, env = "OPENLEDGER_ORACLE_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The node's data directory: the receipt journal and the content store
    /// [default: .openledger/oracle]
    #[arg(long, env = "OPENLEDGER_ORACLE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Hex private key of the operator account; prefer the env var. Not read from the file
    /// [default: none]
    #[arg(
        long,
        env = "OPENLEDGER_ORACLE_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "keystore",
        value_name = "HEX"
    )]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore of the operator account [default: none]
    #[arg(long, env = "OPENLEDGER_ORACLE_KEYSTORE", value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// Password of the keystore; not read from the file [default: empty]
    #[arg(
        long,
        env = "OPENLEDGER_ORACLE_KEYSTORE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub keystore_password: Option<String>,
    /// Hex private key of the operator's registered batch signer, if not the operator key;
    /// not read from the file [default: the operator key]
    #[arg(
        long,
        env = "OPENLEDGER_ORACLE_SIGNER_KEY",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub signer_key: Option<String>,
    /// Cut a batch when this many receipts are queued [default: 1000]
    #[arg(long, env = "OPENLEDGER_ORACLE_BATCH_MAX_RECEIPTS", value_name = "N")]
    pub batch_max_receipts: Option<usize>,
    /// ... or when the oldest queued receipt is this old [default: 60]
    #[arg(long, env = "OPENLEDGER_ORACLE_BATCH_MAX_AGE", value_name = "SECONDS")]
    pub batch_max_age: Option<u64>,
    /// Deadline of a signed batch after signing [default: 600]
    #[arg(long, env = "OPENLEDGER_ORACLE_BATCH_DEADLINE", value_name = "SECONDS")]
    pub batch_deadline: Option<u64>,
    /// Refuse vouchers expiring sooner than this after serving [default: 900]
    #[arg(
        long,
        env = "OPENLEDGER_ORACLE_SETTLEMENT_MARGIN",
        value_name = "SECONDS"
    )]
    pub settlement_margin: Option<u64>,
    /// How often the registries are polled and the batcher runs [default: 1000]
    #[arg(long, env = "OPENLEDGER_ORACLE_POLL_INTERVAL_MS", value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
}

/// The `[oracle.chain]` table as written in the file (and as `openledger config` prints it):
/// [`ChainOptions`] without the secrets, the batch policy as a `batch` sub-table.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ChainTable {
    manifest: Option<PathBuf>,
    rpc_url: Option<String>,
    data_dir: Option<PathBuf>,
    keystore: Option<PathBuf>,
    batch: BatchTable,
    settlement_margin_secs: Option<u64>,
    poll_interval_ms: Option<u64>,
}

/// `[oracle.chain.batch]`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BatchTable {
    max_receipts: Option<usize>,
    max_age_secs: Option<u64>,
    deadline_secs: Option<u64>,
}

impl From<ChainTable> for ChainOptions {
    fn from(t: ChainTable) -> Self {
        Self {
            manifest: t.manifest,
            rpc_url: t.rpc_url,
            data_dir: t.data_dir,
            private_key: None,
            keystore: t.keystore,
            keystore_password: None,
            signer_key: None,
            batch_max_receipts: t.batch.max_receipts,
            batch_max_age: t.batch.max_age_secs,
            batch_deadline: t.batch.deadline_secs,
            settlement_margin: t.settlement_margin_secs,
            poll_interval_ms: t.poll_interval_ms,
        }
    }
}

impl ChainOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            manifest: self.manifest.or(lower.manifest),
            rpc_url: self.rpc_url.or(lower.rpc_url),
            data_dir: self.data_dir.or(lower.data_dir),
            private_key: self.private_key.or(lower.private_key),
            keystore: self.keystore.or(lower.keystore),
            keystore_password: self.keystore_password.or(lower.keystore_password),
            signer_key: self.signer_key.or(lower.signer_key),
            batch_max_receipts: self.batch_max_receipts.or(lower.batch_max_receipts),
            batch_max_age: self.batch_max_age.or(lower.batch_max_age),
            batch_deadline: self.batch_deadline.or(lower.batch_deadline),
            settlement_margin: self.settlement_margin.or(lower.settlement_margin),
            poll_interval_ms: self.poll_interval_ms.or(lower.poll_interval_ms),
        }
    }

    /// The paid mode's settings, or `None` (unpaid) when no manifest is given.
    pub fn resolve(self) -> Option<openledger_oracle::ChainConfig> {
        let manifest = self.manifest?;
        let mut c = openledger_oracle::ChainConfig::default();
        c.paid.manifest = manifest;
        set(&mut c.paid.rpc_url, self.rpc_url);
        set(&mut c.paid.data_dir, self.data_dir);
        set(&mut c.paid.batch.max_receipts, self.batch_max_receipts);
        set(&mut c.paid.batch.max_age_secs, self.batch_max_age);
        set(&mut c.paid.batch.deadline_secs, self.batch_deadline);
        set(&mut c.paid.settlement_margin_secs, self.settlement_margin);
        set(&mut c.paid.poll_interval_ms, self.poll_interval_ms);
        c.private_key = self.private_key;
        c.keystore = self.keystore;
        c.keystore_password = self.keystore_password;
        c.signer_key = self.signer_key;
        Some(c)
    }
}
