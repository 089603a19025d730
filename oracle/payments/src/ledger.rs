//! The node's paid state, rebuilt from the journal at start and kept current by applying each
//! record as it is journaled: the receipts, which batch each is in, what is unsettled per
//! (user, model) channel and per user, and the reservations of requests still running.
//!
//! **Unsettled** is what the node has served but not yet seen settled: every receipt not in a
//! settled batch. With the reservations of running requests (each at its worst-case fee) it is
//! the `unsettled` of [`openledger_billing::voucher::authorize`], so concurrent requests can
//! never promise one voucher's cap or one escrow twice. A reservation is released when its
//! request ends: replaced by the receipt's actual fee, or by nothing when no token was served.
//!
//! Batches: at most one is outstanding (signed, not yet settled or abandoned), since the
//! contract accepts sequence numbers only in order. A settled batch's receipts stop counting
//! as unsettled (the chain's `spent` has them now); an abandoned batch's receipts go back to
//! the queue in their journal order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256, U256};
use openledger_billing::{
    Receipt,
    batch::{self, BatchPlan, BatchTerms, Billed},
    voucher::{Unsettled, decode_api_key},
};
use openledger_primitives::split::SplitPolicy;

use crate::error::{Error, Result};
use crate::journal::{Record, Served, Settled, SignedBatch};

/// One journaled receipt and where it is.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The receipt, its voucher and spans.
    pub served: Served,
    /// Its position in the journal (the batching order).
    pub order: u64,
    /// The batch holding it, if any.
    pub batch: Option<u64>,
}

/// A batch the node signed, and what became of it.
#[derive(Debug, Clone)]
pub struct BatchState {
    /// The signed record.
    pub signed: SignedBatch,
    /// The last transaction sent for it.
    pub tx: Option<B256>,
    /// The chain's settlement, once seen.
    pub settled: Option<Settled>,
}

/// The ledger proper (behind [`Ledger`]'s lock).
#[derive(Debug, Default)]
struct State {
    receipts: HashMap<B256, Entry>,
    /// Receipts in no live batch, by journal order.
    queue: BTreeMap<u64, B256>,
    batches: BTreeMap<u64, BatchState>,
    next_order: u64,
    unsettled_channel: HashMap<(Address, U256), U256>,
    unsettled_user: HashMap<Address, U256>,
    reserved_channel: HashMap<(Address, U256), U256>,
    reserved_user: HashMap<Address, U256>,
    /// Fees in settled batches the contract could not collect.
    uncollected: U256,
    /// Settlements applied so far: chain facts read before a settlement was applied are
    /// stale (the chain's `spent` grew while the node's unsettled shrank).
    settlements: u64,
}

/// The node's paid state, shared by the request handlers and the batcher.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    state: Arc<Mutex<State>>,
}

/// A running request's hold on a voucher's cap and the user's escrow; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    ledger: Ledger,
    user: Address,
    model_id: U256,
    amount: U256,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut s = self.ledger.lock();
        sub(
            &mut s.reserved_channel,
            (self.user, self.model_id),
            self.amount,
        );
        sub(&mut s.reserved_user, self.user, self.amount);
    }
}

fn add<K: std::hash::Hash + Eq>(map: &mut HashMap<K, U256>, key: K, amount: U256) {
    let v = map.entry(key).or_default();
    *v = v.saturating_add(amount);
}

fn sub<K: std::hash::Hash + Eq>(map: &mut HashMap<K, U256>, key: K, amount: U256) {
    if let Some(v) = map.get_mut(&key) {
        *v = v.saturating_sub(amount);
        if v.is_zero() {
            map.remove(&key);
        }
    }
}

impl State {
    fn unsettled(&self, user: Address, model_id: U256) -> Unsettled {
        let get = |m: &HashMap<(Address, U256), U256>| {
            m.get(&(user, model_id)).copied().unwrap_or_default()
        };
        let get_user = |m: &HashMap<Address, U256>| m.get(&user).copied().unwrap_or_default();
        Unsettled {
            channel: get(&self.unsettled_channel).saturating_add(get(&self.reserved_channel)),
            user: get_user(&self.unsettled_user).saturating_add(get_user(&self.reserved_user)),
        }
    }
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ledger a journal's records describe.
    pub fn replay(records: impl IntoIterator<Item = Record>) -> Result<Self> {
        let ledger = Self::default();
        for r in records {
            ledger.apply(&r)?;
        }
        Ok(ledger)
    }

