//! Live events from committed changes: the deriver reads `change_log` by snapshot
//! difference (as the index does) from a cursor of its own, turns status changes
//! into events and appends them in the transaction that moves the cursor, so a
//! crash can neither lose nor duplicate one. Every append (derived events,
//! operator notices, index rebuilds) first locks the cursor row, so event ids are
//! assigned in commit order and readers that follow `id > last` never skip one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::change_feed::{self, Change, FeedError};
use crate::position::Snapshot;

/// The channel `events` appends notify on (payload: the last id appended).
pub const EVENTS_CHANNEL: &str = "certscope_events";

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("database error in the event deriver")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// How many events to keep for clients that resume.
#[derive(Debug, Clone, Copy)]
pub struct EventRetention {
    pub max_age: Duration,
    pub max_events: i64,
}

impl Default for EventRetention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            max_events: 100_000,
        }
    }
}

/// Settings of the deriver.
#[derive(Debug, Clone)]
pub struct DeriverConfig {
    pub retention: EventRetention,
    /// Time to let a burst of changes accumulate before reading them.
    pub batch_window: Duration,
    pub poll_interval: Duration,
    pub page_size: i64,
    pub prune_interval: Duration,
}

impl Default for DeriverConfig {
    fn default() -> Self {
        Self {
            retention: EventRetention::default(),
            batch_window: Duration::from_millis(5),
            poll_interval: Duration::from_secs(1),
            page_size: 5_000,
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub organization_id: Option<i64>,
    pub certification_id: Option<i64>,
    /// Other certifications the event concerns (a risk's linked ones): their
    /// rooms carry it and their auditors see it.
    pub related_certifications: Vec<i64>,
    pub user_ids: Vec<i64>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
    pub dedupe_key: Option<String>,
}

/// Locks the cursor row for this transaction: appends are serialized.
async fn lock_cursor(conn: &mut PgConnection) -> Result<(Snapshot, String), EventError> {
    let (snapshot, today): (String, String) =
        sqlx::query_as("SELECT snapshot, expiry_swept_until::text FROM event_cursor FOR UPDATE")
            .fetch_one(&mut *conn)
            .await?;
    Ok((Snapshot::parse(&snapshot).map_err(FeedError::from)?, today))
}

/// Appends `events` in order; the caller holds the cursor lock. Returns the ids.
async fn insert(
    conn: &mut PgConnection,
    position: &str,
    events: &[NewEvent],
) -> Result<Vec<i64>, EventError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let orgs: Vec<Option<i64>> = events.iter().map(|e| e.organization_id).collect();
    let certs: Vec<Option<i64>> = events.iter().map(|e| e.certification_id).collect();
    // arrays of arrays must be rectangular: id lists travel as JSON
    let users: Vec<Value> = events.iter().map(|e| json!(e.user_ids)).collect();
    let all_certs: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut seen = HashSet::new();
            let all: Vec<i64> = e
                .certification_id
                .into_iter()
                .chain(e.related_certifications.iter().copied())
                .filter(|c| seen.insert(*c))
                .collect();
            json!(all)
        })
        .collect();
    let at: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let data: Vec<Value> = events.iter().map(|e| e.data.clone()).collect();
    let keys: Vec<Option<String>> = events.iter().map(|e| e.dedupe_key.clone()).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (kind, organization_id, certification_id, certification_ids, user_ids, \
                             position, occurred_at, data, dedupe_key) \
         SELECT k, o, c, ARRAY(SELECT jsonb_array_elements_text(cs)::bigint), \
                ARRAY(SELECT jsonb_array_elements_text(u)::bigint), $8, a, d, dk \
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::jsonb[], $5::timestamptz[], $6::jsonb[], \
                     $7::text[], $9::jsonb[]) \
              WITH ORDINALITY AS t(k, o, c, u, a, d, dk, cs, n) \
         ORDER BY n \
         ON CONFLICT (dedupe_key) DO NOTHING \
         RETURNING id",
    )
    .bind(&kinds)
    .bind(&orgs)
    .bind(&certs)
    .bind(&users)
    .bind(&at)
    .bind(&data)
    .bind(&keys)
    .bind(position)
    .bind(&all_certs)
    .fetch_all(&mut *conn)
    .await?;
    if let Some(last) = ids.iter().max() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENTS_CHANNEL)
            .bind(last.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(ids)
}

/// Appends events that come from no change (operator notices, index rebuilds).
/// Returns the ids given.
pub async fn append(pool: &PgPool, events: &[NewEvent]) -> Result<Vec<i64>, EventError> {
    let mut tx = pool.begin().await?;
    lock_cursor(&mut tx).await?;
    let position = change_feed::current_snapshot(&mut *tx).await?;
    let ids = insert(&mut tx, &position.to_string(), events).await?;
    tx.commit().await?;
    Ok(ids)
}

