//! Model-based invariant checking: random sequences of deposits, withdrawals, batches, claims,
//! slashes and clock moves run against the chain and against a plain Rust model of the
//! expected balances. After every operation:
//!
//! - the outcome (success or the specific revert) is the one the model predicts;
//! - every deposit, claimable balance and spent counter equals the model's, to the wei;
//! - total OPEN supply is unchanged and is fully accounted for by the known holders;
//! - settlement's OPEN balance == sum of deposits + sum of unclaimed rewards.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, U256};
use openledger_primitives::{
    bindings::{OpenToken, OperatorRegistry, Settlement},
    split::{SplitPolicy, distribute_data_share},
};
use proptest::prelude::*;

use alloy::sol_types::SolError;

use crate::{
    backend::{Chain, Outcome},
    fixtures::{Charge, DATANET, MODEL, approve, balance, build_batch, fund, world_attribution},
    suite::{Suite, describe_revert},
};

/// One random operation. Users are indices 0..3 (carol, dave, bob); beneficiaries 0..6.
#[derive(Debug, Clone)]
pub enum Op {
    /// A user deposits `amount` wei (funded first by governance).
    Deposit {
        /// User index.
        user: usize,
        /// Amount in wei.
        amount: u128,
    },
    /// A user asks to withdraw `amount` wei.
    RequestWithdrawal {
        /// User index.
        user: usize,
        /// Amount in wei.
        amount: u128,
    },
    /// A user tries to complete its withdrawal.
    Withdraw {
        /// User index.
        user: usize,
    },
    /// The operator settles a batch charging these users; `over_cap` signs a cap one wei short.
    Settle {
        /// (user index, amount in wei, over_cap).
        charges: Vec<(usize, u128, bool)>,
        /// Weights (ppm) of contributions 1 and 2.
        weights: (u32, u32),
    },
    /// A beneficiary claims.
    Claim {
        /// Beneficiary index.
        who: usize,
    },
    /// Governance slashes the operator.
    Slash {
        /// Amount in wei.
        amount: u128,
    },
    /// The clock moves forward.
    AdvanceTime {
        /// Seconds.
        seconds: u64,
    },
}

/// A strategy for operation sequences.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max_len)
}

/// A strategy for one operation.
pub fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![1u128..1_000, 1u128..400_000_000_000_000_000_000];
    prop_oneof![
        3 => (0usize..3, amount.clone()).prop_map(|(user, amount)| Op::Deposit { user, amount }),
        1 => (0usize..3, amount.clone()).prop_map(|(user, amount)| Op::RequestWithdrawal { user, amount }),
        1 => (0usize..3).prop_map(|user| Op::Withdraw { user }),
        4 => (proptest::collection::vec((0usize..3, amount.clone(), proptest::bool::weighted(0.1)), 1..4), 0u32..600_000, 0u32..400_000)
            .prop_map(|(charges, w1, w2)| Op::Settle { charges, weights: (w1, w2) }),
        2 => (0usize..6).prop_map(|who| Op::Claim { who }),
        1 => (1u128..2_000_000_000_000_000_000_000).prop_map(|amount| Op::Slash { amount }),
        1 => prop_oneof![Just(60u64), Just(86_400u64)].prop_map(|seconds| Op::AdvanceTime { seconds }),
    ]
}

/// The expected state.
#[derive(Debug, Default)]
struct Model {
    deposits: HashMap<Address, U256>,
    claimable: HashMap<Address, U256>,
    spent: HashMap<Address, U256>,
    withdrawals: HashMap<Address, U256>,
    sequence: u64,
    slashed: bool,
}

