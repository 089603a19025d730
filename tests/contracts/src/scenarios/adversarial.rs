//! Attacks on settlement. A fault of the batch itself reverts it: each such case asserts the
//! exact revert reason and that no balance, escrow, claimable amount or total changed. A debit
//! that cannot be collected is skipped instead: each such case asserts the reason and that no
//! money moved.

use alloy::{
    primitives::{Bytes, U256, keccak256},
    sol_types::{Panic, SolConstructor, SolError},
};
use openledger_primitives::{
    bindings::{
        DatanetRegistry, ModelRegistry, OperatorRegistry, ReentrantToken, Settlement, skip_reason,
    },
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

/// Submits `batch`, expects it to settle with every debit skipped for `reason`, and checks no
/// money moved.
async fn skipped<C: Chain>(s: &Suite<C>, batch: &SignedBatch, reason: u8) {
    let before = snapshot(s).await;
    let r = s.ok(&s.actors.operator, s.settlement(), batch.call()).await;
    let skips = r.events::<Settlement::DebitSkipped>(s.settlement());
    assert_eq!(skips.len(), batch.batch.debits.len(), "every debit skipped");
    assert!(skips.iter().all(|e| e.reason == reason), "{skips:?}");
    assert!(r.events::<Settlement::Charged>(s.settlement()).is_empty());
    assert_eq!(snapshot(s).await, before, "a skipped debit moved money");
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

/// Forged, expired and mismatched vouchers are skipped, not collected; a missing voucher
/// refuses the batch.
pub async fn bad_vouchers_are_skipped<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();

    // Forged: dave signs carol's voucher.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.vouchers[0] = sign_voucher(&a.dave, &s.domain, &b.vouchers[0].voucher)
        .await
        .unwrap();
    skipped(&s, &b, skip_reason::INVALID_SIGNATURE).await;

    // Expired before the batch lands (the batch itself is still within its deadline).
    let mut b = world_batch(&s, 2, open(1), U256::ZERO).await;
    let mut v = b.vouchers[0].voucher.clone();
    v.expiry = s.now().await + 10;
    b.vouchers[0] = sign_voucher(&a.carol, &s.domain, &v).await.unwrap();
    s.advance(20).await;
    skipped(&s, &b, skip_reason::VOUCHER_EXPIRED).await;

    // For another operator.
    let mut b = world_batch(&s, 3, open(1), U256::ZERO).await;
    let mut v = b.vouchers[0].voucher.clone();
    v.operator = a.bob.address();
    b.vouchers[0] = sign_voucher(&a.carol, &s.domain, &v).await.unwrap();
    skipped(&s, &b, skip_reason::VOUCHER_MISMATCH).await;

    // For another model.
    let mut b = world_batch(&s, 4, open(1), U256::ZERO).await;
    let mut v = b.vouchers[0].voucher.clone();
    v.modelId = U256::from(2);
    b.vouchers[0] = sign_voucher(&a.carol, &s.domain, &v).await.unwrap();
    skipped(&s, &b, skip_reason::VOUCHER_MISMATCH).await;

    // Missing voucher.
    let mut b = world_batch(&s, 5, open(1), open(1)).await;
    b.vouchers.pop();
    refused::<_, Settlement::VoucherCountMismatch>(&s, &b).await;
}
scenario!(bad_vouchers_are_skipped);

/// No user is charged beyond the cumulative cap it signed, within one batch or across
/// batches, nor beyond its escrow for this operator: such debits are skipped.
pub async fn charges_over_the_cap_are_skipped<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let charge = |amount: u64| Charge {
        user: a.carol.clone(),
        model: U256::from(MODEL),
        amount: open(amount),
        cap: open(10),
    };
    let op = a.operator.address();
    let over = build_batch(
        &s,
        op,
        &a.operator_key,
        1,
        &[charge(11)],
        &world_attribution(),
    )
    .await;
    skipped(&s, &over, skip_reason::CAP_EXCEEDED).await;

    let first = build_batch(
        &s,
        op,
        &a.operator_key,
        2,
        &[charge(6)],
        &world_attribution(),
    )
    .await;
    s.ok(&a.operator, s.settlement(), first.call()).await;
    let second = build_batch(
        &s,
        op,
        &a.operator_key,
        3,
        &[charge(5)],
        &world_attribution(),
    )
    .await;
    skipped(&s, &second, skip_reason::CAP_EXCEEDED).await;

    // Over the escrow, under the cap.
    let big = Charge {
        user: a.dave.clone(),
        model: U256::from(MODEL),
        amount: open(501),
        cap: open(1_000),
    };
    let b = build_batch(&s, op, &a.operator_key, 4, &[big], &world_attribution()).await;
    skipped(&s, &b, skip_reason::INSUFFICIENT_ESCROW).await;
}
scenario!(charges_over_the_cap_are_skipped);

