// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IOperatorRegistry} from "../../interfaces/IOperatorRegistry.sol";
import {ISettlement} from "../../interfaces/ISettlement.sol";
import {Governed} from "./Governed.sol";
import {Scheduled} from "./Scheduled.sol";

/// @title Operator stakes, signing keys and served models (see IOperatorRegistry).
contract OperatorRegistry is IOperatorRegistry, Governed, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using Scheduled for Scheduled.Value;

    /// Upper bound governance can set for the unstake cooldown.
    uint64 public constant MAX_UNSTAKE_COOLDOWN = 90 days;

    address public immutable token;
    address public immutable treasury;
    address public immutable settlement;

    Scheduled.Value private _minStake;
    Scheduled.Value private _unstakeCooldown;

    mapping(address => Operator) private _operators;
    mapping(address => mapping(uint256 => bool)) private _serves;

    /// `settlement_` is the settlement contract's address (deployed after this one; its
    /// constructor checks that this registry names it).
    constructor(
        address token_,
        address governance_,
        address treasury_,
        address settlement_,
        uint256 minStake_,
        uint64 unstakeCooldown_
    ) Governed(governance_) {
        if (token_ == address(0) || treasury_ == address(0) || settlement_ == address(0)) revert ZeroAddress();
        if (unstakeCooldown_ > MAX_UNSTAKE_COOLDOWN) revert CooldownTooLong(unstakeCooldown_, MAX_UNSTAKE_COOLDOWN);
        token = token_;
        treasury = treasury_;
        settlement = settlement_;
        _minStake.init(minStake_);
        _unstakeCooldown.init(unstakeCooldown_);
        emit MinStakeChanged(minStake_, uint64(block.timestamp));
        emit UnstakeCooldownChanged(unstakeCooldown_, uint64(block.timestamp));
    }

    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Operator storage o = _operators[msg.sender];
        o.stake += amount;
        emit Staked(msg.sender, amount, o.stake);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    function setSigner(address signer) external {
        if (signer == address(0)) revert ZeroAddress();
        _operators[msg.sender].signer = signer;
        emit SignerSet(msg.sender, signer);
    }

    function setServing(uint256 modelId, bool serving) external {
        _serves[msg.sender][modelId] = serving;
        emit ServingSet(msg.sender, modelId, serving);
    }

    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Operator storage o = _operators[msg.sender];
        if (amount > o.stake) revert InsufficientStake(o.stake, amount);
        o.stake -= amount;
        o.unstaking += amount;
        o.unstakeReadyAt = uint64(block.timestamp) + unstakeCooldown();
        emit UnstakeRequested(msg.sender, amount, o.unstaking, o.unstakeReadyAt);
    }

    function withdrawUnstaked() external nonReentrant {
        Operator storage o = _operators[msg.sender];
        uint256 amount = o.unstaking;
        if (amount == 0) revert NothingUnstaking();
        if (block.timestamp < o.unstakeReadyAt) revert CooldownNotOver(o.unstakeReadyAt);
        o.unstaking = 0;
        o.unstakeReadyAt = 0;
        emit Unstaked(msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    function slash(address operator, uint256 amount, string calldata reason) external onlyGovernance nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Operator storage o = _operators[operator];
        uint256 fromStake = amount < o.stake ? amount : o.stake;
        uint256 rest = amount - fromStake;
        uint256 fromUnstaking = rest < o.unstaking ? rest : o.unstaking;
        o.stake -= fromStake;
        o.unstaking -= fromUnstaking;
        o.slashed = true;
        uint256 taken = fromStake + fromUnstaking;
        uint256 fromRewards = ISettlement(settlement).slashRewards(operator, rest - fromUnstaking);
        emit Slashed(operator, taken + fromRewards, o.stake, o.unstaking, reason);
        if (taken > 0) IERC20(token).safeTransfer(treasury, taken);
    }

    function setMinStake(uint256 minStake_) external onlyGovernance {
        uint64 effectiveAt = _minStake.schedule(minStake_, unstakeCooldown());
        emit MinStakeChanged(minStake_, effectiveAt);
    }

    function setUnstakeCooldown(uint64 cooldown) external onlyGovernance {
        if (cooldown > MAX_UNSTAKE_COOLDOWN) revert CooldownTooLong(cooldown, MAX_UNSTAKE_COOLDOWN);
        uint64 effectiveAt = _unstakeCooldown.schedule(cooldown, unstakeCooldown());
        emit UnstakeCooldownChanged(cooldown, effectiveAt);
    }

    function minStake() public view returns (uint256) {
        return _minStake.get();
    }

    function unstakeCooldown() public view returns (uint64) {
        return uint64(_unstakeCooldown.get());
    }

    function getOperator(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    function isActive(address operator) public view returns (bool) {
        Operator storage o = _operators[operator];
        return o.signer != address(0) && !o.slashed && o.stake >= minStake() && o.stake > 0;
    }

    function signerOf(address operator) external view returns (address) {
        return _operators[operator].signer;
    }

    function serves(address operator, uint256 modelId) external view returns (bool) {
        return _serves[operator][modelId];
    }
}
