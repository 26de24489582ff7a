//! Certscope's HTTP API: search, suggestions, listings and details, strictly
//! scoped to the caller's organization; health, readiness, metrics and the
//! OpenAPI document. The only crate that knows HTTP and JSON.

pub mod admission;
pub mod app;
pub mod auth;
mod detail;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzz;
mod health;
mod http;
pub mod memory;
mod metrics_routes;
pub mod openapi;
mod prometheus;
mod routes;
pub mod search;
pub mod sso;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web;
/// A headless Chromium over WebDriver: the web tests and `certscope bench web`.
pub mod webdriver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certscope_indexer::IndexView;
use certscope_indexer::metrics::IndexerMetrics;
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
    /// Bytes of cached responses kept (0: no cache).
    pub cache_bytes: u64,
    /// Live events: queues, limits, retention.
    pub events: events::EventConfig,
    /// When set, `/metrics` requires this bearer token.
    pub metrics_token: Option<String>,
    /// Identity providers whose tokens are trusted (single sign-on).
    pub providers: Vec<sso::ProviderConfig>,
    /// Load shedding: searches running and waiting at once, longest wait.
    pub search_limits: admission::Limits,
    /// Whether new searchers are warmed before the indexer publishes them
    /// (search::warm); off only to measure what warming saves.
    pub warm_searchers: bool,
    /// Reports computed or PDFs rendered at once; more wait their turn.
    pub report_concurrency: usize,
}

impl ApiConfig {
    pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
    /// Sustained requests per second per token; the burst is twice the rate.
    pub const DEFAULT_RATE_PER_TOKEN: f64 = 200.0;
    pub const DEFAULT_RATE_PER_IP: f64 = 500.0;
    pub const DEFAULT_POSITION_WAIT_MS: u64 = 5_000;
    pub const DEFAULT_CACHE_MIB: u64 = 32;

    pub fn new(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_millis(Self::DEFAULT_REQUEST_TIMEOUT_MS),
            max_body_bytes: 64 << 10,
            max_uri_bytes: 8 << 10,
            rate_per_token: Self::DEFAULT_RATE_PER_TOKEN,
            burst_per_token: 2.0 * Self::DEFAULT_RATE_PER_TOKEN,
            rate_per_ip: Self::DEFAULT_RATE_PER_IP,
            burst_per_ip: 2.0 * Self::DEFAULT_RATE_PER_IP,
            max_position_wait: Duration::from_millis(Self::DEFAULT_POSITION_WAIT_MS),
            cache_bytes: Self::DEFAULT_CACHE_MIB << 20,
            events: events::EventConfig::default(),
            metrics_token: None,
            providers: Vec::new(),
            search_limits: admission::Limits::for_this_machine(),
            warm_searchers: true,
            report_concurrency: Self::default_report_concurrency(),
        }
    }

    /// Half the cores this process may use, at least one: a burst of cold
    /// reports (each an aggregation beside PostgreSQL's own work) leaves the
    /// other half to searches. On two cores, beside two report clients, a
    /// search's p99 was 64-81 ms with two reports at once and 52-61 ms with
    /// one (37-46 ms alone; BENCHMARKS.md, "Searches while cold reports
    /// compute").
    pub fn default_report_concurrency() -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores / 2).max(1)
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
    pub(crate) reports: metrics_routes::ReportService,
    /// Which organizations tokens may name.
    pub organizations: auth::Organizations,
    /// Each organization's search vocabulary (the shipped list plus its own
    /// lines), re-read every few seconds so additions apply without a restart.
    pub vocabularies: moka::future::Cache<i64, (Arc<search::Vocabulary>, u64)>,
    /// Identity providers and their keys.
    pub providers: sso::Providers,
    /// The gate uncached searches and suggestions pass (load shedding).
    pub admission: admission::Admission,
}

