//! The `[indexer]` and `[graphql]` tables: what `openledger indexer` follows into which
//! database, and where `openledger serve` answers GraphQL over it.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use alloy::primitives::Address;
use clap::Args;
use openledger_indexer::{FollowConfig, IndexerConfig, ReceiptSources};
use openledger_primitives::deployment::Deployment;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use crate::{DEFAULT_MANIFEST, DEFAULT_RPC_URL, set};

/// The index database both commands use unless told otherwise.
pub const DEFAULT_DATABASE: &str = ".openledger/index.db";
/// Where the indexer serves its metrics unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9101";
/// Where `openledger serve` listens unless told otherwise.
pub const DEFAULT_GRAPHQL_LISTEN: &str = "127.0.0.1:8000";

/// One operator's receipts API, written `ADDRESS=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorUrl {
    /// The operator's address.
    pub operator: Address,
    /// Base URL of its receipts API (`/v1/batches/{sequence}` under it).
    pub url: String,
}

impl FromStr for OperatorUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, url) = s
            .split_once('=')
            .ok_or_else(|| format!("expected ADDRESS=URL, got {s:?}"))?;
        let operator = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
        let url = url.trim();
        if url.is_empty() {
            return Err(format!("no URL for operator {a}"));
        }
        Ok(Self {
            operator,
            url: url.to_owned(),
        })
    }
}

impl fmt::Display for OperatorUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}={}", self.operator, self.url)
    }
}

impl<'de> Deserialize<'de> for OperatorUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

impl Serialize for OperatorUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Indexer settings: the `[indexer]` table, `OPENLEDGER_INDEXER_*` env and these flags.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexerOptions {
    /// Deployment manifest of the suite to index [default: .openledger/deployment.json]
    #[arg(long, env = "OPENLEDGER_INDEXER_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// JSON-RPC URL of a node of the deployment's chain [default: http://127.0.0.1:8545]
    #[arg(long, env = "OPENLEDGER_INDEXER_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The index: a SQLite file path, or a postgres:// URL [default: .openledger/index.db]
    #[arg(long, env = "OPENLEDGER_INDEXER_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Blocks kept to rewind reorgs; a deeper reorg halts the indexer (restart with --resync)
    /// [default: 128]
    #[arg(long, env = "OPENLEDGER_INDEXER_REORG_WINDOW", value_name = "BLOCKS")]
    pub reorg_window: Option<u64>,
    /// How often to poll the head once caught up, in milliseconds [default: 500]
    #[arg(long, env = "OPENLEDGER_INDEXER_POLL_INTERVAL_MS", value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
    /// Blocks applied per commit during backfill (each commit moves the checkpoint)
    /// [default: 20000]
    #[arg(
        long,
        env = "OPENLEDGER_INDEXER_BLOCKS_PER_COMMIT",
        value_name = "BLOCKS"
    )]
    pub blocks_per_commit: Option<u64>,
    /// Operators' receipts APIs as ADDRESS=URL: the flag repeated, the variable
    /// comma-separated, the key a list of strings (the chain has no registry of them)
    /// [default: none]
    #[arg(
        long = "operator-url",
        env = "OPENLEDGER_INDEXER_OPERATOR_URLS",
        value_delimiter = ',',
        value_name = "ADDRESS=URL"
    )]
    pub operator_urls: Option<Vec<OperatorUrl>>,
    /// The receipts API of operators not named in operator_urls [default: none]
    #[arg(
        long,
        env = "OPENLEDGER_INDEXER_DEFAULT_OPERATOR_URL",
        value_name = "URL"
    )]
    pub default_operator_url: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (head lag, events, reorgs, flagged
    /// batches) [default: 127.0.0.1:9101]
    #[arg(long, env = "OPENLEDGER_INDEXER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Resolved `[indexer]` settings. Serializes as the `[indexer]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexerSettings {
    /// Deployment manifest of the suite to index.
    pub manifest: PathBuf,
    /// JSON-RPC URL of a node of the deployment's chain.
    pub rpc_url: String,
    /// The index database.
    pub database: String,
    /// Blocks kept to rewind reorgs.
    pub reorg_window: u64,
    /// Head polling interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Blocks applied per commit during backfill.
    pub blocks_per_commit: u64,
    /// Operators' receipts APIs.
    pub operator_urls: Vec<OperatorUrl>,
    /// The receipts API of the other operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator_url: Option<String>,
    /// Where the metrics are served.
    pub metrics_listen: SocketAddr,
}

