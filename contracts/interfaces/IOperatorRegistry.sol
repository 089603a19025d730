// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGoverned} from "./IGoverned.sol";

/// @title Oracle operators: stake, signing key, served models.
/// @notice An operator account stakes OPEN and registers a signing key (a separate hot key that
/// signs usage batches). It is active, and its batches settle, while it has a signer, is not
/// slashed and has at least `minStake` staked (stake waiting in the unstake cooldown does not
/// count but can still be slashed). Governance slashes a non-zero amount, taken from the stake,
/// then from stake in cooldown, then from the operator's unvested rewards in settlement; it
/// goes to the treasury and the operator is marked slashed for good. New values of `minStake`
/// and `unstakeCooldown` take effect one (current) cooldown after governance sets them, so
/// operators can top up or settle first.
interface IOperatorRegistry is IGoverned {
    struct Operator {
        address signer;
        bool slashed;
        uint64 unstakeReadyAt;
        uint256 stake;
        uint256 unstaking;
    }

    event Staked(address indexed operator, uint256 amount, uint256 stake);
    event SignerSet(address indexed operator, address indexed signer);
    event ServingSet(address indexed operator, uint256 indexed modelId, bool serving);
    event UnstakeRequested(address indexed operator, uint256 amount, uint256 unstaking, uint64 readyAt);
    event Unstaked(address indexed operator, uint256 amount);
    /// `amount` was taken; `stake` and `unstaking` are what remains of each.
    event Slashed(address indexed operator, uint256 amount, uint256 stake, uint256 unstaking, string reason);
    event MinStakeChanged(uint256 minStake, uint64 effectiveAt);
    event UnstakeCooldownChanged(uint64 cooldown, uint64 effectiveAt);

    error ZeroAmount();
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingUnstaking();
    error CooldownNotOver(uint64 readyAt);
    error CooldownTooLong(uint64 cooldown, uint64 max);

    function stake(uint256 amount) external;
    function setSigner(address signer) external;
    function setServing(uint256 modelId, bool serving) external;
    function requestUnstake(uint256 amount) external;
    function withdrawUnstaked() external;
    /// Takes up to `amount` from stake then unstaking, to the treasury (governance only).
    function slash(address operator, uint256 amount, string calldata reason) external;
    /// Schedules a new minimum stake (at most 2^96 - 1 wei; governance only).
    function setMinStake(uint256 minStake) external;
    function setUnstakeCooldown(uint64 cooldown) external;

    function token() external view returns (address);
    /// The settlement contract whose unvested operator rewards slashes reach.
    function settlement() external view returns (address);
    function treasury() external view returns (address);
    /// The value in effect now.
    function minStake() external view returns (uint256);
    /// The value in effect now.
    function unstakeCooldown() external view returns (uint64);
    function getOperator(address operator) external view returns (Operator memory);
    function isActive(address operator) external view returns (bool);
    function signerOf(address operator) external view returns (address);
    function serves(address operator, uint256 modelId) external view returns (bool);
}
