// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IGoverned} from "../../interfaces/IGoverned.sol";

/// @dev The single admin role (see IGoverned), with a two-step transfer.
abstract contract Governed is IGoverned {
    address public governance;
    address public pendingGovernance;

    constructor(address initialGovernance) {
        if (initialGovernance == address(0)) revert ZeroAddress();
        governance = initialGovernance;
        emit GovernanceTransferred(address(0), initialGovernance);
    }

    modifier onlyGovernance() {
        if (msg.sender != governance) revert NotGovernance(msg.sender);
        _;
    }

    function transferGovernance(address next) external onlyGovernance {
        if (next == address(0)) revert ZeroAddress();
        pendingGovernance = next;
        emit GovernanceTransferStarted(governance, next);
    }

    function acceptGovernance() external {
        if (msg.sender != pendingGovernance) revert NotPendingGovernance(msg.sender);
        emit GovernanceTransferred(governance, msg.sender);
        governance = msg.sender;
        pendingGovernance = address(0);
    }
}
