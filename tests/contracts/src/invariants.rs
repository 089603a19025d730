//! Model-based invariant checking: random sequences of deposits, withdrawal requests and
//! withdrawals, voucher revocations, batches from two operators over two models (some debits
//! over their cap or escrow), claims, slashes, split-policy changes, new contributions and
//! clock moves, run against the chain and a plain Rust account of what must hold. After every
//! operation:
//!
//! - total OPEN supply is unchanged and fully held by the known accounts and contracts;
//! - settlement's OPEN balance == sum of escrows + sum of unclaimed rewards (vested or not),
//!   and both totals equal the sums the model keeps;
//! - every (user, operator) escrow and (user, operator, model) spent counter equals the model's;
//! - no charge goes beyond the cap its voucher signed or beyond its escrow, and a debit within
//!   both (voucher live, model served) is never skipped;
//! - each batch credits exactly what it collected, split to the wei under the policy epoch it
//!   names, data shares paid by weight with the dust to the treasury;
//! - nothing settles twice: sequences advance by one per settled batch and a settled batch
//!   submitted again is refused.
//!
//! Outcomes that depend on the exact block time (a withdrawal at the edge of its window, a
//! revocation or vesting taking effect) are read back from events and views rather than
//! predicted, so the checker holds on any backend, wall-clock driven (anvil) or not.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
};

use alloy::{
    primitives::{Address, U256, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::SolError,
};
use openledger_primitives::{
    bindings::{ModelRegistry, OpenToken, OperatorRegistry, Settlement, reward_kind, skip_reason},
    split::{SplitPolicy, pay_by_weight},
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

use crate::{
    backend::{Chain, Outcome},
    fixtures::{
        Attribution, Charge, DATANET, MODEL, accepted_contribution, approve, balance, build_batch,
        escrow, fund, register_operator, world,
    },
    suite::{Receipt, Suite, describe_revert, open},
};

/// The second model of the checker's world (registered by [`check_operations`]).
pub const MODEL_2: u64 = 2;

/// One random operation. Users are indices 0..3 (carol, dave, bob); operators 0..2 (the
/// world's operator, and alice as a second one); models 0..2 (ids 1 and 2).
#[derive(Debug, Clone)]
pub enum Op {
    /// A user deposits `amount` wei for an operator (funded first by governance).
    Deposit {
        /// User index.
        user: usize,
        /// Operator index.
        operator: usize,
        /// Amount in wei.
        amount: u128,
    },
    /// A user asks to withdraw `amount` wei from its escrow for an operator.
    RequestWithdrawal {
        /// User index.
        user: usize,
        /// Operator index.
        operator: usize,
        /// Amount in wei.
        amount: u128,
    },
    /// A user tries to complete its withdrawal.
    Withdraw {
        /// User index.
        user: usize,
        /// Operator index.
        operator: usize,
    },
    /// A user revokes every voucher it signed so far.
    Revoke {
        /// User index.
        user: usize,
    },
    /// An operator settles a batch; `over_cap` signs a cap one wei short.
    Settle {
        /// Operator index.
        operator: usize,
        /// (user index, model index, amount in wei, over_cap).
        charges: Vec<(usize, usize, u128, bool)>,
        /// Weights (ppm) of contributions 1 and 2 and of the newest added contribution.
        weights: (u32, u32, u32),
    },
    /// A beneficiary claims.
    Claim {
        /// Beneficiary index (see [`check_operations`]).
        who: usize,
    },
    /// Governance slashes an operator.
    Slash {
        /// Operator index.
        operator: usize,
        /// Amount in wei (non-zero).
        amount: u128,
    },
    /// Governance sets one of a few split policies.
    SetSplit {
        /// Which one.
        variant: usize,
    },
    /// A contributor adds a contribution to datanet 1 and the curator accepts it.
    AddContribution {
        /// 0: alice, 1: bob.
        contributor: usize,
    },
    /// The clock moves forward.
    AdvanceTime {
        /// Seconds.
        seconds: u64,
    },
}

/// The split policies [`Op::SetSplit`] chooses from.
pub const POLICIES: [SplitPolicy; 3] = [
    SplitPolicy {
        protocol_bps: 500,
        operator_bps: 2_000,
        developer_bps: 3_000,
        data_bps: 4_500,
    },
    SplitPolicy {
        protocol_bps: 1_000,
        operator_bps: 1_000,
        developer_bps: 1_000,
        data_bps: 7_000,
    },
    SplitPolicy {
        protocol_bps: 0,
        operator_bps: 3_333,
        developer_bps: 3_333,
        data_bps: 3_334,
    },
];

/// A strategy for one operation.
pub fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![1u128..1_000, 1u128..400_000_000_000_000_000_000];
    let charge = (
        0usize..3,
        0usize..2,
        amount.clone(),
        proptest::bool::weighted(0.1),
    );
    prop_oneof![
        3 => (0usize..3, 0usize..2, amount.clone())
            .prop_map(|(user, operator, amount)| Op::Deposit { user, operator, amount }),
        1 => (0usize..3, 0usize..2, amount.clone())
            .prop_map(|(user, operator, amount)| Op::RequestWithdrawal { user, operator, amount }),
        1 => (0usize..3, 0usize..2).prop_map(|(user, operator)| Op::Withdraw { user, operator }),
        1 => (0usize..3).prop_map(|user| Op::Revoke { user }),
        5 => (0usize..2, proptest::collection::vec(charge, 1..5), 0u32..500_000, 0u32..300_000, 0u32..200_000)
            .prop_map(|(operator, charges, w1, w2, w3)| Op::Settle { operator, charges, weights: (w1, w2, w3) }),
        2 => (0usize..7).prop_map(|who| Op::Claim { who }),
        1 => (0usize..2, 1u128..2_000_000_000_000_000_000_000)
            .prop_map(|(operator, amount)| Op::Slash { operator, amount }),
        1 => (0usize..POLICIES.len()).prop_map(|variant| Op::SetSplit { variant }),
        1 => (0usize..2).prop_map(|contributor| Op::AddContribution { contributor }),
        1 => prop_oneof![Just(61u64), Just(3_607u64), Just(86_400u64 + 37), Just(8 * 86_400u64 + 11)]
            .prop_map(|seconds| Op::AdvanceTime { seconds }),
    ]
}

/// A strategy for operation sequences of 1..`max_len` operations.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max_len)
}

