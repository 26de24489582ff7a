//! Turning a page of committed changes into events: one lookup per row type,
//! then one event per status change (or risk rating change).

use std::collections::{HashMap, HashSet};

use certscope_domain::{Entity, RiskRating};
use serde_json::Value;
use sqlx::PgConnection;

use super::{EventKind, NewEvent, payload};
use crate::change_feed::{Change, Op};

/// Rows of a change page as events, in change order. Deleted rows (nothing left
/// to say whose they were) and quiet bulk loads announce nothing.
pub(super) async fn events_of(
    conn: &mut PgConnection,
    page: &[Change],
) -> Result<Vec<NewEvent>, sqlx::Error> {
    let ids = |entity: Entity| -> Vec<i64> {
        let mut v: Vec<i64> = page
            .iter()
            .filter(|c| c.entity == entity && c.op != Op::Delete && !c.quiet)
            .map(|c| c.row_id)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let requirements: HashMap<i64, RequirementRow> =
        lookup(conn, &ids(Entity::Requirement)).await?;
    let evidence: HashMap<i64, EvidenceRow> = lookup(conn, &ids(Entity::Evidence)).await?;
    let risks: HashMap<i64, RiskRow> = lookup(conn, &ids(Entity::Risk)).await?;
    let certifications: HashMap<i64, CertificationRow> =
        lookup(conn, &ids(Entity::Certification)).await?;
    // completion of every certification an event touches
    let mut touched: HashSet<i64> = certifications.keys().copied().collect();
    touched.extend(requirements.values().map(|r| r.certification_id));
    let completion = completion(conn, &touched.into_iter().collect::<Vec<_>>()).await?;
    let pct = |cert: i64| completion.get(&cert).copied();

    let mut out = Vec::new();
    for c in page.iter().filter(|c| c.op != Op::Delete && !c.quiet) {
        let status_changed = c.op == Op::Insert || c.old_status != c.new_status;
        let event = match c.entity {
            Entity::Requirement if status_changed => {
                requirements.get(&c.row_id).map(|r| NewEvent {
                    kind: EventKind::RequirementStatusChanged,
                    organization_id: Some(r.organization_id),
                    certification_id: Some(r.certification_id),
                    related_certifications: Vec::new(),
                    user_ids: r.owner_id.into_iter().collect(),
                    occurred_at: c.recorded_at,
                    data: payload::data(&payload::RequirementStatusChanged {
                        requirement_id: c.row_id,
                        control: r.control.clone(),
                        title: r.title.clone(),
                        previous: c.old_status.clone(),
                        status: c.new_status.clone(),
                        certification_completion_pct: pct(r.certification_id),
                    }),
                    dedupe_key: None,
                })
            }
            Entity::Certification if status_changed => {
                certifications.get(&c.row_id).map(|r| NewEvent {
                    kind: EventKind::CertificationStatusChanged,
                    organization_id: Some(r.organization_id),
                    certification_id: Some(c.row_id),
                    related_certifications: Vec::new(),
                    user_ids: r.owner_id.into_iter().collect(),
                    occurred_at: c.recorded_at,
                    data: payload::data(&payload::CertificationStatusChanged {
                        certification_id: c.row_id,
                        name: r.name.clone(),
                        previous: c.old_status.clone(),
                        status: c.new_status.clone(),
                        completion_pct: pct(c.row_id),
                    }),
                    dedupe_key: None,
                })
            }
            Entity::Evidence if status_changed => evidence.get(&c.row_id).map(|r| NewEvent {
                kind: if c.op == Op::Insert {
                    EventKind::EvidenceSubmitted
                } else {
                    EventKind::EvidenceReviewed
                },
                organization_id: Some(r.organization_id),
                certification_id: Some(r.certification_id),
                related_certifications: Vec::new(),
                user_ids: r.users(),
                occurred_at: c.recorded_at,
                data: payload::data(&payload::EvidenceStatusChanged {
                    evidence_id: c.row_id,
                    requirement_id: r.requirement_id,
                    title: r.title.clone(),
                    previous: c.old_status.clone(),
                    status: c.new_status.clone(),
                }),
                dedupe_key: None,
            }),
            Entity::Risk if status_changed || c.old_detail != c.new_detail => {
                risks.get(&c.row_id).map(|r| NewEvent {
                    kind: if c.op == Op::Insert {
                        EventKind::RiskCreated
                    } else {
                        EventKind::RiskChanged
                    },
                    organization_id: Some(r.organization_id),
                    certification_id: None,
                    related_certifications: r.certification_ids.clone(),
                    user_ids: r.owner_id.into_iter().collect(),
                    occurred_at: c.recorded_at,
                    data: payload::data(&payload::RiskChanged {
                        risk_id: c.row_id,
                        title: r.title.clone(),
                        previous: c
                            .old_detail
                            .as_ref()
                            .map(|d| risk_levels(c.old_status.as_deref(), d)),
                        current: c
                            .new_detail
                            .as_ref()
                            .map(|d| risk_levels(c.new_status.as_deref(), d)),
                    }),
                    dedupe_key: None,
                })
            }
            _ => None,
        };
        out.extend(event);
    }
    Ok(out)
}

/// A risk's status and ratings as events show them: likelihood, impact, their
/// product and its level (the domain's banding, as on heat-maps and facets),
/// inherent and residual.
fn risk_levels(status: Option<&str>, detail: &Value) -> payload::RiskState {
    let level = |l: &str, i: &str| match (detail[l].as_i64(), detail[i].as_i64()) {
        (Some(l), Some(i)) => Some(RiskRating::new(l, i)),
        _ => None,
    };
    payload::RiskState {
        status: status.map(str::to_owned),
        inherent: level("inherent_likelihood", "inherent_impact"),
        residual: level("residual_likelihood", "residual_impact"),
    }
}

/// Rows looked up by id for a page of changes: `SQL` takes the ids as `$1`.
trait Keyed {
    const SQL: &'static str;
    fn id(&self) -> i64;
}

async fn lookup<R>(conn: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, R>, sqlx::Error>
where
    R: Keyed + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<R> = sqlx::query_as(R::SQL)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id(), r)).collect())
}

