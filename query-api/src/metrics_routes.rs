//! `/v1/metrics/{section}` (JSON or CSV) and `/v1/reports/board.pdf`: one
//! report model per (scope, parameters, data position), computed once for
//! concurrent callers, off the async runtime, and served by every section and
//! the PDF alike.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certscope_reports::board_pdf::{self, PageSize};
use certscope_reports::model::Report;
use certscope_reports::section::Section;
use certscope_reports::{ParamError, RawParams, ReportError, ReportParams, ReportScope};
use tokio::sync::Semaphore;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::http::POSITION_HEADER;
use crate::routes::{min_position, pairs, view_at};
use crate::search::params::parse_position;

/// Reports computed and PDFs rendered, shared by all requests.
pub(crate) struct ReportService {
    reports: moka::future::Cache<String, Arc<Report>>,
    pdfs: moka::future::Cache<String, Bytes>,
    /// At most this many reports are computed or rendered at once
    /// ([`crate::ApiConfig::report_concurrency`]), so that a burst of cold
    /// reports leaves cores to searches.
    permits: Semaphore,
    computed: AtomicU64,
    /// Unique to this process, so that tags never match across restarts.
    nonce: u64,
}

impl ReportService {
    /// The data version an organization's report is cached under: the index
    /// generation that last changed that organization's documents (or the
    /// shared catalogue's), so a write in one organization leaves every other
    /// organization's cached reports and tags valid, and an unchanged
    /// organization keeps them however much others write.
    fn data_version(&self, view: &certscope_indexer::IndexView, org: i64) -> String {
        format!("{:x}.{}", self.nonce, view.versions.of(org as u64))
    }

    /// Admission for one report computation or rendering.
    async fn permit(&self) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
        self.permits
            .acquire()
            .await
            .map_err(|e| ApiError::internal("waiting for a report slot", e))
    }

    /// Report models computed since start: one per cache miss.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// (entries, bytes) of the report and rendered-PDF caches (as of their
    /// last housekeeping).
    pub fn cache_figures(&self) -> [(&'static str, (u64, u64)); 2] {
        [
            (
                "reports",
                (self.reports.entry_count(), self.reports.weighted_size()),
            ),
            ("pdfs", (self.pdfs.entry_count(), self.pdfs.weighted_size())),
        ]
    }
}

