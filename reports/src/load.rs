//! Rows for one report, read with sqlx in one repeatable-read transaction so
//! that every section describes the same committed state.
//!
//! PostgreSQL does the filtering and the one aggregation that would otherwise
//! ship a million rows (accepted evidence per requirement); everything else is
//! aggregated by polars in the sections.

use std::collections::HashMap;

use certscope_domain::Kind;
use chrono::NaiveDate;
use polars::prelude::*;
use sqlx::{Acquire, PgPool};
use tracing::instrument;

use crate::ReportError;
use crate::model::{Organization, Rating};
use crate::params::{ReportParams, ReportScope};

/// Days since 1970-01-01: the date encoding of every polars frame here.
pub fn day(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

pub fn date(day: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(day))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificationRow {
    pub id: i64,
    pub name: String,
    pub framework: String,
    pub status: String,
    pub owner: Option<String>,
    pub started_on: NaiveDate,
    pub target_date: NaiveDate,
    pub expires_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RiskRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub owner: Option<String>,
    pub inherent_likelihood: i16,
    pub inherent_impact: i16,
    pub residual_likelihood: i16,
    pub residual_impact: i16,
    pub treatment: String,
    pub due_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: i64,
    pub requirement_id: i64,
    pub title: String,
    pub expires_on: Option<NaiveDate>,
}

/// Everything a report reads, as of one snapshot.
#[derive(Debug)]
pub struct Dataset {
    pub organization: Organization,
    /// The snapshot the rows were read at.
    pub position: String,
    /// Certifications in scope that existed on the report date.
    pub certifications: Vec<CertificationRow>,
    /// Status history of the certifications: entity_id, day, status.
    pub certification_history: DataFrame,
    /// id, certification_id, framework, family_key, family_title, control,
    /// title, owner, due (day), evidenced, evidenced_prev, newest_evidence
    /// (day), covered_until (day; i32::MAX when coverage lasts past the
    /// horizon)
    pub requirements: DataFrame,
    /// Requirement status history: entity_id, day, status; one row per entity
    /// and day it changed (its status at the end of that day), ordered.
    pub requirement_history: DataFrame,
    pub risks: Vec<RiskRow>,
    /// Risk status history: entity_id, day, status.
    pub risk_history: DataFrame,
    /// Every assessment of each risk's ratings, for the grid at any date.
    pub risk_ratings: RiskRatings,
    /// The accepted evidence that last covered each lapsed or lapsing
    /// requirement (one per requirement).
    pub lapsing_evidence: Vec<EvidenceRow>,
    /// Framework names by slug (the public catalogue), for labels.
    pub framework_names: HashMap<String, String>,
}

/// One assessment of a risk: where it sat on the grid from `day` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// Days since 1970-01-01 (see [`day`]).
    pub day: i32,
    pub inherent: Rating,
    pub residual: Rating,
}

/// Each risk's assessments (migration 0006, `risk_ratings`), oldest first.
#[derive(Debug, Clone, Default)]
pub struct RiskRatings(HashMap<i64, Vec<Assessment>>);

impl RiskRatings {
    /// Assessments as `(risk id, assessment)` pairs in any order.
    pub fn new(rows: impl IntoIterator<Item = (i64, Assessment)>) -> Self {
        let mut by_risk: HashMap<i64, Vec<Assessment>> = HashMap::new();
        for (id, a) in rows {
            by_risk.entry(id).or_default().push(a);
        }
        for list in by_risk.values_mut() {
            // stable: assessments of one day keep their recorded order
            list.sort_by_key(|a| a.day);
        }
        Self(by_risk)
    }

    /// `(inherent, residual)` of `risk` at the end of `at`: its last
    /// assessment on or before that day; the first one for a day before any
    /// (ratings are known only from their first assessment); the row's own
    /// ratings when none is recorded.
    pub fn on(&self, risk: &RiskRow, at: NaiveDate) -> (Rating, Rating) {
        let at = day(at);
        match self.0.get(&risk.id) {
            Some(list) if !list.is_empty() => {
                let a = list
                    .iter()
                    .take_while(|a| a.day <= at)
                    .last()
                    .unwrap_or(&list[0]);
                (a.inherent, a.residual)
            }
            _ => (
                Rating::new(risk.inherent_likelihood.into(), risk.inherent_impact.into()),
                Rating::new(risk.residual_likelihood.into(), risk.residual_impact.into()),
            ),
        }
    }
}

