//! The fee rule, hand-worked to the wei.

use alloy::primitives::U256;
use openledger_billing::{Error, meter};

const OPEN: u128 = 1_000_000_000_000_000_000;

#[test]
fn fee_of_a_request_hand_worked() {
    // 37 prompt + 120 completion tokens at 2 OPEN per 1k: 157 × 2e18 / 1000 = 3.14e17 wei.
    let price = U256::from(2 * OPEN);
    assert_eq!(
        meter::request_fee(37, 120, price).unwrap(),
        U256::from(314_000_000_000_000_000u128)
    );
    // At 3 wei per 1k: 471 / 1000 = 0.471, rounded up to 1 wei.
    assert_eq!(
        meter::request_fee(37, 120, U256::from(3)).unwrap(),
        U256::from(1)
    );
    // At 1001 wei per 1k, 1000 tokens: exactly 1001; 1001 tokens: 1002.001 → 1003.
    assert_eq!(
        meter::fee(1_000, U256::from(1_001)).unwrap(),
        U256::from(1_001)
    );
    assert_eq!(
        meter::fee(1_001, U256::from(1_001)).unwrap(),
        U256::from(1_003)
    );
}

#[test]
fn worst_case_counts_every_token_the_request_may_generate() {
    let price = U256::from(2 * OPEN);
    // 37 prompt tokens, max_tokens 256: 293 × 2e15 wei.
    assert_eq!(
        meter::worst_case_fee(37, 256, price).unwrap(),
        U256::from(293u128 * 2_000_000_000_000_000)
    );
    assert!(
        meter::worst_case_fee(37, 256, price).unwrap()
            >= meter::request_fee(37, 120, price).unwrap()
    );
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    assert_eq!(
        meter::request_fee(u64::MAX, 1, U256::from(1)),
        Err(Error::FeeOverflow {
            tokens: u64::MAX,
            price_per_1k: U256::from(1)
        })
    );
    assert!(matches!(
        meter::fee(2, U256::MAX),
        Err(Error::FeeOverflow { tokens: 2, .. })
    ));
    // The largest price that works for one token.
    assert_eq!(
        meter::fee(1, U256::MAX).unwrap(),
        U256::MAX.div_ceil(U256::from(1_000))
    );
}