/// Bytes of report models kept (their JSON size, about what they hold):
/// dozens of large organizations' reports.
const REPORT_CACHE_BYTES: u64 = 64 << 20;
/// Bytes of rendered PDFs kept.
const PDF_CACHE_BYTES: u64 = 32 << 20;

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The length of `value` as JSON, counted without building the text.
fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // writing to a counter cannot fail; a model that cannot serialize weighs 0
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl ReportService {
    /// Computing or rendering at most `concurrency` reports at once.
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            reports: moka::future::Cache::builder()
                .max_capacity(REPORT_CACHE_BYTES)
                .weigher(|key: &String, report: &Arc<Report>| {
                    weight(key.len() + serialized_len(report.as_ref()))
                })
                .time_to_idle(Duration::from_secs(600))
                .build(),
            pdfs: moka::future::Cache::builder()
                .max_capacity(PDF_CACHE_BYTES)
                .weigher(|key: &String, pdf: &Bytes| weight(key.len() + pdf.len()))
                .time_to_idle(Duration::from_secs(600))
                .build(),
            permits: Semaphore::new(concurrency.max(1)),
            computed: AtomicU64::new(0),
            nonce: rand::random(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

pub(crate) struct Request {
    params: ReportParams,
    format: Option<String>,
    size: Option<String>,
    min_position: Option<certscope_indexer::Snapshot>,
}

fn param_error(e: ParamError) -> ApiError {
    let code = match e {
        ParamError::FutureAsOf(..) => "future_as_of",
        ParamError::InvertedPeriod { .. } => "inverted_period",
        ParamError::UnknownKpi(..) => "unknown_kpi",
        _ => "bad_parameter",
    };
    ApiError::bad(code, e.to_string())
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> ApiResult<T> {
    value.trim().parse().map_err(|_| {
        ApiError::bad(
            "bad_parameter",
            format!("`{name}` must be a whole number, got {value:?}"),
        )
    })
}

fn date(name: &str, value: &str) -> ApiResult<chrono::NaiveDate> {
    value.trim().parse().map_err(|_| {
        ApiError::bad(
            "bad_parameter",
            format!("`{name}` must be a date (YYYY-MM-DD), got {value:?}"),
        )
    })
}

pub(crate) fn parse(raw: Option<String>, pdf: bool) -> ApiResult<Request> {
    let mut r = RawParams::default();
    let mut format = None;
    let mut size = None;
    let mut min = None;
    for (key, value) in pairs(raw)? {
        let once = |given: bool| {
            if given {
                Err(ApiError::bad(
                    "bad_parameter",
                    format!("`{key}` is given more than once"),
                ))
            } else {
                Ok(())
            }
        };
        match key.as_str() {
            "framework" => {
                once(r.framework.is_some())?;
                r.framework = Some(value);
            }
            "certification" => {
                for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                    r.certifications.push(number("certification", part)?);
                }
            }
            "as_of" => {
                once(r.as_of.is_some())?;
                r.as_of = Some(date(&key, &value)?);
            }
            "from" => {
                once(r.from.is_some())?;
                r.from = Some(date(&key, &value)?);
            }
            "to" => {
                once(r.to.is_some())?;
                r.to = Some(date(&key, &value)?);
            }
            "interval" => {
                once(r.interval.is_some())?;
                r.interval = Some(value);
            }
            "previous_as_of" => {
                once(r.previous_as_of.is_some())?;
                r.previous_as_of = Some(date(&key, &value)?);
            }
            "appetite" => r.appetite = Some(number(&key, &value)?),
            "horizon_days" => r.horizon_days = Some(number(&key, &value)?),
            "limit" if !pdf => r.limit = Some(number(&key, &value)?),
            "format" if !pdf => {
                once(format.is_some())?;
                format = Some(value);
            }
            "size" if pdf => {
                once(size.is_some())?;
                size = Some(value);
            }
            "min_position" => min = Some(parse_position(&value)?),
            k if k.starts_with("target.") => {
                let v = number(&key, &value)?;
                r.targets
                    .push((k["target.".len()..].to_owned(), Some(v), None));
            }
            k if k.starts_with("warning.") => {
                let v = number(&key, &value)?;
                r.targets
                    .push((k["warning.".len()..].to_owned(), None, Some(v)));
            }
            other => {
                let known = if pdf {
                    "framework, certification, as_of, from, to, interval, previous_as_of, appetite, horizon_days, size, min_position, target.<kpi>, warning.<kpi>"
                } else {
                    "framework, certification, as_of, from, to, interval, previous_as_of, appetite, horizon_days, limit, format, min_position, target.<kpi>, warning.<kpi>"
                };
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown parameter `{other}`; known: {known}"),
                ));
            }
        }
    }
    let params = ReportParams::new(r, chrono::Utc::now().date_naive()).map_err(param_error)?;
    Ok(Request {
        params,
        format,
        size,
        min_position: min,
    })
}

