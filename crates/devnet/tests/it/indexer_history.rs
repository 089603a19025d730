//! A scripted history that emits every event kind of the suite, on the paid devnet (real
//! anvil, the real contracts, the oracle settling real batches), indexed into SQLite and into
//! PostgreSQL: every entity and total equals what the contracts' own views return, and the two
//! databases hold the same rows. PostgreSQL as in `indexer.rs` (`OPENLEDGER_TEST_POSTGRES`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use openledger_devnet::{
    Devnet,
    demo::{self, OPEN},
};
use openledger_indexer::{Store, catalog, follow::lock};
use openledger_primitives::{
    bindings::{DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement},
    split::SplitPolicy,
};
use serde_json::Value;

use crate::indexer::{amount, dump, index, mine, postgres_database, requests};
use crate::paid::{paid_devnet, provider, until, voucher_key};

const DAY: u64 = 24 * 3600;

/// Sends a contract call and waits for it to succeed.
macro_rules! tx {
    ($call:expr) => {{
        let receipt = $call
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", stringify!($call)))
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "{} reverted", stringify!($call));
    }};
}

async fn warp(p: &DynProvider, secs: u64) {
    let _: Value = p
        .raw_request("evm_increaseTime".into(), (U256::from(secs),))
        .await
        .unwrap();
    mine(p, 1).await;
}

/// Waits until the oracle has settled its batch `sequence`.
async fn settle(devnet: &Devnet, sequence: u64) {
    let payments = devnet.payments().unwrap().clone();
    assert!(payments.flush().await.unwrap(), "batch {sequence} is cut");
    until("the batch settles", || {
        payments
            .ledger()
            .batch(sequence)
            .is_some_and(|b| b.settled.is_some())
    })
    .await;
}

/// The one provider of `key` on this devnet: each provider keeps its account's nonce, so two
/// for one account would collide.
fn wallet(devnet: &Devnet, key: &PrivateKeySigner) -> DynProvider {
    static WALLETS: Mutex<BTreeMap<(String, Address), DynProvider>> = Mutex::new(BTreeMap::new());
    WALLETS
        .lock()
        .unwrap()
        .entry((devnet.rpc_url(), key.address()))
        .or_insert_with(|| demo::wallet(&devnet.rpc_url(), key).unwrap())
        .clone()
}

/// A contribution of `text` by `contributor` with `stake`, committed then revealed; its id.
async fn contribute_staked(
    devnet: &Devnet,
    contributor: &PrivateKeySigner,
    datanet: U256,
    text: &str,
    stake: U256,
) -> U256 {
    let d = devnet.deployment();
    let by = wallet(devnet, contributor);
    let datanets = DatanetRegistry::new(d.contracts.datanets, &by);
    let hash = keccak256(text.as_bytes());
    let salt = keccak256(format!("salt {text}"));
    tx!(datanets.commitContribution(demo::commitment(contributor.address(), datanet, hash, salt)));
    tx!(datanets.addContribution(datanet, hash, 5, "ipfs://x".into(), stake, salt));
    datanets.contributionCount().call().await.unwrap()
}

