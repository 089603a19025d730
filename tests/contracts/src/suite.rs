//! A deployed suite plus typed helpers: send a `sol!` call, expect success or a specific
//! revert, read views, find events. Everything goes through [`Chain`], so scenarios written
//! against [`Suite`] run on any backend.

use alloy::{
    primitives::{Address, Bytes, U256},
    signers::local::PrivateKeySigner,
    sol_types::{Eip712Domain, SolCall, SolError, SolEvent},
};
use openledger_chain::deploy::{DeployConfig, OPEN};
use openledger_primitives::{deployment::Deployment, eip712::settlement_domain};

use crate::backend::{Chain, Outcome};

/// `amount` whole OPEN in wei.
pub fn open(amount: u64) -> U256 {
    U256::from(amount) * U256::from(OPEN)
}

/// Named accounts every scenario uses (indices into the backend's accounts).
#[derive(Debug, Clone)]
pub struct Actors {
    /// Deployer, governance and holder of the whole supply.
    pub governance: PrivateKeySigner,
    /// Protocol treasury.
    pub treasury: PrivateKeySigner,
    /// Owns (and so curates) the scenarios' datanet.
    pub curator: PrivateKeySigner,
    /// First data contributor.
    pub alice: PrivateKeySigner,
    /// Second data contributor.
    pub bob: PrivateKeySigner,
    /// Model developer.
    pub developer: PrivateKeySigner,
    /// Oracle operator account (stakes, receives the operator share).
    pub operator: PrivateKeySigner,
    /// The operator's batch-signing key.
    pub operator_key: PrivateKeySigner,
    /// First inference user.
    pub carol: PrivateKeySigner,
    /// Second inference user.
    pub dave: PrivateKeySigner,
}

/// A deployed suite on some chain.
pub struct Suite<C> {
    /// The backend.
    pub chain: C,
    /// Addresses and parameters.
    pub deployment: Deployment,
    /// The settlement contract's EIP-712 domain.
    pub domain: Eip712Domain,
    /// The cast.
    pub actors: Actors,
}

impl<C: Chain> Suite<C> {
    /// Deploys the suite with default parameters, account 0 as governance and account 1 as
    /// treasury.
    pub async fn deploy(chain: C) -> Self {
        let a = chain.accounts();
        let actors = Actors {
            governance: a[0].clone(),
            treasury: a[1].clone(),
            curator: a[2].clone(),
            alice: a[3].clone(),
            bob: a[4].clone(),
            developer: a[5].clone(),
            operator: a[6].clone(),
            operator_key: a[7].clone(),
            carol: a[8].clone(),
            dave: a[9].clone(),
        };
        let config = DeployConfig {
            treasury: Some(actors.treasury.address()),
            ..DeployConfig::default()
        };
        let deployment = chain.deploy_suite(&config).await.expect("suite deploys");
        let domain = settlement_domain(chain.chain_id(), deployment.contracts.settlement);
        Self {
            chain,
            deployment,
            domain,
            actors,
        }
    }

    /// Token address.
    pub fn token(&self) -> Address {
        self.deployment.contracts.token
    }
    /// Datanet registry address.
    pub fn datanets(&self) -> Address {
        self.deployment.contracts.datanets
    }
    /// Model registry address.
    pub fn models(&self) -> Address {
        self.deployment.contracts.models
    }
    /// Operator registry address.
    pub fn operators(&self) -> Address {
        self.deployment.contracts.operators
    }
    /// Settlement address.
    pub fn settlement(&self) -> Address {
        self.deployment.contracts.settlement
    }

    /// Sends `call` from `from` to `to`.
    pub async fn send<T: SolCall>(&self, from: &PrivateKeySigner, to: Address, call: T) -> Outcome {
        self.chain
            .send(from.address(), to, Bytes::from(call.abi_encode()))
            .await
            .expect("backend works")
    }

    /// Sends `call` with the gas limit `gas`.
    pub async fn send_with_gas<T: SolCall>(
        &self,
        from: &PrivateKeySigner,
        to: Address,
        call: T,
        gas: u64,
    ) -> Outcome {
        self.chain
            .send_with_gas(from.address(), to, Bytes::from(call.abi_encode()), gas)
            .await
            .expect("backend works")
    }

