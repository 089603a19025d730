//! How scenarios reach a chain. The scenarios only encode calls and decode results with the
//! ABI bindings; a backend only moves bytes. The EVM backends are anvil over JSON-RPC
//! ([`crate::evm`]) and revm in process ([`crate::revm`]); an ink!/pallet-revive backend
//! implements the same trait to run the same scenarios.

use alloy::{
    primitives::{Address, Bytes, Log},
    signers::local::PrivateKeySigner,
};
use openledger_chain::deploy::DeployConfig;
use openledger_primitives::deployment::Deployment;

/// What a state-changing call did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Executed; the logs it emitted and the gas it used.
    Success {
        /// Logs in emission order.
        logs: Vec<Log>,
        /// Gas used by the whole transaction.
        gas_used: u64,
    },
    /// Reverted with this revert data; the chain state is unchanged.
    Revert(Bytes),
}

/// Errors of a backend (not reverts: those are [`Outcome::Revert`]).
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// A chain the scenarios can drive.
#[allow(async_fn_in_trait)]
pub trait Chain {
    /// EIP-155 chain id (part of every EIP-712 domain).
    fn chain_id(&self) -> u64;
    /// Funded accounts with their keys; at least ten.
    fn accounts(&self) -> &[PrivateKeySigner];
    /// Deploys and wires a fresh suite from account 0.
    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError>;
    /// The creation code of the contract `name` in this backend's implementation (a suite
    /// contract such as `Settlement`, or a test contract: `TestWallet`, `ReentrantToken`), to
    /// which a scenario appends ABI-encoded constructor arguments; `None` if it has none.
    fn code(&self, name: &str) -> Option<Bytes>;
    /// Deploys one contract from raw init code (bytecode + constructor arguments).
    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError>;
    /// Sends a transaction from `from`; a revert is an [`Outcome`], not an error.
    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError>;
    /// [`Chain::send`] with the transaction's gas limit set to `gas` (no estimate): what a
    /// submitter that gives too little gas does. Running out of gas is a revert with no data.
    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError>;
    /// Executes a read-only call; `Err(data)` inside is a revert.
    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError>;
    /// Timestamp of the latest block.
    async fn timestamp(&self) -> Result<u64, BackendError>;
    /// Moves the chain clock forward and mines a block.
    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError>;
    /// Delegates the EOA `account` to the code at `target` (EIP-7702): an authorization signed
    /// with the account's key, carried by a type-4 transaction another account sends.
    async fn delegate(
        &self,
        account: &PrivateKeySigner,
        target: Address,
    ) -> Result<(), BackendError>;
}

impl<T: Chain> Chain for &T {
    fn chain_id(&self) -> u64 {
        (**self).chain_id()
    }
    fn accounts(&self) -> &[PrivateKeySigner] {
        (**self).accounts()
    }
    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError> {
        (**self).deploy_suite(config).await
    }
    fn code(&self, name: &str) -> Option<Bytes> {
        (**self).code(name)
    }
    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError> {
        (**self).deploy_contract(from, init_code).await
    }
    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError> {
        (**self).send(from, to, calldata).await
    }
    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        (**self).send_with_gas(from, to, calldata, gas).await
    }
    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError> {
        (**self).view(to, calldata).await
    }
    async fn timestamp(&self) -> Result<u64, BackendError> {
        (**self).timestamp().await
    }
    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError> {
        (**self).advance_time(seconds).await
    }
    async fn delegate(
        &self,
        account: &PrivateKeySigner,
        target: Address,
    ) -> Result<(), BackendError> {
        (**self).delegate(account, target).await
    }
}

