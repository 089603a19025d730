//! The OpenLedger oracle node's HTTP server.
//!
//! **What it is for:** serving the inference engine (`openledger-engine`) through an
//! OpenAI-compatible API so any stock OpenAI client works: `POST /v1/completions`,
//! `POST /v1/chat/completions` (with `stream: true` as server-sent events), `GET /v1/models`
//! (the base model and every adapter; `model` = `smollm2-135m` or `smollm2-135m:<adapter>`,
//! where `<adapter>` is an adapter's name or SHA-256), token `usage` in every response,
//! OpenAI-shaped errors with proper status codes, `GET /health` and `GET /metrics`
//! (Prometheus text).
//!
//! **What it is not for:** payment (vouchers, receipts, the journal) and chain access; those
//! layers wrap this router in later work. The command line lives in the `openledger` binary
//! (`openledger oracle serve`), which builds a [`Config`] and calls [`serve`].
//!
//! Configuration is layered: [`Config::default`] < TOML file ([`Config::from_toml_file`]) <
//! `OPENLEDGER_*` environment ([`Config::apply_env`]) < CLI flags (set by the binary).

mod api;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openledger_engine::{Engine, EngineConfig, WeightFormat};
use serde::{Deserialize, Serialize};

pub use api::router;

/// Errors of the oracle server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine failed to start (model missing or unreadable, bad adapter, ...).
    #[error(transparent)]
    Engine(#[from] openledger_engine::Error),
    /// The listen address could not be bound; pick another with `OPENLEDGER_ORACLE_LISTEN`.
    #[error("cannot listen on {addr}: {source}; set OPENLEDGER_ORACLE_LISTEN to a free address")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An environment variable has a value that does not parse.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Oracle server settings. Every field can be set in the TOML file (same name) or by the
/// environment variable named in its doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Env `OPENLEDGER_ORACLE_LISTEN`; default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// GGUF model file. Env `OPENLEDGER_MODEL_PATH`; default
    /// `$OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf` (dir default
    /// `~/.cache/openledger/models`).
    pub model_path: PathBuf,
    /// Name the base model is served under. Env `OPENLEDGER_MODEL_NAME`; default `smollm2-135m`.
    pub model_name: String,
    /// `cpu` or `cuda:N` (needs the `cuda` feature). Env `OPENLEDGER_DEVICE`; default `cpu`.
    pub device: String,
    /// Linear weights in memory: `gguf` (as stored), `q8_0` or `f32`. Env
    /// `OPENLEDGER_WEIGHT_FORMAT`; default `q8_0` (fastest measured on CPU; see
    /// `openledger_engine::WeightFormat`).
    pub weight_format: WeightFormat,
    /// Directory of LoRA adapters (`*.safetensors`). Env `OPENLEDGER_ADAPTER_DIR`; default none.
    pub adapter_dir: Option<PathBuf>,
    /// Unpinned adapters kept in memory (LRU). Env `OPENLEDGER_ADAPTER_CACHE`; default 64.
    pub adapter_cache: usize,
    /// Adapters (names or SHA-256 ids) kept in memory for good. Env
    /// `OPENLEDGER_PINNED_ADAPTERS` (comma-separated); default none.
    pub pinned_adapters: Vec<String>,
    /// Most sequences decoded together. Env `OPENLEDGER_MAX_BATCH`; default 16.
    pub max_batch: usize,
    /// Most requests waiting for a batch slot before new ones get 503. Env
    /// `OPENLEDGER_MAX_QUEUE`; default 256.
    pub max_queue: usize,
    /// `max_tokens` when a chat request gives none (completions default to 16, as OpenAI).
    /// Env `OPENLEDGER_DEFAULT_MAX_TOKENS`; default 256.
    pub default_max_tokens: usize,
    /// Upper bound on `max_tokens`. Env `OPENLEDGER_MAX_TOKENS_LIMIT`; default 2048.
    pub max_tokens_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        let e = EngineConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            model_path: e.model_path,
            model_name: e.model_name,
            device: e.device,
            weight_format: e.weight_format,
            adapter_dir: e.adapter_dir,
            adapter_cache: e.adapter_cache,
            pinned_adapters: e.pinned_adapters,
            max_batch: e.max_batch,
            max_queue: e.max_queue,
            default_max_tokens: 256,
            max_tokens_limit: 2048,
        }
    }
}

