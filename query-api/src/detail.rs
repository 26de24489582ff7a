//! Detail of one record from PostgreSQL (the system of record), with related
//! records on request (`include=`), one level deep and at most
//! [`MAX_INCLUDED`] per relation. Every statement carries the caller's
//! organization; an id of another organization is 404, an auditor's id outside
//! its certifications 403.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value};
use sqlx::PgPool;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::routes::pairs;

pub const MAX_INCLUDED: i64 = 50;

fn parse_id(kind: &str, raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::bad(
            "bad_id",
            format!("{kind} id must be a positive whole number, not `{raw}`"),
        )
    })
}

/// Parses `include=a,b` against the relations a kind has.
fn includes(raw: Option<String>, allowed: &[&'static str]) -> ApiResult<Vec<&'static str>> {
    let mut out = Vec::new();
    for (name, value) in pairs(raw)? {
        if name != "include" {
            return Err(ApiError::bad(
                "unknown_parameter",
                format!("unknown parameter `{name}`; details take `include`"),
            ));
        }
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let rel = allowed.iter().find(|a| **a == v).ok_or_else(|| {
                ApiError::bad(
                    "bad_include",
                    format!(
                        "cannot include `{v}` here; possible: {}",
                        allowed.join(", ")
                    ),
                )
            })?;
            if !out.contains(rel) {
                out.push(*rel);
            }
        }
    }
    Ok(out)
}

/// One JSON object from a query returning `to_jsonb(...)`.
async fn one(pool: &PgPool, sql: &'static str, org: i64, id: i64) -> ApiResult<Option<Value>> {
    Ok(sqlx::query_scalar::<_, Value>(sql)
        .bind(org)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// A bounded relation: `{items, total, truncated}`.
async fn many(pool: &PgPool, sql: &'static str, org: i64, id: i64) -> ApiResult<Value> {
    many_within(pool, sql, org, id, None).await
}

/// A bounded relation whose statement also takes `$4`, the auditor's
/// certifications (NULL for everyone else).
async fn many_within(
    pool: &PgPool,
    sql: &'static str,
    org: i64,
    id: i64,
    certifications: Option<Vec<i64>>,
) -> ApiResult<Value> {
    let mut query = sqlx::query_as(sql).bind(org).bind(id).bind(MAX_INCLUDED);
    if sql.contains("$4") {
        query = query.bind(certifications);
    }
    Ok(page(query.fetch_all(pool).await?))
}

/// Rows of `(item, total before LIMIT)` as `{items, total, truncated}`.
fn page(rows: Vec<(Value, i64)>) -> Value {
    let total = rows.first().map_or(0, |r| r.1);
    let items: Vec<Value> = rows.into_iter().map(|r| r.0).collect();
    serde_json::json!({
        "items": items,
        "total": total,
        "truncated": total > items.len() as i64,
    })
}

const HISTORY_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT h.from_status, h.to_status, h.changed_at, h.changed_by, u.display_name AS changed_by_name,
           count(*) OVER () AS n
    FROM status_history h LEFT JOIN users u ON u.id = h.changed_by
    WHERE h.organization_id = $1 AND h.entity = $4 AND h.entity_id = $2
    ORDER BY h.changed_at DESC, h.id DESC LIMIT $3) t";

async fn history(pool: &PgPool, entity: &str, org: i64, id: i64) -> ApiResult<Value> {
    let rows = sqlx::query_as(HISTORY_SQL)
        .bind(org)
        .bind(id)
        .bind(MAX_INCLUDED)
        .bind(entity)
        .fetch_all(pool)
        .await?;
    Ok(page(rows))
}

fn not_found(kind: &str, id: i64) -> ApiError {
    ApiError::NotFound(format!("{kind} {id} not found"))
}

fn outside_scope(kind: &str, id: i64) -> ApiError {
    ApiError::Forbidden(format!("{kind} {id} is outside your audit scope"))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const CERTIFICATION_SQL: &str = "SELECT to_jsonb(t) FROM (
    SELECT x.id, x.name, x.description, x.status, x.started_on, x.target_date, x.certified_on, x.expires_on,
           x.owner_id, u.display_name AS owner, f.slug AS framework, f.name AS framework_name,
           x.version, x.updated_at,
           (SELECT count(*) FROM requirements r WHERE r.certification_id = x.id) AS requirements,
           (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (SELECT r.status, count(*) AS n
              FROM requirements r WHERE r.certification_id = x.id GROUP BY r.status) s) AS requirements_by_status,
           (SELECT certscope_completion(r.status) FROM requirements r
              WHERE r.certification_id = x.id) AS completion_pct
    FROM certifications x JOIN frameworks f ON f.id = x.framework_id LEFT JOIN users u ON u.id = x.owner_id
    WHERE x.organization_id = $1 AND x.id = $2) t";

const CERT_REQUIREMENTS_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT r.id, c.display_id AS control, c.title, r.status, r.due_date, u.display_name AS owner,
           count(*) OVER () AS n
    FROM requirements r JOIN controls c ON c.id = r.control_id LEFT JOIN users u ON u.id = r.owner_id
    WHERE r.organization_id = $1 AND r.certification_id = $2
    ORDER BY c.sort_key, r.id LIMIT $3) t";

const CERT_EVIDENCE_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT e.id, e.title, e.status, e.collected_on, e.expires_on, e.requirement_id, c.display_id AS control,
           count(*) OVER () AS n
    FROM evidence e JOIN requirements r ON r.id = e.requirement_id JOIN controls c ON c.id = r.control_id
    WHERE e.organization_id = $1 AND r.certification_id = $2
    ORDER BY e.collected_on DESC, e.id DESC LIMIT $3) t";

