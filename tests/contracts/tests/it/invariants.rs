//! Random operation sequences against one chain of each backend, a fresh world per case. The
//! seed is fixed ([`DEFAULT_SEED`]) and printed; `OPENLEDGER_TEST_SEED=<seed>` replays or
//! varies it and `OPENLEDGER_TEST_CASES=<n>` sets the number of cases (default 16).

use std::future::Future;

use openledger_contract_tests::{backend::Chain, fixtures::world, invariants};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The seed used unless `OPENLEDGER_TEST_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 20_261_201;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a valid number")),
        Err(_) => default,
    }
}

/// Runs the cases on the chain that `start` brings up (once, for all of them).
pub fn invariants_hold_under_random_operations<C: Chain, F: Future<Output = C>>(
    start: impl FnOnce() -> F,
) {
    let seed: u64 = env_or("OPENLEDGER_TEST_SEED", DEFAULT_SEED);
    let cases: u32 = env_or("OPENLEDGER_TEST_CASES", 16);
    println!("OPENLEDGER_TEST_SEED={seed} (cases: {cases}; set OPENLEDGER_TEST_SEED to vary)");
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
    let chain = runtime.block_on(start());
    let result = runner.run(&invariants::ops(24), |ops| {
        runtime.block_on(async {
            let suite = world(&chain).await;
            invariants::check_operations(&suite, &ops).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("invariant violated (OPENLEDGER_TEST_SEED={seed}): {e}");
    }
}