/// An operator notice, to one organization or (None) to everyone.
pub fn notice(
    organization_id: Option<i64>,
    severity: &str,
    message: &str,
    expires_at: Option<DateTime<Utc>>,
) -> NewEvent {
    NewEvent {
        kind: "notice",
        organization_id,
        certification_id: None,
        related_certifications: Vec::new(),
        user_ids: Vec::new(),
        occurred_at: Utc::now(),
        data: json!({"severity": severity, "message": message, "expires_at": expires_at}),
        dedupe_key: None,
    }
}

/// What one derive pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeriveReport {
    pub changes: u64,
    pub events: u64,
}

/// One pass: every change committed since the cursor becomes events, appended
/// with the new cursor in one transaction.
pub async fn derive(pool: &PgPool, page_size: i64) -> Result<DeriveReport, EventError> {
    // look before locking: taking the row lock costs a transaction id, which an
    // idle service polling every second should not burn (nor make the index
    // position move for nothing)
    {
        let mut conn = pool.acquire().await?;
        let text: String = sqlx::query_scalar("SELECT snapshot FROM event_cursor")
            .fetch_one(&mut *conn)
            .await?;
        let from = Snapshot::parse(&text).map_err(FeedError::from)?;
        let to = change_feed::current_snapshot(&mut *conn).await?;
        let pruned_below = change_feed::pruned_below(&mut *conn).await?;
        if to == from
            || (from.xmin >= pruned_below
                && change_feed::read_page(&mut *conn, &from, &to, None, 1)
                    .await?
                    .is_empty())
        {
            return Ok(DeriveReport::default());
        }
    }
    let mut tx = pool.begin().await?;
    let (from, _) = lock_cursor(&mut tx).await?;
    let to = change_feed::current_snapshot(&mut *tx).await?;
    if to == from {
        return Ok(DeriveReport::default());
    }
    let pruned_below = change_feed::pruned_below(&mut *tx).await?;
    if from.xmin < pruned_below {
        // the changes since the cursor are gone: every client must resync
        tracing::warn!(
            cursor = from.xmin,
            pruned_below,
            "event cursor is older than the retained change log; skipping ahead"
        );
        sqlx::query(
            "UPDATE event_cursor SET snapshot = $1, \
             pruned_through = greatest(pruned_through, (SELECT coalesce(max(id), 0) FROM events))",
        )
        .bind(to.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(DeriveReport::default());
    }
    let position = to.to_string();
    let mut report = DeriveReport::default();
    let mut cursor = None;
    loop {
        let page = change_feed::read_page(&mut *tx, &from, &to, cursor, page_size).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.xid, last.seq));
        report.changes += page.len() as u64;
        let events = events_of(&mut tx, &page).await?;
        report.events += insert(&mut tx, &position, &events).await?.len() as u64;
        if (page.len() as i64) < page_size {
            break;
        }
    }
    sqlx::query("UPDATE event_cursor SET snapshot = $1")
        .bind(&position)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(report)
}

