//! The paid node follows the chain while running: ERC-1271 wallets pay, prices and versions
//! apply at once, models it cannot serve are refused with the reason, contributions arrive
//! by `http://` too, a stream cut off pays for what was generated, a debit the contract skips
//! is recorded and reported, and the operator's own transactions do not stall its batches.
//! Real anvil, real contracts, the real model (see `paid`).

use std::time::Duration;

use alloy::primitives::{B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use futures_util::StreamExt;
use openledger_devnet::demo;
use openledger_primitives::{
    bindings::{ModelRegistry, OpenToken, OperatorRegistry, Settlement, TestWallet},
    eip712::{settlement_domain, sign_voucher},
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::paid::{chat, get, http, paid_devnet, paid_devnet_with, post, until, voucher_key};

const OPEN: u128 = demo::OPEN;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erc1271_wallet_pays_and_a_wallet_that_refuses_or_burns_gas_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let d = devnet.deployment().clone();
    let model = format!("model-{}", demo.model_id);

    // A smart-contract wallet owned by dev account 6, funded and with an escrow for the
    // operator, deposited through the wallet itself.
    let owner = devnet.dev_signer(6).unwrap();
    let by_owner = demo::wallet(&devnet.rpc_url(), &owner).unwrap();
    let wallet = TestWallet::deploy(&by_owner, owner.address())
        .await
        .unwrap();
    let by_deployer = demo::wallet(&devnet.rpc_url(), &devnet.dev_signer(0).unwrap()).unwrap();
    let amount = U256::from(10 * OPEN);
    OpenToken::new(d.contracts.token, &by_deployer)
        .transfer(*wallet.address(), amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let approve = OpenToken::approveCall {
        spender: d.contracts.settlement,
        value: amount,
    };
    let deposit = Settlement::depositCall {
        operator: demo.operator.address(),
        amount,
    };
    for (target, data) in [
        (
            d.contracts.token,
            alloy::sol_types::SolCall::abi_encode(&approve),
        ),
        (
            d.contracts.settlement,
            alloy::sol_types::SolCall::abi_encode(&deposit),
        ),
    ] {
        let r = wallet
            .execute(target, data.into())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    // The wallet's voucher, signed by its owner's key (ECDSA recovers the owner, not the
    // wallet: only ERC-1271 accepts it).
    let mut v = demo.voucher.voucher.clone();
    v.user = *wallet.address();
    let signed = sign_voucher(
        &owner,
        &settlement_domain(d.chain_id, d.contracts.settlement),
        &v,
    )
    .await
    .unwrap();
    let key = openledger_billing::voucher::encode_api_key(&signed);
    let (status, answer) = post(
        &devnet,
        "/v1/chat/completions",
        Some(&key),
        &chat(&model, "Hello", 6),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    // Settled on chain: the contract accepts the wallet too.
    assert!(payments.flush().await.unwrap());
    until("batch 1 settled", || {
        payments
            .ledger()
            .batch(1)
            .is_some_and(|b| b.settled.is_some())
    })
    .await;
    let settled = payments.ledger().batch(1).unwrap().settled.unwrap();
    assert!(settled.skipped.is_empty(), "{:?}", settled.skipped);
    let fee = payments.ledger().all_receipts()[0].fee;
    assert_eq!(settled.collected, fee);

    // A wallet that refuses, or burns its gas, is refused before any compute.
    for mode in [1u8, 2] {
        wallet
            .setMode(mode)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let (status, answer) = post(
            &devnet,
            "/v1/chat/completions",
            Some(&key),
            &chat(&model, "Hello", 6),
        )
        .await;
        assert_eq!(status, 402, "mode {mode}: {answer}");
    }
    devnet.shutdown().await.unwrap();
}

/// Serves `body` over HTTP on a free port (one response per connection); returns the URL.
async fn serve_once(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/contribution.txt", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prices_versions_models_and_contributions_are_followed_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let d = devnet.deployment().clone();
    let model = format!("model-{}", demo.model_id);
    let by_developer = demo::wallet(&devnet.rpc_url(), &demo.developer).unwrap();
    let models = ModelRegistry::new(d.contracts.models, &by_developer);

    // A new price applies to the next request, with no restart.
    let price = U256::from(3 * OPEN);
    models
        .setPrice(demo.model_id, price)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    for _ in 0..100 {
        if get(&devnet, "/v1/models").await["data"][0]["price_per_1k_tokens"] == price.to_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, answer) = post(
        &devnet,
        "/v1/chat/completions",
        Some(&demo.api_key),
        &chat(&model, "Hello", 6),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let r = &payments.ledger().all_receipts()[0];
    assert_eq!(
        r.fee,
        (U256::from(r.tokensIn + r.tokensOut) * price).div_ceil(U256::from(1000))
    );

    // A contribution whose content is only at an http:// URI is fetched, checked and indexed.
    const TEXT: &str = "Contributions may live on any web server: the oracle fetches them by their URI and checks the hash.";
    let url = serve_once(TEXT).await;
    let before = payments.attributor().index_size(demo.model_id).unwrap().0;
    demo::register_contribution(
        &devnet.rpc_url(),
        &d,
        &demo.curator,
        &demo.contributor,
        demo.datanet_id,
        keccak256(TEXT),
        20,
        &url,
    )
    .await
    .unwrap();
    until("the http:// contribution indexed", || {
        payments
            .attributor()
            .index_size(demo.model_id)
            .is_some_and(|(n, _)| n == before + 1)
    })
    .await;
    let cached = dir
        .path()
        .join("oracle/content")
        .join(alloy::hex::encode(keccak256(TEXT)));
    assert_eq!(
        std::fs::read_to_string(cached).unwrap(),
        TEXT,
        "fetched content is kept in the store"
    );

    // A new version naming an adapter this node does not have: refused with the reason.
    models
        .addVersion(
            demo.model_id,
            1,
            keccak256("an adapter this node lacks"),
            String::new(),
            vec![],
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let mut refused = (0, json!(null));
    for _ in 0..100 {
        refused = post(
            &devnet,
            "/v1/chat/completions",
            Some(&demo.api_key),
            &chat(&model, "Hello", 6),
        )
        .await;
        if refused.0 == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused.0, 404, "{}", refused.1);
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("adapter"),
        "{}",
        refused.1
    );
    assert_eq!(get(&devnet, "/v1/models").await["data"], json!([]));

    // A model whose base is another GGUF is never served, even when the operator lists it.
    models
        .registerModel(
            vec![demo.datanet_id],
            B256::repeat_byte(0xba),
            B256::ZERO,
            String::new(),
            price,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let key = voucher_key(&devnet, &demo.user, |v| v.modelId = U256::from(2), None).await;
    // On chain but not served by this operator: not found.
    let (status, answer) = post(
        &devnet,
        "/v1/chat/completions",
        Some(&key),
        &chat("model-2", "Hello", 6),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serves on chain"),
        "{answer}"
    );
    let by_operator = demo::wallet(&devnet.rpc_url(), &demo.operator).unwrap();
    OperatorRegistry::new(d.contracts.operators, &by_operator)
        .setServing(U256::from(2), true)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let mut answer = (0, json!(null));
    for _ in 0..100 {
        answer = post(
            &devnet,
            "/v1/chat/completions",
            Some(&key),
            &chat("model-2", "Hello", 6),
        )
        .await;
        if answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("base model"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, 404, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("base model hash"),
        "{}",
        answer.1
    );
    devnet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_cut_off_pays_for_the_tokens_generated_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let body = json!({
        "model": format!("model-{}", demo.model_id),
        "prompt": "Count from one to one thousand, one number per line:\n1\n2\n3\n",
        "max_tokens": 512, "temperature": 0, "stream": true,
    });
    let resp = http()
        .post(format!("{}/v1/completions", devnet.oracle_url().unwrap()))
        .bearer_auth(&demo.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut chunks = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"text\":\"") {
        seen.push_str(&String::from_utf8_lossy(
            &chunks.next().await.unwrap().unwrap(),
        ));
    }
    drop(chunks); // the client goes away mid-stream
    until("the cut-off stream journaled", || {
        !payments.ledger().all_receipts().is_empty()
    })
    .await;
    let r = payments.ledger().all_receipts()[0].clone();
    assert!(
        r.tokensOut >= 1 && r.tokensOut < 512,
        "charged {} of 512 tokens",
        r.tokensOut
    );
    let price = U256::from(2 * OPEN);
    assert_eq!(
        r.fee,
        (U256::from(r.tokensIn + r.tokensOut) * price).div_ceil(U256::from(1000))
    );
    assert_eq!(
        payments.ledger().reserved(),
        U256::ZERO,
        "the reservation is released"
    );
    devnet.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_debit_the_contract_skips_is_recorded_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let delay = 60;
    let devnet = paid_devnet_with(
        dir.path(),
        openledger_chain::deploy::DeployConfig {
            withdrawal_delay: delay,
            ..Default::default()
        },
    )
    .await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let d = devnet.deployment().clone();
    let model = format!("model-{}", demo.model_id);

    // A second user who pays, so the batch has a debit to collect.
    let other: PrivateKeySigner = devnet.dev_signer(7).unwrap();
    let by_deployer = demo::wallet(&devnet.rpc_url(), &devnet.dev_signer(0).unwrap()).unwrap();
    let amount = U256::from(10 * OPEN);
    OpenToken::new(d.contracts.token, &by_deployer)
        .transfer(other.address(), amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let by_other = demo::wallet(&devnet.rpc_url(), &other).unwrap();
    OpenToken::new(d.contracts.token, &by_other)
        .approve(d.contracts.settlement, amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    Settlement::new(d.contracts.settlement, &by_other)
        .deposit(demo.operator.address(), amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let other_key = voucher_key(&devnet, &other, |_| {}, None).await;

    for key in [&demo.api_key, &other_key] {
        let (status, answer) = post(
            &devnet,
            "/v1/chat/completions",
            Some(key),
            &chat(&model, "Hello", 6),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let fee_of = |user| {
        payments
            .ledger()
            .all_receipts()
            .iter()
            .filter(|r| r.user == user)
            .map(|r| r.fee)
            .sum::<U256>()
    };
    let (skipped_fee, paid_fee) = (fee_of(demo.user.address()), fee_of(other.address()));

    // The first user withdraws everything before the operator settles (the operator waited
    // longer than the withdrawal delay: its loss, not the other user's).
    let by_user = demo::wallet(&devnet.rpc_url(), &demo.user).unwrap();
    let settlement = Settlement::new(d.contracts.settlement, &by_user);
    settlement
        .requestWithdrawal(demo.operator.address(), U256::from(100 * OPEN))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let p = crate::paid::provider(&devnet);
    p.raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (delay + 1,))
        .await
        .unwrap();
    p.raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
    settlement
        .withdraw(demo.operator.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    assert!(payments.flush().await.unwrap());
    until("batch 1 settled", || {
        payments
            .ledger()
            .batch(1)
            .is_some_and(|b| b.settled.is_some())
    })
    .await;
    let settled = payments.ledger().batch(1).unwrap().settled.unwrap();
    assert_eq!(
        settled.collected, paid_fee,
        "the other user's debit settles"
    );
    assert_eq!(settled.skipped.len(), 1, "{:?}", settled.skipped);
    let s = settled.skipped[0];
    assert_eq!(
        (s.user, s.model_id, s.amount),
        (demo.user.address(), demo.model_id, skipped_fee)
    );
    assert_eq!(
        s.reason,
        openledger_primitives::bindings::skip_reason::INSUFFICIENT_ESCROW
    );
    assert_eq!(payments.ledger().uncollected(), skipped_fee);
    let batch = get(&devnet, "/v1/batches/1").await;
    assert_eq!(
        batch["settled"]["skipped"][0]["amount"],
        skipped_fee.to_string(),
        "{batch}"
    );
    let metrics = crate::paid::get_text(&devnet, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "openledger_debits_skipped_total 1"),
        "{metrics}"
    );
    devnet.shutdown().await.unwrap();
}

/// The operator's account sends transactions of its own (here an approval; in life a stake
/// top-up or a serve-list change) while its node runs: the node's next batch takes the next
/// nonce from the chain, not from a count it cached at its first batch (alloy's default nonce
/// manager, which sent batch 2 with a used nonce, refused as "nonce too low").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operators_own_transactions_do_not_stall_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let d = devnet.deployment().clone();
    let model = format!("model-{}", demo.model_id);
    for sequence in 1..=2 {
        let (status, answer) = post(
            &devnet,
            "/v1/chat/completions",
            Some(&demo.api_key),
            &chat(&model, "Hello", 4),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(
            payments.flush().await.unwrap(),
            "batch {sequence} is sent at once"
        );
        until("the batch settled", || {
            payments
                .ledger()
                .batch(sequence)
                .is_some_and(|b| b.settled.is_some())
        })
        .await;
        // A provider of its own each time, as another program of the operator's would be
        // (one kept across the loop would cache its nonce, the very fault under test).
        let by_operator = demo::wallet(&devnet.rpc_url(), &demo.operator).unwrap();
        OpenToken::new(d.contracts.token, &by_operator)
            .approve(d.contracts.settlement, U256::from(sequence))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    let metrics = crate::paid::get_text(&devnet, "/metrics").await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("openledger_batch_post_failures_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    devnet.shutdown().await.unwrap();
}