/// Signatures made for another chain id or another settlement contract are worthless here.
pub async fn signatures_do_not_cross_chains_or_contracts<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    for domain in [
        settlement_domain(1, s.settlement()),
        settlement_domain(s.chain.chain_id(), s.token()),
    ] {
        let sequence = s
            .view(
                s.settlement(),
                Settlement::lastSequenceCall {
                    operator: a.operator.address(),
                },
            )
            .await
            + 1;
        let mut b = world_batch(&s, sequence, open(1), U256::ZERO).await;
        b.resign(&domain, &a.operator_key).await;
        refused::<_, Settlement::InvalidOperatorSignature>(&s, &b).await;

        let mut b = world_batch(&s, sequence, open(1), U256::ZERO).await;
        b.vouchers[0] = sign_voucher(&a.carol, &domain, &b.vouchers[0].voucher)
            .await
            .unwrap();
        skipped(&s, &b, skip_reason::INVALID_SIGNATURE).await;
    }
}
scenario!(signatures_do_not_cross_chains_or_contracts);

/// Duplicate or unsorted debits and credits, zero or missing weights, credits naming datanet
/// 0 and credits without a debit are refused.
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
    let half = c.weight / U256::from(2);
    b.batch.credits[1] = DataCredit {
        weight: half,
        ..c.clone()
    };
    b.batch.credits.insert(
        2,
        DataCredit {
            weight: c.weight - half,
            ..c
        },
    );
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::CreditsNotSorted>(&s, &b).await;

    // A zero weight.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.credits[0].weight = U256::ZERO;
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::ZeroAmount>(&s, &b).await;

    // A credit naming datanet 0.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.credits[0].datanetId = U256::ZERO;
    b.resign(&s.domain, &key).await;
    let err = refused::<_, Settlement::UnknownDatanet>(&s, &b).await;
    assert_eq!(err.datanetId, U256::ZERO);

    // A charged model without data credits.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.credits.clear();
    b.resign(&s.domain, &key).await;
    refused::<_, Settlement::NoDataCredits>(&s, &b).await;

    // A credit for a model nobody was charged for.
    let mut b = world_batch(&s, 1, open(1), U256::ZERO).await;
    b.batch.credits.push(DataCredit {
        modelId: U256::from(7),
        datanetId: U256::from(DATANET),
        contributionId: U256::ZERO,
        weight: U256::from(1),
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

/// Data credits can only pay accepted contributions (not pending, rejected or unknown ones) of
/// datanets behind the model.
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
    // The batch crediting half of model 1's data share to `contribution` of `datanet`.
    let crediting = async |datanet: U256, contribution: U256| {
        build_batch(
            &s,
            op,
            &a.operator_key,
            1,
            &charge,
            &attribution(datanet, contribution),
        )
        .await
    };

    let b = crediting(U256::from(DATANET), pending).await;
    assert_eq!(
        refused::<_, Settlement::ContributionNotAccepted>(&s, &b)
            .await
            .contributionId,
        pending
    );

    // Unknown, and rejected.
    let unknown = U256::from(999);
    let b = crediting(U256::from(DATANET), unknown).await;
    assert_eq!(
        refused::<_, Settlement::ContributionNotAccepted>(&s, &b)
            .await
            .contributionId,
        unknown
    );
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::rejectContributionCall {
            contributionId: pending,
            slash: false,
        },
    )
    .await;
    let b = crediting(U256::from(DATANET), pending).await;
    refused::<_, Settlement::ContributionNotAccepted>(&s, &b).await;

    let b = crediting(other, outsider).await;
    refused::<_, Settlement::DatanetNotInLineage>(&s, &b).await;

    let b = crediting(U256::from(DATANET), outsider).await;
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
    let b = crediting(other, outsider).await;
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

/// A token that calls back into settlement while being transferred out cannot re-enter
/// `withdraw` or `claim`: the guard refuses the inner call and the outer one pays exactly once
/// (EVM), or the runtime refuses it and the outer call reverts whole until the token stops
/// trying (pallet-revive). Either way the deposit is paid out exactly once.
pub async fn reentrancy_is_blocked<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let init = |code: &Bytes, args: Vec<u8>| Bytes::from([code.to_vec(), args].concat());
    let code = |name: &str| s.chain.code(name).expect("the backend has the contract");
    let evil = s
        .chain
        .deploy_contract(
            a.carol.address(),
            init(
                &code("ReentrantToken"),
                ReentrantToken::constructorCall {
                    holder: a.carol.address(),
                    supply: open(1_000),
                }
                .abi_encode(),
            ),
        )
        .await
        .unwrap();
    // A whole suite on the evil token, wired as the deployer wires one. The operator's signing
    // key has never sent a transaction, so its creations land at nonces 0..=3.
    let deployer = a.operator_key.address();
    let (datanets, models, operators, settlement) = (
        deployer.create(0),
        deployer.create(1),
        deployer.create(2),
        deployer.create(3),
    );
    let (gov, treasury) = (a.governance.address(), a.treasury.address());
    for (code, args, at) in [
        (
            &code("DatanetRegistry"),
            DatanetRegistry::constructorCall {
                token_: evil,
                governance_: gov,
                treasury_: treasury,
            }
            .abi_encode(),
            datanets,
        ),
        (
            &code("ModelRegistry"),
            ModelRegistry::constructorCall {
                datanets_: datanets,
            }
            .abi_encode(),
            models,
        ),
        (
            &code("OperatorRegistry"),
            OperatorRegistry::constructorCall {
                token_: evil,
                governance_: gov,
                treasury_: treasury,
                settlement_: settlement,
                minStake_: U256::ZERO,
                unstakeCooldown_: 0,
            }
            .abi_encode(),
            operators,
        ),
        (
            &code("Settlement"),
            Settlement::constructorCall {
                token_: evil,
                governance_: gov,
                treasury_: treasury,
                datanets_: datanets,
                models_: models,
                operators_: operators,
                policy: SplitPolicy::default().into(),
                withdrawalDelay_: 0,
            }
            .abi_encode(),
            settlement,
        ),
    ] {
        let deployed = s
            .chain
            .deploy_contract(deployer, init(code, args))
            .await
            .unwrap();
        assert_eq!(deployed, at);
    }
    let op = a.operator.address();
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
        Settlement::depositCall {
            operator: op,
            amount: open(100),
        },
    )
    .await;
    s.ok(
        &a.carol,
        settlement,
        Settlement::requestWithdrawalCall {
            operator: op,
            amount: open(100),
        },
    )
    .await;
    for payload in [
        alloy::sol_types::SolCall::abi_encode(&Settlement::withdrawCall { operator: op }),
        alloy::sol_types::SolCall::abi_encode(&Settlement::claimCall {}),
    ] {
        s.ok(
            &a.carol,
            evil,
            ReentrantToken::armCall {
                target_: settlement,
                payload_: payload.into(),
            },
        )
        .await;
        if s.view(settlement, Settlement::totalDepositsCall {})
            .await
            .is_zero()
        {
            // Second round: put 1 OPEN back in and take it out again.
            s.ok(
                &a.carol,
                evil,
                ReentrantToken::approveCall {
                    spender: settlement,
                    value: open(1),
                },
            )
            .await;
            s.ok(
                &a.carol,
                settlement,
                Settlement::depositCall {
                    operator: op,
                    amount: open(1),
                },
            )
            .await;
            s.ok(
                &a.carol,
                settlement,
                Settlement::requestWithdrawalCall {
                    operator: op,
                    amount: open(1),
                },
            )
            .await;
        }
        let deposits = s.view(settlement, Settlement::totalDepositsCall {}).await;
        let withdraw = Settlement::withdrawCall { operator: op };
        match s.send(&a.carol, settlement, withdraw.clone()).await {
            // The EVM: the guard refuses the inner call, the outer one pays once.
            Outcome::Success { .. } => {
                assert!(s.view(evil, ReentrantToken::reenteredCall {}).await);
                assert!(!s.view(evil, ReentrantToken::reentrySucceededCall {}).await);
                let inner = s.view(evil, ReentrantToken::reentryReturnCall {}).await;
                assert_eq!(
                    &inner[..4],
                    &Settlement::ReentrancyGuardReentrantCall::SELECTOR[..]
                );
            }
            // pallet-revive refuses re-entry itself by trapping the token that tries it: the
            // whole withdrawal reverts, nothing moves, and it pays once the token is disarmed.
            Outcome::Revert(data) => {
                let failed = Settlement::SafeERC20FailedOperation::abi_decode(&data)
                    .expect("the token's failure, nothing else");
                assert_eq!(failed.token, evil);
                assert_eq!(
                    s.view(settlement, Settlement::totalDepositsCall {}).await,
                    deposits
                );
                s.ok(
                    &a.carol,
                    evil,
                    ReentrantToken::armCall {
                        target_: alloy::primitives::Address::ZERO,
                        payload_: Bytes::new(),
                    },
                )
                .await;
                s.ok(&a.carol, settlement, withdraw).await;
            }
        }
    }
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
