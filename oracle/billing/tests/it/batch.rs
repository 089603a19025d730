//! The batch builder: a hand-worked batch, the refusals, and the no-value-created-or-lost
//! property over random receipts.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, U256};
use openledger_billing::{
    Error,
    batch::{BatchTerms, Billed, build},
    credit::credits_by_model,
    merkle::{leaf_hash, verify},
};
use openledger_primitives::{
    eip712::{Debit, batch_digest},
    split::SplitPolicy,
};
use proptest::prelude::*;

use crate::common::{self, domain, key, operator, receipt, sign, voucher};

fn terms(sequence: u64) -> BatchTerms {
    BatchTerms {
        operator: operator(),
        sequence,
        deadline: 1_900_000_000,
        policy_epoch: 1,
        policy: SplitPolicy::default(),
    }
}

fn billed(id: u64, user: u8, model: u64, fee: u64, cap: u64) -> Billed {
    let k = key(user);
    Billed {
        receipt: receipt(id, k.address(), model, U256::from(fee), &[(1, 1, 600_000)]),
        voucher: sign(&k, &domain(), voucher(&k, model, U256::from(cap))),
    }
}

#[tokio::test]
async fn a_hand_worked_batch() {
    // Users 1 and 2 on model 1 (user 1 twice, on two vouchers), user 1 on model 2.
    let items = vec![
        billed(1, 1, 1, 1_000, 5_000),
        billed(2, 2, 1, 2_000, 5_000),
        billed(3, 1, 1, 500, 9_000),
        billed(4, 1, 2, 10_000, 50_000),
    ];
    let receipts: Vec<_> = items.iter().map(|b| b.receipt.clone()).collect();
    let plan = build(&terms(7), items.clone()).unwrap();
    let (u1, u2) = (key(1).address(), key(2).address());
    let mut model1 = vec![
        Debit {
            user: u1,
            modelId: U256::from(1),
            amount: U256::from(1_500),
        },
        Debit {
            user: u2,
            modelId: U256::from(1),
            amount: U256::from(2_000),
        },
    ];
    model1.sort_by_key(|d| d.user);
    let mut expected = model1;
    expected.push(Debit {
        user: u1,
        modelId: U256::from(2),
        amount: U256::from(10_000),
    });
    assert_eq!(plan.batch.debits, expected);
    assert_eq!(
        (
            plan.batch.operator,
            plan.batch.sequence,
            plan.batch.deadline,
            plan.batch.policyEpoch
        ),
        (operator(), 7, 1_900_000_000, 1)
    );
    // user 1's model-1 debit relies on its higher-cap voucher.
    let i = plan
        .batch
        .debits
        .iter()
        .position(|d| d.user == u1 && d.modelId == U256::from(1))
        .unwrap();
    assert_eq!(plan.vouchers[i], items[2].voucher);
    assert_eq!(plan.vouchers.len(), 3);
    // Weights are fee × ppm: model 1 (3500 wei) 60 % to contribution 1, 40 % to datanet 1;
    // model 2 (10000 wei) likewise.
    let credits: Vec<_> = plan
        .batch
        .credits
        .iter()
        .map(|c| {
            (
                c.modelId.to::<u64>(),
                c.contributionId.to::<u64>(),
                c.weight.to::<u64>(),
            )
        })
        .collect();
    assert_eq!(
        credits,
        [
            (1, 0, 1_400_000_000),
            (1, 1, 2_100_000_000),
            (2, 0, 4_000_000_000),
            (2, 1, 6_000_000_000)
        ]
    );
    assert_eq!(
        plan.models,
        credits_by_model(&receipts, &SplitPolicy::default()).unwrap()
    );
    assert_eq!(plan.total_charged(), U256::from(13_500));
    // The root commits to every receipt.
    assert_eq!(plan.batch.receiptsRoot, plan.tree.root());
    for (i, r) in receipts.iter().enumerate() {
        assert!(verify(
            plan.batch.receiptsRoot,
            leaf_hash(r),
            &plan.proof(i).unwrap()
        ));
    }
    // Signed by the operator key over the settlement domain.
    let signer = key(201);
    let signed = plan.clone().sign(&signer, &domain()).await.unwrap();
    let sig = alloy::primitives::Signature::from_raw(&signed.signature).unwrap();
    assert_eq!(
        sig.recover_address_from_prehash(&batch_digest(&domain(), &plan.batch))
            .unwrap(),
        signer.address()
    );
    let call = signed.call();
    assert_eq!((call.batch, call.vouchers), (plan.batch, plan.vouchers));
}