#[derive(sqlx::FromRow)]
struct RequirementRow {
    id: i64,
    organization_id: i64,
    certification_id: i64,
    owner_id: Option<i64>,
    control: String,
    title: String,
}

#[derive(sqlx::FromRow)]
struct EvidenceRow {
    id: i64,
    organization_id: i64,
    certification_id: i64,
    requirement_id: i64,
    title: String,
    submitted_by: Option<i64>,
    requirement_owner: Option<i64>,
}

impl EvidenceRow {
    fn users(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .submitted_by
            .into_iter()
            .chain(self.requirement_owner)
            .collect();
        v.dedup();
        v
    }
}

#[derive(sqlx::FromRow)]
struct RiskRow {
    id: i64,
    organization_id: i64,
    owner_id: Option<i64>,
    title: String,
    certification_ids: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct CertificationRow {
    id: i64,
    organization_id: i64,
    owner_id: Option<i64>,
    name: String,
}

impl Keyed for RequirementRow {
    const SQL: &'static str = "SELECT r.id, r.organization_id, r.certification_id, r.owner_id, \
                c.display_id AS control, c.title \
         FROM requirements r JOIN controls c ON c.id = r.control_id WHERE r.id = ANY($1)";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Keyed for EvidenceRow {
    const SQL: &'static str = "SELECT e.id, e.organization_id, r.certification_id, e.requirement_id, e.title, \
                e.submitted_by, r.owner_id AS requirement_owner \
         FROM evidence e JOIN requirements r ON r.id = e.requirement_id WHERE e.id = ANY($1)";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Keyed for RiskRow {
    const SQL: &'static str = "SELECT k.id, k.organization_id, k.owner_id, k.title, \
                ARRAY(SELECT DISTINCT r.certification_id FROM risk_requirements rr \
                      JOIN requirements r ON r.id = rr.requirement_id \
                      WHERE rr.risk_id = k.id ORDER BY 1) AS certification_ids \
         FROM risks k WHERE k.id = ANY($1)";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Keyed for CertificationRow {
    const SQL: &'static str =
        "SELECT id, organization_id, owner_id, name FROM certifications WHERE id = ANY($1)";
    fn id(&self) -> i64 {
        self.id
    }
}

/// Completion of certifications (`certscope_completion`, the SQL twin of
/// `certscope_domain::Completion`).
pub async fn completion(
    conn: &mut PgConnection,
    certifications: &[i64],
) -> Result<HashMap<i64, f64>, sqlx::Error> {
    if certifications.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT certification_id, certscope_completion(status) \
         FROM requirements WHERE certification_id = ANY($1) GROUP BY certification_id",
    )
    .bind(certifications)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}
