// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The one admin role of the suite.
/// @notice Each contract with privileged functions has exactly one `governance` address (in
/// production a timelock or multisig). It can change the published parameters (split policy,
/// delays, minimum stake), manage curator sets and slash operators; every change emits an
/// event. Nothing else in the suite is privileged. Transfer is two-step.
interface IGoverned {
    /// A transfer of governance was proposed; `pending` must call `acceptGovernance`.
    event GovernanceTransferStarted(address indexed current, address indexed pending);
    /// Governance moved from `previous` to `current`.
    event GovernanceTransferred(address indexed previous, address indexed current);

    /// The caller is not the governance address.
    error NotGovernance(address caller);
    /// The caller is not the pending governance address.
    error NotPendingGovernance(address caller);
    /// An address argument was zero where a real account is required.
    error ZeroAddress();

    function governance() external view returns (address);
    function pendingGovernance() external view returns (address);
    /// Proposes `next` as governance (governance only).
    function transferGovernance(address next) external;
    /// Completes a proposed transfer (pending governance only).
    function acceptGovernance() external;
}
