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
pub use metrics::Metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openledger_engine::{Engine, EngineConfig};
use serde::{Deserialize, Serialize};

pub use api::router;

/// How often the metrics recorder folds histogram samples into buckets between scrapes.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

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

/// Oracle server settings: the HTTP side here, the inference engine in [`Config::engine`].
///
/// In the TOML file the engine settings are the `[engine]` table, with the field names of
/// [`EngineConfig`]. These environment variables override the file:
///
/// | variable | field |
/// |---|---|
/// | `OPENLEDGER_ORACLE_LISTEN` | `listen` |
/// | `OPENLEDGER_DEFAULT_MAX_TOKENS` | `default_max_tokens` |
/// | `OPENLEDGER_MAX_TOKENS_LIMIT` | `max_tokens_limit` |
/// | `OPENLEDGER_MODEL_PATH` | `engine.model_path` |
/// | `OPENLEDGER_MODEL_NAME` | `engine.model_name` |
/// | `OPENLEDGER_DEVICE` | `engine.device` |
/// | `OPENLEDGER_WEIGHT_FORMAT` | `engine.weight_format` |
/// | `OPENLEDGER_KERNEL` | none: forces the CPU matrix kernel for the process (see `openledger_engine::int8`) |
/// | `OPENLEDGER_ADAPTER_DIR` | `engine.adapter_dir` (empty: none) |
/// | `OPENLEDGER_ADAPTER_CACHE` | `engine.adapter_cache` |
/// | `OPENLEDGER_PINNED_ADAPTERS` | `engine.pinned_adapters` (comma-separated) |
/// | `OPENLEDGER_MAX_BATCH` | `engine.max_batch` |
/// | `OPENLEDGER_MAX_QUEUE` | `engine.max_queue` |
/// | `OPENLEDGER_MAX_PREFILL_TOKENS` | `engine.max_prefill_tokens` |
/// | `OPENLEDGER_STREAM_BUFFER` | `engine.stream_buffer` |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `max_tokens` when a chat request gives none (completions default to 16, as OpenAI).
    /// Default 256.
    pub default_max_tokens: usize,
    /// Upper bound on `max_tokens`. Default 2048.
    pub max_tokens_limit: usize,
    /// The inference engine (model, device, weights, adapters, batching).
    pub engine: EngineConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            default_max_tokens: 256,
            max_tokens_limit: 2048,
            engine: EngineConfig::default(),
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
        let e = &mut self.engine;
        set!("OPENLEDGER_ORACLE_LISTEN", self.listen);
        set!("OPENLEDGER_DEFAULT_MAX_TOKENS", self.default_max_tokens);
        set!("OPENLEDGER_MAX_TOKENS_LIMIT", self.max_tokens_limit);
        set!("OPENLEDGER_MODEL_PATH", e.model_path);
        set!("OPENLEDGER_MODEL_NAME", e.model_name);
        set!("OPENLEDGER_DEVICE", e.device);
        set!("OPENLEDGER_WEIGHT_FORMAT", e.weight_format);
        set!("OPENLEDGER_ADAPTER_CACHE", e.adapter_cache);
        set!("OPENLEDGER_MAX_BATCH", e.max_batch);
        set!("OPENLEDGER_MAX_QUEUE", e.max_queue);
        set!("OPENLEDGER_MAX_PREFILL_TOKENS", e.max_prefill_tokens);
        set!("OPENLEDGER_STREAM_BUFFER", e.stream_buffer);
        if let Some(v) = get("OPENLEDGER_ADAPTER_DIR") {
            e.adapter_dir = (!v.is_empty()).then(|| v.into());
        }
        if let Some(v) = get("OPENLEDGER_PINNED_ADAPTERS") {
            e.pinned_adapters = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(self)
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    engine: Engine,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// State over an engine started inside `metrics`' recorder ([`Metrics::scope`]).
    pub fn new(engine: Engine, config: Config, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            config: Arc::new(config),
            metrics,
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
        let engine_cfg = config.engine.clone();
        tracing::info!(target: "oracle::serve", model = %engine_cfg.model_path.display(), "starting engine");
        let metrics = Arc::new(Metrics::new());
        let m = metrics.clone();
        let engine = tokio::task::spawn_blocking(move || m.scope(|| Engine::start(engine_cfg)))
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
            state: AppState::new(engine, config, metrics),
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
        let metrics = self.state.metrics.clone();
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                metrics.run_upkeep();
            }
        });
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve);
        upkeep.abort();
        served
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
    use openledger_engine::WeightFormat;

    use super::*;

    #[test]
    fn env_overrides_toml_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oracle.toml");
        std::fs::write(
            &path,
            "max_tokens_limit = 99\n[engine]\nmax_batch = 4\nmodel_name = \"from-toml\"\n\
             weight_format = \"f32\"\n",
        )
        .unwrap();
        let c = Config::from_toml_file(&path).unwrap();
        let e = &c.engine;
        assert_eq!(
            (
                c.max_tokens_limit,
                e.max_batch,
                e.model_name.as_str(),
                e.weight_format
            ),
            (99, 4, "from-toml", WeightFormat::F32)
        );
        assert_eq!(e.max_queue, EngineConfig::default().max_queue);
        let env = |k: &str| match k {
            "OPENLEDGER_MODEL_NAME" => Some("from-env".to_string()),
            "OPENLEDGER_PINNED_ADAPTERS" => Some("a, b".to_string()),
            "OPENLEDGER_WEIGHT_FORMAT" => Some("gguf".to_string()),
            "OPENLEDGER_MAX_PREFILL_TOKENS" => Some("32".to_string()),
            _ => None,
        };
        let e = c.apply_vars(env).unwrap().engine;
        assert_eq!(e.model_name, "from-env");
        assert_eq!(e.max_batch, 4);
        assert_eq!(e.weight_format, WeightFormat::Gguf);
        assert_eq!(e.pinned_adapters, vec!["a", "b"]);
        assert_eq!(e.max_prefill_tokens, 32);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Config::default()
            .apply_vars(|k| (k == "OPENLEDGER_MAX_BATCH").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("OPENLEDGER_MAX_BATCH"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        for bad in [
            "max_bach = 4\n",
            "[engine]\nmax_bach = 4\n",
            "max_batch = 4\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                Config::from_toml_file(&path).is_err(),
                "unknown keys are refused: {bad:?}"
            );
        }
    }
}
