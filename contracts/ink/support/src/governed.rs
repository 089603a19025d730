//! The one admin role of a governed contract (`IGoverned`): a governance address with a
//! two-step transfer. Each contract exposes the same four functions and reverts with its own
//! `NotGovernance` / `NotPendingGovernance` / `ZeroAddress` errors; the rules live here.

use ink::Address;

/// `event GovernanceTransferStarted(address indexed current, address indexed pending)`
#[ink::event]
pub struct GovernanceTransferStarted {
    #[ink(topic)]
    pub current: Address,
    #[ink(topic)]
    pub pending: Address,
}

/// `event GovernanceTransferred(address indexed previous, address indexed current)`
#[ink::event]
pub struct GovernanceTransferred {
    #[ink(topic)]
    pub previous: Address,
    #[ink(topic)]
    pub current: Address,
}

/// Why a governance call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The caller is not the governance address (`NotGovernance(caller)`).
    NotGovernance(Address),
    /// The caller is not the pending governance address (`NotPendingGovernance(caller)`).
    NotPendingGovernance(Address),
    /// A zero address where a real account is required (`ZeroAddress()`).
    ZeroAddress,
}

/// The governance address and the one proposed to replace it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Governance {
    current: Address,
    pending: Address,
}

impl Governance {
    /// `initial` as governance; emits `GovernanceTransferred(0, initial)`.
    pub fn new(initial: Address) -> Result<Self, Refusal> {
        if initial == Address::zero() {
            return Err(Refusal::ZeroAddress);
        }
        ink::env::emit_event(GovernanceTransferred {
            previous: Address::zero(),
            current: initial,
        });
        Ok(Self {
            current: initial,
            pending: Address::zero(),
        })
    }

    /// The governance address.
    pub fn current(&self) -> Address {
        self.current
    }

    /// The proposed successor (zero if none).
    pub fn pending(&self) -> Address {
        self.pending
    }

    /// Ok when `caller` is governance.
    pub fn check(&self, caller: Address) -> Result<(), Refusal> {
        if caller == self.current {
            Ok(())
        } else {
            Err(Refusal::NotGovernance(caller))
        }
    }

    /// Governance proposes `next`.
    pub fn propose(&mut self, caller: Address, next: Address) -> Result<(), Refusal> {
        self.check(caller)?;
        if next == Address::zero() {
            return Err(Refusal::ZeroAddress);
        }
        self.pending = next;
        ink::env::emit_event(GovernanceTransferStarted {
            current: self.current,
            pending: next,
        });
        Ok(())
    }

    /// The proposed successor takes over.
    pub fn accept(&mut self, caller: Address) -> Result<(), Refusal> {
        if caller != self.pending {
            return Err(Refusal::NotPendingGovernance(caller));
        }
        ink::env::emit_event(GovernanceTransferred {
            previous: self.current,
            current: caller,
        });
        self.current = caller;
        self.pending = Address::zero();
        Ok(())
    }
}
