//! The indexer's backfill into SQLite and PostgreSQL beside Ponder's (npm `ponder`, indexing the
//! same contracts and events from the same anvil), and the GraphQL API's latency over a million
//! receipts. Prints figures; asserts nothing about speed.
//!
//! ```sh
//! cargo bench -p openledger-devnet --bench indexer --profile dev   # the README's figures
//! OPENLEDGER_BENCH_TRANSFERS=20000 OPENLEDGER_BENCH_RECEIPTS=100000 OPENLEDGER_BENCH_PONDER=0 \
//!   cargo bench -p openledger-devnet --bench indexer --profile dev   # a quick look
//! ```
//!
//! The dev profile builds the indexer, the GraphQL server, the bindings and every dependency
//! at opt-level 2 (the workspace's `Cargo.toml`), so it measures the shipped code paths while
//! reusing the test command's build; `--release` works too and rebuilds everything.
//!
//! - History: `indexer/benches/ponder/gen-events.mjs` settles signed batches (Charged,
//!   RewardCredited, BatchSettled, deposits, a datanet, a model, a stake), then
//!   `OPENLEDGER_BENCH_TRANSFERS` (default 100,000) token transfers are sent in JSON-RPC
//!   batches of 2,000 with automine off and mined 2,000 to a block; 40 empty blocks follow
//!   (Ponder's finality window on chain 31337).
//! - Backfill: a fresh database each, from the deployment block to the head; events/s is the
//!   number of suite events over the wall time, the median of `OPENLEDGER_BENCH_BACKFILL_RUNS`
//!   (default 3) runs per database. PostgreSQL is the test command's
//!   (`scripts/postgres.sh start`). Ponder: `run.mjs` (PGlite and PostgreSQL; needs
//!   `npm ci` in that folder, done here when missing); `OPENLEDGER_BENCH_PONDER=0` skips it.
//! - GraphQL: `OPENLEDGER_BENCH_RECEIPTS` (default 1,000,000) verified receipts with one
//!   attribution each, over 1,000 users and 10 models, in a SQLite index; 1 client, then 4,
//!   send attribution-history queries over HTTP (after 20 unmeasured ones per family); p50/p99 and
//!   queries/s per query family.
//!
//! Needs anvil (`npm ci`), node, and PostgreSQL (Debian's, via `scripts/postgres.sh`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Instant,
};

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    sol_types::SolCall,
};
use openledger_devnet::{DevnetConfig, spawn};
use openledger_indexer::{
    FollowConfig, Follower, Step, Store, apply::Applier, catalog, db::Database, value::Row,
};
use openledger_primitives::bindings::OpenToken;
use serde_json::{Value, json};

/// The allocator the `openledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ponder_dir() -> PathBuf {
    root().join("indexer/benches/ponder")
}

fn npm_ci() {
    if ponder_dir().join("node_modules/ponder").is_dir() {
        return;
    }
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(ponder_dir())
        .status()
        .expect("npm runs");
    assert!(ok.success(), "npm ci in indexer/benches/ponder");
}

