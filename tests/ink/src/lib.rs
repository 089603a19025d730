//! The ink! implementation (`contracts/ink`, built to PolkaVM) on pallet-revive in process,
//! behind the same [`Chain`] trait the Solidity implementation's scenarios run on: the same
//! scenarios and invariant checks, the same accounts and chain id, no node.
//!
//! [`InkChain`] is a minimal FRAME runtime ([`runtime`]: system, balances, timestamp,
//! pallet-revive 0.10) in `sp_io::TestExternalities`. Each successful transaction is its own
//! block; a reverted one is rolled back (its nonce bump stays, as on Ethereum). Ethereum gas is
//! mapped to reference time at 1,000 per gas, so limits and `gas_used` are pallet-revive's own
//! Ethereum gas, not comparable with the EVM's.
//!
//! The suite's code comes from `contracts/ink/out/*.polkavm` (built by `scripts/build-ink.sh`,
//! which checks they match the sources); its constructor arguments are the Solidity
//! deployment plan's, so both implementations deploy from one plan.
//!
//! Not for: production code. pallet-revive 0.10 runs no EVM bytecode and has no EIP-7702, so
//! [`Chain::deploy_contract`] takes PolkaVM init code only (the scenarios' test contracts are
//! ported too: `contracts/ink/test`) and [`Chain::delegate`] fails.

pub mod artifacts;
// construct_runtime! generates the undocumented types (Runtime, its calls, events, origins).
#[allow(missing_docs)]
pub mod runtime;

use std::{
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256, Bytes, Log},
    signers::local::PrivateKeySigner,
};
use frame_support::{
    storage::{TransactionOutcome, with_transaction},
    traits::OnGenesis,
    weights::Weight,
};
use openledger_chain::deploy::{DeployConfig, plan_suite};
use openledger_contract_tests::{
    backend::{BackendError, Chain, Outcome},
    evm::CHAIN_ID,
    revm::dev_accounts,
};
use openledger_primitives::deployment::Deployment;
use pallet_revive::{AddressMapper, BumpNonce, Code, DepositLimit, H160, U256};
use runtime::{
    AccountId, Balance, Revive, Runtime, RuntimeEvent, RuntimeOrigin, System, Timestamp,
};
use sp_runtime::{BuildStorage, DispatchError};

/// Reference time per unit of Ethereum gas (pallet-revive's own rate with this runtime's fees).
const REF_TIME_PER_GAS: u64 = 1_000;
/// The gas a transaction gets when the sender names none: the whole block.
const BLOCK_GAS: u64 = 2_000_000_000;
/// 10,000 ETH per dev account, as anvil funds them.
const DEV_BALANCE: Balance = 10_000 * 1_000_000_000_000_000_000;

/// An in-process pallet-revive chain with anvil's funded dev accounts.
pub struct InkChain {
    ext: Mutex<sp_io::TestExternalities>,
    accounts: Vec<PrivateKeySigner>,
}

impl InkChain {
    /// A fresh chain with anvil's ten default accounts.
    pub fn new() -> Self {
        Self::with_accounts(10)
    }

