//! Lock-free counters and histograms the engine updates and the server exports.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A Prometheus-style histogram with fixed upper bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    /// Sum in micro-units, to keep it atomic.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these (ascending) bucket upper bounds; `+Inf` is implied.
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Relaxed);
            }
        }
        self.sum_micro.fetch_add((v.max(0.0) * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Appends the Prometheus text lines (`_bucket`, `_sum`, `_count`) for `name`.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", c.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micro.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// Adapter cache counters.
#[derive(Debug, Default)]
pub struct AdapterCacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl AdapterCacheStats {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn evict(&self) {
        self.evictions.fetch_add(1, Relaxed);
    }
    /// Requests served from memory.
    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }
    /// Requests that loaded the adapter from disk.
    pub fn misses(&self) -> u64 {
        self.misses.load(Relaxed)
    }
    /// Adapters dropped from memory to stay within capacity.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }
}

/// Scheduler statistics.
#[derive(Debug)]
pub struct EngineStats {
    /// Sequences per forward step.
    pub batch_size: Histogram,
    /// Wall time of one forward step, seconds.
    pub step_seconds: Histogram,
    /// Prompt tokens processed.
    pub prompt_tokens: AtomicU64,
    /// Tokens generated.
    pub generated_tokens: AtomicU64,
    /// Forward steps run.
    pub steps: AtomicU64,
    /// Sequences in the running batch now.
    pub active: AtomicU64,
    /// Requests waiting to join.
    pub queued: AtomicU64,
    /// Sequences dropped because their consumer went away.
    pub cancelled: AtomicU64,
}

impl Default for EngineStats {
    fn default() -> Self {
        Self {
            batch_size: Histogram::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            step_seconds: Histogram::new(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            active: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(3.0);
        let mut s = String::new();
        h.render("x", "test", &mut s);
        assert!(s.contains("x_bucket{le=\"1\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"2\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_sum 5\n"), "{s}");
    }
}