/// Runs `ops` on a freshly built world `s` and checks the invariants after each one.
pub async fn check_operations<C: Chain>(s: &Suite<C>, ops: &[Op]) {
    let a = s.actors.clone();
    let users = [a.carol.clone(), a.dave.clone(), a.bob.clone()];
    let beneficiaries = [
        &a.treasury,
        &a.operator,
        &a.developer,
        &a.alice,
        &a.bob,
        &a.curator,
    ]
    .map(|k| k.address());
    let supply = s.view(s.token(), OpenToken::totalSupplyCall {}).await;
    let mut m = Model::default();
    for u in &users {
        let d = s
            .view(
                s.settlement(),
                Settlement::balanceOfCall { user: u.address() },
            )
            .await;
        m.deposits.insert(u.address(), d);
    }

    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Deposit { user, amount } => {
                let (u, amount) = (&users[*user], U256::from(*amount));
                fund(s, u.address(), amount).await;
                approve(s, u, s.settlement(), amount).await;
                s.ok(u, s.settlement(), Settlement::depositCall { amount })
                    .await;
                *m.deposits.entry(u.address()).or_default() += amount;
            }
            Op::RequestWithdrawal { user, amount } => {
                let (u, amount) = (&users[*user], U256::from(*amount));
                let outcome = s
                    .send(
                        u,
                        s.settlement(),
                        Settlement::requestWithdrawalCall { amount },
                    )
                    .await;
                let expect_ok = amount <= m.deposits[&u.address()];
                assert_outcome(
                    step,
                    op,
                    &outcome,
                    expect_ok,
                    Settlement::InsufficientBalance::SELECTOR,
                );
                if expect_ok {
                    m.withdrawals.insert(u.address(), amount);
                }
            }
            Op::Withdraw { user } => {
                let u = &users[*user];
                let outcome = s.send(u, s.settlement(), Settlement::withdrawCall {}).await;
                match (&outcome, m.withdrawals.get(&u.address())) {
                    (Outcome::Success { .. }, Some(&requested)) => {
                        let d = m.deposits.get_mut(&u.address()).unwrap();
                        *d -= requested.min(*d);
                        m.withdrawals.remove(&u.address());
                    }
                    (Outcome::Revert(data), Some(_)) => assert_eq!(
                        &data[..4],
                        &Settlement::WithdrawalNotReady::SELECTOR[..],
                        "step {step} {op:?}: {}",
                        describe_revert(data)
                    ),
                    (Outcome::Revert(data), None) => {
                        assert_eq!(
                            &data[..4],
                            &Settlement::NoWithdrawalRequested::SELECTOR[..],
                            "step {step} {op:?}"
                        )
                    }
                    (Outcome::Success { .. }, None) => {
                        panic!("step {step} {op:?}: withdrew without a request")
                    }
                }
            }
            Op::Settle { charges, weights } => {
                settle(s, &mut m, step, op, &users, charges, *weights).await
            }
            Op::Claim { who } => {
                let k = [
                    &a.treasury,
                    &a.operator,
                    &a.developer,
                    &a.alice,
                    &a.bob,
                    &a.curator,
                ][*who];
                let owed = m.claimable.get(&k.address()).copied().unwrap_or_default();
                let outcome = s.send(k, s.settlement(), Settlement::claimCall {}).await;
                assert_outcome(
                    step,
                    op,
                    &outcome,
                    !owed.is_zero(),
                    Settlement::NothingToClaim::SELECTOR,
                );
                m.claimable.insert(k.address(), U256::ZERO);
            }
            Op::Slash { amount } => {
                s.ok(
                    &a.governance,
                    s.operators(),
                    OperatorRegistry::slashCall {
                        operator: a.operator.address(),
                        amount: U256::from(*amount),
                        reason: "test".into(),
                    },
                )
                .await;
                m.slashed = true;
            }
            Op::AdvanceTime { seconds } => s.advance(*seconds).await,
        }
        check_state(
            s,
            &m,
            step,
            op,
            supply,
            &users.iter().map(|u| u.address()).collect::<Vec<_>>(),
            &beneficiaries,
        )
        .await;
    }
}

async fn settle<C: Chain>(
    s: &Suite<C>,
    m: &mut Model,
    step: usize,
    op: &Op,
    users: &[alloy::signers::local::PrivateKeySigner; 3],
    charges: &[(usize, u128, bool)],
    weights: (u32, u32),
) {
    let a = &s.actors;
    let mut by_user: BTreeMap<usize, (u128, bool)> = BTreeMap::new();
    for &(u, amount, over) in charges {
        by_user.insert(u, (amount, over));
    }
    let mut charge_list: Vec<Charge> = by_user
        .iter()
        .map(|(&u, &(amount, over))| {
            let user = users[u].clone();
            let spent = m.spent.get(&user.address()).copied().unwrap_or_default();
            let amount = U256::from(amount);
            let cap = if over {
                spent + amount - U256::from(1)
            } else {
                spent + amount
            };
            Charge {
                user,
                model: U256::from(MODEL),
                amount,
                cap,
            }
        })
        .collect();
    // The contract checks users in address order: the first failing one decides the error.
    charge_list.sort_by_key(|c| c.user.address());
    let expected_error = if m.slashed {
        Some(Settlement::OperatorNotActive::SELECTOR)
    } else {
        charge_list.iter().find_map(|c| {
            let spent = m.spent.get(&c.user.address()).copied().unwrap_or_default();
            if spent + c.amount > c.cap {
                Some(Settlement::CapExceeded::SELECTOR)
            } else if m.deposits[&c.user.address()] < c.amount {
                Some(Settlement::InsufficientBalance::SELECTOR)
            } else {
                None
            }
        })
    };
    let mut attribution = world_attribution();
    let d = U256::from(DATANET);
    let weights = BTreeMap::from([
        ((d, U256::from(1)), u128::from(weights.0)),
        ((d, U256::from(2)), u128::from(weights.1)),
    ]);
    attribution.get_mut(&U256::from(MODEL)).unwrap().weights = weights
        .iter()
        .map(|(&key, &w)| (key, u32::try_from(w).expect("ppm fits u32")))
        .collect();
    let sequence = m.sequence + 1;
    let b = build_batch(
        s,
        a.operator.address(),
        &a.operator_key,
        sequence,
        &charge_list,
        &attribution,
        SplitPolicy::default(),
    )
    .await;
    let outcome = s.send(&a.operator, s.settlement(), b.call()).await;
    match expected_error {
        Some(selector) => assert_outcome(step, op, &outcome, false, selector),
        None => {
            assert_outcome(step, op, &outcome, true, [0; 4]);
            m.sequence = sequence;
            let mut total = U256::ZERO;
            for c in &charge_list {
                *m.deposits.get_mut(&c.user.address()).unwrap() -= c.amount;
                *m.spent.entry(c.user.address()).or_default() += c.amount;
                total += c.amount;
            }
            let split = SplitPolicy::default().split(total);
            *m.claimable.entry(a.treasury.address()).or_default() += split.protocol;
            *m.claimable.entry(a.operator.address()).or_default() += split.operator;
            *m.claimable.entry(a.developer.address()).or_default() += split.developer;
            let credits = distribute_data_share(split.data, &weights, 1_000_000, d).unwrap();
            for ((_, contribution), amount) in credits {
                let to = match contribution.to::<u64>() {
                    0 => a.curator.address(),
                    1 => a.alice.address(),
                    _ => a.bob.address(),
                };
                *m.claimable.entry(to).or_default() += amount;
            }
        }
    }
}

