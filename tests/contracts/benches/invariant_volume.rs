//! The invariant checker at foundry's default volume (256 sequences of 500 calls) on the
//! in-process revm backend, and the same checker on anvil over a small sample for comparison.
//! Each sequence runs on a fresh world (as `tests/it/invariants.rs` does), on one chain per
//! backend; the wall time includes building those worlds. No shrinking: a violation fails the
//! run with its seed.
//!
//! Env: `OPENLEDGER_BENCH_SEQUENCES` (default 256) and `OPENLEDGER_BENCH_CALLS` (default 500)
//! size the revm run; `OPENLEDGER_BENCH_ANVIL_SEQUENCES` (default 4) and
//! `OPENLEDGER_BENCH_ANVIL_CALLS` (default 50) the anvil sample (0 sequences skips it);
//! `OPENLEDGER_TEST_SEED` sets the seed (default the test's).
//!
//! Run: `cargo bench -p openledger-contract-tests --bench invariant_volume` (anvil needs
//! `npm ci`).

use std::{future::Future, time::Instant};

use openledger_contract_tests::{
    backend::Chain,
    evm::AnvilChain,
    fixtures::world,
    invariants::{self, DEFAULT_SEED, env_or},
    revm::RevmChain,
};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `sequences` random sequences of exactly `calls` operations on the chain `start` brings
/// up, and prints the throughput.
fn run<C: Chain, F: Future<Output = C>>(
    backend: &str,
    start: impl FnOnce() -> F,
    sequences: u32,
    calls: usize,
    seed: u64,
) {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: sequences,
        failure_persistence: None,
        max_shrink_iters: 0,
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
        .expect("tokio runtime");
    let chain = runtime.block_on(start());
    let strategy = proptest::collection::vec(invariants::op(), calls);
    let started = Instant::now();
    let result = runner.run(&strategy, |ops| {
        runtime.block_on(async {
            let suite = world(&chain).await;
            invariants::check_operations(&suite, &ops).await;
        });
        Ok(())
    });
    let wall = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        panic!("invariant violated on {backend} (OPENLEDGER_TEST_SEED={seed}): {e}");
    }
    let total = u64::from(sequences) * calls as u64;
    println!(
        "backend={backend} sequences={sequences} calls_per_sequence={calls} total_calls={total} \
         wall_s={wall:.2} calls_per_s={:.1} OPENLEDGER_TEST_SEED={seed}",
        total as f64 / wall
    );
}

fn main() {
    let seed: u64 = env_or("OPENLEDGER_TEST_SEED", DEFAULT_SEED);
    let sequences: u32 = env_or("OPENLEDGER_BENCH_SEQUENCES", 256);
    let calls: usize = env_or("OPENLEDGER_BENCH_CALLS", 500);
    let anvil_sequences: u32 = env_or("OPENLEDGER_BENCH_ANVIL_SEQUENCES", 4);
    let anvil_calls: usize = env_or("OPENLEDGER_BENCH_ANVIL_CALLS", 50);
    run(
        "revm",
        || async { RevmChain::new() },
        sequences,
        calls,
        seed,
    );
    if anvil_sequences > 0 {
        run(
            "anvil",
            AnvilChain::start,
            anvil_sequences,
            anvil_calls,
            seed,
        );
    }
}
