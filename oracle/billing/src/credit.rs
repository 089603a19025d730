//! The credit rule: how one model's charged total in a batch becomes the batch's data credits.
//!
//! For each model the settlement contract splits the batch's total `T` (the sum of that
//! model's debits) with the split policy — operator, developer and data shares
//! `floor(T × bps / 10_000)`, the protocol taking the rest ([`SplitPolicy::split`], the same
//! arithmetic) — and requires the model's data credits to add up to the data share `D`
//! exactly. Who gets `D` is ours to say, from the receipts:
//!
//! 1. Every receipt `r` (fee `f_r`) gives each attributed (datanet, contribution) `k` the
//!    weight `f_r × ppm_{r,k}`, and its own datanet's unattributed key `(datanetId, 0)` the
//!    weight `f_r × (1,000,000 − Σ_k ppm_{r,k})`. Summed over receipts, the weights `W_k` add
//!    up to `T × 1,000,000`: each wei of fee is attributed exactly once.
//! 2. Each key gets `floor(D × W_k / (T × 1,000,000))` wei (computed in 512 bits, so it never
//!    overflows).
//! 3. **Dust**: the floors leave `D − Σ floors` wei (less than the number of keys); it goes to
//!    the unattributed key of the smallest datanet id among the receipts. With one datanet,
//!    that datanet's unattributed credit is simply `D` minus the contributions' credits.
//! 4. Zero credits are dropped (the contract refuses zero amounts); the rest are sorted by
//!    (datanet id, contribution id), as the contract requires.
//!
//! So `Σ credits = D`, no wei is created or lost, and the result does not depend on the order
//! of the receipts. A receipt's weights are only as honest as the operator (DESIGN §4); the
//! rule makes them auditable from the receipts against the batch's root.

use std::collections::BTreeMap;

use alloy::primitives::{U256, U512};
use openledger_primitives::{
    eip712::DataCredit,
    split::{BPS, CreditKey, FeeSplit, SplitPolicy},
};

use crate::{
    error::{Error, Result},
    receipt::{PPM, Receipt},
};

/// One model's part of a batch: its total, how the contract will split it and the data
/// credits that cover the data share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCredits {
    /// The model.
    pub model_id: U256,
    /// The sum of its receipts' fees (its debits' total).
    pub total: U256,
    /// The contract's split of `total`.
    pub split: FeeSplit,
    /// Data credits, sorted, non-zero, summing to `split.data`.
    pub credits: Vec<DataCredit>,
}

/// Applies the rule to each model of `receipts`; models in ascending id. Each receipt's
/// attribution must be well formed ([`Receipt::check_attribution`]).
pub fn credits_by_model<'a>(
    receipts: impl IntoIterator<Item = &'a Receipt>,
    policy: &SplitPolicy,
) -> Result<Vec<ModelCredits>> {
    let mut by_model: BTreeMap<U256, Vec<&Receipt>> = BTreeMap::new();
    for r in receipts {
        r.check_attribution()?;
        by_model.entry(r.modelId).or_default().push(r);
    }
    by_model
        .into_iter()
        .map(|(model_id, receipts)| model_credits(model_id, &receipts, policy))
        .collect()
}

/// Applies the rule to the receipts of one model (all with `modelId == model_id`, attribution
/// already checked).
fn model_credits(
    model_id: U256,
    receipts: &[&Receipt],
    policy: &SplitPolicy,
) -> Result<ModelCredits> {
    let mut total = U256::ZERO;
    for r in receipts {
        total = total.checked_add(r.fee).ok_or(Error::AmountOverflow)?;
    }
    // The contract computes `total * bps` in checked 256-bit arithmetic: refuse what it would.
    total
        .checked_mul(U256::from(BPS))
        .ok_or(Error::AmountOverflow)?;
    let split = policy.split(total);

    let mut weights: BTreeMap<CreditKey, U512> = BTreeMap::new();
    for r in receipts.iter().filter(|r| !r.fee.is_zero()) {
        let fee = U512::from(r.fee);
        for w in &r.attribution {
            *weights.entry((w.datanetId, w.contributionId)).or_default() += fee * U512::from(w.ppm);
        }
        *weights.entry((r.datanetId, U256::ZERO)).or_default() +=
            fee * U512::from(r.unattributed_ppm());
    }

    let mut amounts: BTreeMap<CreditKey, U256> = BTreeMap::new();
    if !total.is_zero() {
        let share = U512::from(split.data);
        let denominator = U512::from(total) * U512::from(PPM);
        let mut paid = U256::ZERO;
        for (&key, &weight) in &weights {
            // weight <= denominator, so the quotient is at most the data share.
            let amount = U256::saturating_from(share * weight / denominator);
            paid += amount;
            amounts.insert(key, amount);
        }
        let dust = split.data - paid;
        let dust_key = weights
            .keys()
            .filter(|(_, contribution)| contribution.is_zero())
            .min()
            .copied()
            .expect("a receipt with a fee gives its datanet an unattributed key");
        *amounts.entry(dust_key).or_default() += dust;
    }

    let credits = amounts
        .into_iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|((datanet, contribution), amount)| DataCredit {
            modelId: model_id,
            datanetId: datanet,
            contributionId: contribution,
            amount,
        })
        .collect();
    Ok(ModelCredits {
        model_id,
        total,
        split,
        credits,
    })
}
