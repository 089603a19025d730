// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGoverned} from "./IGoverned.sol";

/// @title Prepaid balances, signed usage batches, fee splits and pull-payment rewards.
/// @notice
/// Users deposit OPEN and authorise spending with EIP-712 **vouchers**: cumulative caps per
/// (user, operator, model), like a payment channel. An operator's signing key signs a **batch**
/// (EIP-712): strictly increasing sequence number, the Merkle root of its receipts (kept off
/// chain), one debit per (model, user) and the data credits. Anyone may submit a batch; the
/// signatures authenticate it. For each model in the batch the charged total is split by the
/// split policy: protocol, operator and developer shares computed here, `floor(total * bps /
/// 10_000)` each, the data share likewise, and the rounding dust to the protocol treasury.
/// The data share must be covered exactly by the batch's data credits for that model: each
/// names a contribution (accepted, of a datanet in the model's lineage; paid to its
/// contributor) or, with contributionId 0, a datanet's unattributed share (paid to the datanet
/// owner). Sum of credits == sum of debits, in every batch. Rewards accrue as claimable
/// balances, paid by `claim`.
///
/// Vouchers: `nonce` is a revocation handle: `cancelVouchers(n)` voids every voucher of the
/// caller with nonce < n. The spent amount per (user, operator, model) only grows, so caps of
/// successive vouchers must grow too; a debit is valid iff spent + amount <= cap.
///
/// Withdrawals are two-step: `requestWithdrawal` then, after `withdrawalDelay`, `withdraw`,
/// which pays min(requested, balance): until then the balance still backs signed vouchers.
interface ISettlement is IGoverned {
    /// Basis points; the four sum to 10,000.
    struct SplitPolicy {
        uint16 protocolBps;
        uint16 operatorBps;
        uint16 developerBps;
        uint16 dataBps;
    }

    /// Signed by the user (EOA or ERC-1271 wallet).
    struct Voucher {
        address user;
        address operator;
        uint256 modelId;
        uint256 cumulativeCap;
        uint64 expiry;
        uint64 nonce;
    }

    struct Debit {
        address user;
        uint256 modelId;
        uint256 amount;
    }

    /// contributionId 0 means the datanet's unattributed share.
    struct DataCredit {
        uint256 modelId;
        uint256 datanetId;
        uint256 contributionId;
        uint256 amount;
    }

    /// Signed by the operator's registered signer. `debits` strictly increasing by
    /// (modelId, user); `credits` strictly increasing by (modelId, datanetId, contributionId).
    struct Batch {
        address operator;
        uint64 sequence;
        bytes32 receiptsRoot;
        Debit[] debits;
        DataCredit[] credits;
    }

    /// The voucher backing the debit at the same index, with the user's signature.
    struct SignedVoucher {
        Voucher voucher;
        bytes signature;
    }

    /// One contribution's share of a receipt's data fee, in parts per million.
    struct AttributionWeight {
        uint256 datanetId;
        uint256 contributionId;
        uint32 ppm;
    }

    /// ABI documentation only: no function takes it. One inference, made by the oracle and
    /// kept off chain; a batch's `receiptsRoot` is the root of an OpenZeppelin standard Merkle
    /// tree of its receipts, leaf `keccak256(bytes.concat(keccak256(abi.encode(receipt))))`,
    /// so `MerkleProof.verify` checks a served receipt against the settled root. `fee` is
    /// ceil((tokensIn + tokensOut) * pricePer1kTokens / 1000); `attribution` is strictly
    /// increasing by (datanetId, contributionId), its weights sum to at most 1,000,000 ppm, and
    /// the rest is the unattributed share of `datanetId`. Defined in Rust by openledger-billing.
    struct Receipt {
        bytes32 requestId;
        address user;
        uint256 modelId;
        uint32 modelVersion;
        uint64 tokensIn;
        uint64 tokensOut;
        uint256 fee;
        bytes32 promptHash;
        bytes32 outputHash;
        uint256 datanetId;
        AttributionWeight[] attribution;
        uint64 timestamp;
    }

    enum RewardKind {
        Protocol,
        Operator,
        Developer,
        Contribution,
        Datanet
    }

