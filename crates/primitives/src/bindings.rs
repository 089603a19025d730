//! Bindings for every contract of the suite, generated from `contracts/evm/out/*.json` (ABI and
//! bytecode written by `npm run build:contracts`; CI checks the committed artifacts are current).
//!
//! The implementations inherit their whole external API (functions, events, errors, structs)
//! from the interfaces in `contracts/interfaces/`, so their ABI *is* the interface ABI plus the
//! constructor and a few public constants.
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    OpenToken,
    "../../contracts/evm/out/OpenToken.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    DatanetRegistry,
    "../../contracts/evm/out/DatanetRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ModelRegistry,
    "../../contracts/evm/out/ModelRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    OperatorRegistry,
    "../../contracts/evm/out/OperatorRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Settlement,
    "../../contracts/evm/out/Settlement.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ReentrantToken,
    "../../contracts/evm/out/ReentrantToken.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestWallet,
    "../../contracts/evm/out/TestWallet.json"
);

/// The compiled artifacts the bindings above were generated from, for hashing and deployment.
pub mod artifacts {
    use alloy::primitives::{B256, keccak256};

    /// `contracts/evm/out/OpenToken.json`.
    pub const OPEN_TOKEN: &str = include_str!("../../../contracts/evm/out/OpenToken.json");
    /// `contracts/evm/out/DatanetRegistry.json`.
    pub const DATANET_REGISTRY: &str =
        include_str!("../../../contracts/evm/out/DatanetRegistry.json");
    /// `contracts/evm/out/ModelRegistry.json`.
    pub const MODEL_REGISTRY: &str = include_str!("../../../contracts/evm/out/ModelRegistry.json");
    /// `contracts/evm/out/OperatorRegistry.json`.
    pub const OPERATOR_REGISTRY: &str =
        include_str!("../../../contracts/evm/out/OperatorRegistry.json");
    /// `contracts/evm/out/Settlement.json`.
    pub const SETTLEMENT: &str = include_str!("../../../contracts/evm/out/Settlement.json");

    /// keccak256 of the artifact's `abi` member serialised compactly (keys in artifact order).
    pub fn abi_hash(artifact: &str) -> B256 {
        let value: serde_json::Value = serde_json::from_str(artifact).expect("artifact is JSON");
        keccak256(serde_json::to_vec(&value["abi"]).expect("serialisable"))
    }
}

/// Values of `IDatanetRegistry.ContributionStatus` (Solidity enums arrive as `u8`).
pub mod contribution_status {
    /// No such contribution.
    pub const NONE: u8 = 0;
    /// Waiting for a curator.
    pub const PENDING: u8 = 1;
    /// Accepted: can be paid by models using its datanet.
    pub const ACCEPTED: u8 = 2;
    /// Rejected.
    pub const REJECTED: u8 = 3;
    /// Withdrawn by its contributor after the curation timeout.
    pub const WITHDRAWN: u8 = 4;
}

/// Values of `ISettlement.SkipReason` (why a debit was not collected).
pub mod skip_reason {
    /// The voucher names another user, operator or model.
    pub const VOUCHER_MISMATCH: u8 = 0;
    /// The voucher expired before the batch settled.
    pub const VOUCHER_EXPIRED: u8 = 1;
    /// The user's revocation took effect before the batch settled.
    pub const VOUCHER_REVOKED: u8 = 2;
    /// The debit would exceed the voucher's cumulative cap.
    pub const CAP_EXCEEDED: u8 = 3;
    /// The (user, operator) escrow is short.
    pub const INSUFFICIENT_ESCROW: u8 = 4;
    /// The signature is not valid (now) for the user.
    pub const INVALID_SIGNATURE: u8 = 5;
    /// The model was deactivated longer than the grace period ago.
    pub const MODEL_INACTIVE: u8 = 6;
    /// The operator does not serve the model.
    pub const MODEL_NOT_SERVED: u8 = 7;
}

/// Values of `ISettlement.RewardKind` (Solidity enums arrive as `u8`).
pub mod reward_kind {
    /// Protocol share and rounding dust, to the treasury.
    pub const PROTOCOL: u8 = 0;
    /// Operator share.
    pub const OPERATOR: u8 = 1;
    /// Model developer share.
    pub const DEVELOPER: u8 = 2;
    /// A contribution's data credit, to its contributor.
    pub const CONTRIBUTION: u8 = 3;
    /// A datanet's unattributed data credit, to its owner.
    pub const DATANET: u8 = 4;
}
