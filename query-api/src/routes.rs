//! Search, suggestions and index-served listings.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use certscope_domain::Kind;
use certscope_indexer::{IndexView, Snapshot};

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::http::{Cached, MIN_POSITION_HEADER};
use crate::search::collect::Facet;
use crate::search::params::{self, Route, SearchParams};
use crate::search::{Pinned, SearchResponse};

/// Query-string pairs, repeated keys kept.
pub fn pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    match raw {
        None => Ok(vec![]),
        Some(q) => serde_urlencoded::from_str(&q).map_err(|_| {
            ApiError::bad(
                "bad_parameter",
                "the query string is not valid URL encoding",
            )
        }),
    }
}

/// The index view to answer from: the current one, or, when the request asks
/// for a position the index has not reached, the first that covers it within the
/// allowed wait; else 503 with Retry-After.
pub async fn view_at(state: &AppState, min: Option<&Snapshot>) -> ApiResult<IndexView> {
    let current = state.views.borrow().clone();
    let not_open = || ApiError::Unavailable {
        message: "the index is not open yet".into(),
        retry_after: Duration::from_secs(1),
    };
    let Some(min) = min else {
        return current.ok_or_else(not_open);
    };
    if let Some(v) = &current
        && v.position.snapshot.covers(min)
    {
        return Ok(v.clone());
    }
    // a position PostgreSQL has not reached was never returned by this API:
    // refuse it now instead of holding the request for the whole wait
    if let Ok(db) = certscope_indexer::change_feed::current_snapshot(
        &state.pool,
        certscope_indexer::Operation::ReadingChanges,
    )
    .await
        && !db.covers(min)
    {
        return Err(ApiError::bad(
            "bad_position",
            format!(
                "position {min} is ahead of the database (at {db}); send a `position` this API returned"
            ),
        ));
    }
    let wait = state.api.config.max_position_wait;
    match certscope_indexer::wait_for_view(state.views.clone(), min, wait).await {
        Some(v) => Ok(v),
        None => Err(ApiError::Unavailable {
            message: format!(
                "the index has not reached position {min} within {} ms (it is at {}); retry later",
                wait.as_millis(),
                current.map_or_else(|| "nothing".into(), |v| v.position.snapshot.to_string())
            ),
            retry_after: Duration::from_secs(1),
        }),
    }
}

/// `min_position` from the header (or the parameter, which wins).
pub(crate) fn min_position(
    headers: &HeaderMap,
    param: Option<Snapshot>,
) -> ApiResult<Option<Snapshot>> {
    if param.is_some() {
        return Ok(param);
    }
    match headers.get(MIN_POSITION_HEADER) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                ApiError::bad(
                    "bad_position",
                    format!("`{MIN_POSITION_HEADER}` is not text"),
                )
            })?;
            params::parse_position(text).map(Some)
        }
    }
}

fn today_start() -> i64 {
    chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// Answers from the response cache, computing (once, for concurrent callers)
/// on a miss.
async fn cached(
    state: &AppState,
    key: String,
    compute: impl Future<Output = ApiResult<Cached>>,
) -> ApiResult<Response> {
    Ok(state
        .api
        .cache
        .get_or_compute(key, compute)
        .await?
        .into_response())
}

fn to_body(value: &impl serde::Serialize) -> ApiResult<axum::body::Bytes> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| ApiError::internal("serializing a response", e))
}

/// The organization's search vocabulary and a version of it (0: the shipped
/// list alone), for response cache keys.
pub async fn vocabulary(
    state: &AppState,
    org: i64,
) -> ApiResult<(Arc<crate::search::Vocabulary>, u64)> {
    let pool = state.pool.clone();
    state
        .api
        .vocabularies
        .try_get_with(org, async move {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, line FROM search_synonyms WHERE organization_id = $1 ORDER BY id",
            )
            .bind(org)
            .fetch_all(&pool)
            .await?;
            if rows.is_empty() {
                return Ok::<_, sqlx::Error>((crate::search::Vocabulary::builtin(), 0));
            }
            let mut lines = Vec::with_capacity(rows.len());
            for (id, line) in &rows {
                match crate::search::Vocabulary::check_line(line) {
                    Ok(_) => lines.push(line.clone()),
                    // by id only: the line is the organization's text
                    Err(_) => tracing::warn!(
                        organization = org,
                        synonym = id,
                        "search synonym line skipped: it does not parse (see README, Search)"
                    ),
                }
            }
            let version = crate::search::cursor::hash(&lines.join("\n")) | 1;
            let mut vocabulary =
                crate::search::Vocabulary::with_additions(&lines).unwrap_or_default();
            vocabulary.version = version;
            Ok((Arc::new(vocabulary), version))
        })
        .await
        .map_err(|e| ApiError::internal("reading the search vocabulary", e))
}