/// `format=` wins; else the Accept header; JSON when nothing is asked for.
fn negotiate(format: Option<&str>, headers: &HeaderMap) -> ApiResult<Format> {
    match format {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some(other) => {
            return Err(ApiError::bad(
                "unsupported_format",
                format!("format {other:?} is not supported; use json or csv"),
            ));
        }
        None => {}
    }
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&"text/csv") {
        Ok(Format::Csv)
    } else if types.iter().any(|t| {
        matches!(
            *t,
            "application/json" | "application/*" | "*/*" | "" | "text/*"
        )
    }) {
        Ok(Format::Json)
    } else {
        Err(ApiError::NotAcceptable(format!(
            "cannot answer with {accept:?}; metrics are available as application/json or text/csv"
        )))
    }
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::UnknownFramework(slug) => ApiError::bad(
            "unknown_framework",
            format!("framework {slug:?} does not exist"),
        ),
        ReportError::CertificationNotFound(id) => {
            ApiError::NotFound(format!("certification {id} not found"))
        }
        ReportError::Forbidden(id) => {
            ApiError::Forbidden(format!("certification {id} is outside your audit scope"))
        }
        // admission checks the organization first; this is a deletion since
        ReportError::OrganizationNotFound => {
            ApiError::Forbidden("the token's organization does not exist".into())
        }
        other => ApiError::internal("computing a report", other),
    }
}

fn scope_of(scope: &Scope) -> ReportScope {
    ReportScope {
        organization_id: scope.org_id,
        certifications: scope
            .certifications
            .as_ref()
            .map(|c| c.iter().copied().collect()),
    }
}

/// The cache key of a report at the current data version (waiting for
/// `min_position` first, like search).
async fn report_key(state: &AppState, scope: &Scope, request: &Request) -> ApiResult<String> {
    let view = view_at(state, request.min_position.as_ref()).await?;
    let version = state.api.reports.data_version(&view, scope.org_id);
    Ok(format!(
        "{}|{:?}|{version}",
        scope.cache_key(),
        request.params
    ))
}

/// The report under `key`: from the cache, or computed once however many
/// callers wait for it.
async fn report(
    state: &AppState,
    scope: &Scope,
    request: &Request,
    key: &str,
) -> ApiResult<Arc<Report>> {
    let compute = {
        let state = state.clone();
        let report_scope = scope_of(scope);
        let params = request.params.clone();
        let restricted = scope.certifications.is_some();
        async move {
            let _permit = state.api.reports.permit().await?;
            state.api.reports.computed.fetch_add(1, Ordering::Relaxed);
            let data = certscope_reports::load(&state.pool, &report_scope, &params)
                .await
                .map_err(report_error)?;
            let report = tokio::task::spawn_blocking(move || {
                certscope_reports::compute(data, &params, restricted)
            })
            .await
            .map_err(|e| ApiError::internal("computing a report", e))?
            .map_err(report_error)?;
            Ok::<_, ApiError>(Arc::new(report))
        }
    };
    state
        .api
        .reports
        .reports
        .try_get_with(key.to_owned(), compute)
        .await
        .map_err(|e: Arc<ApiError>| (*e).clone())
}

/// The report a page shows: `raw` holds the API's report parameters; the
/// same parsing, cache and scope as `/v1/metrics/*`.
pub(crate) async fn report_for(
    state: &AppState,
    scope: &Scope,
    raw: Option<String>,
) -> ApiResult<Arc<Report>> {
    let request = parse(raw.filter(|r| !r.is_empty()), false)?;
    let key = report_key(state, scope, &request).await?;
    report(state, scope, &request, &key).await
}

/// The rendered-PDF cache key: the full report key (scope, parameters, data
/// version) and the page size, never a hash of them.
fn pdf_cache_key(key: &str, size: PageSize) -> String {
    format!("{key}|{}", size.as_str())
}

fn etag(key: &str, variant: &str) -> String {
    let mut h = fnv::FnvHasher::default();
    key.hash(&mut h);
    variant.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

/// 304 when the client already holds this tag: answered before any report is
/// computed, but only after the parameters are checked like a full answer's
/// (`If-None-Match: *` must not confirm a certification the caller cannot see).
async fn not_modified(
    state: &AppState,
    scope: &Scope,
    request: &Request,
    headers: &HeaderMap,
    tag: &str,
) -> ApiResult<Option<Response>> {
    let held = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if !held {
        return Ok(None);
    }
    certscope_reports::load::check(&state.pool, &scope_of(scope), &request.params)
        .await
        .map_err(report_error)?;
    Ok(Some(respond(
        StatusCode::NOT_MODIFIED,
        Body::empty(),
        "",
        tag,
        None,
    )))
}

fn respond(
    status: StatusCode,
    body: Body,
    content_type: &'static str,
    tag: &str,
    position: Option<&str>,
) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    if status != StatusCode::NOT_MODIFIED {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = position.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(POSITION_HEADER, v);
    }
    // revalidate every time: the ETag makes an unchanged answer a cheap 304
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("authorization, accept"),
    );
    r
}