#[test]
fn refused_inputs() {
    assert_eq!(build(&terms(1), vec![]), Err(Error::NothingToSettle));
    assert_eq!(
        build(&terms(1), vec![billed(1, 1, 1, 0, 10)]),
        Err(Error::NothingToSettle)
    );
    assert_eq!(
        build(
            &terms(1),
            vec![billed(1, 1, 1, 5, 10), billed(1, 2, 1, 5, 10)]
        ),
        Err(Error::DuplicateRequest {
            request_id: B256::from(U256::from(1))
        })
    );
    // A voucher of another user, for another model, or for another operator.
    let mut other_user = billed(1, 1, 1, 5, 10);
    other_user.voucher = billed(1, 2, 1, 5, 10).voucher;
    let mut other_model = billed(1, 1, 1, 5, 10);
    other_model.voucher = billed(1, 1, 2, 5, 10).voucher;
    for item in [other_user, other_model] {
        assert!(matches!(
            build(&terms(1), vec![item]),
            Err(Error::VoucherDoesNotCover { .. })
        ));
    }
    // A receipt another operator served, given to this operator's batch.
    assert!(matches!(
        build(
            &BatchTerms {
                operator: Address::repeat_byte(9),
                ..terms(1)
            },
            vec![billed(1, 1, 1, 5, 10)]
        ),
        Err(Error::ReceiptOfAnotherOperator { .. })
    ));
    // This operator's receipt, backed by a voucher for another operator.
    let mut other_operator = billed(1, 1, 1, 5, 10);
    other_operator.voucher.voucher.operator = Address::repeat_byte(9);
    assert!(matches!(
        build(&terms(1), vec![other_operator]),
        Err(Error::VoucherDoesNotCover { .. })
    ));
    let mut bad = billed(1, 1, 1, 5, 10);
    bad.receipt.attribution[0].ppm = 1_000_001;
    assert!(matches!(
        build(&terms(1), vec![bad]),
        Err(Error::WeightsExceedOne { .. })
    ));
    // Fees of one (model, user) that overflow.
    let big = |id| {
        let mut b = billed(id, 1, 1, 0, 10);
        b.receipt.fee = U256::MAX;
        b
    };
    assert_eq!(
        build(&terms(1), vec![big(1), big(2)]),
        Err(Error::AmountOverflow)
    );
}

/// A random receipt: user 1..=4, model 1..=3, fee, up to three weights over datanets 1..=2.
fn arb_item() -> impl Strategy<Value = Billed> {
    (
        1u8..=4,
        1u64..=3,
        0u128..=1_000_000_000_000_000_000_000_000,
        proptest::collection::btree_map((1u64..=2, 1u64..=6), 0u32..=333_333, 0..=3),
        1u64..=2,
    )
        .prop_map(|(user, model, fee, weights, datanet)| {
            let k = key(user);
            let attribution: Vec<_> = weights.iter().map(|(&(d, c), &w)| (d, c, w)).collect();
            let mut r = receipt(0, k.address(), model, U256::from(fee), &attribution);
            r.datanetId = U256::from(datanet);
            Billed {
                receipt: r,
                voucher: sign(&k, &domain(), voucher(&k, model, U256::MAX)),
            }
        })
}

