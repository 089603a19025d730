//! The crate's one error type. Voucher failures say what the paying user should do; the
//! others say what is wrong with the input the node built.

use alloy::primitives::{Address, B256, U256};

/// Result of every fallible billing function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything billing can refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    // ------------------------------------------------------------------ metering
    /// The fee does not fit in 256 bits (or the token count in 64): the price or the request is
    /// absurd, and nothing can be charged for it.
    #[error(
        "fee overflows: {tokens} tokens at {price_per_1k} wei per 1k tokens; check the model's price"
    )]
    FeeOverflow {
        /// Tokens being priced (saturated at `u64::MAX` when the count itself overflowed).
        tokens: u64,
        /// The price per 1,000 tokens in wei.
        price_per_1k: U256,
    },

    // ------------------------------------------------------------------ receipts
    /// A receipt's attribution weights add up to more than one million parts per million.
    #[error(
        "receipt {request_id}: attribution weights sum to {sum} ppm, more than 1000000; recompute the attribution"
    )]
    WeightsExceedOne {
        /// The receipt.
        request_id: B256,
        /// The sum of its weights.
        sum: u64,
    },
    /// A receipt's attribution is not strictly increasing by (datanet id, contribution id), so
    /// it names a contribution twice or is not in its canonical order.
    #[error(
        "receipt {request_id}: attribution entry {index} is not strictly after the previous one by (datanetId, contributionId)"
    )]
    AttributionNotSorted {
        /// The receipt.
        request_id: B256,
        /// Index of the offending entry.
        index: usize,
    },
    /// A receipt credits contribution id 0, which is reserved for a datanet's unattributed share.
    #[error(
        "receipt {request_id}: attribution entry {index} names contribution 0, which is reserved for the datanet's unattributed share"
    )]
    ReservedContribution {
        /// The receipt.
        request_id: B256,
        /// Index of the offending entry.
        index: usize,
    },
    /// A receipt's fee is not what the metering rule gives for its tokens and the model's price.
    #[error(
        "receipt {request_id}: fee is {fee} wei but {tokens} tokens at the model's price cost {expected} wei"
    )]
    FeeMismatch {
        /// The receipt.
        request_id: B256,
        /// Tokens in plus tokens out.
        tokens: u64,
        /// The fee the receipt states.
        fee: U256,
        /// The fee the metering rule gives.
        expected: U256,
    },

    // ------------------------------------------------------------------ Merkle tree
    /// A Merkle tree needs at least one leaf.
    #[error("a receipts tree needs at least one receipt")]
    EmptyTree,
    /// A proof was asked for a leaf the tree does not have.
    #[error("no leaf {index} in a tree of {len} leaves")]
    NoSuchLeaf {
        /// The index asked for.
        index: usize,
        /// The number of leaves.
        len: usize,
    },

    // ------------------------------------------------------------------ vouchers (API keys)
    /// The API key is not `0x` followed by the hex of `abi.encode(ISettlement.SignedVoucher)`.
    #[error(
        "the API key is not a signed voucher ({reason}); use 0x + hex of abi.encode(SignedVoucher) as the key"
    )]
    MalformedVoucher {
        /// What was wrong with it.
        reason: String,
    },
    /// The voucher's signature is not a 65-byte `r || s || v` ECDSA signature the settlement
    /// contract accepts (v 27 or 28, low s).
    #[error(
        "the voucher's signature is malformed ({reason}); sign the voucher again with your wallet (EIP-712)"
    )]
    MalformedSignature {
        /// What was wrong with it.
        reason: String,
    },
    /// The signature is valid ECDSA but not by the voucher's user under this chain's
    /// settlement domain: forged, signed for another chain or contract, or for other fields.
    #[error(
        "the voucher is signed by {recovered}, not by its user {user}, under this chain's settlement domain; sign it with the user's wallet for chain {chain_id}"
    )]
    WrongSigner {
        /// The address the signature recovers to.
        recovered: Address,
        /// The voucher's user.
        user: Address,
        /// The chain the domain pins.
        chain_id: u64,
    },
    /// The voucher expires before the node could settle the charge.
    #[error(
        "the voucher expired (or expires too soon): expiry {expiry}, needed at least {needed}; sign a new voucher with a later expiry"
    )]
    VoucherExpired {
        /// The voucher's expiry (unix seconds).
        expiry: u64,
        /// The earliest expiry this node accepts: now plus its settlement margin.
        needed: u64,
    },
    /// The voucher is for another operator.
    #[error(
        "the voucher is for operator {voucher_operator}, but this node is operator {operator}; sign a voucher for {operator}"
    )]
    WrongOperator {
        /// The voucher's operator.
        voucher_operator: Address,
        /// This node's operator.
        operator: Address,
    },
    /// The voucher is for another model.
    #[error(
        "the voucher is for model {voucher_model}, but the request is for model {model}; sign a voucher for model {model}"
    )]
    WrongModel {
        /// The voucher's model.
        voucher_model: U256,
        /// The requested model.
        model: U256,
    },
    /// The user revoked vouchers with this nonce (`revokeVouchers`), now or pending.
    #[error(
        "the voucher's nonce {nonce} was cancelled (vouchers need nonce >= {min_nonce}); sign a new voucher with nonce >= {min_nonce}"
    )]
    VoucherCancelled {
        /// The voucher's nonce.
        nonce: u64,
        /// The user's minimum nonce on chain.
        min_nonce: u64,
    },
    /// The request could cost more than the voucher's cap leaves.
    #[error(
        "the request may cost {} wei but the voucher's cap {} leaves {} after {} settled and {} not yet settled; sign a voucher with a higher cumulative cap or ask for fewer tokens",
        .0.worst_case, .0.cap, .0.left, .0.spent, .0.unsettled
    )]
    OverCap(Box<CapShortfall>),
    /// The request could cost more than the user's deposit leaves.
    #[error(
        "the request may cost {} wei but your deposit leaves {} ({} available, {} owed to this node and not yet settled); deposit more OPEN or ask for fewer tokens",
        .0.worst_case, .0.left, .0.available, .0.unsettled
    )]
    InsufficientFunds(Box<FundsShortfall>),

    // ------------------------------------------------------------------ batches
    /// A batch needs at least one receipt with a non-zero fee (the contract refuses empty
    /// batches and zero debits).
    #[error("nothing to settle: no receipt with a non-zero fee")]
    NothingToSettle,
    /// Two receipts share a request id: one inference would be charged twice.
    #[error("request {request_id} appears twice; a request is charged once")]
    DuplicateRequest {
        /// The repeated id.
        request_id: B256,
    },
    /// A receipt relies on a voucher of another user, operator or model.
    #[error(
        "receipt {request_id} relies on a voucher for ({voucher_user}, {voucher_operator}, model {voucher_model}), not for its own user, this operator and its model"
    )]
    VoucherDoesNotCover {
        /// The receipt.
        request_id: B256,
        /// The voucher's user.
        voucher_user: Address,
        /// The voucher's operator.
        voucher_operator: Address,
        /// The voucher's model.
        voucher_model: U256,
    },
    /// A receipt served by another operator was given to this operator's batch.
    #[error(
        "receipt {request_id} was served by {receipt_operator}, not by this operator {operator}"
    )]
    ReceiptOfAnotherOperator {
        /// The receipt.
        request_id: B256,
        /// The operator the receipt names.
        receipt_operator: Address,
        /// The operator building the batch.
        operator: Address,
    },
    /// Amounts summed in a batch overflow 256 bits.
    #[error("the fees of one (model, user) overflow 256 bits")]
    AmountOverflow,
    /// Signing the batch failed.
    #[error("signing the batch with the operator key failed: {0}")]
    Signing(String),
}