    /// A fresh chain with `n` funded dev accounts.
    pub fn with_accounts(n: usize) -> Self {
        let accounts = dev_accounts(n);
        // Genesis is built outside any externalities, where the address mapper cannot read
        // its storage: the dev accounts are unmapped, so their ids are the fallback form.
        let balances: Vec<(AccountId, Balance)> = accounts
            .iter()
            .map(|s| (fallback_account(s.address()), DEV_BALANCE))
            .collect();
        let storage = runtime::RuntimeGenesisConfig {
            balances: pallet_balances::GenesisConfig {
                balances,
                ..Default::default()
            },
            ..Default::default()
        }
        .build_storage()
        .expect("genesis builds");
        let mut ext = sp_io::TestExternalities::new(storage);
        // Genesis is "now", as anvil's is.
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64;
        ext.execute_with(|| {
            Revive::on_genesis();
            // Events are not recorded in block 0.
            System::set_block_number(1);
            Timestamp::set_timestamp(now_ms);
        });
        Self {
            ext: Mutex::new(ext),
            accounts,
        }
    }

    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        // A panic while holding the lock leaves no half-applied transaction: each runs in a
        // storage transaction that is committed only when it succeeded.
        let mut ext = self.ext.lock().unwrap_or_else(|e| e.into_inner());
        ext.execute_with(f)
    }

    /// Instantiates `code` with constructor input `data` from `from`, in a block of its own.
    /// Returns the address (`CREATE(from, nonce)`, as on Ethereum) and the block number.
    fn instantiate(
        &self,
        from: Address,
        code: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(Address, u64), BackendError> {
        self.with(|| {
            next_block();
            let who = account_of(from);
            // A transaction bumps its sender's nonce before it runs; the top frame's CREATE
            // address uses the nonce before the bump.
            System::inc_account_nonce(&who);
            let result = with_transaction(|| {
                let r = Revive::bare_instantiate(
                    RuntimeOrigin::signed(who.clone()),
                    U256::zero(),
                    gas_limit(BLOCK_GAS),
                    DepositLimit::Balance(Balance::MAX),
                    Code::Upload(code),
                    data,
                    None,
                    BumpNonce::No,
                );
                let ok = matches!(&r.result, Ok(v) if !v.result.did_revert());
                if ok {
                    TransactionOutcome::Commit(Ok::<_, DispatchError>(r))
                } else {
                    TransactionOutcome::Rollback(Ok(r))
                }
            })
            .map_err(|e| format!("{e:?}"))?;
            match result.result {
                Ok(v) if !v.result.did_revert() => Ok((addr(v.addr), System::block_number())),
                Ok(v) => Err(format!(
                    "constructor reverted: {}",
                    openledger_contract_tests::suite::describe_revert(&v.result.data)
                )
                .into()),
                Err(e) => Err(format!("instantiate failed: {e:?}").into()),
            }
        })
    }

    fn call(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        self.with(|| {
            next_block();
            let who = account_of(from);
            System::inc_account_nonce(&who);
            let (r, logs) = with_transaction(|| {
                let r = Revive::bare_call(
                    RuntimeOrigin::signed(who.clone()),
                    h160(to),
                    U256::zero(),
                    gas_limit(gas),
                    DepositLimit::Balance(Balance::MAX),
                    calldata.to_vec(),
                );
                if matches!(&r.result, Ok(v) if !v.did_revert()) {
                    let logs = logs();
                    TransactionOutcome::Commit(Ok::<_, DispatchError>((r, logs)))
                } else {
                    TransactionOutcome::Rollback(Ok((r, Vec::new())))
                }
            })
            .map_err(|e| format!("{e:?}"))?;
            Ok(match r.result {
                Ok(v) if !v.did_revert() => Outcome::Success {
                    logs,
                    gas_used: r.gas_consumed.ref_time().div_ceil(REF_TIME_PER_GAS),
                },
                Ok(v) => Outcome::Revert(Bytes::from(v.data)),
                // A trap or running out of gas: the EVM reverts with no data.
                Err(_) => Outcome::Revert(Bytes::new()),
            })
        })
    }
}

impl Default for InkChain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain for InkChain {
    fn chain_id(&self) -> u64 {
        CHAIN_ID
    }

    fn accounts(&self) -> &[PrivateKeySigner] {
        &self.accounts
    }

    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError> {
        let deployer = self.accounts[0].address();
        let nonce = self.with(|| System::account_nonce(account_of(deployer))) as u64;
        let mut plan = plan_suite(config, deployer, CHAIN_ID, nonce)?;
        for i in 0..plan.contracts.len() {
            let contract = &plan.contracts[i];
            let artifact = artifacts::by_name(contract.name)
                .ok_or_else(|| format!("no ink! artifact for {}", contract.name))?;
            let args = contract.init_code[artifact.evm_bytecode_len..].to_vec();
            let (address, block) = self
                .instantiate(deployer, artifact.code.to_vec(), args)
                .map_err(|e| format!("{}: {e}", contract.name))?;
            plan.record(i, address, block)?;
        }
        Ok(plan.deployment)
    }

