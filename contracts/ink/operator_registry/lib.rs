//! Oracle operators (`IOperatorRegistry`): stake, signing key, served models, unstake with a
//! cooldown, slashing by governance (stake, then stake in cooldown, then unvested rewards in
//! settlement). New `minStake` and `unstakeCooldown` values take effect one current cooldown
//! after governance sets them.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod operator_registry {
    use ink::{
        U256,
        env::call::{ExecutionInput, Selector},
        prelude::string::String,
        storage::Mapping,
    };
    use openledger_ink_support::{
        abi::selector,
        call, erc20,
        governed::{Governance, Refusal},
        math,
        scheduled::Scheduled,
        types::Operator,
    };

    /// Upper bound governance can set for the unstake cooldown.
    const MAX_UNSTAKE_COOLDOWN: u64 = 90 * 24 * 3600;
    const SLASH_REWARDS: [u8; 4] = selector(ink::keccak_256!("slashRewards(address,uint256)"));

    #[ink::event]
    pub struct Staked {
        #[ink(topic)]
        operator: Address,
        amount: U256,
        stake: U256,
    }

    #[ink::event]
    pub struct SignerSet {
        #[ink(topic)]
        operator: Address,
        #[ink(topic)]
        signer: Address,
    }

    #[ink::event]
    pub struct ServingSet {
        #[ink(topic)]
        operator: Address,
        #[ink(topic)]
        model_id: U256,
        serving: bool,
    }

    #[ink::event]
    pub struct UnstakeRequested {
        #[ink(topic)]
        operator: Address,
        amount: U256,
        unstaking: U256,
        ready_at: u64,
    }

    #[ink::event]
    pub struct Unstaked {
        #[ink(topic)]
        operator: Address,
        amount: U256,
    }

    #[ink::event]
    pub struct Slashed {
        #[ink(topic)]
        operator: Address,
        amount: U256,
        stake: U256,
        unstaking: U256,
        reason: String,
    }

    #[ink::event]
    pub struct MinStakeChanged {
        min_stake: U256,
        effective_at: u64,
    }

    #[ink::event]
    pub struct UnstakeCooldownChanged {
        cooldown: u64,
        effective_at: u64,
    }

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    pub enum Error {
        NotGovernance { caller: Address },
        NotPendingGovernance { caller: Address },
        ZeroAddress,
        ZeroAmount,
        InsufficientStake { available: U256, requested: U256 },
        NothingUnstaking,
        CooldownNotOver { ready_at: u64 },
        CooldownTooLong { cooldown: u64, max: u64 },
    }

    impl From<Refusal> for Error {
        fn from(r: Refusal) -> Self {
            match r {
                Refusal::NotGovernance(caller) => Error::NotGovernance { caller },
                Refusal::NotPendingGovernance(caller) => Error::NotPendingGovernance { caller },
                Refusal::ZeroAddress => Error::ZeroAddress,
            }
        }
    }

    #[ink(storage)]
    pub struct OperatorRegistry {
        governance: Governance,
        token: Address,
        treasury: Address,
        settlement: Address,
        min_stake: Scheduled,
        unstake_cooldown: Scheduled,
        operators: Mapping<Address, Operator>,
        serves: Mapping<(Address, U256), bool>,
    }

    impl OperatorRegistry {
        /// `settlement` is the settlement contract's address (deployed after this one; its
        /// constructor checks that this registry names it).
        #[ink(constructor)]
        pub fn new(
            token: Address,
            governance: Address,
            treasury: Address,
            settlement: Address,
            min_stake: U256,
            unstake_cooldown: u64,
        ) -> Result<Self, Error> {
            let governance = Governance::new(governance)?;
            if token == Address::zero()
                || treasury == Address::zero()
                || settlement == Address::zero()
            {
                return Err(Error::ZeroAddress);
            }
            if unstake_cooldown > MAX_UNSTAKE_COOLDOWN {
                return Err(Error::CooldownTooLong {
                    cooldown: unstake_cooldown,
                    max: MAX_UNSTAKE_COOLDOWN,
                });
            }
            let now = Self::env().block_timestamp();
            Self::env().emit_event(MinStakeChanged {
                min_stake,
                effective_at: now,
            });
            Self::env().emit_event(UnstakeCooldownChanged {
                cooldown: unstake_cooldown,
                effective_at: now,
            });
            Ok(Self {
                governance,
                token,
                treasury,
                settlement,
                min_stake: Scheduled::new(min_stake),
                unstake_cooldown: Scheduled::new(U256::from(unstake_cooldown)),
                operators: Mapping::new(),
                serves: Mapping::new(),
            })
        }

        // ------------------------------------------------------------ governance

        #[ink(message)]
        pub fn governance(&self) -> Address {
            self.governance.current()
        }

        #[ink(message, name = "pendingGovernance")]
        pub fn pending_governance(&self) -> Address {
            self.governance.pending()
        }

        #[ink(message, name = "transferGovernance")]
        pub fn transfer_governance(&mut self, next: Address) -> Result<(), Error> {
            Ok(self.governance.propose(self.env().caller(), next)?)
        }

        #[ink(message, name = "acceptGovernance")]
        pub fn accept_governance(&mut self) -> Result<(), Error> {
            Ok(self.governance.accept(self.env().caller())?)
        }

        // ------------------------------------------------------------ operators

        #[ink(message)]
        pub fn stake(&mut self, amount: U256) -> Result<(), Error> {
            if amount.is_zero() {
                return Err(Error::ZeroAmount);
            }
            let operator = self.env().caller();
            let mut o = self.get_operator(operator);
            o.stake = math::add(o.stake, amount);
            self.operators.insert(operator, &o);
            self.env().emit_event(Staked {
                operator,
                amount,
                stake: o.stake,
            });
            erc20::safe_transfer_from(self.token, operator, self.env().address(), amount);
            Ok(())
        }

        #[ink(message, name = "setSigner")]
        pub fn set_signer(&mut self, signer: Address) -> Result<(), Error> {
            if signer == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            let operator = self.env().caller();
            let mut o = self.get_operator(operator);
            o.signer = signer;
            self.operators.insert(operator, &o);
            self.env().emit_event(SignerSet { operator, signer });
            Ok(())
        }

        #[ink(message, name = "setServing")]
        pub fn set_serving(&mut self, model_id: U256, serving: bool) {
            let operator = self.env().caller();
            self.serves.insert((operator, model_id), &serving);
            self.env().emit_event(ServingSet {
                operator,
                model_id,
                serving,
            });
        }

        #[ink(message, name = "requestUnstake")]
        pub fn request_unstake(&mut self, amount: U256) -> Result<(), Error> {
            if amount.is_zero() {
                return Err(Error::ZeroAmount);
            }
            let operator = self.env().caller();
            let mut o = self.get_operator(operator);
            if amount > o.stake {
                return Err(Error::InsufficientStake {
                    available: o.stake,
                    requested: amount,
                });
            }
            o.stake -= amount;
            o.unstaking = math::add(o.unstaking, amount);
            o.unstake_ready_at = math::add64(self.env().block_timestamp(), self.unstake_cooldown());
            self.operators.insert(operator, &o);
            self.env().emit_event(UnstakeRequested {
                operator,
                amount,
                unstaking: o.unstaking,
                ready_at: o.unstake_ready_at,
            });
            Ok(())
        }

        #[ink(message, name = "withdrawUnstaked")]
        pub fn withdraw_unstaked(&mut self) -> Result<(), Error> {
            let operator = self.env().caller();
            let mut o = self.get_operator(operator);
            let amount = o.unstaking;
            if amount.is_zero() {
                return Err(Error::NothingUnstaking);
            }
            if self.env().block_timestamp() < o.unstake_ready_at {
                return Err(Error::CooldownNotOver {
                    ready_at: o.unstake_ready_at,
                });
            }
            o.unstaking = U256::zero();
            o.unstake_ready_at = 0;
            self.operators.insert(operator, &o);
            self.env().emit_event(Unstaked { operator, amount });
            erc20::safe_transfer(self.token, operator, amount);
            Ok(())
        }

        /// Takes up to `amount` from stake, then unstaking, then unvested rewards, to the
        /// treasury, and marks the operator slashed for good (governance only).
        #[ink(message)]
        pub fn slash(
            &mut self,
            operator: Address,
            amount: U256,
            reason: String,
        ) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            if amount.is_zero() {
                return Err(Error::ZeroAmount);
            }
            let mut o = self.get_operator(operator);
            let from_stake = amount.min(o.stake);
            let rest = amount - from_stake;
            let from_unstaking = rest.min(o.unstaking);
            o.stake -= from_stake;
            o.unstaking -= from_unstaking;
            o.slashed = true;
            self.operators.insert(operator, &o);
            let taken = from_stake + from_unstaking;
            let from_rewards: U256 = call::call(
                self.settlement,
                ExecutionInput::new(Selector::new(SLASH_REWARDS))
                    .push_arg(operator)
                    .push_arg(rest - from_unstaking),
            );
            self.env().emit_event(Slashed {
                operator,
                amount: math::add(taken, from_rewards),
                stake: o.stake,
                unstaking: o.unstaking,
                reason,
            });
            if !taken.is_zero() {
                erc20::safe_transfer(self.token, self.treasury, taken);
            }
            Ok(())
        }

        #[ink(message, name = "setMinStake")]
        pub fn set_min_stake(&mut self, min_stake: U256) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            let now = self.env().block_timestamp();
            let delay = self.unstake_cooldown();
            let effective_at = self.min_stake.schedule(min_stake, now, delay);
            self.env().emit_event(MinStakeChanged {
                min_stake,
                effective_at,
            });
            Ok(())
        }

        #[ink(message, name = "setUnstakeCooldown")]
        pub fn set_unstake_cooldown(&mut self, cooldown: u64) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            if cooldown > MAX_UNSTAKE_COOLDOWN {
                return Err(Error::CooldownTooLong {
                    cooldown,
                    max: MAX_UNSTAKE_COOLDOWN,
                });
            }
            let now = self.env().block_timestamp();
            let delay = self.unstake_cooldown();
            let effective_at = self
                .unstake_cooldown
                .schedule(U256::from(cooldown), now, delay);
            self.env().emit_event(UnstakeCooldownChanged {
                cooldown,
                effective_at,
            });
            Ok(())
        }

        // ------------------------------------------------------------ views

        #[ink(message, name = "MAX_UNSTAKE_COOLDOWN")]
        pub fn max_unstake_cooldown(&self) -> u64 {
            MAX_UNSTAKE_COOLDOWN
        }

        #[ink(message)]
        pub fn token(&self) -> Address {
            self.token
        }

        #[ink(message)]
        pub fn settlement(&self) -> Address {
            self.settlement
        }

        #[ink(message)]
        pub fn treasury(&self) -> Address {
            self.treasury
        }

        #[ink(message, name = "minStake")]
        pub fn min_stake(&self) -> U256 {
            self.min_stake.get(self.env().block_timestamp())
        }

        #[ink(message, name = "unstakeCooldown")]
        pub fn unstake_cooldown(&self) -> u64 {
            self.unstake_cooldown
                .get(self.env().block_timestamp())
                .low_u64()
        }

        #[ink(message, name = "getOperator")]
        pub fn get_operator(&self, operator: Address) -> Operator {
            self.operators.get(operator).unwrap_or_default()
        }

        #[ink(message, name = "isActive")]
        pub fn is_active(&self, operator: Address) -> bool {
            let o = self.get_operator(operator);
            o.signer != Address::zero()
                && !o.slashed
                && o.stake >= self.min_stake()
                && !o.stake.is_zero()
        }

        #[ink(message, name = "signerOf")]
        pub fn signer_of(&self, operator: Address) -> Address {
            self.get_operator(operator).signer
        }

        #[ink(message)]
        pub fn serves(&self, operator: Address, model_id: U256) -> bool {
            self.serves.get((operator, model_id)).unwrap_or(false)
        }
    }
}
