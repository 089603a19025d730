//! The contract scenarios and invariant checks on the ink! implementation (`ink::…`), each on a
//! fresh in-process pallet-revive chain. Every scenario registered with `scenario!` is a trial
//! here, as it is on the EVM backends, except the ones that need what pallet-revive 0.10 lacks
//! (listed in [`NEEDS_EVM`], each with the reason).

use libtest_mimic::{Arguments, Failed, Trial};
use openledger_contract_tests::{backend::BoxChain, invariants, scenarios};
use openledger_ink_tests::InkChain;

/// Scenarios that cannot run on pallet-revive 0.10, and why.
const NEEDS_EVM: &[(&str, &str)] = &[(
    "eip7702_delegation_after_signing_still_pays",
    "pallet-revive has no EIP-7702 delegation",
)];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = scenarios::all()
        .into_iter()
        .filter(|s| !NEEDS_EVM.iter().any(|(name, _)| *name == s.name))
        .map(|scenario| {
            Trial::test(format!("ink::{}", scenario.path()), move || {
                runtime().block_on(scenario.run(BoxChain::new(InkChain::new())));
                Ok::<(), Failed>(())
            })
        })
        .collect();
    trials.push(Trial::test(
        "ink::invariants::invariants_hold_under_random_operations",
        || {
            invariants::hold_under_random_operations(|| async { InkChain::new() });
            Ok(())
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
