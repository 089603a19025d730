//! `openledger.toml`: one table per component.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::{DeployOptions, DevnetOptions, Error, OracleOptions, Result};

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
    /// `[indexer]`, reserved for the indexer.
    pub indexer: Reserved,
    /// `[graphql]`, reserved for the GraphQL server.
    pub graphql: Reserved,
}

/// A table reserved for a component not built yet: accepted, but only empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved;

impl<'de> Deserialize<'de> for Reserved {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        match table.keys().next() {
            None => Ok(Self),
            Some(key) => Err(D::Error::custom(format!(
                "unknown key `{key}`: this table is reserved for a component that takes no \
                 settings yet"
            ))),
        }
    }
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