/// What the checker expects, kept from the operations and the events they emitted.
#[derive(Debug, Default)]
struct Model {
    /// (user, operator) -> escrow balance.
    escrows: HashMap<(Address, Address), U256>,
    /// (user, operator) -> live withdrawal request amount.
    requests: HashMap<(Address, Address), U256>,
    /// (user, operator, model) -> spent.
    spent: HashMap<(Address, Address, U256), U256>,
    /// Account -> unclaimed rewards, vested or not.
    owed: HashMap<Address, U256>,
    /// Operator -> last settled sequence.
    sequences: HashMap<Address, u64>,
    /// Slashed operators.
    slashed: Vec<Address>,
    /// User -> the nonce its next vouchers carry (one above every revoked one).
    nonces: HashMap<Address, u64>,
    /// Contributions added by the checker: id -> contributor.
    contributions: Vec<(U256, Address)>,
}

/// The cast of [`check_operations`].
struct Cast {
    users: [PrivateKeySigner; 3],
    /// (operator account, its signing key).
    operators: [(PrivateKeySigner, PrivateKeySigner); 2],
    beneficiaries: [Address; 7],
}

/// Runs `ops` on a freshly built world `s` ([`crate::fixtures::world`]) and checks the
/// invariants after each one. It first adds what the world lacks: model 2 on datanet 1 and
/// alice as a second operator serving both models.
pub async fn check_operations<C: Chain>(s: &Suite<C>, ops: &[Op]) {
    let a = s.actors.clone();
    s.ok(
        &a.developer,
        s.models(),
        ModelRegistry::registerModelCall {
            datanetIds: vec![U256::from(DATANET)],
            baseModelHash: keccak256("base"),
            adapterHash: keccak256("adapter-2"),
            adapterURI: "ipfs://adapter-2".into(),
            pricePer1kTokens: open(1),
        },
    )
    .await;
    register_operator(s, &a.alice, a.alice.address(), U256::from(MODEL)).await;
    for (operator, model) in [(&a.alice, MODEL_2), (&a.operator, MODEL_2)] {
        s.ok(
            operator,
            s.operators(),
            OperatorRegistry::setServingCall {
                modelId: U256::from(model),
                serving: true,
            },
        )
        .await;
    }
    let cast = Cast {
        users: [a.carol.clone(), a.dave.clone(), a.bob.clone()],
        operators: [
            (a.operator.clone(), a.operator_key.clone()),
            (a.alice.clone(), a.alice.clone()),
        ],
        beneficiaries: [
            a.treasury.address(),
            a.operator.address(),
            a.developer.address(),
            a.alice.address(),
            a.bob.address(),
            a.curator.address(),
            a.carol.address(),
        ],
    };
    let supply = s.view(s.token(), OpenToken::totalSupplyCall {}).await;
    let mut m = Model::default();
    for u in &cast.users {
        for (op, _) in &cast.operators {
            let e = escrow(s, u.address(), op.address()).await;
            m.escrows.insert((u.address(), op.address()), e);
        }
    }

    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step} {op:?}");
        apply(s, &cast, &mut m, op, &at).await;
        check_state(s, &cast, &m, supply, &at).await;
    }
}

