//! The `[deploy]` table: where `openledger deploy` deploys the contract suite, and the suite's
//! parameters (shared with `openledger devnet`).

use std::path::PathBuf;

use alloy::primitives::{Address, U256};
use clap::Args;
use openledger_chain::deploy::DeployConfig;
use openledger_primitives::split::SplitPolicy;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, set};

/// JSON-RPC URL `openledger deploy` talks to unless told otherwise.
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";

/// Where the deployment manifest is written unless told otherwise.
pub const DEFAULT_MANIFEST: &str = ".openledger/deployment.json";

/// Parameters of the deployed suite and where its manifest goes: part of the `[deploy]` table,
/// `OPENLEDGER_DEPLOY_*` env and these flags; used by `openledger deploy` and `openledger devnet`.
///
/// Resolves to [`DeployConfig`] (its defaults) plus the manifest path.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuiteOptions {
    /// Where to write the deployment manifest [default: .openledger/deployment.json]
    #[arg(
        long,
        visible_alias = "out",
        env = "OPENLEDGER_DEPLOY_MANIFEST",
        value_name = "FILE"
    )]
    pub manifest: Option<PathBuf>,
    /// Governance (admin role) address of every governed contract [default: the deployer]
    #[arg(long, env = "OPENLEDGER_DEPLOY_GOVERNANCE", value_name = "ADDRESS")]
    pub governance: Option<Address>,
    /// Receives the protocol share, slashed stakes and rounding dust [default: the deployer]
    #[arg(long, env = "OPENLEDGER_DEPLOY_TREASURY", value_name = "ADDRESS")]
    pub treasury: Option<Address>,
    /// Receives the whole OPEN supply [default: the deployer]
    #[arg(long, env = "OPENLEDGER_DEPLOY_DISTRIBUTION", value_name = "ADDRESS")]
    pub distribution: Option<Address>,
    /// Total OPEN supply in wei, decimal or 0x hex; a string in the file
    /// [default: 1000000000000000000000000000, 1e9 OPEN]
    #[arg(long, env = "OPENLEDGER_DEPLOY_SUPPLY", value_name = "WEI")]
    pub supply: Option<U256>,
    /// Minimum operator stake in wei, decimal or 0x hex; a string in the file
    /// [default: 1000000000000000000000, 1,000 OPEN]
    #[arg(long, env = "OPENLEDGER_DEPLOY_MIN_STAKE", value_name = "WEI")]
    pub min_stake: Option<U256>,
    /// Operator unstake cooldown in seconds [default: 604800, 7 days]
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOY_UNSTAKE_COOLDOWN",
        value_name = "SECONDS"
    )]
    pub unstake_cooldown: Option<u64>,
    /// User withdrawal delay in seconds [default: 86400, 1 day]
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOY_WITHDRAWAL_DELAY",
        value_name = "SECONDS"
    )]
    pub withdrawal_delay: Option<u64>,
    /// Initial fee split in basis points, `PROTOCOL,OPERATOR,DEVELOPER,DATA` summing to 10000;
    /// in the file `{ protocol_bps, operator_bps, developer_bps, data_bps }`
    /// [default: 500,2000,3000,4500]
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOY_SPLIT",
        value_name = "BPS,BPS,BPS,BPS",
        value_parser = parse_split
    )]
    pub split: Option<SplitPolicy>,
}

/// The chain `openledger deploy` talks to and the key it signs with, plus [`SuiteOptions`]:
/// the `[deploy]` table (the private key and keystore password are never read from the file),
/// `OPENLEDGER_DEPLOY_*` env and these flags.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(from = "DeployTable")]
pub struct DeployOptions {
    /// JSON-RPC URL of the chain [default: http://127.0.0.1:8545]
    #[arg(long, env = "OPENLEDGER_DEPLOY_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Hex private key of the sending account; prefer the env var, flags show in `ps`.
    /// Not read from the file [default: none]
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOY_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "keystore",
        value_name = "HEX"
    )]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore (Web3 secret storage) of the sending account [default: none]
    #[arg(long, env = "OPENLEDGER_DEPLOY_KEYSTORE", value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// Password of the keystore; not read from the file [default: empty]
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOY_KEYSTORE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub keystore_password: Option<String>,
    /// The suite's parameters and the manifest path.
    #[command(flatten)]
    pub suite: SuiteOptions,
}

/// The `[deploy]` table as written in the file: [`DeployOptions`] without the secrets, flat.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DeployTable {
    rpc_url: Option<String>,
    keystore: Option<PathBuf>,
    manifest: Option<PathBuf>,
    governance: Option<Address>,
    treasury: Option<Address>,
    distribution: Option<Address>,
    supply: Option<U256>,
    min_stake: Option<U256>,
    unstake_cooldown: Option<u64>,
    withdrawal_delay: Option<u64>,
    split: Option<SplitPolicy>,
}

