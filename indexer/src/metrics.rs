//! The indexer's Prometheus metrics, served at `GET /metrics` by `openledger indexer`.
//!
//! - `openledger_indexer_head_lag_blocks` (gauge): blocks between the chain's head and the
//!   checkpoint.
//! - `openledger_indexer_events_total` (counter): events applied (its rate is events/s).
//! - `openledger_indexer_reorgs_total` (counter): reorgs rewound.
//! - `openledger_indexer_flagged_batches_total` (counter): batches whose receipts failed a
//!   check.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Installs the process's Prometheus recorder and serves it on `listen` until the process
/// ends; returns the bound address.
pub async fn serve(listen: SocketAddr) -> std::io::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    metrics::describe_gauge!(
        "openledger_indexer_head_lag_blocks",
        "Blocks between the chain's head and the index's checkpoint."
    );
    metrics::describe_counter!("openledger_indexer_events_total", "Events applied.");
    metrics::describe_counter!("openledger_indexer_reorgs_total", "Reorgs rewound.");
    metrics::describe_counter!(
        "openledger_indexer_flagged_batches_total",
        "Batches whose receipts failed the root or credit-rule check."
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
