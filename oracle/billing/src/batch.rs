//! The batch builder: from receipts, each with the voucher it was served against, the
//! `ISettlement.Batch` the contract settles, its vouchers array, and the operator signature.
//!
//! - **Debits**: one per (model, user), the sum of that pair's fees, sorted by (model id,
//!   user address) as the contract requires. (model, user) pairs whose fees are all zero get
//!   no debit (the contract refuses zero amounts); their receipts still go in the tree.
//! - **Vouchers**: for each debit, of the vouchers its receipts relied on, the one with the
//!   highest cumulative cap (then the later expiry, then the higher nonce): caps are
//!   cumulative, so the latest voucher covers everything served before it.
//! - **Credits**: [`crate::credit`] weights per model, in model order, so the whole list is
//!   sorted by (model, datanet, contribution).
//! - **Terms** ([`BatchTerms`]): the next sequence number, a deadline and the policy epoch.
//! - **Receipts root**: [`crate::merkle`] over the receipts, in the order given.
//!
//! The builder checks what it can without the chain — every receipt's attribution, each
//! receipt is this operator's, each voucher covers its receipt's (user, operator, model), request ids are unique, sums do not
//! overflow — and nothing that needs chain state: caps against `spent`, balances, expiry and
//! nonces were checked when serving ([`crate::voucher::authorize`]) and are checked again by
//! the contract. Fees are taken as the receipts state them ([`Receipt::validate`] checks them
//! against the price when a receipt is made).

use std::collections::{BTreeMap, BTreeSet};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::Signer,
    sol_types::Eip712Domain,
};
use openledger_primitives::{
    bindings::Settlement,
    eip712::{Batch, Debit, SignedVoucher, sign_batch},
    split::SplitPolicy,
};

use crate::{
    credit::{ModelCredits, credits_by_model},
    error::{Error, Result},
    merkle::MerkleTree,
    receipt::Receipt,
};

/// A receipt and the voucher the node served it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The receipt.
    pub receipt: Receipt,
    /// The voucher (the request's API key).
    pub voucher: SignedVoucher,
}

/// A built, not yet signed, batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// The batch the operator key signs.
    pub batch: Batch,
    /// One voucher per debit, at the same index.
    pub vouchers: Vec<SignedVoucher>,
    /// Per model: total, split and weighted credits.
    pub models: Vec<ModelCredits>,
    /// The receipts, in the order given (proof `i` is for receipt `i`).
    pub receipts: Vec<Receipt>,
    /// Their tree; its root is `batch.receiptsRoot`.
    pub tree: MerkleTree,
}

/// A signed batch, ready for `settleBatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBatch {
    /// The plan it signs.
    pub plan: BatchPlan,
    /// The operator key's 65-byte signature over `plan.batch`.
    pub signature: Bytes,
}

impl SignedBatch {
    /// The `settleBatch` call that settles it.
    pub fn call(&self) -> Settlement::settleBatchCall {
        Settlement::settleBatchCall {
            batch: self.plan.batch.clone(),
            operatorSignature: self.signature.clone(),
            vouchers: self.plan.vouchers.clone(),
        }
    }
}

/// Where a batch goes in the operator's chain of batches and under which terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTerms {
    /// The operator account.
    pub operator: Address,
    /// Its next sequence number (`lastSequence + 1`).
    pub sequence: u64,
    /// Unix seconds after which the signed batch can never settle.
    pub deadline: u64,
    /// The split-policy epoch it is priced under (`currentEpoch()`).
    pub policy_epoch: u32,
    /// That epoch's policy.
    pub policy: SplitPolicy,
}

/// Builds the batch `terms` describe from `items`.
pub fn build(terms: &BatchTerms, items: Vec<Billed>) -> Result<BatchPlan> {
    let operator = terms.operator;
    let mut seen = BTreeSet::new();
    let mut debits: BTreeMap<(U256, Address), (U256, SignedVoucher)> = BTreeMap::new();
    for Billed { receipt, voucher } in &items {
        if !seen.insert(receipt.requestId) {
            return Err(Error::DuplicateRequest {
                request_id: receipt.requestId,
            });
        }
        receipt.check_attribution()?;
        if receipt.operator != operator {
            return Err(Error::ReceiptOfAnotherOperator {
                request_id: receipt.requestId,
                receipt_operator: receipt.operator,
                operator,
            });
        }
        let v = &voucher.voucher;
        if v.user != receipt.user || v.operator != operator || v.modelId != receipt.modelId {
            return Err(Error::VoucherDoesNotCover {
                request_id: receipt.requestId,
                voucher_user: v.user,
                voucher_operator: v.operator,
                voucher_model: v.modelId,
            });
        }
        match debits.entry((receipt.modelId, receipt.user)) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((receipt.fee, voucher.clone()));
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let (amount, best) = e.get_mut();
                *amount = amount
                    .checked_add(receipt.fee)
                    .ok_or(Error::AmountOverflow)?;
                if rank(voucher) > rank(best) {
                    *best = voucher.clone();
                }
            }
        }
    }
    let (debits, vouchers): (Vec<Debit>, Vec<SignedVoucher>) = debits
        .into_iter()
        .filter(|(_, (amount, _))| !amount.is_zero())
        .map(|((model, user), (amount, voucher))| {
            (
                Debit {
                    user,
                    modelId: model,
                    amount,
                },
                voucher,
            )
        })
        .unzip();
    if debits.is_empty() {
        return Err(Error::NothingToSettle);
    }
    let receipts: Vec<Receipt> = items.into_iter().map(|b| b.receipt).collect();
    let models = credits_by_model(&receipts, &terms.policy)?;
    let tree = MerkleTree::of_receipts(&receipts)?;
    let batch = Batch {
        operator,
        sequence: terms.sequence,
        deadline: terms.deadline,
        policyEpoch: terms.policy_epoch,
        receiptsRoot: tree.root(),
        debits,
        credits: models.iter().flat_map(|m| m.credits.clone()).collect(),
    };
    Ok(BatchPlan {
        batch,
        vouchers,
        models,
        receipts,
        tree,
    })
}

/// Which of two vouchers for one channel a debit relies on: the larger (cap, expiry, nonce).
fn rank(v: &SignedVoucher) -> (U256, u64, u64) {
    (v.voucher.cumulativeCap, v.voucher.expiry, v.voucher.nonce)
}

impl BatchPlan {
    /// Signs the batch with the operator's registered signing key under the settlement domain.
    pub async fn sign<S: Signer + ?Sized>(
        self,
        key: &S,
        domain: &Eip712Domain,
    ) -> Result<SignedBatch> {
        let signature = sign_batch(key, domain, &self.batch)
            .await
            .map_err(|e| Error::Signing(e.to_string()))?;
        Ok(SignedBatch {
            plan: self,
            signature,
        })
    }

    /// The proof that receipt `index` is in the batch's root.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>> {
        self.tree.proof(index)
    }

    /// The sum of the debits: what the batch charges.
    pub fn total_charged(&self) -> U256 {
        self.models.iter().map(|m| m.total).sum()
    }
}
