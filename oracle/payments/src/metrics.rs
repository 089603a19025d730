//! The paid mode's metrics, as handles into the server's recorder.

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

/// Handles to the paid mode's metrics. Register them inside the server's recorder
/// (`Metrics::scope` of the oracle server) so `GET /metrics` reports them.
#[derive(Debug, Clone)]
pub struct PaymentMetrics {
    /// Counter: receipts journaled.
    pub receipts: Counter,
    /// Counter: fees journaled, in gwei (10⁹ wei; rounded down per receipt).
    pub fees_gwei: Counter,
    /// Counter: requests refused before compute (401, 402, 404).
    pub refusals: Counter,
    /// Gauge: wei reserved by running requests, as a float.
    pub reserved_wei: Gauge,
    /// Histogram: attribution time inside the paid path, seconds.
    pub attribution_seconds: Histogram,
    /// Histogram: the paid checks before compute (chain facts, signature, reservation), seconds.
    pub authorize_seconds: Histogram,
    /// Histogram: metering, attribution and the journaled receipt after compute, seconds.
    pub record_seconds: Histogram,
    /// Counter: batches settled on chain.
    pub batches_settled: Counter,
    /// Counter: batch posts that failed (sent and reverted, or not sent); retried.
    pub post_failures: Counter,
    /// Counter: debits the contract skipped as uncollectable.
    pub debits_skipped: Counter,
    /// Counter: contributions refused for content not matching its hash.
    pub contributions_refused: Counter,
}

/// Buckets of the attribution histogram, seconds.
pub const ATTRIBUTION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The attribution histogram's name (for its buckets).
pub const ATTRIBUTION_SECONDS: &str = "openledger_attribution_seconds";
/// The authorisation histogram's name (for its buckets).
pub const AUTHORIZE_SECONDS: &str = "openledger_authorize_seconds";
/// The receipt histogram's name (for its buckets).
pub const RECORD_SECONDS: &str = "openledger_record_seconds";

impl PaymentMetrics {
    /// Registers the metrics in the current recorder.
    pub fn register() -> Self {
        describe_counter!("openledger_receipts_total", "Receipts journaled.");
        describe_counter!("openledger_fees_gwei_total", "Fees journaled, gwei.");
        describe_counter!(
            "openledger_refusals_total",
            "Paid requests refused before compute."
        );
        describe_gauge!(
            "openledger_reserved_wei",
            "Wei reserved by running requests."
        );
        describe_histogram!(
            ATTRIBUTION_SECONDS,
            "Attribution time inside the paid path."
        );
        describe_counter!(
            "openledger_batches_settled_total",
            "Batches settled on chain."
        );
        describe_counter!(
            "openledger_batch_post_failures_total",
            "Failed batch posts (retried)."
        );
        describe_counter!(
            "openledger_debits_skipped_total",
            "Debits the contract skipped."
        );
        describe_counter!(
            "openledger_contributions_refused_total",
            "Contributions refused: content does not match its hash."
        );
        Self {
            receipts: counter!("openledger_receipts_total"),
            fees_gwei: counter!("openledger_fees_gwei_total"),
            refusals: counter!("openledger_refusals_total"),
            reserved_wei: gauge!("openledger_reserved_wei"),
            attribution_seconds: histogram!(ATTRIBUTION_SECONDS),
            authorize_seconds: histogram!(AUTHORIZE_SECONDS),
            record_seconds: histogram!(RECORD_SECONDS),
            batches_settled: counter!("openledger_batches_settled_total"),
            post_failures: counter!("openledger_batch_post_failures_total"),
            debits_skipped: counter!("openledger_debits_skipped_total"),
            contributions_refused: counter!("openledger_contributions_refused_total"),
        }
    }
}