/// Every event of the suite, in order: batches settled, skipped and slashed, contributions
/// rejected and timed out, roles and governance handed over, parameters rescheduled.
async fn script(devnet: &Devnet) {
    let d = devnet.deployment().clone();
    let c = d.contracts;
    let demo = devnet.demo().unwrap().clone();
    let p = provider(devnet);
    let key = |i| devnet.dev_signer(i).unwrap();
    let (deployer, curator2, new_owner, new_developer, new_governance) =
        (key(0), key(6), key(7), key(8), key(9));
    assert_eq!(d.governance, deployer.address(), "the deployer governs");
    let operator = demo.operator.address();

    // The operator stakes more and starts unstaking part of it; its own transactions come
    // before the oracle's first settlement and after its last, as the oracle sends with the
    // operator's key and keeps its nonce.
    let by_deployer = wallet(devnet, &deployer);
    tx!(OpenToken::new(c.token, &by_deployer).transfer(operator, U256::from(10 * OPEN)));
    let by_operator = wallet(devnet, &demo.operator);
    tx!(OpenToken::new(c.token, &by_operator).approve(c.operators, U256::from(10 * OPEN)));
    let operators = OperatorRegistry::new(c.operators, &by_operator);
    tx!(operators.stake(U256::from(10 * OPEN)));
    tx!(operators.requestUnstake(U256::from(5 * OPEN)));

    // Batch 1: two paid requests.
    requests(devnet, &["Call me Ishmael.", "It is a truth universally"]).await;
    settle(devnet, 1).await;
    tx!(Settlement::new(c.settlement, &wallet(devnet, &demo.developer)).claim());
    // The treasury (the deployer here) earns the protocol share of every batch.
    assert_eq!(d.treasury, deployer.address());
    tx!(Settlement::new(c.settlement, &wallet(devnet, &deployer)).claimTo(new_owner.address()));

    // Tokens for stakes.
    let token = OpenToken::new(c.token, &by_deployer);
    tx!(token.transfer(demo.contributor.address(), U256::from(100 * OPEN)));
    tx!(OpenToken::new(c.token, &wallet(devnet, &demo.contributor))
        .approve(c.datanets, U256::from(100 * OPEN)));

    // Curation: a second curator rejects and slashes one staked contribution; another stays
    // pending until the curation timeout.
    let by_curator = wallet(devnet, &demo.curator);
    let datanets = DatanetRegistry::new(c.datanets, &by_curator);
    tx!(DatanetRegistry::new(c.datanets, &by_deployer).setCurator(
        demo.datanet_id,
        curator2.address(),
        true
    ));
    let rejected = contribute_staked(
        devnet,
        &demo.contributor,
        demo.datanet_id,
        "spam spam spam",
        U256::from(OPEN),
    )
    .await;
    tx!(DatanetRegistry::new(c.datanets, &wallet(devnet, &curator2))
        .rejectContribution(rejected, true));
    let pending = contribute_staked(
        devnet,
        &demo.contributor,
        demo.datanet_id,
        "never curated",
        U256::from(2 * OPEN),
    )
    .await;
    tx!(datanets.transferDatanet(demo.datanet_id, new_owner.address()));
    tx!(
        DatanetRegistry::new(c.datanets, &wallet(devnet, &new_owner))
            .acceptDatanet(demo.datanet_id)
    );

    // A second model: versioned, repriced, deactivated and handed to another developer.
    let by_developer = wallet(devnet, &demo.developer);
    let models = ModelRegistry::new(c.models, &by_developer);
    tx!(models.registerModel(
        vec![demo.datanet_id],
        B256::repeat_byte(2),
        B256::repeat_byte(3),
        "ipfs://adapter".into(),
        U256::from(7_000u64)
    ));
    let model2 = models.modelCount().call().await.unwrap();
    tx!(models.addVersion(
        model2,
        1,
        B256::repeat_byte(4),
        "ipfs://adapter-2".into(),
        vec![]
    ));
    tx!(models.setPrice(model2, U256::from(9_000u64)));
    tx!(models.deactivate(model2));
    tx!(models.transferModel(model2, new_developer.address()));
    tx!(ModelRegistry::new(c.models, &wallet(devnet, &new_developer)).acceptModel(model2));

    // Batch 2: a request served, then its voucher revoked; settled after the revocation took
    // effect, so its debit is skipped.
    requests(devnet, &["Happy families are all alike"]).await;
    let by_user = wallet(devnet, &demo.user);
    let settlement = Settlement::new(c.settlement, &by_user);
    tx!(settlement.revokeVouchers(1));
    warp(&p, 15 * DAY).await;
    settle(devnet, 2).await;

    // After the curation timeout and the withdrawal delay: exits.
    tx!(
        DatanetRegistry::new(c.datanets, &wallet(devnet, &demo.contributor))
            .withdrawContribution(pending)
    );
    tx!(settlement.requestWithdrawal(operator, U256::from(1_000u64)));
    warp(&p, DAY + 1).await;
    tx!(settlement.withdraw(operator));

    // Batch 3 under a new voucher (nonce 1); the datanet's new owner is credited.
    let key = voucher_key(devnet, &demo.user, |v| v.nonce = 1, None).await;
    let (status, body) = crate::paid::post(
        devnet,
        "/v1/chat/completions",
        Some(&key),
        &crate::paid::chat(&format!("model-{}", demo.model_id), "Call me Ishmael.", 8),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    settle(devnet, 3).await;
    // A fresh provider: the oracle has sent from this account since.
    let by_operator = demo::wallet(&devnet.rpc_url(), &demo.operator).unwrap();
    tx!(OperatorRegistry::new(c.operators, &by_operator).withdrawUnstaked());

    // Governance: a slash beyond stake and unstaking reaches the unvested operator rewards;
    // then every delayed parameter is rescheduled and governance handed over.
    let stake = OperatorRegistry::new(c.operators, &p)
        .getOperator(operator)
        .call()
        .await
        .unwrap();
    let governed = OperatorRegistry::new(c.operators, &by_deployer);
    tx!(governed.slash(
        operator,
        stake.stake + stake.unstaking + U256::from(1_000 * OPEN),
        "served a tampered model".into()
    ));
    tx!(governed.setMinStake(U256::from(500 * OPEN)));
    tx!(governed.setUnstakeCooldown(3 * DAY));
    let governed_settlement = Settlement::new(c.settlement, &by_deployer);
    tx!(governed_settlement.setWithdrawalDelay(2 * DAY));
    tx!(governed_settlement.setSplitPolicy(
        SplitPolicy {
            protocol_bps: 500,
            operator_bps: 2_500,
            developer_bps: 2_000,
            data_bps: 5_000,
        }
        .into()
    ));
    let by_next = wallet(devnet, &new_governance);
    tx!(DatanetRegistry::new(c.datanets, &by_deployer).transferGovernance(new_governance.address()));
    tx!(DatanetRegistry::new(c.datanets, &by_next).acceptGovernance());
    tx!(governed.transferGovernance(new_governance.address()));
    tx!(OperatorRegistry::new(c.operators, &by_next).acceptGovernance());
    tx!(governed_settlement.transferGovernance(new_governance.address()));
    tx!(Settlement::new(c.settlement, &by_next).acceptGovernance());
    // Every scheduled change in effect, every vesting reward vested.
    warp(&p, 8 * DAY).await;
}

/// The event names of each contract's ABI, as compiled.
fn abi_events() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for contract in [
        "OpenToken",
        "DatanetRegistry",
        "ModelRegistry",
        "OperatorRegistry",
        "Settlement",
    ] {
        let path = format!(
            "{}/../../contracts/evm/out/{contract}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for item in json["abi"].as_array().unwrap() {
            if item["type"] == "event" {
                out.insert((
                    contract.to_owned(),
                    item["name"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

fn table(store: &Arc<Mutex<Store>>, name: &str) -> Vec<Value> {
    lock(store)
        .db()
        .sql()
        .dump(catalog::table(name).unwrap())
        .unwrap()
}

fn address(v: &Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}

fn int(v: &Value) -> u64 {
    v.as_i64().unwrap_or_else(|| panic!("an integer: {v}")) as u64
}

/// Every entity and total of the index against the contracts' views.
async fn assert_equals_views(devnet: &Devnet, store: &Arc<Mutex<Store>>) {
    let d = devnet.deployment().clone();
    let c = d.contracts;
    let p = provider(devnet);
    let token = OpenToken::new(c.token, &p);
    let datanets = DatanetRegistry::new(c.datanets, &p);
    let models = ModelRegistry::new(c.models, &p);
    let operators = OperatorRegistry::new(c.operators, &p);
    let settlement = Settlement::new(c.settlement, &p);

    // Every event kind of the ABI is in the index, except the EIP-5267 domain change, which
    // OpenZeppelin's EIP712 declares and never emits (the domain is immutable).
    let indexed: BTreeSet<(String, String)> = table(store, "events")
        .iter()
        .map(|e| {
            (
                e["contract"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = abi_events()
        .into_iter()
        .filter(|(_, name)| name != "EIP712DomainChanged")
        .filter(|e| !indexed.contains(e))
        .collect();
    assert!(missing.is_empty(), "events never indexed: {missing:?}");

    // Accounts: token balances, and rewards earned less claimed is what is claimable or still
    // vesting (the treasury's share of the slashed operator rewards included).
    let mut supply = U256::ZERO;
    for a in table(store, "accounts") {
        let who = address(&a["id"]);
        let balance = amount(&a["token_balance"]);
        supply += balance;
        assert_eq!(balance, token.balanceOf(who).call().await.unwrap(), "{a}");
        let vesting = settlement.vesting(who).call().await.unwrap().amount;
        assert_eq!(
            amount(&a["earned"]) - amount(&a["claimed"]),
            settlement.claimable(who).call().await.unwrap() + vesting,
            "{a}"
        );
        let revocation = settlement.voucherRevocation(who).call().await.unwrap();
        assert_eq!(int(&a["min_nonce"]), revocation.minNonce, "{a}");
    }
    assert_eq!(supply, token.totalSupply().call().await.unwrap());
    let treasury = table(store, "accounts")
        .into_iter()
        .find(|a| address(&a["id"]) == d.treasury)
        .unwrap();
    assert!(
        amount(&treasury["earned_slashed"]) > U256::ZERO,
        "{treasury}"
    );

    // Datanets, curators and contributions.
    let nets = table(store, "datanets");
    assert_eq!(
        nets.len() as u64,
        datanets.datanetCount().call().await.unwrap().to::<u64>()
    );
    for n in &nets {
        let id: U256 = n["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            address(&n["owner"]),
            datanets.datanetOwner(id).call().await.unwrap(),
            "{n}"
        );
        assert!(n["pending_owner"].is_null(), "{n}");
    }
    for cur in table(store, "curators") {
        let id: U256 = cur["datanet"].as_str().unwrap().parse().unwrap();
        let enabled = datanets
            .isCurator(id, address(&cur["curator"]))
            .call()
            .await
            .unwrap();
        assert_eq!(cur["enabled"].as_bool().unwrap(), enabled, "{cur}");
    }
    const STATUS: [&str; 5] = ["none", "pending", "accepted", "rejected", "withdrawn"];
    let contributions = table(store, "contributions");
    assert_eq!(
        contributions.len() as u64,
        datanets
            .contributionCount()
            .call()
            .await
            .unwrap()
            .to::<u64>()
    );
    let mut statuses = BTreeMap::new();
    for k in &contributions {
        let id: U256 = k["id"].as_str().unwrap().parse().unwrap();
        let view = datanets.getContribution(id).call().await.unwrap();
        let status = view.status;
        assert_eq!(k["status"], STATUS[usize::from(status)], "{k}");
        assert_eq!(address(&k["contributor"]), view.contributor, "{k}");
        assert_eq!(
            k["content_hash"].as_str().unwrap(),
            format!("{:#x}", view.contentHash)
        );
        *statuses
            .entry(k["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert!(
        ["accepted", "rejected", "withdrawn"]
            .iter()
            .all(|s| statuses.contains_key(*s)),
        "{statuses:?}"
    );

    // Models.
    let all = table(store, "models");
    assert_eq!(
        all.len() as u64,
        models.modelCount().call().await.unwrap().to::<u64>()
    );
    for m in &all {
        let id: U256 = m["id"].as_str().unwrap().parse().unwrap();
        let view = models.getModel(id).call().await.unwrap();
        assert_eq!(address(&m["developer"]), view.developer, "{m}");
        assert_eq!(
            amount(&m["price_per_1k_tokens"]),
            view.pricePer1kTokens,
            "{m}"
        );
        assert_eq!(m["active"].as_bool().unwrap(), view.active, "{m}");
        assert_eq!(int(&m["versions"]), u64::from(view.latestVersion), "{m}");
        assert!(m["pending_developer"].is_null(), "{m}");
    }

    // Operators, escrows and what each payer spent.
    for o in table(store, "operators") {
        let who = address(&o["id"]);
        let view = operators.getOperator(who).call().await.unwrap();
        assert_eq!(amount(&o["stake"]), view.stake, "{o}");
        assert_eq!(amount(&o["unstaking"]), view.unstaking, "{o}");
        assert_eq!(amount(&o["slashed"]) > U256::ZERO, view.slashed, "{o}");
        assert_eq!(
            int(&o["last_sequence"]),
            settlement.lastSequence(who).call().await.unwrap(),
            "{o}"
        );
    }
    let mut deposits = U256::ZERO;
    for e in table(store, "escrows") {
        let (user, operator) = (address(&e["payer"]), address(&e["operator"]));
        let view = settlement.escrowOf(user, operator).call().await.unwrap();
        assert_eq!(amount(&e["balance"]), view.balance, "{e}");
        assert_eq!(amount(&e["pending_withdrawal"]), view.pending, "{e}");
        deposits += amount(&e["balance"]);
    }
    assert_eq!(deposits, settlement.totalDeposits().call().await.unwrap());
    let mut spent: BTreeMap<(Address, Address, U256), U256> = BTreeMap::new();
    let charges = table(store, "charges");
    for ch in &charges {
        if ch["collected"].as_bool().unwrap() {
            let model: U256 = ch["model"].as_str().unwrap().parse().unwrap();
            *spent
                .entry((address(&ch["payer"]), address(&ch["operator"]), model))
                .or_default() += amount(&ch["amount"]);
        }
    }
    for ((user, operator, model), total) in &spent {
        assert_eq!(
            *total,
            settlement
                .spent(*user, *operator, *model)
                .call()
                .await
                .unwrap()
        );
    }
    let skipped: Vec<_> = charges
        .iter()
        .filter(|ch| ch["collected"] == false)
        .collect();
    assert_eq!(skipped.len(), 1, "{charges:?}");
    assert_eq!(skipped[0]["skip_reason"], "revoked", "{charges:?}");
    for b in table(store, "batches") {
        assert_eq!(b["verification"], "verified", "{b}");
    }

    // Parameters and split policies, all in effect now.
    let parameters: BTreeMap<String, String> = table(store, "parameters")
        .into_iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let governance = format!("{:#x}", devnet.dev_signer(9).unwrap().address());
    for name in [
        "datanets.governance",
        "operators.governance",
        "settlement.governance",
    ] {
        assert_eq!(parameters[name], governance, "{name}");
    }
    assert_eq!(
        datanets.governance().call().await.unwrap(),
        devnet.dev_signer(9).unwrap().address()
    );
    assert_eq!(
        parameters["operators.minStake"],
        operators.minStake().call().await.unwrap().to_string()
    );
    assert_eq!(
        parameters["operators.unstakeCooldown"],
        operators
            .unstakeCooldown()
            .call()
            .await
            .unwrap()
            .to_string()
    );
    assert_eq!(
        parameters["settlement.withdrawalDelay"],
        settlement
            .withdrawalDelay()
            .call()
            .await
            .unwrap()
            .to_string()
    );
    let policies = table(store, "split_policies");
    let current = settlement.currentEpoch().call().await.unwrap();
    assert_eq!(
        policies.iter().map(|p| int(&p["epoch"])).max(),
        Some(u64::from(current))
    );
    for sp in &policies {
        let (view, effective_at) = {
            let r = settlement
                .splitPolicyOf(int(&sp["epoch"]) as u32)
                .call()
                .await
                .unwrap();
            (SplitPolicy::from(r.policy), r.effectiveAt)
        };
        assert_eq!(
            int(&sp["protocol_bps"]),
            u64::from(view.protocol_bps),
            "{sp}"
        );
        assert_eq!(int(&sp["data_bps"]), u64::from(view.data_bps), "{sp}");
        assert_eq!(int(&sp["effective_at"]), effective_at, "{sp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_history_of_every_event_kind_equals_the_contracts_views_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    script(&devnet).await;
    let sqlite = index(
        &devnet,
        dir.path().join("history.db").display().to_string(),
        64,
    )
    .await;
    assert_equals_views(&devnet, &sqlite).await;
    let postgres = index(&devnet, postgres_database("history"), 64).await;
    assert_equals_views(&devnet, &postgres).await;
    assert_eq!(dump(&sqlite), dump(&postgres), "one schema, the same rows");
    devnet.shutdown().await.unwrap();
}