/// A boxed future, as [`DynChain`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// [`Chain`] in object-safe form, implemented for every [`Chain`]: lets the scenario registry
/// hold one function per scenario ([`BoxChain`]) that any backend can run.
pub trait DynChain {
    /// [`Chain::chain_id`].
    fn chain_id(&self) -> u64;
    /// [`Chain::accounts`].
    fn accounts(&self) -> &[PrivateKeySigner];
    /// [`Chain::deploy_suite`].
    fn deploy_suite<'a>(
        &'a self,
        config: &'a DeployConfig,
    ) -> BoxFuture<'a, Result<Deployment, BackendError>>;
    /// [`Chain::code`].
    fn code(&self, name: &str) -> Option<Bytes>;
    /// [`Chain::deploy_contract`].
    fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> BoxFuture<'_, Result<Address, BackendError>>;
    /// [`Chain::send`].
    fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> BoxFuture<'_, Result<Outcome, BackendError>>;
    /// [`Chain::send_with_gas`].
    fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> BoxFuture<'_, Result<Outcome, BackendError>>;
    /// [`Chain::view`].
    fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> BoxFuture<'_, Result<Result<Bytes, Bytes>, BackendError>>;
    /// [`Chain::timestamp`].
    fn timestamp(&self) -> BoxFuture<'_, Result<u64, BackendError>>;
    /// [`Chain::advance_time`].
    fn advance_time(&self, seconds: u64) -> BoxFuture<'_, Result<(), BackendError>>;
    /// [`Chain::delegate`].
    fn delegate<'a>(
        &'a self,
        account: &'a PrivateKeySigner,
        target: Address,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

impl<T: Chain> DynChain for T {
    fn chain_id(&self) -> u64 {
        Chain::chain_id(self)
    }
    fn accounts(&self) -> &[PrivateKeySigner] {
        Chain::accounts(self)
    }
    fn deploy_suite<'a>(
        &'a self,
        config: &'a DeployConfig,
    ) -> BoxFuture<'a, Result<Deployment, BackendError>> {
        Box::pin(Chain::deploy_suite(self, config))
    }
    fn code(&self, name: &str) -> Option<Bytes> {
        Chain::code(self, name)
    }
    fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> BoxFuture<'_, Result<Address, BackendError>> {
        Box::pin(Chain::deploy_contract(self, from, init_code))
    }
    fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> BoxFuture<'_, Result<Outcome, BackendError>> {
        Box::pin(Chain::send(self, from, to, calldata))
    }
    fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> BoxFuture<'_, Result<Outcome, BackendError>> {
        Box::pin(Chain::send_with_gas(self, from, to, calldata, gas))
    }
    fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> BoxFuture<'_, Result<Result<Bytes, Bytes>, BackendError>> {
        Box::pin(Chain::view(self, to, calldata))
    }
    fn timestamp(&self) -> BoxFuture<'_, Result<u64, BackendError>> {
        Box::pin(Chain::timestamp(self))
    }
    fn advance_time(&self, seconds: u64) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(Chain::advance_time(self, seconds))
    }
    fn delegate<'a>(
        &'a self,
        account: &'a PrivateKeySigner,
        target: Address,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Chain::delegate(self, account, target))
    }
}

/// Any backend behind one type: what registered scenarios are run with.
pub struct BoxChain(Box<dyn DynChain>);

impl BoxChain {
    /// Wraps `chain`.
    pub fn new(chain: impl Chain + 'static) -> Self {
        Self(Box::new(chain))
    }
}

impl Chain for BoxChain {
    fn chain_id(&self) -> u64 {
        self.0.chain_id()
    }
    fn accounts(&self) -> &[PrivateKeySigner] {
        self.0.accounts()
    }
    async fn deploy_suite(&self, config: &DeployConfig) -> Result<Deployment, BackendError> {
        self.0.deploy_suite(config).await
    }
    fn code(&self, name: &str) -> Option<Bytes> {
        self.0.code(name)
    }
    async fn deploy_contract(
        &self,
        from: Address,
        init_code: Bytes,
    ) -> Result<Address, BackendError> {
        self.0.deploy_contract(from, init_code).await
    }
    async fn send(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
    ) -> Result<Outcome, BackendError> {
        self.0.send(from, to, calldata).await
    }
    async fn send_with_gas(
        &self,
        from: Address,
        to: Address,
        calldata: Bytes,
        gas: u64,
    ) -> Result<Outcome, BackendError> {
        self.0.send_with_gas(from, to, calldata, gas).await
    }
    async fn view(
        &self,
        to: Address,
        calldata: Bytes,
    ) -> Result<Result<Bytes, Bytes>, BackendError> {
        self.0.view(to, calldata).await
    }
    async fn timestamp(&self) -> Result<u64, BackendError> {
        self.0.timestamp().await
    }
    async fn advance_time(&self, seconds: u64) -> Result<(), BackendError> {
        self.0.advance_time(seconds).await
    }
    async fn delegate(
        &self,
        account: &PrivateKeySigner,
        target: Address,
    ) -> Result<(), BackendError> {
        self.0.delegate(account, target).await
    }
}