impl Error {
    /// Whether the error is the paying client's to fix (HTTP 402 "payment required" at the
    /// server): a voucher that does not authorise the request.
    pub fn is_payment_required(&self) -> bool {
        matches!(
            self,
            Self::MalformedVoucher { .. }
                | Self::MalformedSignature { .. }
                | Self::WrongSigner { .. }
                | Self::VoucherExpired { .. }
                | Self::WrongOperator { .. }
                | Self::WrongModel { .. }
                | Self::VoucherCancelled { .. }
                | Self::OverCap(_)
                | Self::InsufficientFunds(_)
        )
    }
}

/// By how much a request's worst case exceeds what a voucher's cap leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapShortfall {
    /// Worst-case fee of the request.
    pub worst_case: U256,
    /// The voucher's cumulative cap.
    pub cap: U256,
    /// Spent on chain for (user, operator, model).
    pub spent: U256,
    /// Served by this node on the voucher's channel, not yet settled.
    pub unsettled: U256,
    /// What the cap leaves (saturating at zero).
    pub left: U256,
}

/// By how much a request's worst case exceeds what a user's deposit leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundsShortfall {
    /// Worst-case fee of the request.
    pub worst_case: U256,
    /// Settlement balance less any pending withdrawal.
    pub available: U256,
    /// Owed to this node by the user, not yet settled.
    pub unsettled: U256,
    /// What the deposit leaves (saturating at zero).
    pub left: U256,
}
