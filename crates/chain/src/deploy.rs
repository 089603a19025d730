//! Deploys and wires the whole suite, and reads/writes the deployment manifest.
//!
//! Order: token (whole supply to `distribution`), datanet registry, model registry, operator
//! registry, settlement. Every governed contract gets the same `governance` address; the
//! treasury receives the protocol share, slashed stakes and rounding dust.

use std::path::Path;

use alloy::{
    network::{Ethereum, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolConstructor,
};
use openledger_primitives::{
    bindings::{
        DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement, artifacts,
    },
    deployment::{AbiHashes, Contracts, Deployment},
    split::SplitPolicy,
};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{Error, Result};

/// One OPEN in wei.
pub const OPEN: u128 = 1_000_000_000_000_000_000;

/// Parameters of a deployment. Addresses left `None` default to the deployer.
///
/// A plain value with library defaults; the `openledger` binary fills it from the `[deploy]`
/// table of `openledger.toml`, `OPENLEDGER_DEPLOY_*` env and flags (see `openledger-config`),
/// with these snake_case field names as keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// The admin role of every governed contract (a timelock or multisig in production).
    pub governance: Option<Address>,
    /// Receives the protocol share, slashed stakes and rounding dust.
    pub treasury: Option<Address>,
    /// Receives the whole OPEN supply at deployment.
    pub distribution: Option<Address>,
    /// Total OPEN supply in wei (default 1,000,000,000 OPEN).
    pub supply: U256,
    /// Minimum operator stake in wei (default 1,000 OPEN).
    pub min_stake: U256,
    /// Operator unstake cooldown in seconds (default 7 days).
    pub unstake_cooldown: u64,
    /// User withdrawal delay in seconds (default 1 day).
    pub withdrawal_delay: u64,
    /// Initial fee split.
    pub split: SplitPolicy,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            governance: None,
            treasury: None,
            distribution: None,
            supply: U256::from(1_000_000_000u128 * OPEN),
            min_stake: U256::from(1_000 * OPEN),
            unstake_cooldown: 7 * 24 * 3600,
            withdrawal_delay: 24 * 3600,
            split: SplitPolicy::default(),
        }
    }
}

/// One contract creation of a [`SuitePlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedContract {
    /// The contract's name, e.g. `Settlement`.
    pub name: &'static str,
    /// Bytecode followed by the ABI-encoded constructor arguments.
    pub init_code: Bytes,
    /// Where it lands: `deployer.create(nonce)` for its place in the order.
    pub address: Address,
}

/// The whole suite as an ordered list of contract creations from one account, with the
/// manifest they produce. Addresses follow from the deployer's nonce, so every constructor can
/// be given the addresses of the others up front; any backend (anvil over JSON-RPC, an
/// in-process EVM) deploys the suite by sending these creations in order from `deployer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuitePlan {
    /// Creations, in the order they must be sent.
    pub contracts: Vec<PlannedContract>,
    /// The manifest; `deploy_block` is left 0 for the backend to fill in.
    pub deployment: Deployment,
}

impl SuitePlan {
    /// Records that creation `i` of the plan landed at `address` in `block`: an error unless it
    /// is the planned address (another creation from the deployer came between); the first
    /// creation's block is the deployment's.
    pub fn record(&mut self, i: usize, address: Address, block: u64) -> Result<()> {
        let planned = &self.contracts[i];
        if address != planned.address {
            return Err(Error::Config(format!(
                "{} landed at {address}, not at the planned {}: another transaction from {} \
                 interleaved with the deployment",
                planned.name, planned.address, self.deployment.deployer
            )));
        }
        if i == 0 {
            self.deployment.deploy_block = block;
        }
        Ok(())
    }
}

