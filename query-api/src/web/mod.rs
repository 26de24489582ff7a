//! The web interface: server-rendered pages for officers, executives and
//! auditors, on the API's listener.
//!
//! Pages call the API's own services in-process with the session's [`Scope`]
//! (search, suggest, details, reports, the board PDF, live event tickets), so a
//! page can show nothing the JSON API would not answer the same caller. HTML
//! comes from typed templates ([`pages`], maud: every interpolation escaped);
//! the one stylesheet and one script are embedded, named by content hash and
//! cached for a year. Every page works without JavaScript except live updates.

mod assets;
mod export;
mod oidc;
mod pages;
pub mod session;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::search::params::Route;
pub use pages::PageError;
use session::Session;

/// The web paths, named once for the router and the pages' links.
pub mod paths {
    pub const SEARCH: &str = "/";
    pub const DASHBOARD: &str = "/dashboard";
    pub const DASHBOARD_KPIS: &str = "/dashboard/kpis";
    pub const HEAT_CELL: &str = "/dashboard/cell";
    pub const SIGNIN: &str = "/signin";
    pub const SIGNIN_LINK: &str = "/signin/{token}";
    pub const SIGNOUT: &str = "/signout";
    pub const EXPORT: &str = "/export.csv";
    pub const SUGGEST: &str = "/ui/suggest";
    pub const TICKET: &str = "/ui/events/ticket";
    pub const BOARD_PDF: &str = "/ui/board.pdf";
    pub const SECTION: &str = "/ui/metrics/{section}";
    pub const ASSET: &str = "/assets/{file}";

    /// The detail page of a record.
    pub fn detail(kind: certscope_domain::Kind, id: i64) -> String {
        format!("/{}/{id}", super::detail_segment(kind))
    }
}

/// The path segment of a kind's detail pages.
fn detail_segment(kind: certscope_domain::Kind) -> &'static str {
    use certscope_domain::Kind;
    match kind {
        Kind::Certification => "certifications",
        Kind::Requirement => "requirements",
        Kind::Evidence => "evidence",
        Kind::Risk => "risks",
        Kind::Control => "controls",
    }
}

/// The web routes (merged with the API's by [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::SEARCH, get(search_page))
        .route("/certifications/{id}", get(certification_page))
        .route("/requirements/{id}", get(requirement_page))
        .route("/evidence/{id}", get(evidence_page))
        .route("/risks/{id}", get(risk_page))
        .route(paths::DASHBOARD, get(dashboard_page))
        .route(paths::DASHBOARD_KPIS, get(dashboard_kpis))
        .route(paths::HEAT_CELL, get(heat_cell_page))
        .route(paths::SIGNIN, get(signin_help))
        .route(paths::SIGNIN_LINK, get(signin_confirm).post(signin_spend))
        .route("/signin/sso/{provider}", get(oidc::start))
        .route("/signin/sso/{provider}/callback", get(oidc::callback))
        .route(paths::SIGNOUT, post(signout))
        .route(paths::EXPORT, get(export::search_csv))
        .route(paths::SUGGEST, get(suggest))
        .route(paths::TICKET, post(ticket))
        .route(paths::BOARD_PDF, get(board_pdf))
        .route(paths::SECTION, get(section_csv))
        .route(paths::ASSET, get(assets::serve))
        .route_layer(axum::middleware::from_fn(server_timing))
}

/// Adds the page's own time on the server (`Server-Timing: app`, beside any
/// part a handler named, such as `search`), so the browser's Performance API
/// can tell server time from network, layout and paint (`certscope bench web`
/// prints both). Durations only: nothing about the request or its data.
async fn server_timing(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    add_timing(&mut response, "app", started.elapsed());
    response
}

/// Appends one `Server-Timing` metric (milliseconds, as the header wants).
fn add_timing(response: &mut Response, name: &str, took: std::time::Duration) {
    let value = format!("{name};dur={:.1}", took.as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append("server-timing", v);
    }
}