const CERT_RISKS_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT k.id, k.title, k.status, k.treatment,
           k.inherent_likelihood * k.inherent_impact AS inherent_score,
           k.residual_likelihood * k.residual_impact AS residual_score,
           count(*) OVER () AS n
    FROM risks k
    WHERE k.organization_id = $1 AND EXISTS (
        SELECT 1 FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id
        WHERE rr.risk_id = k.id AND r.certification_id = $2)
    ORDER BY k.residual_likelihood * k.residual_impact DESC, k.id LIMIT $3) t";

/// One certification from PostgreSQL, with related records on request.
#[utoipa::path(get, path = crate::paths::CERTIFICATION, tag = "details",
    params(crate::openapi::params::CertificationQuery),
    responses((status = 200, description = "The certification; relations asked for with `include=`", body = crate::openapi::schemas::CertificationDetail)))]
pub async fn certification(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Map<String, Value>>> {
    let id = parse_id("certification", &raw_id)?;
    let inc = includes(raw, &["requirements", "evidence", "risks", "history"])?;
    let pool = &state.pool;
    let found = one(pool, CERTIFICATION_SQL, scope.org_id, id)
        .await?
        .ok_or_else(|| not_found("certification", id))?;
    if !scope.sees_certification(id) {
        return Err(outside_scope("certification", id));
    }
    let mut out = object(found);
    for rel in inc {
        let v = match rel {
            "requirements" => many(pool, CERT_REQUIREMENTS_SQL, scope.org_id, id).await?,
            "evidence" => many(pool, CERT_EVIDENCE_SQL, scope.org_id, id).await?,
            "risks" => many(pool, CERT_RISKS_SQL, scope.org_id, id).await?,
            _ => history(pool, "certification", scope.org_id, id).await?,
        };
        out.insert(rel.into(), v);
    }
    Ok(Json(out))
}

const REQUIREMENT_SQL: &str = "SELECT to_jsonb(t) FROM (
    SELECT r.id, r.status, r.due_date, r.notes, r.owner_id, u.display_name AS owner, r.version, r.updated_at,
           r.certification_id, x.name AS certification,
           c.display_id AS control, c.control_key, c.title AS control_title, c.statement, c.guidance,
           c.family_key AS family, c.family_title, f.slug AS framework, f.name AS framework_name
    FROM requirements r JOIN certifications x ON x.id = r.certification_id
    JOIN controls c ON c.id = r.control_id JOIN frameworks f ON f.id = c.framework_id
    LEFT JOIN users u ON u.id = r.owner_id
    WHERE r.organization_id = $1 AND r.id = $2) t";

