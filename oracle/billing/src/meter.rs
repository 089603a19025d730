//! The fee rule: what a request costs, in wei, from its token counts and the model's on-chain
//! price.
//!
//! `fee = ceil((prompt + completion) × pricePer1kTokens / 1000)`: rounded up, so a request
//! that used any tokens at a non-zero price is never free. Token counts come from the model's
//! own tokenizer (the server's job). All arithmetic is checked: an overflow is
//! [`Error::FeeOverflow`], never a panic or a wrapped value.

use alloy::primitives::U256;

use crate::error::{Error, Result};

/// Tokens per price unit: the on-chain price is per 1,000 tokens.
pub const TOKENS_PER_PRICE_UNIT: u64 = 1_000;

/// The fee for `tokens` tokens at `price_per_1k` wei per 1,000 tokens, rounded up.
pub fn fee(tokens: u64, price_per_1k: U256) -> Result<U256> {
    let overflow = || Error::FeeOverflow {
        tokens,
        price_per_1k,
    };
    let wei = U256::from(tokens)
        .checked_mul(price_per_1k)
        .ok_or_else(overflow)?;
    let (quotient, remainder) = wei.div_rem(U256::from(TOKENS_PER_PRICE_UNIT));
    Ok(if remainder.is_zero() {
        quotient
    } else {
        // quotient < U256::MAX / 1000, so adding one cannot overflow.
        quotient + U256::from(1)
    })
}

/// The fee of a finished request: its prompt and completion tokens together.
pub fn request_fee(prompt_tokens: u64, completion_tokens: u64, price_per_1k: U256) -> Result<U256> {
    let tokens = prompt_tokens
        .checked_add(completion_tokens)
        .ok_or(Error::FeeOverflow {
            tokens: u64::MAX,
            price_per_1k,
        })?;
    fee(tokens, price_per_1k)
}

/// The most a request can cost: its prompt plus every token it may generate. The node
/// reserves this much against the user's voucher and deposit before spending any compute.
pub fn worst_case_fee(prompt_tokens: u64, max_tokens: u64, price_per_1k: U256) -> Result<U256> {
    request_fee(prompt_tokens, max_tokens, price_per_1k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_the_wei() {
        // 1 token at 1 wei per 1k tokens: 0.001 wei, charged 1.
        assert_eq!(fee(1, U256::from(1)).unwrap(), U256::from(1));
        // 1000 tokens at 7 wei per 1k: exactly 7.
        assert_eq!(fee(1_000, U256::from(7)).unwrap(), U256::from(7));
        // 1001 tokens at 7 wei per 1k: 7.007, charged 8.
        assert_eq!(fee(1_001, U256::from(7)).unwrap(), U256::from(8));
        assert_eq!(fee(0, U256::from(7)).unwrap(), U256::ZERO);
        assert_eq!(fee(123, U256::ZERO).unwrap(), U256::ZERO);
    }

    #[test]
    fn the_largest_exact_fee_does_not_overflow() {
        // u64::MAX tokens at the largest price that fits: no overflow, rounded up.
        let price = U256::MAX / U256::from(u64::MAX);
        let f = fee(u64::MAX, price).unwrap();
        assert_eq!(
            f,
            (U256::from(u64::MAX) * price).div_ceil(U256::from(1_000))
        );
        assert!(matches!(
            fee(u64::MAX, price + U256::from(1)),
            Err(Error::FeeOverflow { .. })
        ));
    }
}
