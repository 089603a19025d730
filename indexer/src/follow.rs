//! Following the chain: backfill in parallel ranges applied in block order, then the head, with
//! reorgs detected by parent hash and rewound to the common ancestor.
//!
//! - Logs of the suite's five contracts are fetched with `eth_getLogs` over block ranges, several
//!   at once; `buffered` yields them in range order, so they are applied in strict block order
//!   (the reorder buffer). The range halves when the node refuses it ("too many results",
//!   "range too large", …) and doubles while ranges come back light.
//! - Blocks within `window` of the head get their header fetched: their (number, hash, parent)
//!   go into the window, their logs must carry the header's hash (else the chain moved under
//!   the fetch and the step is redone) and the first one must extend the checkpoint.
//! - Every step first checks that the checkpoint is still canonical. When it is not, the newest
//!   window block that still is becomes the fork point and [`Store::revert_to`] rewinds to it.
//!   A reorg below the window halts with [`Error::ReorgTooDeep`]: rewinding exactly needs the
//!   undo images of the blocks it removes, and the window is how far they are kept. The
//!   operator re-indexes with `--resync` (or keeps a larger `--reorg-window`).

use std::{collections::BTreeMap, io::IsTerminal, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
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
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied blocks up to this one.
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

/// Follows one deployment into one store.
pub struct Follower {
    provider: DynProvider,
    applier: Applier,
    config: FollowConfig,
    range: u64,
    progress: Option<indicatif::ProgressBar>,
    /// Events applied by this follower, and since when: the progress line's events/s.
    applied: (usize, std::time::Instant),
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

impl Follower {
    /// A follower reading `provider`, applying with `applier`.
    pub fn new(provider: DynProvider, applier: Applier, config: FollowConfig) -> Self {
        let range = config.initial_range.max(1);
        Self {
            provider,
            applier,
            config,
            range,
            progress: None,
            applied: (0, std::time::Instant::now()),
        }
    }

    /// The header of block `number` as a window entry.
    async fn block(&self, number: u64) -> Result<BlockRef> {
        let block = self
            .provider
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

    async fn blocks(&self, numbers: Vec<u64>) -> Result<Vec<BlockRef>> {
        let fetches: Vec<_> = numbers.into_iter().map(|n| self.block(n)).collect();
        stream::iter(fetches)
            .buffered(self.config.concurrency.max(1) * 4)
            .try_collect()
            .await
    }

    /// The logs of `[from, to]`, splitting the range where the node refuses it.
    async fn logs(&self, from: u64, to: u64) -> Result<(Vec<Log>, bool)> {
        let mut pending = vec![(from, to)];
        let mut out = Vec::new();
        let mut shrunk = false;
        while let Some((a, b)) = pending.pop() {
            let filter = Filter::new()
                .address(self.applier.addresses())
                .from_block(a)
                .to_block(b);
            match self.provider.get_logs(&filter).await {
                Ok(logs) => out.extend(logs),
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

    /// One step: check the checkpoint is canonical, then apply what follows it (up to
    /// `blocks_per_commit` blocks) in one commit.
    pub async fn step(&mut self, store: &std::sync::Mutex<Store>) -> Result<Step> {
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
            return Ok(Step::AtHead);
        }
        let end = head.min(next + self.config.blocks_per_commit.max(1) - 1);
        let window_from = head.saturating_sub(self.config.window) + 1;

        // Logs, fetched in parallel ranges and yielded in order.
        let mut ranges = Vec::new();
        let mut a = next;
        while a <= end {
            let b = end.min(a + self.range - 1);
            ranges.push((a, b));
            a = b + 1;
        }
        let fetches: Vec<_> = ranges.iter().map(|&(a, b)| self.logs(a, b)).collect();
        let results: Vec<(Vec<Log>, bool)> = stream::iter(fetches)
            .buffered(self.config.concurrency.max(1))
            .try_collect()
            .await?;
        let shrunk = results.iter().any(|(_, s)| *s);
        let logs: Vec<Log> = results.into_iter().flat_map(|(l, _)| l).collect();
        self.adapt(shrunk, logs.len(), ranges.len());

        // Headers of the window's blocks, and of the blocks whose logs lack a timestamp.
        let mut headers: BTreeMap<u64, BlockRef> = BTreeMap::new();
        let mut wanted: Vec<u64> = (next.max(window_from)..=end).collect();
        wanted.extend(
            logs.iter()
                .filter(|l| l.block_timestamp.is_none())
                .filter_map(|l| l.block_number)
                .filter(|n| *n < window_from),
        );
        wanted.push(end);
        wanted.sort_unstable();
        wanted.dedup();
        for b in self.blocks(wanted).await? {
            headers.insert(b.number, b);
        }
        // The window must extend the checkpoint, and every log of a window block must be of
        // the header we hold.
        if let (Some(cp), Some(first)) = (&checkpoint, headers.get(&next))
            && next >= window_from
            && first.parent_hash != cp.hash
        {
            return self.rewind(store, cp).await;
        }
        for w in headers.values().filter(|b| b.number >= window_from) {
            if let Some(prev) = headers.get(&(w.number.wrapping_sub(1)))
                && prev.number >= window_from
                && prev.hash != w.parent_hash
            {
                return Ok(Step::Retry);
            }
        }
        for log in &logs {
            let n = log.block_number.unwrap_or_default();
            if let Some(h) = headers.get(&n)
                && n >= window_from
                && log.block_hash.map(hex).as_deref() != Some(h.hash.as_str())
            {
                return Ok(Step::Retry);
            }
        }

        // Apply, block by block, and commit with the checkpoint.
        let mut st = lock(store);
        let mut changes = Changes::default();
        let mut current = None;
        for log in &logs {
            let n = log.block_number.unwrap_or_default();
            if current != Some(n) {
                changes.begin_block(n, n >= window_from);
                current = Some(n);
            }
            let ts = log
                .block_timestamp
                .or_else(|| headers.get(&n).map(|h| h.timestamp))
                .unwrap_or_default();
            self.applier.apply(&mut st, &mut changes, log, ts)?;
        }
        for b in headers.values().filter(|b| b.number >= window_from) {
            changes.window_block(b.clone());
        }
        let top = &headers[&end];
        let events = changes.events();
        st.commit(
            changes,
            &Checkpoint {
                number: end,
                hash: top.hash.clone(),
                timestamp: top.timestamp,
            },
        )?;
        drop(st);
        metrics::counter!("openledger_indexer_events_total").increment(events as u64);
        metrics::gauge!("openledger_indexer_head_lag_blocks").set(head.saturating_sub(end) as f64);
        self.show_progress(end, head, events);
        Ok(Step::Advanced { to: end, events })
    }

    fn adapt(&mut self, shrunk: bool, logs: usize, ranges: usize) {
        if shrunk {
            self.range = (self.range / 2).max(1);
        } else if logs < 5_000 * ranges.max(1) {
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