const REQ_EVIDENCE_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT e.id, e.title, e.status, e.file_name, e.collected_on, e.expires_on, count(*) OVER () AS n
    FROM evidence e WHERE e.organization_id = $1 AND e.requirement_id = $2
    ORDER BY e.collected_on DESC, e.id DESC LIMIT $3) t";

const REQ_RISKS_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT k.id, k.title, k.status, k.treatment,
           k.inherent_likelihood * k.inherent_impact AS inherent_score,
           k.residual_likelihood * k.residual_impact AS residual_score, count(*) OVER () AS n
    FROM risk_requirements rr JOIN risks k ON k.id = rr.risk_id
    WHERE rr.organization_id = $1 AND rr.requirement_id = $2
    ORDER BY k.residual_likelihood * k.residual_impact DESC, k.id LIMIT $3) t";

const RISK_ROWS_SQL: &str = "SELECT to_jsonb(t) FROM (
    SELECT k.id, k.title, k.status, k.category, k.treatment, u.display_name AS owner,
           k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact,
           k.inherent_likelihood * k.inherent_impact AS inherent_score,
           k.residual_likelihood * k.residual_impact AS residual_score
    FROM risks k LEFT JOIN users u ON u.id = k.owner_id
    WHERE k.organization_id = $1 AND k.id = ANY($2)
    ORDER BY k.residual_likelihood * k.residual_impact DESC, k.id) t";

/// Several risks of the caller's organization by id (ids of another are
/// simply absent), for a page listing what a figure counts.
pub(crate) async fn risk_rows(pool: &PgPool, scope: &Scope, ids: &[i64]) -> ApiResult<Vec<Value>> {
    Ok(sqlx::query_scalar::<_, Value>(RISK_ROWS_SQL)
        .bind(scope.org_id)
        .bind(ids)
        .fetch_all(pool)
        .await?)
}

fn cert_of(v: &Value) -> i64 {
    v.get("certification_id")
        .and_then(Value::as_i64)
        .unwrap_or(-1)
}

/// One requirement from PostgreSQL, with related records on request.
#[utoipa::path(get, path = crate::paths::REQUIREMENT, tag = "details",
    params(crate::openapi::params::RequirementQuery),
    responses((status = 200, description = "The requirement; relations asked for with `include=`", body = crate::openapi::schemas::RequirementDetail)))]
pub async fn requirement(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Map<String, Value>>> {
    let id = parse_id("requirement", &raw_id)?;
    let inc = includes(raw, &["evidence", "risks", "history"])?;
    let pool = &state.pool;
    let found = one(pool, REQUIREMENT_SQL, scope.org_id, id)
        .await?
        .ok_or_else(|| not_found("requirement", id))?;
    if !scope.sees_certification(cert_of(&found)) {
        return Err(outside_scope("requirement", id));
    }
    let mut out = object(found);
    for rel in inc {
        let v = match rel {
            "evidence" => many(pool, REQ_EVIDENCE_SQL, scope.org_id, id).await?,
            "risks" => many(pool, REQ_RISKS_SQL, scope.org_id, id).await?,
            _ => history(pool, "requirement", scope.org_id, id).await?,
        };
        out.insert(rel.into(), v);
    }
    Ok(Json(out))
}

const EVIDENCE_SQL: &str = "SELECT to_jsonb(t) FROM (
    SELECT e.id, e.title, e.description, e.content, e.file_name, e.media_type, e.sha256, e.status,
           e.collected_on, e.expires_on, e.submitted_by, u.display_name AS submitter, e.version, e.updated_at,
           e.requirement_id, r.certification_id, x.name AS certification, c.display_id AS control,
           c.title AS control_title, f.slug AS framework
    FROM evidence e JOIN requirements r ON r.id = e.requirement_id
    JOIN certifications x ON x.id = r.certification_id JOIN controls c ON c.id = r.control_id
    JOIN frameworks f ON f.id = c.framework_id LEFT JOIN users u ON u.id = e.submitted_by
    WHERE e.organization_id = $1 AND e.id = $2) t";

