//! `openledger indexer` killed with SIGKILL during backfill and during head following, then
//! restarted: the index is row for row a clean index of the chain (no gap, no duplicate).
//! Needs anvil (`npm ci`).

use std::{
    process::Child,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use openledger_devnet::{DevnetConfig, demo, spawn};
use openledger_indexer::{
    FollowConfig, Follower, Step, Store, apply::Applier, catalog, db::Database, follow::lock,
};
use openledger_primitives::bindings::OpenToken;
use serde_json::Value;

use crate::openledger;

fn start(manifest: &std::path::Path, rpc: &str, database: &str) -> Child {
    start_with_metrics(manifest, rpc, database, 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_with_metrics(
    manifest: &std::path::Path,
    rpc: &str,
    database: &str,
    metrics_port: u16,
) -> Child {
    openledger()
        .arg("indexer")
        .arg("--manifest")
        .arg(manifest)
        .args([
            "--rpc-url",
            rpc,
            "--database",
            database,
            "--blocks-per-commit",
            "1",
            "--poll-interval-ms",
            "20",
        ])
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .env("OPENLEDGER_LOG", "warn")
        .spawn()
        .expect("the binary starts")
}

fn checkpoint(database: &str) -> u64 {
    let Ok(mut db) = Database::open(database) else {
        return 0;
    };
    db.sql()
        .query_count(
            "SELECT COALESCE(MAX(block_number), 0) AS n FROM checkpoint",
            vec![],
        )
        .unwrap_or(0) as u64
}

fn dump(database: &str) -> Vec<(String, Vec<Value>)> {
    let mut db = Database::open(database).unwrap();
    let mut out: Vec<(String, Vec<Value>)> = catalog::TABLES
        .iter()
        .map(|t| (t.name.to_owned(), db.sql().dump(t).unwrap()))
        .collect();
    out.push((
        "checkpoint".into(),
        vec![Value::from(checkpoint_of(&mut db))],
    ));
    out
}

fn checkpoint_of(db: &mut Database) -> i64 {
    db.sql()
        .query_count("SELECT block_number AS n FROM checkpoint", vec![])
        .unwrap()
}

async fn transfers(
    rpc: &str,
    key: &alloy::signers::local::PrivateKeySigner,
    token: Address,
    n: u64,
) {
    let wallet = demo::wallet(rpc, key).unwrap();
    let token = OpenToken::new(token, &wallet);
    for i in 0..n {
        token
            .transfer(
                Address::with_last_byte((i % 7) as u8 + 1),
                U256::from(i + 1),
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
}

fn wait_for(database: &str, block: u64) {
    let started = Instant::now();
    while checkpoint(database) < block {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the indexer reaches block {block}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_backfill_and_at_the_head_resumes_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.json");
    let devnet = spawn(DevnetConfig {
        port: 0,
        accounts: 3,
        manifest: manifest.clone(),
        oracle: None,
        paid: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let rpc = devnet.rpc_url();
    let key = devnet.dev_signer(0).unwrap();
    let token = devnet.deployment().contracts.token;
    transfers(&rpc, &key, token, 60).await;
    let p = alloy::providers::ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    // Empty blocks too: one commit per block makes the backfill long enough to kill in.
    let _: Value = p
        .raw_request("anvil_mine".into(), (U256::from(1_500),))
        .await
        .unwrap();
    transfers(&rpc, &key, token, 60).await;
    let head = p.get_block_number().await.unwrap();

    // Backfill, killed again and again at different points.
    let database = dir.path().join("killed.db").display().to_string();
    let mut progress = Vec::new();
    for delay in [300u64, 450, 600, 750] {
        let mut child = start(&manifest, &rpc, &database);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        progress.push(checkpoint(&database));
    }
    assert!(
        progress.windows(2).any(|w| w[0] < w[1]) && progress.last() < Some(&head),
        "killed while backfilling: checkpoints {progress:?} of {head}"
    );
    let mut child = start(&manifest, &rpc, &database);
    wait_for(&database, head);

    // At the head: new events while it follows, killed in between.
    transfers(&rpc, &key, token, 10).await;
    child.kill().unwrap();
    child.wait().unwrap();
    transfers(&rpc, &key, token, 10).await;
    let port = free_port();
    let mut child = start_with_metrics(&manifest, &rpc, &database, port);
    transfers(&rpc, &key, token, 5).await;
    let head = p.get_block_number().await.unwrap();
    wait_for(&database, head);
    // Its Prometheus metrics.
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "openledger_indexer_head_lag_blocks",
        "openledger_indexer_events_total",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // A clean index of the same chain, in one go.
    let clean = dir.path().join("clean.db").display().to_string();
    let store = std::sync::Mutex::new(
        Store::open(
            Database::open(&clean).unwrap(),
            &openledger_indexer::deployment_identity(devnet.deployment()),
            128,
        )
        .unwrap(),
    );
    let mut follower = Follower::new(
        alloy::providers::ProviderBuilder::new()
            .connect_http(rpc.parse().unwrap())
            .erased(),
        Applier::new(devnet.deployment()),
        FollowConfig {
            from_block: devnet.deployment().deploy_block,
            ..Default::default()
        },
    );
    while follower.step(&store).await.unwrap() != Step::AtHead {}
    drop(lock(&store));
    let transfers_indexed = dump(&database)
        .into_iter()
        .find(|(t, _)| t == "transfers")
        .unwrap()
        .1
        .len();
    assert!(transfers_indexed >= 145, "{transfers_indexed}");
    assert_eq!(dump(&database), dump(&clean));
}
