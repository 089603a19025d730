//! Following the chain: backfill in parallel ranges applied in block order, then the head, with
//! reorgs detected by parent hash and rewound to the common ancestor.
//!
//! - Logs of the suite's five contracts are fetched with `eth_getLogs` over block ranges, several
//!   at once, by tasks running ahead of the applier: while one commit is written, the next
//!   ranges are already being fetched and decoded. Ranges are applied in strict block order
//!   (the queue is the reorder buffer). A range halves when the node refuses it ("too many
//!   results", "range too large", …) and adapts towards [`LOGS_PER_RANGE`] logs.
//! - Blocks within `window` of the head get their header fetched: their (number, hash, parent)
//!   go into the window, their logs must carry the header's hash (else the chain moved under
//!   the fetch and the step is redone) and the first one must extend the checkpoint.
//! - Every step first checks that the checkpoint is still canonical. When it is not, the newest
//!   window block that still is becomes the fork point and [`Store::revert_to`] rewinds to it.
//!   A reorg below the window halts with [`Error::ReorgTooDeep`]: rewinding exactly needs the
//!   undo images of the blocks it removes, and the window is how far they are kept. The
//!   operator re-indexes with `--resync` (or keeps a larger `--reorg-window`).

use std::{
    collections::{BTreeMap, VecDeque},
    io::IsTerminal,
    time::Duration,
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, LogData, U64},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use futures_util::{StreamExt, TryStreamExt, stream};
use tracing::{info, warn};

use crate::{
    apply::Applier,
    error::{Error, Result},
    store::{BlockRef, Changes, Checkpoint, Store},
};

/// How the follower paces itself.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// The first block to index (the deployment block).
    pub from_block: u64,
    /// Blocks kept for reorgs (and the depth below the head where blocks count as final).
    pub window: u64,
    /// How long to wait at the head before polling again.
    pub poll: Duration,
    /// `eth_getLogs` requests in flight at once.
    pub concurrency: usize,
    /// The first range size, in blocks (it adapts).
    pub initial_range: u64,
    /// The largest range.
    pub max_range: u64,
    /// Blocks applied per commit during backfill.
    pub blocks_per_commit: u64,
    /// Events after which a commit is written (at the end of the range that reaches them).
    pub events_per_commit: usize,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            from_block: 0,
            window: 128,
            poll: Duration::from_millis(500),
            concurrency: 4,
            initial_range: 2_000,
            max_range: 50_000,
            blocks_per_commit: 20_000,
            events_per_commit: 20_000,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied blocks up to this one (being written: every other use of the store waits for
    /// it, and [`Step::AtHead`] means all of it is written).
    Advanced {
        /// The new checkpoint.
        to: u64,
        /// Events applied.
        events: usize,
    },
    /// Rewound a reorg to this ancestor.
    Reverted {
        /// The fork point.
        to: u64,
        /// Blocks removed.
        depth: u64,
    },
    /// Nothing new: the index is at the head.
    AtHead,
    /// The chain changed during the step; nothing was written.
    Retry,
}

/// The logs a range is aimed at (it grows and shrinks towards this).
pub const LOGS_PER_RANGE: usize = 5_000;

/// Follows one deployment into one store.
pub struct Follower {
    provider: DynProvider,
    applier: Applier,
    config: FollowConfig,
    range: u64,
    /// Ranges being fetched ahead of the applier, consecutive, oldest first.
    ahead: VecDeque<Ahead>,
    progress: Option<indicatif::ProgressBar>,
    /// Events applied by this follower, and since when: the progress line's events/s.
    applied: (usize, std::time::Instant),
}

/// A range being fetched by its own task.
struct Ahead {
    from: u64,
    to: u64,
    task: tokio::task::JoinHandle<Result<Fetched>>,
}

/// The logs of blocks `from..=to` and the headers the applier needs: every block at or above
/// the window's start when it was fetched, blocks whose logs lack a timestamp, and `to`.
struct Fetched {
    from: u64,
    to: u64,
    logs: Vec<Log>,
    headers: BTreeMap<u64, BlockRef>,
    /// Whether the node refused the range whole (it was split).
    shrunk: bool,
}

