//! The batcher: turns journaled receipts into signed batches, posts them and records what the
//! chain settled, one batch at a time (the contract takes sequence numbers in order).
//!
//! Each step does the one thing the journal says is next:
//!
//! - **An outstanding batch** (signed, not settled): if the chain's `lastSequence` has reached
//!   it, its `BatchSettled` event (and the `DebitSkipped` ones of that transaction) are
//!   journaled as `Settled` — what the chain says, never what was submitted; otherwise, past
//!   its deadline (by the chain's clock) it is journaled `Abandoned` and its receipts are
//!   queued again; otherwise its exact `settleBatch` call, rebuilt from the journal, is sent
//!   (again), the transaction hash journaled, and its receipt awaited.
//! - **No outstanding batch**: when `max_receipts` receipts are queued, or the oldest has
//!   waited `max_age`, the next batch is built (sequence `lastSequence + 1`, the current
//!   policy epoch, deadline `now + deadline`), signed with the operator's signer key and
//!   journaled as `Signed` before anything is sent.
//!
//! So a crash anywhere resumes correctly: a batch signed but not sent is sent; sent but not
//! seen is found by its event, or sent again (a second copy reverts on its sequence number and
//! charges nobody); a batch that can no longer settle is abandoned and its receipts re-signed
//! under the same number. Nobody is charged twice: a sequence number settles at most once.

use std::time::Duration;

use openledger_billing::batch::{self, BatchTerms, SignedBatch as SignedPlan};

use crate::error::Result;
use crate::journal::{Record, SignedBatch};
use crate::{Inner, crash, now_secs};

/// When batches are cut, and how long a signed batch may wait to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchPolicy {
    /// Cut a batch when this many receipts are queued. Default 1,000.
    pub max_receipts: usize,
    /// ... or when the oldest queued receipt is this many seconds old. Default 60.
    pub max_age_secs: u64,
    /// A signed batch's deadline, in seconds after signing. Default 600.
    pub deadline_secs: u64,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_receipts: 1_000,
            max_age_secs: 60,
            deadline_secs: 600,
        }
    }
}

/// How long to wait for a sent transaction's receipt within one step.
const RECEIPT_WAIT: Duration = Duration::from_secs(30);

/// Does the next thing the journal says; returns whether it did anything.
pub(crate) async fn step(p: &Inner, force: bool) -> Result<bool> {
    let _one_at_a_time = p.batching.lock().await;
    if let Some(outstanding) = p.ledger.outstanding() {
        drive(p, outstanding.signed, outstanding.tx).await?;
        return Ok(true);
    }
    let (count, oldest) = p.ledger.queued();
    if count == 0 {
        return Ok(false);
    }
    let due = force
        || count >= p.config.batch.max_receipts
        || oldest.is_some_and(|t| now_secs() >= t.saturating_add(p.config.batch.max_age_secs));
    if !due {
        return Ok(false);
    }
    let signed = sign_next(p).await?;
    drive(p, signed, None).await?;
    Ok(true)
}

/// Builds, signs and journals the next batch.
async fn sign_next(p: &Inner) -> Result<SignedBatch> {
    let items = p.ledger.next_items(p.config.batch.max_receipts)?;
    crash::point("while_building");
    let (sequence, policy_epoch, policy) = p.chain.next_batch().await?;
    let (head, chain_now) = p.chain.head().await?;
    let terms = BatchTerms {
        operator: p.chain.operator(),
        sequence,
        deadline: chain_now + p.config.batch.deadline_secs,
        policy_epoch,
        policy,
    };
    let plan = batch::build(&terms, items)?;
    let request_ids = plan.receipts.iter().map(|r| r.requestId).collect();
    let signed = plan.sign(&p.signer, p.chain.domain()).await?;
    let record = SignedBatch {
        sequence,
        deadline: terms.deadline,
        policy_epoch,
        policy_bps: [
            policy.protocol_bps,
            policy.operator_bps,
            policy.developer_bps,
            policy.data_bps,
        ],
        request_ids,
        signature: signed.signature,
        from_block: head,
    };
    p.journal(Record::Signed(record.clone())).await?;
    tracing::info!(target: "payments::batch", sequence, receipts = record.request_ids.len(), charged = %signed.plan.total_charged(), "batch signed");
    crash::point("after_signing");
    Ok(record)
}

/// Settles, abandons or (re)sends the outstanding batch.
async fn drive(p: &Inner, signed: SignedBatch, tx: Option<alloy::primitives::B256>) -> Result<()> {
    let sequence = signed.sequence;
    if p.chain.last_sequence().await? >= sequence {
        return reconcile(p, &signed).await;
    }
    let (_, chain_now) = p.chain.head().await?;
    if chain_now > signed.deadline {
        tracing::warn!(target: "payments::batch", sequence, deadline = signed.deadline, "batch passed its deadline unsettled: its receipts go into the next batch");
        p.journal(Record::Abandoned { sequence }).await?;
        return Ok(());
    }
    let tx = match tx {
        Some(tx) => tx,
        None => {
            let plan = p.ledger.plan(&signed, p.chain.operator())?;
            let call = SignedPlan {
                plan,
                signature: signed.signature.clone(),
            };
            let tx = match p.chain.send(&call).await {
                Ok(tx) => tx,
                Err(e) => {
                    p.metrics.post_failures.increment(1);
                    // Settled meanwhile (e.g. by an earlier copy)? The next step sees it.
                    return Err(e);
                }
            };
            crash::point("after_send");
            p.journal(Record::Sent { sequence, tx }).await?;
            crash::point("before_receipt");
            tx
        }
    };
    match p.chain.wait(tx, RECEIPT_WAIT).await? {
        Some(true) => reconcile(p, &signed).await,
        Some(false) => {
            p.metrics.post_failures.increment(1);
            tracing::warn!(target: "payments::batch", sequence, %tx, "the settling transaction reverted; sending the batch again");
            // Forget the reverted transaction: the next step sends a fresh copy, or finds the
            // batch settled, or abandons it at its deadline.
            p.journal(Record::Sent {
                sequence,
                tx: alloy::primitives::B256::ZERO,
            })
            .await
        }
        None => Ok(()), // still pending: look again next step
    }
}

/// Journals what the chain says settled `signed`.
async fn reconcile(p: &Inner, signed: &SignedBatch) -> Result<()> {
    let Some(settled) = p
        .chain
        .settlement_of(signed.sequence, signed.from_block)
        .await?
    else {
        // lastSequence is past it but the event is not visible yet (a lagging node): retry.
        return Ok(());
    };
    let skipped = settled.skipped.len();
    p.journal(Record::Settled(settled.clone())).await?;
    p.metrics.batches_settled.increment(1);
    p.metrics.debits_skipped.increment(skipped as u64);
    for s in &settled.skipped {
        tracing::warn!(target: "payments::batch", sequence = signed.sequence, user = %s.user, model = %s.model_id, amount = %s.amount, reason = s.reason, "the contract skipped a debit as uncollectable");
    }
    tracing::info!(target: "payments::batch", sequence = signed.sequence, tx = %settled.tx, block = settled.block, collected = %settled.collected, debits = settled.debits_collected, skipped, "batch settled");
    Ok(())
}
