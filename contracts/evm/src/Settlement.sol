// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IDatanetRegistry} from "../../interfaces/IDatanetRegistry.sol";
import {IModelRegistry} from "../../interfaces/IModelRegistry.sol";
import {IOperatorRegistry} from "../../interfaces/IOperatorRegistry.sol";
import {ISettlement} from "../../interfaces/ISettlement.sol";
import {Governed} from "./Governed.sol";
import {Scheduled} from "./Scheduled.sol";

/// @title Escrow, batch settlement, fee splits and claims (see ISettlement).
contract Settlement is ISettlement, Governed, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;
    using Scheduled for Scheduled.Value;

    uint16 public constant BPS = 10_000;
    /// Upper bound governance can set for the protocol share.
    uint16 public constant MAX_PROTOCOL_BPS = 2_000;
    /// Upper bound governance can set for the withdrawal delay.
    uint64 public constant MAX_WITHDRAWAL_DELAY = 30 days;
    /// How long a ready withdrawal request stays usable.
    uint64 public constant WITHDRAWAL_WINDOW = 2 days;
    /// Gas an ERC-1271 wallet gets to answer `isValidSignature`.
    uint256 public constant WALLET_CHECK_GAS = 50_000;

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address user,address operator,uint256 modelId,uint256 cumulativeCap,uint64 expiry,uint64 nonce)"
    );
    bytes32 public constant DEBIT_TYPEHASH = keccak256("Debit(address user,uint256 modelId,uint256 amount)");
    bytes32 public constant DATA_CREDIT_TYPEHASH =
        keccak256("DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 weight)");
    bytes32 public constant BATCH_TYPEHASH = keccak256(
        "Batch(address operator,uint64 sequence,uint64 deadline,uint32 policyEpoch,bytes32 receiptsRoot,Debit[] debits,DataCredit[] credits)"
        "DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 weight)"
        "Debit(address user,uint256 modelId,uint256 amount)"
    );

    struct Epoch {
        SplitPolicy policy;
        uint64 effectiveAt;
    }

    /// Two vesting buckets are enough: credits of one period share a bucket, and a bucket two
    /// periods old has vested.
    struct Vesting {
        uint256 amountA;
        uint64 vestsAtA;
        uint256 amountB;
        uint64 vestsAtB;
    }

    address public immutable token;
    address public immutable treasury;
    address public immutable datanets;
    address public immutable models;
    address public immutable operators;

    uint32 public latestEpoch;
    Scheduled.Value private _withdrawalDelay;
    uint256 public totalDeposits;
    uint256 public totalClaimable;

    mapping(uint32 => Epoch) private _epochs;
    mapping(address => mapping(address => Escrow)) private _escrows;
    /// Per user, the minimum voucher nonce.
    mapping(address => Scheduled.Value) private _revocations;
    mapping(address => uint256) private _claimable;
    mapping(address => Vesting) private _vesting;
    mapping(address => mapping(address => mapping(uint256 => uint256))) private _spent;
    mapping(address => uint64) private _lastSequence;

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
        if (IDatanetRegistry(datanets_).token() != token_) revert NotWired(datanets_);
        if (IModelRegistry(models_).datanets() != datanets_) revert NotWired(models_);
        if (IOperatorRegistry(operators_).token() != token_ || IOperatorRegistry(operators_).settlement() != address(this))
        {
            revert NotWired(operators_);
        }
        token = token_;
        treasury = treasury_;
        datanets = datanets_;
        models = models_;
        operators = operators_;
        if (withdrawalDelay_ > MAX_WITHDRAWAL_DELAY) revert DelayTooLong(withdrawalDelay_, MAX_WITHDRAWAL_DELAY);
        _withdrawalDelay.init(withdrawalDelay_);
        emit WithdrawalDelayChanged(withdrawalDelay_, uint64(block.timestamp));
        _checkPolicy(policy);
        latestEpoch = 1;
        _epochs[1] = Epoch(policy, uint64(block.timestamp));
        emit SplitPolicyChanged(
            1, policy.protocolBps, policy.operatorBps, policy.developerBps, policy.dataBps, uint64(block.timestamp)
        );
    }

    // ---------------------------------------------------------------- escrow

    function deposit(address operator, uint256 amount) external nonReentrant {
        _deposit(operator, amount);
    }

    function depositWithPermit(address operator, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        // A front-run permit leaves the allowance in place: go on and let transferFrom decide.
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(operator, amount);
    }

    function requestWithdrawal(address operator, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Escrow storage e = _escrows[msg.sender][operator];
        if (amount > e.balance) revert InsufficientBalance(msg.sender, e.balance, amount);
        uint64 readyAt = uint64(block.timestamp) + withdrawalDelay();
        uint64 expiresAt = readyAt + WITHDRAWAL_WINDOW;
        e.pending = amount;
        e.readyAt = readyAt;
        e.expiresAt = expiresAt;
        emit WithdrawalRequested(msg.sender, operator, amount, readyAt, expiresAt);
    }

    function withdraw(address operator) external nonReentrant returns (uint256 paid) {
        Escrow storage e = _escrows[msg.sender][operator];
        if (e.pending == 0) revert NoWithdrawalRequested();
        if (block.timestamp < e.readyAt) revert WithdrawalNotReady(e.readyAt);
        if (block.timestamp >= e.expiresAt) revert WithdrawalExpired(e.expiresAt);
        uint256 balance = e.balance;
        paid = e.pending < balance ? e.pending : balance;
        e.pending = 0;
        e.readyAt = 0;
        e.expiresAt = 0;
        e.balance = balance - paid;
        totalDeposits -= paid;
        emit Withdrawn(msg.sender, operator, paid, balance - paid);
        if (paid > 0) IERC20(token).safeTransfer(msg.sender, paid);
    }

    function revokeVouchers(uint64 newMinNonce) external {
        Scheduled.Value storage r = _revocations[msg.sender];
        uint64 floor = uint64(r.latest());
        if (newMinNonce <= floor) revert NonceNotIncreasing(floor, newMinNonce);
        uint64 effectiveAt = r.schedule(newMinNonce, withdrawalDelay());
        emit VouchersRevoked(msg.sender, newMinNonce, effectiveAt);
    }

    // ---------------------------------------------------------------- rewards

    function claim() external nonReentrant returns (uint256 paid) {
        paid = _claim(msg.sender);
    }

    function claimTo(address recipient) external nonReentrant returns (uint256 paid) {
        if (recipient == address(0)) revert ZeroAddress();
        paid = _claim(recipient);
    }

    function slashRewards(address operator, uint256 amount) external nonReentrant returns (uint256 taken) {
        if (msg.sender != operators) revert NotOperatorRegistry(msg.sender);
        Vesting storage v = _vesting[operator];
        _release(operator, v);
        uint256 fromA = amount < v.amountA ? amount : v.amountA;
        uint256 rest = amount - fromA;
        uint256 fromB = rest < v.amountB ? rest : v.amountB;
        v.amountA -= fromA;
        v.amountB -= fromB;
        taken = fromA + fromB;
        if (taken == 0) return 0;
        _claimable[treasury] += taken;
        emit RewardsSlashed(operator, taken);
    }

    // ---------------------------------------------------------------- settlement

    function settleBatch(Batch calldata batch, bytes calldata operatorSignature, SignedVoucher[] calldata vouchers)
        external
        nonReentrant
    {
        address operator = batch.operator;
        uint256 n = batch.debits.length;
        if (n == 0) revert EmptyBatch();
        if (block.timestamp > batch.deadline) revert BatchExpired(batch.deadline);
        uint64 expected = _lastSequence[operator] + 1;
        if (batch.sequence != expected) revert BadSequence(operator, expected, batch.sequence);
        IOperatorRegistry registry = IOperatorRegistry(operators);
        if (!registry.isActive(operator)) revert OperatorNotActive(operator);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(batchDigest(batch), operatorSignature);
        if (err != ECDSA.RecoverError.NoError || signer != registry.signerOf(operator)) {
            revert InvalidOperatorSignature();
        }
        if (vouchers.length != n) revert VoucherCountMismatch(n, vouchers.length);
        SplitPolicy memory policy = _livePolicy(batch.policyEpoch);
        _lastSequence[operator] = batch.sequence;

        uint64 operatorVestsAt = _vestsAt(registry.unstakeCooldown());
        uint256 total;
        uint256 collected;
        uint256 nextCredit;
        uint256 i;
        while (i < n) {
            uint256 modelId = batch.debits[i].modelId;
            (address developer, bool chargeable, SkipReason modelFault) = _modelTerms(registry, operator, modelId);
            uint256 modelTotal;
            for (; i < n && batch.debits[i].modelId == modelId; ++i) {
                _checkDebitOrder(batch, i);
                uint256 amount = chargeable ? _collect(batch, i, vouchers[i]) : _skip(batch, i, modelFault);
                if (amount > 0) ++collected;
                modelTotal += amount;
            }
            total += modelTotal;
            uint256 dataShare = _splitFee(batch, modelId, developer, modelTotal, policy, operatorVestsAt);
            nextCredit = _creditData(batch, nextCredit, modelId, dataShare);
        }
        if (nextCredit != batch.credits.length) {
            revert CreditWithoutDebit(nextCredit, batch.credits[nextCredit].modelId);
        }
        totalDeposits -= total;
        totalClaimable += total;
        emit BatchSettled(operator, batch.sequence, batch.receiptsRoot, batch.policyEpoch, total, collected, n - collected);
    }

    /// The developer of `modelId`, and whether `operator` may charge for it now (if not, why).
    function _modelTerms(IOperatorRegistry registry, address operator, uint256 modelId)
        private
        view
        returns (address developer, bool chargeable, SkipReason fault)
    {
        IModelRegistry.Model memory m = IModelRegistry(models).getModel(modelId);
        developer = m.developer;
        if (!m.active && block.timestamp > m.deactivatedAt + withdrawalDelay()) {
            return (developer, false, SkipReason.ModelInactive);
        }
        if (!registry.serves(operator, modelId)) return (developer, false, SkipReason.ModelNotServed);
        chargeable = true;
    }

    function _checkDebitOrder(Batch calldata batch, uint256 i) private pure {
        Debit calldata d = batch.debits[i];
        if (d.amount == 0) revert ZeroAmount();
        if (i > 0) {
            Debit calldata prev = batch.debits[i - 1];
            if (prev.modelId > d.modelId || (prev.modelId == d.modelId && prev.user >= d.user)) {
                revert DebitsNotSorted(i);
            }
        }
    }

    /// Collects the debit at `i` if its voucher and escrow allow it; else skips it. Returns the
    /// amount collected.
    function _collect(Batch calldata batch, uint256 i, SignedVoucher calldata signed) private returns (uint256) {
        Debit calldata d = batch.debits[i];
        Voucher calldata v = signed.voucher;
        address operator = batch.operator;
        if (v.user != d.user || v.operator != operator || v.modelId != d.modelId) {
            return _skip(batch, i, SkipReason.VoucherMismatch);
        }
        if (block.timestamp > v.expiry) return _skip(batch, i, SkipReason.VoucherExpired);
        if (v.nonce < _revocations[d.user].get()) return _skip(batch, i, SkipReason.VoucherRevoked);
        uint256 newSpent = _spent[d.user][operator][d.modelId] + d.amount;
        if (newSpent > v.cumulativeCap) return _skip(batch, i, SkipReason.CapExceeded);
        Escrow storage e = _escrows[d.user][operator];
        if (e.balance < d.amount) return _skip(batch, i, SkipReason.InsufficientEscrow);
        if (!_validSignature(i, d.user, voucherDigest(v), signed.signature)) {
            return _skip(batch, i, SkipReason.InvalidSignature);
        }
        e.balance -= d.amount;
        _spent[d.user][operator][d.modelId] = newSpent;
        emit Charged(operator, batch.sequence, d.user, d.modelId, d.amount, newSpent);
        return d.amount;
    }

    function _skip(Batch calldata batch, uint256 i, SkipReason reason) private returns (uint256) {
        Debit calldata d = batch.debits[i];
        emit DebitSkipped(batch.operator, batch.sequence, d.user, d.modelId, d.amount, reason);
        return 0;
    }

    /// An ECDSA signature by `account`'s key (an EOA, or an EIP-7702 delegated one), else the
    /// answer of its ERC-1271 `isValidSignature` within `WALLET_CHECK_GAS`.
    function _validSignature(uint256 index, address account, bytes32 digest, bytes calldata signature)
        private
        view
        returns (bool)
    {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == account) return true;
        if (account.code.length == 0) return false;
        // The wallet must get its whole stipend (63/64 rule), or a submitter could starve it
        // into a skip: with too little gas the batch reverts instead.
        if (gasleft() < WALLET_CHECK_GAS + WALLET_CHECK_GAS / 63 + 10_000) revert NotEnoughGasForWalletCheck(index);
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 answer;
        uint256 stipend = WALLET_CHECK_GAS;
        assembly ("memory-safe") {
            // Only the first word of the answer is copied: a huge return costs the wallet, not us.
            success := staticcall(stipend, account, add(data, 0x20), mload(data), 0x00, 0x20)
            answer := mload(0x00)
            if lt(returndatasize(), 0x20) { success := 0 }
        }
        return success && bytes4(answer) == IERC1271.isValidSignature.selector;
    }

    /// Credits the protocol, operator and developer shares of one model's total; returns the
    /// data share. The protocol share takes the rounding dust, so the four add up exactly.
    function _splitFee(
        Batch calldata batch,
        uint256 modelId,
        address developer,
        uint256 modelTotal,
        SplitPolicy memory policy,
        uint64 operatorVestsAt
    ) private returns (uint256 dataShare) {
        if (modelTotal == 0) return 0;
        uint256 operatorShare = modelTotal * policy.operatorBps / BPS;
        uint256 developerShare = modelTotal * policy.developerBps / BPS;
        dataShare = modelTotal * policy.dataBps / BPS;
        uint256 protocolShare = modelTotal - operatorShare - developerShare - dataShare;
        _credit(treasury, modelId, batch.sequence, RewardKind.Protocol, 0, protocolShare);
        _creditOperator(batch.operator, modelId, batch.sequence, operatorShare, operatorVestsAt);
        _credit(developer, modelId, batch.sequence, RewardKind.Developer, 0, developerShare);
    }

    /// Checks the data credits of `modelId` starting at `next` and pays `dataShare` by their
    /// weights, the dust to the treasury. Returns the index of the first credit of the next model.
    function _creditData(Batch calldata batch, uint256 next, uint256 modelId, uint256 dataShare)
        private
        returns (uint256 end)
    {
        DataCredit[] calldata credits = batch.credits;
        if (next < credits.length && credits[next].modelId < modelId) {
            revert CreditWithoutDebit(next, credits[next].modelId);
        }
        uint256 totalWeight;
        address[] memory payees;
        {
            end = next;
            uint256 checkedDatanet;
            while (end < credits.length && credits[end].modelId == modelId) {
                DataCredit calldata c = credits[end];
                if (end > 0 && !_creditsOrdered(credits[end - 1], c)) revert CreditsNotSorted(end);
                if (c.weight == 0) revert ZeroAmount();
                if (c.datanetId == 0) revert UnknownDatanet(end, 0);
                if (c.datanetId != checkedDatanet) {
                    if (!IModelRegistry(models).usesDatanet(modelId, c.datanetId)) {
                        revert DatanetNotInLineage(end, modelId, c.datanetId);
                    }
                    checkedDatanet = c.datanetId;
                }
                totalWeight += c.weight;
                ++end;
            }
            if (end == next) revert NoDataCredits(modelId);
            payees = new address[](end - next);
            for (uint256 k = next; k < end; ++k) {
                payees[k - next] = _payee(credits[k], k);
            }
        }
        uint256 paid;
        for (uint256 k = next; k < end; ++k) {
            DataCredit calldata c = credits[k];
            uint256 amount = Math.mulDiv(dataShare, c.weight, totalWeight);
            paid += amount;
            if (c.contributionId == 0) {
                _credit(payees[k - next], modelId, batch.sequence, RewardKind.Datanet, c.datanetId, amount);
            } else {
                _credit(payees[k - next], modelId, batch.sequence, RewardKind.Contribution, c.contributionId, amount);
            }
        }
        _credit(treasury, modelId, batch.sequence, RewardKind.Protocol, 0, dataShare - paid);
    }

    /// Who a data credit pays: the datanet owner, or the contributor of an accepted contribution
    /// of that datanet.
    function _payee(DataCredit calldata c, uint256 index) private view returns (address) {
        if (c.contributionId == 0) return IDatanetRegistry(datanets).datanetOwner(c.datanetId);
        (uint256 datanetId, address contributor, IDatanetRegistry.ContributionStatus status) =
            IDatanetRegistry(datanets).contributionOwner(c.contributionId);
        if (status != IDatanetRegistry.ContributionStatus.Accepted) {
            revert ContributionNotAccepted(index, c.contributionId);
        }
        if (datanetId != c.datanetId) revert ContributionNotInDatanet(index, c.contributionId, c.datanetId);
        return contributor;
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
        emit RewardCredited(account, modelId, sequence, kind, sourceId, amount, 0);
    }

    function _creditOperator(address operator, uint256 modelId, uint64 sequence, uint256 amount, uint64 vestsAt)
        private
    {
        if (amount == 0) return;
        if (vestsAt <= block.timestamp) {
            _claimable[operator] += amount;
            emit RewardCredited(operator, modelId, sequence, RewardKind.Operator, 0, amount, 0);
            return;
        }
        Vesting storage v = _vesting[operator];
        _release(operator, v);
        if (v.vestsAtA == vestsAt || v.amountA == 0) {
            v.amountA += amount;
            v.vestsAtA = vestsAt;
        } else if (v.vestsAtB == vestsAt || v.amountB == 0) {
            v.amountB += amount;
            v.vestsAtB = vestsAt;
        } else if (v.vestsAtA >= v.vestsAtB) {
            // Only after a cooldown change: join the later bucket, which never vests earlier.
            v.amountA += amount;
            if (vestsAt > v.vestsAtA) v.vestsAtA = vestsAt;
        } else {
            v.amountB += amount;
            if (vestsAt > v.vestsAtB) v.vestsAtB = vestsAt;
        }
        emit RewardCredited(operator, modelId, sequence, RewardKind.Operator, 0, amount, vestsAt);
    }

    /// Moves vested buckets of `account` to its claimable balance.
    function _release(address account, Vesting storage v) private {
        uint256 vested;
        if (v.amountA > 0 && v.vestsAtA <= block.timestamp) {
            vested += v.amountA;
            v.amountA = 0;
        }
        if (v.amountB > 0 && v.vestsAtB <= block.timestamp) {
            vested += v.amountB;
            v.amountB = 0;
        }
        if (vested > 0) _claimable[account] += vested;
    }

    /// End of the period after the current one, for periods of length `cooldown`.
    function _vestsAt(uint64 cooldown) private view returns (uint64) {
        if (cooldown == 0) return 0;
        return (uint64(block.timestamp) / cooldown + 2) * cooldown;
    }

    function _claim(address recipient) private returns (uint256 paid) {
        _release(msg.sender, _vesting[msg.sender]);
        paid = _claimable[msg.sender];
        if (paid == 0) revert NothingToClaim();
        _claimable[msg.sender] = 0;
        totalClaimable -= paid;
        emit Claimed(msg.sender, recipient, paid);
        IERC20(token).safeTransfer(recipient, paid);
    }

    // ---------------------------------------------------------------- governance

    function setSplitPolicy(SplitPolicy calldata policy) external onlyGovernance {
        _checkPolicy(policy);
        uint32 epoch = latestEpoch;
        // A pending epoch is replaced (its clock restarts); a live one is followed by a new one.
        if (_epochs[epoch].effectiveAt <= block.timestamp) latestEpoch = ++epoch;
        uint64 effectiveAt = uint64(block.timestamp) + withdrawalDelay();
        _epochs[epoch] = Epoch(policy, effectiveAt);
        emit SplitPolicyChanged(
            epoch, policy.protocolBps, policy.operatorBps, policy.developerBps, policy.dataBps, effectiveAt
        );
    }

    function setWithdrawalDelay(uint64 delay) external onlyGovernance {
        if (delay > MAX_WITHDRAWAL_DELAY) revert DelayTooLong(delay, MAX_WITHDRAWAL_DELAY);
        uint64 effectiveAt = _withdrawalDelay.schedule(delay, withdrawalDelay());
        emit WithdrawalDelayChanged(delay, effectiveAt);
    }

    function _checkPolicy(SplitPolicy memory p) private pure {
        uint256 sum = uint256(p.protocolBps) + p.operatorBps + p.developerBps + p.dataBps;
        if (sum != BPS || p.protocolBps > MAX_PROTOCOL_BPS) revert InvalidSplitPolicy();
    }

    /// The policy of `epoch` if a batch priced under it may settle now.
    function _livePolicy(uint32 epoch) private view returns (SplitPolicy memory) {
        uint32 current = currentEpoch();
        if (epoch == current) return _epochs[epoch].policy;
        if (epoch + 1 == current && block.timestamp < _epochs[current].effectiveAt + withdrawalDelay()) {
            return _epochs[epoch].policy;
        }
        revert PolicyEpochNotLive(epoch, current);
    }

    // ---------------------------------------------------------------- views

    function currentEpoch() public view returns (uint32) {
        uint32 epoch = latestEpoch;
        return _epochs[epoch].effectiveAt <= block.timestamp ? epoch : epoch - 1;
    }

    function splitPolicyOf(uint32 epoch) external view returns (SplitPolicy memory policy, uint64 effectiveAt) {
        Epoch storage e = _epochs[epoch];
        return (e.policy, e.effectiveAt);
    }

    function splitPolicy() external view returns (SplitPolicy memory) {
        return _epochs[currentEpoch()].policy;
    }

    function withdrawalDelay() public view returns (uint64) {
        return uint64(_withdrawalDelay.get());
    }

    function escrowOf(address user, address operator) external view returns (Escrow memory e) {
        e = _escrows[user][operator];
        if (e.pending != 0 && block.timestamp >= e.expiresAt) {
            e.pending = 0;
            e.readyAt = 0;
            e.expiresAt = 0;
        }
    }

    function guaranteed(address user, address operator) external view returns (uint256) {
        Escrow storage e = _escrows[user][operator];
        if (e.pending == 0 || block.timestamp >= e.expiresAt) return e.balance;
        return e.pending < e.balance ? e.balance - e.pending : 0;
    }

    function voucherRevocation(address user)
        external
        view
        returns (uint64 minNonce, uint64 pendingMinNonce, uint64 effectiveAt)
    {
        Scheduled.Value storage r = _revocations[user];
        effectiveAt = r.pendingAt();
        return (uint64(r.get()), effectiveAt == 0 ? 0 : uint64(r.latest()), effectiveAt);
    }

    function claimable(address account) external view returns (uint256 amount) {
        amount = _claimable[account];
        Vesting storage v = _vesting[account];
        if (v.vestsAtA <= block.timestamp) amount += v.amountA;
        if (v.vestsAtB <= block.timestamp) amount += v.amountB;
    }

    function vesting(address operator) external view returns (uint256 amount, uint64 nextVestsAt) {
        Vesting storage v = _vesting[operator];
        if (v.amountA > 0 && v.vestsAtA > block.timestamp) {
            amount += v.amountA;
            nextVestsAt = v.vestsAtA;
        }
        if (v.amountB > 0 && v.vestsAtB > block.timestamp) {
            amount += v.amountB;
            if (nextVestsAt == 0 || v.vestsAtB < nextVestsAt) nextVestsAt = v.vestsAtB;
        }
    }

    function spent(address user, address operator, uint256 modelId) external view returns (uint256) {
        return _spent[user][operator][modelId];
    }

    function lastSequence(address operator) external view returns (uint64) {
        return _lastSequence[operator];
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
                keccak256(abi.encode(DATA_CREDIT_TYPEHASH, c.modelId, c.datanetId, c.contributionId, c.weight));
        }
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    BATCH_TYPEHASH,
                    batch.operator,
                    batch.sequence,
                    batch.deadline,
                    batch.policyEpoch,
                    batch.receiptsRoot,
                    keccak256(abi.encodePacked(debitHashes)),
                    keccak256(abi.encodePacked(creditHashes))
                )
            )
        );
    }

    function _deposit(address operator, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (operator == address(0)) revert ZeroAddress();
        Escrow storage e = _escrows[msg.sender][operator];
        uint256 balance = e.balance + amount;
        e.balance = balance;
        totalDeposits += amount;
        emit Deposited(msg.sender, operator, amount, balance);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }
}
