//! Paid inference end to end on the devnet the README runs: real anvil with the real
//! contracts, the real SmolLM2-135M model, the oracle in paid mode, HTTP requests paid by a
//! voucher used as the API key, a batch settled on chain, and every balance checked to the
//! wei against an independent recomputation from the served receipts. Needs anvil (`npm ci`)
//! and the model (`scripts/fetch-model.sh`); fails, never skips, without them.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use openledger_billing::{Receipt, merkle};
use openledger_devnet::{Devnet, DevnetConfig, demo, spawn};
use openledger_primitives::{
    bindings::Settlement,
    eip712::{SignedVoucher, Voucher, settlement_domain, sign_voucher},
    split::SplitPolicy,
};
use serde_json::{Value, json};

use crate::model_path;

/// A paid devnet whose batches are cut only when the test says so.
pub(crate) async fn paid_devnet(dir: &std::path::Path) -> Devnet {
    paid_devnet_with(dir, openledger_chain::deploy::DeployConfig::default()).await
}

/// [`paid_devnet`] with the indexer and the GraphQL API running (on a free port).
pub(crate) async fn paid_devnet_graphql(dir: &std::path::Path) -> Devnet {
    paid_devnet_full(
        dir,
        openledger_chain::deploy::DeployConfig::default(),
        Some(0),
    )
    .await
}

/// [`paid_devnet`] with the suite deployed as `deploy` says.
pub(crate) async fn paid_devnet_with(
    dir: &std::path::Path,
    deploy: openledger_chain::deploy::DeployConfig,
) -> Devnet {
    paid_devnet_full(dir, deploy, None).await
}

async fn paid_devnet_full(
    dir: &std::path::Path,
    deploy: openledger_chain::deploy::DeployConfig,
    graphql_port: Option<u16>,
) -> Devnet {
    let mut oracle = openledger_oracle::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    oracle.engine.model_path = model_path();
    let mut chain = openledger_oracle::ChainConfig::default();
    chain.paid.batch.max_age_secs = 24 * 3600;
    chain.paid.poll_interval_ms = 100;
    oracle.chain = Some(chain);
    spawn(DevnetConfig {
        port: 0,
        deploy,
        manifest: dir.join("deployment.json"),
        oracle: Some(oracle),
        graphql_port,
        ..Default::default()
    })
    .await
    .expect("paid devnet starts")
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

pub(crate) fn provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(devnet.rpc_url().parse().unwrap())
        .erased()
}

