//! Certscope's HTTP API: search, suggestions, listings and details, strictly
//! scoped to the caller's organization; health, readiness, metrics and the
//! OpenAPI document. The only crate that knows HTTP and JSON.

pub mod auth;
mod detail;
pub mod error;
pub mod events;
mod health;
mod http;
mod metrics;
mod openapi;
mod reports;
mod routes;
pub mod search;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certscope_indexer::IndexView;
use certscope_indexer::metrics::IndexerMetrics;
use certscope_indexer::schema::Kind;
use certscope_reports::section::Section;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use auth::{Keys, Role, Scope};
pub use http::RouteMetrics;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// HS256 secret tokens are signed with.
    pub jwt_secret: Vec<u8>,
    /// Origins allowed by CORS; empty allows none.
    pub cors_origins: Vec<String>,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_uri_bytes: usize,
    /// Sustained requests per second per token, and the burst above it.
    pub rate_per_token: f64,
    pub burst_per_token: f64,
    pub rate_per_ip: f64,
    pub burst_per_ip: f64,
    /// Longest wait for a `min_position` before 503.
    pub max_position_wait: Duration,
    /// Cached responses kept.
    pub cache_entries: u64,
    /// Live events: queues, limits, retention.
    pub events: events::EventConfig,
}

impl ApiConfig {
    pub fn new(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 << 10,
            max_uri_bytes: 8 << 10,
            rate_per_token: 200.0,
            burst_per_token: 400.0,
            rate_per_ip: 500.0,
            burst_per_ip: 1000.0,
            max_position_wait: Duration::from_secs(5),
            cache_entries: 2_000,
            events: events::EventConfig::default(),
        }
    }
}

/// Long-lived parts of the API shared by all requests.
pub struct Api {
    pub config: ApiConfig,
    pub keys: Keys,
    pub search: search::SearchService,
    pub cache: http::ResponseCache,
    pub limiter: http::RateLimiter,
    pub routes: RouteMetrics,
    /// Facet labels by (organization or 0, facet, value); renames show within a minute.
    pub labels: moka::sync::Cache<(i64, &'static str, String), String>,
    pub(crate) reports: reports::ReportService,
}

impl Api {
    pub fn new(config: ApiConfig) -> Self {
        Self {
            keys: Keys::new(&config.jwt_secret),
            search: search::SearchService::default(),
            cache: http::ResponseCache::new(config.cache_entries),
            limiter: http::RateLimiter::default(),
            routes: RouteMetrics::default(),
            labels: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            reports: reports::ReportService::default(),
            config,
        }
    }
}

/// Everything a handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// The live index and its position, published by the indexer.
    pub views: tokio::sync::watch::Receiver<Option<IndexView>>,
    /// Figures of the in-process indexer, when there is one.
    pub indexer: Option<Arc<IndexerMetrics>>,
    pub api: Arc<Api>,
    /// Live events of this server.
    pub events: Arc<events::EventHub>,
}

impl AppState {
    /// The state of a server: `pool` for reads, the indexer's views and figures.
    pub fn new(
        pool: PgPool,
        views: tokio::sync::watch::Receiver<Option<IndexView>>,
        indexer: Option<Arc<IndexerMetrics>>,
        config: ApiConfig,
    ) -> Self {
        let events = Arc::new(events::EventHub::new(config.events.clone()));
        Self {
            pool,
            views,
            indexer,
            api: Arc::new(Api::new(config)),
            events,
        }
    }

    /// Starts live events: the deriver turning committed changes into events
    /// (on `write_pool`; any number may run, they take turns) and the feed of
    /// this server's hub.
    pub fn start_events(
        &self,
        write_pool: PgPool,
        cancel: tokio_util::sync::CancellationToken,
    ) -> [tokio::task::JoinHandle<()>; 2] {
        let config = &self.events.config;
        let deriver = certscope_indexer::events::DeriverConfig {
            retention: certscope_indexer::events::EventRetention {
                max_age: config.retain_age,
                max_events: config.retain_events as i64,
            },
            ..Default::default()
        };
        [
            certscope_indexer::events::spawn_deriver(write_pool, deriver, cancel.clone()),
            events::spawn_feeder(self.pool.clone(), self.events.clone(), cancel),
        ]
    }
}

/// Every route, for the OpenAPI document and its test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/v1/search"),
    ("get", "/v1/suggest"),
    ("get", "/v1/certifications"),
    ("get", "/v1/requirements"),
    ("get", "/v1/certifications/{id}"),
    ("get", "/v1/requirements/{id}"),
    ("get", "/v1/evidence/{id}"),
    ("get", "/v1/risks/{id}"),
    ("get", "/v1/metrics/posture"),
    ("get", "/v1/metrics/heatmap"),
    ("get", "/v1/metrics/matrix"),
    ("get", "/v1/metrics/trends"),
    ("get", "/v1/metrics/forecast"),
    ("get", "/v1/metrics/overdue"),
    ("get", "/v1/metrics/kpis"),
    ("get", "/v1/reports/board.pdf"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("post", "/v1/events/tickets"),
];

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/search", get(routes::search))
        .route("/v1/suggest", get(routes::suggest))
        .route(
            "/v1/certifications",
            get(|s, c, h, q| routes::listing(Kind::Certification, s, c, h, q)),
        )
        .route(
            "/v1/requirements",
            get(|s, c, h, q| routes::listing(Kind::Requirement, s, c, h, q)),
        )
        .route("/v1/certifications/{id}", get(detail::certification))
        .route("/v1/requirements/{id}", get(detail::requirement))
        .route("/v1/evidence/{id}", get(detail::evidence))
        .route("/v1/risks/{id}", get(detail::risk))
        .route("/v1/reports/board.pdf", get(reports::board))
        .route("/v1/events", get(events::ws_upgrade))
        .route("/v1/events/stream", get(events::sse_stream))
        .route("/v1/events/tickets", axum::routing::post(events::ticket));
    let api = Section::ALL.into_iter().fold(api, |api, section| {
        api.route(
            &format!("/v1/metrics/{}", section.as_str()),
            get(move |s, c, h, q| reports::metrics(section, s, c, h, q)),
        )
    });
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        http::rate_limit,
    ));
    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_page));
    http::layers(api.merge(ops), &state).with_state(state)
}

/// Serves until `shutdown` resolves, then ends live event streams and drains
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = state.events.clone();
    let shutdown = async move {
        shutdown.await;
        hub.shutdown();
    };
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "http api listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Bound on how long readiness probes wait for the database.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