async fn apply<C: Chain>(s: &Suite<C>, cast: &Cast, m: &mut Model, op: &Op, at: &str) {
    let a = &s.actors;
    match op {
        Op::Deposit {
            user,
            operator,
            amount,
        } => {
            let (u, o, amount) = (
                &cast.users[*user],
                cast.operators[*operator].0.address(),
                U256::from(*amount),
            );
            fund(s, u.address(), amount).await;
            approve(s, u, s.settlement(), amount).await;
            s.ok(
                u,
                s.settlement(),
                Settlement::depositCall {
                    operator: o,
                    amount,
                },
            )
            .await;
            *m.escrows.entry((u.address(), o)).or_default() += amount;
        }
        Op::RequestWithdrawal {
            user,
            operator,
            amount,
        } => {
            let (u, o, amount) = (
                &cast.users[*user],
                cast.operators[*operator].0.address(),
                U256::from(*amount),
            );
            let outcome = s
                .send(
                    u,
                    s.settlement(),
                    Settlement::requestWithdrawalCall {
                        operator: o,
                        amount,
                    },
                )
                .await;
            let expect_ok = amount <= m.escrows[&(u.address(), o)];
            assert_outcome(
                at,
                &outcome,
                expect_ok,
                &[Settlement::InsufficientBalance::SELECTOR],
            );
            if expect_ok {
                m.requests.insert((u.address(), o), amount);
            }
        }
        Op::Withdraw { user, operator } => {
            let (u, o) = (&cast.users[*user], cast.operators[*operator].0.address());
            let key = (u.address(), o);
            let outcome = s
                .send(u, s.settlement(), Settlement::withdrawCall { operator: o })
                .await;
            match (&outcome, m.requests.get(&key).copied()) {
                (Outcome::Success { .. }, Some(requested)) => {
                    let paid = Receipt::of(outcome.clone())
                        .event::<Settlement::Withdrawn>(s.settlement())
                        .amount;
                    let escrow = m.escrows.get_mut(&key).unwrap();
                    assert_eq!(paid, requested.min(*escrow), "{at}: withdrawal paid");
                    *escrow -= paid;
                    m.requests.remove(&key);
                }
                (Outcome::Revert(data), Some(_)) => assert_selector(
                    at,
                    data,
                    &[
                        Settlement::WithdrawalNotReady::SELECTOR,
                        Settlement::WithdrawalExpired::SELECTOR,
                    ],
                ),
                (Outcome::Revert(data), None) => {
                    assert_selector(at, data, &[Settlement::NoWithdrawalRequested::SELECTOR])
                }
                (Outcome::Success { .. }, None) => panic!("{at}: withdrew without a request"),
            }
        }
        Op::Revoke { user } => {
            let u = &cast.users[*user];
            let next = m.nonces.get(&u.address()).copied().unwrap_or(0) + 1;
            s.ok(
                u,
                s.settlement(),
                Settlement::revokeVouchersCall { newMinNonce: next },
            )
            .await;
            m.nonces.insert(u.address(), next);
        }
        Op::Settle {
            operator,
            charges,
            weights,
        } => settle(s, cast, m, *operator, charges, *weights, at).await,
        Op::Claim { who } => {
            let account = cast.beneficiaries[*who];
            let k = signer_of(s, account);
            let owed = m.owed.get(&account).copied().unwrap_or_default();
            let unvested = s
                .view(
                    s.settlement(),
                    Settlement::vestingCall { operator: account },
                )
                .await
                .amount;
            let outcome = s.send(&k, s.settlement(), Settlement::claimCall {}).await;
            match &outcome {
                Outcome::Success { .. } => {
                    let paid = Receipt::of(outcome.clone())
                        .event::<Settlement::Claimed>(s.settlement())
                        .amount;
                    assert!(
                        paid <= owed && paid + unvested >= owed,
                        "{at}: claimed {paid} of {owed} owed ({unvested} unvested)"
                    );
                    *m.owed.get_mut(&account).unwrap() -= paid;
                }
                Outcome::Revert(data) => {
                    assert_selector(at, data, &[Settlement::NothingToClaim::SELECTOR]);
                    assert!(owed <= unvested, "{at}: {owed} owed but nothing to claim");
                }
            }
        }
        Op::Slash { operator, amount } => {
            let o = cast.operators[*operator].0.address();
            let r = s
                .ok(
                    &a.governance,
                    s.operators(),
                    OperatorRegistry::slashCall {
                        operator: o,
                        amount: U256::from(*amount),
                        reason: "test".into(),
                    },
                )
                .await;
            if let Some(taken) = r
                .events::<Settlement::RewardsSlashed>(s.settlement())
                .first()
            {
                *m.owed.get_mut(&o).unwrap() -= taken.amount;
                *m.owed.entry(a.treasury.address()).or_default() += taken.amount;
            }
            if !m.slashed.contains(&o) {
                m.slashed.push(o);
            }
        }
        Op::SetSplit { variant } => {
            s.ok(
                &a.governance,
                s.settlement(),
                Settlement::setSplitPolicyCall {
                    policy: POLICIES[*variant].into(),
                },
            )
            .await;
        }
        Op::AddContribution { contributor } => {
            let k = [&a.alice, &a.bob][*contributor];
            let n = m.contributions.len();
            let id = accepted_contribution(
                s,
                &a.curator,
                k,
                U256::from(DATANET),
                &format!("contribution {n} of the invariant run"),
            )
            .await;
            m.contributions.push((id, k.address()));
        }
        Op::AdvanceTime { seconds } => s.advance(*seconds).await,
    }
}

