//! The devnet end to end: `spawn` against the real anvil (needs `npm ci`) and the real
//! SmolLM2-135M model (needs `scripts/fetch-model.sh`, which puts it in
//! `$OPENLEDGER_MODEL_DIR`); the workspace test command installs both. The tests fail, not
//! skip, when either is missing.

mod indexer;
mod indexer_history;
mod paid;
mod paid_chain;

use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use openledger_chain::deploy::{DeployConfig, read_manifest};
use openledger_devnet::{DevnetConfig, spawn};
use openledger_primitives::bindings::{OpenToken, Settlement};

fn model_path() -> std::path::PathBuf {
    let path = openledger_engine::default_model_dir().join(openledger_engine::DEFAULT_MODEL_FILE);
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/fetch-model.sh (or set OPENLEDGER_MODEL_DIR)",
        path.display()
    );
    path
}

/// A devnet on free ports, its manifest in `dir`.
fn config(dir: &std::path::Path, oracle: bool) -> DevnetConfig {
    let oracle = oracle.then(|| {
        let mut c = openledger_oracle::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        };
        c.engine.model_path = model_path();
        c
    });
    DevnetConfig {
        port: 0,
        accounts: 2,
        deploy: DeployConfig {
            withdrawal_delay: 77,
            ..Default::default()
        },
        manifest: dir.join("deployment.json"),
        oracle,
        paid: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_deploys_the_suite_and_serves_the_oracle_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = spawn(config(dir.path(), true))
        .await
        .expect("devnet starts");

    // The chain has the contracts, deployed with the config's parameters, and the manifest
    // on disk says where they are.
    let d = devnet.deployment().clone();
    assert_eq!(d.chain_id, 31337);
    assert_eq!(d.deployer, devnet.accounts()[0]);
    assert_eq!(read_manifest(devnet.manifest()).unwrap(), d);
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url().parse().unwrap());
    let c = d.contracts;
    for (name, address) in [
        ("token", c.token),
        ("datanets", c.datanets),
        ("models", c.models),
        ("operators", c.operators),
        ("settlement", c.settlement),
    ] {
        let code = provider.get_code_at(address).await.unwrap();
        assert!(!code.is_empty(), "no code for {name} at {address}");
    }
    let supply = OpenToken::new(c.token, &provider)
        .totalSupply()
        .call()
        .await
        .unwrap();
    assert_eq!(supply, DeployConfig::default().supply);
    let delay = Settlement::new(c.settlement, &provider)
        .withdrawalDelay()
        .call()
        .await
        .unwrap();
    assert_eq!(delay, 77);
    assert!(
        provider.get_balance(d.deployer).await.unwrap() > U256::ZERO,
        "dev account funded"
    );

    // The oracle answers health and one completion of the real model.
    let url = devnet.oracle_url().expect("an oracle was started");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let health = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let completion: serde_json::Value = http
        .post(format!("{url}/v1/completions"))
        .json(&serde_json::json!({
            "model": "smollm2-135m",
            "prompt": "The capital of France is",
            "max_tokens": 4,
            "temperature": 0
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completion["usage"]["completion_tokens"], 4, "{completion}");
    assert!(
        completion["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Paris"),
        "{completion}"
    );

    // Shutdown stops both.
    let (rpc, oracle) = (devnet.rpc_url(), url);
    devnet.shutdown().await.expect("clean shutdown");
    assert!(http.get(format!("{oracle}/health")).send().await.is_err());
    let after = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    assert!(after.get_chain_id().await.is_err(), "anvil still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_only_devnet_stops_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = spawn(config(dir.path(), false))
        .await
        .expect("devnet starts");
    assert_eq!(devnet.oracle_url(), None);
    let rpc = devnet.rpc_url();
    let provider = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    assert_eq!(provider.get_chain_id().await.unwrap(), 31337);
    drop(devnet);
    assert!(
        provider.get_chain_id().await.is_err(),
        "anvil still answers"
    );
}

#[tokio::test]
async fn no_accounts_is_refused_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let err = spawn(DevnetConfig {
        accounts: 0,
        ..config(dir.path(), false)
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    assert!(!dir.path().join("deployment.json").exists());
}