/// POSTs `body` to `path` with `key` as the bearer token; returns status and JSON.
pub(crate) async fn post(
    devnet: &Devnet,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let url = format!("{}{path}", devnet.oracle_url().unwrap());
    let mut req = http().post(url).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) async fn get(devnet: &Devnet, path: &str) -> Value {
    http()
        .get(format!("{}{path}", devnet.oracle_url().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) fn chat(model: &str, content: &str, max_tokens: u64) -> Value {
    json!({
        "model": model, "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens, "temperature": 0,
    })
}

/// Streams a completion; returns the chunks' concatenated text and the final chunk.
async fn stream(devnet: &Devnet, key: &str, body: &Value) -> (String, Value) {
    let url = format!("{}/v1/completions", devnet.oracle_url().unwrap());
    let text = http()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = String::new();
    let mut last = Value::Null;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(t) = v["choices"][0]["text"].as_str() {
            out.push_str(t);
        }
        if v.get("usage").is_some_and(|u| !u.is_null()) {
            last = v;
        }
    }
    (out, last)
}

pub(crate) async fn claimable(p: &DynProvider, settlement: Address, account: Address) -> U256 {
    Settlement::new(settlement, p)
        .claimable(account)
        .call()
        .await
        .unwrap()
}

/// Waits until `f` holds (polling the oracle's background work).
pub(crate) async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// What the contract must pay, recomputed from the receipts with the published rule
/// (IReceipts.sol), independently of the billing crate: per model, T = Σ fee; shares
/// floor(T·bps/10⁴) for operator, developer and data, the protocol the rest; the data share D
/// to each (datanet, contribution) by W_k = Σ fee·ppm (the unattributed rest to (datanet, 0)),
/// floor(D·W_k/ΣW), the dust to the treasury.
struct Expected {
    operator: U256,
    developer: U256,
    treasury: U256,
    credits: BTreeMap<(U256, U256), U256>,
}

fn expected(receipts: &[Receipt], policy: SplitPolicy) -> Expected {
    let bps = |t: U256, b: u16| t * U256::from(b) / U256::from(10_000u64);
    let mut e = Expected {
        operator: U256::ZERO,
        developer: U256::ZERO,
        treasury: U256::ZERO,
        credits: BTreeMap::new(),
    };
    let mut models: BTreeMap<U256, Vec<&Receipt>> = BTreeMap::new();
    for r in receipts {
        models.entry(r.modelId).or_default().push(r);
    }
    for (_, rs) in models {
        let total: U256 = rs.iter().map(|r| r.fee).sum();
        let (op, dev, data) = (
            bps(total, policy.operator_bps),
            bps(total, policy.developer_bps),
            bps(total, policy.data_bps),
        );
        e.operator += op;
        e.developer += dev;
        e.treasury += total - op - dev - data;
        let mut w: BTreeMap<(U256, U256), U256> = BTreeMap::new();
        for r in &rs {
            let mut attributed = 0u64;
            for a in &r.attribution {
                *w.entry((a.datanetId, a.contributionId)).or_default() += r.fee * U256::from(a.ppm);
                attributed += u64::from(a.ppm);
            }
            *w.entry((r.datanetId, U256::ZERO)).or_default() +=
                r.fee * U256::from(1_000_000 - attributed);
        }
        let sum: U256 = w.values().copied().sum();
        let mut paid = U256::ZERO;
        for (k, wk) in w {
            if wk.is_zero() {
                continue;
            }
            let amount = data * wk / sum;
            paid += amount;
            *e.credits.entry(k).or_default() += amount;
        }
        e.treasury += data - paid;
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_requests_settle_on_chain_to_the_wei() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet
        .demo()
        .expect("the paid devnet sets up the demo")
        .clone();
    let payments = devnet.payments().expect("paid mode").clone();
    let key = demo.api_key.clone();
    let model = format!("model-{}", demo.model_id);
    let d = devnet.deployment().clone();
    let p = provider(&devnet);

    // /v1/models lists the on-chain model with its price.
    let models = get(&devnet, "/v1/models").await;
    assert_eq!(models["data"][0]["id"], model, "{models}");
    assert_eq!(
        models["data"][0]["price_per_1k_tokens"],
        (2 * demo::OPEN).to_string()
    );

    // A non-streamed chat request: usage is what the receipt charges.
    let (status, first) = post(
        &devnet,
        "/v1/chat/completions",
        Some(&key),
        &chat(&model, "Call me Ishmael.", 24),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let receipt_id: B256 = first["openledger"]["receipt_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = payments
        .ledger()
        .receipt(receipt_id)
        .expect("journaled")
        .served
        .receipt;
    assert_eq!(
        r.tokensIn,
        first["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        r.tokensOut,
        first["usage"]["completion_tokens"].as_u64().unwrap()
    );
    let price = U256::from(2 * demo::OPEN);
    assert_eq!(
        r.fee,
        (U256::from(r.tokensIn + r.tokensOut) * price).div_ceil(U256::from(1000))
    );
    assert_eq!(r.user, demo.user.address());
    assert_eq!(r.operator, demo.operator.address());
    let answer = first["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();

    // Streamed, with the receipt in the last chunk.
    let (text, last) = stream(&devnet, &key, &json!({"model": model, "prompt": "It is a truth universally", "max_tokens": 12, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}})).await;
    assert!(!text.is_empty());
    assert!(last["openledger"]["receipt_id"].is_string(), "{last}");

    // Four at once.
    let concurrent = futures_util::future::join_all((0..4).map(|i| {
        let body = chat(&model, &format!("Write a word about the number {i}."), 8);
        let (devnet, key) = (&devnet, &key);
        async move { post(devnet, "/v1/chat/completions", Some(key), &body).await }
    }))
    .await;
    for (status, body) in &concurrent {
        assert_eq!(*status, 200, "{body}");
    }

    // The model's answer becomes a contribution; the same request then reproduces it and is
    // attributed to it.
    let data_dir = dir.path().join("oracle");
    let new_id = demo::contribute(
        &devnet.rpc_url(),
        &d,
        &demo.curator,
        &demo.contributor,
        demo.datanet_id,
        &answer,
        &data_dir.join("content"),
    )
    .await
    .unwrap();
    until("the new contribution indexed", || {
        payments
            .attributor()
            .index_size(demo.model_id)
            .is_some_and(|(n, _)| n == demo.contribution_ids.len() + 1)
    })
    .await;
    let (status, again) = post(
        &devnet,
        "/v1/chat/completions",
        Some(&key),
        &chat(&model, "Call me Ishmael.", 24),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["choices"][0]["message"]["content"], answer.as_str());
    let again_id: B256 = again["openledger"]["receipt_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let attributed = payments.ledger().receipt(again_id).unwrap().served;
    assert!(
        attributed
            .receipt
            .attribution
            .iter()
            .any(|w| w.contributionId == new_id && w.ppm > 500_000),
        "the reproduced answer is attributed to its contribution: {:?}",
        attributed.receipt.attribution
    );
    assert!(
        attributed
            .spans
            .iter()
            .any(|s| s.sources.iter().any(|c| c.contribution_id == new_id))
    );

    // Settle: one batch of every receipt.
    let receipts = payments.ledger().all_receipts();
    assert_eq!(receipts.len(), 7);
    let before = (
        claimable(&p, d.contracts.settlement, demo.curator.address()).await,
        claimable(&p, d.contracts.settlement, d.treasury).await,
    );
    assert!(payments.flush().await.unwrap());
    until("batch 1 settled", || {
        payments
            .ledger()
            .batch(1)
            .is_some_and(|b| b.settled.is_some())
    })
    .await;
    let settled = payments.ledger().batch(1).unwrap().settled.unwrap();
    let total: U256 = receipts.iter().map(|r| r.fee).sum();
    assert_eq!(
        (settled.collected, settled.debits_collected),
        (total, 1),
        "one (model, user) debit"
    );
    assert!(settled.skipped.is_empty());

    // Every balance, to the wei.
    let e = expected(&receipts, SplitPolicy::default());
    let s = Settlement::new(d.contracts.settlement, &p);
    assert_eq!(
        s.spent(demo.user.address(), demo.operator.address(), demo.model_id)
            .call()
            .await
            .unwrap(),
        total
    );
    assert_eq!(
        s.guaranteed(demo.user.address(), demo.operator.address())
            .call()
            .await
            .unwrap(),
        U256::from(100 * demo::OPEN) - total
    );
    assert_eq!(
        s.vesting(demo.operator.address())
            .call()
            .await
            .unwrap()
            .amount,
        e.operator
    );
    assert_eq!(
        claimable(&p, d.contracts.settlement, demo.developer.address()).await,
        e.developer
    );
    let contributor_credit: U256 = e
        .credits
        .iter()
        .filter(|((_, c), _)| !c.is_zero())
        .map(|(_, a)| *a)
        .sum();
    let owner_credit: U256 = e
        .credits
        .iter()
        .filter(|((_, c), _)| c.is_zero())
        .map(|(_, a)| *a)
        .sum();
    assert_eq!(
        claimable(&p, d.contracts.settlement, demo.contributor.address()).await,
        contributor_credit
    );
    assert_eq!(
        claimable(&p, d.contracts.settlement, demo.curator.address()).await - before.0,
        owner_credit
    );
    assert_eq!(
        claimable(&p, d.contracts.settlement, d.treasury).await - before.1,
        e.treasury
    );
    assert_eq!(
        e.operator + e.developer + e.treasury + contributor_credit + owner_credit,
        total,
        "no wei created or lost"
    );

    // The root on chain is the receipts' root, and each receipt's proof verifies.
    let tx = p
        .get_transaction_receipt(settled.tx)
        .await
        .unwrap()
        .unwrap();
    let event = tx
        .inner
        .logs()
        .iter()
        .find_map(|l| Settlement::BatchSettled::decode_log_data(l.data()).ok())
        .unwrap();
    let batch = get(&devnet, "/v1/batches/1").await;
    assert_eq!(
        batch["batch"]["receiptsRoot"]
            .as_str()
            .unwrap()
            .parse::<B256>()
            .unwrap(),
        event.receiptsRoot
    );
    assert_eq!(batch["tree"]["format"], "standard-v1");
    // The npm library itself loads, validates and proves the dump.
    let dump = dir.path().join("batch-1.json");
    std::fs::write(&dump, batch.to_string()).unwrap();
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/verify_tree.mjs"
        ))
        .arg(&dump)
        .output()
        .expect("node runs (installed by the test command)");
    assert!(
        out.status.success(),
        "@openzeppelin/merkle-tree refused the dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ok {} {}", event.receiptsRoot, receipts.len())
    );
    for r in &receipts {
        let view = get(&devnet, &format!("/v1/receipts/{}", r.requestId)).await;
        let proof: Vec<B256> = serde_json::from_value(view["batch"]["proof"].clone()).unwrap();
        assert!(
            merkle::verify(event.receiptsRoot, merkle::leaf_hash(r), &proof),
            "{view}"
        );
        assert_eq!(view["batch"]["status"], "settled");
    }
    devnet.shutdown().await.unwrap();
}

/// A voucher of `user` for the demo's operator and model, changed by `edit`, signed under
/// `domain` (the devnet's unless changed).
pub(crate) async fn voucher_key(
    devnet: &Devnet,
    signer: &PrivateKeySigner,
    edit: impl FnOnce(&mut Voucher),
    domain: Option<alloy::sol_types::Eip712Domain>,
) -> String {
    let demo = devnet.demo().unwrap();
    let d = devnet.deployment();
    let mut v = demo.voucher.voucher.clone();
    v.user = signer.address();
    edit(&mut v);
    let domain = domain.unwrap_or_else(|| settlement_domain(d.chain_id, d.contracts.settlement));
    let signed: SignedVoucher = sign_voucher(signer, &domain, &v).await.unwrap();
    openledger_billing::voucher::encode_api_key(&signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_requests_get_their_status_change_nothing_and_cost_no_compute() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let d = devnet.deployment().clone();
    let model = format!("model-{}", demo.model_id);
    let price = U256::from(2 * demo::OPEN);
    // A completion of 10 prompt tokens (given as ids) and 6 generated: worst case 16 tokens.
    let body = json!({"model": model, "prompt": [504, 3117, 282, 4649, 314, 2113, 30, 378, 1041, 253], "max_tokens": 6, "temperature": 0});
    let worst = (U256::from(16) * price).div_ceil(U256::from(1000));
    let stranger = PrivateKeySigner::random();

    let mut cases: Vec<(&str, Option<String>, Value, u16)> = vec![
        ("no key", None, body.clone(), 401),
        ("not hex", Some("0xzz".into()), body.clone(), 401),
        ("not a voucher", Some("0x1234".into()), body.clone(), 401),
        (
            "unknown model",
            Some(demo.api_key.clone()),
            json!({"model": "model-99", "prompt": "x", "max_tokens": 2}),
            404,
        ),
        (
            "not a paid model name",
            Some(demo.api_key.clone()),
            json!({"model": "smollm2-135m", "prompt": "x", "max_tokens": 2}),
            404,
        ),
    ];
    // Signed by someone else than the voucher's user.
    let mut forged = demo.voucher.clone();
    forged.signature = sign_voucher(
        &stranger,
        &settlement_domain(d.chain_id, d.contracts.settlement),
        &forged.voucher,
    )
    .await
    .unwrap()
    .signature;
    cases.push((
        "forged signature",
        Some(openledger_billing::voucher::encode_api_key(&forged)),
        body.clone(),
        402,
    ));
    cases.push((
        "other chain",
        Some(
            voucher_key(
                &devnet,
                &demo.user,
                |_| {},
                Some(settlement_domain(1, d.contracts.settlement)),
            )
            .await,
        ),
        body.clone(),
        402,
    ));
    cases.push((
        "other contract",
        Some(
            voucher_key(
                &devnet,
                &demo.user,
                |_| {},
                Some(settlement_domain(d.chain_id, Address::repeat_byte(7))),
            )
            .await,
        ),
        body.clone(),
        402,
    ));
    cases.push((
        "expired",
        Some(voucher_key(&devnet, &demo.user, |v| v.expiry = 1, None).await),
        body.clone(),
        402,
    ));
    cases.push((
        "other operator",
        Some(
            voucher_key(
                &devnet,
                &demo.user,
                |v| v.operator = Address::repeat_byte(9),
                None,
            )
            .await,
        ),
        body.clone(),
        402,
    ));
    cases.push((
        "over cap by one wei",
        Some(
            voucher_key(
                &devnet,
                &demo.user,
                |v| {
                    v.cumulativeCap = worst - U256::from(1);
                    v.nonce = 1
                },
                None,
            )
            .await,
        ),
        body.clone(),
        402,
    ));
    cases.push((
        "no deposit",
        Some(voucher_key(&devnet, &stranger, |_| {}, None).await),
        body.clone(),
        402,
    ));

    let receipts_before = payments.ledger().all_receipts().len();
    let metrics_before = get_text(&devnet, "/metrics").await;
    for (name, key, body, status) in &cases {
        let (got, answer) = post(&devnet, "/v1/completions", key.as_deref(), body).await;
        assert_eq!(got, *status, "{name}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: {answer}");
    }
    assert_eq!(
        payments.ledger().all_receipts().len(),
        receipts_before,
        "refusals journal nothing"
    );
    assert_eq!(
        payments.ledger().reserved(),
        U256::ZERO,
        "refusals reserve nothing"
    );
    let tokens = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("oracle_completion_tokens_total"))
            .map(str::to_string)
    };
    assert_eq!(
        tokens(&get_text(&devnet, "/metrics").await),
        tokens(&metrics_before),
        "refusals cost no compute"
    );

    // Exactly at the cap: served. Then one more: over the cap.
    let exact = voucher_key(
        &devnet,
        &demo.user,
        |v| {
            v.cumulativeCap = worst;
            v.nonce = 2
        },
        None,
    )
    .await;
    assert_eq!(
        post(&devnet, "/v1/completions", Some(&exact), &body)
            .await
            .0,
        200
    );
    assert_eq!(
        post(&devnet, "/v1/completions", Some(&exact), &body)
            .await
            .0,
        402
    );

    // Concurrent overspend: a cap for one worst case more, two requests at once, one served.
    let spent: U256 = payments.ledger().all_receipts().iter().map(|r| r.fee).sum();
    let one_more = voucher_key(
        &devnet,
        &demo.user,
        |v| {
            v.cumulativeCap = spent + worst;
            v.nonce = 3
        },
        None,
    )
    .await;
    let (a, b) = tokio::join!(
        post(&devnet, "/v1/completions", Some(&one_more), &body),
        post(&devnet, "/v1/completions", Some(&one_more), &body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 402], "{a:?} {b:?}");

    // A pending withdrawal of everything: funds are no longer guaranteed.
    let by_user = demo::wallet(&devnet.rpc_url(), &demo.user).unwrap();
    let settlement = Settlement::new(d.contracts.settlement, &by_user);
    let fresh = voucher_key(&devnet, &demo.user, |v| v.nonce = 4, None).await;
    assert_eq!(
        post(&devnet, "/v1/completions", Some(&fresh), &body)
            .await
            .0,
        200
    );
    settlement
        .requestWithdrawal(demo.operator.address(), U256::from(100 * demo::OPEN))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        post(&devnet, "/v1/completions", Some(&fresh), &body)
            .await
            .0,
        402,
        "pending withdrawal"
    );
    settlement
        .requestWithdrawal(demo.operator.address(), U256::from(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        post(&devnet, "/v1/completions", Some(&fresh), &body)
            .await
            .0,
        200
    );
    // A pending revocation voids the voucher at once for the node.
    settlement
        .revokeVouchers(5)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let (status, answer) = post(&devnet, "/v1/completions", Some(&fresh), &body).await;
    assert_eq!(status, 402, "{answer}");

    // Tampered content: a contribution whose stored bytes are not what its hash says is
    // refused and never indexed.
    let content_dir = dir.path().join("oracle").join("content");
    let text = "A contribution that will be tampered with before the oracle loads it.";
    let hash = alloy::primitives::keccak256(text);
    let count_before = payments.attributor().index_size(demo.model_id).unwrap().0;
    // The wrong bytes where the store and the file:// URI will look, before it is accepted.
    std::fs::write(content_dir.join(alloy::hex::encode(hash)), "tampered").unwrap();
    let elsewhere = dir.path().join("tampered.txt");
    std::fs::write(&elsewhere, "tampered too").unwrap();
    demo::register_contribution(
        &devnet.rpc_url(),
        &d,
        &demo.curator,
        &demo.contributor,
        demo.datanet_id,
        hash,
        12,
        &format!("file://{}", elsewhere.display()),
    )
    .await
    .unwrap();
    until("the tampered contribution refused", || {
        !payments.attributor().refused().is_empty()
    })
    .await;
    assert_eq!(
        payments.attributor().index_size(demo.model_id).unwrap().0,
        count_before
    );
    devnet.shutdown().await.unwrap();
}

pub(crate) async fn get_text(devnet: &Devnet, path: &str) -> String {
    http()
        .get(format!("{}{path}", devnet.oracle_url().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