#[derive(sqlx::FromRow)]
struct RatingRow {
    risk_id: i64,
    day: i32,
    inherent_likelihood: i16,
    inherent_impact: i16,
    residual_likelihood: i16,
    residual_impact: i16,
}

#[derive(sqlx::FromRow)]
struct RequirementRow {
    id: i64,
    certification_id: i64,
    framework: String,
    family_key: String,
    family_title: String,
    control: String,
    title: String,
    owner: Option<String>,
    due_date: Option<NaiveDate>,
    /// The newest accepted evidence valid on the report date (none: not covered).
    newest: Option<NaiveDate>,
    evidenced_prev: bool,
    /// Some accepted evidence collected by the report date stays valid past
    /// the horizon (or never expires).
    covered_beyond: bool,
    /// Otherwise, the last day any of it is valid (none: no evidence).
    covered_until: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    entity_id: i64,
    day: i32,
    status: String,
}

/// Each entity's status at the end of every day it changed, by entity and
/// day: all a report asks of history is where an entity stood at the end of a
/// day (`frames::state_at`), which `status_days` keeps (migration 0011: the
/// last `status_history` row of each entity and day), so a report reads one row
/// per entity and changed day however often statuses change within a day.
const HISTORY_SQL: &str = "\
SELECT d.entity_id, (d.day - date '1970-01-01') AS day, d.status \
  FROM status_days d \
 WHERE d.organization_id = $1 AND d.entity = $2 AND d.entity_id = ANY($3) \
 ORDER BY d.entity_id, d.day";

/// Reads the rows of one report. Fails with [`ReportError::UnknownFramework`],
/// [`ReportError::CertificationNotFound`] or [`ReportError::Forbidden`] for
/// parameters that name what the caller cannot see.
#[instrument(skip_all, fields(org_id = scope.organization_id))]
pub async fn load(
    pool: &PgPool,
    scope: &ReportScope,
    params: &ReportParams,
) -> Result<Dataset, ReportError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let position: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *tx)
        .await?;
    let organization = organization(&mut tx, scope.organization_id).await?;
    check_parameters(&mut tx, scope, params).await?;
    // the certifications in scope: requested ∩ visible, or whichever is given
    let wanted: Option<Vec<i64>> = match (&scope.certifications, params.certifications.is_empty()) {
        (_, false) => Some(params.certifications.clone()),
        (Some(visible), true) => Some(visible.clone()),
        (None, true) => None,
    };
    let certifications = certifications(&mut tx, scope, params, wanted.as_deref()).await?;
    let cert_ids: Vec<i64> = certifications.iter().map(|c| c.id).collect();
    let certification_history = history(
        &mut tx,
        scope.organization_id,
        Kind::Certification,
        &cert_ids,
    )
    .await?;
    let whole_organization = wanted.is_none() && params.framework.is_none();
    let rows = requirements(&mut tx, scope, params, &cert_ids).await?;
    let req_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let requirement_history =
        history(&mut tx, scope.organization_id, Kind::Requirement, &req_ids).await?;
    let risks = risks(&mut tx, scope, &cert_ids, !whole_organization).await?;
    let risk_ids: Vec<i64> = risks.iter().map(|r| r.id).collect();
    let risk_history = history(&mut tx, scope.organization_id, Kind::Risk, &risk_ids).await?;
    let risk_ratings = ratings(&mut tx, scope.organization_id, &risk_ids).await?;
    let lapsing_evidence = lapsing_evidence(&mut tx, scope, params, &rows).await?;
    // the catalogue is public and small: names for every slug
    let framework_names: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT slug, name FROM frameworks")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    tx.commit().await?;

    let requirements = requirement_frame(rows)?;
    Ok(Dataset {
        organization,
        position,
        certifications,
        certification_history,
        requirements,
        requirement_history,
        risks,
        risk_history,
        risk_ratings,
        lapsing_evidence,
        framework_names,
    })
}

