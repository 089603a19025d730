//! The in-process EVM backend: revm (the engine inside anvil) over an in-memory database, with
//! the same accounts, chain id and hardfork as [`AnvilChain`](crate::evm::AnvilChain) and no
//! process or JSON-RPC in between.
//!
//! Each successful transaction is committed as its own block (number + 1, the clock unchanged
//! unless [`Chain::advance_time`] moved it); a reverted one is dropped with its state changes
//! and its revert data returned, as anvil's backend does after simulating it. Gas is charged
//! normally (base fee 0), so `gas_used` is what anvil reports.

use std::{
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use ::revm::{
    Context, DatabaseRef, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetEvm,
    context::{BlockEnv, CfgEnv, TxEnv, result::ExecutionResult},
    context_interface::result::Output,
    database::InMemoryDB,
    handler::MainnetContext,
    primitives::{TxKind, hardfork::SpecId},
    state::AccountInfo,
};
use alloy::{
    eips::eip7702::Authorization,
    primitives::{Address, Bytes, U256},
    signers::{
        SignerSync,
        local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
    },
};
use openledger_chain::deploy::{DeployConfig, plan_suite};
use openledger_primitives::deployment::Deployment;

use crate::backend::{BackendError, Chain, Outcome};

/// Chain id the revm backend runs with (anvil's default, as [`crate::evm::CHAIN_ID`]).
pub const CHAIN_ID: u64 = crate::evm::CHAIN_ID;

/// Anvil's dev mnemonic; account `i` is derived at `m/44'/60'/0'/0/i`.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Block and transaction gas limit (anvil's default block gas limit).
pub const GAS_LIMIT: u64 = 30_000_000;

/// Balance of every dev account at genesis: 10,000 ETH, as anvil funds them.
const DEV_BALANCE: u128 = 10_000 * 1_000_000_000_000_000_000;

type Evm = MainnetEvm<MainnetContext<InMemoryDB>>;

/// The latest block and the EVM holding the state after it.
struct State {
    evm: Evm,
    /// Number of the latest block.
    number: u64,
    /// Timestamp of the latest block; the next block has this one or a later one.
    timestamp: u64,
}

/// An in-memory Prague chain with anvil's funded dev accounts.
pub struct RevmChain {
    state: Mutex<State>,
    accounts: Vec<PrivateKeySigner>,
}

impl RevmChain {
    /// A fresh chain with anvil's ten default accounts.
    pub fn new() -> Self {
        Self::with_accounts(10)
    }

    /// A fresh chain with `n` funded dev accounts (anvil's `--accounts n`).
    pub fn with_accounts(n: usize) -> Self {
        let accounts = dev_accounts(n);
        let mut db = InMemoryDB::default();
        for signer in &accounts {
            db.insert_account_info(
                signer.address(),
                AccountInfo::from_balance(U256::from(DEV_BALANCE)),
            );
        }
        let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
        cfg.chain_id = CHAIN_ID;
        let evm = Context::mainnet()
            .with_db(db)
            .with_cfg(cfg)
            .with_block(BlockEnv {
                gas_limit: GAS_LIMIT,
                ..BlockEnv::default()
            })
            .build_mainnet();
        // Genesis is "now", as anvil's is.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        Self {
            state: Mutex::new(State {
                evm,
                number: 0,
                timestamp,
            }),
            accounts,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-applied transaction: state only changes
        // by `commit`, after execution.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for RevmChain {
    fn default() -> Self {
        Self::new()
    }
}

/// The first `n` accounts of anvil's dev mnemonic.
pub fn dev_accounts(n: usize) -> Vec<PrivateKeySigner> {
    let parent = MnemonicBuilder::<English>::from_phrase(DEV_MNEMONIC)
        .build_parent_key()
        .expect("the dev mnemonic is valid");
    parent
        .children()
        .take(n)
        .collect::<Result<_, _>>()
        .expect("dev keys derive")
}

/// What a committed transaction returns.
struct Executed {
    result: ExecutionResult,
    /// The block it was included in; `None` if nothing was committed.
    block: Option<u64>,
}

impl State {
    /// Environment of the block the next transaction goes into.
    fn next_block(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number + 1),
            timestamp: U256::from(self.timestamp),
            gas_limit: GAS_LIMIT,
            ..BlockEnv::default()
        }
    }

    fn nonce(&self, address: Address) -> u64 {
        self.evm
            .ctx
            .journaled_state
            .database
            .basic_ref(address)
            .expect("in-memory database")
            .map_or(0, |a| a.nonce)
    }

    /// A transaction from `caller` with its next nonce and the whole gas limit.
    fn tx(&self, caller: Address, kind: TxKind, data: Bytes) -> TxEnv {
        TxEnv {
            caller,
            kind,
            data,
            nonce: self.nonce(caller),
            gas_limit: GAS_LIMIT,
            gas_price: 0,
            chain_id: Some(CHAIN_ID),
            ..TxEnv::default()
        }
    }

    /// Executes `tx` in the next block; commits it (mining that block) only if it succeeded.
    fn execute(&mut self, tx: TxEnv) -> Result<Executed, BackendError> {
        let block = self.next_block();
        self.evm.set_block(block);
        let out = self
            .evm
            .transact(tx)
            .map_err(|e| format!("transaction invalid: {e}"))?;
        if !out.result.is_success() {
            return Ok(Executed {
                result: out.result,
                block: None,
            });
        }
        self.evm.commit(out.state);
        self.number += 1;
        Ok(Executed {
            result: out.result,
            block: Some(self.number),
        })
    }

    /// Creates a contract from `from`; its address and block.
    fn create(&mut self, from: Address, init_code: Bytes) -> Result<(Address, u64), BackendError> {
        let tx = self.tx(from, TxKind::Create, init_code);
        match self.execute(tx)? {
            Executed {
                result:
                    ExecutionResult::Success {
                        output: Output::Create(_, Some(address)),
                        ..
                    },
                block: Some(block),
            } => Ok((address, block)),
            Executed { result, .. } => Err(format!("deployment reverted: {result:?}").into()),
        }
    }
}

