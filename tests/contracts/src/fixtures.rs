//! A populated suite most scenarios start from, and batches built by the oracle's builder.
//!
//! The world: datanet 1 owned (curated) by `curator`, needing 2 accepted contributions;
//! contributions 1 (alice) and 2 (bob) accepted, 3 (alice) pending; model 1 by `developer` on
//! datanet 1 at 2 OPEN per 1k tokens; `operator` staked at the minimum with `operator_key` as
//! signer, serving model 1; `carol` and `dave` hold 1,000 OPEN each and deposited 500.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use openledger_billing::{
    AttributionWeight, Receipt,
    batch::{self, BatchTerms, Billed},
};
use openledger_primitives::{
    bindings::{DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement},
    eip712::{Batch, SignedVoucher, Voucher, sign_batch, sign_voucher},
    split::CreditKey,
};

use crate::{
    backend::{Chain, Outcome},
    suite::{Suite, open},
};

/// Ids created by [`world`].
pub const DATANET: u64 = 1;
/// The model of the world.
pub const MODEL: u64 = 1;

/// Gives `to` `amount` OPEN from the governance account (which holds the supply).
pub async fn fund<C: Chain>(s: &Suite<C>, to: Address, amount: U256) {
    s.ok(
        &s.actors.governance,
        s.token(),
        OpenToken::transferCall { to, value: amount },
    )
    .await;
}

/// Approves `spender` for `amount` from `owner`.
pub async fn approve<C: Chain>(
    s: &Suite<C>,
    owner: &PrivateKeySigner,
    spender: Address,
    amount: U256,
) {
    s.ok(
        owner,
        s.token(),
        OpenToken::approveCall {
            spender,
            value: amount,
        },
    )
    .await;
}

/// OPEN balance of `who`.
pub async fn balance<C: Chain>(s: &Suite<C>, who: Address) -> U256 {
    s.view(s.token(), OpenToken::balanceOfCall { account: who })
        .await
}

/// Funds `user` and deposits `amount` into its escrow for the world's operator.
pub async fn deposit<C: Chain>(s: &Suite<C>, user: &PrivateKeySigner, amount: U256) {
    deposit_for(s, user, s.actors.operator.address(), amount).await;
}

/// Funds `user` and deposits `amount` into its escrow for `operator`.
pub async fn deposit_for<C: Chain>(
    s: &Suite<C>,
    user: &PrivateKeySigner,
    operator: Address,
    amount: U256,
) {
    fund(s, user.address(), amount).await;
    approve(s, user, s.settlement(), amount).await;
    s.ok(
        user,
        s.settlement(),
        Settlement::depositCall { operator, amount },
    )
    .await;
}

/// `owner`'s EIP-2612 signature `(v, r, s)` letting settlement take `value` of its OPEN until
/// `deadline` (its first permit: nonce 0).
pub async fn permit_for_settlement<C: Chain>(
    s: &Suite<C>,
    owner: &PrivateKeySigner,
    value: U256,
    deadline: U256,
) -> (u8, B256, B256) {
    use alloy::{signers::Signer, sol_types::SolStruct};
    let domain = alloy::sol_types::eip712_domain! {
        name: "OpenLedger", version: "1", chain_id: s.chain.chain_id(), verifying_contract: s.token(),
    };
    let permit = crate::scenarios::token::Permit {
        owner: owner.address(),
        spender: s.settlement(),
        value,
        nonce: U256::ZERO,
        deadline,
    };
    let sig = owner
        .sign_hash(&permit.eip712_signing_hash(&domain))
        .await
        .expect("signs");
    (27 + sig.v() as u8, sig.r().into(), sig.s().into())
}

/// The (user, operator) escrow balance.
pub async fn escrow<C: Chain>(s: &Suite<C>, user: Address, operator: Address) -> U256 {
    s.view(s.settlement(), Settlement::escrowOfCall { user, operator })
        .await
        .balance
}

/// The commitment `addContribution` reveals (IDatanetRegistry).
pub fn commitment(contributor: Address, datanet: U256, content_hash: B256, salt: B256) -> B256 {
    keccak256((contributor, datanet, content_hash, salt).abi_encode_params())
}

/// The salt the fixtures commit contributions with.
pub fn salt_of(content: &str) -> B256 {
    keccak256(format!("salt:{content}"))
}

