//! The engine's metrics, recorded through the [`metrics`] facade.
//!
//! The handles are registered when the engine starts ([`crate::Engine::start`]), from the
//! recorder current on that thread: the global one, or one set with
//! [`metrics::with_local_recorder`] (the oracle server starts its engine inside its own
//! recorder, so that each server renders only what it recorded). With no recorder installed
//! recording costs nothing. The names and help texts below are the ones dashboards use;
//! [`HISTOGRAM_BUCKETS`] gives an exporter the histograms' bucket bounds.
//!
//! Two values are also engine state, readable here: the running batch's size and the queue's
//! length ([`EngineStats::active`], [`EngineStats::queued`], for health checks and the
//! [`openledger_inference::Error::Overloaded`] answer).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

/// Histogram: rows (sequences) per forward step.
pub const BATCH_SIZE: &str = "engine_batch_size";
/// Histogram: wall time of one forward step, seconds.
pub const STEP_SECONDS: &str = "engine_step_duration_seconds";
/// Counter: forward steps run.
pub const STEPS: &str = "engine_steps_total";
/// Counter: tokens sampled.
pub const GENERATED_TOKENS: &str = "engine_generated_tokens_total";
/// Counter: prompt tokens prefilled.
pub const PROMPT_TOKENS: &str = "engine_prompt_tokens_total";
/// Counter: sequences dropped because their consumer went away.
pub const CANCELLED: &str = "engine_cancelled_total";
/// Gauge: sequences in the running batch.
pub const ACTIVE: &str = "engine_active_sequences";
/// Gauge: requests waiting to join the batch.
pub const QUEUED: &str = "engine_queued_requests";
/// Counter: adapter requests served from memory.
pub const ADAPTER_HITS: &str = "adapter_cache_hits_total";
/// Counter: adapter loads from disk.
pub const ADAPTER_MISSES: &str = "adapter_cache_misses_total";
/// Counter: adapters evicted from memory.
pub const ADAPTER_EVICTIONS: &str = "adapter_cache_evictions_total";
/// Gauge: adapters in memory.
pub const ADAPTER_RESIDENT: &str = "adapter_cache_resident";

/// Bucket upper bounds of the engine's histograms, by metric name (`+Inf` is implied).
pub const HISTOGRAM_BUCKETS: [(&str, &[f64]); 2] = [
    (BATCH_SIZE, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
    (
        STEP_SECONDS,
        &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
    ),
];

/// The scheduler's metrics, and the batch and queue sizes as readable state.
#[derive(Debug)]
pub struct EngineStats {
    active: AtomicU64,
    queued: AtomicU64,
    batch_size: Histogram,
    step_seconds: Histogram,
    steps: Counter,
    generated_tokens: Counter,
    prompt_tokens: Counter,
    cancelled: Counter,
    active_gauge: Gauge,
    queued_gauge: Gauge,
}

impl EngineStats {
    /// Describes and registers the scheduler's metrics with the current recorder.
    pub fn register() -> Self {
        describe_histogram!(BATCH_SIZE, "Sequences per forward step.");
        describe_histogram!(STEP_SECONDS, "Wall time of one forward step.");
        describe_counter!(STEPS, "Forward steps run.");
        describe_counter!(GENERATED_TOKENS, "Tokens sampled.");
        describe_counter!(PROMPT_TOKENS, "Prompt tokens prefilled.");
        describe_counter!(CANCELLED, "Sequences dropped after their client left.");
        describe_gauge!(ACTIVE, "Sequences in the running batch.");
        describe_gauge!(QUEUED, "Requests waiting to join the batch.");
        Self {
            active: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            batch_size: histogram!(BATCH_SIZE),
            step_seconds: histogram!(STEP_SECONDS),
            steps: counter!(STEPS),
            generated_tokens: counter!(GENERATED_TOKENS),
            prompt_tokens: counter!(PROMPT_TOKENS),
            cancelled: counter!(CANCELLED),
            active_gauge: gauge!(ACTIVE),
            queued_gauge: gauge!(QUEUED),
        }
    }

    /// Sequences in the running batch now.
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Requests waiting to join the batch now.
    pub fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }

    /// Records the running batch's size.
    pub fn set_active(&self, sequences: usize) {
        self.active.store(sequences as u64, Relaxed);
        self.active_gauge.set(sequences as f64);
    }

    /// Records a request joining the queue.
    pub fn enqueued(&self) {
        self.queued.fetch_add(1, Relaxed);
        self.queued_gauge.increment(1.0);
    }

    /// Records a request leaving the queue (admitted, refused or dropped); returns how many
    /// are left.
    pub fn dequeued(&self) -> u64 {
        self.queued_gauge.decrement(1.0);
        self.queued.fetch_sub(1, Relaxed) - 1
    }

    /// Records a sequence dropped because its consumer went away.
    pub fn cancelled(&self) {
        self.cancelled.increment(1);
    }

    /// Records one forward step: its rows, the prompt tokens it fed, and its wall time.
    pub fn step(&self, rows: usize, prompt_tokens: usize, elapsed: Duration) {
        self.steps.increment(1);
        self.batch_size.record(rows as f64);
        self.step_seconds.record(elapsed.as_secs_f64());
        self.prompt_tokens.increment(prompt_tokens as u64);
    }

    /// Records one sampled token.
    pub fn generated(&self) {
        self.generated_tokens.increment(1);
    }
}

/// The adapter cache's metrics.
#[derive(Debug)]
pub(crate) struct AdapterCacheStats {
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    resident: Gauge,
}

impl AdapterCacheStats {
    /// Describes and registers the adapter cache's metrics with the current recorder.
    pub(crate) fn register() -> Self {
        describe_counter!(ADAPTER_HITS, "Adapter requests served from memory.");
        describe_counter!(ADAPTER_MISSES, "Adapter loads from disk.");
        describe_counter!(ADAPTER_EVICTIONS, "Adapters evicted from memory.");
        describe_gauge!(ADAPTER_RESIDENT, "Adapters in memory.");
        Self {
            hits: counter!(ADAPTER_HITS),
            misses: counter!(ADAPTER_MISSES),
            evictions: counter!(ADAPTER_EVICTIONS),
            resident: gauge!(ADAPTER_RESIDENT),
        }
    }

    pub(crate) fn hit(&self) {
        self.hits.increment(1);
    }

    pub(crate) fn miss(&self) {
        self.misses.increment(1);
    }

    pub(crate) fn evict(&self) {
        self.evictions.increment(1);
    }

    pub(crate) fn set_resident(&self, adapters: usize) {
        self.resident.set(adapters as f64);
    }
}