    fn code(&self, name: &str) -> Option<Bytes> {
        artifacts::code(name).map(Bytes::from_static)
    }

    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError> {
        let (code, data) = split_init_code(&init_code)?;
        Ok(self.instantiate(from, code, data)?.0)
    }

    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError> {
        self.call(from, to, calldata, BLOCK_GAS)
    }

    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        self.call(from, to, calldata, gas)
    }

    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError> {
        self.with(|| {
            let r = with_transaction(|| {
                let r = Revive::bare_call(
                    RuntimeOrigin::signed(account_of(Address::ZERO)),
                    h160(to),
                    U256::zero(),
                    gas_limit(BLOCK_GAS),
                    DepositLimit::UnsafeOnlyForDryRun,
                    calldata.to_vec(),
                );
                TransactionOutcome::Rollback(Ok::<_, DispatchError>(r))
            })
            .map_err(|e| format!("{e:?}"))?;
            match r.result {
                Ok(v) if !v.did_revert() => Ok(Ok(Bytes::from(v.data))),
                Ok(v) => Ok(Err(Bytes::from(v.data))),
                Err(e) => Err(format!("view failed: {e:?}").into()),
            }
        })
    }

    async fn timestamp(&self) -> Result<u64, BackendError> {
        Ok(self.with(|| Timestamp::get() / 1000))
    }

    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError> {
        self.with(|| {
            next_block();
            Timestamp::set_timestamp(Timestamp::get() + seconds * 1000);
        });
        Ok(())
    }

    async fn delegate(
        &self,
        _account: &PrivateKeySigner,
        _target: Address,
    ) -> Result<(), BackendError> {
        Err("EIP-7702 delegation: pallet-revive has none".into())
    }
}

/// The account id of an Ethereum address nobody has mapped: `address ‖ 0xEE * 12`.
fn fallback_account(a: Address) -> AccountId {
    let mut id = [0xEE; 32];
    id[..20].copy_from_slice(a.as_slice());
    AccountId::new(id)
}

/// The account pallet-revive uses for an Ethereum address (unmapped: `address ‖ 0xEE * 12`).
pub fn account_of(a: Address) -> AccountId {
    <Runtime as pallet_revive::Config>::AddressMapper::to_account_id(&h160(a))
}

fn h160(a: Address) -> H160 {
    H160(a.0.0)
}

fn addr(h: H160) -> Address {
    Address::from(h.0)
}

fn gas_limit(gas: u64) -> Weight {
    // Proof size does not matter off chain.
    Weight::from_parts(gas.saturating_mul(REF_TIME_PER_GAS), u64::MAX / 2)
}

/// A new block for the next transaction; its events start empty.
fn next_block() {
    System::reset_events();
    System::set_block_number(System::block_number() + 1);
}

/// The Solidity logs contracts emitted in this block.
fn logs() -> Vec<Log> {
    System::events()
        .into_iter()
        .filter_map(|record| match record.event {
            RuntimeEvent::Revive(pallet_revive::Event::ContractEmitted {
                contract,
                data,
                topics,
            }) => Some(Log::new_unchecked(
                addr(contract),
                topics.into_iter().map(|t| B256::from(t.0)).collect(),
                Bytes::from(data),
            )),
            _ => None,
        })
        .collect()
}

/// PolkaVM init code, Ethereum style (program blob, then the ABI-encoded constructor
/// arguments), split in two. The blob's length is the little-endian u64 after its magic and
/// version byte.
pub fn split_init_code(init: &[u8]) -> Result<(Vec<u8>, Vec<u8>), BackendError> {
    if init.len() < 13 || &init[..4] != b"PVM\0" {
        return Err("not PolkaVM code: pallet-revive 0.10 runs no EVM bytecode".into());
    }
    let len = u64::from_le_bytes(init[5..13].try_into().expect("8 bytes")) as usize;
    if len > init.len() {
        return Err("truncated PolkaVM blob".into());
    }
    Ok((init[..len].to_vec(), init[len..].to_vec()))
}