/// Commits `contributor` to `content` in `datanet` (step one of adding it).
pub async fn commit_contribution<C: Chain>(
    s: &Suite<C>,
    contributor: &PrivateKeySigner,
    datanet: U256,
    content: &str,
) {
    s.ok(
        contributor,
        s.datanets(),
        DatanetRegistry::commitContributionCall {
            commitment: commitment(
                contributor.address(),
                datanet,
                keccak256(content),
                salt_of(content),
            ),
        },
    )
    .await;
}

/// The `addContribution` call revealing a committed `content`.
pub fn reveal_call(
    datanet: U256,
    content: &str,
    stake: U256,
) -> DatanetRegistry::addContributionCall {
    DatanetRegistry::addContributionCall {
        datanetId: datanet,
        contentHash: keccak256(content),
        tokens: content.split_whitespace().count() as u64,
        uri: format!("ipfs://{}", keccak256(content)),
        stake,
        salt: salt_of(content),
    }
}

/// Adds and accepts a contribution of `content` to `datanet` by `contributor`; returns its id.
pub async fn accepted_contribution<C: Chain>(
    s: &Suite<C>,
    curator: &PrivateKeySigner,
    contributor: &PrivateKeySigner,
    datanet: U256,
    content: &str,
) -> U256 {
    let id = add_contribution(s, contributor, datanet, content, U256::ZERO).await;
    s.ok(
        curator,
        s.datanets(),
        DatanetRegistry::acceptContributionCall { contributionId: id },
    )
    .await;
    id
}

/// Adds a pending contribution (commit, then reveal in a later block); returns its id.
pub async fn add_contribution<C: Chain>(
    s: &Suite<C>,
    contributor: &PrivateKeySigner,
    datanet: U256,
    content: &str,
    stake: U256,
) -> U256 {
    if !stake.is_zero() {
        approve(s, contributor, s.datanets(), stake).await;
    }
    commit_contribution(s, contributor, datanet, content).await;
    let r = s
        .ok(
            contributor,
            s.datanets(),
            reveal_call(datanet, content, stake),
        )
        .await;
    r.event::<DatanetRegistry::ContributionAdded>(s.datanets())
        .contributionId
}

/// Stakes the minimum for `operator`, sets `key` as its signer and serves `model`.
pub async fn register_operator<C: Chain>(
    s: &Suite<C>,
    operator: &PrivateKeySigner,
    key: Address,
    model: U256,
) {
    let stake = s
        .view(s.operators(), OperatorRegistry::minStakeCall {})
        .await;
    fund(s, operator.address(), stake).await;
    approve(s, operator, s.operators(), stake).await;
    s.ok(
        operator,
        s.operators(),
        OperatorRegistry::stakeCall { amount: stake },
    )
    .await;
    s.ok(
        operator,
        s.operators(),
        OperatorRegistry::setSignerCall { signer: key },
    )
    .await;
    s.ok(
        operator,
        s.operators(),
        OperatorRegistry::setServingCall {
            modelId: model,
            serving: true,
        },
    )
    .await;
}

/// Builds the world described in the module docs.
pub async fn world<C: Chain>(chain: C) -> Suite<C> {
    let s = Suite::deploy(chain).await;
    let a = s.actors.clone();
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::createDatanetCall {
            metadataURI: "ipfs://datanet".into(),
            minAccepted: 2,
        },
    )
    .await;
    let d = U256::from(DATANET);
    accepted_contribution(
        &s,
        &a.curator,
        &a.alice,
        d,
        "the quick brown fox jumps over the lazy dog",
    )
    .await;
    accepted_contribution(
        &s,
        &a.curator,
        &a.bob,
        d,
        "pack my box with five dozen liquor jugs",
    )
    .await;
    add_contribution(
        &s,
        &a.alice,
        d,
        "sphinx of black quartz judge my vow",
        U256::ZERO,
    )
    .await;
    s.ok(
        &a.developer,
        s.models(),
        ModelRegistry::registerModelCall {
            datanetIds: vec![d],
            baseModelHash: keccak256("SmolLM2-135M-Instruct.Q4_1.gguf"),
            adapterHash: keccak256("adapter-v1"),
            adapterURI: "ipfs://adapter-v1".into(),
            pricePer1kTokens: open(2),
        },
    )
    .await;
    register_operator(&s, &a.operator, a.operator_key.address(), U256::from(MODEL)).await;
    for user in [&a.carol, &a.dave] {
        fund(&s, user.address(), open(500)).await;
        deposit(&s, user, open(500)).await;
    }
    s
}

