//! The credit rule, hand-worked to the wei: weights from the receipts, and what the contract
//! pays by them.

use alloy::primitives::U256;
use openledger_billing::{Error, credit::credits_by_model};
use openledger_primitives::{eip712::DataCredit, split::SplitPolicy};

use crate::common::{key, receipt};

fn credit(model: u64, datanet: u64, contribution: u64, weight: u64) -> DataCredit {
    DataCredit {
        modelId: U256::from(model),
        datanetId: U256::from(datanet),
        contributionId: U256::from(contribution),
        weight: U256::from(weight),
    }
}

fn paid(amounts: &std::collections::BTreeMap<(U256, U256), U256>) -> Vec<(u64, u64, u64)> {
    amounts
        .iter()
        .map(|((d, c), a)| (d.to::<u64>(), c.to::<u64>(), a.to::<u64>()))
        .collect()
}

#[test]
fn two_receipts_weighted_by_fee_and_attribution() {
    let u = key(1).address();
    // r1: 1000 wei, contribution 1 60 %, contribution 2 25 % (15 % unattributed);
    // r2: 3 wei, all to contribution 2.
    let receipts = [
        receipt(
            1,
            u,
            1,
            U256::from(1_000),
            &[(1, 1, 600_000), (1, 2, 250_000)],
        ),
        receipt(2, u, 1, U256::from(3), &[(1, 2, 1_000_000)]),
    ];
    let policy = SplitPolicy::default();
    let m = credits_by_model(&receipts, &policy).unwrap();
    assert_eq!(m.len(), 1);
    let m = &m[0];
    // T = 1003 at 5/20/30/45 %: operator 200 (200.6), developer 300 (300.9), data 451
    // (451.35), protocol the rest, 52.
    assert_eq!(m.total, U256::from(1_003));
    assert_eq!(
        (
            m.split.operator,
            m.split.developer,
            m.split.data,
            m.split.protocol
        ),
        (
            U256::from(200),
            U256::from(300),
            U256::from(451),
            U256::from(52)
        )
    );
    // Weights (fee × ppm): datanet 1.50e8, c1 6.00e8, c2 2.53e8; they sum to T × 10⁶.
    assert_eq!(
        m.credits,
        vec![
            credit(1, 1, 0, 150_000_000),
            credit(1, 1, 1, 600_000_000),
            credit(1, 1, 2, 253_000_000)
        ]
    );
    // All collected: c1 floor(451 × 600 / 1003) = 269, c2 floor(451 × 253 / 1003) = 113,
    // datanet floor(451 × 150 / 1003) = 67, and the dust 451 − 449 = 2 to the treasury.
    let (amounts, dust) = m.amounts(m.total, &policy);
    assert_eq!(paid(&amounts), [(1, 0, 67), (1, 1, 269), (1, 2, 113)]);
    assert_eq!(dust, U256::from(2));
    // Only the 3-wei debit collected: data floor(3 × 0.45) = 1, paid by weight: c1 0, c2 0,
    // datanet 0, and 1 wei of dust.
    let (amounts, dust) = m.amounts(U256::from(3), &policy);
    assert_eq!(paid(&amounts), [(1, 0, 0), (1, 1, 0), (1, 2, 0)]);
    assert_eq!(dust, U256::from(1));
}