pub(crate) async fn run_search(
    state: AppState,
    scope: Scope,
    raw: Option<String>,
    headers: HeaderMap,
    route: Route,
) -> ApiResult<Response> {
    let mut params = params::parse(&pairs(raw)?, route)?;
    resolve_owners(&state, &scope, &mut params).await?;
    let (vocabulary, vocabulary_version) = vocabulary(&state, scope.org_id).await?;
    if let Some(allowed) = &scope.certifications {
        for c in params.selections.get(Facet::Certification) {
            let id: i64 = c.parse().unwrap_or(-1);
            if !allowed.contains(&id) {
                return Err(ApiError::Forbidden(format!(
                    "certification {c} is outside your audit scope"
                )));
            }
        }
    }
    let min = min_position(&headers, params.min_position.clone())?;
    let view = view_at(&state, min.as_ref()).await?;
    let pinned = &state.api.search.pinned;
    let pinned = match &params.cursor {
        // a cursor continues on its own searcher, or not at all: on another
        // index state its pages could repeat or skip hits
        Some(c) => pinned.get(scope.org_id, c.s).ok_or_else(|| {
            ApiError::bad(
                "cursor_expired",
                "this cursor's index snapshot has expired (10 minutes unused); start again without `cursor`",
            )
        })?,
        None => pinned.current(scope.org_id, &view),
    };
    let today = today_start();
    let key = format!(
        "{route:?}|{}|{}@{}|{today}|{vocabulary_version}|{}|{}",
        scope.cache_key(),
        pinned.id,
        pinned.position,
        params.canonical,
        params
            .cursor
            .as_ref()
            .map(|c| c.encode())
            .unwrap_or_default()
    );
    let fields = view.fields.clone();
    let compute = {
        let state = state.clone();
        let scope = scope.clone();
        async move {
            let position = pinned.position.clone();
            let mut response = blocking_search(
                &state,
                pinned,
                fields,
                scope.clone(),
                params,
                today,
                vocabulary,
            )
            .await?;
            attach_labels(&state, &scope, &mut response).await?;
            Ok(Cached {
                body: to_body(&response)?,
                position,
            })
        }
    };
    cached(&state, key, compute).await
}

/// `owner=` values as people type them (any case; a name, or for everyone but
/// auditors an email) become the names the index holds. A value that is nobody in
/// the organization stays as typed: it is listed as a selected facet value with
/// its count (0 unless the index still holds that name, e.g. a renamed person's
/// old documents).
async fn resolve_owners(state: &AppState, scope: &Scope, p: &mut SearchParams) -> ApiResult<()> {
    let wanted = p.selections.get(Facet::Owner).to_vec();
    if wanted.is_empty() {
        return Ok(());
    }
    let lowered: Vec<String> = wanted.iter().map(|w| w.to_lowercase()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT w, u.display_name FROM unnest($2::text[]) AS w \
         JOIN users u ON u.organization_id = $1 \
          AND (lower(u.display_name) = w OR (NOT $3 AND lower(u.email) = w)) \
         ORDER BY w, u.display_name",
    )
    .bind(scope.org_id)
    .bind(&lowered)
    .bind(scope.certifications.is_some())
    .fetch_all(&state.pool)
    .await?;
    let mut names = Vec::new();
    for (typed, low) in wanted.iter().zip(&lowered) {
        let found: Vec<&String> = rows
            .iter()
            .filter(|(w, _)| w == low)
            .map(|(_, n)| n)
            .collect();
        if found.is_empty() && !names.contains(typed) {
            names.push(typed.clone());
        }
        for n in found {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    *p.selections.get_mut(Facet::Owner) = names;
    Ok(())
}

async fn blocking_search(
    state: &AppState,
    pinned: Pinned,
    fields: certscope_indexer::schema::Fields,
    scope: Scope,
    params: SearchParams,
    today: i64,
    vocabulary: Arc<crate::search::Vocabulary>,
) -> ApiResult<SearchResponse> {
    let api = state.api.clone();
    let turn = api.admission.enter("searches").await?;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        api.search
            .search(&pinned, &fields, &scope, &params, today, &vocabulary)
    })
    .await
    .map_err(|e| ApiError::internal("running a search", e))?
}