impl From<DeployTable> for DeployOptions {
    fn from(t: DeployTable) -> Self {
        Self {
            rpc_url: t.rpc_url,
            private_key: None,
            keystore: t.keystore,
            keystore_password: None,
            suite: SuiteOptions {
                manifest: t.manifest,
                governance: t.governance,
                treasury: t.treasury,
                distribution: t.distribution,
                supply: t.supply,
                min_stake: t.min_stake,
                unstake_cooldown: t.unstake_cooldown,
                withdrawal_delay: t.withdrawal_delay,
                split: t.split,
            },
        }
    }
}

/// Resolved `[deploy]` settings. Serializes as the `[deploy]` table, without the secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploySettings {
    /// JSON-RPC URL of the chain.
    pub rpc_url: String,
    /// Hex private key of the sending account (never serialized).
    #[serde(skip)]
    pub private_key: Option<String>,
    /// Encrypted keystore of the sending account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keystore: Option<PathBuf>,
    /// Password of the keystore (never serialized).
    #[serde(skip)]
    pub keystore_password: Option<String>,
    /// Where the deployment manifest is written.
    pub manifest: PathBuf,
    /// The suite's parameters.
    #[serde(flatten)]
    pub suite: DeployConfig,
}

impl SuiteOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            manifest: self.manifest.or(lower.manifest),
            governance: self.governance.or(lower.governance),
            treasury: self.treasury.or(lower.treasury),
            distribution: self.distribution.or(lower.distribution),
            supply: self.supply.or(lower.supply),
            min_stake: self.min_stake.or(lower.min_stake),
            unstake_cooldown: self.unstake_cooldown.or(lower.unstake_cooldown),
            withdrawal_delay: self.withdrawal_delay.or(lower.withdrawal_delay),
            split: self.split.or(lower.split),
        }
    }

    /// The manifest path and the suite's parameters over [`DeployConfig::default`]; refuses a
    /// split the contract would refuse.
    pub fn resolve(self) -> Result<(PathBuf, DeployConfig)> {
        let mut c = DeployConfig::default();
        if self.governance.is_some() {
            c.governance = self.governance;
        }
        if self.treasury.is_some() {
            c.treasury = self.treasury;
        }
        if self.distribution.is_some() {
            c.distribution = self.distribution;
        }
        set(&mut c.supply, self.supply);
        set(&mut c.min_stake, self.min_stake);
        set(&mut c.unstake_cooldown, self.unstake_cooldown);
        set(&mut c.withdrawal_delay, self.withdrawal_delay);
        set(&mut c.split, self.split);
        c.split.validate().map_err(|e| Error::Invalid {
            key: "deploy.split",
            reason: e.to_string(),
        })?;
        let manifest = self
            .manifest
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
        Ok((manifest, c))
    }
}

impl DeployOptions {
    /// These options with the unset ones taken from `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            rpc_url: self.rpc_url.or(lower.rpc_url),
            private_key: self.private_key.or(lower.private_key),
            keystore: self.keystore.or(lower.keystore),
            keystore_password: self.keystore_password.or(lower.keystore_password),
            suite: self.suite.over(lower.suite),
        }
    }

    /// The resolved settings (see [`SuiteOptions::resolve`]).
    pub fn resolve(self) -> Result<DeploySettings> {
        let (manifest, suite) = self.suite.resolve()?;
        Ok(DeploySettings {
            rpc_url: self.rpc_url.unwrap_or_else(|| DEFAULT_RPC_URL.to_string()),
            private_key: self.private_key,
            keystore: self.keystore,
            keystore_password: self.keystore_password,
            manifest,
            suite,
        })
    }
}

/// Parses `PROTOCOL,OPERATOR,DEVELOPER,DATA` basis points into a valid [`SplitPolicy`].
pub fn parse_split(s: &str) -> std::result::Result<SplitPolicy, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [protocol, operator, developer, data] = parts[..] else {
        return Err(format!(
            "expected four comma-separated basis points PROTOCOL,OPERATOR,DEVELOPER,DATA, got {} part(s)",
            parts.len()
        ));
    };
    let bps = |name: &str, v: &str| {
        v.parse::<u16>()
            .map_err(|e| format!("{name} share {v:?} is not a number of basis points: {e}"))
    };
    SplitPolicy {
        protocol_bps: bps("protocol", protocol)?,
        operator_bps: bps("operator", operator)?,
        developer_bps: bps("developer", developer)?,
        data_bps: bps("data", data)?,
    }
    .validate()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parses_four_shares_and_refuses_what_the_contract_refuses() {
        assert_eq!(
            parse_split("500, 1500,3000,5000").unwrap(),
            SplitPolicy {
                protocol_bps: 500,
                operator_bps: 1500,
                developer_bps: 3000,
                data_bps: 5000
            }
        );
        assert!(parse_split("500,1500,3000").unwrap_err().contains("four"));
        assert!(
            parse_split("500,x,3000,6500")
                .unwrap_err()
                .contains("operator")
        );
        // Sums to 10000 but the protocol share is over its cap.
        let err = parse_split("9000,0,0,1000").unwrap_err();
        assert!(err.contains("invalid split policy"), "{err}");
        // Under the cap but not summing to 10000.
        assert!(parse_split("500,2000,3000,4000").is_err());
    }
}
