//! The `[devnet]` table: the local chain `openledger devnet` starts.

use clap::Args;
use openledger_devnet::DevnetConfig;
use serde::{Deserialize, Serialize};

use crate::set;

/// Local devnet settings: the `[devnet]` table, `OPENLEDGER_DEVNET_*` env and these flags. The
/// devnet also reads the suite's parameters (`[deploy]`) and the oracle's (`[oracle]`).
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevnetOptions {
    /// Port of the local chain's JSON-RPC (HTTP and WebSocket); 0 picks a free one
    /// [default: 8545]
    #[arg(long, env = "OPENLEDGER_DEVNET_PORT")]
    pub port: Option<u16>,
    /// Chain id of the local chain [default: 31337]
    #[arg(long, env = "OPENLEDGER_DEVNET_CHAIN_ID", value_name = "ID")]
    pub chain_id: Option<u64>,
    /// Funded dev accounts (anvil's mnemonic); the first deploys the suite [default: 10]
    #[arg(long, env = "OPENLEDGER_DEVNET_ACCOUNTS", value_name = "N")]
    pub accounts: Option<usize>,
    /// Start the chain only, without the oracle node; `--no-oracle` alone means true
    /// [default: false]
    #[arg(
        long,
        env = "OPENLEDGER_DEVNET_NO_ORACLE",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_oracle: Option<bool>,
    /// Port of the GraphQL API over the devnet's index (the indexer runs beside it, into
    /// `<manifest dir>/index.db`); 0 picks a free one [default: 8000]
    #[arg(long, env = "OPENLEDGER_DEVNET_GRAPHQL_PORT", value_name = "PORT")]
    pub graphql_port: Option<u16>,
}

/// The GraphQL port `openledger devnet` uses unless told otherwise.
pub const DEFAULT_GRAPHQL_PORT: u16 = 8000;

/// Resolved `[devnet]` settings. Serializes as the `[devnet]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevnetSettings {
    /// Port of the chain's JSON-RPC; 0 picks a free one.
    pub port: u16,
    /// Chain id of the local chain.
    pub chain_id: u64,
    /// Funded dev accounts.
    pub accounts: usize,
    /// Start the chain only.
    pub no_oracle: bool,
    /// Port of the GraphQL API over the devnet's index.
    pub graphql_port: u16,
}

impl DevnetOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            port: self.port.or(lower.port),
            chain_id: self.chain_id.or(lower.chain_id),
            accounts: self.accounts.or(lower.accounts),
            no_oracle: self.no_oracle.or(lower.no_oracle),
            graphql_port: self.graphql_port.or(lower.graphql_port),
        }
    }

    /// The settings over [`DevnetConfig::default`].
    pub fn resolve(self) -> DevnetSettings {
        let d = DevnetConfig::default();
        let mut s = DevnetSettings {
            port: d.port,
            chain_id: d.chain_id,
            accounts: d.accounts,
            no_oracle: d.oracle.is_none(),
            graphql_port: DEFAULT_GRAPHQL_PORT,
        };
        set(&mut s.graphql_port, self.graphql_port);
        set(&mut s.port, self.port);
        set(&mut s.chain_id, self.chain_id);
        set(&mut s.accounts, self.accounts);
        set(&mut s.no_oracle, self.no_oracle);
        s
    }
}