/// A log as `eth_getLogs` returns it. Read with this flat struct rather than alloy's `Log`,
/// whose two flattened layers buffer every field through serde's `Content`: that was a fifth
/// of a backfill's time.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLog {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
    block_hash: Option<B256>,
    block_number: Option<U64>,
    #[serde(default)]
    block_timestamp: Option<U64>,
    transaction_hash: Option<B256>,
    transaction_index: Option<U64>,
    log_index: Option<U64>,
    #[serde(default)]
    removed: bool,
}

impl From<WireLog> for Log {
    fn from(w: WireLog) -> Self {
        let n = |v: Option<U64>| v.map(|v| v.to::<u64>());
        Log {
            inner: alloy::primitives::Log {
                address: w.address,
                data: LogData::new_unchecked(w.topics, w.data),
            },
            block_hash: w.block_hash,
            block_number: n(w.block_number),
            block_timestamp: n(w.block_timestamp),
            transaction_hash: w.transaction_hash,
            transaction_index: n(w.transaction_index),
            log_index: n(w.log_index),
            removed: w.removed,
        }
    }
}

fn rpc(what: impl Into<String>) -> impl FnOnce(alloy::transports::TransportError) -> Error {
    let what = what.into();
    move |e| Error::Rpc {
        what,
        message: e.to_string(),
    }
}

/// Whether a node's error says the range asked too much of it.
fn range_refused(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "too many",
        "range",
        "limit",
        "exceed",
        "too large",
        "timeout",
        "response size",
    ]
    .iter()
    .any(|s| m.contains(s))
}

fn hex(b: alloy::primitives::B256) -> String {
    format!("{b:#x}")
}

/// The header of block `number` as a window entry.
async fn header(provider: &DynProvider, number: u64) -> Result<BlockRef> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Number(number))
        .await
        .map_err(rpc(format!("eth_getBlockByNumber({number})")))?
        .ok_or_else(|| Error::Rpc {
            what: format!("eth_getBlockByNumber({number})"),
            message: "no such block (the chain is shorter: a reorg)".into(),
        })?;
    Ok(BlockRef {
        number,
        hash: hex(block.header.hash),
        parent_hash: hex(block.header.parent_hash),
        timestamp: block.header.timestamp,
    })
}

/// The logs of `addresses` in `[from, to]`, splitting the range where the node refuses it;
/// with whether it had to.
async fn logs(
    provider: &DynProvider,
    addresses: &[Address],
    from: u64,
    to: u64,
) -> Result<(Vec<Log>, bool)> {
    let mut pending = vec![(from, to)];
    let mut out = Vec::new();
    let mut shrunk = false;
    while let Some((a, b)) = pending.pop() {
        let filter = Filter::new()
            .address(addresses.to_vec())
            .from_block(a)
            .to_block(b);
        match provider
            .raw_request::<_, Vec<WireLog>>("eth_getLogs".into(), (filter,))
            .await
        {
            Ok(logs) => out.extend(logs.into_iter().map(Log::from)),
            Err(e) if a < b && range_refused(&e.to_string()) => {
                let mid = a + (b - a) / 2;
                // Pushed in reverse: the lower half is fetched (and appended) first.
                pending.push((mid + 1, b));
                pending.push((a, mid));
                shrunk = true;
            }
            Err(e) => return Err(rpc(format!("eth_getLogs({a}..={b})"))(e)),
        }
    }
    Ok((out, shrunk))
}

