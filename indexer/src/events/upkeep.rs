//! Keeping the event log: the daily announcement of expired evidence, and
//! pruning past the retention.

use chrono::Utc;
use sqlx::PgPool;

use super::{EventKind, EventRetention, NewEvent, insert, lock_cursor};
use crate::change_feed;
use crate::error::{During, IndexerError, Operation};

#[derive(sqlx::FromRow)]
struct ExpiredRow {
    id: i64,
    organization_id: i64,
    certification_id: i64,
    requirement_id: i64,
    title: String,
    owner_id: Option<i64>,
    expires_on: chrono::NaiveDate,
}

/// Announces evidence whose validity ended since the last sweep (`expires_on` is
/// the last valid day), once per item and day however many deriver run.
pub async fn sweep_expiry(pool: &PgPool) -> Result<u64, IndexerError> {
    let op = Operation::SweepingExpiry;
    let mut tx = pool.begin().await.during(op)?;
    let (_, swept_until) = lock_cursor(&mut tx, op).await?;
    let rows: Vec<ExpiredRow> = sqlx::query_as(
        "SELECT e.id, e.organization_id, r.certification_id, e.requirement_id, e.title, \
                r.owner_id, e.expires_on \
         FROM evidence e JOIN requirements r ON r.id = e.requirement_id \
         WHERE e.expires_on >= $1::date AND certscope_expired_by(e.expires_on, current_date) \
         ORDER BY e.expires_on, e.id",
    )
    .bind(&swept_until)
    .fetch_all(&mut *tx)
    .await
    .during(op)?;
    let events: Vec<NewEvent> = rows
        .into_iter()
        .map(|r| NewEvent {
            kind: EventKind::EvidenceExpired,
            organization_id: Some(r.organization_id),
            certification_id: Some(r.certification_id),
            related_certifications: Vec::new(),
            user_ids: r.owner_id.into_iter().collect(),
            occurred_at: Utc::now(),
            dedupe_key: Some(format!("evidence.expired:{}:{}", r.id, r.expires_on)),
            data: super::payload::data(&super::payload::EvidenceExpired {
                evidence_id: r.id,
                requirement_id: r.requirement_id,
                title: r.title,
                expires_on: r.expires_on,
            }),
        })
        .collect();
    let position = change_feed::current_snapshot(&mut *tx, op).await?;
    let n = insert(&mut tx, &position.to_string(), &events)
        .await
        .during(op)?
        .len() as u64;
    sqlx::query(
        "UPDATE event_cursor SET expiry_swept_until = greatest(expiry_swept_until, current_date)",
    )
    .execute(&mut *tx)
    .await
    .during(op)?;
    tx.commit().await.during(op)?;
    Ok(n)
}

/// Deletes events past the retention (by age or count) and raises the horizon
/// resuming clients are checked against. Returns the events deleted.
pub async fn prune(pool: &PgPool, retention: EventRetention) -> Result<u64, IndexerError> {
    let op = Operation::PruningEvents;
    let mut tx = pool.begin().await.during(op)?;
    lock_cursor(&mut tx, op).await?;
    let cut: Option<i64> = sqlx::query_scalar(
        "SELECT greatest( \
            (SELECT max(id) FROM events WHERE recorded_at < now() - make_interval(secs => $1)), \
            (SELECT id FROM events ORDER BY id DESC OFFSET $2 LIMIT 1))",
    )
    .bind(retention.max_age.as_secs_f64())
    .bind(retention.max_events)
    .fetch_one(&mut *tx)
    .await
    .during(op)?;
    let Some(cut) = cut else {
        return Ok(0);
    };
    sqlx::query("UPDATE event_cursor SET pruned_through = greatest(pruned_through, $1)")
        .bind(cut)
        .execute(&mut *tx)
        .await
        .during(op)?;
    let deleted = sqlx::query("DELETE FROM events WHERE id <= $1")
        .bind(cut)
        .execute(&mut *tx)
        .await
        .during(op)?
        .rows_affected();
    tx.commit().await.during(op)?;
    Ok(deleted)
}
