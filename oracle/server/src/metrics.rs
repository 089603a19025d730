//! The oracle's metrics (the server's and its engine's) in one Prometheus recorder per
//! server.
//!
//! Every component records through the [`metrics`] facade. A server owns a
//! [`PrometheusRecorder`] and starts its engine inside it ([`Metrics::scope`]), so the
//! engine's handles point into this recorder; `GET /metrics` renders it. A recorder per
//! server, not a process-wide one, so that two servers in one process (tests, or a node
//! serving two models) each report only their own counts, with no labels to tell them apart.

use metrics::{Counter, Histogram, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use openledger_engine::metrics::HISTOGRAM_BUCKETS as ENGINE_BUCKETS;

/// Counter: HTTP requests, labelled by `endpoint` and `status`.
pub const REQUESTS: &str = "oracle_requests_total";
/// Counter: prompt tokens of served requests.
pub const PROMPT_TOKENS: &str = "oracle_prompt_tokens_total";
/// Counter: completion tokens of served requests.
pub const COMPLETION_TOKENS: &str = "oracle_completion_tokens_total";
/// Histogram: time from request to last token, seconds.
pub const REQUEST_SECONDS: &str = "oracle_request_duration_seconds";
/// Histogram: time from request to first streamed token, seconds.
pub const FIRST_TOKEN_SECONDS: &str = "oracle_time_to_first_token_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A server's recorder, and handles to the server's own metrics.
#[derive(Debug)]
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    prompt_tokens: Counter,
    completion_tokens: Counter,
    latency: Histogram,
    first_token: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh recorder with the histograms' buckets (the server's and the engine's) and the
    /// server's metrics registered.
    pub fn new() -> Self {
        let histograms = [
            (REQUEST_SECONDS, LATENCY_BUCKETS),
            (FIRST_TOKEN_SECONDS, LATENCY_BUCKETS),
            (
                openledger_payments::metrics::ATTRIBUTION_SECONDS,
                openledger_payments::metrics::ATTRIBUTION_BUCKETS,
            ),
            (
                openledger_payments::metrics::AUTHORIZE_SECONDS,
                openledger_payments::metrics::ATTRIBUTION_BUCKETS,
            ),
            (
                openledger_payments::metrics::RECORD_SECONDS,
                openledger_payments::metrics::ATTRIBUTION_BUCKETS,
            ),
        ];
        let recorder = histograms
            .into_iter()
            .chain(ENGINE_BUCKETS)
            .fold(PrometheusBuilder::new(), |b, (name, buckets)| {
                b.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                    .expect("bucket lists are not empty")
            })
            .build_recorder();
        let handle = recorder.handle();
        let (prompt_tokens, completion_tokens, latency, first_token) =
            metrics::with_local_recorder(&recorder, || {
                describe_counter!(REQUESTS, "HTTP requests by endpoint and status.");
                describe_counter!(PROMPT_TOKENS, "Prompt tokens of served requests.");
                describe_counter!(COMPLETION_TOKENS, "Completion tokens of served requests.");
                describe_histogram!(REQUEST_SECONDS, "Time from request to last token.");
                describe_histogram!(
                    FIRST_TOKEN_SECONDS,
                    "Time from request to first streamed token."
                );
                (
                    counter!(PROMPT_TOKENS),
                    counter!(COMPLETION_TOKENS),
                    histogram!(REQUEST_SECONDS),
                    histogram!(FIRST_TOKEN_SECONDS),
                )
            });
        Self {
            recorder,
            handle,
            prompt_tokens,
            completion_tokens,
            latency,
            first_token,
        }
    }

    /// Runs `f` with this server's recorder as the current one on this thread: metrics
    /// registered inside (by an engine started there) are this server's.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Counts a finished request.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        self.scope(|| {
            counter!(REQUESTS, "endpoint" => endpoint, "status" => status.to_string()).increment(1)
        });
    }

    /// Records a served generation.
    pub fn generation(&self, prompt: usize, completion: usize, seconds: f64) {
        self.prompt_tokens.increment(prompt as u64);
        self.completion_tokens.increment(completion as u64);
        self.latency.record(seconds);
    }

    /// Records the time to the first streamed token.
    pub fn first_token(&self, seconds: f64) {
        self.first_token.record(seconds);
    }

    /// Everything this server recorded, engine included, as Prometheus text.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets (rendering does it too); run
    /// periodically so samples do not pile up between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one server records is rendered with its help texts and cumulative buckets, and a
    /// second server in the same process sees none of it.
    #[test]
    fn each_server_renders_only_its_own_metrics() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.request("/v1/completions", 200);
        one.request("/v1/completions", 200);
        one.request("/v1/models", 200);
        one.generation(5, 3, 0.3);
        one.generation(7, 4, 3.0);
        let engine = one.scope(openledger_engine::metrics::EngineStats::register);
        engine.step(3, 10, std::time::Duration::from_millis(20));
        let text = one.render();
        for line in [
            "# HELP oracle_requests_total HTTP requests by endpoint and status.",
            "# TYPE oracle_requests_total counter",
            "oracle_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2",
            "oracle_requests_total{endpoint=\"/v1/models\",status=\"200\"} 1",
            "oracle_prompt_tokens_total 12",
            "oracle_completion_tokens_total 7",
            "# TYPE oracle_request_duration_seconds histogram",
            "oracle_request_duration_seconds_bucket{le=\"0.25\"} 0",
            "oracle_request_duration_seconds_bucket{le=\"0.5\"} 1",
            "oracle_request_duration_seconds_bucket{le=\"5\"} 2",
            "oracle_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "oracle_request_duration_seconds_sum 3.3",
            "oracle_request_duration_seconds_count 2",
            "# HELP engine_batch_size Sequences per forward step.",
            "engine_batch_size_bucket{le=\"2\"} 0",
            "engine_batch_size_bucket{le=\"4\"} 1",
            "engine_steps_total 1",
            "engine_prompt_tokens_total 10",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let other = other.render();
        assert!(!other.contains("oracle_requests_total{"), "{other}");
        assert!(!other.contains("engine_steps_total"), "{other}");
    }
}