/// One user's charge in a batch: one receipt of `amount` wei.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The paying user's key (signs the voucher).
    pub user: PrivateKeySigner,
    /// The model used.
    pub model: U256,
    /// The amount charged.
    pub amount: U256,
    /// Cumulative cap of the voucher backing it.
    pub cap: U256,
}

/// A batch with its operator signature and vouchers, ready to submit (or to tamper with).
#[derive(Debug, Clone)]
pub struct SignedBatch {
    /// The batch.
    pub batch: Batch,
    /// The operator key's signature over it.
    pub signature: Bytes,
    /// One voucher per debit.
    pub vouchers: Vec<SignedVoucher>,
    /// The receipts the batch's root commits to, in the order of its charges.
    pub receipts: Vec<Receipt>,
}

impl SignedBatch {
    /// The `settleBatch` call.
    pub fn call(&self) -> Settlement::settleBatchCall {
        Settlement::settleBatchCall {
            batch: self.batch.clone(),
            operatorSignature: self.signature.clone(),
            vouchers: self.vouchers.clone(),
        }
    }

    /// Signs the (possibly edited) batch again with `key`.
    pub async fn resign(
        &mut self,
        domain: &alloy::sol_types::Eip712Domain,
        key: &PrivateKeySigner,
    ) {
        self.signature = sign_batch(key, domain, &self.batch).await.expect("signs");
    }
}

/// Attribution of every receipt of one model: weights in parts per million per (datanet,
/// contribution), the rest to `remainder_datanet`.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// Weights in ppm, summing to at most 1,000,000.
    pub weights: BTreeMap<CreditKey, u32>,
    /// Datanet receiving the unattributed share.
    pub remainder_datanet: U256,
}

/// The receipt of charge `index` of batch `sequence`: its fee is the charge (the contract
/// never sees tokens, so none are metered here), its attribution the model's.
pub fn charge_receipt(
    operator: Address,
    sequence: u64,
    index: usize,
    charge: &Charge,
    attribution: &Attribution,
    timestamp: u64,
) -> Receipt {
    Receipt {
        requestId: keccak256([sequence.to_be_bytes(), (index as u64).to_be_bytes()].concat()),
        user: charge.user.address(),
        operator,
        modelId: charge.model,
        modelVersion: 1,
        tokensIn: 0,
        tokensOut: 0,
        fee: charge.amount,
        promptHash: keccak256(format!("prompt {sequence}/{index}")),
        outputHash: keccak256(format!("output {sequence}/{index}")),
        datanetId: attribution.remainder_datanet,
        attribution: attribution
            .weights
            .iter()
            .map(|(&(datanet, contribution), &ppm)| AttributionWeight {
                datanetId: datanet,
                contributionId: contribution,
                ppm,
            })
            .collect(),
        timestamp,
    }
}

/// How long fixture vouchers and batch deadlines last: longer than any delay a scenario waits.
pub const VALIDITY: u64 = 30 * 86_400;

/// The terms of `operator`'s batch `sequence` now: deadline in [`VALIDITY`], the current
/// policy epoch.
pub async fn batch_terms<C: Chain>(s: &Suite<C>, operator: Address, sequence: u64) -> BatchTerms {
    let policy_epoch = s
        .view(s.settlement(), Settlement::currentEpochCall {})
        .await;
    let policy = s
        .view(
            s.settlement(),
            Settlement::splitPolicyOfCall {
                epoch: policy_epoch,
            },
        )
        .await
        .policy
        .into();
    BatchTerms {
        operator,
        sequence,
        deadline: s.now().await + VALIDITY,
        policy_epoch,
        policy,
    }
}