/// The page's query string as (name, value) pairs, without empty values (an
/// empty form field means "not set") and without `drop`ped names.
fn page_pairs(raw: Option<String>, drop: &[&str]) -> ApiResult<Vec<(String, String)>> {
    let mut pairs = crate::routes::pairs(raw)?;
    pairs.retain(|(k, v)| !v.trim().is_empty() && !drop.contains(&k.as_str()));
    Ok(pairs)
}

fn encode(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The JSON body of an API answer produced in-process.
async fn json_of(response: Response) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .map_err(|e| ApiError::internal("reading an answer", e))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::internal("reading an answer", e))
}

/// Runs the search of `pairs` for the session, as `/v1/search` would.
async fn search_json(
    state: &AppState,
    session: &Session,
    pairs: &[(String, String)],
) -> ApiResult<Value> {
    let raw = Some(encode(pairs)).filter(|s| !s.is_empty());
    let response = crate::routes::run_search(
        state.clone(),
        session.scope.clone(),
        raw,
        HeaderMap::new(),
        Route::Search,
    )
    .await?;
    json_of(response).await
}

async fn search_page(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let mut pairs = page_pairs(raw, &[])?;
    let trail = pairs
        .iter()
        .position(|(k, _)| k == pages::TRAIL)
        .map(|i| pairs.remove(i).1)
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let answer = search_json(&state, &session, &pairs).await;
    let searched = started.elapsed();
    let (status, body) = match answer {
        Ok(v) => (StatusCode::OK, Ok(v)),
        // the officer's mistake is shown on the page, with the box kept
        Err(e @ ApiError::BadRequest { .. }) => (StatusCode::BAD_REQUEST, Err(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let mut response = pages::html(
        status,
        pages::search(
            &session,
            &pairs,
            &trail,
            body.as_ref().map_err(String::as_str),
        ),
    );
    add_timing(&mut response, "search", searched);
    add_timing(&mut response, "render", started.elapsed() - searched);
    Ok(response)
}

/// Which relations a kind's detail page shows.
fn detail_includes(kind: certscope_domain::Kind) -> &'static str {
    use certscope_domain::Kind;
    match kind {
        Kind::Certification => "include=requirements,evidence,risks,history",
        Kind::Requirement => "include=evidence,risks,history",
        Kind::Evidence => "include=history",
        Kind::Risk => "include=requirements,history",
        Kind::Control => "",
    }
}

macro_rules! detail_page {
    ($name:ident, $kind:ident, $handler:path) => {
        async fn $name(
            State(state): State<AppState>,
            session: Session,
            Path(id): Path<String>,
        ) -> Result<Response, PageError> {
            let kind = certscope_domain::Kind::$kind;
            let axum::Json(record) = $handler(
                State(state),
                session.scope.clone(),
                Path(id),
                RawQuery(Some(detail_includes(kind).to_owned())),
            )
            .await?;
            Ok(pages::html(
                StatusCode::OK,
                pages::detail(&session, kind, &record),
            ))
        }
    };
}
detail_page!(
    certification_page,
    Certification,
    crate::detail::certification
);
detail_page!(requirement_page, Requirement, crate::detail::requirement);
detail_page!(evidence_page, Evidence, crate::detail::evidence);
detail_page!(risk_page, Risk, crate::detail::risk);

/// The report parameters a dashboard URL may carry (the API's names).
const DASHBOARD_PARAMS: &[&str] = &["framework", "certification", "as_of", "from", "interval"];

fn report_pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    let pairs = page_pairs(raw, &[])?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(k, _)| !DASHBOARD_PARAMS.contains(&k.as_str()))
    {
        return Err(ApiError::bad(
            "unknown_parameter",
            format!(
                "unknown parameter `{name}`; the dashboard takes {}",
                DASHBOARD_PARAMS.join(", ")
            ),
        ));
    }
    Ok(pairs)
}

