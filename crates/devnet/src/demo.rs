//! The devnet's demo economy, set up with real transactions on the devnet's chain: a datanet
//! of real text (public-domain passages, accepted by its curator), a model on it whose base is
//! the GGUF the oracle runs, a staked operator serving it, and a funded user with a signed
//! voucher, printed as an API key.
//!
//! Dev accounts (anvil's well-known keys): 0 deploys, 1 is the operator, 2 owns and curates
//! the datanet, 3 contributes, 4 develops the model, 5 is the user.

use std::path::Path;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use openledger_primitives::{
    bindings::{DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement},
    deployment::Deployment,
    eip712::{SignedVoucher, Voucher, settlement_domain, sign_voucher},
};

use crate::{Error, Result};

/// The datanet's contributions: public-domain passages.
pub const CORPUS: &[(&str, &str)] = &[
    ("gettysburg.txt", include_str!("corpus/gettysburg.txt")),
    ("moby-dick.txt", include_str!("corpus/moby-dick.txt")),
    (
        "pride-and-prejudice.txt",
        include_str!("corpus/pride-and-prejudice.txt"),
    ),
];

/// One OPEN in wei.
pub const OPEN: u128 = 1_000_000_000_000_000_000;

/// What the demo sets up.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The model's price per 1,000 tokens, wei. Default 2 OPEN.
    pub price_per_1k: U256,
    /// What the user deposits for the operator. Default 100 OPEN.
    pub deposit: U256,
    /// The voucher's cumulative cap. Default 50 OPEN.
    pub voucher_cap: U256,
    /// The voucher's lifetime, seconds. Default 30 days.
    pub voucher_validity: u64,
    /// SHA-256 of the base model file (the model's `baseModelHash`).
    pub base_model_hash: B256,
}

/// The demo's actors and ids.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The datanet.
    pub datanet_id: U256,
    /// Its accepted contributions, in [`CORPUS`] order.
    pub contribution_ids: Vec<U256>,
    /// The model (served as `model-<id>`).
    pub model_id: U256,
    /// The operator key (dev account 1).
    pub operator: PrivateKeySigner,
    /// The datanet owner and curator (dev account 2).
    pub curator: PrivateKeySigner,
    /// The contributor (dev account 3).
    pub contributor: PrivateKeySigner,
    /// The model developer (dev account 4).
    pub developer: PrivateKeySigner,
    /// The user (dev account 5).
    pub user: PrivateKeySigner,
    /// The user's voucher.
    pub voucher: SignedVoucher,
    /// It as an API key.
    pub api_key: String,
}