/// Fetches `[from, to]`: its logs and the headers [`Fetched`] holds.
async fn fetch(
    provider: DynProvider,
    addresses: Vec<Address>,
    (from, to): (u64, u64),
    window_from: u64,
    concurrency: usize,
) -> Result<Fetched> {
    let (logs, shrunk) = logs(&provider, &addresses, from, to).await?;
    let mut wanted: Vec<u64> = (from.max(window_from)..=to).collect();
    wanted.extend(
        logs.iter()
            .filter(|l| l.block_timestamp.is_none())
            .filter_map(|l| l.block_number),
    );
    wanted.push(to);
    wanted.sort_unstable();
    wanted.dedup();
    let headers: Vec<BlockRef> = stream::iter(wanted.into_iter().map(|n| header(&provider, n)))
        .buffered(concurrency.max(1) * 4)
        .try_collect()
        .await?;
    Ok(Fetched {
        from,
        to,
        logs,
        headers: headers.into_iter().map(|b| (b.number, b)).collect(),
        shrunk,
    })
}

/// Why a fetched range cannot be applied.
enum Mismatch {
    /// Its first block does not extend the checkpoint: a reorg below it.
    Checkpoint,
    /// The chain moved while it was fetched.
    Moved,
}

impl Follower {
    /// A follower reading `provider`, applying with `applier`.
    pub fn new(provider: DynProvider, applier: Applier, config: FollowConfig) -> Self {
        let range = config.initial_range.max(1);
        Self {
            provider,
            applier,
            config,
            range,
            ahead: VecDeque::new(),
            progress: None,
            applied: (0, std::time::Instant::now()),
        }
    }

    /// The header of block `number` as a window entry.
    async fn block(&self, number: u64) -> Result<BlockRef> {
        header(&self.provider, number).await
    }

    /// Stops the fetches running ahead (after a reorg, a retry or an error).
    fn drop_ahead(&mut self) {
        for a in self.ahead.drain(..) {
            a.task.abort();
        }
    }

    /// Keeps `concurrency` ranges in flight from `next` up to `head`: drops the queue if it
    /// does not start at `next`, then starts ranges after its last.
    fn fetch_ahead(&mut self, next: u64, head: u64, window_from: u64) {
        if self.ahead.front().is_some_and(|a| a.from != next) {
            self.drop_ahead();
        }
        let concurrency = self.config.concurrency.max(1);
        while self.ahead.len() < concurrency {
            let from = self.ahead.back().map_or(next, |a| a.to + 1);
            if from > head {
                break;
            }
            // A range never takes more than a quarter of its share of what is left, so that
            // a short history still comes in ranges that run side by side and a dense stretch
            // of it is met by small ones, and never crosses a commit boundary (every
            // `blocks_per_commit` blocks from the first).
            let share = (head - from + 1).div_ceil(4 * concurrency as u64);
            let to = head
                .min(from + self.range.min(share).max(1) - 1)
                .min(self.next_boundary(from) - 1);
            let task = tokio::spawn(fetch(
                self.provider.clone(),
                self.applier.addresses(),
                (from, to),
                window_from,
                concurrency,
            ));
            self.ahead.push_back(Ahead { from, to, task });
        }
    }

    /// One step: check the checkpoint is canonical, then apply the ranges that follow it, as
    /// they arrive, until `events_per_commit` events or `blocks_per_commit` blocks (or the
    /// head), and commit them in one transaction.
    pub async fn step(&mut self, store: &std::sync::Mutex<Store>) -> Result<Step> {
        let result = self.try_step(store).await;
        if !matches!(result, Ok(Step::Advanced { .. } | Step::AtHead)) {
            self.drop_ahead();
        }
        result
    }

    async fn try_step(&mut self, store: &std::sync::Mutex<Store>) -> Result<Step> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(rpc("eth_blockNumber"))?;
        let checkpoint = lock(store).checkpoint()?;
        if let Some(cp) = &checkpoint {
            let canonical = if cp.number > head {
                false
            } else {
                self.block(cp.number).await?.hash == cp.hash
            };
            if !canonical {
                return self.rewind(store, cp).await;
            }
        }
        let next = checkpoint
            .as_ref()
            .map_or(self.config.from_block, |c| c.number + 1);
        metrics::gauge!("openledger_indexer_head_lag_blocks")
            .set(head.saturating_sub(next.saturating_sub(1)) as f64);
        if next > head {
            // Caught up: what was applied is written before the follower waits.
            lock(store).flush()?;
            return Ok(Step::AtHead);
        }
        let window_from = head.saturating_sub(self.config.window) + 1;

