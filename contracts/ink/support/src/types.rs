//! The ABI's structs and enums that more than one contract reads: the registries store and
//! return them, settlement decodes them from the registries' answers. Each is both
//! Solidity-ABI (`SolEncode`/`SolDecode`, field order as in `contracts/interfaces`) and SCALE
//! (contract storage).

use ink::{Address, H256, U256, prelude::string::String};

/// `IDatanetRegistry.ContributionStatus` (a `uint8` on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub enum ContributionStatus {
    #[default]
    None,
    Pending,
    Accepted,
    Rejected,
    Withdrawn,
}

/// `IDatanetRegistry.Datanet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Datanet {
    pub owner: Address,
    pub min_accepted: u32,
    pub accepted_count: u32,
    pub metadata_uri: String,
}

/// `IDatanetRegistry.Contribution`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Contribution {
    pub datanet_id: U256,
    pub contributor: Address,
    pub status: ContributionStatus,
    pub tokens: u64,
    pub stake: U256,
    pub added_at: u64,
    pub content_hash: H256,
    pub uri: String,
}

/// `IModelRegistry.Model`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Model {
    pub developer: Address,
    pub active: bool,
    pub latest_version: u32,
    pub deactivated_at: u64,
    pub price_per_1k_tokens: U256,
    pub base_model_hash: H256,
}

/// `IModelRegistry.ModelVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct ModelVersion {
    pub parent_version: u32,
    pub adapter_hash: H256,
    pub adapter_uri: String,
}

/// `IOperatorRegistry.Operator`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Operator {
    pub signer: Address,
    pub slashed: bool,
    pub unstake_ready_at: u64,
    pub stake: U256,
    pub unstaking: U256,
}
