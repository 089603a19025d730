//! Attacks on settlement. Each case asserts the exact revert reason and that no balance,
//! deposit, claimable amount or total changed.

use alloy::{
    primitives::{Bytes, U256, keccak256},
    sol_types::{Panic, SolConstructor, SolError},
};
use openledger_primitives::{
    bindings::{DatanetRegistry, ModelRegistry, OperatorRegistry, ReentrantToken, Settlement},
    eip712::{DataCredit, settlement_domain, sign_voucher},
    split::SplitPolicy,
};

use crate::{
    backend::{Chain, Outcome},
    fixtures::{
        Attribution, Charge, DATANET, MODEL, SignedBatch, accepted_contribution, build_batch,
        snapshot, world, world_attribution, world_batch,
    },
    scenario,
    suite::{Suite, open},
};

/// Submits `batch`, expects revert `E`, and checks nothing changed.
async fn refused<C: Chain, E: SolError>(s: &Suite<C>, batch: &SignedBatch) -> E {
    let before = snapshot(s).await;
    let err = s
        .reverts::<_, E>(&s.actors.operator, s.settlement(), batch.call())
        .await;
    assert_eq!(snapshot(s).await, before, "a refused batch changed state");
    err
}

/// A settled batch cannot be settled again, and sequence numbers cannot be skipped.
pub async fn replayed_or_skipped_sequence_is_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let b = world_batch(&s, 1, open(1), open(1)).await;
    s.ok(&s.actors.operator, s.settlement(), b.call()).await;
    let err = refused::<_, Settlement::BadSequence>(&s, &b).await;
    assert_eq!((err.expected, err.got), (2, 1));
    let skipped = world_batch(&s, 3, open(1), U256::ZERO).await;
    let err = refused::<_, Settlement::BadSequence>(&s, &skipped).await;
    assert_eq!((err.expected, err.got), (2, 3));
}
scenario!(replayed_or_skipped_sequence_is_refused);

/// Batches from unregistered, unstaked or slashed operators are refused.
pub async fn inactive_operators_are_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    // Unregistered: bob signs as an operator with no stake and no signer.
    let charge = Charge {
        user: a.carol.clone(),
        model: U256::from(MODEL),
        amount: open(1),
        cap: open(10),
    };
    let b = build_batch(
        &s,
        a.bob.address(),
        &a.bob,
        1,
        std::slice::from_ref(&charge),
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    assert_eq!(
        refused::<_, Settlement::OperatorNotActive>(&s, &b)
            .await
            .operator,
        a.bob.address()
    );

    // Unstaked below the minimum.
    let stake = s
        .view(s.operators(), OperatorRegistry::minStakeCall {})
        .await;
    s.ok(
        &a.operator,
        s.operators(),
        OperatorRegistry::requestUnstakeCall { amount: stake },
    )
    .await;
    let b = world_batch(&s, 1, open(1), U256::ZERO).await;
    refused::<_, Settlement::OperatorNotActive>(&s, &b).await;

    // Slashed (even after restaking).
    s.ok(
        &a.governance,
        s.operators(),
        OperatorRegistry::slashCall {
            operator: a.operator.address(),
            amount: open(1),
            reason: "fraud".into(),
        },
    )
    .await;
    crate::fixtures::fund(&s, a.operator.address(), stake).await;
    crate::fixtures::approve(&s, &a.operator, s.operators(), stake).await;
    s.ok(
        &a.operator,
        s.operators(),
        OperatorRegistry::stakeCall { amount: stake },
    )
    .await;
    refused::<_, Settlement::OperatorNotActive>(&s, &b).await;
}
scenario!(inactive_operators_are_refused);

/// A batch signed by a key other than the operator's registered signer is refused.
pub async fn batch_signed_by_wrong_key_is_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.resign(&s.domain, &s.actors.operator).await; // the operator account, not its signing key
    refused::<_, Settlement::InvalidOperatorSignature>(&s, &b).await;
    let mut tampered = world_batch(&s, 1, open(1), U256::ZERO).await;
    tampered.batch.receiptsRoot = keccak256("other receipts");
    refused::<_, Settlement::InvalidOperatorSignature>(&s, &tampered).await;
    let mut garbage = world_batch(&s, 1, open(1), U256::ZERO).await;
    garbage.signature = Bytes::from(vec![1u8; 65]);
    refused::<_, Settlement::InvalidOperatorSignature>(&s, &garbage).await;
}
scenario!(batch_signed_by_wrong_key_is_refused);