impl Api {
    pub fn new(config: ApiConfig) -> Self {
        Self {
            keys: Keys::new(&config.jwt_secret),
            search: search::SearchService::default(),
            cache: http::ResponseCache::new(config.cache_bytes),
            limiter: http::RateLimiter::default(),
            routes: RouteMetrics::default(),
            labels: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            reports: metrics_routes::ReportService::new(config.report_concurrency),
            organizations: auth::Organizations::default(),
            vocabularies: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            providers: sso::Providers::new(config.providers.clone()),
            admission: admission::Admission::new(config.search_limits),
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
        Self::with_api(pool, views, indexer, Arc::new(Api::new(config)))
    }

    /// [`AppState::new`] with the API's services built already (their search
    /// warmer must be handed to the indexer before it starts).
    pub fn with_api(
        pool: PgPool,
        views: tokio::sync::watch::Receiver<Option<IndexView>>,
        indexer: Option<Arc<IndexerMetrics>>,
        api: Arc<Api>,
    ) -> Self {
        let events = Arc::new(events::EventHub::new(api.config.events.clone()));
        Self {
            pool,
            views,
            indexer,
            api,
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

/// The paths the API serves, named once for the router, the OpenAPI document
/// and typed clients.
pub mod paths {
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const PROMETHEUS: &str = "/metrics";
    pub const OPENAPI: &str = "/openapi.json";
    pub const DOCS: &str = "/docs";
    pub const DOCS_ASSET: &str = "/docs/{file}";
    pub const ASYNCAPI: &str = "/asyncapi.json";
    pub const SEARCH: &str = "/v1/search";
    pub const SUGGEST: &str = "/v1/suggest";
    pub const CERTIFICATIONS: &str = "/v1/certifications";
    pub const REQUIREMENTS: &str = "/v1/requirements";
    pub const CERTIFICATION: &str = "/v1/certifications/{id}";
    pub const REQUIREMENT: &str = "/v1/requirements/{id}";
    pub const EVIDENCE: &str = "/v1/evidence/{id}";
    pub const RISK: &str = "/v1/risks/{id}";
    pub const BOARD_PDF: &str = "/v1/reports/board.pdf";
    pub const EVENTS_WS: &str = "/v1/events";
    pub const EVENTS_SSE: &str = "/v1/events/stream";
    pub const EVENT_TICKETS: &str = "/v1/events/tickets";

    /// The path of a metrics section.
    pub fn metric(section: certscope_reports::section::Section) -> String {
        format!("/v1/metrics/{}", section.as_str())
    }
}

/// The route registry: each route adds its handler to the router and its
/// operation (`#[utoipa::path]`) to the document in one call, so the router
/// and `/openapi.json` cannot differ.
pub(crate) struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, String)>,
    pub(crate) paths: utoipa::openapi::Paths,
    pub(crate) schemas: Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
    /// Routes behind a token: their operations list the error answers;
    /// the others need no credentials.
    authenticated: bool,
}

impl Routes {
    fn new(authenticated: bool) -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            paths: utoipa::openapi::Paths::new(),
            schemas: Vec::new(),
            authenticated,
        }
    }

    /// Serves `handler` at the path and methods of the operation `P`.
    fn route<P>(mut self, handler: axum::routing::MethodRouter<AppState>) -> Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
    {
        use utoipa::openapi::path::HttpMethod;
        let path = P::path();
        let methods = P::methods();
        let mut op = P::operation();
        // the `tag = ...` of the annotation (the OpenApi derive would add it)
        op.tags = Some(P::tags().into_iter().map(str::to_owned).collect());
        if self.authenticated {
            openapi::add_error_responses(&mut op);
        } else {
            op.security = Some(vec![
                utoipa::openapi::security::SecurityRequirement::default(),
            ]);
        }
        for m in &methods {
            let name = match m {
                HttpMethod::Get => "get",
                HttpMethod::Post => "post",
                HttpMethod::Put => "put",
                HttpMethod::Delete => "delete",
                HttpMethod::Patch => "patch",
                HttpMethod::Head => "head",
                HttpMethod::Options => "options",
                HttpMethod::Trace => "trace",
            };
            self.table.push((name, path.clone()));
        }
        self.paths.add_path_operation(&path, methods, op);
        P::schemas(&mut self.schemas);
        self.router = self.router.route(&path, handler);
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.table.extend(other.table);
        self.paths.paths.extend(other.paths.paths);
        self.schemas.extend(other.schemas);
        self.router = self.router.merge(other.router);
        self
    }
}

