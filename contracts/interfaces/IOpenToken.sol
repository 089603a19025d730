// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title OPEN, the token every inference is paid in.
/// @notice ERC-20 with 18 decimals and EIP-2612 `permit`. The whole supply is minted once, at
/// deployment, to a distribution address; there is no mint, no burn and no owner.
interface IOpenToken is IERC20, IERC20Metadata, IERC20Permit {}