/// Forged, expired, mismatched and over-cap vouchers are refused.
pub async fn bad_vouchers_are_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();

    // Forged: dave signs carol's voucher.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.vouchers[0] = sign_voucher(&a.dave, &s.domain, &b.vouchers[0].voucher)
        .await
        .unwrap();
    assert_eq!(
        refused::<_, Settlement::InvalidVoucherSignature>(&s, &b)
            .await
            .index,
        U256::ZERO
    );

    // Expired.
    let b = world_batch(&s, 1, open(1), U256::ZERO).await;
    s.advance(2 * 86_400).await;
    refused::<_, Settlement::VoucherExpired>(&s, &b).await;

    // For another operator.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    let mut v = b.vouchers[0].voucher.clone();
    v.operator = a.bob.address();
    b.vouchers[0] = sign_voucher(&a.carol, &s.domain, &v).await.unwrap();
    refused::<_, Settlement::VoucherMismatch>(&s, &b).await;

    // For another model.
    let mut v = b.vouchers[0].voucher.clone();
    v.operator = a.operator.address();
    v.modelId = U256::from(2);
    b.vouchers[0] = sign_voucher(&a.carol, &s.domain, &v).await.unwrap();
    refused::<_, Settlement::VoucherMismatch>(&s, &b).await;

    // Missing voucher.
    let mut b = world_batch(&s, 1, open(1), open(1)).await;
    b.vouchers.pop();
    refused::<_, Settlement::VoucherCountMismatch>(&s, &b).await;
}
scenario!(bad_vouchers_are_refused);

/// No user is charged beyond the cumulative cap it signed, within one batch or across batches.
pub async fn charges_over_the_cap_are_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let charge = |amount: u64| Charge {
        user: a.carol.clone(),
        model: U256::from(MODEL),
        amount: open(amount),
        cap: open(10),
    };
    let over = build_batch(
        &s,
        a.operator.address(),
        &a.operator_key,
        1,
        &[charge(11)],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    let err = refused::<_, Settlement::CapExceeded>(&s, &over).await;
    assert_eq!((err.cap, err.wouldSpend), (open(10), open(11)));

    let first = build_batch(
        &s,
        a.operator.address(),
        &a.operator_key,
        1,
        &[charge(6)],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    s.ok(&a.operator, s.settlement(), first.call()).await;
    let second = build_batch(
        &s,
        a.operator.address(),
        &a.operator_key,
        2,
        &[charge(5)],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    let err = refused::<_, Settlement::CapExceeded>(&s, &second).await;
    assert_eq!(err.wouldSpend, open(11));

    // Over the deposit, under the cap.
    let big = Charge {
        user: a.dave.clone(),
        model: U256::from(MODEL),
        amount: open(501),
        cap: open(1_000),
    };
    let b = build_batch(
        &s,
        a.operator.address(),
        &a.operator_key,
        2,
        &[big],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    refused::<_, Settlement::InsufficientBalance>(&s, &b).await;
}
scenario!(charges_over_the_cap_are_refused);

/// Signatures made for another chain id or another settlement contract are worthless here.
pub async fn signatures_do_not_cross_chains_or_contracts<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    for domain in [
        settlement_domain(1, s.settlement()),
        settlement_domain(s.chain.chain_id(), s.token()),
    ] {
        let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
        b.resign(&domain, &a.operator_key).await;
        refused::<_, Settlement::InvalidOperatorSignature>(&s, &b).await;

        let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
        b.vouchers[0] = sign_voucher(&a.carol, &domain, &b.vouchers[0].voucher)
            .await
            .unwrap();
        refused::<_, Settlement::InvalidVoucherSignature>(&s, &b).await;
    }
}
scenario!(signatures_do_not_cross_chains_or_contracts);

/// Duplicate or unsorted debits and credits, wrong totals, zero amounts and credits without a
/// debit are refused.
pub async fn malformed_batches_are_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let key = s.actors.operator_key.clone();

    // The same user twice.
    let mut b = world_batch(&s, 1, open(1), open(1)).await;
    b.batch.debits[1] = b.batch.debits[0].clone();
    b.vouchers[1] = b.vouchers[0].clone();
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::DebitsNotSorted>(&s, &b).await;

    // The same beneficiary twice (alice's contribution credited in two entries).
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    let c = b.batch.credits[1].clone();
    let half = c.amount / U256::from(2);
    b.batch.credits[1] = DataCredit {
        amount: half,
        ..c.clone()
    };
    b.batch.credits.insert(
        2,
        DataCredit {
            amount: c.amount - half,
            ..c
        },
    );
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::CreditsNotSorted>(&s, &b).await;

    // Credits that do not sum to the data share (one wei short, one wei over).
    for delta in [-1i64, 1] {
        let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
        let last = b.batch.credits.last_mut().unwrap();
        last.amount = if delta < 0 {
            last.amount - U256::from(1)
        } else {
            last.amount + U256::from(1)
        };
        b.resign(&s.domain, &key).await;
        let err = refused::<_, Settlement::DataCreditsMismatch>(&s, &b).await;
        assert_eq!(
            err.actual,
            if delta < 0 {
                err.expected - U256::from(1)
            } else {
                err.expected + U256::from(1)
            }
        );
    }

    // A credit for a model nobody was charged for.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.credits.push(DataCredit {
        modelId: U256::from(7),
        datanetId: U256::from(DATANET),
        contributionId: U256::ZERO,
        amount: U256::from(1),
    });
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::CreditWithoutDebit>(&s, &b).await;

    // Zero amounts.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.debits[0].amount = U256::ZERO;
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::ZeroAmount>(&s, &b).await;

    // Empty batch.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.debits.clear();
    b.batch.credits.clear();
    b.vouchers.clear();
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::EmptyBatch>(&s, &b).await;
}
scenario!(malformed_batches_are_refused);

