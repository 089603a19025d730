//! The oracle's view of the chain: the reads it serves against (escrow, caps, revocations,
//! ERC-1271 signatures, models, contributions), the batch terms it signs under, and posting
//! `settleBatch` and reading back what the chain settled.
//!
//! Every read is a fresh `eth_call` at the latest block; nothing is cached here (the catalog
//! and the attribution follower keep their own state from the registries' events).

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, FixedBytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{Eip712Domain, SolEvent},
};
use openledger_billing::{batch::SignedBatch as SignedPlan, voucher::ChainFacts};
use openledger_primitives::{
    bindings::{DatanetRegistry, ModelRegistry, OperatorRegistry, Settlement},
    deployment::Deployment,
    eip712::settlement_domain,
    split::SplitPolicy,
};

use crate::error::{Error, Result};
use crate::journal::{Settled, SkippedDebit};

sol! {
    /// ERC-1271: what a smart-contract wallet answers for a signature it accepts.
    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
    }
}

/// Gas for the node's ERC-1271 `eth_call`: the contract's 50,000 stipend plus the call's own
/// intrinsic (21,000) and calldata costs.
const WALLET_CALL_GAS: u64 = 100_000;

/// `IERC1271.isValidSignature.selector`: the answer that means "valid".
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// A model as the registries describe it, at its latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFacts {
    /// The model.
    pub id: U256,
    /// Its developer.
    pub developer: Address,
    /// Whether it is active.
    pub active: bool,
    /// Its latest version.
    pub version: u32,
    /// Price per 1,000 tokens, wei.
    pub price_per_1k: U256,
    /// SHA-256 of the base model (GGUF) file it fine-tunes.
    pub base_model_hash: B256,
    /// SHA-256 of the latest version's adapter file (zero: the base model itself).
    pub adapter_hash: B256,
    /// Its lineage datanets, ascending.
    pub datanets: Vec<U256>,
    /// Whether this operator serves it on chain (`serves(operator, id)`).
    pub served: bool,
}

/// A contribution as the datanet registry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributionFacts {
    /// The contribution.
    pub id: U256,
    /// Its datanet.
    pub datanet_id: U256,
    /// `ContributionStatus` as its number.
    pub status: u8,
    /// keccak256 of the raw content.
    pub content_hash: B256,
    /// Where the content may be fetched.
    pub uri: String,
}

/// The chain, as this operator's node sees it.
#[derive(Debug, Clone)]
pub struct ChainClient {
    provider: DynProvider,
    deployment: Deployment,
    operator: Address,
    domain: Eip712Domain,
}

impl ChainClient {
    /// Connects to `rpc_url` with `operator_key` as the sending (operator) account, and checks
    /// the node is on the manifest's chain.
    pub async fn connect(
        rpc_url: &str,
        deployment: Deployment,
        operator_key: PrivateKeySigner,
    ) -> Result<Self> {
        let operator = operator_key.address();
        let url = rpc_url.parse().map_err(|e| Error::Config {
            reason: format!("RPC URL {rpc_url:?}: {e}"),
        })?;
        // The operator's account also sends transactions of its own (stake, serve lists), so
        // each batch takes its nonce from the node's pending count: alloy's default manager
        // caches the count at the first transaction and then sends used (or, after a failed
        // send, skipped) nonces for ever.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(deployment.chain_id)
            .wallet(EthereumWallet::from(operator_key))
            .connect_http(url)
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(rpc("eth_chainId"))?;
        if chain_id != deployment.chain_id {
            return Err(Error::Config {
                reason: format!(
                    "{rpc_url} is chain {chain_id}, but the manifest's suite is on chain {}",
                    deployment.chain_id
                ),
            });
        }
        let domain = settlement_domain(deployment.chain_id, deployment.contracts.settlement);
        Ok(Self {
            provider,
            deployment,
            operator,
            domain,
        })
    }

    /// This node's operator account.
    pub fn operator(&self) -> Address {
        self.operator
    }