    /// Sends `call` and expects it to succeed; returns its logs.
    pub async fn ok<T: SolCall>(&self, from: &PrivateKeySigner, to: Address, call: T) -> Receipt {
        match self.send(from, to, call).await {
            Outcome::Revert(data) => {
                panic!("{} reverted: {}", T::SIGNATURE, describe_revert(&data))
            }
            success => Receipt::of(success),
        }
    }

    /// Sends `call` and expects it to revert with error `E`; returns the decoded error.
    pub async fn reverts<T: SolCall, E: SolError>(
        &self,
        from: &PrivateKeySigner,
        to: Address,
        call: T,
    ) -> E {
        match self.send(from, to, call).await {
            Outcome::Revert(data) => E::abi_decode(&data).unwrap_or_else(|_| {
                panic!(
                    "{} reverted with {}, expected {}",
                    T::SIGNATURE,
                    describe_revert(&data),
                    E::SIGNATURE
                )
            }),
            Outcome::Success { .. } => panic!(
                "{} succeeded, expected revert {}",
                T::SIGNATURE,
                E::SIGNATURE
            ),
        }
    }

    /// Calls a view.
    pub async fn view<T: SolCall>(&self, to: Address, call: T) -> T::Return {
        match self
            .chain
            .view(to, Bytes::from(call.abi_encode()))
            .await
            .expect("backend works")
        {
            Ok(data) => T::abi_decode_returns(&data).expect("view returns decode"),
            Err(data) => panic!("view {} reverted: {}", T::SIGNATURE, describe_revert(&data)),
        }
    }

    /// Expects a view to revert with `E`.
    pub async fn view_reverts<T: SolCall, E: SolError>(&self, to: Address, call: T) -> E {
        match self
            .chain
            .view(to, Bytes::from(call.abi_encode()))
            .await
            .expect("backend works")
        {
            Ok(_) => panic!("view {} succeeded, expected {}", T::SIGNATURE, E::SIGNATURE),
            Err(data) => E::abi_decode(&data)
                .unwrap_or_else(|_| panic!("view reverted with {}", describe_revert(&data))),
        }
    }

    /// Latest block timestamp.
    pub async fn now(&self) -> u64 {
        self.chain.timestamp().await.expect("backend works")
    }

    /// Moves time forward.
    pub async fn advance(&self, seconds: u64) {
        self.chain
            .advance_time(seconds)
            .await
            .expect("backend works")
    }
}

/// Logs and gas of a successful call.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Logs in order.
    pub logs: Vec<alloy::primitives::Log>,
    /// Gas used.
    pub gas_used: u64,
}

impl Receipt {
    /// The receipt of a successful outcome; panics on a revert.
    pub fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success { logs, gas_used } => Self { logs, gas_used },
            Outcome::Revert(data) => panic!("reverted: {}", describe_revert(&data)),
        }
    }

    /// All events of type `E` emitted by `emitter`, decoded.
    pub fn events<E: SolEvent>(&self, emitter: Address) -> Vec<E> {
        self.logs
            .iter()
            .filter(|l| l.address == emitter && l.topics().first() == Some(&E::SIGNATURE_HASH))
            .map(|l| E::decode_log_data(&l.data).expect("event decodes"))
            .collect()
    }

    /// The single event of type `E` emitted by `emitter`.
    pub fn event<E: SolEvent>(&self, emitter: Address) -> E {
        let mut all = self.events::<E>(emitter);
        assert_eq!(all.len(), 1, "expected exactly one {} event", E::SIGNATURE);
        all.remove(0)
    }
}

/// Human-readable revert data: the decoded error of any suite contract, or hex.
pub fn describe_revert(data: &[u8]) -> String {
    use alloy::sol_types::SolInterface;
    use openledger_primitives::bindings::{
        DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement,
    };
    if let Ok(e) = Settlement::SettlementErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = DatanetRegistry::DatanetRegistryErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = ModelRegistry::ModelRegistryErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = OperatorRegistry::OperatorRegistryErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = OpenToken::OpenTokenErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    format!("0x{}", alloy::primitives::hex::encode(data))
}
