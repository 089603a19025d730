// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IOpenToken} from "../../interfaces/IOpenToken.sol";

/// @title OPEN: fixed supply, minted once to `distribution`; EIP-2612 permit; no owner.
contract OpenToken is ERC20, ERC20Permit, IOpenToken {
    constructor(address distribution, uint256 supply) ERC20("OpenLedger", "OPEN") ERC20Permit("OpenLedger") {
        _mint(distribution, supply);
    }


    function nonces(address owner) public view override(ERC20Permit, IERC20Permit) returns (uint256) {
        return super.nonces(owner);
    }
}