    /// Applies one journaled record.
    pub fn apply(&self, record: &Record) -> Result<()> {
        let mut s = self.lock();
        match record {
            Record::Served(served) => {
                let r = &served.receipt;
                let id = r.requestId;
                if s.receipts.contains_key(&id) {
                    return Err(Error::Replay(format!("receipt {id} journaled twice")));
                }
                let order = s.next_order;
                s.next_order += 1;
                add(&mut s.unsettled_channel, (r.user, r.modelId), r.fee);
                add(&mut s.unsettled_user, r.user, r.fee);
                s.queue.insert(order, id);
                s.receipts.insert(
                    id,
                    Entry {
                        served: (**served).clone(),
                        order,
                        batch: None,
                    },
                );
            }
            Record::Signed(signed) => {
                if s.batches.values().any(|b| b.settled.is_none()) {
                    return Err(Error::Replay(format!(
                        "batch {} signed while another is outstanding",
                        signed.sequence
                    )));
                }
                for id in &signed.request_ids {
                    let entry = s.receipts.get_mut(id).ok_or_else(|| {
                        Error::Replay(format!("batch names unknown receipt {id}"))
                    })?;
                    if entry.batch.is_some() {
                        return Err(Error::Replay(format!("receipt {id} batched twice")));
                    }
                    entry.batch = Some(signed.sequence);
                    let order = entry.order;
                    s.queue.remove(&order);
                }
                s.batches.insert(
                    signed.sequence,
                    BatchState {
                        signed: signed.clone(),
                        tx: None,
                        settled: None,
                    },
                );
            }
            Record::Sent { sequence, tx } => {
                if let Some(b) = s.batches.get_mut(sequence) {
                    b.tx = (!tx.is_zero()).then_some(*tx);
                }
            }
            Record::Settled(settled) => {
                let Some(b) = s.batches.get_mut(&settled.sequence) else {
                    return Err(Error::Replay(format!(
                        "settlement of unknown batch {}",
                        settled.sequence
                    )));
                };
                if b.settled.is_some() {
                    return Ok(()); // seen twice: idempotent
                }
                b.settled = Some(settled.clone());
                let ids = b.signed.request_ids.clone();
                s.settlements += 1;
                for id in ids {
                    let r = s.receipts[&id].served.receipt.clone();
                    sub(&mut s.unsettled_channel, (r.user, r.modelId), r.fee);
                    sub(&mut s.unsettled_user, r.user, r.fee);
                }
                let uncollected: U256 = settled.skipped.iter().map(|k| k.amount).sum();
                s.uncollected = s.uncollected.saturating_add(uncollected);
            }
            Record::Abandoned { sequence } => {
                if let Some(b) = s.batches.remove(sequence) {
                    for id in b.signed.request_ids {
                        let entry = s.receipts.get_mut(&id).expect("batched receipts exist");
                        entry.batch = None;
                        let order = entry.order;
                        s.queue.insert(order, id);
                    }
                }
            }
        }
        Ok(())
    }

    /// What this node has served or reserved but not seen settled, for the (user, model)
    /// channel and for the user on every model.
    pub fn unsettled(&self, user: Address, model_id: U256) -> Unsettled {
        self.lock().unsettled(user, model_id)
    }

    /// How many settlements have been applied: read it before reading the chain facts a
    /// reservation is checked against, and pass it to [`Ledger::reserve`].
    pub fn settlements(&self) -> u64 {
        self.lock().settlements
    }

    /// Runs `check` on the current unsettled amounts and, if it passes, reserves `amount` for
    /// the (user, model) channel under the same lock, so two concurrent requests cannot both
    /// pass against the same headroom. `Ok(None)` when a settlement was applied since
    /// `settlements` was read: the caller's chain facts may predate it (its `spent` too low
    /// for the unsettled amounts now), so it reads them again and retries.
    pub fn reserve<T, E>(
        &self,
        user: Address,
        model_id: U256,
        amount: U256,
        settlements: u64,
        check: impl FnOnce(&Unsettled) -> std::result::Result<T, E>,
    ) -> std::result::Result<Option<(T, Reservation)>, E> {
        let mut s = self.lock();
        if s.settlements != settlements {
            return Ok(None);
        }
        let value = check(&s.unsettled(user, model_id))?;
        add(&mut s.reserved_channel, (user, model_id), amount);
        add(&mut s.reserved_user, user, amount);
        drop(s);
        Ok(Some((
            value,
            Reservation {
                ledger: self.clone(),
                user,
                model_id,
                amount,
            },
        )))
    }

    /// A receipt by request id.
    pub fn receipt(&self, id: B256) -> Option<Entry> {
        self.lock().receipts.get(&id).cloned()
    }

    /// A batch by sequence number.
    pub fn batch(&self, sequence: u64) -> Option<BatchState> {
        self.lock().batches.get(&sequence).cloned()
    }

    /// The outstanding batch (signed, not settled), if any.
    pub fn outstanding(&self) -> Option<BatchState> {
        self.lock()
            .batches
            .values()
            .find(|b| b.settled.is_none())
            .cloned()
    }

    /// The highest settled sequence number this node has seen.
    pub fn last_settled(&self) -> Option<u64> {
        self.lock()
            .batches
            .values()
            .filter(|b| b.settled.is_some())
            .map(|b| b.signed.sequence)
            .max()
    }

    /// Receipts waiting for a batch: how many and the oldest one's timestamp.
    pub fn queued(&self) -> (usize, Option<u64>) {
        let s = self.lock();
        let oldest = s
            .queue
            .values()
            .next()
            .map(|id| s.receipts[id].served.receipt.timestamp);
        (s.queue.len(), oldest)
    }

    /// Total fees in settled batches that the contract could not collect.
    pub fn uncollected(&self) -> U256 {
        self.lock().uncollected
    }