/// A provider sending from `key`.
pub fn wallet(rpc_url: &str, key: &PrivateKeySigner) -> Result<DynProvider> {
    let url = rpc_url
        .parse()
        .map_err(|e| Error::Demo(format!("RPC URL: {e}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased())
}

/// Sends a contract call and waits for a successful receipt.
macro_rules! send {
    ($what:expr, $call:expr) => {{
        let receipt = $call
            .send()
            .await
            .map_err(|e| Error::Demo(format!("{}: {e}", $what)))?
            .get_receipt()
            .await
            .map_err(|e| Error::Demo(format!("{}: {e}", $what)))?;
        if !receipt.status() {
            return Err(Error::Demo(format!("{} reverted", $what)));
        }
        receipt
    }};
}

/// The commitment `commitContribution` takes for `content` by `author`.
pub fn commitment(author: Address, datanet: U256, content_hash: B256, salt: B256) -> B256 {
    keccak256((author, datanet, content_hash, salt).abi_encode_params())
}

/// Adds `content` to `datanet` as `contributor` (commit, then reveal in a later block), with
/// its URI a `file://` path under `content_dir` (where it is written, named by its hash), and
/// accepts it as `curator`; returns its id.
pub async fn contribute(
    rpc_url: &str,
    deployment: &Deployment,
    curator: &PrivateKeySigner,
    contributor: &PrivateKeySigner,
    datanet: U256,
    content: &str,
    content_dir: &Path,
) -> Result<U256> {
    let hash = keccak256(content.as_bytes());
    std::fs::create_dir_all(content_dir).map_err(|e| Error::Demo(format!("content dir: {e}")))?;
    let path = content_dir.join(alloy::hex::encode(hash));
    std::fs::write(&path, content).map_err(|e| Error::Demo(format!("content file: {e}")))?;
    let tokens = content.split_whitespace().count() as u64;
    let uri = format!("file://{}", path.display());
    register_contribution(
        rpc_url,
        deployment,
        curator,
        contributor,
        datanet,
        hash,
        tokens,
        &uri,
    )
    .await
}

/// Registers and accepts a contribution of `content_hash` at `uri` (on chain only: the
/// content is wherever `uri` says); returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn register_contribution(
    rpc_url: &str,
    deployment: &Deployment,
    curator: &PrivateKeySigner,
    contributor: &PrivateKeySigner,
    datanet: U256,
    content_hash: B256,
    tokens: u64,
    uri: &str,
) -> Result<U256> {
    let salt = keccak256(format!("demo salt {content_hash}"));
    let by_contributor = wallet(rpc_url, contributor)?;
    let datanets = DatanetRegistry::new(deployment.contracts.datanets, &by_contributor);
    send!(
        "commitContribution",
        datanets.commitContribution(commitment(
            contributor.address(),
            datanet,
            content_hash,
            salt
        ))
    );
    send!(
        "addContribution",
        datanets.addContribution(
            datanet,
            content_hash,
            tokens,
            uri.to_string(),
            U256::ZERO,
            salt
        )
    );
    let id = datanets
        .contributionCount()
        .call()
        .await
        .map_err(|e| Error::Demo(format!("contributionCount: {e}")))?;
    let by_curator = wallet(rpc_url, curator)?;
    send!(
        "acceptContribution",
        DatanetRegistry::new(deployment.contracts.datanets, &by_curator).acceptContribution(id)
    );
    Ok(id)
}

/// Sets up the demo economy on the devnet's chain; `keys` are the dev accounts, in order;
/// contribution content goes to `content_dir` (the oracle's content store).
pub async fn provision(
    rpc_url: &str,
    deployment: &Deployment,
    keys: &[PrivateKeySigner],
    content_dir: &Path,
    config: &DemoConfig,
) -> Result<Demo> {
    if keys.len() < 6 {
        return Err(Error::Demo(format!(
            "the demo needs 6 dev accounts, the devnet has {}",
            keys.len()
        )));
    }
    let [deployer, operator, curator, contributor, developer, user] =
        std::array::from_fn(|i| keys[i].clone());
    let c = &deployment.contracts;
    let by_deployer = wallet(rpc_url, &deployer)?;
    let token = OpenToken::new(c.token, &by_deployer);
    let min_stake = OperatorRegistry::new(c.operators, &by_deployer)
        .minStake()
        .call()
        .await
        .map_err(|e| Error::Demo(format!("minStake: {e}")))?;
    send!(
        "fund operator",
        token.transfer(operator.address(), min_stake)
    );
    send!("fund user", token.transfer(user.address(), config.deposit));

    // The operator stakes and registers its signer (its own key).
    let by_operator = wallet(rpc_url, &operator)?;
    send!(
        "approve stake",
        OpenToken::new(c.token, &by_operator).approve(c.operators, min_stake)
    );
    let operators = OperatorRegistry::new(c.operators, &by_operator);
    send!("stake", operators.stake(min_stake));
    send!("setSigner", operators.setSigner(operator.address()));

    // A datanet of real text.
    let by_curator = wallet(rpc_url, &curator)?;
    let datanets = DatanetRegistry::new(c.datanets, &by_curator);
    send!(
        "createDatanet",
        datanets.createDatanet("openledger demo: public-domain passages".into(), 1)
    );
    let datanet_id = datanets
        .datanetCount()
        .call()
        .await
        .map_err(|e| Error::Demo(format!("datanetCount: {e}")))?;
    let mut contribution_ids = Vec::new();
    for (_, text) in CORPUS {
        contribution_ids.push(
            contribute(
                rpc_url,
                deployment,
                &curator,
                &contributor,
                datanet_id,
                text,
                content_dir,
            )
            .await?,
        );
    }

    // The model: the oracle's GGUF itself (adapter hash zero), on that datanet.
    let by_developer = wallet(rpc_url, &developer)?;
    let models = ModelRegistry::new(c.models, &by_developer);
    send!(
        "registerModel",
        models.registerModel(
            vec![datanet_id],
            config.base_model_hash,
            B256::ZERO,
            String::new(),
            config.price_per_1k
        )
    );
    let model_id = models
        .modelCount()
        .call()
        .await
        .map_err(|e| Error::Demo(format!("modelCount: {e}")))?;
    send!("setServing", operators.setServing(model_id, true));

    // The user deposits for the operator and signs a voucher.
    let by_user = wallet(rpc_url, &user)?;
    send!(
        "approve deposit",
        OpenToken::new(c.token, &by_user).approve(c.settlement, config.deposit)
    );
    send!(
        "deposit",
        Settlement::new(c.settlement, &by_user).deposit(operator.address(), config.deposit)
    );
    let now = by_user
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|e| Error::Demo(format!("latest block: {e}")))?
        .map(|b| b.header.timestamp)
        .unwrap_or_default();
    let voucher = Voucher {
        user: user.address(),
        operator: operator.address(),
        modelId: model_id,
        cumulativeCap: config.voucher_cap,
        expiry: now + config.voucher_validity,
        nonce: 0,
    };
    let domain = settlement_domain(deployment.chain_id, c.settlement);
    let voucher = sign_voucher(&user, &domain, &voucher)
        .await
        .map_err(|e| Error::Demo(format!("signing the voucher: {e}")))?;
    let api_key = openledger_billing::voucher::encode_api_key(&voucher);
    Ok(Demo {
        datanet_id,
        contribution_ids,
        model_id,
        operator,
        curator,
        contributor,
        developer,
        user,
        voucher,
        api_key,
    })
}