/// The `/v1` routes, behind authentication and rate limits.
fn api_routes() -> Routes {
    use axum::routing::post;
    Routes::new(true)
        .route::<routes::__path_search>(get(routes::search))
        .route::<routes::__path_suggest>(get(routes::suggest))
        .route::<routes::__path_certifications>(get(routes::certifications))
        .route::<routes::__path_requirements>(get(routes::requirements))
        .route::<detail::__path_certification>(get(detail::certification))
        .route::<detail::__path_requirement>(get(detail::requirement))
        .route::<detail::__path_evidence>(get(detail::evidence))
        .route::<detail::__path_risk>(get(detail::risk))
        .route::<metrics_routes::__path_summary>(get(metrics_routes::summary))
        .route::<metrics_routes::__path_posture>(get(metrics_routes::posture))
        .route::<metrics_routes::__path_heatmap>(get(metrics_routes::heatmap))
        .route::<metrics_routes::__path_matrix>(get(metrics_routes::matrix))
        .route::<metrics_routes::__path_trends>(get(metrics_routes::trends))
        .route::<metrics_routes::__path_forecast>(get(metrics_routes::forecast))
        .route::<metrics_routes::__path_overdue>(get(metrics_routes::overdue))
        .route::<metrics_routes::__path_kpis>(get(metrics_routes::kpis))
        .route::<metrics_routes::__path_board>(get(metrics_routes::board))
        .route::<events::ws::__path_upgrade>(get(events::ws_upgrade))
        .route::<events::sse::__path_stream>(get(events::sse_stream))
        .route::<events::__path_ticket>(post(events::ticket))
}

/// Health, readiness, Prometheus and the API's own description.
fn operations_routes() -> Routes {
    Routes::new(false)
        .route::<health::__path_healthz>(get(health::healthz))
        .route::<health::__path_readyz>(get(health::readyz))
        .route::<prometheus::__path_metrics>(get(prometheus::metrics))
        .route::<openapi::__path_document>(get(openapi::document))
        .route::<openapi::__path_asyncapi_document>(get(openapi::asyncapi_document))
        .route::<openapi::__path_docs_page>(get(openapi::docs_page))
        .route::<openapi::__path_docs_asset>(get(openapi::docs_asset))
}

/// Every route, with its operation and schemas.
pub(crate) fn registry() -> Routes {
    api_routes().merge(operations_routes())
}

/// Every (method, path) the router serves, taken from the router's own
/// construction.
pub fn route_table() -> Vec<(&'static str, String)> {
    registry().table
}

/// The OpenAPI document (as served at `/openapi.json`).
pub fn openapi_document() -> &'static serde_json::Value {
    openapi::spec()
}

/// The AsyncAPI document of the live events (as served at `/asyncapi.json`).
pub fn asyncapi_document() -> &'static serde_json::Value {
    openapi::asyncapi::spec()
}

pub fn router(state: AppState) -> Router {
    let api = api_routes()
        .router
        // socket.io serves its own protocol on one path, not an API route
        // (kept out of the route table and the OpenAPI document)
        .merge(events::socketio_routes(&state))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::rate_limit,
        ));
    // the web interface: its pages and scripts' calls are limited per address
    // like any request without a token
    let web = web::routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        http::rate_limit,
    ));
    http::layers(api.merge(operations_routes().router).merge(web), &state).with_state(state)
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