impl Chain for RevmChain {
    fn chain_id(&self) -> u64 {
        CHAIN_ID
    }

    fn accounts(&self) -> &[PrivateKeySigner] {
        &self.accounts
    }

    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError> {
        let deployer = self.accounts[0].address();
        let mut state = self.state();
        let nonce = state.nonce(deployer);
        let mut plan = plan_suite(config, deployer, CHAIN_ID, nonce)?;
        for i in 0..plan.contracts.len() {
            let contract = &plan.contracts[i];
            let (address, block) = state
                .create(deployer, contract.init_code.clone())
                .map_err(|e| format!("{}: {e}", contract.name))?;
            plan.record(i, address, block)?;
        }
        Ok(plan.deployment)
    }

    fn code(&self, name: &str) -> Option<Bytes> {
        crate::evm::code(name)
    }

    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError> {
        Ok(self.state().create(from, init_code)?.0)
    }

    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError> {
        let mut state = self.state();
        let tx = state.tx(from, TxKind::Call(to), calldata);
        match state.execute(tx)?.result {
            ExecutionResult::Success { gas, logs, .. } => Ok(Outcome::Success {
                logs,
                gas_used: gas.tx_gas_used(),
            }),
            ExecutionResult::Revert { output, .. } => Ok(Outcome::Revert(output)),
            ExecutionResult::Halt { reason, .. } => {
                Err(format!("transaction halted: {reason:?}").into())
            }
        }
    }

    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        let mut state = self.state();
        let tx = TxEnv {
            gas_limit: gas,
            ..state.tx(from, TxKind::Call(to), calldata)
        };
        match state.execute(tx)?.result {
            ExecutionResult::Success { gas, logs, .. } => Ok(Outcome::Success {
                logs,
                gas_used: gas.tx_gas_used(),
            }),
            ExecutionResult::Revert { output, .. } => Ok(Outcome::Revert(output)),
            // Out of gas: a revert with no data, as the JSON-RPC backend reports it.
            ExecutionResult::Halt { .. } => Ok(Outcome::Revert(Bytes::new())),
        }
    }

    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError> {
        let mut state = self.state();
        // `eth_call` on the latest block from the zero address, as anvil answers the EVM backend.
        let block = BlockEnv {
            number: U256::from(state.number),
            ..state.next_block()
        };
        state.evm.set_block(block);
        let tx = state.tx(Address::ZERO, TxKind::Call(to), calldata);
        let out = state
            .evm
            .transact(tx)
            .map_err(|e| format!("call invalid: {e}"))?;
        match out.result {
            ExecutionResult::Success { output, .. } => Ok(Ok(output.into_data())),
            ExecutionResult::Revert { output, .. } => Ok(Err(output)),
            ExecutionResult::Halt { reason, .. } => Err(format!("call halted: {reason:?}").into()),
        }
    }

    async fn timestamp(&self) -> Result<u64, BackendError> {
        Ok(self.state().timestamp)
    }

    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError> {
        let mut state = self.state();
        state.timestamp += seconds;
        state.number += 1;
        Ok(())
    }

    async fn delegate(
        &self,
        account: &PrivateKeySigner,
        target: Address,
    ) -> Result<(), BackendError> {
        let mut state = self.state();
        let authorization = Authorization {
            chain_id: U256::from(CHAIN_ID),
            address: target,
            nonce: state.nonce(account.address()),
        };
        let signature = account.sign_hash_sync(&authorization.signature_hash())?;
        let sponsor = self.accounts[0].address();
        // Sent to the sponsor itself: a call into the delegated account would run the
        // delegate's code, which may have no fallback.
        let mut tx = state.tx(sponsor, TxKind::Call(sponsor), Bytes::new());
        tx.gas_priority_fee = Some(0);
        tx.set_signed_authorization(vec![authorization.into_signed(signature)]);
        tx.derive_tx_type()?;
        match state.execute(tx)?.result {
            ExecutionResult::Success { .. } => Ok(()),
            result => Err(format!("delegation reverted: {result:?}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, hex};

    use super::*;

    /// Init code of a contract whose code returns `address(this)` for any call.
    const RETURNS_ITS_ADDRESS: [u8; 20] = hex!("600980600b6000396000f330600052602060" "00f3");

    #[test]
    fn accounts_are_anvils() {
        let chain = RevmChain::new();
        let accounts = chain.accounts();
        assert_eq!(accounts.len(), 10);
        assert_eq!(
            accounts[0].address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            accounts[9].address(),
            address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
        );
    }

    #[tokio::test]
    async fn a_delegated_account_runs_the_target_code() {
        let chain = RevmChain::new();
        let [sponsor, account] = [0, 9].map(|i| chain.accounts()[i].clone());
        let target = chain
            .deploy_contract(sponsor.address(), RETURNS_ITS_ADDRESS.into())
            .await
            .unwrap();
        let before = chain.view(account.address(), Bytes::new()).await.unwrap();
        assert_eq!(before, Ok(Bytes::new()), "an EOA has no code");

        chain.delegate(&account, target).await.unwrap();

        let code = {
            let state = chain.state();
            let db = &state.evm.ctx.journaled_state.database;
            let info = db.basic_ref(account.address()).unwrap().unwrap();
            db.code_by_hash_ref(info.code_hash).unwrap()
        };
        assert_eq!(
            code.original_bytes(),
            Bytes::from([&[0xef, 0x01, 0x00][..], target.as_slice()].concat())
        );
        let answer = chain.view(account.address(), Bytes::new()).await.unwrap();
        assert_eq!(
            answer,
            Ok(Bytes::from(account.address().into_word().to_vec()))
        );
    }

    #[tokio::test]
    async fn a_revert_changes_nothing_and_blocks_follow_transactions() {
        let chain = RevmChain::new();
        let from = chain.accounts()[0].address();
        // Init code `PUSH1 0 PUSH1 0 REVERT`.
        let refused = chain.deploy_contract(from, hex!("60006000fd").into()).await;
        assert!(refused.is_err());
        let target = chain
            .deploy_contract(from, RETURNS_ITS_ADDRESS.into())
            .await
            .unwrap();
        assert_eq!(
            target,
            from.create(0),
            "the reverted creation used no nonce"
        );
        let t0 = chain.timestamp().await.unwrap();
        chain.advance_time(60).await.unwrap();
        assert_eq!(chain.timestamp().await.unwrap(), t0 + 60);
        assert_eq!(chain.state().number, 2);
    }
}
