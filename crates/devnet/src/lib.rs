//! The local devnet as a library: [`spawn`] starts anvil, deploys and wires the contract suite
//! from anvil's first dev account, writes the deployment manifest and binds an oracle node
//! serving the real model; the returned [`Devnet`] exposes the addresses and URLs and stops
//! everything on [`Devnet::shutdown`] or when dropped.
//!
//! **What it is for:** `openledger devnet` (a thin call to [`spawn`]) and end-to-end tests,
//! which get the same system the README's command runs.
//!
//! **What it is not for:** real chains (use `openledger deploy`), or reading configuration:
//! [`DevnetConfig`] is a plain value, filled by the `openledger` binary's loader
//! (`openledger-config`, the `[devnet]` table) or by a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy::{
    network::EthereumWallet, node_bindings::AnvilInstance, primitives::Address,
    providers::ProviderBuilder, signers::local::PrivateKeySigner,
};
use openledger_chain::{
    anvil::spawn_anvil,
    deploy::{DeployConfig, deploy_suite, write_manifest},
};
use openledger_primitives::deployment::Deployment;

pub mod demo;
pub use demo::{Demo, DemoConfig};
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::info;

/// Errors of starting or stopping the devnet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The chain side failed: anvil missing or not starting, deployment or manifest failing.
    #[error(transparent)]
    Chain(#[from] openledger_chain::Error),
    /// The oracle node failed to start or failed while serving.
    #[error(transparent)]
    Oracle(#[from] openledger_oracle::Error),
    /// The devnet needs at least one dev account: the first one deploys the suite.
    #[error("devnet accounts must be at least 1 (the first account deploys the suite)")]
    NoAccounts,
    /// Setting up the demo economy failed.
    #[error("devnet demo: {0}")]
    Demo(String),
    /// The indexer failed to start or stopped with an error.
    #[error(transparent)]
    Indexer(#[from] openledger_indexer::Error),
    /// The oracle's serving task panicked or was cancelled.
    #[error("oracle task ended abnormally: {0}")]
    OracleTask(#[from] tokio::task::JoinError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to start. [`DevnetConfig::default`] is the README's devnet: chain id 31337 on port 8545,
/// ten funded accounts, the suite with its default parameters, the manifest in
/// `.openledger/deployment.json`, and the oracle with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DevnetConfig {
    /// Port of the chain's JSON-RPC (HTTP and WebSocket); 0 picks a free one. Default 8545.
    pub port: u16,
    /// Chain id of the local chain. Default 31337.
    pub chain_id: u64,
    /// Funded dev accounts (anvil's deterministic mnemonic); the first deploys the suite.
    /// Default 10.
    pub accounts: usize,
    /// Parameters of the deployed suite. Default [`DeployConfig::default`].
    pub deploy: DeployConfig,
    /// Where the deployment manifest is written. Default `.openledger/deployment.json`.
    pub manifest: PathBuf,
    /// The oracle node to bind, or `None` for the chain only. Default: the oracle's defaults.
    pub oracle: Option<openledger_oracle::Config>,
    /// Run the oracle in paid mode against the devnet's chain, with the demo economy
    /// ([`demo`]) set up first. Default true.
    pub paid: bool,
    /// Port of the GraphQL API over the devnet's index (`<manifest dir>/index.db`, SQLite,
    /// rebuilt each start: the chain is new), or `None` to run neither the indexer nor the API;
    /// 0 picks a free port. Default `None` (`openledger devnet` uses 8000).
    pub graphql_port: Option<u16>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            port: 8545,
            chain_id: 31337,
            accounts: 10,
            deploy: DeployConfig::default(),
            manifest: PathBuf::from(".openledger/deployment.json"),
            oracle: Some(openledger_oracle::Config::default()),
            paid: true,
            graphql_port: None,
        }
    }
}

/// A running devnet. Dropping it stops the oracle and the chain at once;
/// [`Devnet::shutdown`] lets the oracle finish in-flight requests first.
#[derive(Debug)]
pub struct Devnet {
    deployment: Deployment,
    manifest: PathBuf,
    oracle: Option<OracleTask>,
    demo: Option<Demo>,
    index: Option<IndexTask>,
    // Last: the chain stops after the oracle.
    anvil: AnvilInstance,
}

/// The oracle serving on its own task; aborted when dropped.
#[derive(Debug)]
struct OracleTask {
    addr: SocketAddr,
    payments: Option<openledger_oracle::Payments>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<openledger_oracle::Result<()>>,
}

/// The indexer and the GraphQL server over its database.
#[derive(Debug)]
struct IndexTask {
    graphql: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<openledger_indexer::Result<()>>,
}

impl Drop for IndexTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for OracleTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts anvil, deploys the suite from dev account 0, writes the manifest and binds the oracle
/// (which loads its model first). Call from within a multi-threaded tokio runtime.
pub async fn spawn(config: DevnetConfig) -> Result<Devnet> {
    if config.accounts == 0 {
        return Err(Error::NoAccounts);
    }
    let anvil = spawn_anvil(Some(config.port), config.chain_id, config.accounts)?;
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let deployer = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let deployment = deploy_suite(&provider, deployer, &config.deploy).await?;
    write_manifest(&config.manifest, &deployment)?;
    info!(target: "devnet", rpc = %anvil.endpoint(), manifest = %config.manifest.display(), "suite deployed");
    let mut demo = None;
    let oracle = match config.oracle {
        None => None,
        Some(mut oracle) => {
            if config.paid {
                let keys: Vec<PrivateKeySigner> =
                    anvil.keys().iter().cloned().map(Into::into).collect();
                let data_dir = config
                    .manifest
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("oracle");
                // A fresh chain: the journal of an earlier devnet describes a chain that is gone.
                let _ = std::fs::remove_dir_all(&data_dir);
                let model_file = oracle.engine.model_path.clone();
                let base_model_hash = tokio::task::spawn_blocking(move || {
                    openledger_oracle::paid::file_sha256(&model_file)
                        .map_err(|e| Error::Demo(format!("hashing {}: {e}", model_file.display())))
                })
                .await??;
                let d = demo::provision(
                    &anvil.endpoint(),
                    &deployment,
                    &keys,
                    &data_dir.join("content"),
                    &DemoConfig {
                        price_per_1k: alloy::primitives::U256::from(2 * demo::OPEN),
                        deposit: alloy::primitives::U256::from(100 * demo::OPEN),
                        voucher_cap: alloy::primitives::U256::from(50 * demo::OPEN),
                        voucher_validity: 30 * 86_400,
                        base_model_hash,
                    },
                )
                .await?;
                info!(target: "devnet", model = %d.model_id, datanet = %d.datanet_id, operator = %d.operator.address(), user = %d.user.address(), "demo economy set up");
                // Batches every 10 s on the devnet, unless the caller chose its own policy.
                let mut chain = oracle.chain.take().unwrap_or_else(|| {
                    let mut c = openledger_oracle::ChainConfig::default();
                    c.paid.batch.max_age_secs = 10;
                    c.paid.poll_interval_ms = 500;
                    c
                });
                chain.paid.manifest = config.manifest.clone();
                chain.paid.rpc_url = anvil.endpoint();
                chain.paid.data_dir = data_dir;
                chain.private_key = Some(alloy::hex::encode(d.operator.to_bytes()));
                oracle.chain = Some(chain);
                demo = Some(d);
            }
            let server = openledger_oracle::Server::bind(oracle).await?;
            let addr = server.local_addr();
            let payments = server.state().payments().cloned();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(server.run_until(async {
                // A dropped sender stops the server too.
                let _ = stopped.await;
            }));
            info!(target: "devnet", %addr, "oracle bound");
            Some(OracleTask {
                addr,
                payments,
                stop: Some(stop),
                task,
            })
        }
    };
    let index = match config.graphql_port {
        None => None,
        Some(port) => {
            let database = config
                .manifest
                .parent()
                .unwrap_or(Path::new("."))
                .join("index.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
            }
            let database = database.display().to_string();
            let indexer = openledger_indexer::Indexer::open(openledger_indexer::IndexerConfig {
                database: database.clone(),
                rpc_url: anvil.endpoint(),
                deployment: deployment.clone(),
                follow: openledger_indexer::FollowConfig {
                    poll: std::time::Duration::from_millis(250),
                    ..Default::default()
                },
                receipts: openledger_indexer::ReceiptSources {
                    default: oracle.as_ref().map(|o| format!("http://{}", o.addr)),
                    ..Default::default()
                },
                resync: false,
            })
            .await?;
            let (stop, stopped) = oneshot::channel::<()>();
            let (api_stop, api_stopped) = oneshot::channel::<()>();
            let graphql = openledger_graphql::serve(
                &database,
                SocketAddr::from(([127, 0, 0, 1], port)),
                async {
                    let _ = api_stopped.await;
                },
            )
            .await
            .map_err(|e| Error::Demo(format!("GraphQL server: {e}")))?;
            let task = tokio::spawn(indexer.run(async move {
                let _ = stopped.await;
                let _ = api_stop.send(());
            }));
            info!(target: "devnet", %graphql, "indexer and GraphQL started");
            Some(IndexTask {
                graphql,
                stop: Some(stop),
                task,
            })
        }
    };
    Ok(Devnet {
        deployment,
        manifest: config.manifest,
        oracle,
        demo,
        index,
        anvil,
    })
}

impl Devnet {
    /// HTTP JSON-RPC URL of the chain, e.g. `http://localhost:8545`.
    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }

    /// WebSocket JSON-RPC URL of the chain.
    pub fn ws_url(&self) -> String {
        self.anvil.ws_endpoint()
    }

    /// Port of the chain's JSON-RPC.
    pub fn rpc_port(&self) -> u16 {
        self.anvil.port()
    }

    /// Where the suite is: chain id, deploy block, contract addresses, ABI hashes.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Where the manifest was written.
    pub fn manifest(&self) -> &Path {
        &self.manifest
    }

    /// The funded dev accounts, the deployer first.
    pub fn accounts(&self) -> &[Address] {
        self.anvil.addresses()
    }

    /// A signer for dev account `index` (anvil's well-known keys: never use them on a real
    /// chain), or `None` past the last account.
    pub fn dev_signer(&self, index: usize) -> Option<PrivateKeySigner> {
        self.anvil.keys().get(index).cloned().map(Into::into)
    }

    /// The demo economy, when the oracle runs in paid mode.
    pub fn demo(&self) -> Option<&Demo> {
        self.demo.as_ref()
    }

    /// The oracle's paid mode, when it runs in paid mode.
    pub fn payments(&self) -> Option<&openledger_oracle::Payments> {
        self.oracle.as_ref().and_then(|o| o.payments.as_ref())
    }

    /// The GraphQL API's URL (`http://ADDR/graphql`), if the index runs.
    pub fn graphql_url(&self) -> Option<String> {
        self.index
            .as_ref()
            .map(|i| format!("http://{}/graphql", i.graphql))
    }

    /// The oracle's bound address, if one was started.
    pub fn oracle_addr(&self) -> Option<SocketAddr> {
        self.oracle.as_ref().map(|o| o.addr)
    }

    /// The oracle's base URL (`http://ADDR`), if one was started.
    pub fn oracle_url(&self) -> Option<String> {
        self.oracle_addr().map(|a| format!("http://{a}"))
    }

    /// Waits until the oracle stops by itself, which it only does on an error (returned here);
    /// never completes when no oracle runs. For racing against Ctrl-C.
    pub async fn oracle_stopped(&mut self) -> Result<()> {
        let Some(oracle) = self.oracle.as_mut() else {
            return std::future::pending().await;
        };
        let ended = (&mut oracle.task).await;
        self.oracle = None;
        Ok(ended??)
    }

    /// Stops the oracle (in-flight requests finish) and then the chain; reports how the
    /// oracle ended.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(mut index) = self.index.take() {
            if let Some(stop) = index.stop.take() {
                let _ = stop.send(());
            }
            (&mut index.task).await??;
        }
        if let Some(mut oracle) = self.oracle.take() {
            if let Some(stop) = oracle.stop.take() {
                let _ = stop.send(());
            }
            (&mut oracle.task).await??;
        }
        info!(target: "devnet", "stopped");
        Ok(())
    }
}
