//! The invariant checker of `tests/contracts` at foundry's default volume (256 sequences of
//! 500 calls) on the ink! implementation, in the in-process pallet-revive runtime: the ink!
//! counterpart of `tests/contracts/benches/invariant_volume.rs` (revm and anvil), with the same
//! operations, checks and seed. Each sequence runs on a fresh world, on one chain; the wall
//! time includes building those worlds.
//!
//! Env: `OPENLEDGER_BENCH_SEQUENCES` (default 256) and `OPENLEDGER_BENCH_CALLS` (default 500)
//! size the run; `OPENLEDGER_TEST_SEED` sets the seed (default the test's).
//!
//! Run: `cargo bench -p openledger-ink-tests --bench invariant_volume --profile dev` (the
//! contracts come from `contracts/ink/out`, which `scripts/build-ink.sh` builds).

use openledger_contract_tests::invariants::{DEFAULT_SEED, env_or, volume};
use openledger_ink_tests::InkChain;

fn main() {
    volume(
        "ink",
        || async { InkChain::new() },
        env_or("OPENLEDGER_BENCH_SEQUENCES", 256),
        env_or("OPENLEDGER_BENCH_CALLS", 500),
        env_or("OPENLEDGER_TEST_SEED", DEFAULT_SEED),
    );
}