/// The dashboard's parameters from its URL, and the report they ask for.
async fn dashboard_report(
    state: &AppState,
    session: &Session,
    raw: Option<String>,
) -> ApiResult<(
    Vec<(String, String)>,
    std::sync::Arc<certscope_reports::model::Report>,
)> {
    let pairs = report_pairs(raw)?;
    let report =
        crate::metrics_routes::report_for(state, &session.scope, Some(encode(&pairs))).await?;
    Ok((pairs, report))
}

async fn dashboard_page(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (pairs, report) = dashboard_report(&state, &session, raw).await?;
    let choices = pages::DashboardChoices::load(&state, &session).await?;
    Ok(pages::html(
        StatusCode::OK,
        pages::dashboard(&session, &pairs, &report, &choices),
    ))
}

/// The KPI tiles alone, for the live dashboard's refresh after an event. The
/// change the event told of is committed; the report is versioned by the
/// index position, so the answer waits (bounded) until the index holds
/// everything committed now, and never shows the figures from before it.
async fn dashboard_kpis(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = report_pairs(raw)?;
    let now: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&state.pool)
        .await
        .map_err(ApiError::from)?;
    let mut fresh = pairs.clone();
    fresh.push(("min_position".into(), now));
    let report =
        crate::metrics_routes::report_for(&state, &session.scope, Some(encode(&fresh))).await?;
    Ok(pages::html(
        StatusCode::OK,
        pages::kpi_tiles(&report, &pairs),
    ))
}

/// The risks behind one heat-map cell.
async fn heat_cell_page(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let mut pairs = page_pairs(raw, &[])?;
    let mut take = |name: &str| -> ApiResult<String> {
        let i = pairs
            .iter()
            .position(|(k, _)| k == name)
            .ok_or_else(|| ApiError::bad("bad_parameter", format!("`{name}` is required")))?;
        Ok(pairs.remove(i).1)
    };
    let grid = take("grid")?;
    let rating = |name: &str, v: String| -> ApiResult<u8> {
        v.parse::<u8>()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| ApiError::bad("bad_parameter", format!("`{name}` must be 1 to 5")))
    };
    let likelihood = rating("likelihood", take("likelihood")?)?;
    let impact = rating("impact", take("impact")?)?;
    let residual = match grid.as_str() {
        "inherent" => false,
        "residual" => true,
        _ => {
            return Err(
                ApiError::bad("bad_parameter", "`grid` must be inherent or residual").into(),
            );
        }
    };
    let report_params = report_pairs(Some(encode(&pairs)))?;
    let report =
        crate::metrics_routes::report_for(&state, &session.scope, Some(encode(&report_params)))
            .await?;
    let g = if residual {
        &report.heatmap.residual
    } else {
        &report.heatmap.inherent
    };
    let ids = g
        .cell(likelihood, impact)
        .map(|c| c.risk_ids.clone())
        .unwrap_or_default();
    let risks = crate::detail::risk_rows(&state.pool, &session.scope, &ids).await?;
    Ok(pages::html(
        StatusCode::OK,
        pages::heat_cell(
            &session,
            &report_params,
            residual,
            (likelihood, impact),
            &risks,
        ),
    ))
}

/// The identity providers whose sign-in the sign-in page offers.
fn sign_in_providers(state: &AppState) -> Vec<String> {
    state
        .api
        .providers
        .iter()
        .filter(|p| p.config.client_id.is_some())
        .map(|p| p.config.name.clone())
        .collect()
}

async fn signin_help(State(state): State<AppState>) -> Response {
    pages::html(
        StatusCode::UNAUTHORIZED,
        pages::signed_out(None, &sign_in_providers(&state), None),
    )
}

async fn signin_confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let info = session::peek_link(&state.pool, &token).await?;
    // pages load nothing from elsewhere and their Referrer-Policy is
    // same-origin: the link's token never leaves this server
    Ok(pages::html(StatusCode::OK, pages::signin_confirm(&info)))
}

