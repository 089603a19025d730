//! The indexer: follows the OpenLedger suite's events over JSON-RPC into a database (SQLite by
//! default, PostgreSQL by URL) that the GraphQL API reads.
//!
//! - [`catalog`] describes the indexed tables; [`db`] opens either database and reads or writes
//!   catalog rows; [`store`] commits blocks and reverts them on a reorg.
//!
//! Not for: serving queries (the `openledger-graphql` crate), or anything that signs.

pub mod apply;
pub mod catalog;
pub mod db;
pub mod error;
pub mod follow;
pub mod metrics;
pub mod receipts;
pub mod schema;
pub mod store;
pub mod value;

pub use error::{Error, Result};

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use openledger_primitives::deployment::Deployment;
use tokio::sync::watch;
use tracing::warn;

pub use follow::{FollowConfig, Follower, Step};
pub use receipts::ReceiptSources;
pub use store::Store;

/// Everything the indexer needs to run.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// The database: a SQLite file path, or a `postgres://` URL.
    pub database: String,
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The deployment to index.
    pub deployment: Deployment,
    /// Pacing and the reorg window (`from_block` defaults to the deployment block).
    pub follow: FollowConfig,
    /// The operators' receipts APIs.
    pub receipts: ReceiptSources,
    /// Wipe the database first and re-index from the deployment block.
    pub resync: bool,
}

/// What `deployment` the database holds, as stored in its `meta` table.
pub fn deployment_identity(d: &Deployment) -> String {
    format!(
        "chain {} settlement {:#x} from block {}",
        d.chain_id, d.contracts.settlement, d.deploy_block
    )
}

/// A running index: the store, shared by the follower and the receipts verifier.
pub struct Indexer {
    store: Arc<Mutex<Store>>,
    follower: Follower,
    sources: ReceiptSources,
    head: watch::Sender<u64>,
}

impl Indexer {
    /// Opens (migrating) the database and checks it indexes this deployment.
    pub async fn open(mut config: IndexerConfig) -> Result<Self> {
        let mut db = db::Database::open(&config.database)?;
        if config.resync {
            Store::wipe(&mut db)?;
        }
        let store = Store::open(
            db,
            &deployment_identity(&config.deployment),
            config.follow.window,
        )?;
        let url = config.rpc_url.parse().map_err(|e| Error::Rpc {
            what: "the RPC URL".into(),
            message: format!("{e}"),
        })?;
        let provider: DynProvider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.map_err(|e| Error::Rpc {
            what: "eth_chainId".into(),
            message: e.to_string(),
        })?;
        if chain_id != config.deployment.chain_id {
            return Err(Error::OtherDeployment {
                expected: deployment_identity(&config.deployment),
                found: format!("a node of chain {chain_id} at {}", config.rpc_url),
            });
        }
        config.follow.from_block = config.follow.from_block.max(config.deployment.deploy_block);
        let applier = apply::Applier::new(&config.deployment);
        let follower = Follower::new(provider, applier, config.follow);
        let (head, _) = watch::channel(0);
        Ok(Self {
            store: Arc::new(Mutex::new(store)),
            follower,
            sources: config.receipts,
            head,
        })
    }

    /// The store (shared with the running tasks).
    pub fn store(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }

    /// The last committed block, pushed after every commit (for live subscriptions).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Follows the chain and verifies receipts until `stop` resolves or the follower halts.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<()> {
        let Self {
            store,
            follower,
            sources,
            head,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let verifier = {
            let store = store.clone();
            let mut stop_rx = stop_rx.clone();
            let mut committed = head.subscribe();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or_default();
                loop {
                    if let Err(e) = receipts::verify_pending(&store, &sources, &client).await {
                        warn!(target: "indexer::receipts", error = %e, "verification pass failed");
                    }
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        _ = committed.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            })
        };
        let mut stop_wait = stop_rx;
        let result = follower
            .run(
                &store,
                |to| {
                    head.send_replace(to);
                },
                async move {
                    tokio::select! {
                        _ = stop => {}
                        _ = stop_wait.changed() => {}
                    }
                },
            )
            .await;
        let _ = stop_tx.send(true);
        let _ = verifier.await;
        result
    }
}