    /// The billed items of up to `max` queued receipts, in journal order.
    pub fn next_items(&self, max: usize) -> Result<Vec<Billed>> {
        let s = self.lock();
        s.queue
            .values()
            .take(max)
            .map(|id| billed(&s.receipts[id].served))
            .collect()
    }

    /// The plan of a signed batch, rebuilt exactly from the journal.
    pub fn plan(&self, signed: &SignedBatch, operator: Address) -> Result<BatchPlan> {
        let items = {
            let s = self.lock();
            signed
                .request_ids
                .iter()
                .map(|id| {
                    let entry = s.receipts.get(id).ok_or_else(|| {
                        Error::Replay(format!("batch names unknown receipt {id}"))
                    })?;
                    billed(&entry.served)
                })
                .collect::<Result<Vec<_>>>()?
        };
        let [protocol_bps, operator_bps, developer_bps, data_bps] = signed.policy_bps;
        let terms = BatchTerms {
            operator,
            sequence: signed.sequence,
            deadline: signed.deadline,
            policy_epoch: signed.policy_epoch,
            policy: SplitPolicy {
                protocol_bps,
                operator_bps,
                developer_bps,
                data_bps,
            },
        };
        Ok(batch::build(&terms, items)?)
    }

    /// The receipts of batch `sequence`, in tree order.
    pub fn batch_receipts(&self, sequence: u64) -> Option<Vec<Receipt>> {
        let s = self.lock();
        let b = s.batches.get(&sequence)?;
        Some(
            b.signed
                .request_ids
                .iter()
                .map(|id| s.receipts[id].served.receipt.clone())
                .collect(),
        )
    }

    /// Every receipt, in journal order (for audits and tests).
    pub fn all_receipts(&self) -> Vec<Receipt> {
        let s = self.lock();
        let mut v: Vec<&Entry> = s.receipts.values().collect();
        v.sort_by_key(|e| e.order);
        v.into_iter().map(|e| e.served.receipt.clone()).collect()
    }

    /// Amounts reserved by running requests, over all users.
    pub fn reserved(&self) -> U256 {
        self.lock().reserved_user.values().copied().sum()
    }
}

/// A journaled receipt with its decoded voucher.
fn billed(served: &Served) -> Result<Billed> {
    Ok(Billed {
        receipt: served.receipt.clone(),
        voucher: decode_api_key(&served.api_key)?,
    })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Bytes;

    use super::*;
    use crate::journal::{Settled, SignedBatch};

    fn served(id: u8, user: Address, fee: u64) -> Record {
        Record::Served(Box::new(Served {
            receipt: Receipt {
                requestId: B256::repeat_byte(id),
                user,
                operator: Address::repeat_byte(2),
                modelId: U256::from(1),
                modelVersion: 1,
                tokensIn: 1,
                tokensOut: 1,
                fee: U256::from(fee),
                promptHash: B256::ZERO,
                outputHash: B256::ZERO,
                datanetId: U256::from(1),
                attribution: Vec::new(),
                timestamp: 0,
            },
            api_key: String::new(),
            spans: Vec::new(),
        }))
    }

    #[test]
    fn unsettled_follows_receipts_reservations_and_settlements() {
        let user = Address::repeat_byte(1);
        let model = U256::from(1);
        let ledger = Ledger::default();
        ledger.apply(&served(1, user, 10)).unwrap();
        ledger.apply(&served(2, user, 5)).unwrap();
        assert_eq!(ledger.unsettled(user, model).channel, U256::from(15));
        let settlements = ledger.settlements();
        let (_, held) = ledger
            .reserve(user, model, U256::from(100), settlements, |u| {
                Ok::<_, ()>(u.channel)
            })
            .unwrap()
            .unwrap();
        assert_eq!(ledger.unsettled(user, model).user, U256::from(115));
        drop(held);
        assert_eq!(ledger.unsettled(user, model).user, U256::from(15));

        ledger
            .apply(&Record::Signed(SignedBatch {
                sequence: 1,
                deadline: 0,
                policy_epoch: 0,
                policy_bps: [500, 2000, 3000, 4500],
                request_ids: vec![B256::repeat_byte(1)],
                signature: Bytes::new(),
                from_block: 0,
            }))
            .unwrap();
        assert_eq!(ledger.queued().0, 1);
        ledger
            .apply(&Record::Settled(Settled {
                sequence: 1,
                tx: B256::ZERO,
                block: 1,
                collected: U256::from(10),
                debits_collected: 1,
                skipped: Vec::new(),
            }))
            .unwrap();
        // The chain's `spent` has the settled 10 now; only 5 is unsettled.
        assert_eq!(ledger.unsettled(user, model).channel, U256::from(5));
        // Chain facts read before that settlement are stale: the reservation is refused for
        // a retry, not checked against them.
        let stale = ledger
            .reserve(user, model, U256::from(1), settlements, |_| Ok::<_, ()>(()))
            .unwrap();
        assert!(stale.is_none());
        // A receipt journaled twice is a contradiction, not a silent overwrite.
        assert!(ledger.apply(&served(2, user, 5)).is_err());
    }
}