proptest! {
    #![proptest_config(common::config(48))]

    /// Σ debits = Σ fees; per model, protocol + operator + developer + Σ credits = the model's
    /// debits; debits and credits strictly sorted and non-zero; every receipt proves.
    #[test]
    fn no_value_is_created_or_lost(mut items in proptest::collection::vec(arb_item(), 1..16)) {
        for (i, item) in items.iter_mut().enumerate() {
            item.receipt.requestId = B256::from(U256::from(i));
        }
        let fees: U256 = items.iter().map(|b| b.receipt.fee).sum();
        let receipts: Vec<_> = items.iter().map(|b| b.receipt.clone()).collect();
        let plan = match build(&terms(1), items) {
            Err(Error::NothingToSettle) => { prop_assert!(fees.is_zero()); return Ok(()); }
            other => other.unwrap(),
        };
        let debits: U256 = plan.batch.debits.iter().map(|d| d.amount).sum();
        prop_assert_eq!(debits, fees);
        prop_assert_eq!(plan.vouchers.len(), plan.batch.debits.len());
        for w in plan.batch.debits.windows(2) {
            prop_assert!((w[0].modelId, w[0].user) < (w[1].modelId, w[1].user));
        }
        prop_assert!(plan.batch.debits.iter().all(|d| !d.amount.is_zero()));
        for w in plan.batch.credits.windows(2) {
            prop_assert!((w[0].modelId, w[0].datanetId, w[0].contributionId)
                < (w[1].modelId, w[1].datanetId, w[1].contributionId));
        }
        prop_assert!(plan.batch.credits.iter().all(|c| !c.weight.is_zero()));
        let models: BTreeSet<U256> = plan.batch.debits.iter().map(|d| d.modelId).collect();
        for m in &plan.models {
            let charged: U256 = plan.batch.debits.iter().filter(|d| d.modelId == m.model_id).map(|d| d.amount).sum();
            let weight: U256 = plan.batch.credits.iter().filter(|c| c.modelId == m.model_id).map(|c| c.weight).sum();
            prop_assert_eq!(weight, m.total * U256::from(1_000_000u64));
            let (amounts, dust) = m.amounts(m.total, &SplitPolicy::default());
            let credited: U256 = amounts.values().copied().sum();
            prop_assert_eq!(m.total, charged);
            prop_assert_eq!(credited + dust, m.split.data);
            prop_assert_eq!(m.split.protocol + m.split.operator + m.split.developer + credited + dust, charged);
            prop_assert!(m.total.is_zero() || models.contains(&m.model_id));
        }
        prop_assert!(plan.batch.credits.iter().all(|c| models.contains(&c.modelId)));
        for (i, r) in receipts.iter().enumerate() {
            prop_assert!(verify(plan.batch.receiptsRoot, leaf_hash(r), &plan.proof(i).unwrap()));
            let mut tampered = r.clone();
            tampered.timestamp ^= 1;
            prop_assert!(!verify(plan.batch.receiptsRoot, leaf_hash(&tampered), &plan.proof(i).unwrap()));
        }
    }

    /// The batch is a function of the set of receipts: built twice it is identical, and built
    /// from the receipts in another order it has the same debits, vouchers, credits and root
    /// (the tree sorts its leaves), so anyone recomputes a settled batch from its receipts.
    #[test]
    fn the_batch_does_not_depend_on_receipt_order(
        mut items in proptest::collection::vec(arb_item(), 1..16),
        rotate in 0usize..16,
        reverse in proptest::bool::ANY,
    ) {
        for (i, item) in items.iter_mut().enumerate() {
            item.receipt.requestId = B256::from(U256::from(i));
            item.receipt.fee += U256::from(1); // at least one debit
        }
        let once = build(&terms(1), items.clone()).unwrap();
        prop_assert_eq!(&build(&terms(1), items.clone()).unwrap(), &once);
        let mut other = items;
        let n = other.len();
        other.rotate_left(rotate % n);
        if reverse {
            other.reverse();
        }
        let permuted = build(&terms(1), other).unwrap();
        prop_assert_eq!(&permuted.batch, &once.batch);
        prop_assert_eq!(&permuted.vouchers, &once.vouchers);
        prop_assert_eq!(&permuted.models, &once.models);
    }
}