impl Dataset {
    /// A framework's name, or its slug when the catalogue has none.
    pub fn framework_name<'a>(&'a self, slug: &'a str) -> &'a str {
        self.framework_names.get(slug).map_or(slug, String::as_str)
    }
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

async fn organization(tx: &mut sqlx::PgConnection, id: i64) -> Result<Organization, ReportError> {
    sqlx::query_as::<_, (i64, String, String)>(
        "SELECT id, slug, name FROM organizations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(|(id, slug, name)| Organization { id, slug, name })
    .ok_or(ReportError::OrganizationNotFound)
}

/// The parameter checks of [`load`] alone, for answers given without loading
/// (a 304 must not confirm a certification the caller may not see).
pub async fn check(
    pool: &PgPool,
    scope: &ReportScope,
    params: &ReportParams,
) -> Result<(), ReportError> {
    let mut conn = pool.acquire().await?;
    organization(&mut conn, scope.organization_id).await?;
    check_parameters(&mut conn, scope, params).await
}

/// Refuses a framework that does not exist and certifications the caller
/// cannot see (another organization's: not found; outside an auditor's scope:
/// forbidden).
async fn check_parameters(
    tx: &mut sqlx::PgConnection,
    scope: &ReportScope,
    params: &ReportParams,
) -> Result<(), ReportError> {
    if let Some(slug) = &params.framework {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM frameworks WHERE slug = $1)")
                .bind(slug)
                .fetch_one(&mut *tx)
                .await?;
        if !known {
            return Err(ReportError::UnknownFramework(slug.clone()));
        }
    }
    if params.certifications.is_empty() {
        return Ok(());
    }
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM certifications WHERE organization_id = $1 AND id = ANY($2)",
    )
    .bind(scope.organization_id)
    .bind(&params.certifications)
    .fetch_all(&mut *tx)
    .await?;
    if let Some(&missing) = params.certifications.iter().find(|id| !found.contains(id)) {
        return Err(ReportError::CertificationNotFound(missing));
    }
    if let Some(visible) = &scope.certifications
        && let Some(&hidden) = params
            .certifications
            .iter()
            .find(|id| !visible.contains(id))
    {
        return Err(ReportError::Forbidden(hidden));
    }
    Ok(())
}

async fn certifications(
    tx: &mut Tx<'_>,
    scope: &ReportScope,
    params: &ReportParams,
    wanted: Option<&[i64]>,
) -> Result<Vec<CertificationRow>, ReportError> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.name, f.slug AS framework, c.status, u.display_name AS owner, \
                c.started_on, c.target_date, c.expires_on \
           FROM certifications c \
           JOIN frameworks f ON f.id = c.framework_id \
           LEFT JOIN users u ON u.organization_id = c.organization_id AND u.id = c.owner_id \
          WHERE c.organization_id = $1 \
            AND ($2::text IS NULL OR f.slug = $2) \
            AND ($3::bigint[] IS NULL OR c.id = ANY($3)) \
          ORDER BY c.id",
    )
    .bind(scope.organization_id)
    .bind(&params.framework)
    .bind(wanted)
    .fetch_all(&mut **tx)
    .await?)
}