/// Data credits can only pay accepted contributions of datanets behind the model.
pub async fn data_credits_must_be_in_lineage_and_accepted<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    // A second datanet (not behind model 1) with an accepted contribution (id 4).
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::createDatanetCall {
            metadataURI: "ipfs://other".into(),
            minAccepted: 0,
        },
    )
    .await;
    let other = U256::from(2);
    let outsider = accepted_contribution(&s, &a.curator, &a.bob, other, "outsider text").await;
    let pending = U256::from(3); // the world's pending contribution in datanet 1

    let attribution = |datanet: U256, contribution: U256| {
        let weights = std::collections::BTreeMap::from([((datanet, contribution), 500_000u32)]);
        std::collections::BTreeMap::from([(
            U256::from(MODEL),
            Attribution {
                weights,
                remainder_datanet: U256::from(DATANET),
            },
        )])
    };
    let charge = [Charge {
        user: a.carol.clone(),
        model: U256::from(MODEL),
        amount: open(1),
        cap: open(10),
    }];
    let op = a.operator.address();

    let b = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &charge,
        &attribution(U256::from(DATANET), pending),
        SplitPolicy::default(),
    )
    .await;
    assert_eq!(
        refused::<_, Settlement::ContributionNotAccepted>(&s, &b)
            .await
            .contributionId,
        pending
    );

    let b = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &charge,
        &attribution(other, outsider),
        SplitPolicy::default(),
    )
    .await;
    refused::<_, Settlement::DatanetNotInLineage>(&s, &b).await;

    let b = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &charge,
        &attribution(U256::from(DATANET), outsider),
        SplitPolicy::default(),
    )
    .await;
    refused::<_, Settlement::ContributionNotInDatanet>(&s, &b).await;

    // Once the model adds datanet 2 in a new version, the outsider can be paid.
    s.ok(
        &a.developer,
        s.models(),
        ModelRegistry::addVersionCall {
            modelId: U256::from(MODEL),
            parentVersion: 1,
            adapterHash: keccak256("v2"),
            adapterURI: "ipfs://v2".into(),
            addedDatanetIds: vec![other],
        },
    )
    .await;
    let b = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &charge,
        &attribution(other, outsider),
        SplitPolicy::default(),
    )
    .await;
    s.ok(&a.operator, s.settlement(), b.call()).await;
}
scenario!(data_credits_must_be_in_lineage_and_accepted);

