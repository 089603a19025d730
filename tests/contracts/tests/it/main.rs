//! The contract scenarios and invariant checks on the Solidity implementation, each on its own
//! fresh chain of each EVM backend: anvil (`anvil::…`; needs `npm ci`, which the README's test
//! command runs) and in-process revm (`revm::…`).
//!
//! Every scenario registered with `scenario!` (see `scenarios::all`) is one trial here per
//! backend, so none is listed by hand; `cargo test -p openledger-contract-tests --test it
//! <filter>` runs the matching ones (e.g. `revm::`), as with the standard harness.

use std::future::Future;

use libtest_mimic::{Arguments, Failed, Trial};
use openledger_contract_tests::{
    backend::BoxChain, evm::AnvilChain, invariants, revm::RevmChain, scenarios, scenarios::Scenario,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One trial per registered scenario, each on a fresh chain from `start`, named
/// `<backend>::<module>::<name>`.
fn scenario_trials<F>(backend: &'static str, start: fn() -> F) -> impl Iterator<Item = Trial>
where
    F: Future<Output = BoxChain> + 'static,
{
    scenarios::all().into_iter().map(move |scenario: Scenario| {
        Trial::test(format!("{backend}::{}", scenario.path()), move || {
            runtime().block_on(async {
                let chain = start().await;
                scenario.run(chain).await;
            });
            Ok::<(), Failed>(())
        })
    })
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = scenario_trials("anvil", || async {
        BoxChain::new(AnvilChain::start().await)
    })
    .chain(scenario_trials("revm", || async {
        BoxChain::new(RevmChain::new())
    }))
    .collect();
    trials.push(Trial::test(
        "anvil::invariants::invariants_hold_under_random_operations",
        || {
            invariants::hold_under_random_operations(AnvilChain::start);
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "revm::invariants::invariants_hold_under_random_operations",
        || {
            invariants::hold_under_random_operations(|| async { RevmChain::new() });
            Ok(())
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
