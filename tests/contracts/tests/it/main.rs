//! The contract scenarios and invariant checks on the Solidity implementation, each on its own
//! fresh anvil (needs `npm ci`; the README's test command runs it).
//!
//! Every scenario registered with `scenario!` (see `scenarios::all`) is one trial here, so
//! none is listed by hand; `cargo test -p openledger-contract-tests --test it <filter>` runs
//! the matching ones, as with the standard harness.

mod invariants;

use libtest_mimic::{Arguments, Failed, Trial};
use openledger_contract_tests::{backend::BoxChain, evm::AnvilChain, scenarios};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = scenarios::all()
        .into_iter()
        .map(|scenario| {
            Trial::test(format!("anvil::{}", scenario.path()), move || {
                runtime().block_on(async {
                    let chain = BoxChain::new(AnvilChain::start().await);
                    scenario.run(chain).await;
                });
                Ok::<(), Failed>(())
            })
        })
        .collect();
    trials.push(Trial::test(
        "anvil::invariants::invariants_hold_under_random_operations",
        || {
            invariants::invariants_hold_under_random_operations();
            Ok(())
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
