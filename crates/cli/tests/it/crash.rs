//! Crash safety of the paid oracle: the real `openledger oracle serve` process, killed at every
//! crash point of the money path (`OPENLEDGER_CRASH_AT`, see `openledger_payments::crash`)
//! and by `SIGKILL`, then restarted, against a real anvil with the real contracts and the
//! real model. After every restart the node must lose no journaled receipt and charge no one
//! twice: the chain's `spent` equals the sum of the journal's receipts' fees, each receipt is
//! in at most one settled batch, and every answered request's receipt is journaled. Needs
//! anvil (`npm ci`) and the model (`scripts/fetch-model.sh`); fails, never skips, without them.
//!
//! Besides one round per crash point, a randomized round (crash point and hit count drawn
//! from a seed, printed; set `OPENLEDGER_CRASH_SEED` to replay one) runs each time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::providers::ProviderBuilder;
use openledger_devnet::{DemoConfig, DevnetConfig, demo};
use openledger_payments::{Record, crash::POINTS};
use openledger_primitives::bindings::Settlement;

use crate::openledger;

fn model_path() -> PathBuf {
    let path = std::env::var_os("OPENLEDGER_MODEL_DIR")
        .map(PathBuf::from)
        .expect("OPENLEDGER_MODEL_DIR is set by the test command")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/fetch-model.sh",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

/// Starts the paid node; `crash_at` arms a crash point.
fn start(manifest: &Path, rpc: &str, data_dir: &Path, key: &str, crash_at: Option<&str>) -> Node {
    let port = free_port();
    let mut cmd = openledger();
    cmd.args([
        "oracle",
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--rpc-url",
        rpc,
    ])
    .arg("--model-path")
    .arg(model_path())
    .arg("--manifest")
    .arg(manifest)
    .arg("--data-dir")
    .arg(data_dir)
    .args(["--batch-max-receipts", "1", "--poll-interval-ms", "100"])
    .env("OPENLEDGER_ORACLE_PRIVATE_KEY", key)
    .env("OPENLEDGER_LOG", "warn")
    .env_remove("OPENLEDGER_CRASH_AT")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    if let Some(point) = crash_at {
        cmd.env("OPENLEDGER_CRASH_AT", point);
    }
    Node {
        child: cmd.spawn().expect("the openledger binary starts"),
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Waits until the node answers /health (or exits).
async fn ready(node: &mut Node) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if node.child.try_wait().unwrap().is_some() {
            return false;
        }
        if reqwest::get(format!("{}/health", node.url)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node did not start");
}

/// Every record of the journal (the node may be running: a torn last line is skipped).
fn journal(data_dir: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(data_dir.join("journal.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Checks the invariants; returns (receipts journaled, receipts settled).
fn check(records: &[Record]) -> (BTreeMap<B256, U256>, BTreeSet<B256>) {
    let mut fees = BTreeMap::new();
    let mut batches: BTreeMap<u64, Vec<B256>> = BTreeMap::new();
    let mut settled = BTreeSet::new();
    for r in records {
        match r {
            Record::Served(s) => {
                assert!(
                    fees.insert(s.receipt.requestId, s.receipt.fee).is_none(),
                    "receipt journaled twice"
                );
            }
            Record::Signed(b) => {
                batches.insert(b.sequence, b.request_ids.clone());
            }
            Record::Settled(s) => {
                for id in &batches[&s.sequence] {
                    assert!(settled.insert(*id), "receipt {id} settled twice");
                }
            }
            _ => {}
        }
    }
    (fees, settled)
}

async fn spent(rpc: &str, settlement: alloy::primitives::Address, demo: &demo::Demo) -> U256 {
    let p = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    Settlement::new(settlement, &p)
        .spent(demo.user.address(), demo.operator.address(), demo.model_id)
        .call()
        .await
        .unwrap()
}

/// One paid request; the receipt id when answered.
async fn request(node: &Node, key: &str, n: usize) -> Option<B256> {
    let body = serde_json::json!({
        "model": "model-1", "prompt": format!("Crash round {n}: the"), "max_tokens": 4, "temperature": 0,
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/completions", node.url))
        .bearer_auth(key)
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .ok()?;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.ok()?;
    v["openledger"]["receipt_id"].as_str()?.parse().ok()
}

/// A small deterministic generator for the randomized round.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_point_the_node_loses_no_receipt_and_charges_no_one_twice() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.json");
    let data_dir = dir.path().join("oracle");
    let devnet = openledger_devnet::spawn(DevnetConfig {
        port: 0,
        manifest: manifest.clone(),
        oracle: None,
        paid: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let rpc = devnet.rpc_url();
    let keys: Vec<_> = (0..6).map(|i| devnet.dev_signer(i).unwrap()).collect();
    let base_model_hash = openledger_oracle::paid::file_sha256(&model_path()).unwrap();
    let demo = demo::provision(
        &rpc,
        devnet.deployment(),
        &keys,
        &data_dir.join("content"),
        &DemoConfig {
            price_per_1k: U256::from(2 * demo::OPEN),
            deposit: U256::from(100 * demo::OPEN),
            voucher_cap: U256::from(50 * demo::OPEN),
            voucher_validity: 30 * 86_400,
            base_model_hash,
        },
    )
    .await
    .unwrap();
    assert_eq!(demo.model_id, U256::from(1));
    let key = alloy::hex::encode(demo.operator.to_bytes());
    let settlement = devnet.deployment().contracts.settlement;

    let mut seed: u64 = std::env::var("OPENLEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("randomized crash round: OPENLEDGER_CRASH_SEED={seed}");
    let random_point = POINTS[(next(&mut seed) % POINTS.len() as u64) as usize];
    let random_hit = 1 + next(&mut seed) % 2;
    let mut rounds: Vec<String> = POINTS.iter().map(|p| p.to_string()).collect();
    rounds.push(format!("{random_point}:{random_hit}"));
    // And a plain SIGKILL while a request and its batch are in flight.
    rounds.push("sigkill".into());

    let mut answered = BTreeSet::new();
    for (n, point) in rounds.iter().enumerate() {
        let crash_at = (point != "sigkill").then_some(point.as_str());
        let mut node = start(&manifest, &rpc, &data_dir, &key, crash_at);
        assert!(
            ready(&mut node).await,
            "round {point}: the node did not start"
        );
        for i in 0..2 {
            if let Some(id) = request(&node, &demo.api_key, 10 * n + i).await {
                answered.insert(id);
            }
        }
        if point == "sigkill" {
            drop(node); // SIGKILL, with the last batch maybe in flight
        } else {
            // The armed point aborts the process within the round.
            let deadline = Instant::now() + Duration::from_secs(60);
            while node.child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "round {point}: the node never reached its crash point"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Restart without a crash point: the node reconciles and settles what it journaled.
        let node = start(&manifest, &rpc, &data_dir, &key, None);
        let mut node = node;
        assert!(ready(&mut node).await);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let records = journal(&data_dir);
            let (fees, settled) = check(&records);
            let all_settled = fees.keys().all(|id| settled.contains(id));
            let on_chain = spent(&rpc, settlement, &demo).await;
            let settled_fees: U256 = settled.iter().map(|id| fees[id]).sum();
            assert!(
                on_chain <= fees.values().copied().sum::<U256>(),
                "round {point}: charged more than was served"
            );
            if all_settled {
                assert_eq!(
                    on_chain, settled_fees,
                    "round {point}: chain and journal disagree"
                );
                for id in &answered {
                    assert!(
                        fees.contains_key(id),
                        "round {point}: answered receipt {id} lost"
                    );
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {point}: the journal's receipts never all settled"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(node);
    }
    // Every round's requests were charged exactly once, in total too.
    let (fees, settled) = check(&journal(&data_dir));
    assert_eq!(fees.len(), settled.len());
    assert_eq!(
        spent(&rpc, settlement, &demo).await,
        fees.values().copied().sum::<U256>()
    );
}