impl IndexerOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            manifest: self.manifest.or(lower.manifest),
            rpc_url: self.rpc_url.or(lower.rpc_url),
            database: self.database.or(lower.database),
            reorg_window: self.reorg_window.or(lower.reorg_window),
            poll_interval_ms: self.poll_interval_ms.or(lower.poll_interval_ms),
            blocks_per_commit: self.blocks_per_commit.or(lower.blocks_per_commit),
            operator_urls: self.operator_urls.or(lower.operator_urls),
            default_operator_url: self.default_operator_url.or(lower.default_operator_url),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
        }
    }

    /// The settings over [`FollowConfig::default`] and the defaults above.
    pub fn resolve(self) -> IndexerSettings {
        let follow = FollowConfig::default();
        let mut s = IndexerSettings {
            manifest: PathBuf::from(DEFAULT_MANIFEST),
            rpc_url: DEFAULT_RPC_URL.to_owned(),
            database: DEFAULT_DATABASE.to_owned(),
            reorg_window: follow.window,
            poll_interval_ms: follow.poll.as_millis() as u64,
            blocks_per_commit: follow.blocks_per_commit,
            operator_urls: Vec::new(),
            default_operator_url: self.default_operator_url,
            metrics_listen: DEFAULT_METRICS_LISTEN.parse().expect("address"),
        };
        set(&mut s.manifest, self.manifest);
        set(&mut s.rpc_url, self.rpc_url);
        set(&mut s.database, self.database);
        set(&mut s.reorg_window, self.reorg_window);
        set(&mut s.poll_interval_ms, self.poll_interval_ms);
        set(&mut s.blocks_per_commit, self.blocks_per_commit);
        set(&mut s.operator_urls, self.operator_urls);
        set(&mut s.metrics_listen, self.metrics_listen);
        s
    }
}

impl IndexerSettings {
    /// The indexer's configuration for the suite of `deployment` (read from `manifest`);
    /// `resync` empties the database first.
    pub fn indexer_config(&self, deployment: Deployment, resync: bool) -> IndexerConfig {
        IndexerConfig {
            database: self.database.clone(),
            rpc_url: self.rpc_url.clone(),
            deployment,
            follow: FollowConfig {
                window: self.reorg_window,
                poll: std::time::Duration::from_millis(self.poll_interval_ms),
                blocks_per_commit: self.blocks_per_commit.max(1),
                ..Default::default()
            },
            receipts: ReceiptSources {
                operators: self
                    .operator_urls
                    .iter()
                    .map(|o| (o.operator, o.url.clone()))
                    .collect(),
                default: self.default_operator_url.clone(),
            },
            resync,
        }
    }
}

/// GraphQL server settings: the `[graphql]` table, `OPENLEDGER_GRAPHQL_*` env and these flags.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlOptions {
    /// The index the API reads: a SQLite file path, or a postgres:// URL
    /// [default: .openledger/index.db]
    #[arg(long, env = "OPENLEDGER_GRAPHQL_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Address to listen on (GraphiQL at /, queries at /graphql, subscriptions at /graphql/ws)
    /// [default: 127.0.0.1:8000]
    #[arg(long, env = "OPENLEDGER_GRAPHQL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// Resolved `[graphql]` settings. Serializes as the `[graphql]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphqlSettings {
    /// The index the API reads.
    pub database: String,
    /// Address to listen on.
    pub listen: SocketAddr,
}

impl GraphqlOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            database: self.database.or(lower.database),
            listen: self.listen.or(lower.listen),
        }
    }

    /// The settings over the defaults above.
    pub fn resolve(self) -> GraphqlSettings {
        let mut s = GraphqlSettings {
            database: DEFAULT_DATABASE.to_owned(),
            listen: DEFAULT_GRAPHQL_LISTEN.parse().expect("address"),
        };
        set(&mut s.database, self.database);
        set(&mut s.listen, self.listen);
        s
    }
}
