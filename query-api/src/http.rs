//! HTTP as users expect it: compression, CORS, security headers, size and time
//! limits, rate limits, per-route latency figures, and a response cache that
//! computes identical concurrent requests once.

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use certscope_indexer::metrics::Histogram;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::AppState;
use crate::error::{ApiError, InternalCause};

pub const POSITION_HEADER: &str = "x-certscope-position";
pub const MIN_POSITION_HEADER: &str = "x-certscope-min-position";

const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Latency histogram and status counts per matched route.
#[derive(Default)]
pub struct RouteMetrics {
    routes: RwLock<HashMap<String, Arc<RouteFigures>>>,
}

pub struct RouteFigures {
    pub latency: Histogram,
    /// Responses by status class: 2xx, 3xx, 4xx, 5xx.
    pub statuses: [std::sync::atomic::AtomicU64; 4],
}

impl RouteMetrics {
    fn figures(&self, route: &str) -> Arc<RouteFigures> {
        if let Some(f) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return f.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes
            .entry(route.to_owned())
            .or_insert_with(|| {
                Arc::new(RouteFigures {
                    latency: Histogram::new(LATENCY_BOUNDS),
                    statuses: Default::default(),
                })
            })
            .clone()
    }

    /// Snapshot for `/metrics`, sorted by route.
    pub fn all(&self) -> Vec<(String, Arc<RouteFigures>)> {
        let mut v: Vec<_> = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Token buckets keyed by caller.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<u64, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: u64, rate: f64, burst: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // forget callers idle for a minute (their buckets have refilled)
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

pub(crate) fn key_of(kind: &str, value: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(kind.as_bytes());
    h.write(value);
    h.finish()
}

/// Per IP, then per token (the token itself is hashed, never kept or logged).
pub async fn rate_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let c = &state.api.config;
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string());
    if let Some(ip) = ip {
        state
            .api
            .limiter
            .take(key_of("ip", ip.as_bytes()), c.rate_per_ip, c.burst_per_ip)
            .map_err(|wait| ApiError::TooManyRequests {
                message: "too many requests from this address".into(),
                retry_after: wait,
            })?;
    }
    // keyed by the token as the verifier reads it, so the spacing or case of
    // the scheme cannot open a fresh bucket
    if let Some(token) = token_key(request.headers()) {
        state
            .api
            .limiter
            .take(token, c.rate_per_token, c.burst_per_token)
            .map_err(|wait| ApiError::TooManyRequests {
                message: "too many requests with this token".into(),
                retry_after: wait,
            })?;
    }
    Ok(next.run(request).await)
}

/// The request's bearer token hashed, as the verifier reads it (scheme in any
/// case, surrounding spaces trimmed): the key of per-token limits.
pub(crate) fn token_key(headers: &axum::http::HeaderMap) -> Option<u64> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scheme = v.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| key_of("token", v[7..].trim().as_bytes()))
}

/// Timing, status counts, a span per request, the URI bound and the timeout.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let span = tracing::info_span!("request", %method, route = %route);
    let config = &state.api.config;
    let response = if request.uri().to_string().len() > config.max_uri_bytes {
        ApiError::UriTooLong(config.max_uri_bytes).into_response()
    } else if route == crate::events::SOCKET_IO_PATH {
        // a long-poll is held open until there is something to say (up to a
        // heartbeat): socket.io's own pings bound it, not the request timeout
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    } else {
        use tracing::Instrument;
        match tokio::time::timeout(
            config.request_timeout,
            next.run(request).instrument(span.clone()),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => ApiError::Timeout.into_response(),
        }
    };
    let elapsed = started.elapsed();
    let status = response.status();
    let figures = state.api.routes.figures(&route);
    figures.latency.observe(elapsed.as_secs_f64());
    let class = (status.as_u16() / 100).clamp(2, 5) as usize - 2;
    figures.statuses[class].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    span.in_scope(|| match response.extensions().get::<Arc<InternalCause>>() {
        Some(cause) => tracing::error!(
            status = status.as_u16(),
            ms = elapsed.as_secs_f64() * 1e3,
            error = %cause,
            "request failed"
        ),
        None => tracing::debug!(
            status = status.as_u16(),
            ms = elapsed.as_secs_f64() * 1e3,
            "served"
        ),
    });
    response
}

async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_docs = path == crate::paths::DOCS || path.starts_with("/docs/");
    // the web interface's pages: its own stylesheet, script and fetches only
    let is_page = !is_docs
        && !path.starts_with("/v1/")
        && !matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/asyncapi.json"
        );
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // pages send their address to this server only (so a browser sends a
    // real `Origin` with their forms, which the web layer checks); nothing
    // else sends it anywhere
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if is_page {
            "same-origin"
        } else {
            "no-referrer"
        }),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if is_page {
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        } else if is_docs {
            // Swagger UI: scripts from this server only; it sets inline styles
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
        } else {
            "default-src 'none'; frame-ancestors 'none'"
        }),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

pub fn layers(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let config = &state.api.config;
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    // credentials are allowed for the configured origins only (never `*`):
    // socket.io clients opened with `withCredentials: true` (the original
    // application's) long-poll with credentialed requests, which a browser
    // refuses to read without it. The API authenticates by bearer token and
    // sets no cookies; revisit this if a cookie session ever authenticates it.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static(MIN_POSITION_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(POSITION_HEADER),
            header::RETRY_AFTER,
            header::ETAG,
        ])
        .max_age(Duration::from_secs(600));
    let compress_when = SizeAbove::new(1024)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    router
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .br(true)
                .zstd(true)
                .compress_when(compress_when),
        )
        .layer(cors)
}

/// A finished JSON response body and the index position it reflects.
#[derive(Clone)]
pub struct Cached {
    pub body: Bytes,
    pub position: String,
}

impl IntoResponse for Cached {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&self.position) {
            r.headers_mut().insert(POSITION_HEADER, v);
        }
        r
    }
}

/// Responses keyed by (organization scope, request, pinned searcher): a cached
/// answer is never stale (a new searcher is a new key) and never foreign (the
/// scope is in the key). Concurrent identical requests share one computation.
/// Weighed in bytes (key and body): under a stream of changes every commit
/// makes new keys, and a search body with its facets runs to tens of
/// kilobytes, so a count of entries bounded nothing in particular.
pub struct ResponseCache {
    cache: moka::future::Cache<String, Cached>,
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, value: &Cached| {
                    let bytes = key.len() + value.body.len() + value.position.len();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_idle(Duration::from_secs(300))
                .build(),
        }
    }

    /// (entries, bytes held) as of the cache's last housekeeping.
    pub fn figures(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    pub async fn get_or_compute<F>(&self, key: String, compute: F) -> Result<Cached, ApiError>
    where
        F: Future<Output = Result<Cached, ApiError>>,
    {
        self.cache.try_get_with(key, compute).await.map_err(
            |e: Arc<ApiError>| match Arc::try_unwrap(e) {
                Ok(e) => e,
                Err(shared) => (*shared).clone(),
            },
        )
    }
}