    /// The settlement contract's EIP-712 domain.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// The deployment manifest.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The provider (for tests and tools).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn settlement(&self) -> Settlement::SettlementInstance<&DynProvider> {
        Settlement::new(self.deployment.contracts.settlement, &self.provider)
    }

    fn models(&self) -> ModelRegistry::ModelRegistryInstance<&DynProvider> {
        ModelRegistry::new(self.deployment.contracts.models, &self.provider)
    }

    fn datanets(&self) -> DatanetRegistry::DatanetRegistryInstance<&DynProvider> {
        DatanetRegistry::new(self.deployment.contracts.datanets, &self.provider)
    }

    fn operators(&self) -> OperatorRegistry::OperatorRegistryInstance<&DynProvider> {
        OperatorRegistry::new(self.deployment.contracts.operators, &self.provider)
    }

    /// The chain facts a voucher of `user` for `model_id` is authorised against.
    pub async fn facts(&self, user: Address, model_id: U256) -> Result<ChainFacts> {
        let settlement = self.settlement();
        let revocation = settlement.voucherRevocation(user);
        let spent = settlement.spent(user, self.operator, model_id);
        let guaranteed = settlement.guaranteed(user, self.operator);
        let (revocation, spent, guaranteed) =
            tokio::try_join!(revocation.call(), spent.call(), guaranteed.call())
                .map_err(rpc("Settlement views"))?;
        Ok(ChainFacts {
            min_nonce: revocation.minNonce.max(revocation.pendingMinNonce),
            spent,
            guaranteed,
        })
    }

    /// Whether `wallet` is a contract that accepts `signature` over `digest` (ERC-1271). An
    /// account without code, a revert or any other answer is "no".
    pub async fn erc1271_accepts(&self, wallet: Address, digest: B256, signature: Bytes) -> bool {
        match self.provider.get_code_at(wallet).await {
            Ok(code) if !code.is_empty() => {}
            _ => return false,
        }
        // Bounded like the contract's check (`WALLET_CHECK_GAS` = 50,000 for the wallet, plus
        // the call's own intrinsic and calldata gas): a wallet that burns gas is a "no".
        let answer = IERC1271::new(wallet, &self.provider)
            .isValidSignature(digest, signature)
            .gas(WALLET_CALL_GAS)
            .call()
            .await;
        matches!(answer, Ok(magic) if magic == FixedBytes(ERC1271_MAGIC))
    }

    /// The batch signer the operator registry holds for this operator.
    pub async fn signer_of(&self) -> Result<Address> {
        self.operators()
            .signerOf(self.operator)
            .call()
            .await
            .map_err(rpc("signerOf"))
    }

    /// The number of registered models (ids are `1..=count`).
    pub async fn model_count(&self) -> Result<u64> {
        let n = self
            .models()
            .modelCount()
            .call()
            .await
            .map_err(rpc("modelCount"))?;
        Ok(n.saturating_to())
    }

    /// Everything the node needs about model `id`.
    pub async fn model(&self, id: U256) -> Result<ModelFacts> {
        let models = self.models();
        let model = models.getModel(id).call().await.map_err(rpc("getModel"))?;
        let version = models
            .getVersion(id, model.latestVersion)
            .call()
            .await
            .map_err(rpc("getVersion"))?;
        let datanets = models
            .modelDatanets(id)
            .call()
            .await
            .map_err(rpc("modelDatanets"))?;
        let served = self
            .operators()
            .serves(self.operator, id)
            .call()
            .await
            .map_err(rpc("serves"))?;
        Ok(ModelFacts {
            id,
            developer: model.developer,
            active: model.active,
            version: model.latestVersion,
            price_per_1k: model.pricePer1kTokens,
            base_model_hash: model.baseModelHash,
            adapter_hash: version.adapterHash,
            datanets,
            served,
        })
    }

    /// The number of contributions (ids are `1..=count`).
    pub async fn contribution_count(&self) -> Result<u64> {
        let n = self
            .datanets()
            .contributionCount()
            .call()
            .await
            .map_err(rpc("contributionCount"))?;
        Ok(n.saturating_to())
    }

    /// Contribution `id`.
    pub async fn contribution(&self, id: U256) -> Result<ContributionFacts> {
        let c = self
            .datanets()
            .getContribution(id)
            .call()
            .await
            .map_err(rpc("getContribution"))?;
        Ok(ContributionFacts {
            id,
            datanet_id: c.datanetId,
            status: c.status as u8,
            content_hash: c.contentHash,
            uri: c.uri,
        })
    }

    /// The latest block's number and timestamp.
    pub async fn head(&self) -> Result<(u64, u64)> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| Error::Rpc {
                call: "eth_getBlockByNumber",
                reason: "no latest block".into(),
            })?;
        Ok((block.header.number, block.header.timestamp))
    }

    /// Logs of `address` in `[from, to]`.
    pub async fn logs(&self, address: Vec<Address>, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new().address(address).from_block(from).to_block(to);
        self.provider
            .get_logs(&filter)
            .await
            .map_err(rpc("eth_getLogs"))
    }

    /// The terms of this operator's next batch: `lastSequence + 1`, the current policy epoch
    /// and its policy.
    pub async fn next_batch(&self) -> Result<(u64, u32, SplitPolicy)> {
        let settlement = self.settlement();
        let last = settlement
            .lastSequence(self.operator)
            .call()
            .await
            .map_err(rpc("lastSequence"))?;
        let epoch = settlement
            .currentEpoch()
            .call()
            .await
            .map_err(rpc("currentEpoch"))?;
        let policy = settlement
            .splitPolicyOf(epoch)
            .call()
            .await
            .map_err(rpc("splitPolicyOf"))?
            .policy
            .into();
        Ok((last + 1, epoch, policy))
    }

    /// This operator's last settled sequence number on chain.
    pub async fn last_sequence(&self) -> Result<u64> {
        self.settlement()
            .lastSequence(self.operator)
            .call()
            .await
            .map_err(rpc("lastSequence"))
    }

    /// Sends `settleBatch` for `batch` (gas estimated by the provider, nonce managed by the
    /// node); returns the transaction hash once the node accepted it.
    pub async fn send(&self, batch: &SignedPlan) -> Result<B256> {
        let call = batch.call();
        let pending = self
            .settlement()
            .settleBatch(call.batch, call.operatorSignature, call.vouchers)
            .send()
            .await
            .map_err(|e| Error::Post(e.to_string()))?;
        Ok(*pending.tx_hash())
    }

    /// Waits up to `timeout` for transaction `tx` to be mined; `Some(success)` once it is.
    pub async fn wait(&self, tx: B256, timeout: Duration) -> Result<Option<bool>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let receipt = self
                .provider
                .get_transaction_receipt(tx)
                .await
                .map_err(rpc("eth_getTransactionReceipt"))?;
            if let Some(r) = receipt {
                return Ok(Some(r.status()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the chain says settled batch `sequence` of this operator, searching from
    /// `from_block`: its `BatchSettled` event and the `DebitSkipped` events of that transaction.
    pub async fn settlement_of(&self, sequence: u64, from_block: u64) -> Result<Option<Settled>> {
        let settlement = self.deployment.contracts.settlement;
        let operator_topic = B256::left_padding_from(self.operator.as_slice());
        let sequence_topic = B256::from(U256::from(sequence));
        let filter = Filter::new()
            .address(settlement)
            .event_signature(Settlement::BatchSettled::SIGNATURE_HASH)
            .topic1(operator_topic)
            .topic2(sequence_topic)
            .from_block(from_block);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(rpc("eth_getLogs"))?;
        let Some(log) = logs.into_iter().find(|l| !l.removed) else {
            return Ok(None);
        };
        let (Some(tx), Some(block)) = (log.transaction_hash, log.block_number) else {
            return Ok(None);
        };
        let event = Settlement::BatchSettled::decode_log_data(log.data())
            .map_err(|e| Error::Post(format!("undecodable BatchSettled: {e}")))?;
        let skipped_filter = Filter::new()
            .address(settlement)
            .event_signature(Settlement::DebitSkipped::SIGNATURE_HASH)
            .topic1(operator_topic)
            .topic2(sequence_topic)
            .from_block(block)
            .to_block(block);
        let skipped = self
            .provider
            .get_logs(&skipped_filter)
            .await
            .map_err(rpc("eth_getLogs"))?
            .into_iter()
            .filter(|l| l.transaction_hash == Some(tx))
            .filter_map(|l| Settlement::DebitSkipped::decode_log_data(l.data()).ok())
            .map(|e| SkippedDebit {
                user: e.user,
                model_id: e.modelId,
                amount: e.amount,
                reason: e.reason,
            })
            .collect();
        Ok(Some(Settled {
            sequence,
            tx,
            block,
            collected: event.totalCharged,
            debits_collected: event.collected.saturating_to(),
            skipped,
        }))
    }
}

/// Maps a transport or contract error of `call` to [`Error::Rpc`].
fn rpc<E: std::fmt::Display>(call: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Rpc {
        call,
        reason: e.to_string(),
    }
}