/// The key of a beneficiary account (every actor is one of the backend's accounts).
fn signer_of<C: Chain>(s: &Suite<C>, account: Address) -> PrivateKeySigner {
    s.chain
        .accounts()
        .iter()
        .find(|k| k.address() == account)
        .expect("an actor")
        .clone()
}

async fn settle<C: Chain>(
    s: &Suite<C>,
    cast: &Cast,
    m: &mut Model,
    operator: usize,
    charges: &[(usize, usize, u128, bool)],
    weights: (u32, u32, u32),
    at: &str,
) {
    let a = &s.actors;
    let (account, key) = &cast.operators[operator];
    let o = account.address();
    // One charge per (user, model): the batch has one debit per pair.
    let mut by_pair: BTreeMap<(usize, usize), (u128, bool)> = BTreeMap::new();
    for &(u, model, amount, over) in charges {
        by_pair.insert((u, model), (amount, over));
    }
    let charge_list: Vec<Charge> = by_pair
        .iter()
        .map(|(&(u, model), &(amount, over))| {
            let user = cast.users[u].clone();
            let model = U256::from([MODEL, MODEL_2][model]);
            let spent = m
                .spent
                .get(&(user.address(), o, model))
                .copied()
                .unwrap_or_default();
            let amount = U256::from(amount);
            let cap = if over {
                spent + amount - U256::from(1)
            } else {
                spent + amount
            };
            Charge {
                user,
                model,
                amount,
                cap,
            }
        })
        .collect();
    let d = U256::from(DATANET);
    let mut ppm = BTreeMap::from([
        ((d, U256::from(1)), weights.0),
        ((d, U256::from(2)), weights.1),
    ]);
    if let Some(&(newest, _)) = m.contributions.last() {
        ppm.insert((d, newest), weights.2);
    }
    let attribution: BTreeMap<U256, Attribution> = [MODEL, MODEL_2]
        .into_iter()
        .map(|model| {
            (
                U256::from(model),
                Attribution {
                    weights: ppm.clone(),
                    remainder_datanet: d,
                },
            )
        })
        .collect();
    let sequence = m.sequences.get(&o).copied().unwrap_or(0) + 1;
    let mut b = build_batch(s, o, key, sequence, &charge_list, &attribution).await;
    // Vouchers carry the user's current nonce (above every revocation it made).
    for (i, debit) in b.batch.debits.clone().iter().enumerate() {
        let user = signer_of(s, debit.user);
        let mut v = b.vouchers[i].voucher.clone();
        v.nonce = m.nonces.get(&debit.user).copied().unwrap_or(0);
        b.vouchers[i] = openledger_primitives::eip712::sign_voucher(&user, &s.domain, &v)
            .await
            .expect("signs");
    }
    let outcome = s.send(account, s.settlement(), b.call()).await;
    if m.slashed.contains(&o) {
        assert_outcome(
            at,
            &outcome,
            false,
            &[Settlement::OperatorNotActive::SELECTOR],
        );
        return;
    }
    assert_outcome(at, &outcome, true, &[]);
    let r = Receipt::of(outcome);
    m.sequences.insert(o, sequence);
    let charged = r.events::<Settlement::Charged>(s.settlement());
    let skipped = r.events::<Settlement::DebitSkipped>(s.settlement());
    let credited = r.events::<Settlement::RewardCredited>(s.settlement());
    assert_eq!(
        charged.len() + skipped.len(),
        b.batch.debits.len(),
        "{at}: every debit collected or skipped"
    );
    let (revoked_below, now) = {
        let now = s.now().await;
        let mut r = HashMap::new();
        for u in &cast.users {
            let rev = s
                .view(
                    s.settlement(),
                    Settlement::voucherRevocationCall { user: u.address() },
                )
                .await;
            r.insert(u.address(), rev.minNonce);
        }
        (r, now)
    };
    let mut collected: BTreeMap<U256, U256> = BTreeMap::new();
    for (i, debit) in b.batch.debits.iter().enumerate() {
        let v = &b.vouchers[i].voucher;
        let pair = (debit.user, o);
        let spent_key = (debit.user, o, debit.modelId);
        let spent = m.spent.get(&spent_key).copied().unwrap_or_default();
        let escrow = m.escrows.get(&pair).copied().unwrap_or_default();
        let within_cap = spent + debit.amount <= v.cumulativeCap;
        let funded = escrow >= debit.amount;
        let live = v.nonce >= revoked_below[&debit.user] && v.expiry >= now;
        match charged
            .iter()
            .find(|c| c.user == debit.user && c.modelId == debit.modelId)
        {
            Some(c) => {
                assert!(
                    within_cap && funded && live,
                    "{at}: collected {debit:?} it should not"
                );
                assert_eq!((c.amount, c.spent), (debit.amount, spent + debit.amount));
                m.spent.insert(spent_key, spent + debit.amount);
                *m.escrows.get_mut(&pair).unwrap() -= debit.amount;
                *collected.entry(debit.modelId).or_default() += debit.amount;
            }
            None => {
                let skip = skipped
                    .iter()
                    .find(|e| e.user == debit.user && e.modelId == debit.modelId)
                    .expect("skipped");
                let justified = match skip.reason {
                    skip_reason::CAP_EXCEEDED => !within_cap,
                    skip_reason::INSUFFICIENT_ESCROW => !funded,
                    skip_reason::VOUCHER_REVOKED | skip_reason::VOUCHER_EXPIRED => !live,
                    _ => false,
                };
                assert!(
                    justified,
                    "{at}: skipped {debit:?} for reason {}",
                    skip.reason
                );
            }
        }
    }
    // Credits: exact split of what was collected, per model, under the batch's epoch.
    let policy: SplitPolicy = s
        .view(
            s.settlement(),
            Settlement::splitPolicyOfCall {
                epoch: b.batch.policyEpoch,
            },
        )
        .await
        .policy
        .into();
    let developer = a.developer.address();
    let mut expected: BTreeMap<(Address, u8), U256> = BTreeMap::new();
    for (&model, &total) in &collected {
        let split = policy.split(total);
        let weights = b
            .batch
            .credits
            .iter()
            .filter(|c| c.modelId == model)
            .map(|c| ((c.datanetId, c.contributionId), c.weight))
            .collect();
        let (amounts, dust) = pay_by_weight(split.data, &weights);
        *expected
            .entry((a.treasury.address(), reward_kind::PROTOCOL))
            .or_default() += split.protocol + dust;
        *expected.entry((o, reward_kind::OPERATOR)).or_default() += split.operator;
        *expected
            .entry((developer, reward_kind::DEVELOPER))
            .or_default() += split.developer;
        for ((_, contribution), amount) in amounts {
            let (to, kind) = if contribution.is_zero() {
                (a.curator.address(), reward_kind::DATANET)
            } else {
                (
                    contributor_of(s, m, contribution),
                    reward_kind::CONTRIBUTION,
                )
            };
            *expected.entry((to, kind)).or_default() += amount;
        }
    }
    expected.retain(|_, v| !v.is_zero());
    let mut got: BTreeMap<(Address, u8), U256> = BTreeMap::new();
    for c in &credited {
        *got.entry((c.account, c.kind)).or_default() += c.amount;
        *m.owed.entry(c.account).or_default() += c.amount;
    }
    assert_eq!(got, expected, "{at}: credits");
    // The same signed batch never settles twice.
    let replay = s.send(account, s.settlement(), b.call()).await;
    assert_outcome(at, &replay, false, &[Settlement::BadSequence::SELECTOR]);
}