impl Config {
    /// Defaults overlaid with a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let err = |reason: String| Error::ConfigFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.to_string()))
    }

    /// Overlays the `OPENLEDGER_*` environment variables that are set.
    pub fn apply_env(self) -> Result<Self> {
        self.apply_vars(|k| std::env::var(k).ok())
    }

    fn apply_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        fn parse<T: std::str::FromStr>(var: &'static str, v: String) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| Error::Env {
                var,
                value: v,
                reason: e.to_string(),
            })
        }
        macro_rules! set {
            ($var:literal, $field:expr) => {
                if let Some(v) = get($var) {
                    $field = parse($var, v)?;
                }
            };
        }
        set!("OPENLEDGER_ORACLE_LISTEN", self.listen);
        set!("OPENLEDGER_MODEL_NAME", self.model_name);
        set!("OPENLEDGER_DEVICE", self.device);
        set!("OPENLEDGER_ADAPTER_CACHE", self.adapter_cache);
        set!("OPENLEDGER_MAX_BATCH", self.max_batch);
        set!("OPENLEDGER_MAX_QUEUE", self.max_queue);
        set!("OPENLEDGER_DEFAULT_MAX_TOKENS", self.default_max_tokens);
        set!("OPENLEDGER_MAX_TOKENS_LIMIT", self.max_tokens_limit);
        if let Some(v) = get("OPENLEDGER_MODEL_PATH") {
            self.model_path = v.into();
        }
        if let Some(v) = get("OPENLEDGER_WEIGHT_FORMAT") {
            self.weight_format = parse::<WeightFormat>("OPENLEDGER_WEIGHT_FORMAT", v)?;
        }
        if let Some(v) = get("OPENLEDGER_ADAPTER_DIR") {
            self.adapter_dir = (!v.is_empty()).then(|| v.into());
        }
        if let Some(v) = get("OPENLEDGER_PINNED_ADAPTERS") {
            self.pinned_adapters = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(self)
    }

    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            model_path: self.model_path.clone(),
            model_name: self.model_name.clone(),
            device: self.device.clone(),
            weight_format: self.weight_format,
            adapter_dir: self.adapter_dir.clone(),
            adapter_cache: self.adapter_cache,
            pinned_adapters: self.pinned_adapters.clone(),
            max_batch: self.max_batch,
            max_queue: self.max_queue,
            ..EngineConfig::default()
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    engine: Engine,
    config: Arc<Config>,
    metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// State over a started engine.
    pub fn new(engine: Engine, config: Config) -> Self {
        Self {
            engine,
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::default()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Loads the model (progress goes to the `engine::load` log target) and binds the address.
    pub async fn bind(config: Config) -> Result<Self> {
        let engine_cfg = config.engine_config();
        tracing::info!(target: "oracle::serve", model = %engine_cfg.model_path.display(), "starting engine");
        let engine = tokio::task::spawn_blocking(move || Engine::start(engine_cfg))
            .await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))??;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            listener,
            state: AppState::new(engine, config),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    /// The handler state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = self.local_addr();
        tracing::info!(
            target: "oracle::serve",
            %addr,
            model = self.state.engine.model_name(),
            adapters = self.state.engine.adapters().list().len(),
            "serving (no chain configured: requests are not charged)"
        );
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve)
    }
}

/// Starts the oracle and serves until Ctrl-C.
pub async fn serve(config: Config) -> Result<()> {
    Server::bind(config)
        .await?
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_toml_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oracle.toml");
        std::fs::write(
            &path,
            "max_batch = 4\nmodel_name = \"from-toml\"\nweight_format = \"f32\"\n",
        )
        .unwrap();
        let c = Config::from_toml_file(&path).unwrap();
        assert_eq!(
            (c.max_batch, c.model_name.as_str(), c.weight_format),
            (4, "from-toml", WeightFormat::F32)
        );
        assert_eq!(c.max_queue, Config::default().max_queue);
        let env = |k: &str| match k {
            "OPENLEDGER_MODEL_NAME" => Some("from-env".to_string()),
            "OPENLEDGER_PINNED_ADAPTERS" => Some("a, b".to_string()),
            "OPENLEDGER_WEIGHT_FORMAT" => Some("gguf".to_string()),
            _ => None,
        };
        let c = c.apply_vars(env).unwrap();
        assert_eq!(c.model_name, "from-env");
        assert_eq!(c.max_batch, 4);
        assert_eq!(c.weight_format, WeightFormat::Gguf);
        assert_eq!(c.pinned_adapters, vec!["a", "b"]);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Config::default()
            .apply_vars(|k| (k == "OPENLEDGER_MAX_BATCH").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("OPENLEDGER_MAX_BATCH"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "max_bach = 4\n").unwrap();
        assert!(
            Config::from_toml_file(&path).is_err(),
            "unknown keys are refused"
        );
    }
}
