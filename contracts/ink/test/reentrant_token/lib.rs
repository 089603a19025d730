//! TEST ONLY: an ERC-20 that, on every transfer out of `target`, calls back into `target` with
//! `payload` (e.g. `claim()` or `withdraw()`), to prove the suite cannot be re-entered, as
//! `contracts/evm/test/ReentrantToken.sol`. Records whether the call succeeded and what it
//! returned (revert data on failure).
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod reentrant_token {
    use ink::{
        U256,
        prelude::{string::String, vec::Vec},
        sol::DynBytes,
        storage::Mapping,
    };
    use openledger_ink_support::call;

    #[ink::event]
    pub struct Transfer {
        #[ink(topic)]
        from: Address,
        #[ink(topic)]
        to: Address,
        value: U256,
    }

    #[ink::event]
    pub struct Approval {
        #[ink(topic)]
        owner: Address,
        #[ink(topic)]
        spender: Address,
        value: U256,
    }

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    #[allow(clippy::enum_variant_names)]
    pub enum Error {
        ERC20InsufficientBalance {
            sender: Address,
            balance: U256,
            needed: U256,
        },
        ERC20InsufficientAllowance {
            spender: Address,
            allowance: U256,
            needed: U256,
        },
    }

    #[ink(storage)]
    pub struct ReentrantToken {
        total_supply: U256,
        balances: Mapping<Address, U256>,
        allowances: Mapping<(Address, Address), U256>,
        target: Address,
        payload: Vec<u8>,
        reentered: bool,
        reentry_succeeded: bool,
        reentry_return: Vec<u8>,
    }

    impl ReentrantToken {
        #[ink(constructor)]
        pub fn new(holder: Address, supply: U256) -> Self {
            let mut balances = Mapping::new();
            balances.insert(holder, &supply);
            Self {
                total_supply: supply,
                balances,
                allowances: Mapping::new(),
                target: Address::zero(),
                payload: Vec::new(),
                reentered: false,
                reentry_succeeded: false,
                reentry_return: Vec::new(),
            }
        }

        #[ink(message)]
        pub fn arm(&mut self, target: Address, payload: DynBytes) {
            self.target = target;
            self.payload = payload.0;
        }

        #[ink(message)]
        pub fn name(&self) -> String {
            String::from("Reentrant")
        }

        #[ink(message)]
        pub fn symbol(&self) -> String {
            String::from("RE")
        }

        #[ink(message)]
        pub fn decimals(&self) -> u8 {
            18
        }

        #[ink(message, name = "totalSupply")]
        pub fn total_supply(&self) -> U256 {
            self.total_supply
        }

        #[ink(message, name = "balanceOf")]
        pub fn balance_of(&self, account: Address) -> U256 {
            self.balances.get(account).unwrap_or_default()
        }

        #[ink(message)]
        pub fn allowance(&self, owner: Address, spender: Address) -> U256 {
            self.allowances.get((owner, spender)).unwrap_or_default()
        }

        #[ink(message)]
        pub fn target(&self) -> Address {
            self.target
        }

        #[ink(message)]
        pub fn payload(&self) -> DynBytes {
            DynBytes(self.payload.clone())
        }

        #[ink(message)]
        pub fn reentered(&self) -> bool {
            self.reentered
        }

        #[ink(message, name = "reentrySucceeded")]
        pub fn reentry_succeeded(&self) -> bool {
            self.reentry_succeeded
        }

        #[ink(message, name = "reentryReturn")]
        pub fn reentry_return(&self) -> DynBytes {
            DynBytes(self.reentry_return.clone())
        }

        #[ink(message)]
        pub fn approve(&mut self, spender: Address, value: U256) -> bool {
            let owner = self.env().caller();
            self.allowances.insert((owner, spender), &value);
            self.env().emit_event(Approval {
                owner,
                spender,
                value,
            });
            true
        }

        #[ink(message)]
        pub fn transfer(&mut self, to: Address, value: U256) -> Result<bool, Error> {
            self.move_tokens(self.env().caller(), to, value)?;
            Ok(true)
        }

        #[ink(message, name = "transferFrom")]
        pub fn transfer_from(
            &mut self,
            from: Address,
            to: Address,
            value: U256,
        ) -> Result<bool, Error> {
            let spender = self.env().caller();
            let allowance = self.allowance(from, spender);
            if allowance < value {
                return Err(Error::ERC20InsufficientAllowance {
                    spender,
                    allowance,
                    needed: value,
                });
            }
            self.allowances
                .insert((from, spender), &(allowance - value));
            self.move_tokens(from, to, value)?;
            Ok(true)
        }

        fn move_tokens(&mut self, from: Address, to: Address, value: U256) -> Result<(), Error> {
            let balance = self.balance_of(from);
            if balance < value {
                return Err(Error::ERC20InsufficientBalance {
                    sender: from,
                    balance,
                    needed: value,
                });
            }
            self.balances.insert(from, &(balance - value));
            let to_balance = self.balance_of(to);
            self.balances.insert(to, &(to_balance + value));
            self.env().emit_event(Transfer { from, to, value });
            if from == self.target && self.target != Address::zero() && !self.reentered {
                self.reentered = true;
                let (ok, data) = match call::raw_call(self.target, &self.payload) {
                    Ok(data) => (true, data),
                    Err(data) => (false, data),
                };
                self.reentry_succeeded = ok;
                self.reentry_return = data;
            }
            Ok(())
        }
    }
}
