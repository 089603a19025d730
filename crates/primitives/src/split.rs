//! Fee-split arithmetic, identical to the settlement contract's, so the oracle builds batches
//! the contract accepts and tests can predict every balance to the wei.
//!
//! Rule (per model, per batch): `operator`, `developer` and `data` shares are
//! `floor(total * bps / 10_000)`; the protocol share is the rest, so it takes the rounding
//! dust and the four always add up to `total`. The data share is then paid by the batch's
//! credit weights, `floor(share * weight / sum of weights)` each, the dust to the treasury
//! ([`pay_by_weight`]).

use std::collections::BTreeMap;

use alloy::primitives::{U256, U512};
use serde::{Deserialize, Serialize};

use crate::bindings::ISettlement;

/// Basis points in a whole.
pub const BPS: u16 = 10_000;
/// The largest protocol share governance can set (mirrors `Settlement.MAX_PROTOCOL_BPS`).
pub const MAX_PROTOCOL_BPS: u16 = 2_000;

/// Errors of the split arithmetic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// The four shares must add up to 10,000 basis points and the protocol share stay under its cap.
    #[error(
        "invalid split policy {0:?}: shares must sum to 10000 bps with protocol <= {MAX_PROTOCOL_BPS}"
    )]
    InvalidPolicy(SplitPolicy),
}

/// Governable shares of every fee, in basis points. Serializes with snake_case keys, the key
/// style of `openledger.toml` (`split = { protocol_bps = 500, ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPolicy {
    /// Protocol treasury share (also receives rounding dust).
    pub protocol_bps: u16,
    /// Compute operator share.
    pub operator_bps: u16,
    /// Model developer share.
    pub developer_bps: u16,
    /// Data contributors' share (split by attribution).
    pub data_bps: u16,
}

impl Default for SplitPolicy {
    /// 5 % protocol, 20 % operator, 30 % developer, 45 % data.
    fn default() -> Self {
        Self {
            protocol_bps: 500,
            operator_bps: 2_000,
            developer_bps: 3_000,
            data_bps: 4_500,
        }
    }
}

impl SplitPolicy {
    /// Checks the policy is one the contract accepts.
    pub fn validate(self) -> Result<Self, SplitError> {
        let sum = u32::from(self.protocol_bps)
            + u32::from(self.operator_bps)
            + u32::from(self.developer_bps)
            + u32::from(self.data_bps);
        if sum != u32::from(BPS) || self.protocol_bps > MAX_PROTOCOL_BPS {
            return Err(SplitError::InvalidPolicy(self));
        }
        Ok(self)
    }

    /// Splits `total` exactly: the four parts add up to `total`.
    pub fn split(&self, total: U256) -> FeeSplit {
        let part = |bps: u16| total * U256::from(bps) / U256::from(BPS);
        let operator = part(self.operator_bps);
        let developer = part(self.developer_bps);
        let data = part(self.data_bps);
        FeeSplit {
            protocol: total - operator - developer - data,
            operator,
            developer,
            data,
        }
    }
}

impl From<SplitPolicy> for ISettlement::SplitPolicy {
    fn from(p: SplitPolicy) -> Self {
        Self {
            protocolBps: p.protocol_bps,
            operatorBps: p.operator_bps,
            developerBps: p.developer_bps,
            dataBps: p.data_bps,
        }
    }
}

impl From<ISettlement::SplitPolicy> for SplitPolicy {
    fn from(p: ISettlement::SplitPolicy) -> Self {
        Self {
            protocol_bps: p.protocolBps,
            operator_bps: p.operatorBps,
            developer_bps: p.developerBps,
            data_bps: p.dataBps,
        }
    }
}

/// One fee split into its four parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    /// To the treasury, including rounding dust.
    pub protocol: U256,
    /// To the operator account.
    pub operator: U256,
    /// To the model developer.
    pub developer: U256,
    /// To data contributors and datanets.
    pub data: U256,
}

/// A data credit's target: `(datanet id, contribution id)`; contribution 0 is the datanet's
/// unattributed share.
pub type CreditKey = (U256, U256);

/// Pays `share` by `weights` as the settlement contract pays one model's data share: each
/// key gets `floor(share * weight / sum of weights)` (computed in 512 bits, like OpenZeppelin's
/// `Math.mulDiv`); the returned dust (`share` minus their sum, less than the number of keys)
/// goes to the treasury. Zero payments are kept, so the result lines up with `weights`.
pub fn pay_by_weight(
    share: U256,
    weights: &BTreeMap<CreditKey, U256>,
) -> (BTreeMap<CreditKey, U256>, U256) {
    let total: U512 = weights.values().map(|w| U512::from(*w)).sum();
    let mut paid = U256::ZERO;
    let mut amounts = BTreeMap::new();
    for (&key, &weight) in weights {
        let amount = if total.is_zero() {
            U256::ZERO
        } else {
            U256::saturating_from(U512::from(share) * U512::from(weight) / total)
        };
        paid += amount;
        amounts.insert(key, amount);
    }
    (amounts, share - paid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_policy_is_valid() {
        SplitPolicy::default().validate().unwrap();
    }

    #[test]
    fn invalid_policies_are_refused() {
        let p = SplitPolicy {
            protocol_bps: 1,
            operator_bps: 1,
            developer_bps: 1,
            data_bps: 1,
        };
        assert_eq!(p.validate(), Err(SplitError::InvalidPolicy(p)));
        let greedy = SplitPolicy {
            protocol_bps: 2_001,
            operator_bps: 2_999,
            developer_bps: 2_500,
            data_bps: 2_500,
        };
        assert!(greedy.validate().is_err());
    }

    #[test]
    fn dust_goes_to_the_protocol() {
        // 7 wei at 5/20/30/45 %: operator 1, developer 2, data 3, protocol 1 (0.35 + dust).
        let s = SplitPolicy::default().split(U256::from(7));
        assert_eq!(
            (s.protocol, s.operator, s.developer, s.data),
            (U256::from(1), U256::from(1), U256::from(2), U256::from(3))
        );
    }

    proptest! {
        #[test]
        fn split_conserves_value(total in any::<u128>(), a in 0u16..=2_000, b in 0u16..=8_000, c in 0u16..=8_000) {
            prop_assume!(u32::from(a) + u32::from(b) + u32::from(c) <= 10_000);
            let p = SplitPolicy { protocol_bps: a, operator_bps: b, developer_bps: c, data_bps: 10_000 - a - b - c };
            let s = p.validate().unwrap().split(U256::from(total));
            prop_assert_eq!(s.protocol + s.operator + s.developer + s.data, U256::from(total));
        }

        #[test]
        fn data_share_is_paid_exactly(share in any::<u128>(), ws in proptest::collection::vec(1u128.., 1..20)) {
            let weights: BTreeMap<CreditKey, U256> =
                ws.iter().enumerate().map(|(i, w)| ((U256::from(1), U256::from(i + 1)), U256::from(*w))).collect();
            let (amounts, dust) = pay_by_weight(U256::from(share), &weights);
            let sum: U256 = amounts.values().copied().sum();
            prop_assert_eq!(sum + dust, U256::from(share));
            prop_assert!(dust < U256::from(ws.len()));
        }
    }
}
