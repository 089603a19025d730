//! Deterministic crash points for the crash-safety tests.
//!
//! `OPENLEDGER_CRASH_AT=<point>` (or `<point>:<n>`, the n-th time, 1-based) makes the node
//! abort the process, with no cleanup, when it reaches that point: what a `SIGKILL` or a power
//! cut there would leave. Unset, [`point`] costs one relaxed atomic load. The points, in the
//! order a paid request and its batch pass them, are [`POINTS`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every crash point, in the order the money passes them.
pub const POINTS: &[&str] = &[
    // a request was served, its receipt not yet journaled
    "before_journal",
    // the receipt is journaled, the response not yet sent
    "after_journal",
    // a batch is being built: receipts chosen, nothing journaled
    "while_building",
    // the batch is signed and journaled, not yet sent
    "after_signing",
    // the settling transaction was sent, its hash not journaled
    "after_send",
    // the hash is journaled, the transaction's receipt not yet seen
    "before_receipt",
];

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("OPENLEDGER_CRASH_AT").ok()?;
        let (name, n) = match v.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (v, 1),
        };
        Some((name, n.max(1)))
    })
}

/// Aborts the process if the configured crash point is `name` and this is its n-th hit.
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unknown crash point {name}");
    if let Some((target, n)) = target()
        && target == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("OPENLEDGER_CRASH_AT={name}:{n}: aborting the process here");
        std::process::abort();
    }
}
