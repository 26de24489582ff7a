//! Certscope's HTTP API: health and readiness today; search, detail, metrics and
//! live events as they arrive. The only crate that knows HTTP and JSON.

mod health;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certscope_indexer::IndexView;
use certscope_indexer::metrics::IndexerMetrics;
use sqlx::PgPool;
use tokio::net::TcpListener;

/// Everything a handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// The live index and its position, published by the indexer.
    pub views: tokio::sync::watch::Receiver<Option<IndexView>>,
    /// Figures of the in-process indexer, when there is one.
    pub indexer: Option<Arc<IndexerMetrics>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "http api listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bound on how long readiness probes wait for the database.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
