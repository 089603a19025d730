//! A metrics recorder that keeps what an engine records, for assertions, and wakes waiters on
//! every change (so a test waits for an event with a deadline instead of polling).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// The values recorded under each metric name (labels are not used by the engine).
#[derive(Debug, Default, Clone)]
pub struct Values {
    /// Counter totals.
    pub counters: BTreeMap<String, u64>,
    /// Latest gauge values.
    pub gauges: BTreeMap<String, f64>,
    /// Every histogram sample, in order.
    pub histograms: BTreeMap<String, Vec<f64>>,
}

impl Values {
    /// A counter's total (0 if never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// A histogram's samples (none if never recorded).
    pub fn histogram(&self, name: &str) -> &[f64] {
        self.histograms.get(name).map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Default)]
struct Shared {
    values: Mutex<Values>,
    changed: Condvar,
}

/// Keeps every value recorded through the handles it registered.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    shared: Arc<Shared>,
}

impl Captured {
    /// Runs `f` (e.g. `Engine::start`) with this recorder current, so the handles registered
    /// inside record here.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self, f)
    }

    /// A copy of everything recorded so far.
    pub fn values(&self) -> Values {
        self.shared.values.lock().expect("values lock").clone()
    }

    /// Blocks until `done` holds for the recorded values; panics naming `what` if it does not
    /// within `deadline`.
    pub fn wait_until(&self, what: &str, deadline: Duration, done: impl Fn(&Values) -> bool) {
        let end = Instant::now() + deadline;
        let mut values = self.shared.values.lock().expect("values lock");
        while !done(&values) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {deadline:?} waiting for {what}; recorded: {values:?}"
            );
            values = self
                .shared
                .changed
                .wait_timeout(values, left)
                .expect("values lock")
                .0;
        }
    }

    fn handle(&self, key: &Key) -> Arc<Handle> {
        Arc::new(Handle {
            name: key.name().to_string(),
            shared: self.shared.clone(),
        })
    }
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

/// One registered metric.
struct Handle {
    name: String,
    shared: Arc<Shared>,
}

impl Handle {
    fn update(&self, f: impl FnOnce(&mut Values, &str)) {
        f(
            &mut self.shared.values.lock().expect("values lock"),
            &self.name,
        );
        self.shared.changed.notify_all();
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.update(|v, n| *v.counters.entry(n.to_string()).or_default() += value);
    }

    fn absolute(&self, value: u64) {
        self.update(|v, n| {
            v.counters.insert(n.to_string(), value);
        });
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.update(|v, n| *v.gauges.entry(n.to_string()).or_default() += value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v, n| *v.gauges.entry(n.to_string()).or_default() -= value);
    }

    fn set(&self, value: f64) {
        self.update(|v, n| {
            v.gauges.insert(n.to_string(), value);
        });
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.update(|v, n| v.histograms.entry(n.to_string()).or_default().push(value));
    }
}