/// One route per report section, each with its own answer type in the
/// document; all serve [`metrics`].
macro_rules! section_route {
    ($name:ident, $section:ident, $body:ty, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(get, path = concat!("/v1/metrics/", stringify!($name)), tag = "metrics",
            params(crate::openapi::params::SectionQuery),
            responses(
                (status = 200, description = "The section with its `meta`; CSV with `format=csv` or `Accept: text/csv`",
                    headers(
                        ("etag" = String, description = "Weak tag of (scope, parameters, data version); send it in If-None-Match"),
                        ("x-certscope-position" = String, description = "The data position the report was read at"),
                    ),
                    content(($body = "application/json"), (String = "text/csv"))),
                (status = 304, description = "Unchanged since the `If-None-Match` tag"),
                (status = 406, description = "Neither JSON nor CSV is acceptable", body = crate::openapi::schemas::ErrorBody),
            ))]
        pub async fn $name(
            state: State<AppState>,
            scope: Scope,
            headers: HeaderMap,
            raw: RawQuery,
        ) -> ApiResult<Response> {
            metrics(Section::$section, state, scope, headers, raw).await
        }
    };
}
section_route!(
    summary,
    Summary,
    crate::openapi::schemas::SummarySection,
    "The decision page: overall status and why, three to five key messages and the decisions requested, each naming the report fields it states."
);
section_route!(
    posture,
    Posture,
    crate::openapi::schemas::PostureSection,
    "Readiness per framework, control family and certification; evidence coverage and freshness."
);
section_route!(
    heatmap,
    Heatmap,
    crate::openapi::schemas::HeatmapSection,
    "Likelihood × impact grids, inherent and residual, with the risks behind each cell; top risks."
);
section_route!(
    matrix,
    Matrix,
    crate::openapi::schemas::MatrixSection,
    "Control family × requirement status per certification."
);
section_route!(
    trends,
    Trends,
    crate::openapi::schemas::TrendsSection,
    "Readiness, open risks and overdue items over the period."
);
section_route!(
    forecast,
    Forecast,
    crate::openapi::schemas::ForecastSection,
    "Projected completion per certification from the burn-up, back-tested on history."
);
section_route!(
    overdue,
    Overdue,
    crate::openapi::schemas::OverdueSection,
    "Overdue and upcoming certifications, requirements and evidence."
);
section_route!(
    kpis,
    Kpis,
    crate::openapi::schemas::KpisSection,
    "KPIs with targets, warning thresholds, state and trend."
);

/// `GET /v1/metrics/{section}`.
pub async fn metrics(
    section: Section,
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut request = parse(raw, false)?;
    let format = negotiate(request.format.as_deref(), &headers)?;
    request.min_position = min_position(&headers, request.min_position.take())?;
    let key = report_key(&state, &scope, &request).await?;
    let tag = etag(&key, &format!("{}|{format:?}", section.as_str()));
    if let Some(unchanged) = not_modified(&state, &scope, &request, &headers, &tag).await? {
        return Ok(unchanged);
    }
    let report = report(&state, &scope, &request, &key).await?;
    let (body, content_type) = match format {
        Format::Json => {
            let value = section
                .json(&report)
                .map_err(|e| ApiError::internal("serializing a report section", e))?;
            let bytes = serde_json::to_vec(&value)
                .map_err(|e| ApiError::internal("serializing a report section", e))?;
            (Body::from(bytes), "application/json")
        }
        Format::Csv => (
            Body::from(certscope_reports::csv::render(section, &report)),
            "text/csv; charset=utf-8",
        ),
    };
    Ok(respond(
        StatusCode::OK,
        body,
        content_type,
        &tag,
        Some(&report.meta.position),
    ))
}