#[test]
fn receipts_of_several_datanets_weigh_their_own_unattributed_share() {
    let u = key(1).address();
    // r1 (datanet 2): 100 wei, half to contribution 7 of datanet 2; r2 (datanet 3): 100 wei,
    // nothing attributed.
    let mut r1 = receipt(1, u, 1, U256::from(100), &[(2, 7, 500_000)]);
    r1.datanetId = U256::from(2);
    let mut r2 = receipt(2, u, 1, U256::from(100), &[]);
    r2.datanetId = U256::from(3);
    let policy = SplitPolicy::default();
    let m = credits_by_model(&[r1, r2], &policy).unwrap();
    assert_eq!(
        m[0].credits,
        vec![
            credit(1, 2, 0, 50_000_000),
            credit(1, 2, 7, 50_000_000),
            credit(1, 3, 0, 100_000_000)
        ]
    );
    // Data share floor(200 × 0.45) = 90; weights 25 % / 25 % / 50 %: 22, 22, 45, 1 wei dust.
    let (amounts, dust) = m[0].amounts(m[0].total, &policy);
    assert_eq!(paid(&amounts), [(2, 0, 22), (2, 7, 22), (3, 0, 45)]);
    assert_eq!(dust, U256::from(1));
}

#[test]
fn models_are_credited_separately_and_in_order() {
    let u = key(1).address();
    let receipts = [
        receipt(1, u, 2, U256::from(10_000), &[(1, 4, 1_000_000)]),
        receipt(2, u, 1, U256::from(10_000), &[]),
    ];
    let m = credits_by_model(&receipts, &SplitPolicy::default()).unwrap();
    assert_eq!(
        m.iter().map(|m| m.model_id).collect::<Vec<_>>(),
        [U256::from(1), U256::from(2)]
    );
    assert_eq!(m[0].credits, vec![credit(1, 1, 0, 10_000_000_000)]);
    assert_eq!(m[1].credits, vec![credit(2, 1, 4, 10_000_000_000)]);
}

#[test]
fn zero_fees_weigh_nothing_and_tiny_fees_go_to_the_protocol() {
    let u = key(1).address();
    let policy = SplitPolicy::default();
    let m = credits_by_model(
        &[receipt(1, u, 1, U256::ZERO, &[(1, 1, 1_000_000)])],
        &policy,
    )
    .unwrap();
    assert!(m[0].credits.is_empty());
    // 2 wei: every share floors to 0 and the protocol takes both; the weight is still there.
    let m = credits_by_model(
        &[receipt(1, u, 1, U256::from(2), &[(1, 1, 1_000_000)])],
        &policy,
    )
    .unwrap();
    assert_eq!(m[0].split.protocol, U256::from(2));
    assert_eq!(m[0].credits, vec![credit(1, 1, 1, 2_000_000)]);
    let (amounts, dust) = m[0].amounts(m[0].total, &policy);
    assert_eq!((paid(&amounts), dust), (vec![(1, 1, 0)], U256::ZERO));
}

#[test]
fn bad_attributions_are_refused() {
    let u = key(1).address();
    let policy = SplitPolicy::default();
    let over = receipt(1, u, 1, U256::from(1), &[(1, 1, 600_000), (1, 2, 400_001)]);
    assert!(matches!(
        credits_by_model(&[over], &policy),
        Err(Error::WeightsExceedOne { sum: 1_000_001, .. })
    ));
    let twice = receipt(1, u, 1, U256::from(1), &[(1, 1, 1), (1, 1, 1)]);
    assert!(matches!(
        credits_by_model(&[twice], &policy),
        Err(Error::AttributionNotSorted { index: 1, .. })
    ));
    let unsorted = receipt(1, u, 1, U256::from(1), &[(2, 1, 1), (1, 9, 1)]);
    assert!(matches!(
        credits_by_model(&[unsorted], &policy),
        Err(Error::AttributionNotSorted { index: 1, .. })
    ));
    let reserved = receipt(1, u, 1, U256::from(1), &[(1, 0, 1)]);
    assert!(matches!(
        credits_by_model(&[reserved], &policy),
        Err(Error::ReservedContribution { index: 0, .. })
    ));
    // A total whose weights (total × 10⁶) the contract's checked sum would overflow on.
    let huge = receipt(1, u, 1, U256::MAX / U256::from(500_000), &[]);
    assert_eq!(
        credits_by_model(&[huge], &policy),
        Err(Error::AmountOverflow)
    );
}
