// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGoverned} from "./IGoverned.sol";

/// @title Escrow per (user, operator), signed usage batches, fee splits and rewards.
/// @notice
/// **Escrow.** A user deposits OPEN *for one operator*: the escrow of (user, operator) backs
/// only that operator's vouchers, so one deposit can never be promised to two payees. Taking
/// it back is two-step: `requestWithdrawal(operator, amount)`, then `withdraw(operator)` inside
/// the window [readyAt, readyAt + WITHDRAWAL_WINDOW), readyAt = request time +
/// `withdrawalDelay()`; an expired request is void (request again). A newer request replaces
/// the older one and restarts the delay.
///
/// **Vouchers** (EIP-712, signed by the user, EOA or ERC-1271 wallet) are cumulative caps per
/// (user, operator, model): a debit is collectable iff spent + amount <= cap. `nonce` is a
/// revocation handle: `revokeVouchers(n)` voids every voucher of the caller with nonce < n,
/// **but only `withdrawalDelay()` after the call**, so work already served can still settle.
///
/// **What an operator checks before serving** a request of worst-case fee F from `user`:
/// 1. the voucher: signature (`voucherDigest`), `operator` = itself, model, `expiry` later than
///    when it will settle, `nonce >= pendingMinNonce` of `voucherRevocation(user)` (a pending
///    revocation will void it), and spent + unsettled + F <= cumulativeCap;
/// 2. the money: unsettled + F <= `guaranteed(user, operator)` — the escrow minus any live
///    withdrawal request, i.e. what the user can never take back before it is settled;
/// 3. it then settles within `withdrawalDelay()` of the first pending withdrawal or revocation
///    it sees, before the voucher's expiry and the batch's deadline.
///
/// **Batches** (EIP-712, signed by the operator's registered signer) carry a sequence number
/// that must be exactly last + 1 (a link to the previous batch: of several signed batches with
/// one number at most one ever settles, so a leaked or superseded batch cannot charge anyone
/// twice), a `deadline` after which it can never settle (so the operator may re-sign that
/// number with other contents), the split-policy epoch it is priced under, the Merkle root of
/// its receipts, one debit per (model, user) and per-model data-credit *weights*. Anyone may
/// submit a batch; the signatures authenticate it.
///
/// **No user can veto a batch.** A debit that cannot be collected (voucher mismatched,
/// expired, revoked or over its cap, escrow short, signature invalid now, model deactivated
/// past its grace or not served by the operator) is skipped with `DebitSkipped` and the rest
/// settles. ERC-1271 checks run with a gas stipend of `WALLET_CHECK_GAS`; a submitter that
/// gives too little gas for it makes the whole call revert rather than a debit skip.
/// Structural faults of the batch itself (order, counts, zero amounts, signature, sequence,
/// deadline, epoch, credits naming datanet 0, a datanet outside the lineage or a contribution
/// that is not accepted) revert it.
///
/// **Split.** Per model in a batch, of the collected total T: operator, developer and data
/// shares are `floor(T * bps / 10_000)` each under the batch's policy epoch; the protocol
/// share is the rest. The data share D goes to the model's credits by weight: credit k gets
/// `floor(D * w_k / W)` (W = sum of the model's weights; 512-bit intermediate, never
/// overflows); the dust D - sum goes to the treasury. A contribution credit pays its
/// contributor, contributionId 0 pays the datanet owner.
///
/// **Rewards** accrue as claimable balances (`claim`, `claimTo`). Operator rewards vest: those
/// credited while the cooldown is c become claimable at the end of the next whole period of
/// length c (between c and 2c later), and until then a slash of the operator can take them.
///
/// **Governance** changes nothing retroactively. A new split policy opens a new epoch
/// `withdrawalDelay()` after it is set; batches signed for the previous epoch still settle at
/// their prices for `withdrawalDelay()` after the switch. A new withdrawal delay takes effect
/// after the current one. A model deactivated by its developer is charged for
/// `withdrawalDelay()` after deactivation, then no more.
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

    /// contributionId 0 means the datanet's unattributed share. `weight` is relative to the
    /// other credits of the same model in the batch.
    struct DataCredit {
        uint256 modelId;
        uint256 datanetId;
        uint256 contributionId;
        uint256 weight;
    }

    /// Signed by the operator's registered signer. `debits` strictly increasing by
    /// (modelId, user); `credits` strictly increasing by (modelId, datanetId, contributionId).
    struct Batch {
        address operator;
        uint64 sequence;
        uint64 deadline;
        uint32 policyEpoch;
        bytes32 receiptsRoot;
        Debit[] debits;
        DataCredit[] credits;
    }

    /// The voucher backing the debit at the same index, with the user's signature.
    struct SignedVoucher {
        Voucher voucher;
        bytes signature;
    }

    /// One (user, operator) escrow. `pending` is the live withdrawal request, if any.
    struct Escrow {
        uint256 balance;
        uint256 pending;
        uint64 readyAt;
        uint64 expiresAt;
    }

    enum RewardKind {
        Protocol,
        Operator,
        Developer,
        Contribution,
        Datanet
    }

    /// Why a debit was not collected.
    enum SkipReason {
        VoucherMismatch,
        VoucherExpired,
        VoucherRevoked,
        CapExceeded,
        InsufficientEscrow,
        InvalidSignature,
        ModelInactive,
        ModelNotServed
    }

    event Deposited(address indexed user, address indexed operator, uint256 amount, uint256 balance);
    event WithdrawalRequested(
        address indexed user, address indexed operator, uint256 amount, uint64 readyAt, uint64 expiresAt
    );
    event Withdrawn(address indexed user, address indexed operator, uint256 amount, uint256 balance);
    /// Vouchers of `user` with nonce < `minNonce` are void from `effectiveAt` on.
    event VouchersRevoked(address indexed user, uint64 minNonce, uint64 effectiveAt);
    event BatchSettled(
        address indexed operator,
        uint64 indexed sequence,
        bytes32 receiptsRoot,
        uint32 policyEpoch,
        uint256 totalCharged,
        uint256 collected,
        uint256 skipped
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
    event DebitSkipped(
        address indexed operator,
        uint64 indexed sequence,
        address indexed user,
        uint256 modelId,
        uint256 amount,
        SkipReason reason
    );
    /// `sourceId` is the contribution id (Contribution), the datanet id (Datanet), else 0.
    /// Operator rewards vest until `vestsAt` (0 for the other kinds: claimable at once).
    event RewardCredited(
        address indexed account,
        uint256 indexed modelId,
        uint64 indexed sequence,
        RewardKind kind,
        uint256 sourceId,
        uint256 amount,
        uint64 vestsAt
    );
    /// Unvested operator rewards taken by a slash, credited to the treasury.
    event RewardsSlashed(address indexed operator, uint256 amount);
    event Claimed(address indexed account, address indexed recipient, uint256 amount);
    /// Epoch `epoch` prices batches from `effectiveAt` on.
    event SplitPolicyChanged(
        uint32 indexed epoch,
        uint16 protocolBps,
        uint16 operatorBps,
        uint16 developerBps,
        uint16 dataBps,
        uint64 effectiveAt
    );
    event WithdrawalDelayChanged(uint64 delay, uint64 effectiveAt);

    error ZeroAmount();
    error InvalidSplitPolicy();
    error DelayTooLong(uint64 delay, uint64 max);
    /// A deployment whose contracts do not point at each other.
    error NotWired(address contractAddress);
    error NotOperatorRegistry(address caller);
    error NoWithdrawalRequested();
    error WithdrawalNotReady(uint64 readyAt);
    error WithdrawalExpired(uint64 expiresAt);
    error NothingToClaim();
    error NonceNotIncreasing(uint64 current, uint64 requested);
    error InsufficientBalance(address user, uint256 balance, uint256 amount);
    error EmptyBatch();
    error BatchExpired(uint64 deadline);
    error BadSequence(address operator, uint64 expected, uint64 got);
    error PolicyEpochNotLive(uint32 epoch, uint32 current);
    error OperatorNotActive(address operator);
    error InvalidOperatorSignature();
    error VoucherCountMismatch(uint256 debits, uint256 vouchers);
    error DebitsNotSorted(uint256 index);
    error CreditsNotSorted(uint256 index);
    error NotEnoughGasForWalletCheck(uint256 index);
    error UnknownDatanet(uint256 index, uint256 datanetId);
    error DatanetNotInLineage(uint256 index, uint256 modelId, uint256 datanetId);
    error ContributionNotAccepted(uint256 index, uint256 contributionId);
    error ContributionNotInDatanet(uint256 index, uint256 contributionId, uint256 datanetId);
    error CreditWithoutDebit(uint256 index, uint256 modelId);
    error NoDataCredits(uint256 modelId);

    function deposit(address operator, uint256 amount) external;
    function depositWithPermit(address operator, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
    function requestWithdrawal(address operator, uint256 amount) external;
    function withdraw(address operator) external returns (uint256 paid);
    /// Schedules the revocation of the caller's vouchers with nonce < `minNonce`.
    function revokeVouchers(uint64 minNonce) external;
    function settleBatch(Batch calldata batch, bytes calldata operatorSignature, SignedVoucher[] calldata vouchers)
        external;
    function claim() external returns (uint256 paid);
    function claimTo(address recipient) external returns (uint256 paid);
    /// Takes up to `amount` of `operator`'s unvested rewards to the treasury (operator registry only).
    function slashRewards(address operator, uint256 amount) external returns (uint256 taken);
    function setSplitPolicy(SplitPolicy calldata policy) external;
    function setWithdrawalDelay(uint64 delay) external;

    function token() external view returns (address);
    function treasury() external view returns (address);
    function datanets() external view returns (address);
    function models() external view returns (address);
    function operators() external view returns (address);
    /// The epoch pricing batches now.
    function currentEpoch() external view returns (uint32);
    /// The latest epoch set (may not be in effect yet).
    function latestEpoch() external view returns (uint32);
    function splitPolicyOf(uint32 epoch) external view returns (SplitPolicy memory policy, uint64 effectiveAt);
    /// The policy of `currentEpoch()`.
    function splitPolicy() external view returns (SplitPolicy memory);
    /// The delay in effect now.
    function withdrawalDelay() external view returns (uint64);
    function escrowOf(address user, address operator) external view returns (Escrow memory);
    /// What `operator` can collect from `user` whatever the user does: the escrow minus a live
    /// withdrawal request.
    function guaranteed(address user, address operator) external view returns (uint256);
    /// `minNonce` is in effect now; `pendingMinNonce` (0 if none) takes effect at `effectiveAt`.
    function voucherRevocation(address user)
        external
        view
        returns (uint64 minNonce, uint64 pendingMinNonce, uint64 effectiveAt);
    /// Claimable now (vested).
    function claimable(address account) external view returns (uint256);
    /// Operator rewards not vested yet, and when the next part vests.
    function vesting(address operator) external view returns (uint256 amount, uint64 nextVestsAt);
    function spent(address user, address operator, uint256 modelId) external view returns (uint256);
    function lastSequence(address operator) external view returns (uint64);
    /// Sum of all escrow balances.
    function totalDeposits() external view returns (uint256);
    /// Sum of all unclaimed rewards, vested or not.
    function totalClaimable() external view returns (uint256);
    /// EIP-712 digest the operator signer signs for `batch`.
    function batchDigest(Batch calldata batch) external view returns (bytes32);
    /// EIP-712 digest the user signs for `voucher`.
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);
    function domainSeparator() external view returns (bytes32);
}