/// Rows of a change page as events, in change order. Deleted rows (nothing left
/// to say whose they were) and quiet bulk loads announce nothing.
async fn events_of(conn: &mut PgConnection, page: &[Change]) -> Result<Vec<NewEvent>, EventError> {
    let ids = |entity: &str| -> Vec<i64> {
        let mut v: Vec<i64> = page
            .iter()
            .filter(|c| c.entity == entity && c.op != 'D' && !c.quiet)
            .map(|c| c.row_id)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let requirements: HashMap<i64, RequirementRow> = lookup(conn, &ids("requirement")).await?;
    let evidence: HashMap<i64, EvidenceRow> = lookup(conn, &ids("evidence")).await?;
    let risks: HashMap<i64, RiskRow> = lookup(conn, &ids("risk")).await?;
    let certifications: HashMap<i64, CertificationRow> =
        lookup(conn, &ids("certification")).await?;
    // completion of every certification an event touches
    let mut touched: HashSet<i64> = certifications.keys().copied().collect();
    touched.extend(requirements.values().map(|r| r.certification_id));
    let completion = completion(conn, &touched.into_iter().collect::<Vec<_>>()).await?;
    let pct = |cert: i64| completion.get(&cert).copied();

    let mut out = Vec::new();
    for c in page.iter().filter(|c| c.op != 'D' && !c.quiet) {
        let status_changed = c.op == 'I' || c.old_status != c.new_status;
        let event = match c.entity.as_str() {
            "requirement" if status_changed => requirements.get(&c.row_id).map(|r| NewEvent {
                kind: "requirement.status_changed",
                organization_id: Some(r.organization_id),
                certification_id: Some(r.certification_id),
                related_certifications: Vec::new(),
                user_ids: r.owner_id.into_iter().collect(),
                occurred_at: c.recorded_at,
                data: json!({
                    "requirement_id": c.row_id,
                    "control": r.control,
                    "title": r.title,
                    "previous": c.old_status,
                    "status": c.new_status,
                    "certification_completion_pct": pct(r.certification_id),
                }),
                dedupe_key: None,
            }),
            "certification" if status_changed => {
                certifications.get(&c.row_id).map(|r| NewEvent {
                    kind: "certification.status_changed",
                    organization_id: Some(r.organization_id),
                    certification_id: Some(c.row_id),
                    related_certifications: Vec::new(),
                    user_ids: r.owner_id.into_iter().collect(),
                    occurred_at: c.recorded_at,
                    data: json!({
                        "certification_id": c.row_id,
                        "name": r.name,
                        "previous": c.old_status,
                        "status": c.new_status,
                        "completion_pct": pct(c.row_id),
                    }),
                    dedupe_key: None,
                })
            }
            "evidence" if status_changed => evidence.get(&c.row_id).map(|r| NewEvent {
                kind: if c.op == 'I' {
                    "evidence.submitted"
                } else {
                    "evidence.reviewed"
                },
                organization_id: Some(r.organization_id),
                certification_id: Some(r.certification_id),
                related_certifications: Vec::new(),
                user_ids: r.users(),
                occurred_at: c.recorded_at,
                data: json!({
                    "evidence_id": c.row_id,
                    "requirement_id": r.requirement_id,
                    "title": r.title,
                    "previous": c.old_status,
                    "status": c.new_status,
                }),
                dedupe_key: None,
            }),
            "risk" if status_changed || c.old_detail != c.new_detail => {
                risks.get(&c.row_id).map(|r| NewEvent {
                    kind: if c.op == 'I' {
                        "risk.created"
                    } else {
                        "risk.changed"
                    },
                    organization_id: Some(r.organization_id),
                    certification_id: None,
                    related_certifications: r.certification_ids.clone(),
                    user_ids: r.owner_id.into_iter().collect(),
                    occurred_at: c.recorded_at,
                    data: json!({
                        "risk_id": c.row_id,
                        "title": r.title,
                        "previous": c.old_detail.as_ref().map(|d| risk_levels(c.old_status.as_deref(), d)),
                        "current": c.new_detail.as_ref().map(|d| risk_levels(c.new_status.as_deref(), d)),
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

/// A risk's status and levels as events show them: likelihood, impact and their
/// product (the score the heat-map bands), inherent and residual.
fn risk_levels(status: Option<&str>, detail: &Value) -> Value {
    let level = |l: &str, i: &str| {
        let (l, i) = (detail[l].as_i64(), detail[i].as_i64());
        json!({"likelihood": l, "impact": i, "score": l.zip(i).map(|(l, i)| l * i)})
    };
    json!({
        "status": status,
        "inherent": level("inherent_likelihood", "inherent_impact"),
        "residual": level("residual_likelihood", "residual_impact"),
    })
}

/// Rows looked up by id for a page of changes: `SQL` takes the ids as `$1`.
trait Keyed {
    const SQL: &'static str;
    fn id(&self) -> i64;
}

async fn lookup<R>(conn: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, R>, EventError>
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

/// Completion of certifications: implemented requirements among the applicable
/// ones, in percent with one decimal (the reports' posture rule).
pub async fn completion(
    conn: &mut PgConnection,
    certifications: &[i64],
) -> Result<HashMap<i64, f64>, EventError> {
    if certifications.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT certification_id, \
                coalesce(round(100.0 * count(*) FILTER (WHERE status = 'implemented') \
                    / nullif(count(*) FILTER (WHERE status <> 'not_applicable'), 0), 1), 0)::float8 \
         FROM requirements WHERE certification_id = ANY($1) GROUP BY certification_id",
    )
    .bind(certifications)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

#[derive(sqlx::FromRow)]
struct ExpiredRow {
    id: i64,
    organization_id: i64,
    certification_id: i64,
    requirement_id: i64,
    title: String,
    owner_id: Option<i64>,
    expires_on: String,
}

/// Announces evidence whose validity ended since the last sweep (`expires_on` is
/// the last valid day), once per item and day however many deriver run.
pub async fn sweep_expiry(pool: &PgPool) -> Result<u64, EventError> {
    let mut tx = pool.begin().await?;
    let (_, swept_until) = lock_cursor(&mut tx).await?;
    let rows: Vec<ExpiredRow> = sqlx::query_as(
        "SELECT e.id, e.organization_id, r.certification_id, e.requirement_id, e.title, \
                r.owner_id, e.expires_on::text AS expires_on \
         FROM evidence e JOIN requirements r ON r.id = e.requirement_id \
         WHERE e.expires_on >= $1::date AND e.expires_on < current_date \
         ORDER BY e.expires_on, e.id",
    )
    .bind(&swept_until)
    .fetch_all(&mut *tx)
    .await?;
    let events: Vec<NewEvent> = rows
        .into_iter()
        .map(|r| NewEvent {
            kind: "evidence.expired",
            organization_id: Some(r.organization_id),
            certification_id: Some(r.certification_id),
            related_certifications: Vec::new(),
            user_ids: r.owner_id.into_iter().collect(),
            occurred_at: Utc::now(),
            dedupe_key: Some(format!("evidence.expired:{}:{}", r.id, r.expires_on)),
            data: json!({
                "evidence_id": r.id,
                "requirement_id": r.requirement_id,
                "title": r.title,
                "expires_on": r.expires_on,
            }),
        })
        .collect();
    let position = change_feed::current_snapshot(&mut *tx).await?;
    let n = insert(&mut tx, &position.to_string(), &events).await?.len() as u64;
    sqlx::query(
        "UPDATE event_cursor SET expiry_swept_until = greatest(expiry_swept_until, current_date)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Deletes events past the retention (by age or count) and raises the horizon
/// resuming clients are checked against. Returns the events deleted.
pub async fn prune(pool: &PgPool, retention: EventRetention) -> Result<u64, EventError> {
    let mut tx = pool.begin().await?;
    lock_cursor(&mut tx).await?;
    let cut: Option<i64> = sqlx::query_scalar(
        "SELECT greatest( \
            (SELECT max(id) FROM events WHERE recorded_at < now() - make_interval(secs => $1)), \
            (SELECT id FROM events ORDER BY id DESC OFFSET $2 LIMIT 1))",
    )
    .bind(retention.max_age.as_secs_f64())
    .bind(retention.max_events)
    .fetch_one(&mut *tx)
    .await?;
    let Some(cut) = cut else {
        return Ok(0);
    };
    sqlx::query("UPDATE event_cursor SET pruned_through = greatest(pruned_through, $1)")
        .bind(cut)
        .execute(&mut *tx)
        .await?;
    let deleted = sqlx::query("DELETE FROM events WHERE id <= $1")
        .bind(cut)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

/// Runs the deriver until cancelled: wakes on change notifications (or a poll),
/// derives, sweeps expiry at each new day and prunes now and then. Errors are
/// logged and retried; nothing is skipped.
pub fn spawn_deriver(
    pool: PgPool,
    config: DeriverConfig,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener: Option<PgListener> = None;
        let mut last_prune = tokio::time::Instant::now() - config.prune_interval;
        let mut last_sweep: Option<chrono::NaiveDate> = None;
        let mut failures = 0u32;
        loop {
            if listener.is_none() {
                match PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l.listen(crate::NOTIFY_CHANNEL).await {
                        Ok(()) => listener = Some(l),
                        Err(e) => {
                            tracing::warn!(error = %e, "event deriver cannot LISTEN; polling")
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "event deriver cannot connect; polling"),
                }
            }
            let today = Utc::now().date_naive();
            if last_sweep != Some(today) {
                match sweep_expiry(&pool).await {
                    Ok(n) => {
                        last_sweep = Some(today);
                        if n > 0 {
                            tracing::info!(events = n, "announced expired evidence");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "evidence expiry sweep failed"),
                }
            }
            match derive(&pool, config.page_size).await {
                Ok(r) => {
                    failures = 0;
                    if r.events > 0 {
                        tracing::debug!(changes = r.changes, events = r.events, "events derived");
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "event derivation failed; retrying");
                }
            }
            if last_prune.elapsed() > config.prune_interval {
                match prune(&pool, config.retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned events"),
                    Err(e) => tracing::warn!(error = %e, "event pruning failed"),
                }
                last_prune = tokio::time::Instant::now();
            }
            let backoff = Duration::from_millis(100 * u64::from(failures.min(50)));
            let woke = match listener.as_mut() {
                Some(l) if failures == 0 => tokio::select! {
                    () = cancel.cancelled() => break,
                    n = l.recv() => n.is_ok(),
                    () = tokio::time::sleep(config.poll_interval) => true,
                },
                _ => tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(config.poll_interval.max(backoff)) => true,
                },
            };
            if !woke {
                listener = None;
                continue;
            }
            tokio::time::sleep(config.batch_window).await;
            if let Some(l) = listener.as_mut() {
                while l.next_buffered().is_some() {}
            }
        }
        drop(listener);
        tracing::debug!("event deriver stopped");
    })
}