    event Deposited(address indexed user, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed user, uint256 amount, uint64 readyAt);
    event Withdrawn(address indexed user, uint256 amount, uint256 balance);
    event VouchersCancelled(address indexed user, uint64 minNonce);
    event BatchSettled(
        address indexed operator,
        uint64 indexed sequence,
        bytes32 receiptsRoot,
        uint256 totalCharged,
        uint256 debitCount,
        uint256 creditCount
    );
    /// `spent` is the cumulative amount charged to `user` by `operator` for `modelId`.
    event Charged(
        address indexed operator,
        uint64 indexed sequence,
        address indexed user,
        uint256 modelId,
        uint256 amount,
        uint256 spent
    );
    /// `sourceId` is the contribution id (Contribution), the datanet id (Datanet), else 0.
    event RewardCredited(
        address indexed account,
        uint256 indexed modelId,
        uint64 indexed sequence,
        RewardKind kind,
        uint256 sourceId,
        uint256 amount
    );
    event Claimed(address indexed account, uint256 amount);
    event SplitPolicyChanged(uint16 protocolBps, uint16 operatorBps, uint16 developerBps, uint16 dataBps);
    event WithdrawalDelayChanged(uint64 delay);

    error ZeroAmount();
    error InvalidSplitPolicy();
    error DelayTooLong(uint64 delay, uint64 max);
    error NoWithdrawalRequested();
    error WithdrawalNotReady(uint64 readyAt);
    error NothingToClaim();
    error NonceNotIncreasing(uint64 current, uint64 requested);
    error EmptyBatch();
    error BadSequence(address operator, uint64 expected, uint64 got);
    error OperatorNotActive(address operator);
    error InvalidOperatorSignature();
    error VoucherCountMismatch(uint256 debits, uint256 vouchers);
    error DebitsNotSorted(uint256 index);
    error CreditsNotSorted(uint256 index);
    error VoucherMismatch(uint256 index);
    error VoucherExpired(uint256 index, uint64 expiry);
    error VoucherCancelled(uint256 index, uint64 nonce);
    error InvalidVoucherSignature(uint256 index);
    error CapExceeded(uint256 index, uint256 cap, uint256 wouldSpend);
    error InsufficientBalance(address user, uint256 balance, uint256 amount);
    error DatanetNotInLineage(uint256 index, uint256 modelId, uint256 datanetId);
    error ContributionNotAccepted(uint256 index, uint256 contributionId);
    error ContributionNotInDatanet(uint256 index, uint256 contributionId, uint256 datanetId);
    error CreditWithoutDebit(uint256 index, uint256 modelId);
    error DataCreditsMismatch(uint256 modelId, uint256 expected, uint256 actual);

    function deposit(uint256 amount) external;
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    function requestWithdrawal(uint256 amount) external;
    function withdraw() external returns (uint256 paid);
    function cancelVouchers(uint64 minNonce) external;
    function settleBatch(Batch calldata batch, bytes calldata operatorSignature, SignedVoucher[] calldata vouchers)
        external;
    function claim() external returns (uint256 paid);
    function setSplitPolicy(SplitPolicy calldata policy) external;
    function setWithdrawalDelay(uint64 delay) external;

    function token() external view returns (address);
    function treasury() external view returns (address);
    function datanets() external view returns (address);
    function models() external view returns (address);
    function operators() external view returns (address);
    function splitPolicy() external view returns (SplitPolicy memory);
    function withdrawalDelay() external view returns (uint64);
    function balanceOf(address user) external view returns (uint256);
    function pendingWithdrawal(address user) external view returns (uint256 amount, uint64 readyAt);
    function claimable(address account) external view returns (uint256);
    function spent(address user, address operator, uint256 modelId) external view returns (uint256);
    function lastSequence(address operator) external view returns (uint64);
    function minNonce(address user) external view returns (uint64);
    /// Sum of all user balances.
    function totalDeposits() external view returns (uint256);
    /// Sum of all unclaimed rewards.
    function totalClaimable() external view returns (uint256);
    /// EIP-712 digest the operator signer signs for `batch`.
    function batchDigest(Batch calldata batch) external view returns (bytes32);
    /// EIP-712 digest the user signs for `voucher`.
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);
    function domainSeparator() external view returns (bytes32);
}
