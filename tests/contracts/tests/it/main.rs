//! The contract scenarios and invariant checks on the Solidity implementation, each on its own
//! fresh anvil (needs `npm ci`; the README's test command runs it).

mod invariants;

use openledger_contract_tests::{evm::AnvilChain, scenarios};

macro_rules! on_anvil {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                scenarios::$module::$name(AnvilChain::start().await).await;
            }
        )*
    };
}

on_anvil!(
    token::token_has_fixed_supply_at_distribution,
    token::token_transfers_and_allowances,
    token::token_permit,
    registries::datanet_contribution_lifecycle,
    registries::datanet_curation_is_access_controlled,
    registries::model_registration_versions_and_lineage,
    registries::operator_stake_unstake_and_slash,
    registries::views_and_digests_agree,
    settlement::settle_batch_splits_fees_exactly,
    settlement::claim_pays_once,
    settlement::withdrawal_waits_for_the_delay,
    settlement::deposit_with_permit,
    settlement::cancelled_vouchers_are_refused,
    settlement::governance_changes_parameters,
    adversarial::replayed_or_skipped_sequence_is_refused,
    adversarial::inactive_operators_are_refused,
    adversarial::batch_signed_by_wrong_key_is_refused,
    adversarial::bad_vouchers_are_refused,
    adversarial::charges_over_the_cap_are_refused,
    adversarial::signatures_do_not_cross_chains_or_contracts,
    adversarial::malformed_batches_are_refused,
    adversarial::data_credits_must_be_in_lineage_and_accepted,
    adversarial::overflowing_charge_is_refused,
    adversarial::reentrancy_is_blocked,
);