fn contributor_of<C: Chain>(s: &Suite<C>, m: &Model, contribution: U256) -> Address {
    match contribution.to::<u64>() {
        1 => s.actors.alice.address(),
        2 => s.actors.bob.address(),
        _ => {
            m.contributions
                .iter()
                .find(|(id, _)| *id == contribution)
                .expect("a contribution the checker added")
                .1
        }
    }
}

fn assert_selector(at: &str, data: &[u8], allowed: &[[u8; 4]]) {
    assert!(
        data.len() >= 4 && allowed.iter().any(|sel| data[..4] == sel[..]),
        "{at}: wrong revert {}",
        describe_revert(data)
    );
}

fn assert_outcome(at: &str, outcome: &Outcome, expect_ok: bool, allowed: &[[u8; 4]]) {
    match outcome {
        Outcome::Success { .. } => assert!(expect_ok, "{at}: succeeded, expected a revert"),
        Outcome::Revert(data) => {
            assert!(
                !expect_ok,
                "{at}: reverted unexpectedly: {}",
                describe_revert(data)
            );
            assert_selector(at, data, allowed);
        }
    }
}

async fn check_state<C: Chain>(s: &Suite<C>, cast: &Cast, m: &Model, supply: U256, at: &str) {
    assert_eq!(
        s.view(s.token(), OpenToken::totalSupplyCall {}).await,
        supply,
        "{at}: supply changed"
    );
    for u in &cast.users {
        for (op, _) in &cast.operators {
            let key = (u.address(), op.address());
            assert_eq!(
                escrow(s, key.0, key.1).await,
                m.escrows.get(&key).copied().unwrap_or_default(),
                "{at}: escrow of {key:?}"
            );
            for model in [MODEL, MODEL_2] {
                let spent = s
                    .view(
                        s.settlement(),
                        Settlement::spentCall {
                            user: key.0,
                            operator: key.1,
                            modelId: U256::from(model),
                        },
                    )
                    .await;
                assert_eq!(
                    spent,
                    m.spent
                        .get(&(key.0, key.1, U256::from(model)))
                        .copied()
                        .unwrap_or_default(),
                    "{at}: spent of {key:?} on model {model}"
                );
            }
        }
    }
    for b in &cast.beneficiaries {
        let claimable = s
            .view(s.settlement(), Settlement::claimableCall { account: *b })
            .await;
        let unvested = s
            .view(s.settlement(), Settlement::vestingCall { operator: *b })
            .await
            .amount;
        assert_eq!(
            claimable + unvested,
            m.owed.get(b).copied().unwrap_or_default(),
            "{at}: rewards of {b}"
        );
    }
    let deposits: U256 = m.escrows.values().copied().sum();
    let owed: U256 = m.owed.values().copied().sum();
    assert_eq!(
        s.view(s.settlement(), Settlement::totalDepositsCall {})
            .await,
        deposits,
        "{at}: total deposits"
    );
    assert_eq!(
        s.view(s.settlement(), Settlement::totalClaimableCall {})
            .await,
        owed,
        "{at}: total claimable"
    );
    assert_escrow_invariant(s).await;

    // Conservation: every OPEN is held by a known account or contract.
    let mut held = U256::ZERO;
    let mut holders: Vec<Address> = s.chain.accounts().iter().map(|k| k.address()).collect();
    holders.extend([s.datanets(), s.operators(), s.settlement()]);
    for h in holders {
        held += s
            .view(s.token(), OpenToken::balanceOfCall { account: h })
            .await;
    }
    assert_eq!(held, supply, "{at}: OPEN created or lost");
}

