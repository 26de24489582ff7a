//! Following the `events` table into the hub: the retained events at start, then
//! every event after the last one, woken by NOTIFY and by a poll.

use std::sync::Arc;
use std::time::Duration;

use certscope_indexer::events::EVENTS_CHANNEL;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{Event, EventHub, StoredEvent};

/// Events published at once.
const CHUNK: usize = 500;

/// `age`: how long ago the event was recorded, by PostgreSQL's own clock
/// (both ends read there, so the service's clock plays no part).
const COLUMNS: &str = "id, kind, organization_id, certification_id, certification_ids, user_ids, \
                       position, occurred_at, extract(epoch FROM now() - recorded_at)::float8 AS age, data";

async fn horizon(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT pruned_through, greatest(pruned_through, (SELECT coalesce(max(id), 0) FROM events)) \
         FROM event_cursor",
    )
    .fetch_one(pool)
    .await
}

async fn load(pool: &PgPool, hub: &EventHub) -> Result<(), sqlx::Error> {
    let (pruned_through, last_id) = horizon(pool).await?;
    let mut rows: Vec<StoredEvent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events \
         WHERE recorded_at > now() - make_interval(secs => $1) ORDER BY id DESC LIMIT $2"
    )))
    .bind(hub.config.retain_age.as_secs_f64())
    .bind(hub.config.retain_events as i64)
    .fetch_all(pool)
    .await?;
    rows.reverse();
    let events: Vec<Event> = rows
        .into_iter()
        .map(|r| Event::stored(r, hub.config.retain_age))
        .collect();
    tracing::info!(retained = events.len(), last_id, "live events loaded");
    hub.load(events, last_id, pruned_through);
    Ok(())
}

async fn catch_up(pool: &PgPool, hub: &EventHub) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    loop {
        let rows: Vec<StoredEvent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT {CHUNK}"
        )))
        .bind(hub.last_id())
        .fetch_all(pool)
        .await?;
        let n = rows.len();
        total += n;
        hub.publish(
            rows.into_iter()
                .map(|r| Event::stored(r, hub.config.retain_age))
                .collect(),
        );
        if n < CHUNK {
            return Ok(total);
        }
        // a burst: let connections drain between chunks
        tokio::task::yield_now().await;
    }
}

/// Follows the events table until cancelled.
pub fn spawn_feeder(
    pool: PgPool,
    hub: Arc<EventHub>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_secs(1);
        let mut failures = 0u32;
        loop {
            match load(&pool, &hub).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "cannot load live events; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(poll) => {}
                    }
                }
            }
        }
        let mut listener: Option<PgListener> = None;
        let mut polls = 0u32;
        loop {
            if listener.is_none() {
                match PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l.listen(EVENTS_CHANNEL).await {
                        Ok(()) => listener = Some(l),
                        Err(e) => tracing::warn!(error = %e, "event feed cannot LISTEN; polling"),
                    },
                    Err(e) => tracing::warn!(error = %e, "event feed cannot connect; polling"),
                }
            }
            if let Err(e) = catch_up(&pool, &hub).await {
                tracing::warn!(error = %e, "reading new events failed; retrying");
            }
            polls += 1;
            if polls.is_multiple_of(30) {
                match horizon(&pool).await {
                    Ok((pruned_through, _)) => hub.set_pruned_through(pruned_through),
                    Err(e) => tracing::warn!(error = %e, "reading the event horizon failed"),
                }
            }
            let woke = match listener.as_mut() {
                Some(l) => tokio::select! {
                    () = cancel.cancelled() => break,
                    n = l.recv() => n.is_ok(),
                    () = tokio::time::sleep(poll) => true,
                },
                None => tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(poll) => true,
                },
            };
            if !woke {
                listener = None;
            } else if let Some(l) = listener.as_mut() {
                while l.next_buffered().is_some() {}
            }
        }
        drop(listener);
    })
}
