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
//! **Paid mode** ([`Config::chain`], see [`paid`]): every completion is paid by a signed
//! voucher used as the API key, checked before any compute (401 for a missing or unreadable
//! key, 402 when the voucher does not pay for the request, 404 for a model this operator does
//! not serve on chain), metered with the model's tokenizer, attributed, and journaled before
//! the response (or the stream's last event) is sent; `GET /v1/receipts/{id}` and
//! `GET /v1/batches/{seq}` serve receipts with Merkle proofs and settled batches. Models are
//! the on-chain ones, named `model-<id>`. Without a chain the node serves unpaid (development
//! mode) and says so at start. The rules and the chain I/O are `openledger-payments`.
//!
//! The command line lives in the `openledger` binary (`openledger oracle serve`), which builds
//! a [`Config`] and calls [`serve`].
//!
//! [`Config`] is a plain value: the binary's layered loader (`openledger-config`) builds it from
//! defaults, `openledger.toml`, `OPENLEDGER_ORACLE_*` env and flags.

mod api;
mod backend;
mod metrics;
pub mod paid;
pub use metrics::Metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use openledger_engine::{Backend, EngineConfig};
use serde::{Deserialize, Serialize};

pub use api::router;
pub use backend::{BackendKind, TchConfig};
pub use openledger_payments::Payments;
pub use paid::ChainConfig;

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
    /// The backend could not be started (missing model, feature not built in, ...).
    #[error("backend: {reason}")]
    Backend {
        /// What went wrong.
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
    /// Which backend serves requests: `candle` (default) or `tch`.
    pub backend: BackendKind,
    /// The candle engine (model, device, weights, adapters, batching).
    pub engine: EngineConfig,
    /// The libtorch backend (used with `backend = "tch"`).
    pub tch: TchConfig,
    /// The chain to settle on: paid mode. Default none (unpaid development mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            default_max_tokens: 256,
            max_tokens_limit: 2048,
            backend: BackendKind::default(),
            engine: EngineConfig::default(),
            tch: TchConfig::default(),
            chain: None,
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    backend: Arc<dyn Backend>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    payments: Option<Payments>,
}

impl AppState {
    /// State over a started backend; a candle engine records its metrics into `metrics` when
    /// started inside its recorder ([`Metrics::scope`]).
    pub fn new(backend: Arc<dyn Backend>, config: Config, metrics: Arc<Metrics>) -> Self {
        Self {
            backend,
            config: Arc::new(config),
            metrics,
            payments: None,
        }
    }

    /// This state in paid mode.
    pub fn with_payments(mut self, payments: Payments) -> Self {
        self.payments = Some(payments);
        self
    }

    /// The paid mode, if a chain is configured.
    pub fn payments(&self) -> Option<&Payments> {
        self.payments.as_ref()
    }

    /// The backend requests are served through.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Starts the configured backend inside this server's metrics recorder (model loading
    /// progress goes to the `engine::load` log target) and binds the address.
    pub async fn bind(config: Config) -> Result<Self> {
        tracing::info!(target: "oracle::serve", backend = ?config.backend, "starting the backend");
        let (kind, engine, tch) = (config.backend, config.engine.clone(), config.tch.clone());
        let max_queue = config.engine.max_queue;
        let metrics = Arc::new(Metrics::new());
        let m = metrics.clone();
        let backend = tokio::task::spawn_blocking(move || {
            m.scope(|| backend::start(kind, &engine, &tch, max_queue))
        })
        .await
        .map_err(|e| Error::Serve(std::io::Error::other(e)))??;
        let model_file = match kind {
            BackendKind::Candle => config.engine.model_path.clone(),
            BackendKind::Tch => config.tch.model.clone().unwrap_or_default(),
        };
        let mut state = AppState::new(backend.clone(), config.clone(), metrics.clone());
        if let Some(chain) = &config.chain {
            let payments = paid::start(chain, backend, model_file, &metrics).await?;
            state = state.with_payments(payments);
        }
        Self::bind_state(state).await
    }

    /// Binds the address for an already started backend (e.g. the libtorch one); the server's
    /// own request metrics are recorded, the backend's only if it was started inside a
    /// recorder.
    pub async fn bind_backend(backend: Arc<dyn Backend>, config: Config) -> Result<Self> {
        Self::bind_state(AppState::new(backend, config, Arc::new(Metrics::new()))).await
    }

    async fn bind_state(state: AppState) -> Result<Self> {
        let addr = state.config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { listener, state })
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
        match &self.state.payments {
            None => tracing::info!(
                target: "oracle::serve",
                %addr,
                backend = self.state.backend.kind(),
                model = self.state.backend.model_name(),
                adapters = self.state.backend.adapters().len(),
                "serving UNPAID in development mode (no chain configured: requests are not charged)"
            ),
            Some(p) => tracing::info!(
                target: "oracle::serve",
                %addr,
                backend = self.state.backend.kind(),
                operator = %p.operator(),
                models = p.models().len(),
                "serving PAID: vouchers as API keys, receipts journaled and settled on chain"
            ),
        }
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
