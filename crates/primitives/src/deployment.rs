//! The deployment manifest: what `openledger deploy` writes and every other component reads.

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// Where the suite lives on one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// EIP-155 chain id the suite was deployed on.
    pub chain_id: u64,
    /// Block of the first deployment transaction: indexers start here.
    pub deploy_block: u64,
    /// The account that sent the deployment transactions.
    pub deployer: Address,
    /// The governance address set in every governed contract.
    pub governance: Address,
    /// Receives the protocol share, slashed stakes and rounding dust.
    pub treasury: Address,
    /// Contract addresses.
    pub contracts: Contracts,
    /// keccak256 of each contract's ABI JSON as compiled, so readers can refuse a manifest
    /// that does not match the bindings they were built with.
    pub abi_hashes: AbiHashes,
}

/// Addresses of the deployed contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contracts {
    /// The OPEN token.
    pub token: Address,
    /// The datanet registry.
    pub datanets: Address,
    /// The model registry.
    pub models: Address,
    /// The operator registry.
    pub operators: Address,
    /// Deposits, settlement, rewards.
    pub settlement: Address,
}

/// keccak256 of each contract's ABI JSON (see [`Deployment::abi_hashes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbiHashes {
    /// ABI hash of the OPEN token.
    pub token: B256,
    /// ABI hash of the datanet registry.
    pub datanets: B256,
    /// ABI hash of the model registry.
    pub models: B256,
    /// ABI hash of the operator registry.
    pub operators: B256,
    /// ABI hash of the settlement contract.
    pub settlement: B256,
}
