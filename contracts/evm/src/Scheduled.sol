// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @dev A value whose changes take effect later: `current` until `effectiveAt`, then `next`. Every
/// delayed parameter of the suite (withdrawal delay, minimum stake, unstake cooldown) and every
/// user's voucher revocation is one. One storage slot; values must fit 96 bits (delays, nonces,
/// and stakes up to 7.9e10 OPEN), larger ones revert.
library Scheduled {
    struct Value {
        uint96 current;
        uint96 next;
        uint64 effectiveAt;
    }

    /// Sets `value` in effect at once (construction).
    function init(Value storage v, uint256 value) internal {
        v.current = SafeCast.toUint96(value);
        v.next = 0;
        v.effectiveAt = 0;
    }

    /// The value in effect now.
    function get(Value storage v) internal view returns (uint256) {
        return v.effectiveAt != 0 && v.effectiveAt <= block.timestamp ? v.next : v.current;
    }

    /// The value once every scheduled change has taken effect.
    function latest(Value storage v) internal view returns (uint256) {
        return v.effectiveAt != 0 ? v.next : v.current;
    }

    /// When the pending change takes effect; 0 when none is pending.
    function pendingAt(Value storage v) internal view returns (uint64) {
        return v.effectiveAt > block.timestamp ? v.effectiveAt : 0;
    }

    /// Schedules `value` to take effect `delay` seconds from now, replacing a pending change
    /// (whose clock restarts). Returns when it takes effect.
    function schedule(Value storage v, uint256 value, uint256 delay) internal returns (uint64 effectiveAt) {
        v.current = SafeCast.toUint96(get(v));
        v.next = SafeCast.toUint96(value);
        effectiveAt = SafeCast.toUint64(block.timestamp + delay);
        v.effectiveAt = effectiveAt;
    }
}
