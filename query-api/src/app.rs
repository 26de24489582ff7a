//! The service assembled in one place: the indexer, the live-event deriver and
//! feed, and the HTTP API on one listener. `certscope serve`, `certscope demo`,
//! the benchmarks and the tests all build it here, so a test exercises exactly
//! what production runs.

use std::net::SocketAddr;
use std::sync::Arc;

use certscope_indexer::{IndexerConfig, IndexerError, IndexerHandle};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{ApiConfig, AppState};

/// The pools the service uses.
#[derive(Clone)]
pub struct Databases {
    /// The primary: the event deriver writes here.
    pub primary: PgPool,
    /// Reads of details and labels (a replica when configured, else the primary).
    pub read: PgPool,
}

impl Databases {
    /// One pool for everything.
    pub fn single(pool: PgPool) -> Self {
        Self {
            read: pool.clone(),
            primary: pool,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("the indexer failed")]
    Indexer(#[source] IndexerError),
}

/// A built, not yet serving, Certscope service.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    indexer: IndexerHandle,
    event_tasks: [JoinHandle<()>; 2],
    stop: CancellationToken,
}

impl Application {
    /// Starts the indexer (on its own thread) and live events, and takes the
    /// listener the API will serve on. Nothing is served until
    /// [`Application::run_until_stopped`].
    pub fn build(
        databases: Databases,
        mut indexer: IndexerConfig,
        api: ApiConfig,
        listener: TcpListener,
    ) -> Self {
        let stop = CancellationToken::new();
        let api = Arc::new(crate::Api::new(api));
        if api.config.warm_searchers {
            // no search pays the first touch of a new segment
            indexer.warmers = api.search.warmers();
        }
        let indexer = certscope_indexer::spawn(indexer, stop.clone());
        let state = AppState::with_api(
            databases.read,
            indexer.views.clone(),
            Some(indexer.metrics.clone()),
            api,
        );
        let event_tasks = state.start_events(databases.primary, stop.clone());
        // identity providers' keys, fetched before the first token needs them
        let providers = state.api.providers.clone();
        if !providers.is_empty() {
            tokio::spawn(async move { providers.warm_up().await });
        }
        Self {
            state,
            listener,
            indexer,
            event_tasks,
            stop,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What handlers reach: the index views, the hub, the API's services.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this stops the service, as a signal would. The indexer
    /// cancels it too when it fails for good.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serves until `shutdown` resolves or the service is stopped, then ends live
    /// event streams, drains requests, and waits for the indexer's last commit.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let stop = self.stop.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {},
                () = stop.cancelled() => tracing::info!("service stopping"),
            }
        };
        let served = crate::serve(self.listener, self.state, shutdown).await;
        self.stop.cancel();
        for task in self.event_tasks {
            let _ = task.await;
        }
        let indexed = self.indexer.finished().await;
        served.map_err(ServiceError::Serve)?;
        indexed.map_err(ServiceError::Indexer)
    }
}