fn assert_outcome(step: usize, op: &Op, outcome: &Outcome, expect_ok: bool, selector: [u8; 4]) {
    match outcome {
        Outcome::Success { .. } => {
            assert!(expect_ok, "step {step} {op:?}: succeeded, expected revert")
        }
        Outcome::Revert(data) => {
            assert!(
                !expect_ok,
                "step {step} {op:?}: reverted unexpectedly: {}",
                describe_revert(data)
            );
            assert_eq!(
                &data[..4],
                &selector[..],
                "step {step} {op:?}: wrong revert {}",
                describe_revert(data)
            );
        }
    }
}

async fn check_state<C: Chain>(
    s: &Suite<C>,
    m: &Model,
    step: usize,
    op: &Op,
    supply: U256,
    users: &[Address],
    beneficiaries: &[Address],
) {
    let a = &s.actors;
    assert_eq!(
        s.view(s.token(), OpenToken::totalSupplyCall {}).await,
        supply,
        "step {step} {op:?}: supply changed"
    );
    for u in users {
        let on_chain = s
            .view(s.settlement(), Settlement::balanceOfCall { user: *u })
            .await;
        assert_eq!(
            on_chain, m.deposits[u],
            "step {step} {op:?}: deposit of {u}"
        );
        let spent = s
            .view(
                s.settlement(),
                Settlement::spentCall {
                    user: *u,
                    operator: a.operator.address(),
                    modelId: U256::from(MODEL),
                },
            )
            .await;
        assert_eq!(
            spent,
            m.spent.get(u).copied().unwrap_or_default(),
            "step {step} {op:?}: spent of {u}"
        );
    }
    for b in beneficiaries {
        let on_chain = s
            .view(s.settlement(), Settlement::claimableCall { account: *b })
            .await;
        assert_eq!(
            on_chain,
            m.claimable.get(b).copied().unwrap_or_default(),
            "step {step} {op:?}: claimable of {b}"
        );
    }
    let deposits: U256 = m.deposits.values().copied().sum();
    let claimable: U256 = m.claimable.values().copied().sum();
    assert_eq!(
        s.view(s.settlement(), Settlement::totalDepositsCall {})
            .await,
        deposits,
        "step {step} {op:?}"
    );
    assert_eq!(
        s.view(s.settlement(), Settlement::totalClaimableCall {})
            .await,
        claimable,
        "step {step} {op:?}"
    );
    assert_escrow_invariant(s).await;

    // Conservation: every OPEN is held by a known account or contract.
    let mut holders: Vec<Address> = [
        &a.governance,
        &a.treasury,
        &a.curator,
        &a.alice,
        &a.bob,
        &a.developer,
        &a.operator,
        &a.operator_key,
        &a.carol,
        &a.dave,
    ]
    .iter()
    .map(|k| k.address())
    .collect();
    holders.extend([s.datanets(), s.operators(), s.settlement()]);
    let mut held = U256::ZERO;
    for h in holders {
        held += s
            .view(s.token(), OpenToken::balanceOfCall { account: h })
            .await;
    }
    assert_eq!(held, supply, "step {step} {op:?}: OPEN created or lost");
}

/// Settlement's OPEN balance equals the sum of deposits plus unclaimed rewards.
pub async fn assert_escrow_invariant<C: Chain>(s: &Suite<C>) {
    let held = balance(s, s.settlement()).await;
    let deposits = s
        .view(s.settlement(), Settlement::totalDepositsCall {})
        .await;
    let claimable = s
        .view(s.settlement(), Settlement::totalClaimableCall {})
        .await;
    assert_eq!(
        held,
        deposits + claimable,
        "escrow invariant: balance != deposits + claimable"
    );
}