/// Plans the suite deployed by `deployer` on `chain_id`, whose next nonce is `nonce`.
pub fn plan_suite(
    config: &DeployConfig,
    deployer: Address,
    chain_id: u64,
    nonce: u64,
) -> Result<SuitePlan> {
    config
        .split
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
    let governance = config.governance.unwrap_or(deployer);
    let treasury = config.treasury.unwrap_or(deployer);
    let distribution = config.distribution.unwrap_or(deployer);
    let at = |i: u64| deployer.create(nonce + i);
    let addresses = Contracts {
        token: at(0),
        datanets: at(1),
        models: at(2),
        operators: at(3),
        settlement: at(4),
    };
    let Contracts {
        token,
        datanets,
        models,
        operators,
        settlement,
    } = addresses;
    let creations: [(&'static str, &Bytes, Vec<u8>, Address); 5] = [
        (
            "OpenToken",
            &OpenToken::BYTECODE,
            OpenToken::constructorCall {
                distribution,
                supply: config.supply,
            }
            .abi_encode(),
            token,
        ),
        (
            "DatanetRegistry",
            &DatanetRegistry::BYTECODE,
            DatanetRegistry::constructorCall {
                token_: token,
                governance_: governance,
                treasury_: treasury,
            }
            .abi_encode(),
            datanets,
        ),
        (
            "ModelRegistry",
            &ModelRegistry::BYTECODE,
            ModelRegistry::constructorCall {
                datanets_: datanets,
            }
            .abi_encode(),
            models,
        ),
        (
            "OperatorRegistry",
            &OperatorRegistry::BYTECODE,
            OperatorRegistry::constructorCall {
                token_: token,
                governance_: governance,
                treasury_: treasury,
                settlement_: settlement,
                minStake_: config.min_stake,
                unstakeCooldown_: config.unstake_cooldown,
            }
            .abi_encode(),
            operators,
        ),
        (
            "Settlement",
            &Settlement::BYTECODE,
            Settlement::constructorCall {
                token_: token,
                governance_: governance,
                treasury_: treasury,
                datanets_: datanets,
                models_: models,
                operators_: operators,
                policy: config.split.into(),
                withdrawalDelay_: config.withdrawal_delay,
            }
            .abi_encode(),
            settlement,
        ),
    ];
    let contracts = creations
        .into_iter()
        .map(|(name, bytecode, args, address)| {
            let mut code = bytecode.to_vec();
            code.extend_from_slice(&args);
            PlannedContract {
                name,
                init_code: code.into(),
                address,
            }
        })
        .collect();
    Ok(SuitePlan {
        contracts,
        deployment: Deployment {
            chain_id,
            deploy_block: 0,
            deployer,
            governance,
            treasury,
            contracts: addresses,
            abi_hashes: current_abi_hashes(),
        },
    })
}

/// Deploys the suite from `deployer` (an account the provider can sign for) and returns its
/// manifest.
pub async fn deploy_suite<P: Provider<Ethereum>>(
    provider: &P,
    deployer: Address,
    config: &DeployConfig,
) -> Result<Deployment> {
    let chain_id = provider.get_chain_id().await.map_err(|source| Error::Rpc {
        call: "eth_chainId",
        source,
    })?;
    let nonce = provider
        .get_transaction_count(deployer)
        .await
        .map_err(|source| Error::Rpc {
            call: "eth_getTransactionCount",
            source,
        })?;
    let mut plan = plan_suite(config, deployer, chain_id, nonce)?;
    for i in 0..plan.contracts.len() {
        let contract = &plan.contracts[i];
        let (address, block) = deploy(
            provider,
            deployer,
            contract.name,
            contract.init_code.clone(),
        )
        .await?;
        plan.record(i, address, block)?;
    }
    Ok(plan.deployment)
}

/// The ABI hashes of the bindings this binary was built with.
pub fn current_abi_hashes() -> AbiHashes {
    AbiHashes {
        token: artifacts::abi_hash(artifacts::OPEN_TOKEN),
        datanets: artifacts::abi_hash(artifacts::DATANET_REGISTRY),
        models: artifacts::abi_hash(artifacts::MODEL_REGISTRY),
        operators: artifacts::abi_hash(artifacts::OPERATOR_REGISTRY),
        settlement: artifacts::abi_hash(artifacts::SETTLEMENT),
    }
}

/// Sends one contract creation and waits for it; returns the address and block.
async fn deploy<P: Provider<Ethereum>>(
    provider: &P,
    from: Address,
    name: &'static str,
    code: Bytes,
) -> Result<(Address, u64)> {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_deploy_code(code);
    let receipt = provider
        .send_transaction(tx)
        .await
        .map_err(|source| Error::Rpc {
            call: "eth_sendTransaction",
            source,
        })?
        .get_receipt()
        .await
        .map_err(|source| Error::Pending { what: name, source })?;
    if !receipt.status() {
        return Err(Error::Reverted {
            what: name,
            tx: receipt.transaction_hash,
        });
    }
    let address = receipt.contract_address.ok_or(Error::Reverted {
        what: name,
        tx: receipt.transaction_hash,
    })?;
    let block = receipt.block_number.unwrap_or_default();
    info!(target: "chain::deploy", contract = name, %address, block, gas = receipt.gas_used, "deployed");
    Ok((address, block))
}

/// Writes the manifest as pretty JSON (creating parent folders).
pub fn write_manifest(path: &Path, deployment: &Deployment) -> Result<()> {
    let io = |source: Box<dyn std::error::Error + Send + Sync>| Error::Manifest {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(e.into()))?;
    }
    let json = serde_json::to_string_pretty(deployment).map_err(|e| io(e.into()))?;
    std::fs::write(path, json + "\n").map_err(|e| io(e.into()))
}

/// Reads a manifest and checks its ABI hashes match the bindings this binary was built with.
pub fn read_manifest(path: &Path) -> Result<Deployment> {
    let io = |source: Box<dyn std::error::Error + Send + Sync>| Error::Manifest {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| io(e.into()))?;
    let deployment: Deployment = serde_json::from_str(&text).map_err(|e| io(e.into()))?;
    if deployment.abi_hashes != current_abi_hashes() {
        return Err(io(
            "deployed ABI differs from this build's bindings; redeploy or rebuild".into(),
        ));
    }
    Ok(deployment)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn sample() -> Deployment {
        let a = Address::repeat_byte(1);
        Deployment {
            chain_id: 1,
            deploy_block: 7,
            deployer: a,
            governance: a,
            treasury: a,
            contracts: Contracts {
                token: a,
                datanets: a,
                models: a,
                operators: a,
                settlement: a,
            },
            abi_hashes: current_abi_hashes(),
        }
    }

    #[test]
    fn manifest_round_trips() {
        let dir = std::env::temp_dir().join(format!("openledger-manifest-{}", std::process::id()));
        let path = dir.join("d.json");
        write_manifest(&path, &sample()).unwrap();
        assert_eq!(read_manifest(&path).unwrap(), sample());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn manifest_for_other_bindings_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("openledger-manifest-stale-{}", std::process::id()));
        let path = dir.join("d.json");
        let mut d = sample();
        d.abi_hashes.settlement = B256::repeat_byte(9);
        write_manifest(&path, &d).unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("redeploy or rebuild"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
