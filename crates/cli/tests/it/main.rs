//! The `openledger` binary against a real anvil (needs `npm ci`; the test command runs it).

mod config;
mod crash;
mod indexer_kill;
mod voucher;

use std::process::Command;

use openledger_chain::{anvil::spawn_anvil, deploy::read_manifest};

/// The binary, with no component setting inherited from the caller's environment.
pub fn openledger() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openledger"));
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if [
            "OPENLEDGER_ORACLE_",
            "OPENLEDGER_DEPLOY_",
            "OPENLEDGER_DEVNET_",
            "OPENLEDGER_INDEXER_",
            "OPENLEDGER_GRAPHQL_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || name == "OPENLEDGER_CONFIG"
        {
            cmd.env_remove(&var);
        }
    }
    cmd
}

#[test]
fn deploy_writes_a_manifest_readers_accept() {
    let anvil = spawn_anvil(None, 31337, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.json");
    let key = alloy::hex::encode_prefixed(anvil.keys()[1].to_bytes());
    let treasury = anvil.addresses()[2];
    let config = dir.path().join("openledger.toml");
    std::fs::write(
        &config,
        "[deploy]\nmin_stake = \"7\"\nwithdrawal_delay = 60\n",
    )
    .unwrap();
    let out = openledger()
        .args([
            "deploy",
            "--rpc-url",
            &anvil.endpoint(),
            "--treasury",
            &treasury.to_string(),
            "--out",
        ])
        .arg(&manifest)
        .arg("--config")
        .arg(&config)
        .env("OPENLEDGER_DEPLOY_PRIVATE_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(&key[2..]) && !String::from_utf8_lossy(&out.stderr).contains(&key[2..]),
        "key leaked to output"
    );

    let d = read_manifest(&manifest).unwrap();
    assert_eq!(d.chain_id, 31337);
    assert_eq!(d.deployer, anvil.addresses()[1]);
    assert_eq!((d.governance, d.treasury), (anvil.addresses()[1], treasury));
    assert!(stdout.contains(&d.contracts.settlement.to_string()));

    // The TOML parameters reached the chain.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use alloy::providers::ProviderBuilder;
        use openledger_primitives::bindings::{OperatorRegistry, Settlement};
        let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
        let min = OperatorRegistry::new(d.contracts.operators, &provider)
            .minStake()
            .call()
            .await
            .unwrap();
        assert_eq!(min, alloy::primitives::U256::from(7));
        let delay = Settlement::new(d.contracts.settlement, &provider)
            .withdrawalDelay()
            .call()
            .await
            .unwrap();
        assert_eq!(delay, 60);
    });
}

#[test]
fn deploy_without_a_signer_says_what_to_do() {
    let out = openledger()
        .args(["deploy", "--rpc-url", "http://127.0.0.1:9"])
        .env_remove("OPENLEDGER_DEPLOY_PRIVATE_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPENLEDGER_DEPLOY_PRIVATE_KEY"));
}

#[test]
fn deploy_refuses_a_malformed_key() {
    let out = openledger()
        .args(["deploy", "--private-key", "0x1234"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid hex private key"));
}

#[test]
fn oracle_serve_refuses_a_bad_setting_before_loading_anything() {
    let out = openledger()
        .args(["oracle", "serve", "--weight-format", "int3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("int3"), "{stderr}");

    let out = openledger()
        .args(["oracle", "serve"])
        .env("OPENLEDGER_ORACLE_MAX_BATCH", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPENLEDGER_ORACLE_MAX_BATCH"));
}

#[test]
fn the_tch_backend_is_chosen_by_flag_and_a_build_without_it_says_how_to_get_it() {
    let out = openledger()
        .args(["oracle", "serve", "--backend", "torch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use candle or tch"), "{stderr}");

    // This test binary is built without the `tch` feature (the test command's default build).
    let out = openledger()
        .args(["oracle", "serve", "--backend", "tch", "--model", "model.pt"])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without the tch feature") && stderr.contains("--features tch"),
        "{stderr}"
    );
}