/// Settlement's OPEN balance equals the sum of escrows plus unclaimed rewards.
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

/// The seed used unless `OPENLEDGER_TEST_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 20_261_201;

/// The number in env var `name`, or `default` when it is unset; panics on a malformed one.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a valid number")),
        Err(_) => default,
    }
}

/// Random operation sequences against the chain that `start` brings up (once, for all of
/// them), a fresh world per case, checking every invariant after each operation. The seed is
/// fixed ([`DEFAULT_SEED`]) and printed; `OPENLEDGER_TEST_SEED=<seed>` replays or varies it
/// and `OPENLEDGER_TEST_CASES=<n>` sets the number of cases (default 16). Panics with the seed
/// on a violation.
pub fn hold_under_random_operations<C: Chain, F: Future<Output = C>>(start: impl FnOnce() -> F) {
    let seed: u64 = env_or("OPENLEDGER_TEST_SEED", DEFAULT_SEED);
    let cases: u32 = env_or("OPENLEDGER_TEST_CASES", 16);
    println!("OPENLEDGER_TEST_SEED={seed} (cases: {cases}; set OPENLEDGER_TEST_SEED to vary)");
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    if let Err(e) = run_sequences(start, ops(24), config, seed) {
        panic!("invariant violated (OPENLEDGER_TEST_SEED={seed}): {e}");
    }
}