fn postgres_admin() -> String {
    if let Ok(url) = std::env::var("OPENLEDGER_TEST_POSTGRES") {
        return url;
    }
    let out = Command::new(root().join("scripts/postgres.sh"))
        .arg("start")
        .output()
        .expect("scripts/postgres.sh runs");
    assert!(out.status.success(), "PostgreSQL starts: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn fresh_postgres(admin: &str, name: &str) -> String {
    let mut db = Database::connect(admin).unwrap();
    let mut sql = db.sql();
    sql.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    sql.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

/// `transfers` token transfers from dev account 0, mined 2,000 to a block.
async fn bulk_transfers(rpc: &str, token: Address, from: Address, transfers: usize) {
    let p = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    let _: Value = p
        .raw_request(
            "evm_setBlockGasLimit".into(),
            (U256::from(1_000_000_000u64),),
        )
        .await
        .unwrap();
    let _: Value = p
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let mut nonce = p.get_transaction_count(from).await.unwrap();
    let mut sent = 0;
    while sent < transfers {
        let n = (transfers - sent).min(2_000);
        let client = alloy::rpc::client::RpcClient::new_http(rpc.parse().unwrap());
        let mut batch = client.new_batch();
        let mut waiters = Vec::with_capacity(n);
        for i in 0..n {
            let to = Address::with_last_byte(((sent + i) % 200) as u8 + 1);
            let data = OpenToken::transferCall {
                to,
                value: U256::from(sent + i + 1),
            }
            .abi_encode();
            let tx = json!({
                "from": from, "to": token, "data": alloy::hex::encode_prefixed(data),
                "gas": "0x186a0", "nonce": format!("{nonce:#x}"),
                "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
            });
            nonce += 1;
            waiters.push(
                batch
                    .add_call::<_, Value>("eth_sendTransaction", &(tx,))
                    .unwrap(),
            );
        }
        batch.send().await.unwrap();
        for w in waiters {
            w.await.unwrap();
        }
        let _: Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
        sent += n;
    }
    let _: Value = p
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
}

/// Indexes the devnet's chain into `url` from scratch; returns (events, seconds).
async fn backfill(rpc: &str, devnet: &openledger_devnet::Devnet, url: &str) -> (usize, f64) {
    let started = Instant::now();
    let store = Mutex::new(
        Store::open(
            Database::open(url).unwrap(),
            &openledger_indexer::deployment_identity(devnet.deployment()),
            128,
        )
        .unwrap(),
    );
    let mut follower = Follower::new(
        ProviderBuilder::new()
            .connect_http(rpc.parse().unwrap())
            .erased(),
        Applier::new(devnet.deployment()),
        FollowConfig {
            from_block: devnet.deployment().deploy_block,
            ..Default::default()
        },
    );
    let mut events = 0;
    loop {
        match follower.step(&store).await.unwrap() {
            Step::Advanced { events: e, .. } => events += e,
            Step::AtHead => break,
            _ => {}
        }
    }
    (events, started.elapsed().as_secs_f64())
}

fn ponder(
    rpc: &str,
    manifest: &Path,
    to_block: u64,
    events: usize,
    database: Option<&str>,
) -> Result<Value, String> {
    let mut cmd = Command::new("node");
    cmd.current_dir(ponder_dir())
        .arg("run.mjs")
        .args(["--rpc", rpc, "--manifest"])
        .arg(manifest)
        .args(["--to-block", &to_block.to_string()])
        .args(["--expect-events", &events.to_string()])
        .args(["--timeout-s", "1800"]);
    if let Some(url) = database {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output().expect("node runs");
    if !out.status.success() {
        // A peer that fails on this history is a figure too: say why, keep measuring.
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("ponder run failed: {stderr}");
        let why = stderr
            .lines()
            .find(|l| l.contains("exited") || l.contains("timeout") || l.contains("Error"))
            .unwrap_or("see stderr")
            .trim()
            .to_owned();
        return Err(why);
    }
    Ok(serde_json::from_slice(&out.stdout).expect("one JSON line"))
}

/// A SQLite index with `receipts` verified receipts (one attribution each).
fn synthetic_index(path: &str, receipts: usize) {
    let mut db = Database::open(path).unwrap();
    let t = |n| catalog::table(n).unwrap();
    let users = 1_000;
    let models = 10;
    db.transaction(|sql| {
        let mut rows = Vec::new();
        for m in 1..=models {
            let mut r = Row::new(t("models"), m.to_string());
            r.set("model_id", m as i64).set("active", true);
            rows.push(r);
        }
        sql.write(&rows, true)?;
        let accounts: Vec<Row> = (0..users)
            .map(|u| {
                Row::new(
                    t("accounts"),
                    format!("{:#x}", Address::with_last_byte(u as u8).create(u as u64)),
                )
            })
            .collect();
        sql.write(&accounts, true)
    })
    .unwrap();
    let per_batch = 1_000;
    let mut written = 0;
    while written < receipts {
        let n = (receipts - written).min(50_000);
        db.transaction(|sql| {
            let mut batch_rows = Vec::new();
            let mut rs = Vec::with_capacity(n);
            let mut ats = Vec::with_capacity(n);
            for i in written..written + n {
                let block = (i / per_batch) as i64 + 1;
                let batch = format!("0x00000000000000000000000000000000000000aa-{block}");
                if i % per_batch == 0 {
                    let mut b = Row::new(t("batches"), batch.clone());
                    b.set("operator", "0x00000000000000000000000000000000000000aa")
                        .set("sequence", block)
                        .set("verification", "verified")
                        .set("receipts", per_batch as i64)
                        .set("block_number", block);
                    batch_rows.push(b);
                }
                let user = format!(
                    "{:#x}",
                    Address::with_last_byte((i % users) as u8).create((i % users) as u64)
                );
                let id = format!("{:#066x}", U256::from(i as u64 + 1));
                let mut r = Row::new(t("receipts"), id.clone());
                r.set("batch", batch.clone())
                    .set("operator", "0x00000000000000000000000000000000000000aa")
                    .set("payer", user)
                    .set("model", ((i % models) + 1).to_string())
                    .set("tokens_in", 20i64)
                    .set("tokens_out", 64i64)
                    .set("fee", U256::from(168_000_000_000_000_000u64))
                    .set("datanet", "1")
                    .set("block_number", block)
                    .set("log_index", (i % per_batch) as i64)
                    .set("receipt_timestamp", 1_700_000_000 + i as i64);
                rs.push(r);
                let mut a = Row::new(t("attributions"), format!("{id}-0"));
                a.set("receipt", id)
                    .set("model", ((i % models) + 1).to_string())
                    .set("datanet", "1")
                    .set("contribution", ((i % 50) + 1).to_string())
                    .set("ppm", 250_000i64)
                    .set("fee_share", U256::from(42_000_000_000_000_000u64))
                    .set("spans", "[]")
                    .set("block_number", block);
                ats.push(a);
            }
            sql.write(&batch_rows, true)?;
            sql.write(&rs, true)?;
            sql.write(&ats, true)
        })
        .unwrap();
        written += n;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Sends one query and checks it was answered without errors. The body is searched, not
/// parsed: this crate is built unoptimized in the dev profile, and parsing a page into a
/// `serde_json::Value` here took longer than the server took to answer it.
async fn ask(client: &reqwest::Client, url: &str, query: &str) {
    let response = client
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let body = response.bytes().await.unwrap();
    let body = std::str::from_utf8(&body).unwrap();
    assert!(
        body.starts_with("{\"data\":{") && !body.contains("\"errors\":"),
        "{body}"
    );
}

/// A query family: the `i`th query's text.
type QueryOf = Box<dyn Fn(usize) -> String + Send + Sync>;

async fn graphql_latency(receipts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("receipts.db").display().to_string();
    let t = Instant::now();
    synthetic_index(&path, receipts);
    println!(
        "graphql: {receipts} receipts + {receipts} attributions written in {:.1} s (SQLite)",
        t.elapsed().as_secs_f64()
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = openledger_graphql::serve(&path, "127.0.0.1:0".parse().unwrap(), async {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    let url = format!("http://{addr}/graphql");
    let users: Vec<String> = (0..1_000)
        .map(|u| format!("{:#x}", Address::with_last_byte(u as u8).create(u as u64)))
        .collect();
    let families: Vec<(&str, QueryOf)> = vec![
        (
            "a user's receipts, newest first, with attributions (first 50)",
            Box::new(move |i| {
                format!(
                    r#"{{ receipts(first: 50, where: {{ payer: "{}" }}, orderBy: blockNumber, orderDirection: desc) {{ id fee tokensOut model {{ id }} attributions {{ ppm contribution {{ id }} }} }} }}"#,
                    users[i % users.len()]
                )
            }),
        ),
        (
            "receipts connection page (100, cursor)",
            Box::new(|i| {
                format!(
                    r#"{{ receiptsConnection(first: 100, after: "{:#066x}") {{ totalCount edges {{ cursor node {{ id fee }} }} pageInfo {{ hasNextPage endCursor }} }} }}"#,
                    U256::from((i * 7_919) as u64)
                )
            }),
        ),
        (
            "a contribution's attribution history (first 100)",
            Box::new(|i| {
                format!(
                    r#"{{ attributions(first: 100, where: {{ contribution: "{}" }}, orderBy: blockNumber, orderDirection: desc) {{ ppm feeShare receipt {{ id payer {{ id }} }} }} }}"#,
                    (i % 50) + 1
                )
            }),
        ),
    ];
    let client = reqwest::Client::new();
    let per_family = 400;
    println!("| query ({per_family} per family) | clients | p50 ms | p99 ms | queries/s |");
    println!("|---|---|---|---|---|");
    let families = std::sync::Arc::new(families);
    // One client: the latency of a query on its own; four (twice the cores here): under load.
    for (f, clients) in (0..families.len()).flat_map(|f| [(f, 1), (f, 4)]) {
        // Warm-up, unmeasured: the first queries of a family fault the index pages they read
        // into memory.
        for i in 0..20 {
            ask(&client, &url, &(families[f].1)(100_000 + i)).await;
        }
        let started = Instant::now();
        let runs = (0..clients).map(|c| {
            let (client, url, families) = (client.clone(), url.clone(), families.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in 0..per_family / clients {
                    let q = (families[f].1)(c * 1_000 + i);
                    let t = Instant::now();
                    ask(&client, &url, &q).await;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        });
        let mut lat: Vec<f64> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flat_map(|r| r.unwrap())
            .collect();
        let wall = started.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        println!(
            "| {} | {clients} | {:.1} | {:.1} | {:.0} |",
            families[f].0,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.len() as f64 / wall
        );
    }
    let _ = stop_tx.send(());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let transfers = env("OPENLEDGER_BENCH_TRANSFERS", 100_000);
    let receipts = env("OPENLEDGER_BENCH_RECEIPTS", 1_000_000);
    let with_ponder = env("OPENLEDGER_BENCH_PONDER", 1) != 0;
    let runs = env("OPENLEDGER_BENCH_BACKFILL_RUNS", 3).max(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    println!(
        "machine: {cpu}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.json");
    let devnet = spawn(DevnetConfig {
        port: 0,
        accounts: 10,
        manifest: manifest.clone(),
        oracle: None,
        paid: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let rpc = devnet.rpc_url();
    npm_ci();
    let t = Instant::now();
    let gen_events = Command::new("node")
        .current_dir(ponder_dir())
        .arg("gen-events.mjs")
        .args(["--rpc", &rpc, "--manifest"])
        .arg(&manifest)
        .args(["--transfers", "100", "--batches", "300", "--users", "6"])
        .output()
        .expect("node runs");
    assert!(
        gen_events.status.success(),
        "{}",
        String::from_utf8_lossy(&gen_events.stderr)
    );
    bulk_transfers(
        &rpc,
        devnet.deployment().contracts.token,
        devnet.accounts()[0],
        transfers,
    )
    .await;
    let p = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    let to_block = p.get_block_number().await.unwrap();
    let _: Value = p
        .raw_request("anvil_mine".into(), (U256::from(40),))
        .await
        .unwrap();
    println!(
        "history: {} blocks of events generated in {:.1} s",
        to_block - devnet.deployment().deploy_block,
        t.elapsed().as_secs_f64()
    );

    let admin = postgres_admin();
    // Each database is backfilled `runs` times from empty; the median run is reported.
    let mut s_runs = Vec::new();
    let mut pg_runs = Vec::new();
    let mut events = 0;
    for run in 0..runs {
        let sqlite = dir
            .path()
            .join(format!("bench-{run}.db"))
            .display()
            .to_string();
        let (e, secs) = backfill(&rpc, &devnet, &sqlite).await;
        let pg = fresh_postgres(&admin, "bench_backfill");
        let (pg_e, pg_secs) = backfill(&rpc, &devnet, &pg).await;
        assert_eq!(e, pg_e);
        events = e;
        s_runs.push(secs);
        pg_runs.push(pg_secs);
        println!("backfill run {run}: SQLite {secs:.2} s, PostgreSQL {pg_secs:.2} s");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s_secs, pg_secs) = (median(&mut s_runs), median(&mut pg_runs));
    println!(
        "\nbackfill of {events} suite events (deployment block to head, fresh database each, median of {runs} runs):\n"
    );
    println!("| indexer | database | seconds | events/s |");
    println!("|---|---|---|---|");
    println!(
        "| openledger | SQLite | {s_secs:.2} | {:.0} |",
        events as f64 / s_secs
    );
    println!(
        "| openledger | PostgreSQL | {pg_secs:.2} | {:.0} |",
        events as f64 / pg_secs
    );
    if with_ponder {
        let pglite = ponder(&rpc, &manifest, to_block, events, None);
        let ponder_pg_url = fresh_postgres(&admin, "bench_ponder");
        let ponder_pg = ponder(&rpc, &manifest, to_block, events, Some(&ponder_pg_url));
        let mut best = 0.0f64;
        for (name, run) in [("PGlite", &pglite), ("PostgreSQL", &ponder_pg)] {
            match run {
                Ok(v) => {
                    let per_second = v["eventsPerSecond"].as_f64().unwrap();
                    best = best.max(per_second);
                    println!(
                        "| ponder 1.0.0 | {name} | {:.2} | {per_second:.0} |",
                        v["seconds"].as_f64().unwrap()
                    );
                }
                Err(why) => println!("| ponder 1.0.0 | {name} | failed: {why} | - |"),
            }
        }
        if best > 0.0 {
            println!(
                "\nopenledger SQLite / best Ponder: {:.1}x",
                events as f64 / s_secs / best
            );
        }
    }
    drop(devnet);

    println!();
    graphql_latency(receipts).await;
}