/// A charge that would overflow the cumulative spent counter reverts with the checked
/// arithmetic panic and changes nothing.
pub async fn overflowing_charge_is_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let op = a.operator.address();
    let charge = |amount: U256| Charge {
        user: a.carol.clone(),
        model: U256::from(MODEL),
        amount,
        cap: U256::MAX,
    };
    let first = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &[charge(open(1))],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    s.ok(&a.operator, s.settlement(), first.call()).await;
    // Spent is now 1 OPEN; charging U256::MAX on top overflows before any balance check.
    let mut b = build_batch(
        &s,
        op,
        &a.operator_key,
        2,
        &[charge(open(1))],
        &world_attribution(),
        SplitPolicy::default(),
    )
    .await;
    b.batch.debits[0].amount = U256::MAX;
    b.resign(&s.domain, &a.operator_key).await;
    let before = snapshot(&s).await;
    match s.send(&a.operator, s.settlement(), b.call()).await {
        Outcome::Revert(data) => {
            assert_eq!(Panic::abi_decode(&data).unwrap().code, U256::from(0x11))
        }
        Outcome::Success { .. } => panic!("overflowing charge settled"),
    }
    assert_eq!(snapshot(&s).await, before);
}
scenario!(overflowing_charge_is_refused);

/// A token that calls back into settlement while being transferred out cannot re-enter:
/// the guard refuses the inner call and the outer one pays exactly once.
pub async fn reentrancy_is_blocked<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let init = |code: &Bytes, args: Vec<u8>| Bytes::from([code.to_vec(), args].concat());
    let evil = s
        .chain
        .deploy_contract(
            a.carol.address(),
            init(
                &ReentrantToken::BYTECODE,
                ReentrantToken::constructorCall {
                    holder: a.carol.address(),
                    supply: open(1_000),
                }
                .abi_encode(),
            ),
        )
        .await
        .unwrap();
    let settlement = s
        .chain
        .deploy_contract(
            a.governance.address(),
            init(
                &Settlement::BYTECODE,
                Settlement::constructorCall {
                    token_: evil,
                    governance_: a.governance.address(),
                    treasury_: a.treasury.address(),
                    datanets_: s.datanets(),
                    models_: s.models(),
                    operators_: s.operators(),
                    policy: SplitPolicy::default().into(),
                    withdrawalDelay_: 0,
                }
                .abi_encode(),
            ),
        )
        .await
        .unwrap();
    s.ok(
        &a.carol,
        evil,
        ReentrantToken::approveCall {
            spender: settlement,
            value: open(100),
        },
    )
    .await;
    s.ok(
        &a.carol,
        settlement,
        Settlement::depositCall { amount: open(100) },
    )
    .await;
    s.ok(
        &a.carol,
        settlement,
        Settlement::requestWithdrawalCall { amount: open(100) },
    )
    .await;
    let withdraw = Bytes::from(alloy::sol_types::SolCall::abi_encode(
        &Settlement::withdrawCall {},
    ));
    s.ok(
        &a.carol,
        evil,
        ReentrantToken::armCall {
            target_: settlement,
            payload_: withdraw,
        },
    )
    .await;

    s.ok(&a.carol, settlement, Settlement::withdrawCall {})
        .await;
    assert!(s.view(evil, ReentrantToken::reenteredCall {}).await);
    assert!(!s.view(evil, ReentrantToken::reentrySucceededCall {}).await);
    let inner = s.view(evil, ReentrantToken::reentryReturnCall {}).await;
    assert_eq!(
        &inner[..4],
        &Settlement::ReentrancyGuardReentrantCall::SELECTOR[..]
    );
    assert_eq!(
        s.view(
            evil,
            ReentrantToken::balanceOfCall {
                account: a.carol.address()
            }
        )
        .await,
        open(1_000)
    );
    assert_eq!(
        s.view(
            evil,
            ReentrantToken::balanceOfCall {
                account: settlement
            }
        )
        .await,
        U256::ZERO
    );
    assert_eq!(
        s.view(settlement, Settlement::totalDepositsCall {}).await,
        U256::ZERO
    );
}
scenario!(reentrancy_is_blocked);