/// Runs `sequences` random sequences of exactly `calls` operations each on the chain `start`
/// brings up, and prints the throughput; the wall time includes starting the chain and building
/// each sequence's world. No shrinking: a violation panics with the seed. The measured run of
/// the benchmarks (`benches/invariant_volume.rs` here, and `tests/ink`'s).
pub fn volume<C: Chain, F: Future<Output = C>>(
    backend: &str,
    start: impl FnOnce() -> F,
    sequences: u32,
    calls: usize,
    seed: u64,
) {
    let config = Config {
        cases: sequences,
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let result = run_sequences(start, proptest::collection::vec(op(), calls), config, seed);
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

/// Runs the operation sequences `strategy` draws from `seed` (as many as `config` says) on the
/// chain `start` brings up once, each on a fresh world, checking every invariant after each
/// operation.
fn run_sequences<C: Chain, F: Future<Output = C>>(
    start: impl FnOnce() -> F,
    strategy: impl Strategy<Value = Vec<Op>>,
    config: Config,
    seed: u64,
) -> Result<(), String> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
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
    runner
        .run(&strategy, |ops| {
            runtime.block_on(async {
                let suite = world(&chain).await;
                check_operations(&suite, &ops).await;
            });
            Ok(())
        })
        .map_err(|e| e.to_string())
}
