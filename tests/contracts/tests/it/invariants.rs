//! Random operation sequences against one anvil, a fresh world per case. The seed is printed;
//! rerun a failure with `OPENLEDGER_PROPTEST_SEED=<seed>`.

use openledger_contract_tests::{evm::AnvilChain, fixtures::world, invariants};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

#[test]
fn invariants_hold_under_random_operations() {
    let seed: u64 = std::env::var("OPENLEDGER_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let cases: u32 = std::env::var("OPENLEDGER_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    println!("OPENLEDGER_PROPTEST_SEED={seed} (cases: {cases})");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let chain = runtime.block_on(AnvilChain::start());
    let result = runner.run(&invariants::ops(24), |ops| {
        runtime.block_on(async {
            let suite = world(&chain).await;
            invariants::check_operations(&suite, &ops).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("invariant violated (OPENLEDGER_PROPTEST_SEED={seed}): {e}");
    }
}
