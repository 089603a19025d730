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

use openledger_contract_tests::{
    evm::AnvilChain,
    invariants::{DEFAULT_SEED, env_or, volume},
    revm::RevmChain,
};

fn main() {
    let seed: u64 = env_or("OPENLEDGER_TEST_SEED", DEFAULT_SEED);
    let sequences: u32 = env_or("OPENLEDGER_BENCH_SEQUENCES", 256);
    let calls: usize = env_or("OPENLEDGER_BENCH_CALLS", 500);
    let anvil_sequences: u32 = env_or("OPENLEDGER_BENCH_ANVIL_SEQUENCES", 4);
    let anvil_calls: usize = env_or("OPENLEDGER_BENCH_ANVIL_CALLS", 50);
    volume(
        "revm",
        || async { RevmChain::new() },
        sequences,
        calls,
        seed,
    );
    if anvil_sequences > 0 {
        volume(
            "anvil",
            AnvilChain::start,
            anvil_sequences,
            anvil_calls,
            seed,
        );
    }
}
