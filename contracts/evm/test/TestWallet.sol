// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Test only: a smart-contract wallet (ERC-1271) whose answer its owner can change.
/// @notice `Valid`: signatures by `owner` are valid. `Invalid`: every signature is refused (a
/// wallet that flips between signing and inclusion). `BurnGas`: `isValidSignature` loops until
/// it runs out of gas. Used as an EIP-7702 delegate too: then `owner` is the zero address in
/// the delegating account's storage, so the wallet refuses everything.
contract TestWallet is IERC1271 {
    enum Mode {
        Valid,
        Invalid,
        BurnGas
    }

    address public owner;
    Mode public mode;

    error NotOwner();

    constructor(address owner_) {
        owner = owner_;
    }

    function setMode(Mode mode_) external {
        if (msg.sender != owner) revert NotOwner();
        mode = mode_;
    }

    /// Calls `target` with `data` from the wallet.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner();
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        if (mode == Mode.BurnGas) {
            uint256 i;
            while (gasleft() > 0) ++i;
        }
        if (mode == Mode.Invalid) return 0xffffffff;
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner && owner != address(0)) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }
}
