//! Prometheus text exposition of the server's and the engine's counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use openledger_engine::metrics::Histogram;
use openledger_engine::{Backend, Engine};

const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Server-side metrics.
#[derive(Debug)]
pub struct Metrics {
    /// (endpoint, status) → count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    latency: Histogram,
    first_token: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            latency: Histogram::new(LATENCY_BUCKETS),
            first_token: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((endpoint, status)).or_default() += 1;
        }
    }

    /// Records a served generation.
    pub fn generation(&self, prompt: usize, completion: usize, seconds: f64) {
        self.prompt_tokens.fetch_add(prompt as u64, Relaxed);
        self.completion_tokens.fetch_add(completion as u64, Relaxed);
        self.latency.observe(seconds);
    }

    /// Records the time to the first streamed token.
    pub fn first_token(&self, seconds: f64) {
        self.first_token.observe(seconds);
    }

    /// Renders everything, engine included, as Prometheus text.
    pub fn render(&self, backend: &dyn Backend, engine: Option<&Engine>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP oracle_requests_total HTTP requests by endpoint and status."
        );
        let _ = writeln!(out, "# TYPE oracle_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((ep, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "oracle_requests_total{{endpoint=\"{ep}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut out,
            "oracle_prompt_tokens_total",
            "Prompt tokens of served requests.",
            self.prompt_tokens.load(Relaxed),
        );
        counter(
            &mut out,
            "oracle_completion_tokens_total",
            "Completion tokens of served requests.",
            self.completion_tokens.load(Relaxed),
        );
        self.latency.render(
            "oracle_request_duration_seconds",
            "Time from request to last token.",
            &mut out,
        );
        self.first_token.render(
            "oracle_time_to_first_token_seconds",
            "Time from request to first streamed token.",
            &mut out,
        );
        let load = backend.load();
        gauge(
            &mut out,
            "engine_active_sequences",
            "Sequences in the running batch.",
            load.active,
        );
        gauge(
            &mut out,
            "engine_queued_requests",
            "Requests waiting to join the batch.",
            load.queued,
        );
        // The candle engine's scheduler and adapter cache.
        if let Some(engine) = engine {
            let s = engine.stats();
            s.batch_size
                .render("engine_batch_size", "Sequences per forward step.", &mut out);
            s.step_seconds.render(
                "engine_step_duration_seconds",
                "Wall time of one forward step.",
                &mut out,
            );
            counter(
                &mut out,
                "engine_steps_total",
                "Forward steps run.",
                s.steps.load(Relaxed),
            );
            counter(
                &mut out,
                "engine_generated_tokens_total",
                "Tokens sampled.",
                s.generated_tokens.load(Relaxed),
            );
            counter(
                &mut out,
                "engine_prompt_tokens_total",
                "Prompt tokens prefilled.",
                s.prompt_tokens.load(Relaxed),
            );
            counter(
                &mut out,
                "engine_cancelled_total",
                "Sequences dropped after their client left.",
                s.cancelled.load(Relaxed),
            );
            let a = engine.adapters().stats();
            counter(
                &mut out,
                "adapter_cache_hits_total",
                "Adapter requests served from memory.",
                a.hits(),
            );
            counter(
                &mut out,
                "adapter_cache_misses_total",
                "Adapter loads from disk.",
                a.misses(),
            );
            counter(
                &mut out,
                "adapter_cache_evictions_total",
                "Adapters evicted from memory.",
                a.evictions(),
            );
            gauge(
                &mut out,
                "adapter_cache_resident",
                "Adapters in memory.",
                engine.adapters().resident() as u64,
            );
        }
        out
    }
}
