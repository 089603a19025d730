//! The credit rule: how one model's receipts in a batch become the batch's data credits.
//!
//! The settlement contract pays each model's data share by *weights* (ISettlement): of the
//! total `T` it actually collected for the model (a debit it skips collects nothing), the data
//! share `D = floor(T × dataBps / 10,000)` goes to credit `k` as `floor(D × w_k / Σw)`, the
//! dust to the treasury. The weights are ours to say, from the receipts, and this is the one
//! rule, exact and in integers:
//!
//! 1. Every receipt `r` (fee `f_r`) gives each attributed (datanet, contribution) `k` the
//!    weight `f_r × ppm_{r,k}`, and its own datanet's unattributed key `(datanetId, 0)` the
//!    weight `f_r × (1,000,000 − Σ_k ppm_{r,k})`. Summed over the model's receipts, the weights
//!    add up to `T × 1,000,000`: each wei of fee is attributed exactly once.
//! 2. Keys with zero weight are dropped (the contract refuses them); the rest are sorted by
//!    (datanet id, contribution id), as the contract requires.
//!
//! The weights do not depend on the order of the receipts, and anyone can recompute them from
//! the receipts under the batch's root. When every debit is collected, credit `k` is paid
//! `floor(D × W_k / (T × 1,000,000))`; when some are skipped, every credit of that model
//! shrinks in proportion ([`ModelCredits::amounts`] predicts the payments for any collected
//! total). A receipt's weights are only as honest as the operator (DESIGN §4).

use std::collections::BTreeMap;

use alloy::primitives::U256;
use openledger_primitives::{
    eip712::DataCredit,
    split::{CreditKey, FeeSplit, SplitPolicy, pay_by_weight},
};

use crate::{
    error::{Error, Result},
    receipt::{PPM, Receipt},
};

/// One model's part of a batch: its total, how the contract will split it and the weighted
/// data credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCredits {
    /// The model.
    pub model_id: U256,
    /// The sum of its receipts' fees (its debits' total).
    pub total: U256,
    /// The contract's split of `total`, if every debit is collected.
    pub split: FeeSplit,
    /// Data credits with their weights, sorted, non-zero.
    pub credits: Vec<DataCredit>,
}

impl ModelCredits {
    /// What the contract pays each credit, and the dust to the treasury, when it collects
    /// `collected` of this model's total, split with `policy`.
    pub fn amounts(
        &self,
        collected: U256,
        policy: &SplitPolicy,
    ) -> (BTreeMap<CreditKey, U256>, U256) {
        let weights = self
            .credits
            .iter()
            .map(|c| ((c.datanetId, c.contributionId), c.weight))
            .collect();
        pay_by_weight(policy.split(collected).data, &weights)
    }
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
    // The contract computes `total * bps` and sums weights (≤ total × 10⁶) in checked 256-bit
    // arithmetic: refuse what it would.
    total
        .checked_mul(U256::from(PPM))
        .ok_or(Error::AmountOverflow)?;
    let split = policy.split(total);

    let mut weights: BTreeMap<CreditKey, U256> = BTreeMap::new();
    for r in receipts.iter().filter(|r| !r.fee.is_zero()) {
        for w in &r.attribution {
            *weights.entry((w.datanetId, w.contributionId)).or_default() +=
                r.fee * U256::from(w.ppm);
        }
        *weights.entry((r.datanetId, U256::ZERO)).or_default() +=
            r.fee * U256::from(r.unattributed_ppm());
    }
    let credits = weights
        .into_iter()
        .filter(|(_, weight)| !weight.is_zero())
        .map(|((datanet, contribution), weight)| DataCredit {
            modelId: model_id,
            datanetId: datanet,
            contributionId: contribution,
            weight,
        })
        .collect();
    Ok(ModelCredits {
        model_id,
        total,
        split,
        credits,
    })
}
