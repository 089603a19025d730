//! The usage receipt (DESIGN §5): what one inference cost and whose data it used.
//!
//! [`Receipt`] is a `sol!` struct, so its `abi.encode` is the standard Solidity encoding and
//! its Merkle leaf is what Solidity's `keccak256(bytes.concat(keccak256(abi.encode(r))))`
//! gives (see [`crate::merkle`]). The same structs are declared in
//! `contracts/interfaces/IReceipts.sol`, the ABI's home for them (the contract never decodes a
//! receipt; a test keeps the two declarations identical).
//!
//! Attribution: each [`AttributionWeight`] names a contribution by (datanet id, contribution
//! id) — the pair a `DataCredit` needs — with its weight in parts per million of the receipt's
//! data share. The weights sum to at most 1,000,000; the rest is the unattributed share of
//! the receipt's `datanetId` (the datanet whose index attributed it). Entries are strictly
//! increasing by (datanet id, contribution id), so a contribution appears at most once and a
//! receipt has one canonical encoding; contribution id 0 is reserved for the unattributed
//! share.

use alloy::{primitives::U256, sol};

use crate::{
    error::{Error, Result},
    meter,
};

/// Parts per million in a whole receipt's data share.
pub const PPM: u32 = 1_000_000;

sol! {
    /// One contribution's share of a receipt's data fee.
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct AttributionWeight {
        /// The datanet the contribution belongs to.
        uint256 datanetId;
        /// The contribution (never 0).
        uint256 contributionId;
        /// Parts per million of the receipt's data share.
        uint32 ppm;
    }

    /// One inference, as the oracle records, serves and commits to (in a batch's receipts root).
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct Receipt {
        /// The request's unique id.
        bytes32 requestId;
        /// The paying user.
        address user;
        /// The operator that served it (and signs the batch that commits to it).
        address operator;
        /// The model served.
        uint256 modelId;
        /// Its version.
        uint32 modelVersion;
        /// Prompt tokens, counted with the model's tokenizer.
        uint64 tokensIn;
        /// Completion tokens.
        uint64 tokensOut;
        /// The fee in wei: `meter::request_fee(tokensIn, tokensOut, price)`.
        uint256 fee;
        /// keccak256 of the prompt as received.
        bytes32 promptHash;
        /// keccak256 of the output as returned.
        bytes32 outputHash;
        /// The datanet receiving the unattributed share.
        uint256 datanetId;
        /// Attributed contributions, strictly increasing by (datanetId, contributionId).
        AttributionWeight[] attribution;
        /// When the inference was served (unix seconds).
        uint64 timestamp;
    }
}

impl Receipt {
    /// Parts per million of the data share credited to contributions (the rest is the
    /// datanet's unattributed share). Only meaningful after [`Receipt::check_attribution`].
    pub fn attributed_ppm(&self) -> u64 {
        self.attribution.iter().map(|w| u64::from(w.ppm)).sum()
    }

    /// Parts per million left to the datanet's unattributed share.
    pub fn unattributed_ppm(&self) -> u64 {
        u64::from(PPM).saturating_sub(self.attributed_ppm())
    }

    /// Checks the attribution's shape: weights sum to at most 1,000,000 ppm, entries strictly
    /// increasing by (datanet id, contribution id), no contribution id 0.
    pub fn check_attribution(&self) -> Result<()> {
        let request_id = self.requestId;
        let mut previous: Option<(U256, U256)> = None;
        for (index, w) in self.attribution.iter().enumerate() {
            if w.contributionId.is_zero() {
                return Err(Error::ReservedContribution { request_id, index });
            }
            let key = (w.datanetId, w.contributionId);
            if previous.is_some_and(|p| p >= key) {
                return Err(Error::AttributionNotSorted { request_id, index });
            }
            previous = Some(key);
        }
        let sum = self.attributed_ppm();
        if sum > u64::from(PPM) {
            return Err(Error::WeightsExceedOne { request_id, sum });
        }
        Ok(())
    }

    /// Checks the receipt in full against the model's on-chain price: the attribution's shape
    /// and a fee equal to the metering rule's.
    pub fn validate(&self, price_per_1k: U256) -> Result<()> {
        self.check_attribution()?;
        let expected = meter::request_fee(self.tokensIn, self.tokensOut, price_per_1k)?;
        if self.fee != expected {
            return Err(Error::FeeMismatch {
                request_id: self.requestId,
                tokens: self.tokensIn.saturating_add(self.tokensOut),
                fee: self.fee,
                expected,
            });
        }
        Ok(())
    }
}