async fn signin_spend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    session::check_origin(&headers)?;
    let scope = session::redeem_link(&state.pool, &token).await?;
    state.api.organizations.admit(&state.pool, &scope).await?;
    let opened = session::open(&state.pool, &scope, "link").await?;
    let home = match scope.role {
        crate::Role::Executive => paths::DASHBOARD,
        _ => paths::SEARCH,
    };
    let mut r = Redirect::to(home).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&opened.id, &headers)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

async fn signout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, PageError> {
    session::check_origin(&headers)?;
    session.check_csrf(form.csrf.as_deref())?;
    session::end(&state.pool, &session).await?;
    // signed in at a provider: sign out there too, where it can
    let mut r = match oidc::logout_url(&state, &session.method, &headers).await {
        Some(url) => pages::html(StatusCode::OK, pages::signing_out_at(&url)),
        None => pages::html(
            StatusCode::OK,
            pages::signed_out(
                Some("You are signed out."),
                &sign_in_providers(&state),
                None,
            ),
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(&headers)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// JSON answers for the page scripts: errors stay JSON.
async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: RawQuery,
) -> ApiResult<Response> {
    let session = api_session(&state, &headers).await?;
    crate::routes::suggest(State(state), session.scope, HeaderMap::new(), raw).await
}

/// The session of a script's request, or 401 (no redirect to a page).
async fn api_session(state: &AppState, headers: &HeaderMap) -> ApiResult<Session> {
    match session::lookup(state, headers).await {
        Ok(s) => Ok(s),
        Err(session::NoSession::SignedOut) => Err(ApiError::Unauthorized(
            "not signed in, or the session has ended; sign in again".into(),
        )),
        Err(session::NoSession::Failed(e)) => Err(e),
    }
}

/// A live-events ticket for the session, and the rooms its dashboard follows
/// (auditors: their certifications; everyone else: the organization).
async fn ticket(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let session = api_session(&state, &headers).await?;
    session::check_origin(&headers)?;
    session.check_csrf(
        headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok()),
    )?;
    let rooms = match &session.scope.certifications {
        None => "org,notices".to_owned(),
        Some(certs) => certs
            .iter()
            .take(
                state
                    .events
                    .config
                    .max_rooms_per_connection
                    .saturating_sub(1),
            )
            .map(|c| format!("certification:{c}"))
            .chain(std::iter::once("notices".to_owned()))
            .collect::<Vec<_>>()
            .join(","),
    };
    let caller = crate::events::Caller {
        scope: session.scope.clone(),
        token: session.key(),
        expires: session.expires,
    };
    let body = serde_json::json!({
        "ticket": state.events.issue_ticket(caller),
        "rooms": rooms,
        "expires_in_seconds": state.events.config.ticket_ttl.as_secs(),
    });
    Ok(axum::Json(body).into_response())
}

async fn board_pdf(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = report_pairs(raw)?;
    let mut r = crate::metrics_routes::board(
        State(state),
        session.scope,
        HeaderMap::new(),
        RawQuery(Some(encode(&pairs))),
    )
    .await?;
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"board-pack.pdf\""),
    );
    Ok(r)
}

async fn section_csv(
    State(state): State<AppState>,
    session: Session,
    Path(section): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let section = certscope_reports::section::Section::parse(&section)
        .ok_or_else(|| ApiError::NotFound(format!("no report section `{section}`")))?;
    let mut pairs = report_pairs(raw)?;
    pairs.push(("format".into(), "csv".into()));
    let mut r = crate::metrics_routes::metrics(
        section,
        State(state),
        session.scope,
        HeaderMap::new(),
        RawQuery(Some(encode(&pairs))),
    )
    .await?;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.csv\"",
        section.as_str()
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// A body from a string with a content type.
fn typed(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