        let mut changes = Changes::default();
        let mut last: Option<BlockRef> = None;
        loop {
            self.fetch_ahead(
                last.as_ref().map_or(next, |b| b.number + 1),
                head,
                window_from,
            );
            let Some(ahead) = self.ahead.pop_front() else {
                break;
            };
            let fetched = ahead.task.await.map_err(|e| Error::Rpc {
                what: format!("eth_getLogs({}..={})", ahead.from, ahead.to),
                message: e.to_string(),
            })??;
            self.adapt(&fetched);
            let extends = last
                .as_ref()
                .map(|b| b.hash.as_str())
                .or(checkpoint.as_ref().map(|c| c.hash.as_str()));
            match check(&fetched, extends, window_from) {
                Ok(()) => {}
                Err(Mismatch::Checkpoint) if last.is_none() => {
                    let cp = checkpoint
                        .as_ref()
                        .expect("a mismatch is with the checkpoint");
                    return self.rewind(store, cp).await;
                }
                Err(_) => return Ok(Step::Retry),
            }
            let mut st = lock(store);
            let mut current = None;
            for log in &fetched.logs {
                let n = log.block_number.unwrap_or_default();
                if current != Some(n) {
                    changes.begin_block(n, n >= window_from);
                    current = Some(n);
                }
                let ts = log
                    .block_timestamp
                    .or_else(|| fetched.headers.get(&n).map(|h| h.timestamp))
                    .unwrap_or_default();
                self.applier.apply(&mut st, &mut changes, log, ts)?;
            }
            drop(st);
            for b in fetched.headers.values().filter(|b| b.number >= window_from) {
                changes.window_block(b.clone());
            }
            let to = fetched.headers[&fetched.to].clone();
            let done = to.number >= head
                || changes.events() >= self.config.events_per_commit
                || to.number + 1 == self.next_boundary(to.number);
            last = Some(to);
            if done {
                break;
            }
        }
        let Some(top) = last else {
            lock(store).flush()?;
            return Ok(Step::AtHead);
        };
        let events = changes.events();
        lock(store).commit(
            changes,
            &Checkpoint {
                number: top.number,
                hash: top.hash.clone(),
                timestamp: top.timestamp,
            },
        )?;
        metrics::counter!("openledger_indexer_events_total").increment(events as u64);
        metrics::gauge!("openledger_indexer_head_lag_blocks")
            .set(head.saturating_sub(top.number) as f64);
        self.show_progress(top.number, head, events);
        Ok(Step::Advanced {
            to: top.number,
            events,
        })
    }

    /// The first block of the commit after the one holding `block`: a commit holds at most
    /// `blocks_per_commit` blocks, counted from the first block indexed.
    fn next_boundary(&self, block: u64) -> u64 {
        let per = self.config.blocks_per_commit.max(1);
        let from = self.config.from_block.min(block);
        from + ((block - from) / per + 1) * per
    }

    /// Aims the next ranges at [`LOGS_PER_RANGE`] logs: halves after a refusal or a heavy
    /// range, doubles after a light one.
    fn adapt(&mut self, fetched: &Fetched) {
        let logs = fetched.logs.len();
        if fetched.shrunk || logs > LOGS_PER_RANGE * 2 {
            self.range = (self.range / 2).max(1);
        } else if logs < LOGS_PER_RANGE / 2 && fetched.to + 1 - fetched.from >= self.range {
            self.range = (self.range * 2).min(self.config.max_range.max(1));
        }
    }

    /// Finds the newest window block still canonical and rewinds to it.
    async fn rewind(&mut self, store: &std::sync::Mutex<Store>, cp: &Checkpoint) -> Result<Step> {
        let window = lock(store).window_blocks()?;
        for b in window.iter().rev() {
            let canonical = match self.block(b.number).await {
                Ok(c) => c.hash == b.hash,
                Err(_) => false,
            };
            if canonical {
                let depth = cp.number - b.number;
                lock(store).revert_to(b)?;
                metrics::counter!("openledger_indexer_reorgs_total").increment(1);
                info!(target: "indexer::reorg", fork_point = b.number, depth, "rolled back");
                return Ok(Step::Reverted {
                    to: b.number,
                    depth,
                });
            }
        }
        let oldest = window.first().map_or(cp.number, |b| b.number);
        warn!(target: "indexer::reorg", oldest, checkpoint = cp.number, "reorg deeper than the window");
        Err(Error::ReorgTooDeep {
            number: oldest,
            window: self.config.window,
            oldest,
        })
    }

    fn show_progress(&mut self, at: u64, head: u64, events: usize) {
        let from = self.config.from_block;
        self.applied.0 += events;
        let per_second = self.applied.0 as f64 / self.applied.1.elapsed().as_secs_f64().max(1e-3);
        if std::io::stderr().is_terminal() {
            let bar = self.progress.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(head.saturating_sub(from));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} indexing [{bar:40}] block {msg} ETA {eta}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar
            });
            bar.set_length(head.saturating_sub(from));
            bar.set_position(at.saturating_sub(from));
            bar.set_message(format!("{at}/{head}, {per_second:.0} events/s"));
            if at >= head {
                bar.finish_and_clear();
                self.progress = None;
            }
        } else {
            info!(target: "indexer::progress", block = at, head, events, events_per_second = per_second as u64, "applied");
        }
    }

    /// Follows until `stop` resolves: steps while behind, polls at the head; node errors are
    /// logged and retried with backoff, a reorg below the window ends it.
    pub async fn run(
        mut self,
        store: &std::sync::Mutex<Store>,
        committed: impl Fn(u64),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(250);
        loop {
            let pause = match self.step(store).await {
                Ok(Step::Advanced { to, .. }) | Ok(Step::Reverted { to, .. }) => {
                    backoff = Duration::from_millis(250);
                    committed(to);
                    Duration::ZERO
                }
                Ok(Step::Retry) => Duration::from_millis(50),
                Ok(Step::AtHead) => self.config.poll,
                Err(
                    e @ (Error::ReorgTooDeep { .. }
                    | Error::Decode { .. }
                    | Error::OtherDeployment { .. }
                    | Error::Overflow { .. }),
                ) => {
                    return Err(e);
                }
                Err(e) => {
                    warn!(target: "indexer::follow", error = %e, retry_in_ms = backoff.as_millis() as u64, "step failed");
                    let b = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    b
                }
            };
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Locks the store (a panic while holding it poisons nothing that matters: every write is one
/// transaction).
pub fn lock(store: &std::sync::Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks a fetched range against the chain it must extend (`extends`: the hash of the block
/// before it, when known) for its blocks inside the window: consecutive headers link, every
/// log of a window block carries its header's hash, and every window block has a header.
fn check(
    f: &Fetched,
    extends: Option<&str>,
    window_from: u64,
) -> std::result::Result<(), Mismatch> {
    if let (Some(hash), Some(first)) = (extends, f.headers.get(&f.from))
        && f.from >= window_from
        && first.parent_hash != hash
    {
        return Err(Mismatch::Checkpoint);
    }
    for n in f.from.max(window_from)..=f.to {
        let Some(w) = f.headers.get(&n) else {
            return Err(Mismatch::Moved);
        };
        if n > f.from.max(window_from)
            && let Some(prev) = f.headers.get(&(n - 1))
            && prev.hash != w.parent_hash
        {
            return Err(Mismatch::Moved);
        }
    }
    for log in &f.logs {
        let n = log.block_number.unwrap_or_default();
        if n >= window_from
            && let Some(h) = f.headers.get(&n)
            && log.block_hash.map(hex).as_deref() != Some(h.hash.as_str())
        {
            return Err(Mismatch::Moved);
        }
    }
    Ok(())
}
