//! Every component's settings, resolved from all layers.

use openledger_devnet::DevnetConfig;
use serde::Serialize;

use crate::{
    ConfigFile, DeployOptions, DeploySettings, DevnetOptions, DevnetSettings, Error,
    GraphqlOptions, GraphqlSettings, IndexerOptions, IndexerSettings, OracleOptions, Paths, Result,
};

/// The env-and-flag layer, as clap parsed it for one subcommand: the groups the subcommand
/// does not take stay empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `OPENLEDGER_ORACLE_*` and the oracle flags.
    pub oracle: OracleOptions,
    /// `OPENLEDGER_DEPLOY_*` and the deploy flags.
    pub deploy: DeployOptions,
    /// `OPENLEDGER_DEVNET_*` and the devnet flags.
    pub devnet: DevnetOptions,
    /// `OPENLEDGER_INDEXER_*` and the indexer flags.
    pub indexer: IndexerOptions,
    /// `OPENLEDGER_GRAPHQL_*` and the GraphQL server flags.
    pub graphql: GraphqlOptions,
}

/// The environment layer alone of an option group: its `OPENLEDGER_*` variables, as clap reads
/// them for a command line that passes no flag. For commands that print settings of groups
/// whose flags they do not take (`openledger config`, whose flags would collide).
pub fn env_layer<T: clap::Args + clap::FromArgMatches>() -> std::result::Result<T, clap::Error> {
    let matches =
        T::augment_args(clap::Command::new("openledger")).try_get_matches_from(["openledger"])?;
    T::from_arg_matches(&matches)
}

/// Every component's settings: library defaults < file < env < flags. Serializes as an
/// `openledger.toml` that reproduces it (secrets left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// The oracle node (`[oracle]`, `[oracle.engine]`).
    pub oracle: openledger_oracle::Config,
    /// The deployer (`[deploy]`).
    pub deploy: DeploySettings,
    /// The local devnet (`[devnet]`).
    pub devnet: DevnetSettings,
    /// The indexer (`[indexer]`).
    pub indexer: IndexerSettings,
    /// The GraphQL server (`[graphql]`).
    pub graphql: GraphqlSettings,
}

impl Settings {
    /// Layers `overrides` over `file` over the library defaults; the default model lies in
    /// `paths.model_dir`.
    pub fn resolve(file: ConfigFile, overrides: Overrides, paths: &Paths) -> Result<Self> {
        Ok(Self {
            oracle: overrides.oracle.over(file.oracle).resolve(paths),
            deploy: overrides.deploy.over(file.deploy).resolve()?,
            devnet: overrides.devnet.over(file.devnet).resolve(),
            indexer: overrides.indexer.over(file.indexer).resolve(),
            graphql: overrides.graphql.over(file.graphql).resolve(),
        })
    }

    /// What `openledger devnet` starts: the `[devnet]` chain, the `[deploy]` suite and
    /// manifest, and the `[oracle]` node unless `no_oracle`.
    pub fn devnet_config(&self) -> DevnetConfig {
        DevnetConfig {
            port: self.devnet.port,
            chain_id: self.devnet.chain_id,
            accounts: self.devnet.accounts,
            deploy: self.deploy.suite.clone(),
            manifest: self.deploy.manifest.clone(),
            oracle: (!self.devnet.no_oracle).then(|| self.oracle.clone()),
            // The devnet's oracle settles on the devnet's chain, with the demo economy.
            paid: true,
            // The index of the devnet's chain, and the GraphQL API over it.
            graphql_port: Some(self.devnet.graphql_port),
        }
    }

    /// The settings as the text of an `openledger.toml` that reproduces them; fails only on a
    /// path that is not UTF-8.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Print {
            reason: e.to_string(),
        })
    }
}