/// How to label each labelled facet: `$1` the organization, `$2` the values.
const LABEL_SQL: [(&str, bool, &str); 3] = [
    (
        "certification",
        true,
        "SELECT id::text, name FROM certifications WHERE organization_id = $1 AND id = ANY($2::text[]::bigint[])",
    ),
    (
        "framework",
        false,
        "SELECT slug, name FROM frameworks WHERE $1::bigint IS NOT NULL AND slug = ANY($2)",
    ),
    (
        "family",
        false,
        "SELECT DISTINCT ON (family_key) family_key, family_title FROM controls \
         WHERE $1::bigint IS NOT NULL AND family_key = ANY($2) ORDER BY family_key, family_title",
    ),
];

/// Human labels for facet values that are ids or keys, from a short-lived cache
/// (per organization for certifications; frameworks and families are shared).
async fn attach_labels(state: &AppState, scope: &Scope, r: &mut SearchResponse) -> ApiResult<()> {
    let cache = &state.api.labels;
    for (facet, per_org, sql) in LABEL_SQL {
        let Some(values) = r.facets.get_mut(facet) else {
            continue;
        };
        let org = if per_org { scope.org_id } else { 0 };
        let wanted: Vec<String> = values.iter().map(|v| v.value.clone()).collect();
        cache_labels(state, scope, (org, facet, sql), wanted).await?;
        for v in values.iter_mut() {
            v.label = cache.get(&(org, facet, v.value.clone()));
        }
    }
    name_related_certifications(state, scope, r).await
}

/// Puts the labels of `values` the cache lacks into it: one query of `sql`
/// (`$1` the organization, `$2` the values) for all of them.
async fn cache_labels(
    state: &AppState,
    scope: &Scope,
    (org, facet, sql): (i64, &'static str, &'static str),
    values: impl IntoIterator<Item = String>,
) -> ApiResult<()> {
    let cache = &state.api.labels;
    let mut missing: Vec<String> = values
        .into_iter()
        .filter(|v| !cache.contains_key(&(org, facet, v.clone())))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(sql)
        .bind(scope.org_id)
        .bind(&missing)
        .fetch_all(&state.pool)
        .await?;
    for (value, label) in rows {
        cache.insert((org, facet, value), label);
    }
    Ok(())
}

/// The certification names of the documents a collapsed hit stands for.
async fn name_related_certifications(
    state: &AppState,
    scope: &Scope,
    r: &mut SearchResponse,
) -> ApiResult<()> {
    let (facet, _, sql) = LABEL_SQL[0];
    let related = |hit: &serde_json::Map<String, serde_json::Value>| -> Vec<String> {
        hit.get("collapsed")
            .and_then(|c| c.get("related"))
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|item| item.get("certification_id").and_then(|v| v.as_u64()))
            .map(|id| id.to_string())
            .collect()
    };
    let ids: Vec<String> = r.hits.iter().flat_map(related).collect();
    cache_labels(state, scope, (scope.org_id, facet, sql), ids).await?;
    let cache = &state.api.labels;
    for hit in &mut r.hits {
        let Some(items) = hit
            .get_mut("collapsed")
            .and_then(|c| c.get_mut("related"))
            .and_then(|r| r.as_array_mut())
        else {
            continue;
        };
        for item in items {
            let name = item
                .get("certification_id")
                .and_then(|v| v.as_u64())
                .and_then(|id| cache.get(&(scope.org_id, facet, id.to_string())));
            if let (Some(name), Some(obj)) = (name, item.as_object_mut()) {
                obj.insert("certification".into(), serde_json::Value::String(name));
            }
        }
    }
    Ok(())
}

