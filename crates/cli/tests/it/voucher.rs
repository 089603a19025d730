//! `openledger voucher sign` against a real anvil with the suite deployed (needs `npm ci`).

use alloy::primitives::U256;
use openledger_devnet::DevnetConfig;

use crate::openledger;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voucher_sign_prints_an_api_key_the_oracle_reads() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.json");
    let devnet = openledger_devnet::spawn(DevnetConfig {
        port: 0,
        manifest: manifest.clone(),
        oracle: None,
        paid: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let user = devnet.dev_signer(5).unwrap();
    let operator = devnet.accounts()[1];
    let out = openledger()
        .args([
            "voucher",
            "sign",
            "--operator",
            &operator.to_string(),
            "--model",
            "7",
            "--cap",
            "123456789",
            "--nonce",
            "3",
            "--manifest",
        ])
        .arg(&manifest)
        .env(
            "OPENLEDGER_USER_PRIVATE_KEY",
            alloy::hex::encode(user.to_bytes()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    let signed =
        openledger_billing::voucher::decode_api_key(key.trim()).expect("a canonical API key");
    let v = &signed.voucher;
    assert_eq!(
        (v.user, v.operator, v.modelId, v.cumulativeCap, v.nonce),
        (
            user.address(),
            operator,
            U256::from(7),
            U256::from(123_456_789u64),
            3
        )
    );
    let d = devnet.deployment();
    let domain =
        openledger_primitives::eip712::settlement_domain(d.chain_id, d.contracts.settlement);
    assert_eq!(
        openledger_billing::voucher::recover_signer(&domain, &signed).unwrap(),
        user.address()
    );
    // No key: a clear error, nothing printed.
    let out = openledger()
        .args([
            "voucher",
            "sign",
            "--operator",
            &operator.to_string(),
            "--model",
            "7",
            "--cap",
            "1",
            "--manifest",
        ])
        .arg(&manifest)
        .env_remove("OPENLEDGER_USER_PRIVATE_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPENLEDGER_USER_PRIVATE_KEY"));
}
