//! Paid against unpaid inference on the same model, and the paid path's own costs. Prints
//! figures; asserts nothing about speed.
//!
//! ```sh
//! cargo bench -p openledger-devnet --bench paid            # release build of everything
//! OPENLEDGER_BENCH_REQUESTS=32 OPENLEDGER_BENCH_ROUNDS=3 cargo bench -p openledger-devnet --bench paid
//! ```
//!
//! - throughput (requests/s, completion tokens/s) and p50/p99 latency at 1 and 8 concurrent
//!   clients, unpaid (development mode) and paid (voucher checked on chain, reservation,
//!   attribution, receipt fsync'd) on one devnet: same model, same prompts, same max_tokens;
//! - attribution latency inside the paid path (the oracle's histogram);
//! - receipts journaled per second (append + fdatasync, one writer, this machine's disk).
//!
//! Gas per inference for a 1,000-receipt batch is `tests/contracts`' `settlement_gas` bench.
//! Needs anvil (`npm ci`) and the model (`scripts/fetch-model.sh`).

use std::time::{Duration, Instant};

use openledger_devnet::{DevnetConfig, spawn};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `requests` completions at `concurrency`; returns (wall seconds, latencies, tokens).
async fn load(
    url: &str,
    key: Option<&str>,
    model: &str,
    requests: usize,
    concurrency: usize,
) -> (f64, Vec<f64>, u64) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let started = Instant::now();
    let per_client = requests.div_ceil(concurrency);
    let runs = (0..concurrency).map(|c| {
        let client = client.clone();
        let (url, key, model) = (url.to_string(), key.map(str::to_string), model.to_string());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut tokens = 0;
            for i in 0..per_client {
                let body = json!({
                    "model": model, "prompt": format!("Story {c}-{i}: Once upon a time"),
                    "max_tokens": 32, "temperature": 0,
                });
                let mut req = client.post(format!("{url}/v1/completions")).json(&body);
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let t = Instant::now();
                let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
                lat.push(t.elapsed().as_secs_f64());
                tokens += v["usage"]["completion_tokens"]
                    .as_u64()
                    .expect("a completion");
            }
            (lat, tokens)
        })
    });
    let mut all = Vec::new();
    let mut tokens = 0;
    for r in futures_util::future::join_all(runs).await {
        let (lat, t) = r.unwrap();
        all.extend(lat);
        tokens += t;
    }
    all.sort_by(f64::total_cmp);
    (started.elapsed().as_secs_f64(), all, tokens)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let requests = env("OPENLEDGER_BENCH_REQUESTS", 16);
        let rounds = env("OPENLEDGER_BENCH_ROUNDS", 3);
        let dir = tempfile::tempdir().unwrap();
        let model_path = openledger_engine::default_model_dir().join(openledger_engine::DEFAULT_MODEL_FILE);
        let oracle = |listen: &str| {
            let mut c = openledger_oracle::Config {
                listen: listen.parse().unwrap(),
                ..Default::default()
            };
            c.engine.model_path = model_path.clone();
            c
        };
        let devnet = spawn(DevnetConfig {
            port: 0,
            manifest: dir.path().join("deployment.json"),
            oracle: Some(oracle("127.0.0.1:0")),
            ..Default::default()
        })
        .await
        .expect("paid devnet");
        let demo = devnet.demo().unwrap().clone();
        let paid_url = devnet.oracle_url().unwrap();
        let unpaid = openledger_oracle::Server::bind(oracle("127.0.0.1:0")).await.unwrap();
        let unpaid_url = format!("http://{}", unpaid.local_addr());
        tokio::spawn(unpaid.run_until(std::future::pending()));
        let model = format!("model-{}", demo.model_id);
        println!("paid vs unpaid, {rounds} alternating rounds of {requests} requests (at most 32 completion tokens each), same model ({})", model_path.display());
        println!("{:<8} {:>6} {:>10} {:>10} {:>9} {:>9}", "mode", "conc", "req/s", "tok/s", "p50 ms", "p99 ms");
        let modes = [
            ("unpaid", &unpaid_url, None, "smollm2-135m"),
            ("paid", &paid_url, Some(demo.api_key.as_str()), model.as_str()),
        ];
        for concurrency in [1, 8] {
            // Warm up both, then alternate unpaid and paid rounds so drift on a shared
            // machine hits both alike; each row is its rounds together.
            for (_, url, key, name) in &modes {
                load(url, *key, name, concurrency, concurrency).await;
            }
            let mut runs: [(f64, Vec<f64>, u64); 2] = Default::default();
            for _ in 0..rounds {
                for (i, (_, url, key, name)) in modes.iter().enumerate() {
                    let (secs, lat, tokens) = load(url, *key, name, requests, concurrency).await;
                    runs[i].0 += secs;
                    runs[i].1.extend(lat);
                    runs[i].2 += tokens;
                }
            }
            let mut rates = Vec::new();
            for (i, (mode, ..)) in modes.iter().enumerate() {
                let (secs, lat, tokens) = &mut runs[i];
                lat.sort_by(f64::total_cmp);
                let rate = *tokens as f64 / *secs;
                rates.push(rate);
                println!(
                    "{mode:<8} {concurrency:>6} {:>10.2} {rate:>10.1} {:>9.1} {:>9.1}",
                    lat.len() as f64 / *secs,
                    pct(lat, 0.5) * 1e3,
                    pct(lat, 0.99) * 1e3
                );
            }
            println!(
                "paid throughput at {concurrency}: {:+.1} % of unpaid",
                (rates[1] / rates[0] - 1.0) * 100.0
            );
        }
        let metrics = reqwest::get(format!("{paid_url}/metrics")).await.unwrap().text().await.unwrap();
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let (sum, count) = (value("openledger_attribution_seconds_sum"), value("openledger_attribution_seconds_count"));
        println!("attribution inside the paid path: mean {:.3} ms over {count} requests", sum / count * 1e3);
        for (what, name) in [
            ("paid checks before compute (chain facts, signature, reservation)", "openledger_authorize_seconds"),
            ("receipt after compute (fee, attribution, journal fsync)", "openledger_record_seconds"),
        ] {
            let (sum, count) = (value(&format!("{name}_sum")), value(&format!("{name}_count")));
            println!("{what}: mean {:.2} ms over {count} requests", sum / count * 1e3);
        }

        // The journal: receipts appended and fsync'd per second, one writer.
        let served = devnet.payments().unwrap().ledger().all_receipts();
        let record = openledger_payments::Record::Served(Box::new(openledger_payments::Served {
            receipt: served[0].clone(),
            api_key: demo.api_key.clone(),
            spans: Vec::new(),
        }));
        let (journal, _) = openledger_payments::Journal::open(dir.path().join("bench-journal.log")).unwrap();
        let n = 500;
        let t = Instant::now();
        for _ in 0..n {
            journal.append(&record).unwrap();
        }
        println!("journal: {:.0} receipts/s appended and fdatasync'd (one writer, {n} receipts)", n as f64 / t.elapsed().as_secs_f64());
        println!("gas per inference for a 1,000-receipt batch: cargo bench -p openledger-contract-tests --bench settlement_gas");
        devnet.shutdown().await.unwrap();
    });
}
