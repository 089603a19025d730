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
//! [`Config`] is a plain value: the binary's layered loader (`openledger-config`) builds it from
//! defaults, `openledger.toml`, `OPENLEDGER_ORACLE_*` env and flags.

mod api;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use openledger_engine::{Engine, EngineConfig};
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
    /// The HTTP server failed while running.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Oracle server settings: the HTTP side here, the inference engine in [`Config::engine`].
///
/// A plain value with library defaults ([`Config::default`] reads no environment). The
/// `openledger` binary builds it with one layered loader (`openledger-config`): defaults <
/// the `[oracle]` and `[oracle.engine]` tables of `openledger.toml` < `OPENLEDGER_ORACLE_*`
/// env < flags; `openledger oracle serve --help` lists every field with its env var and default.
/// Serializes with the field names of the file's tables.
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
        let engine_cfg = config.engine.clone();
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
