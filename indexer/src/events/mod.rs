//! Live events from committed changes: the deriver reads `change_log` by snapshot
//! difference (as the index does) from a cursor of its own, turns status changes
//! into events and appends them in the transaction that moves the cursor, so a
//! crash can neither lose nor duplicate one. Every append (derived events,
//! operator notices, index rebuilds) first locks the cursor row, so event ids are
//! assigned in commit order and readers that follow `id > last` never skip one.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

mod derive;
pub mod payload;
mod upkeep;

use crate::change_feed;
use crate::error::{During, IndexerError, Operation};
use crate::position::Snapshot;
pub use upkeep::{prune, sweep_expiry};

/// The channel `events` appends notify on (payload: the last id appended).
pub const EVENTS_CHANNEL: &str = "certscope_events";

/// What an event says happened: the `kind` of every event, on every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    CertificationStatusChanged,
    RequirementStatusChanged,
    EvidenceSubmitted,
    EvidenceReviewed,
    EvidenceExpired,
    RiskCreated,
    RiskChanged,
    IndexRebuilt,
    Notice,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::CertificationStatusChanged,
        EventKind::RequirementStatusChanged,
        EventKind::EvidenceSubmitted,
        EventKind::EvidenceReviewed,
        EventKind::EvidenceExpired,
        EventKind::RiskCreated,
        EventKind::RiskChanged,
        EventKind::IndexRebuilt,
        EventKind::Notice,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::CertificationStatusChanged => "certification.status_changed",
            EventKind::RequirementStatusChanged => "requirement.status_changed",
            EventKind::EvidenceSubmitted => "evidence.submitted",
            EventKind::EvidenceReviewed => "evidence.reviewed",
            EventKind::EvidenceExpired => "evidence.expired",
            EventKind::RiskCreated => "risk.created",
            EventKind::RiskChanged => "risk.changed",
            EventKind::IndexRebuilt => "index.rebuilt",
            EventKind::Notice => "notice",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Operator notices and system announcements: the `notices` room.
    pub const fn is_notice(self) -> bool {
        matches!(self, EventKind::Notice | EventKind::IndexRebuilt)
    }
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
    pub kind: EventKind,
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
async fn lock_cursor(
    conn: &mut PgConnection,
    op: Operation,
) -> Result<(Snapshot, String), IndexerError> {
    let (snapshot, today): (String, String) =
        sqlx::query_as("SELECT snapshot, expiry_swept_until::text FROM event_cursor FOR UPDATE")
            .fetch_one(&mut *conn)
            .await
            .during(op)?;
    Ok((Snapshot::parse(&snapshot).during(op)?, today))
}

/// Appends `events` in order; the caller holds the cursor lock. Returns the ids.
async fn insert(
    conn: &mut PgConnection,
    position: &str,
    events: &[NewEvent],
) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
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
pub async fn append(pool: &PgPool, events: &[NewEvent]) -> Result<Vec<i64>, IndexerError> {
    let op = Operation::AppendingEvents;
    let mut tx = pool.begin().await.during(op)?;
    lock_cursor(&mut tx, op).await?;
    let position = change_feed::current_snapshot(&mut *tx, op).await?;
    let ids = insert(&mut tx, &position.to_string(), events)
        .await
        .during(op)?;
    tx.commit().await.during(op)?;
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
        kind: EventKind::Notice,
        organization_id,
        certification_id: None,
        related_certifications: Vec::new(),
        user_ids: Vec::new(),
        occurred_at: Utc::now(),
        data: payload::data(&payload::Notice {
            severity: severity.to_owned(),
            message: message.to_owned(),
            expires_at,
        }),
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
pub async fn derive(pool: &PgPool, page_size: i64) -> Result<DeriveReport, IndexerError> {
    let op = Operation::DerivingEvents;
    // look before locking: taking the row lock costs a transaction id, which an
    // idle service polling every second should not burn (nor make the index
    // position move for nothing)
    {
        let mut conn = pool.acquire().await.during(op)?;
        let text: String = sqlx::query_scalar("SELECT snapshot FROM event_cursor")
            .fetch_one(&mut *conn)
            .await
            .during(op)?;
        let from = Snapshot::parse(&text).during(op)?;
        let to = change_feed::current_snapshot(&mut *conn, op).await?;
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
    let mut tx = pool.begin().await.during(op)?;
    let (from, _) = lock_cursor(&mut tx, op).await?;
    let to = change_feed::current_snapshot(&mut *tx, op).await?;
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
        .await
        .during(op)?;
        tx.commit().await.during(op)?;
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
        let events = derive::events_of(&mut tx, &page).await.during(op)?;
        report.events += insert(&mut tx, &position, &events).await.during(op)?.len() as u64;
        if (page.len() as i64) < page_size {
            break;
        }
    }
    sqlx::query("UPDATE event_cursor SET snapshot = $1")
        .bind(&position)
        .execute(&mut *tx)
        .await
        .during(op)?;
    tx.commit().await.during(op)?;
    Ok(report)
}

/// How often the deriver asks PostgreSQL for its date, to sweep expiry once
/// each new day.
const DATE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps expiry when PostgreSQL's date differs from the last sweep's. The
/// day is the database's, like the expiry rule itself
/// (`certscope_expired_by(…, current_date)`): a step of this service's clock
/// neither skips a day nor sweeps early (a repeated sweep announces nothing
/// twice: events carry a dedupe key).
async fn sweep_on_new_day(
    pool: &PgPool,
    last_sweep: &mut Option<chrono::NaiveDate>,
) -> Result<(), IndexerError> {
    let today: chrono::NaiveDate = sqlx::query_scalar("SELECT current_date")
        .fetch_one(pool)
        .await
        .during(Operation::SweepingExpiry)?;
    if *last_sweep != Some(today) {
        let n = sweep_expiry(pool).await?;
        *last_sweep = Some(today);
        if n > 0 {
            tracing::info!(events = n, "announced expired evidence");
        }
    }
    Ok(())
}

/// Runs the deriver until cancelled: wakes on change notifications (or a poll),
/// derives, sweeps expiry at each new day (PostgreSQL's) and prunes now and then. Errors are
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
        let mut last_date_check: Option<tokio::time::Instant> = None;
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
            if last_date_check.is_none_or(|t| t.elapsed() >= DATE_CHECK_INTERVAL) {
                match sweep_on_new_day(&pool, &mut last_sweep).await {
                    Ok(()) => last_date_check = Some(tokio::time::Instant::now()),
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
