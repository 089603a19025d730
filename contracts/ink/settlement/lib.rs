//! Escrow per (user, operator), signed usage batches, fee splits and rewards (`ISettlement`;
//! its doc comment is the contract's specification, and the Solidity implementation in
//! `contracts/evm/src/Settlement.sol` is followed step for step, so both revert, skip, credit
//! and emit alike).
//!
//! Where pallet-revive differs from the EVM:
//! - **Reentrancy.** A contract on the call stack cannot be re-entered unless a call allows it,
//!   and no call here allows it: a token that calls back into settlement while being paid
//!   finds the call refused, as OpenZeppelin's `ReentrancyGuard` refuses it in Solidity.
//! - **The ERC-1271 stipend** is weight, not gas: a wallet answers within
//!   [`WALLET_CHECK_REF_TIME`] of reference time and [`WALLET_CHECK_PROOF_SIZE`] bytes of
//!   proof; a submitter that leaves less than that reverts the batch
//!   (`NotEnoughGasForWalletCheck`) instead of turning the wallet's debit into a skip.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod settlement {
    use ink::{
        U256,
        env::{
            CallFlags,
            call::{ExecutionInput, Selector, build_call_sol},
        },
        prelude::vec::Vec,
        sol::{DynBytes, FixedBytes},
        storage::Mapping,
    };
    use openledger_ink_support::{
        abi::{self, Word, selector},
        call::{self, RawReturn},
        ecdsa, eip712, erc20,
        governed::{Governance, Refusal},
        math,
        scheduled::Scheduled,
        types::{ContributionStatus, Model},
    };

    const BPS: u16 = 10_000;
    /// Upper bound governance can set for the protocol share.
    const MAX_PROTOCOL_BPS: u16 = 2_000;
    /// Upper bound governance can set for the withdrawal delay.
    const MAX_WITHDRAWAL_DELAY: u64 = 30 * 24 * 3600;
    /// How long a ready withdrawal request stays usable.
    const WITHDRAWAL_WINDOW: u64 = 2 * 24 * 3600;
    /// Reference time (picoseconds) an ERC-1271 wallet gets to answer `isValidSignature`.
    pub const WALLET_CHECK_REF_TIME: u64 = 1_000_000_000;
    /// Proof size (bytes) an ERC-1271 wallet gets to answer `isValidSignature`.
    pub const WALLET_CHECK_PROOF_SIZE: u64 = 256 * 1024;

    const NAME: &str = "OpenLedger Settlement";
    const VERSION: &str = "1";
    const VOUCHER_TYPEHASH: Word = ink::keccak_256!(
        "Voucher(address user,address operator,uint256 modelId,uint256 cumulativeCap,uint64 expiry,uint64 nonce)"
    );
    const DEBIT_TYPEHASH: Word =
        ink::keccak_256!("Debit(address user,uint256 modelId,uint256 amount)");
    const DATA_CREDIT_TYPEHASH: Word = ink::keccak_256!(
        "DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 weight)"
    );
    const BATCH_TYPEHASH: Word = ink::keccak_256!(concat!(
        "Batch(address operator,uint64 sequence,uint64 deadline,uint32 policyEpoch,bytes32 receiptsRoot,Debit[] debits,DataCredit[] credits)",
        "DataCredit(uint256 modelId,uint256 datanetId,uint256 contributionId,uint256 weight)",
        "Debit(address user,uint256 modelId,uint256 amount)"
    ));
    const IS_VALID_SIGNATURE: [u8; 4] =
        selector(ink::keccak_256!("isValidSignature(bytes32,bytes)"));

    const TOKEN: [u8; 4] = selector(ink::keccak_256!("token()"));
    const DATANETS: [u8; 4] = selector(ink::keccak_256!("datanets()"));
    const SETTLEMENT: [u8; 4] = selector(ink::keccak_256!("settlement()"));
    const IS_ACTIVE: [u8; 4] = selector(ink::keccak_256!("isActive(address)"));
    const SIGNER_OF: [u8; 4] = selector(ink::keccak_256!("signerOf(address)"));
    const SERVES: [u8; 4] = selector(ink::keccak_256!("serves(address,uint256)"));
    const UNSTAKE_COOLDOWN: [u8; 4] = selector(ink::keccak_256!("unstakeCooldown()"));
    const GET_MODEL: [u8; 4] = selector(ink::keccak_256!("getModel(uint256)"));
    const USES_DATANET: [u8; 4] = selector(ink::keccak_256!("usesDatanet(uint256,uint256)"));
    const DATANET_OWNER: [u8; 4] = selector(ink::keccak_256!("datanetOwner(uint256)"));
    const CONTRIBUTION_OWNER: [u8; 4] = selector(ink::keccak_256!("contributionOwner(uint256)"));

    // ---------------------------------------------------------------- ABI types

    /// Basis points; the four sum to 10,000.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct SplitPolicy {
        protocol_bps: u16,
        operator_bps: u16,
        developer_bps: u16,
        data_bps: u16,
    }

    #[derive(Debug, Clone, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub struct Voucher {
        user: Address,
        operator: Address,
        model_id: U256,
        cumulative_cap: U256,
        expiry: u64,
        nonce: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub struct Debit {
        user: Address,
        model_id: U256,
        amount: U256,
    }

    #[derive(Debug, Clone, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub struct DataCredit {
        model_id: U256,
        datanet_id: U256,
        contribution_id: U256,
        weight: U256,
    }

    #[derive(Debug, Clone, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub struct Batch {
        operator: Address,
        sequence: u64,
        deadline: u64,
        policy_epoch: u32,
        receipts_root: FixedBytes<32>,
        debits: Vec<Debit>,
        credits: Vec<DataCredit>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub struct SignedVoucher {
        voucher: Voucher,
        signature: DynBytes,
    }

    /// One (user, operator) escrow; `pending` is the live withdrawal request, if any.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Escrow {
        balance: U256,
        pending: U256,
        ready_at: u64,
        expires_at: u64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub enum RewardKind {
        Protocol,
        Operator,
        Developer,
        Contribution,
        Datanet,
    }

    /// Why a debit was not collected.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    pub enum SkipReason {
        VoucherMismatch,
        VoucherExpired,
        VoucherRevoked,
        CapExceeded,
        InsufficientEscrow,
        InvalidSignature,
        ModelInactive,
        ModelNotServed,
    }

    /// A split policy and when it starts pricing batches.
    #[derive(Debug, Clone, Copy, Default)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Epoch {
        policy: SplitPolicy,
        effective_at: u64,
    }

    /// Two vesting buckets are enough: credits of one period share a bucket, and a bucket two
    /// periods old has vested.
    #[derive(Debug, Clone, Copy, Default)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Vesting {
        amount_a: U256,
        vests_at_a: u64,
        amount_b: U256,
        vests_at_b: u64,
    }

    // ---------------------------------------------------------------- events

    #[ink::event]
    pub struct Deposited {
        #[ink(topic)]
        user: Address,
        #[ink(topic)]
        operator: Address,
        amount: U256,
        balance: U256,
    }

    #[ink::event]
    pub struct WithdrawalRequested {
        #[ink(topic)]
        user: Address,
        #[ink(topic)]
        operator: Address,
        amount: U256,
        ready_at: u64,
        expires_at: u64,
    }

    #[ink::event]
    pub struct Withdrawn {
        #[ink(topic)]
        user: Address,
        #[ink(topic)]
        operator: Address,
        amount: U256,
        balance: U256,
    }

    #[ink::event]
    pub struct VouchersRevoked {
        #[ink(topic)]
        user: Address,
        min_nonce: u64,
        effective_at: u64,
    }

    #[ink::event]
    pub struct BatchSettled {
        #[ink(topic)]
        operator: Address,
        #[ink(topic)]
        sequence: u64,
        receipts_root: FixedBytes<32>,
        policy_epoch: u32,
        total_charged: U256,
        collected: U256,
        skipped: U256,
    }

    #[ink::event]
    pub struct Charged {
        #[ink(topic)]
        operator: Address,
        #[ink(topic)]
        sequence: u64,
        #[ink(topic)]
        user: Address,
        model_id: U256,
        amount: U256,
        spent: U256,
    }

    #[ink::event]
    pub struct DebitSkipped {
        #[ink(topic)]
        operator: Address,
        #[ink(topic)]
        sequence: u64,
        #[ink(topic)]
        user: Address,
        model_id: U256,
        amount: U256,
        reason: SkipReason,
    }

    #[ink::event]
    pub struct RewardCredited {
        #[ink(topic)]
        account: Address,
        #[ink(topic)]
        model_id: U256,
        #[ink(topic)]
        sequence: u64,
        kind: RewardKind,
        source_id: U256,
        amount: U256,
        vests_at: u64,
    }

    #[ink::event]
    pub struct RewardsSlashed {
        #[ink(topic)]
        operator: Address,
        amount: U256,
    }

    #[ink::event]
    pub struct Claimed {
        #[ink(topic)]
        account: Address,
        #[ink(topic)]
        recipient: Address,
        amount: U256,
    }

    #[ink::event]
    pub struct SplitPolicyChanged {
        #[ink(topic)]
        epoch: u32,
        protocol_bps: u16,
        operator_bps: u16,
        developer_bps: u16,
        data_bps: u16,
        effective_at: u64,
    }

    #[ink::event]
    pub struct WithdrawalDelayChanged {
        delay: u64,
        effective_at: u64,
    }

    // ---------------------------------------------------------------- errors

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    pub enum Error {
        NotGovernance {
            caller: Address,
        },
        NotPendingGovernance {
            caller: Address,
        },
        ZeroAddress,
        ZeroAmount,
        InvalidSplitPolicy,
        DelayTooLong {
            delay: u64,
            max: u64,
        },
        NotWired {
            contract_address: Address,
        },
        NotOperatorRegistry {
            caller: Address,
        },
        NoWithdrawalRequested,
        WithdrawalNotReady {
            ready_at: u64,
        },
        WithdrawalExpired {
            expires_at: u64,
        },
        NothingToClaim,
        NonceNotIncreasing {
            current: u64,
            requested: u64,
        },
        InsufficientBalance {
            user: Address,
            balance: U256,
            amount: U256,
        },
        EmptyBatch,
        BatchExpired {
            deadline: u64,
        },
        BadSequence {
            operator: Address,
            expected: u64,
            got: u64,
        },
        PolicyEpochNotLive {
            epoch: u32,
            current: u32,
        },
        OperatorNotActive {
            operator: Address,
        },
        InvalidOperatorSignature,
        VoucherCountMismatch {
            debits: U256,
            vouchers: U256,
        },
        DebitsNotSorted {
            index: U256,
        },
        CreditsNotSorted {
            index: U256,
        },
        NotEnoughGasForWalletCheck {
            index: U256,
        },
        UnknownDatanet {
            index: U256,
            datanet_id: U256,
        },
        DatanetNotInLineage {
            index: U256,
            model_id: U256,
            datanet_id: U256,
        },
        ContributionNotAccepted {
            index: U256,
            contribution_id: U256,
        },
        ContributionNotInDatanet {
            index: U256,
            contribution_id: U256,
            datanet_id: U256,
        },
        CreditWithoutDebit {
            index: U256,
            model_id: U256,
        },
        NoDataCredits {
            model_id: U256,
        },
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

    fn idx(i: usize) -> U256 {
        U256::from(i)
    }

    // ---------------------------------------------------------------- storage

    #[ink(storage)]
    pub struct Settlement {
        governance: Governance,
        token: Address,
        treasury: Address,
        datanets: Address,
        models: Address,
        operators: Address,
        latest_epoch: u32,
        withdrawal_delay: Scheduled,
        total_deposits: U256,
        total_claimable: U256,
        epochs: Mapping<u32, Epoch>,
        escrows: Mapping<(Address, Address), Escrow>,
        /// Per user, the minimum voucher nonce.
        revocations: Mapping<Address, Scheduled>,
        claimable: Mapping<Address, U256>,
        vesting: Mapping<Address, Vesting>,
        spent: Mapping<(Address, Address, U256), U256>,
        last_sequence: Mapping<Address, u64>,
    }

    /// The developer of a model, and whether an operator may charge for it now (if not, why).
    struct ModelTerms {
        developer: Address,
        fault: Option<SkipReason>,
    }

    impl Settlement {
        #[ink(constructor)]
        #[allow(clippy::too_many_arguments)]
        pub fn new(
            token: Address,
            governance: Address,
            treasury: Address,
            datanets: Address,
            models: Address,
            operators: Address,
            policy: SplitPolicy,
            withdrawal_delay: u64,
        ) -> Result<Self, Error> {
            let governance = Governance::new(governance)?;
            let zero = Address::zero();
            if token == zero
                || treasury == zero
                || datanets == zero
                || models == zero
                || operators == zero
            {
                return Err(Error::ZeroAddress);
            }
            let this = Self::env().address();
            if call::call::<_, Address>(datanets, ExecutionInput::new(Selector::new(TOKEN)))
                != token
            {
                return Err(Error::NotWired {
                    contract_address: datanets,
                });
            }
            if call::call::<_, Address>(models, ExecutionInput::new(Selector::new(DATANETS)))
                != datanets
            {
                return Err(Error::NotWired {
                    contract_address: models,
                });
            }
            if call::call::<_, Address>(operators, ExecutionInput::new(Selector::new(TOKEN)))
                != token
                || call::call::<_, Address>(
                    operators,
                    ExecutionInput::new(Selector::new(SETTLEMENT)),
                ) != this
            {
                return Err(Error::NotWired {
                    contract_address: operators,
                });
            }
            if withdrawal_delay > MAX_WITHDRAWAL_DELAY {
                return Err(Error::DelayTooLong {
                    delay: withdrawal_delay,
                    max: MAX_WITHDRAWAL_DELAY,
                });
            }
            let now = Self::env().block_timestamp();
            Self::env().emit_event(WithdrawalDelayChanged {
                delay: withdrawal_delay,
                effective_at: now,
            });
            check_policy(&policy)?;
            let mut epochs = Mapping::new();
            epochs.insert(
                1,
                &Epoch {
                    policy,
                    effective_at: now,
                },
            );
            Self::env().emit_event(SplitPolicyChanged {
                epoch: 1,
                protocol_bps: policy.protocol_bps,
                operator_bps: policy.operator_bps,
                developer_bps: policy.developer_bps,
                data_bps: policy.data_bps,
                effective_at: now,
            });
            Ok(Self {
                governance,
                token,
                treasury,
                datanets,
                models,
                operators,
                latest_epoch: 1,
                withdrawal_delay: Scheduled::new(U256::from(withdrawal_delay)),
                total_deposits: U256::zero(),
                total_claimable: U256::zero(),
                epochs,
                escrows: Mapping::new(),
                revocations: Mapping::new(),
                claimable: Mapping::new(),
                vesting: Mapping::new(),
                spent: Mapping::new(),
                last_sequence: Mapping::new(),
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

        #[ink(message, name = "setSplitPolicy")]
        pub fn set_split_policy(&mut self, policy: SplitPolicy) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            check_policy(&policy)?;
            let now = self.now();
            let mut epoch = self.latest_epoch;
            // A pending epoch is replaced (its clock restarts); a live one is followed by a new one.
            if self.epochs.get(epoch).unwrap_or_default().effective_at <= now {
                epoch = epoch.checked_add(1).unwrap_or_else(|| math::panic(0x11));
                self.latest_epoch = epoch;
            }
            let effective_at = math::add64(now, self.withdrawal_delay());
            self.epochs.insert(
                epoch,
                &Epoch {
                    policy,
                    effective_at,
                },
            );
            self.env().emit_event(SplitPolicyChanged {
                epoch,
                protocol_bps: policy.protocol_bps,
                operator_bps: policy.operator_bps,
                developer_bps: policy.developer_bps,
                data_bps: policy.data_bps,
                effective_at,
            });
            Ok(())
        }

        #[ink(message, name = "setWithdrawalDelay")]
        pub fn set_withdrawal_delay(&mut self, delay: u64) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            if delay > MAX_WITHDRAWAL_DELAY {
                return Err(Error::DelayTooLong {
                    delay,
                    max: MAX_WITHDRAWAL_DELAY,
                });
            }
            let now = self.now();
            let current = self.withdrawal_delay();
            let effective_at = self
                .withdrawal_delay
                .schedule(U256::from(delay), now, current);
            self.env().emit_event(WithdrawalDelayChanged {
                delay,
                effective_at,
            });
            Ok(())
        }

        // ------------------------------------------------------------ escrow

        #[ink(message)]
        pub fn deposit(&mut self, operator: Address, amount: U256) -> Result<(), Error> {
            self.deposit_from_caller(operator, amount)
        }

        #[ink(message, name = "depositWithPermit")]
        pub fn deposit_with_permit(
            &mut self,
            operator: Address,
            amount: U256,
            deadline: U256,
            v: u8,
            r: FixedBytes<32>,
            s: FixedBytes<32>,
        ) -> Result<(), Error> {
            // A front-run permit leaves the allowance in place: go on and let transferFrom decide.
            let (owner, this) = (self.env().caller(), self.env().address());
            erc20::try_permit(self.token, owner, this, amount, deadline, v, r.0, s.0);
            self.deposit_from_caller(operator, amount)
        }

        #[ink(message, name = "requestWithdrawal")]
        pub fn request_withdrawal(&mut self, operator: Address, amount: U256) -> Result<(), Error> {
            if amount.is_zero() {
                return Err(Error::ZeroAmount);
            }
            let user = self.env().caller();
            let mut e = self.escrows.get((user, operator)).unwrap_or_default();
            if amount > e.balance {
                return Err(Error::InsufficientBalance {
                    user,
                    balance: e.balance,
                    amount,
                });
            }
            let ready_at = math::add64(self.now(), self.withdrawal_delay());
            let expires_at = math::add64(ready_at, WITHDRAWAL_WINDOW);
            e.pending = amount;
            e.ready_at = ready_at;
            e.expires_at = expires_at;
            self.escrows.insert((user, operator), &e);
            self.env().emit_event(WithdrawalRequested {
                user,
                operator,
                amount,
                ready_at,
                expires_at,
            });
            Ok(())
        }

        #[ink(message)]
        pub fn withdraw(&mut self, operator: Address) -> Result<U256, Error> {
            let user = self.env().caller();
            let mut e = self.escrows.get((user, operator)).unwrap_or_default();
            if e.pending.is_zero() {
                return Err(Error::NoWithdrawalRequested);
            }
            let now = self.now();
            if now < e.ready_at {
                return Err(Error::WithdrawalNotReady {
                    ready_at: e.ready_at,
                });
            }
            if now >= e.expires_at {
                return Err(Error::WithdrawalExpired {
                    expires_at: e.expires_at,
                });
            }
            let paid = e.pending.min(e.balance);
            e.balance -= paid;
            e.pending = U256::zero();
            e.ready_at = 0;
            e.expires_at = 0;
            self.escrows.insert((user, operator), &e);
            self.total_deposits -= paid;
            self.env().emit_event(Withdrawn {
                user,
                operator,
                amount: paid,
                balance: e.balance,
            });
            if !paid.is_zero() {
                erc20::safe_transfer(self.token, user, paid);
            }
            Ok(paid)
        }

        /// Schedules the revocation of the caller's vouchers with nonce < `min_nonce`.
        #[ink(message, name = "revokeVouchers")]
        pub fn revoke_vouchers(&mut self, min_nonce: u64) -> Result<(), Error> {
            let user = self.env().caller();
            let mut r = self.revocations.get(user).unwrap_or_default();
            let floor = r.latest().low_u64();
            if min_nonce <= floor {
                return Err(Error::NonceNotIncreasing {
                    current: floor,
                    requested: min_nonce,
                });
            }
            let effective_at =
                r.schedule(U256::from(min_nonce), self.now(), self.withdrawal_delay());
            self.revocations.insert(user, &r);
            self.env().emit_event(VouchersRevoked {
                user,
                min_nonce,
                effective_at,
            });
            Ok(())
        }

        // ------------------------------------------------------------ rewards

        #[ink(message)]
        pub fn claim(&mut self) -> Result<U256, Error> {
            self.claim_for(self.env().caller())
        }

        #[ink(message, name = "claimTo")]
        pub fn claim_to(&mut self, recipient: Address) -> Result<U256, Error> {
            if recipient == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            self.claim_for(recipient)
        }

        /// Takes up to `amount` of `operator`'s unvested rewards to the treasury (operator
        /// registry only).
        #[ink(message, name = "slashRewards")]
        pub fn slash_rewards(&mut self, operator: Address, amount: U256) -> Result<U256, Error> {
            let caller = self.env().caller();
            if caller != self.operators {
                return Err(Error::NotOperatorRegistry { caller });
            }
            let mut v = self.vesting.get(operator).unwrap_or_default();
            self.release(operator, &mut v);
            let from_a = amount.min(v.amount_a);
            let from_b = (amount - from_a).min(v.amount_b);
            v.amount_a -= from_a;
            v.amount_b -= from_b;
            self.vesting.insert(operator, &v);
            let taken = from_a + from_b;
            if taken.is_zero() {
                return Ok(taken);
            }
            self.add_claimable(self.treasury, taken);
            self.env().emit_event(RewardsSlashed {
                operator,
                amount: taken,
            });
            Ok(taken)
        }

        // ------------------------------------------------------------ settlement

        #[ink(message, name = "settleBatch")]
        pub fn settle_batch(
            &mut self,
            batch: Batch,
            operator_signature: DynBytes,
            vouchers: Vec<SignedVoucher>,
        ) -> Result<(), Error> {
            let operator = batch.operator;
            let n = batch.debits.len();
            if n == 0 {
                return Err(Error::EmptyBatch);
            }
            let now = self.now();
            if now > batch.deadline {
                return Err(Error::BatchExpired {
                    deadline: batch.deadline,
                });
            }
            let expected = self
                .last_sequence(operator)
                .checked_add(1)
                .unwrap_or_else(|| math::panic(0x11));
            if batch.sequence != expected {
                return Err(Error::BadSequence {
                    operator,
                    expected,
                    got: batch.sequence,
                });
            }
            if !call::call::<_, bool>(
                self.operators,
                ExecutionInput::new(Selector::new(IS_ACTIVE)).push_arg(operator),
            ) {
                return Err(Error::OperatorNotActive { operator });
            }
            let signer: Address = call::call(
                self.operators,
                ExecutionInput::new(Selector::new(SIGNER_OF)).push_arg(operator),
            );
            match ecdsa::try_recover(&self.batch_hash(&batch), &operator_signature.0) {
                Ok(recovered) if recovered == signer => {}
                _ => return Err(Error::InvalidOperatorSignature),
            }
            if vouchers.len() != n {
                return Err(Error::VoucherCountMismatch {
                    debits: idx(n),
                    vouchers: idx(vouchers.len()),
                });
            }
            let policy = self.live_policy(batch.policy_epoch)?;
            self.last_sequence.insert(operator, &batch.sequence);

            let cooldown: u64 = call::call(
                self.operators,
                ExecutionInput::new(Selector::new(UNSTAKE_COOLDOWN)),
            );
            let operator_vests_at = vests_at(now, cooldown);
            let mut total = U256::zero();
            let mut collected = 0usize;
            let mut next_credit = 0usize;
            let mut i = 0usize;
            while i < n {
                let model_id = batch.debits[i].model_id;
                let terms = self.model_terms(operator, model_id, now);
                let mut model_total = U256::zero();
                while i < n && batch.debits[i].model_id == model_id {
                    check_debit_order(&batch, i)?;
                    let amount = match terms.fault {
                        None => self.collect(&batch, i, &vouchers[i], now)?,
                        Some(reason) => self.skip(&batch, i, reason),
                    };
                    if !amount.is_zero() {
                        collected += 1;
                    }
                    model_total = math::add(model_total, amount);
                    i += 1;
                }
                total = math::add(total, model_total);
                let data_share = self.split_fee(
                    &batch,
                    model_id,
                    terms.developer,
                    model_total,
                    &policy,
                    operator_vests_at,
                    now,
                );
                next_credit = self.credit_data(&batch, next_credit, model_id, data_share)?;
            }
            if next_credit != batch.credits.len() {
                return Err(Error::CreditWithoutDebit {
                    index: idx(next_credit),
                    model_id: batch.credits[next_credit].model_id,
                });
            }
            self.total_deposits = math::sub(self.total_deposits, total);
            self.total_claimable = math::add(self.total_claimable, total);
            self.env().emit_event(BatchSettled {
                operator,
                sequence: batch.sequence,
                receipts_root: batch.receipts_root,
                policy_epoch: batch.policy_epoch,
                total_charged: total,
                collected: idx(collected),
                skipped: idx(n - collected),
            });
            Ok(())
        }

        // ------------------------------------------------------------ views

        #[ink(message, name = "BPS")]
        pub fn bps(&self) -> u16 {
            BPS
        }

        #[ink(message, name = "MAX_PROTOCOL_BPS")]
        pub fn max_protocol_bps(&self) -> u16 {
            MAX_PROTOCOL_BPS
        }

        #[ink(message, name = "MAX_WITHDRAWAL_DELAY")]
        pub fn max_withdrawal_delay(&self) -> u64 {
            MAX_WITHDRAWAL_DELAY
        }

        #[ink(message, name = "WITHDRAWAL_WINDOW")]
        pub fn withdrawal_window(&self) -> u64 {
            WITHDRAWAL_WINDOW
        }

        #[ink(message, name = "VOUCHER_TYPEHASH")]
        pub fn voucher_typehash(&self) -> FixedBytes<32> {
            FixedBytes(VOUCHER_TYPEHASH)
        }

        #[ink(message, name = "DEBIT_TYPEHASH")]
        pub fn debit_typehash(&self) -> FixedBytes<32> {
            FixedBytes(DEBIT_TYPEHASH)
        }

        #[ink(message, name = "DATA_CREDIT_TYPEHASH")]
        pub fn data_credit_typehash(&self) -> FixedBytes<32> {
            FixedBytes(DATA_CREDIT_TYPEHASH)
        }

        #[ink(message, name = "BATCH_TYPEHASH")]
        pub fn batch_typehash(&self) -> FixedBytes<32> {
            FixedBytes(BATCH_TYPEHASH)
        }

        #[ink(message)]
        pub fn token(&self) -> Address {
            self.token
        }

        #[ink(message)]
        pub fn treasury(&self) -> Address {
            self.treasury
        }

        #[ink(message)]
        pub fn datanets(&self) -> Address {
            self.datanets
        }

        #[ink(message)]
        pub fn models(&self) -> Address {
            self.models
        }

        #[ink(message)]
        pub fn operators(&self) -> Address {
            self.operators
        }

        /// The epoch pricing batches now.
        #[ink(message, name = "currentEpoch")]
        pub fn current_epoch(&self) -> u32 {
            let epoch = self.latest_epoch;
            if self.epochs.get(epoch).unwrap_or_default().effective_at <= self.now() {
                epoch
            } else {
                epoch - 1
            }
        }

        /// The latest epoch set (may not be in effect yet).
        #[ink(message, name = "latestEpoch")]
        pub fn latest_epoch(&self) -> u32 {
            self.latest_epoch
        }

        #[ink(message, name = "splitPolicyOf")]
        pub fn split_policy_of(&self, epoch: u32) -> (SplitPolicy, u64) {
            let e = self.epochs.get(epoch).unwrap_or_default();
            (e.policy, e.effective_at)
        }

        /// The policy of `currentEpoch()`.
        #[ink(message, name = "splitPolicy")]
        pub fn split_policy(&self) -> SplitPolicy {
            self.epochs
                .get(self.current_epoch())
                .unwrap_or_default()
                .policy
        }

        /// The delay in effect now.
        #[ink(message, name = "withdrawalDelay")]
        pub fn withdrawal_delay(&self) -> u64 {
            self.withdrawal_delay.get(self.now()).low_u64()
        }

        #[ink(message, name = "escrowOf")]
        pub fn escrow_of(&self, user: Address, operator: Address) -> Escrow {
            let mut e = self.escrows.get((user, operator)).unwrap_or_default();
            if !e.pending.is_zero() && self.now() >= e.expires_at {
                e.pending = U256::zero();
                e.ready_at = 0;
                e.expires_at = 0;
            }
            e
        }

        /// What `operator` can collect from `user` whatever the user does: the escrow minus a
        /// live withdrawal request.
        #[ink(message)]
        pub fn guaranteed(&self, user: Address, operator: Address) -> U256 {
            let e = self.escrows.get((user, operator)).unwrap_or_default();
            if e.pending.is_zero() || self.now() >= e.expires_at {
                e.balance
            } else {
                e.balance.saturating_sub(e.pending)
            }
        }

        #[ink(message, name = "voucherRevocation")]
        pub fn voucher_revocation(&self, user: Address) -> (u64, u64, u64) {
            let r = self.revocations.get(user).unwrap_or_default();
            let now = self.now();
            let effective_at = r.pending_at(now);
            let pending = if effective_at == 0 {
                0
            } else {
                r.latest().low_u64()
            };
            (r.get(now).low_u64(), pending, effective_at)
        }

        /// Claimable now (vested).
        #[ink(message)]
        pub fn claimable(&self, account: Address) -> U256 {
            let now = self.now();
            let v = self.vesting.get(account).unwrap_or_default();
            let mut amount = self.claimable.get(account).unwrap_or_default();
            if v.vests_at_a <= now {
                amount += v.amount_a;
            }
            if v.vests_at_b <= now {
                amount += v.amount_b;
            }
            amount
        }

        /// Operator rewards not vested yet, and when the next part vests.
        #[ink(message)]
        pub fn vesting(&self, operator: Address) -> (U256, u64) {
            let now = self.now();
            let v = self.vesting.get(operator).unwrap_or_default();
            let (mut amount, mut next) = (U256::zero(), 0u64);
            if !v.amount_a.is_zero() && v.vests_at_a > now {
                amount += v.amount_a;
                next = v.vests_at_a;
            }
            if !v.amount_b.is_zero() && v.vests_at_b > now {
                amount += v.amount_b;
                if next == 0 || v.vests_at_b < next {
                    next = v.vests_at_b;
                }
            }
            (amount, next)
        }

        #[ink(message)]
        pub fn spent(&self, user: Address, operator: Address, model_id: U256) -> U256 {
            self.spent
                .get((user, operator, model_id))
                .unwrap_or_default()
        }

        #[ink(message, name = "lastSequence")]
        pub fn last_sequence(&self, operator: Address) -> u64 {
            self.last_sequence.get(operator).unwrap_or_default()
        }

        /// Sum of all escrow balances.
        #[ink(message, name = "totalDeposits")]
        pub fn total_deposits(&self) -> U256 {
            self.total_deposits
        }

        /// Sum of all unclaimed rewards, vested or not.
        #[ink(message, name = "totalClaimable")]
        pub fn total_claimable(&self) -> U256 {
            self.total_claimable
        }

        /// EIP-712 digest the operator signer signs for `batch`.
        #[ink(message, name = "batchDigest")]
        pub fn batch_digest(&self, batch: Batch) -> FixedBytes<32> {
            FixedBytes(self.batch_hash(&batch))
        }

        /// EIP-712 digest the user signs for `voucher`.
        #[ink(message, name = "voucherDigest")]
        pub fn voucher_digest(&self, voucher: Voucher) -> FixedBytes<32> {
            FixedBytes(self.voucher_hash(&voucher))
        }

        #[ink(message, name = "domainSeparator")]
        pub fn domain_separator(&self) -> FixedBytes<32> {
            FixedBytes(self.separator())
        }

        // ------------------------------------------------------------ internals

        fn now(&self) -> u64 {
            self.env().block_timestamp()
        }

        fn separator(&self) -> Word {
            eip712::domain_separator(NAME, VERSION, self.env().address())
        }

        fn voucher_hash(&self, v: &Voucher) -> Word {
            let struct_hash = abi::hash_words(&[
                VOUCHER_TYPEHASH,
                abi::address(v.user),
                abi::address(v.operator),
                abi::uint(v.model_id),
                abi::uint(v.cumulative_cap),
                abi::small(v.expiry),
                abi::small(v.nonce),
            ]);
            eip712::digest(&self.separator(), &struct_hash)
        }

        fn batch_hash(&self, b: &Batch) -> Word {
            let debits: Vec<Word> = b
                .debits
                .iter()
                .map(|d| {
                    abi::hash_words(&[
                        DEBIT_TYPEHASH,
                        abi::address(d.user),
                        abi::uint(d.model_id),
                        abi::uint(d.amount),
                    ])
                })
                .collect();
            let credits: Vec<Word> = b
                .credits
                .iter()
                .map(|c| {
                    abi::hash_words(&[
                        DATA_CREDIT_TYPEHASH,
                        abi::uint(c.model_id),
                        abi::uint(c.datanet_id),
                        abi::uint(c.contribution_id),
                        abi::uint(c.weight),
                    ])
                })
                .collect();
            let struct_hash = abi::hash_words(&[
                BATCH_TYPEHASH,
                abi::address(b.operator),
                abi::small(b.sequence),
                abi::small(b.deadline),
                abi::small(b.policy_epoch as u64),
                b.receipts_root.0,
                abi::hash_words(&debits),
                abi::hash_words(&credits),
            ]);
            eip712::digest(&self.separator(), &struct_hash)
        }

        fn deposit_from_caller(&mut self, operator: Address, amount: U256) -> Result<(), Error> {
            if amount.is_zero() {
                return Err(Error::ZeroAmount);
            }
            if operator == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            let user = self.env().caller();
            let mut e = self.escrows.get((user, operator)).unwrap_or_default();
            e.balance = math::add(e.balance, amount);
            self.escrows.insert((user, operator), &e);
            self.total_deposits = math::add(self.total_deposits, amount);
            self.env().emit_event(Deposited {
                user,
                operator,
                amount,
                balance: e.balance,
            });
            erc20::safe_transfer_from(self.token, user, self.env().address(), amount);
            Ok(())
        }

        fn claim_for(&mut self, recipient: Address) -> Result<U256, Error> {
            let account = self.env().caller();
            let mut v = self.vesting.get(account).unwrap_or_default();
            self.release(account, &mut v);
            self.vesting.insert(account, &v);
            let paid = self.claimable.get(account).unwrap_or_default();
            if paid.is_zero() {
                return Err(Error::NothingToClaim);
            }
            // Not `remove`: ink! 6.0.0-beta.1 clears storage through a precompile that
            // pallet-revive 0.10 lacks, so a removal is silently lost.
            self.claimable.insert(account, &U256::zero());
            self.total_claimable -= paid;
            self.env().emit_event(Claimed {
                account,
                recipient,
                amount: paid,
            });
            erc20::safe_transfer(self.token, recipient, paid);
            Ok(paid)
        }

        /// The policy of `epoch` if a batch priced under it may settle now.
        fn live_policy(&self, epoch: u32) -> Result<SplitPolicy, Error> {
            let current = self.current_epoch();
            if epoch == current {
                return Ok(self.epochs.get(epoch).unwrap_or_default().policy);
            }
            let next = epoch.checked_add(1).unwrap_or_else(|| math::panic(0x11));
            if next == current {
                let switched_at = self.epochs.get(current).unwrap_or_default().effective_at;
                if self.now() < math::add64(switched_at, self.withdrawal_delay()) {
                    return Ok(self.epochs.get(epoch).unwrap_or_default().policy);
                }
            }
            Err(Error::PolicyEpochNotLive { epoch, current })
        }

        fn model_terms(&self, operator: Address, model_id: U256, now: u64) -> ModelTerms {
            let m: Model = call::call(
                self.models,
                ExecutionInput::new(Selector::new(GET_MODEL)).push_arg(model_id),
            );
            let developer = m.developer;
            if !m.active && now > math::add64(m.deactivated_at, self.withdrawal_delay()) {
                return ModelTerms {
                    developer,
                    fault: Some(SkipReason::ModelInactive),
                };
            }
            let serves: bool = call::call(
                self.operators,
                ExecutionInput::new(Selector::new(SERVES))
                    .push_arg(operator)
                    .push_arg(model_id),
            );
            ModelTerms {
                developer,
                fault: if serves {
                    None
                } else {
                    Some(SkipReason::ModelNotServed)
                },
            }
        }

        /// Collects the debit at `i` if its voucher and escrow allow it; else skips it.
        /// Returns the amount collected.
        fn collect(
            &mut self,
            batch: &Batch,
            i: usize,
            signed: &SignedVoucher,
            now: u64,
        ) -> Result<U256, Error> {
            let d = &batch.debits[i];
            let v = &signed.voucher;
            let operator = batch.operator;
            if v.user != d.user || v.operator != operator || v.model_id != d.model_id {
                return Ok(self.skip(batch, i, SkipReason::VoucherMismatch));
            }
            if now > v.expiry {
                return Ok(self.skip(batch, i, SkipReason::VoucherExpired));
            }
            let min_nonce = self.revocations.get(d.user).unwrap_or_default().get(now);
            if U256::from(v.nonce) < min_nonce {
                return Ok(self.skip(batch, i, SkipReason::VoucherRevoked));
            }
            let key = (d.user, operator, d.model_id);
            let new_spent = math::add(self.spent.get(key).unwrap_or_default(), d.amount);
            if new_spent > v.cumulative_cap {
                return Ok(self.skip(batch, i, SkipReason::CapExceeded));
            }
            let mut e = self.escrows.get((d.user, operator)).unwrap_or_default();
            if e.balance < d.amount {
                return Ok(self.skip(batch, i, SkipReason::InsufficientEscrow));
            }
            if !self.valid_signature(i, d.user, &self.voucher_hash(v), &signed.signature.0)? {
                return Ok(self.skip(batch, i, SkipReason::InvalidSignature));
            }
            e.balance -= d.amount;
            self.escrows.insert((d.user, operator), &e);
            self.spent.insert(key, &new_spent);
            self.env().emit_event(Charged {
                operator,
                sequence: batch.sequence,
                user: d.user,
                model_id: d.model_id,
                amount: d.amount,
                spent: new_spent,
            });
            Ok(d.amount)
        }

        fn skip(&self, batch: &Batch, i: usize, reason: SkipReason) -> U256 {
            let d = &batch.debits[i];
            self.env().emit_event(DebitSkipped {
                operator: batch.operator,
                sequence: batch.sequence,
                user: d.user,
                model_id: d.model_id,
                amount: d.amount,
                reason,
            });
            U256::zero()
        }

        /// An ECDSA signature by `account`'s key, else the answer of its ERC-1271
        /// `isValidSignature` within the stipend.
        fn valid_signature(
            &self,
            index: usize,
            account: Address,
            digest: &Word,
            signature: &[u8],
        ) -> Result<bool, Error> {
            if let Ok(recovered) = ecdsa::try_recover(digest, signature) {
                if recovered == account {
                    return Ok(true);
                }
            }
            if !self.env().is_contract(&account) {
                return Ok(false);
            }
            // The wallet must get its whole stipend, or a submitter could starve it into a
            // skip: with too little left the batch reverts instead.
            if self.env().gas_left() < WALLET_CHECK_REF_TIME + WALLET_CHECK_REF_TIME / 63 {
                return Err(Error::NotEnoughGasForWalletCheck { index: idx(index) });
            }
            let result = build_call_sol::<ink::env::DefaultEnvironment>()
                .call(account)
                .ref_time_limit(WALLET_CHECK_REF_TIME)
                .proof_size_limit(WALLET_CHECK_PROOF_SIZE)
                .call_flags(CallFlags::READ_ONLY)
                .exec_input(
                    ExecutionInput::new(Selector::new(IS_VALID_SIGNATURE))
                        .push_arg(FixedBytes(*digest))
                        .push_arg(DynBytes(signature.to_vec())),
                )
                .returns::<RawReturn>()
                .try_invoke();
            Ok(match result {
                Ok(Ok(RawReturn {
                    reverted: false,
                    data,
                })) => {
                    data.len() >= 32
                        && data[..4] == IS_VALID_SIGNATURE
                        && data[4..32].iter().all(|b| *b == 0)
                }
                _ => false,
            })
        }

        /// Credits the protocol, operator and developer shares of one model's total; returns
        /// the data share. The protocol share takes the rounding dust, so the four add up.
        #[allow(clippy::too_many_arguments)]
        fn split_fee(
            &mut self,
            batch: &Batch,
            model_id: U256,
            developer: Address,
            model_total: U256,
            policy: &SplitPolicy,
            operator_vests_at: u64,
            now: u64,
        ) -> U256 {
            if model_total.is_zero() {
                return U256::zero();
            }
            let share = |bps: u16| math::mul(model_total, U256::from(bps)) / U256::from(BPS);
            let operator_share = share(policy.operator_bps);
            let developer_share = share(policy.developer_bps);
            let data_share = share(policy.data_bps);
            let protocol_share = model_total - operator_share - developer_share - data_share;
            let seq = batch.sequence;
            self.credit(
                self.treasury,
                model_id,
                seq,
                RewardKind::Protocol,
                U256::zero(),
                protocol_share,
            );
            self.credit_operator(
                batch.operator,
                model_id,
                seq,
                operator_share,
                operator_vests_at,
                now,
            );
            self.credit(
                developer,
                model_id,
                seq,
                RewardKind::Developer,
                U256::zero(),
                developer_share,
            );
            data_share
        }

        /// Checks the data credits of `model_id` starting at `next` and pays `data_share` by
        /// their weights, the dust to the treasury. Returns the index of the first credit of the
        /// next model.
        fn credit_data(
            &mut self,
            batch: &Batch,
            next: usize,
            model_id: U256,
            data_share: U256,
        ) -> Result<usize, Error> {
            let credits = &batch.credits;
            if next < credits.len() && credits[next].model_id < model_id {
                return Err(Error::CreditWithoutDebit {
                    index: idx(next),
                    model_id: credits[next].model_id,
                });
            }
            let mut total_weight = U256::zero();
            let mut end = next;
            let mut checked_datanet = U256::zero();
            while end < credits.len() && credits[end].model_id == model_id {
                let c = &credits[end];
                if end > 0 && !credits_ordered(&credits[end - 1], c) {
                    return Err(Error::CreditsNotSorted { index: idx(end) });
                }
                if c.weight.is_zero() {
                    return Err(Error::ZeroAmount);
                }
                if c.datanet_id.is_zero() {
                    return Err(Error::UnknownDatanet {
                        index: idx(end),
                        datanet_id: U256::zero(),
                    });
                }
                if c.datanet_id != checked_datanet {
                    let uses: bool = call::call(
                        self.models,
                        ExecutionInput::new(Selector::new(USES_DATANET))
                            .push_arg(model_id)
                            .push_arg(c.datanet_id),
                    );
                    if !uses {
                        return Err(Error::DatanetNotInLineage {
                            index: idx(end),
                            model_id,
                            datanet_id: c.datanet_id,
                        });
                    }
                    checked_datanet = c.datanet_id;
                }
                total_weight = math::add(total_weight, c.weight);
                end += 1;
            }
            if end == next {
                return Err(Error::NoDataCredits { model_id });
            }
            let mut payees = Vec::with_capacity(end - next);
            for (k, c) in credits.iter().enumerate().take(end).skip(next) {
                payees.push(self.payee(c, k)?);
            }
            let mut paid = U256::zero();
            for (c, payee) in credits[next..end].iter().zip(payees) {
                let amount = math::mul_div(data_share, c.weight, total_weight);
                paid += amount;
                if c.contribution_id.is_zero() {
                    self.credit(
                        payee,
                        model_id,
                        batch.sequence,
                        RewardKind::Datanet,
                        c.datanet_id,
                        amount,
                    );
                } else {
                    self.credit(
                        payee,
                        model_id,
                        batch.sequence,
                        RewardKind::Contribution,
                        c.contribution_id,
                        amount,
                    );
                }
            }
            self.credit(
                self.treasury,
                model_id,
                batch.sequence,
                RewardKind::Protocol,
                U256::zero(),
                data_share - paid,
            );
            Ok(end)
        }

        /// Who a data credit pays: the datanet owner, or the contributor of an accepted
        /// contribution of that datanet.
        fn payee(&self, c: &DataCredit, index: usize) -> Result<Address, Error> {
            if c.contribution_id.is_zero() {
                return Ok(call::call(
                    self.datanets,
                    ExecutionInput::new(Selector::new(DATANET_OWNER)).push_arg(c.datanet_id),
                ));
            }
            let (datanet_id, contributor, status): (U256, Address, ContributionStatus) = call::call(
                self.datanets,
                ExecutionInput::new(Selector::new(CONTRIBUTION_OWNER)).push_arg(c.contribution_id),
            );
            if status != ContributionStatus::Accepted {
                return Err(Error::ContributionNotAccepted {
                    index: idx(index),
                    contribution_id: c.contribution_id,
                });
            }
            if datanet_id != c.datanet_id {
                return Err(Error::ContributionNotInDatanet {
                    index: idx(index),
                    contribution_id: c.contribution_id,
                    datanet_id: c.datanet_id,
                });
            }
            Ok(contributor)
        }

        fn add_claimable(&mut self, account: Address, amount: U256) {
            let balance = self.claimable.get(account).unwrap_or_default();
            self.claimable.insert(account, &math::add(balance, amount));
        }

        fn credit(
            &mut self,
            account: Address,
            model_id: U256,
            sequence: u64,
            kind: RewardKind,
            source_id: U256,
            amount: U256,
        ) {
            if amount.is_zero() {
                return;
            }
            self.add_claimable(account, amount);
            self.env().emit_event(RewardCredited {
                account,
                model_id,
                sequence,
                kind,
                source_id,
                amount,
                vests_at: 0,
            });
        }

        fn credit_operator(
            &mut self,
            operator: Address,
            model_id: U256,
            sequence: u64,
            amount: U256,
            vests_at: u64,
            now: u64,
        ) {
            if amount.is_zero() {
                return;
            }
            if vests_at <= now {
                self.credit(
                    operator,
                    model_id,
                    sequence,
                    RewardKind::Operator,
                    U256::zero(),
                    amount,
                );
                return;
            }
            let mut v = self.vesting.get(operator).unwrap_or_default();
            self.release(operator, &mut v);
            if v.vests_at_a == vests_at || v.amount_a.is_zero() {
                v.amount_a += amount;
                v.vests_at_a = vests_at;
            } else if v.vests_at_b == vests_at || v.amount_b.is_zero() {
                v.amount_b += amount;
                v.vests_at_b = vests_at;
            } else if v.vests_at_a >= v.vests_at_b {
                // Only after a cooldown change: join the later bucket, which never vests earlier.
                v.amount_a += amount;
                v.vests_at_a = v.vests_at_a.max(vests_at);
            } else {
                v.amount_b += amount;
                v.vests_at_b = v.vests_at_b.max(vests_at);
            }
            self.vesting.insert(operator, &v);
            self.env().emit_event(RewardCredited {
                account: operator,
                model_id,
                sequence,
                kind: RewardKind::Operator,
                source_id: U256::zero(),
                amount,
                vests_at,
            });
        }

        /// Moves vested buckets of `account` to its claimable balance (the caller stores `v`).
        fn release(&mut self, account: Address, v: &mut Vesting) {
            let now = self.now();
            let mut vested = U256::zero();
            if !v.amount_a.is_zero() && v.vests_at_a <= now {
                vested += v.amount_a;
                v.amount_a = U256::zero();
            }
            if !v.amount_b.is_zero() && v.vests_at_b <= now {
                vested += v.amount_b;
                v.amount_b = U256::zero();
            }
            if !vested.is_zero() {
                self.add_claimable(account, vested);
            }
        }
    }

    fn check_policy(p: &SplitPolicy) -> Result<(), Error> {
        let sum = p.protocol_bps as u32
            + p.operator_bps as u32
            + p.developer_bps as u32
            + p.data_bps as u32;
        if sum != BPS as u32 || p.protocol_bps > MAX_PROTOCOL_BPS {
            return Err(Error::InvalidSplitPolicy);
        }
        Ok(())
    }

    fn check_debit_order(batch: &Batch, i: usize) -> Result<(), Error> {
        let d = &batch.debits[i];
        if d.amount.is_zero() {
            return Err(Error::ZeroAmount);
        }
        if i > 0 {
            let prev = &batch.debits[i - 1];
            if prev.model_id > d.model_id || (prev.model_id == d.model_id && prev.user >= d.user) {
                return Err(Error::DebitsNotSorted { index: idx(i) });
            }
        }
        Ok(())
    }

    fn credits_ordered(a: &DataCredit, b: &DataCredit) -> bool {
        (a.model_id, a.datanet_id, a.contribution_id)
            < (b.model_id, b.datanet_id, b.contribution_id)
    }

    /// End of the period after the current one, for periods of length `cooldown`.
    fn vests_at(now: u64, cooldown: u64) -> u64 {
        if cooldown == 0 {
            return 0;
        }
        (now / cooldown + 2) * cooldown
    }
}