/// The requirements of the certifications in scope, each with what reports
/// need of its accepted evidence: the newest valid on the report date (so
/// whether it is covered, and how fresh), whether any was valid one interval
/// earlier, whether coverage lasts past the horizon, and otherwise the last
/// day covered. Validity is the domain's rule in its SQL form
/// (`certscope_evidence_counts` and `certscope_evidence_in_window`, migration
/// 0005). Each answer is a short backward scan of `evidence_coverage_idx`
/// (migration 0007) from the day asked, newest collection first: the first
/// valid entry ends it, so the cost follows the number of requirements, not
/// of evidence rows. The last day covered is read only for requirements whose
/// coverage ends by the horizon.
async fn requirements(
    tx: &mut Tx<'_>,
    scope: &ReportScope,
    params: &ReportParams,
    cert_ids: &[i64],
) -> Result<Vec<RequirementRow>, ReportError> {
    Ok(sqlx::query_as(
        "WITH req AS ( \
             SELECT r.id, r.certification_id, f.slug AS framework, ct.family_key, ct.family_title, \
                    ct.display_id AS control, ct.title, u.display_name AS owner, r.due_date \
               FROM requirements r \
               JOIN controls ct ON ct.id = r.control_id \
               JOIN frameworks f ON f.id = ct.framework_id \
               LEFT JOIN users u ON u.organization_id = r.organization_id AND u.id = r.owner_id \
              WHERE r.organization_id = $1 AND r.certification_id = ANY($2)) \
         SELECT req.*, now_.collected_on AS newest, prev.hit IS NOT NULL AS evidenced_prev, \
                coalesce(now_.beyond, false) OR older.hit IS NOT NULL AS covered_beyond, \
                lapse.covered_until \
           FROM req \
           LEFT JOIN LATERAL ( \
                SELECT e.collected_on, (e.expires_on IS NULL OR e.expires_on > $5) AS beyond \
                  FROM evidence e \
                 WHERE e.organization_id = $1 AND e.requirement_id = req.id \
                   AND certscope_evidence_counts(e.status) \
                   AND certscope_evidence_in_window(e.collected_on, e.expires_on, $3) \
                 ORDER BY e.collected_on DESC LIMIT 1) now_ ON true \
           LEFT JOIN LATERAL ( \
                SELECT true AS hit FROM evidence e \
                 WHERE e.organization_id = $1 AND e.requirement_id = req.id \
                   AND certscope_evidence_counts(e.status) \
                   AND certscope_evidence_in_window(e.collected_on, e.expires_on, $4) \
                 ORDER BY e.collected_on DESC LIMIT 1) prev ON true \
           LEFT JOIN LATERAL ( \
                SELECT true AS hit FROM evidence e \
                 WHERE now_.beyond IS NOT TRUE \
                   AND e.organization_id = $1 AND e.requirement_id = req.id \
                   AND certscope_evidence_counts(e.status) \
                   AND e.collected_on <= $3 AND (e.expires_on IS NULL OR e.expires_on > $5) \
                 ORDER BY e.collected_on DESC LIMIT 1) older ON true \
           LEFT JOIN LATERAL ( \
                SELECT max(e.expires_on) AS covered_until FROM evidence e \
                 WHERE now_.beyond IS NOT TRUE AND older.hit IS NULL \
                   AND e.organization_id = $1 AND e.requirement_id = req.id \
                   AND certscope_evidence_counts(e.status) AND e.collected_on <= $3) lapse ON true \
          ORDER BY req.id",
    )
    .bind(scope.organization_id)
    .bind(cert_ids)
    .bind(params.as_of)
    .bind(params.previous_as_of())
    .bind(params.horizon())
    .fetch_all(&mut **tx)
    .await?)
}

/// Risks: all of the organization's, or (`scoped`) those linked to the
/// certifications in scope.
async fn risks(
    tx: &mut Tx<'_>,
    scope: &ReportScope,
    cert_ids: &[i64],
    scoped: bool,
) -> Result<Vec<RiskRow>, ReportError> {
    Ok(sqlx::query_as(
        "SELECT k.id, k.title, k.category, u.display_name AS owner, k.inherent_likelihood, \
                k.inherent_impact, k.residual_likelihood, k.residual_impact, k.treatment, k.due_date \
           FROM risks k \
           LEFT JOIN users u ON u.organization_id = k.organization_id AND u.id = k.owner_id \
          WHERE k.organization_id = $1 \
            AND (NOT $2 OR EXISTS (SELECT 1 FROM risk_requirements rr \
                                     JOIN requirements r ON r.id = rr.requirement_id \
                                    WHERE rr.risk_id = k.id AND r.certification_id = ANY($3))) \
          ORDER BY k.id",
    )
    .bind(scope.organization_id)
    .bind(scoped)
    .bind(cert_ids)
    .fetch_all(&mut **tx)
    .await?)
}

