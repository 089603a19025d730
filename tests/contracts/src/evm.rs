//! The EVM backend: a fresh anvil (npm `@foundry-rs/anvil-linux-amd64`) on a free port, reached
//! over JSON-RPC with alloy. Each state-changing call is first simulated with `eth_call` to get
//! revert data (then nothing is sent, so state is untouched), else sent and mined.

use alloy::{
    eips::eip7702::Authorization,
    network::{EthereumWallet, TransactionBuilder, TransactionBuilder7702},
    node_bindings::AnvilInstance,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
};
use openledger_chain::{
    anvil::spawn_anvil,
    deploy::{DeployConfig, deploy_suite},
};
use openledger_primitives::deployment::Deployment;

use crate::backend::{BackendError, Chain, Outcome};

/// Chain id the EVM backend's anvil runs with.
pub const CHAIN_ID: u64 = 31337;

/// The Solidity implementation's creation bytecode of contract `name` (`contracts/evm/out`):
/// what both EVM backends deploy.
pub fn code(name: &str) -> Option<Bytes> {
    use openledger_primitives::bindings::{
        DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, ReentrantToken, Settlement,
        TestWallet,
    };
    Some(match name {
        "OpenToken" => OpenToken::BYTECODE.clone(),
        "DatanetRegistry" => DatanetRegistry::BYTECODE.clone(),
        "ModelRegistry" => ModelRegistry::BYTECODE.clone(),
        "OperatorRegistry" => OperatorRegistry::BYTECODE.clone(),
        "Settlement" => Settlement::BYTECODE.clone(),
        "TestWallet" => TestWallet::BYTECODE.clone(),
        "ReentrantToken" => ReentrantToken::BYTECODE.clone(),
        _ => return None,
    })
}

/// A private anvil node and a provider that can sign for all its accounts.
pub struct AnvilChain {
    provider: DynProvider,
    accounts: Vec<PrivateKeySigner>,
    _anvil: AnvilInstance,
}

impl AnvilChain {
    /// Starts anvil with its ten default accounts.
    pub async fn start() -> Self {
        Self::with_accounts(10).await
    }

    /// Starts anvil with `n` funded accounts.
    pub async fn with_accounts(n: usize) -> Self {
        let anvil = spawn_anvil(None, CHAIN_ID, n).expect("anvil starts (run `npm ci` first)");
        let accounts: Vec<PrivateKeySigner> =
            anvil.keys().iter().cloned().map(Into::into).collect();
        let mut wallet = EthereumWallet::from(accounts[0].clone());
        for signer in &accounts[1..] {
            wallet.register_signer(signer.clone());
        }
        let provider = ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(anvil.endpoint_url())
            .erased();
        Self {
            provider,
            accounts,
            _anvil: anvil,
        }
    }

    /// The underlying provider (for backend-specific checks).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }
}

impl Chain for AnvilChain {
    fn chain_id(&self) -> u64 {
        CHAIN_ID
    }

    fn accounts(&self) -> &[PrivateKeySigner] {
        &self.accounts
    }

    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError> {
        Ok(deploy_suite(&self.provider, self.accounts[0].address(), config).await?)
    }

    fn code(&self, name: &str) -> Option<Bytes> {
        code(name)
    }

    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_deploy_code(init_code);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        receipt
            .contract_address
            .ok_or_else(|| "deployment reverted".into())
    }

    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(calldata);
        if let Err(err) = self.provider.call(tx.clone()).await {
            let data = err
                .as_error_resp()
                .and_then(|e| e.as_revert_data())
                .ok_or(err)?;
            return Ok(Outcome::Revert(data));
        }
        let gas = self.provider.estimate_gas(tx.clone()).await?;
        let receipt = self
            .provider
            .send_transaction(tx.with_gas_limit(gas + gas / 5))
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            return Err(format!(
                "transaction {} reverted after a successful simulation",
                receipt.transaction_hash
            )
            .into());
        }
        Ok(success(&receipt))
    }

    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(calldata)
            .with_gas_limit(gas);
        if let Err(err) = self.provider.call(tx.clone()).await {
            // A revert carries its data; running out of gas carries none.
            let data = err
                .as_error_resp()
                .and_then(|e| e.as_revert_data())
                .unwrap_or_default();
            return Ok(Outcome::Revert(data));
        }
        let receipt = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            return Ok(Outcome::Revert(Bytes::new()));
        }
        Ok(success(&receipt))
    }

    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(calldata);
        match self.provider.call(tx).await {
            Ok(data) => Ok(Ok(data)),
            Err(err) => match err.as_error_resp().and_then(|e| e.as_revert_data()) {
                Some(data) => Ok(Err(data)),
                None => Err(err.into()),
            },
        }
    }

    async fn timestamp(&self) -> Result<u64, BackendError> {
        let block = self
            .provider
            .get_block_by_number(Default::default())
            .await?
            .ok_or("no latest block")?;
        Ok(block.header.timestamp)
    }

    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError> {
        self.provider.anvil_increase_time(seconds).await?;
        self.provider.anvil_mine(Some(1), None).await?;
        Ok(())
    }

    async fn delegate(
        &self,
        account: &PrivateKeySigner,
        target: Address,
    ) -> Result<(), BackendError> {
        let nonce = self
            .provider
            .get_transaction_count(account.address())
            .await?;
        let authorization = Authorization {
            chain_id: U256::from(CHAIN_ID),
            address: target,
            nonce,
        };
        let signature = account.sign_hash_sync(&authorization.signature_hash())?;
        let sponsor = self.accounts[0].address();
        // Sent to the sponsor itself: a call into the delegated account would run the
        // delegate's code, which may have no fallback.
        let tx = TransactionRequest::default()
            .with_from(sponsor)
            .with_to(sponsor)
            .with_authorization_list(vec![authorization.into_signed(signature)]);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            return Err(format!("delegation {} reverted", receipt.transaction_hash).into());
        }
        Ok(())
    }
}

/// A mined, successful transaction as an [`Outcome`].
fn success(receipt: &alloy::rpc::types::TransactionReceipt) -> Outcome {
    Outcome::Success {
        logs: receipt
            .inner
            .logs()
            .iter()
            .map(|l| l.inner.clone())
            .collect(),
        gas_used: receipt.gas_used,
    }
}
