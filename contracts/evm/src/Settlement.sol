// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IDatanetRegistry} from "../../interfaces/IDatanetRegistry.sol";
import {IModelRegistry} from "../../interfaces/IModelRegistry.sol";
import {IOperatorRegistry} from "../../interfaces/IOperatorRegistry.sol";
import {ISettlement} from "../../interfaces/ISettlement.sol";
import {Governed} from "./Governed.sol";

/// @title Deposits, batch settlement, fee splits and claims (see ISettlement).
contract Settlement is ISettlement, Governed, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    /// Upper bound governance can set for the protocol share.
    uint16 public constant MAX_PROTOCOL_BPS = 2_000;
    /// Upper bound governance can set for the withdrawal delay.
    uint64 public constant MAX_WITHDRAWAL_DELAY = 30 days;

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address user,address operator,uint256 modelId,uint256 cumulativeCap,uint64 expiry,uint64 nonce)"
    );
    bytes32 public constant DEBIT_TYPEHASH = keccak256("Debit(address user,uint256 modelId,uint256 amount)");
    bytes32 public constant DATA_CREDIT_TYPEHASH =
        keccak256("DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 amount)");
    bytes32 public constant BATCH_TYPEHASH = keccak256(
        "Batch(address operator,uint64 sequence,bytes32 receiptsRoot,Debit[] debits,DataCredit[] credits)"
        "DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 amount)"
        "Debit(address user,uint256 modelId,uint256 amount)"
    );

    struct Withdrawal {
        uint256 amount;
        uint64 readyAt;
    }

    address public immutable token;
    address public immutable treasury;
    address public immutable datanets;
    address public immutable models;
    address public immutable operators;

    SplitPolicy private _policy;
    uint64 public withdrawalDelay;
    uint256 public totalDeposits;
    uint256 public totalClaimable;

    mapping(address => uint256) private _balances;
    mapping(address => uint256) private _claimable;
    mapping(address => Withdrawal) private _withdrawals;
    mapping(address => mapping(address => mapping(uint256 => uint256))) private _spent;
    mapping(address => uint64) private _lastSequence;
    mapping(address => uint64) private _minNonce;

    constructor(
        address token_,
        address governance_,
        address treasury_,
        address datanets_,
        address models_,
        address operators_,
        SplitPolicy memory policy,
        uint64 withdrawalDelay_
    ) Governed(governance_) EIP712("OpenLedger Settlement", "1") {
        if (
            token_ == address(0) || treasury_ == address(0) || datanets_ == address(0) || models_ == address(0)
                || operators_ == address(0)
        ) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        datanets = datanets_;
        models = models_;
        operators = operators_;
        _setSplitPolicy(policy);
        _setWithdrawalDelay(withdrawalDelay_);
    }

    // ---------------------------------------------------------------- user balances

    function deposit(uint256 amount) external nonReentrant {
        _deposit(amount);
    }

    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        // A front-run permit leaves the allowance in place: go on and let transferFrom decide.
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(amount);
    }

    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = _balances[msg.sender];
        if (amount > balance) revert InsufficientBalance(msg.sender, balance, amount);
        uint64 readyAt = uint64(block.timestamp) + withdrawalDelay;
        _withdrawals[msg.sender] = Withdrawal(amount, readyAt);
        emit WithdrawalRequested(msg.sender, amount, readyAt);
    }

    function withdraw() external nonReentrant returns (uint256 paid) {
        Withdrawal memory w = _withdrawals[msg.sender];
        if (w.amount == 0) revert NoWithdrawalRequested();
        if (block.timestamp < w.readyAt) revert WithdrawalNotReady(w.readyAt);
        uint256 balance = _balances[msg.sender];
        paid = w.amount < balance ? w.amount : balance;
        delete _withdrawals[msg.sender];
        _balances[msg.sender] = balance - paid;
        totalDeposits -= paid;
        emit Withdrawn(msg.sender, paid, balance - paid);
        if (paid > 0) IERC20(token).safeTransfer(msg.sender, paid);
    }

    function cancelVouchers(uint64 newMinNonce) external {
        uint64 current = _minNonce[msg.sender];
        if (newMinNonce <= current) revert NonceNotIncreasing(current, newMinNonce);
        _minNonce[msg.sender] = newMinNonce;
        emit VouchersCancelled(msg.sender, newMinNonce);
    }

    function claim() external nonReentrant returns (uint256 paid) {
        paid = _claimable[msg.sender];
        if (paid == 0) revert NothingToClaim();
        _claimable[msg.sender] = 0;
        totalClaimable -= paid;
        emit Claimed(msg.sender, paid);
        IERC20(token).safeTransfer(msg.sender, paid);
    }

    // ---------------------------------------------------------------- settlement

    function settleBatch(Batch calldata batch, bytes calldata operatorSignature, SignedVoucher[] calldata vouchers)
        external
        nonReentrant
    {
        address operator = batch.operator;
        uint256 n = batch.debits.length;
        if (n == 0) revert EmptyBatch();
        uint64 expected = _lastSequence[operator] + 1;
        if (batch.sequence != expected) revert BadSequence(operator, expected, batch.sequence);
        IOperatorRegistry registry = IOperatorRegistry(operators);
        if (!registry.isActive(operator)) revert OperatorNotActive(operator);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(batchDigest(batch), operatorSignature);
        if (err != ECDSA.RecoverError.NoError || signer != registry.signerOf(operator)) {
            revert InvalidOperatorSignature();
        }
        if (vouchers.length != n) revert VoucherCountMismatch(n, vouchers.length);
        _lastSequence[operator] = batch.sequence;

        SplitPolicy memory policy = _policy;
        uint256 total;
        uint256 nextCredit;
        uint256 i;
        while (i < n) {
            uint256 modelId = batch.debits[i].modelId;
            uint256 modelTotal;
            for (; i < n && batch.debits[i].modelId == modelId; ++i) {
                modelTotal += _charge(batch, i, vouchers[i]);
            }
            total += modelTotal;
            uint256 dataShare = _splitFee(batch, modelId, modelTotal, policy);
            nextCredit = _creditData(batch, nextCredit, modelId, dataShare);
        }
        if (nextCredit != batch.credits.length) {
            revert CreditWithoutDebit(nextCredit, batch.credits[nextCredit].modelId);
        }
        totalDeposits -= total;
        totalClaimable += total;
        emit BatchSettled(operator, batch.sequence, batch.receiptsRoot, total, n, batch.credits.length);
    }

    /// Checks the debit at `i` against its voucher and the user's balance, then debits it.
    function _charge(Batch calldata batch, uint256 i, SignedVoucher calldata signed) private returns (uint256) {
        Debit calldata d = batch.debits[i];
        if (i > 0) {
            Debit calldata prev = batch.debits[i - 1];
            if (prev.modelId > d.modelId || (prev.modelId == d.modelId && prev.user >= d.user)) {
                revert DebitsNotSorted(i);
            }
        }
        if (d.amount == 0) revert ZeroAmount();
        Voucher calldata v = signed.voucher;
        if (v.user != d.user || v.operator != batch.operator || v.modelId != d.modelId) revert VoucherMismatch(i);
        if (block.timestamp > v.expiry) revert VoucherExpired(i, v.expiry);
        if (v.nonce < _minNonce[d.user]) revert VoucherCancelled(i, v.nonce);
        if (!SignatureChecker.isValidSignatureNow(d.user, voucherDigest(v), signed.signature)) {
            revert InvalidVoucherSignature(i);
        }
        uint256 newSpent = _spent[d.user][batch.operator][d.modelId] + d.amount;
        if (newSpent > v.cumulativeCap) revert CapExceeded(i, v.cumulativeCap, newSpent);
        uint256 balance = _balances[d.user];
        if (balance < d.amount) revert InsufficientBalance(d.user, balance, d.amount);
        _balances[d.user] = balance - d.amount;
        _spent[d.user][batch.operator][d.modelId] = newSpent;
        emit Charged(batch.operator, batch.sequence, d.user, d.modelId, d.amount, newSpent);
        return d.amount;
    }

    /// Credits the protocol, operator and developer shares of one model's total; returns the
    /// data share. The protocol share takes the rounding dust, so the four add up exactly.
    function _splitFee(Batch calldata batch, uint256 modelId, uint256 modelTotal, SplitPolicy memory policy)
        private
        returns (uint256 dataShare)
    {
        uint256 operatorShare = modelTotal * policy.operatorBps / BPS;
        uint256 developerShare = modelTotal * policy.developerBps / BPS;
        dataShare = modelTotal * policy.dataBps / BPS;
        uint256 protocolShare = modelTotal - operatorShare - developerShare - dataShare;
        address developer = IModelRegistry(models).developerOf(modelId);
        _credit(treasury, modelId, batch.sequence, RewardKind.Protocol, 0, protocolShare);
        _credit(batch.operator, modelId, batch.sequence, RewardKind.Operator, 0, operatorShare);
        _credit(developer, modelId, batch.sequence, RewardKind.Developer, 0, developerShare);
    }

    /// Applies the data credits of `modelId` starting at `next`; they must add up to `dataShare`.
    /// Returns the index of the first credit of the next model.
    function _creditData(Batch calldata batch, uint256 next, uint256 modelId, uint256 dataShare)
        private
        returns (uint256)
    {
        DataCredit[] calldata credits = batch.credits;
        if (next < credits.length && credits[next].modelId < modelId) {
            revert CreditWithoutDebit(next, credits[next].modelId);
        }
        uint256 sum;
        uint256 checkedDatanet;
        for (; next < credits.length && credits[next].modelId == modelId; ++next) {
            DataCredit calldata c = credits[next];
            if (next > 0 && !_creditsOrdered(credits[next - 1], c)) revert CreditsNotSorted(next);
            if (c.amount == 0) revert ZeroAmount();
            if (c.datanetId != checkedDatanet) {
                if (!IModelRegistry(models).usesDatanet(modelId, c.datanetId)) {
                    revert DatanetNotInLineage(next, modelId, c.datanetId);
                }
                checkedDatanet = c.datanetId;
            }
            if (c.contributionId == 0) {
                address owner = IDatanetRegistry(datanets).datanetOwner(c.datanetId);
                _credit(owner, modelId, batch.sequence, RewardKind.Datanet, c.datanetId, c.amount);
            } else {
                (uint256 datanetId, address contributor, IDatanetRegistry.ContributionStatus status) =
                    IDatanetRegistry(datanets).contributionOwner(c.contributionId);
                if (datanetId != c.datanetId) revert ContributionNotInDatanet(next, c.contributionId, c.datanetId);
                if (status != IDatanetRegistry.ContributionStatus.Accepted) {
                    revert ContributionNotAccepted(next, c.contributionId);
                }
                _credit(contributor, modelId, batch.sequence, RewardKind.Contribution, c.contributionId, c.amount);
            }
            sum += c.amount;
        }
        if (sum != dataShare) revert DataCreditsMismatch(modelId, dataShare, sum);
        return next;
    }

    function _creditsOrdered(DataCredit calldata a, DataCredit calldata b) private pure returns (bool) {
        if (a.modelId != b.modelId) return a.modelId < b.modelId;
        if (a.datanetId != b.datanetId) return a.datanetId < b.datanetId;
        return a.contributionId < b.contributionId;
    }

    function _credit(address account, uint256 modelId, uint64 sequence, RewardKind kind, uint256 sourceId, uint256 amount)
        private
    {
        if (amount == 0) return;
        _claimable[account] += amount;
        emit RewardCredited(account, modelId, sequence, kind, sourceId, amount);
    }

    // ---------------------------------------------------------------- governance

    function setSplitPolicy(SplitPolicy calldata policy) external onlyGovernance {
        _setSplitPolicy(policy);
    }

    function setWithdrawalDelay(uint64 delay) external onlyGovernance {
        _setWithdrawalDelay(delay);
    }

    function _setSplitPolicy(SplitPolicy memory p) private {
        uint256 sum = uint256(p.protocolBps) + p.operatorBps + p.developerBps + p.dataBps;
        if (sum != BPS || p.protocolBps > MAX_PROTOCOL_BPS) revert InvalidSplitPolicy();
        _policy = p;
        emit SplitPolicyChanged(p.protocolBps, p.operatorBps, p.developerBps, p.dataBps);
    }

    function _setWithdrawalDelay(uint64 delay) private {
        if (delay > MAX_WITHDRAWAL_DELAY) revert DelayTooLong(delay, MAX_WITHDRAWAL_DELAY);
        withdrawalDelay = delay;
        emit WithdrawalDelayChanged(delay);
    }

    // ---------------------------------------------------------------- views

    function balanceOf(address user) external view returns (uint256) {
        return _balances[user];
    }

    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    function spent(address user, address operator, uint256 modelId) external view returns (uint256) {
        return _spent[user][operator][modelId];
    }

    function lastSequence(address operator) external view returns (uint64) {
        return _lastSequence[operator];
    }

    function minNonce(address user) external view returns (uint64) {
        return _minNonce[user];
    }

    function splitPolicy() external view returns (SplitPolicy memory) {
        return _policy;
    }

    function pendingWithdrawal(address user) external view returns (uint256 amount, uint64 readyAt) {
        Withdrawal memory w = _withdrawals[user];
        return (w.amount, w.readyAt);
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function voucherDigest(Voucher calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(VOUCHER_TYPEHASH, v.user, v.operator, v.modelId, v.cumulativeCap, v.expiry, v.nonce))
        );
    }

    function batchDigest(Batch calldata batch) public view returns (bytes32) {
        bytes32[] memory debitHashes = new bytes32[](batch.debits.length);
        for (uint256 i = 0; i < debitHashes.length; ++i) {
            Debit calldata d = batch.debits[i];
            debitHashes[i] = keccak256(abi.encode(DEBIT_TYPEHASH, d.user, d.modelId, d.amount));
        }
        bytes32[] memory creditHashes = new bytes32[](batch.credits.length);
        for (uint256 i = 0; i < creditHashes.length; ++i) {
            DataCredit calldata c = batch.credits[i];
            creditHashes[i] =
                keccak256(abi.encode(DATA_CREDIT_TYPEHASH, c.modelId, c.datanetId, c.contributionId, c.amount));
        }
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    BATCH_TYPEHASH,
                    batch.operator,
                    batch.sequence,
                    batch.receiptsRoot,
                    keccak256(abi.encodePacked(debitHashes)),
                    keccak256(abi.encodePacked(creditHashes))
                )
            )
        );
    }

    function _deposit(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = _balances[msg.sender] + amount;
        _balances[msg.sender] = balance;
        totalDeposits += amount;
        emit Deposited(msg.sender, amount, balance);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }
}