/// The evidence behind coverage that lapsed or lapses within the horizon.
async fn lapsing_evidence(
    tx: &mut Tx<'_>,
    scope: &ReportScope,
    params: &ReportParams,
    rows: &[RequirementRow],
) -> Result<Vec<EvidenceRow>, ReportError> {
    let horizon = params.horizon();
    let lapsing: Vec<i64> = rows
        .iter()
        .filter(|r| !r.covered_beyond)
        .filter(|r| r.covered_until.is_some_and(|until| until <= horizon))
        .map(|r| r.id)
        .collect();
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (e.requirement_id) e.id, e.requirement_id, e.title, e.expires_on \
           FROM evidence e \
          WHERE e.organization_id = $1 AND certscope_evidence_counts(e.status) \
            AND e.requirement_id = ANY($2) AND e.collected_on <= $3 \
          ORDER BY e.requirement_id, e.expires_on DESC NULLS FIRST, e.id DESC",
    )
    .bind(scope.organization_id)
    .bind(&lapsing)
    .bind(params.as_of)
    .fetch_all(&mut **tx)
    .await?)
}

async fn ratings(
    tx: &mut Tx<'_>,
    organization_id: i64,
    ids: &[i64],
) -> Result<RiskRatings, ReportError> {
    let rows: Vec<RatingRow> = sqlx::query_as(
        "SELECT risk_id, ((changed_at AT TIME ZONE 'UTC')::date - date '1970-01-01') AS day, \
                inherent_likelihood, inherent_impact, residual_likelihood, residual_impact \
           FROM risk_ratings \
          WHERE organization_id = $1 AND risk_id = ANY($2) \
          ORDER BY risk_id, changed_at, id",
    )
    .bind(organization_id)
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(RiskRatings::new(rows.into_iter().map(|r| {
        (
            r.risk_id,
            Assessment {
                day: r.day,
                inherent: Rating::new(r.inherent_likelihood.into(), r.inherent_impact.into()),
                residual: Rating::new(r.residual_likelihood.into(), r.residual_impact.into()),
            },
        )
    })))
}

async fn history(
    tx: &mut Tx<'_>,
    organization_id: i64,
    kind: Kind,
    ids: &[i64],
) -> Result<DataFrame, ReportError> {
    let rows: Vec<HistoryRow> = sqlx::query_as(HISTORY_SQL)
        .bind(organization_id)
        .bind(kind.as_str())
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    let mut entity_id = Vec::with_capacity(rows.len());
    let mut days = Vec::with_capacity(rows.len());
    let mut status = Vec::with_capacity(rows.len());
    for row in rows {
        entity_id.push(row.entity_id);
        days.push(row.day);
        status.push(row.status);
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("entity_id".into(), entity_id),
        Column::new("day".into(), days),
        Column::new("status".into(), status),
    ])?)
}

fn requirement_frame(rows: Vec<RequirementRow>) -> Result<DataFrame, PolarsError> {
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut certification_id = Vec::with_capacity(n);
    let mut framework = Vec::with_capacity(n);
    let mut family_key = Vec::with_capacity(n);
    let mut family_title = Vec::with_capacity(n);
    let mut control = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut due = Vec::with_capacity(n);
    let mut evidenced = Vec::with_capacity(n);
    let mut evidenced_prev = Vec::with_capacity(n);
    let mut newest = Vec::with_capacity(n);
    let mut covered_until = Vec::with_capacity(n);
    for r in rows {
        id.push(r.id);
        certification_id.push(r.certification_id);
        framework.push(r.framework);
        family_key.push(r.family_key);
        family_title.push(r.family_title);
        control.push(r.control);
        title.push(r.title);
        owner.push(r.owner);
        due.push(r.due_date.map(day));
        evidenced.push(r.newest.is_some());
        evidenced_prev.push(r.evidenced_prev);
        newest.push(r.newest.map(day));
        covered_until.push(if r.covered_beyond {
            Some(i32::MAX)
        } else {
            r.covered_until.map(day)
        });
    }
    DataFrame::new_infer_height(vec![
        Column::new("id".into(), id),
        Column::new("certification_id".into(), certification_id),
        Column::new("framework".into(), framework),
        Column::new("family_key".into(), family_key),
        Column::new("family_title".into(), family_title),
        Column::new("control".into(), control),
        Column::new("title".into(), title),
        Column::new("owner".into(), owner),
        Column::new("due".into(), due),
        Column::new("evidenced".into(), evidenced),
        Column::new("evidenced_prev".into(), evidenced_prev),
        Column::new("newest_evidence".into(), newest),
        Column::new("covered_until".into(), covered_until),
    ])
}
