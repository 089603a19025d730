//! `openledger.toml`: one table per component.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{
    DeployOptions, DevnetOptions, Error, GraphqlOptions, IndexerOptions, OracleOptions, Result,
};

/// The file read when no `--config` is given, from the working directory, if it exists.
pub const DEFAULT_FILE: &str = "openledger.toml";

/// The contents of `openledger.toml`: one table per component, every key optional. Unknown
/// tables and keys are refused, naming the key.
///
/// ```toml
/// [oracle]
/// listen = "0.0.0.0:8080"
///
/// [oracle.engine]
/// max_batch = 8
///
/// [deploy]
/// rpc_url = "https://your-l2-rpc"
/// min_stake = "5000000000000000000000"   # wei, as a string
/// split = { protocol_bps = 500, operator_bps = 1500, developer_bps = 3000, data_bps = 5000 }
///
/// [devnet]
/// port = 8545
///
/// [indexer]
/// database = "postgres://indexer@db.internal/openledger"
/// operator_urls = ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8=https://oracle.example"]
///
/// [graphql]
/// listen = "0.0.0.0:8000"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[oracle]` and `[oracle.engine]`.
    pub oracle: OracleOptions,
    /// `[deploy]`.
    pub deploy: DeployOptions,
    /// `[devnet]`.
    pub devnet: DevnetOptions,
    /// `[indexer]`.
    pub indexer: IndexerOptions,
    /// `[graphql]`.
    pub graphql: GraphqlOptions,
}

impl ConfigFile {
    /// Reads `path`, or [`DEFAULT_FILE`] in the working directory when `None` (no file there:
    /// every table empty). Returns the file read, if any.
    pub fn load(path: Option<&Path>) -> Result<(Self, Option<PathBuf>)> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok((Self::default(), None)),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let file = Self::from_toml(&text).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok((file, Some(path)))
    }

    /// Parses the text of a config file.
    pub fn from_toml(text: &str) -> std::result::Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}