/// The board PDF: cover, executive summary, KPIs, heat-maps, readiness, top
/// risks, trends, overdue and upcoming items, methodology; from the same
/// report model as the sections.
#[utoipa::path(get, path = crate::paths::BOARD_PDF, tag = "metrics",
    params(crate::openapi::params::BoardQuery),
    responses(
        (status = 200, description = "The PDF",
            headers(("etag" = String, description = "Weak tag; send it in If-None-Match")),
            content((crate::openapi::schemas::PdfDocument = "application/pdf"))),
        (status = 304, description = "Unchanged since the `If-None-Match` tag"),
    ))]
pub async fn board(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut request = parse(raw, true)?;
    let size = match request.size.as_deref() {
        None => PageSize::A4,
        Some(s) => PageSize::parse(s).ok_or_else(|| {
            ApiError::bad(
                "bad_parameter",
                format!("`size` must be a4 or letter, got {s:?}"),
            )
        })?,
    };
    request.min_position = min_position(&headers, request.min_position.take())?;
    let key = report_key(&state, &scope, &request).await?;
    let tag = etag(&key, size.as_str());
    if let Some(unchanged) = not_modified(&state, &scope, &request, &headers, &tag).await? {
        return Ok(unchanged);
    }
    let report = report(&state, &scope, &request, &key).await?;
    let position = report.meta.position.clone();
    let render = {
        let state = state.clone();
        async move {
            let _permit = state.api.reports.permit().await?;
            tokio::task::spawn_blocking(move || board_pdf::render_board(&report, size))
                .await
                .map_err(|e| ApiError::internal("rendering the board PDF", e))?
                .map(Bytes::from)
                .map_err(|e| ApiError::internal("rendering the board PDF", e))
        }
    };
    // cached by the full key (scope, parameters, data version, size), never by
    // the tag: a 64-bit hash collision must not serve another tenant's PDF
    let pdf = state
        .api
        .reports
        .pdfs
        .try_get_with(pdf_cache_key(&key, size), render)
        .await
        .map_err(|e: Arc<ApiError>| (*e).clone())?;
    let mut response = respond(
        StatusCode::OK,
        Body::from(pdf),
        "application/pdf",
        &tag,
        Some(&position),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"board-report.pdf\""),
    );
    Ok(response.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beyond the concurrency a report waits for a turn (searches keep the
    /// other cores); a concurrency of 0 still computes one.
    #[tokio::test]
    async fn reports_take_turns_beyond_their_concurrency() {
        let wait = Duration::from_millis(50);
        let one = ReportService::new(1);
        let first = one.permit().await.unwrap();
        assert!(
            tokio::time::timeout(wait, one.permit()).await.is_err(),
            "a second report computed beside the first"
        );
        drop(first);
        assert!(tokio::time::timeout(wait, one.permit()).await.is_ok());

        let two = ReportService::new(2);
        let _a = two.permit().await.unwrap();
        assert!(tokio::time::timeout(wait, two.permit()).await.is_ok());

        let none = ReportService::new(0);
        assert!(tokio::time::timeout(wait, none.permit()).await.is_ok());
    }

    #[test]
    fn the_pdf_cache_key_holds_the_whole_report_key_not_its_tag() {
        let a = "report|7/a:1,2|framework=x|v1";
        let b = "report|8|framework=x|v1";
        let (ka, kb) = (
            pdf_cache_key(a, PageSize::A4),
            pdf_cache_key(b, PageSize::A4),
        );
        assert!(ka.starts_with(a) && kb.starts_with(b));
        assert_ne!(ka, kb);
        assert_ne!(ka, etag(a, "a4"));
        assert_ne!(ka, pdf_cache_key(a, PageSize::Letter));
    }
}