/// Faceted full-text search over certifications, requirements, controls,
/// evidence and risks of the caller's organization (and the shared catalogue).
#[utoipa::path(get, path = crate::paths::SEARCH, tag = "search",
    params(crate::openapi::params::SearchQuery),
    responses((status = 200, description = "Hits, totals, facet counts and the next page's cursor",
        headers(("x-certscope-position" = String, description = "The index position the answer reflects")),
        body = SearchResponse)))]
pub async fn search(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    run_search(state, scope, raw, headers, Route::Search).await
}

/// Certifications, served from the index (no `kind` facet).
#[utoipa::path(get, path = crate::paths::CERTIFICATIONS, tag = "search",
    params(crate::openapi::params::CertificationsQuery),
    responses((status = 200, description = "Certifications, with facets when asked", body = SearchResponse)))]
pub async fn certifications(
    state: State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    raw: RawQuery,
) -> ApiResult<Response> {
    listing(Kind::Certification, state, scope, headers, raw).await
}

/// Requirements, served from the index (no `kind` facet).
#[utoipa::path(get, path = crate::paths::REQUIREMENTS, tag = "search",
    params(crate::openapi::params::RequirementsQuery),
    responses((status = 200, description = "Requirements, with facets when asked", body = SearchResponse)))]
pub async fn requirements(
    state: State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    raw: RawQuery,
) -> ApiResult<Response> {
    listing(Kind::Requirement, state, scope, headers, raw).await
}

/// `GET /v1/certifications` and `GET /v1/requirements`: listings served from
/// the index.
pub async fn listing(
    kind: Kind,
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    run_search(state, scope, raw, headers, Route::Listing(kind)).await
}

pub const MAX_SUGGEST_CHARS: usize = 100;
pub const MAX_SUGGESTIONS: usize = 20;

/// Autocomplete: titles and control ids starting with what was typed.
#[utoipa::path(get, path = crate::paths::SUGGEST, tag = "search",
    params(crate::openapi::params::SuggestQuery),
    responses((status = 200, description = "Suggestions, best first", body = crate::openapi::schemas::Suggestions)))]
pub async fn suggest(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut q = None;
    let mut limit = 8usize;
    let mut min = None;
    let mut seen = BTreeSet::new();
    for (name, value) in pairs(raw)? {
        if !seen.insert(name.clone()) {
            return Err(ApiError::bad(
                "bad_parameter",
                format!("`{name}` given more than once"),
            ));
        }
        match name.as_str() {
            "q" => q = Some(value),
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_SUGGESTIONS).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad(
                            "bad_parameter",
                            format!("`limit` must be between 1 and {MAX_SUGGESTIONS}"),
                        )
                    })?;
            }
            "min_position" => min = Some(params::parse_position(&value)?),
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown parameter `{other}`; suggest takes q, limit, min_position"),
                ));
            }
        }
    }
    let q = q.ok_or_else(|| ApiError::bad("bad_parameter", "`q` is required"))?;
    if q.chars().count() > MAX_SUGGEST_CHARS {
        return Err(ApiError::bad(
            "query_too_long",
            format!("`q` is longer than {MAX_SUGGEST_CHARS} characters"),
        ));
    }
    let min = min_position(&headers, min)?;
    let view = view_at(&state, min.as_ref()).await?;
    let pinned = state.api.search.pinned.current(scope.org_id, &view);
    let key = format!(
        "suggest|{}|{}@{}|{limit}|{q}",
        scope.cache_key(),
        pinned.id,
        pinned.position
    );
    let api = state.api.clone();
    let fields = view.fields.clone();
    let compute = async move {
        let position = pinned.position.clone();
        let turn = api.admission.enter("searches").await?;
        let items = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            crate::search::suggest(&api.search, &pinned, &fields, &scope, &q, limit)
        })
        .await
        .map_err(|e| ApiError::internal("running a suggestion", e))??;
        let body = serde_json::json!({ "suggestions": items, "position": position });
        Ok(Cached {
            body: to_body(&body)?,
            position,
        })
    };
    cached(&state, key, compute).await
}