/// Builds and signs a valid batch with the oracle's batch builder (`openledger-billing`): one
/// receipt per charge, attributed as `attribution` says for its model, each backed by a
/// voucher (nonce 0, expiring in [`VALIDITY`]) for its cap, under [`batch_terms`]. The contract
/// scenarios settling these batches are what prove the builder against the real contracts.
pub async fn build_batch<C: Chain>(
    s: &Suite<C>,
    operator: Address,
    key: &PrivateKeySigner,
    sequence: u64,
    charges: &[Charge],
    attribution: &BTreeMap<U256, Attribution>,
) -> SignedBatch {
    let now = s.now().await;
    let mut items = Vec::new();
    for (index, c) in charges.iter().enumerate() {
        let a = attribution
            .get(&c.model)
            .expect("attribution for every charged model");
        let voucher = Voucher {
            user: c.user.address(),
            operator,
            modelId: c.model,
            cumulativeCap: c.cap,
            expiry: now + VALIDITY,
            nonce: 0,
        };
        items.push(Billed {
            receipt: charge_receipt(operator, sequence, index, c, a, now),
            voucher: sign_voucher(&c.user, &s.domain, &voucher)
                .await
                .expect("signs"),
        });
    }
    let terms = batch_terms(s, operator, sequence).await;
    let plan = batch::build(&terms, items).expect("a valid batch");
    let signed = plan.sign(key, &s.domain).await.expect("signs");
    SignedBatch {
        signature: signed.signature,
        batch: signed.plan.batch,
        vouchers: signed.plan.vouchers,
        receipts: signed.plan.receipts,
    }
}

/// The world's usual attribution for model 1: contribution 1 weighs 60 %, contribution 2 25 %,
/// 15 % unattributed.
pub fn world_attribution() -> BTreeMap<U256, Attribution> {
    let d = U256::from(DATANET);
    let weights = BTreeMap::from([
        ((d, U256::from(1)), 600_000u32),
        ((d, U256::from(2)), 250_000u32),
    ]);
    BTreeMap::from([(
        U256::from(MODEL),
        Attribution {
            weights,
            remainder_datanet: d,
        },
    )])
}

/// A valid batch of the world: `amounts` charged to carol and dave on model 1, caps 100 OPEN.
pub async fn world_batch<C: Chain>(
    s: &Suite<C>,
    sequence: u64,
    carol: U256,
    dave: U256,
) -> SignedBatch {
    let a = &s.actors;
    let mut charges = Vec::new();
    for (user, amount) in [(&a.carol, carol), (&a.dave, dave)] {
        if !amount.is_zero() {
            charges.push(Charge {
                user: user.clone(),
                model: U256::from(MODEL),
                amount,
                cap: open(100),
            });
        }
    }
    build_batch(
        s,
        a.operator.address(),
        &a.operator_key,
        sequence,
        &charges,
        &world_attribution(),
    )
    .await
}

/// Settles [`world_batch`] `sequence` as the world's operator; panics if it reverts.
pub async fn settle_world_batch<C: Chain>(
    s: &Suite<C>,
    sequence: u64,
    carol: U256,
    dave: U256,
) -> crate::suite::Receipt {
    let b = world_batch(s, sequence, carol, dave).await;
    s.ok(&s.actors.operator, s.settlement(), b.call()).await
}

/// Every OPEN balance and settlement account a scenario may check, to prove "nothing changed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// (account, token balance, escrow for the world's operator, claimable) for each actor.
    pub accounts: Vec<(Address, U256, U256, U256)>,
    /// Token balances of the contracts (datanets, operators, settlement).
    pub contracts: Vec<U256>,
    /// Settlement's totals.
    pub totals: (U256, U256),
}

/// Takes a [`Snapshot`] of all actors.
pub async fn snapshot<C: Chain>(s: &Suite<C>) -> Snapshot {
    let a = &s.actors;
    let mut accounts = Vec::new();
    for who in [
        &a.governance,
        &a.treasury,
        &a.curator,
        &a.alice,
        &a.bob,
        &a.developer,
        &a.operator,
        &a.operator_key,
        &a.carol,
        &a.dave,
    ] {
        let w = who.address();
        accounts.push((
            w,
            balance(s, w).await,
            escrow(s, w, a.operator.address()).await,
            s.view(s.settlement(), Settlement::claimableCall { account: w })
                .await,
        ));
    }
    let contracts = vec![
        balance(s, s.datanets()).await,
        balance(s, s.operators()).await,
        balance(s, s.settlement()).await,
    ];
    let totals = (
        s.view(s.settlement(), Settlement::totalDepositsCall {})
            .await,
        s.view(s.settlement(), Settlement::totalClaimableCall {})
            .await,
    );
    Snapshot {
        accounts,
        contracts,
        totals,
    }
}

/// Whether an outcome is a success.
pub fn succeeded(o: &Outcome) -> bool {
    matches!(o, Outcome::Success { .. })
}