/// One evidence from PostgreSQL, with related records on request.
#[utoipa::path(get, path = crate::paths::EVIDENCE, tag = "details",
    params(crate::openapi::params::EvidenceQuery),
    responses((status = 200, description = "The evidence; relations asked for with `include=`", body = crate::openapi::schemas::EvidenceDetail)))]
pub async fn evidence(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Map<String, Value>>> {
    let id = parse_id("evidence", &raw_id)?;
    let inc = includes(raw, &["history"])?;
    let pool = &state.pool;
    let found = one(pool, EVIDENCE_SQL, scope.org_id, id)
        .await?
        .ok_or_else(|| not_found("evidence", id))?;
    if !scope.sees_certification(cert_of(&found)) {
        return Err(outside_scope("evidence", id));
    }
    let mut out = object(found);
    for rel in inc {
        out.insert(
            rel.into(),
            history(pool, "evidence", scope.org_id, id).await?,
        );
    }
    Ok(Json(out))
}

const RISK_SQL: &str = "SELECT to_jsonb(t) FROM (
    SELECT k.id, k.title, k.description, k.category, k.status, k.treatment, k.due_date,
           k.owner_id, u.display_name AS owner,
           k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact,
           k.inherent_likelihood * k.inherent_impact AS inherent_score,
           k.residual_likelihood * k.residual_impact AS residual_score, k.version, k.updated_at,
           COALESCE(ARRAY(SELECT DISTINCT r.certification_id FROM risk_requirements rr
                          JOIN requirements r ON r.id = rr.requirement_id WHERE rr.risk_id = k.id
                          ORDER BY 1), '{}') AS certification_ids
    FROM risks k LEFT JOIN users u ON u.id = k.owner_id
    WHERE k.organization_id = $1 AND k.id = $2) t";

const RISK_REQUIREMENTS_SQL: &str = "SELECT to_jsonb(t) - 'n', n FROM (
    SELECT r.id, c.display_id AS control, c.title, r.status, r.certification_id, count(*) OVER () AS n
    FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id
    JOIN controls c ON c.id = r.control_id
    WHERE rr.organization_id = $1 AND rr.risk_id = $2
      AND ($4::bigint[] IS NULL OR r.certification_id = ANY($4))
    ORDER BY c.sort_key, r.id LIMIT $3) t";

/// One risk from PostgreSQL, with related records on request.
#[utoipa::path(get, path = crate::paths::RISK, tag = "details",
    params(crate::openapi::params::RiskQuery),
    responses((status = 200, description = "The risk; relations asked for with `include=`", body = crate::openapi::schemas::RiskDetail)))]
pub async fn risk(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Map<String, Value>>> {
    let id = parse_id("risk", &raw_id)?;
    let inc = includes(raw, &["requirements", "history"])?;
    let pool = &state.pool;
    let found = one(pool, RISK_SQL, scope.org_id, id)
        .await?
        .ok_or_else(|| not_found("risk", id))?;
    if let Some(allowed) = &scope.certifications {
        let linked = found
            .get("certification_ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter()
                    .filter_map(Value::as_i64)
                    .any(|c| allowed.contains(&c))
            });
        if !linked {
            return Err(outside_scope("risk", id));
        }
    }
    let mut out = object(found);
    if let Some(Value::Array(ids)) = out.get_mut("certification_ids") {
        // the risk's other certifications are outside an auditor's view
        scope.retain_visible(ids);
    }
    let allowed: Option<Vec<i64>> = scope
        .certifications
        .as_ref()
        .map(|c| c.iter().copied().collect());
    for rel in inc {
        let v = match rel {
            "requirements" => {
                many_within(
                    pool,
                    RISK_REQUIREMENTS_SQL,
                    scope.org_id,
                    id,
                    allowed.clone(),
                )
                .await?
            }
            _ => history(pool, "risk", scope.org_id, id).await?,
        };
        out.insert(rel.into(), v);
    }
    Ok(Json(out))
}
