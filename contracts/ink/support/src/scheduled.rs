//! A value whose changes take effect later: `current` until `effective_at`, then `next`
//! (the Solidity `Scheduled` library). Every delayed parameter of the suite (withdrawal delay,
//! minimum stake, unstake cooldown) and every user's voucher revocation is one. Values must
//! fit 96 bits, as in Solidity; larger ones revert with OpenZeppelin's
//! `SafeCastOverflowedUintDowncast(96, value)`.

use ink::U256;

use crate::{abi, call};

const DOWNCAST: [u8; 4] = abi::selector(ink::keccak_256!(
    "SafeCastOverflowedUintDowncast(uint8,uint256)"
));

/// A delayed value; `effective_at` 0 means nothing is pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Scheduled {
    current: u128,
    next: u128,
    effective_at: u64,
}

impl Scheduled {
    /// `value` in effect at once (construction).
    pub fn new(value: U256) -> Self {
        Self {
            current: to_u96(value),
            next: 0,
            effective_at: 0,
        }
    }

    /// The value in effect at `now`.
    pub fn get(&self, now: u64) -> U256 {
        U256::from(if self.effective_at != 0 && self.effective_at <= now {
            self.next
        } else {
            self.current
        })
    }

    /// The value once every scheduled change has taken effect.
    pub fn latest(&self) -> U256 {
        U256::from(if self.effective_at != 0 {
            self.next
        } else {
            self.current
        })
    }

    /// When the pending change takes effect; 0 when none is pending at `now`.
    pub fn pending_at(&self, now: u64) -> u64 {
        if self.effective_at > now {
            self.effective_at
        } else {
            0
        }
    }

    /// Schedules `value` to take effect `delay` seconds after `now`, replacing a pending change
    /// (whose clock restarts). Returns when it takes effect.
    pub fn schedule(&mut self, value: U256, now: u64, delay: u64) -> u64 {
        self.current = to_u96(self.get(now));
        self.next = to_u96(value);
        self.effective_at = crate::math::add64(now, delay);
        self.effective_at
    }
}

fn to_u96(value: U256) -> u128 {
    if value.bits() > 96 {
        call::revert_with(&call::error_data(
            DOWNCAST,
            &[abi::small(96), abi::uint(value)],
        ))
    }
    value.low_u128()
}
