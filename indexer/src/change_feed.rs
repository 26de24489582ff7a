//! Reading `change_log` by snapshot difference, and keeping it bounded.
//!
//! The changes between index position `from` and a newer snapshot `to` are the rows
//! whose transaction is finished in `to` but was not in `from`: those with
//! `xid >= from.xmax`, or listed in `from.xip`, and visible in `to`. Transactions
//! still open in `to` are simply not read yet; they stay in `to.xip` and are
//! picked up once they commit, so an open transaction never holds back others and
//! a lower id committing after a higher one is never skipped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use certscope_domain::Entity;

use crate::error::{During, IndexerError, Operation};
use crate::position::{Snapshot, SnapshotParseError};

/// What a captured change did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn parse(s: &str) -> Op {
        match s {
            "I" => Op::Insert,
            "D" => Op::Delete,
            _ => Op::Update,
        }
    }
}

/// One captured row change.
#[derive(Debug, Clone)]
pub struct Change {
    pub xid: u64,
    pub seq: i64,
    pub entity: Entity,
    pub row_id: i64,
    pub op: Op,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    /// The columns a trigger asked to keep (risk levels), before and after.
    pub old_detail: Option<serde_json::Value>,
    pub new_detail: Option<serde_json::Value>,
    /// Written by a bulk loader: indexed, never announced as an event.
    pub quiet: bool,
    pub recorded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    xid: String,
    seq: i64,
    entity: String,
    row_id: i64,
    op: String,
    old_status: Option<String>,
    new_status: Option<String>,
    old_detail: Option<serde_json::Value>,
    new_detail: Option<serde_json::Value>,
    quiet: bool,
    recorded_at: DateTime<Utc>,
}

/// Makes every transaction that a snapshot taken before this call counts as
/// finished durable, so that the snapshot can be stored as the index position.
///
/// With `synchronous_commit = off` (a common setting, and the test clusters')
/// a commit is visible before its WAL is flushed. If PostgreSQL then crashes,
/// recovery loses those commits and hands their transaction ids out again; a
/// change written under a reused id below the stored position's `xmax` would
/// look finished before the position and never be read: a lost change.
/// A transaction of our own, started after the snapshot was taken, writes a
/// row (`indexer_durability`, migration 0008: a transaction that writes no WAL
/// is committed asynchronously whatever the setting) and commits with
/// `synchronous_commit = on`: that flushes the WAL up to its commit record,
/// which follows every commit the snapshot saw, so after any crash new ids
/// start above it. Costs one small write and one WAL flush per index commit.
pub async fn make_durable(
    conn: &mut sqlx::PgConnection,
    op: Operation,
) -> Result<(), IndexerError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await.during(op)?;
    sqlx::query("SET LOCAL synchronous_commit = on")
        .execute(&mut *tx)
        .await
        .during(op)?;
    sqlx::query("UPDATE indexer_durability SET flushed_at = now()")
        .execute(&mut *tx)
        .await
        .during(op)?;
    tx.commit().await.during(op)
}

/// The current snapshot of `db`; `op` says what it was taken for.
pub async fn current_snapshot(
    db: impl PgExecutor<'_>,
    op: Operation,
) -> Result<Snapshot, IndexerError> {
    let text: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(db)
        .await
        .during(op)?;
    Snapshot::parse(&text).during(op)
}

/// The next page of changes between `from` and `to`, after `cursor` (xid, seq).
pub async fn read_page(
    db: impl PgExecutor<'_>,
    from: &Snapshot,
    to: &Snapshot,
    cursor: Option<(u64, i64)>,
    limit: i64,
) -> Result<Vec<Change>, IndexerError> {
    let op = Operation::ReadingChanges;
    let xip: Vec<String> = from.xip.iter().map(u64::to_string).collect();
    let cursor = cursor.unwrap_or((0, 0));
    // `xid >= xmax AND (xid, seq) > cursor` as the one row bound it amounts
    // to: given both bounds, PostgreSQL started the index scan at the cursor
    // (the start of the log for a new cycle) and filtered every entry by xid,
    // reading the whole retained log each poll (8 ms and 440 pages at 100,000
    // rows, against 0.3 ms and 20 pages; RELIABILITY.md, "Soak")
    let after = if cursor.0 >= from.xmax {
        cursor
    } else {
        // (xid, seq) > (xmax - 1, i64::MAX) is exactly xid >= xmax
        (from.xmax.saturating_sub(1), i64::MAX)
    };
    // Two ranges of the primary key, each read in its order and merged:
    // the transactions after the cursor, and those in progress at `from`.
    // As one `OR` PostgreSQL could walk neither range in order, so without
    // statistics on the log (a freshly loaded database: autovacuum analyses
    // after a minute) it read the whole log and sorted it, 50 ms a cycle at
    // a million rows against 0.1 ms now (BENCHMARKS.md). The order is by the
    // xid8 columns, qualified: the bare `xid` named the text output column,
    // which ordered 100000 before 99999 and made a page's cursor skip rows.
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT c.xid::text AS xid, c.seq, c.entity, c.row_id, c.op::text AS op, c.old_status, \
                c.new_status, c.old_detail, c.new_detail, c.quiet, c.recorded_at FROM ( \
           (SELECT * FROM change_log \
             WHERE (xid, seq) > ($1::text::xid8, $2) \
               AND pg_visible_in_snapshot(xid, $6::text::pg_snapshot) \
             ORDER BY xid, seq LIMIT $7) \
           UNION ALL \
           (SELECT * FROM change_log \
             WHERE xid = ANY($3::text[]::xid8[]) AND (xid, seq) > ($4::text::xid8, $5) \
               AND pg_visible_in_snapshot(xid, $6::text::pg_snapshot) \
             ORDER BY xid, seq LIMIT $7)) c \
         ORDER BY c.xid, c.seq LIMIT $7",
    )
    .bind(after.0.to_string())
    .bind(after.1)
    .bind(&xip)
    .bind(cursor.0.to_string())
    .bind(cursor.1)
    .bind(to.to_string())
    .bind(limit)
    .fetch_all(db)
    .await
    .during(op)?;
    rows.into_iter()
        .map(|r| {
            Ok(Change {
                xid: r
                    .xid
                    .parse()
                    .map_err(|_| SnapshotParseError(r.xid.clone()))
                    .during(op)?,
                seq: r.seq,
                entity: Entity::parse(&r.entity)
                    .ok_or_else(|| IndexerError::UnknownEntity(r.entity.clone()))?,
                row_id: r.row_id,
                op: Op::parse(&r.op),
                old_status: r.old_status,
                new_status: r.new_status,
                old_detail: r.old_detail,
                new_detail: r.new_detail,
                quiet: r.quiet,
                recorded_at: r.recorded_at,
            })
        })
        .collect()
}

/// Changes committed but not yet in the index, and the age of the oldest one: the
/// lag figures. Counts at most `cap` rows to stay cheap.
pub async fn pending(
    db: impl PgExecutor<'_>,
    from: &Snapshot,
    cap: i64,
) -> Result<(i64, Option<DateTime<Utc>>), IndexerError> {
    let xip: Vec<String> = from.xip.iter().map(u64::to_string).collect();
    let row: (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(recorded_at) FROM (SELECT recorded_at FROM change_log \
         WHERE (xid >= $1::text::xid8 OR xid = ANY($2::text[]::xid8[])) \
           AND pg_visible_in_snapshot(xid, pg_current_snapshot()) LIMIT $3) p",
    )
    .bind(from.xmax.to_string())
    .bind(&xip)
    .bind(cap)
    .fetch_one(db)
    .await
    .during(Operation::ReadingChanges)?;
    Ok(row)
}

/// Below this transaction id `change_log` has been pruned: an index whose position
/// is older cannot catch up and must be rebuilt.
pub async fn pruned_below(db: impl PgExecutor<'_>) -> Result<u64, IndexerError> {
    let op = Operation::ReadingChanges;
    let text: String = sqlx::query_scalar("SELECT pruned_below::text FROM change_log_horizon")
        .fetch_one(db)
        .await
        .during(op)?;
    text.parse()
        .map_err(|_| SnapshotParseError(text))
        .during(op)
}

/// How much of `change_log` to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_rows: i64,
}

impl Retention {
    pub const DEFAULT_HOURS: u64 = 24;
    pub const DEFAULT_ROWS: i64 = 10_000_000;
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(Self::DEFAULT_HOURS * 3600),
            max_rows: Self::DEFAULT_ROWS,
        }
    }
}

/// Deletes changes older than the retention (by age or by count), never any that a
/// running transaction could still be writing, nor any that the index at
/// `applied` has not applied (below its xmin every change is in it, and no
/// cycle reads there again: so a prune may run beside the indexer's cycles).
/// Returns the rows deleted.
pub async fn prune(
    pool: &PgPool,
    retention: Retention,
    applied: &Snapshot,
) -> Result<u64, IndexerError> {
    prune_in_batches(pool, retention, applied, PRUNE_BATCH).await
}

/// [`prune`], deleting `batch` rows per statement (at least one).
pub async fn prune_in_batches(
    pool: &PgPool,
    retention: Retention,
    applied: &Snapshot,
    batch: i64,
) -> Result<u64, IndexerError> {
    prune_log(pool, retention, applied, batch.max(1))
        .await
        .during(Operation::PruningChanges)
}

async fn prune_log(
    pool: &PgPool,
    retention: Retention,
    applied: &Snapshot,
    per_batch: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // one pruner at a time across every indexer following this database
    let locked: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext('certscope-change-log-prune'))",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Ok(0);
    }
    // The row bound reads the index backwards to the `max_rows`-th newest
    // change: 0.5 s at a million rows (measured), about ten times that at the
    // default ten million. It is read only when PostgreSQL's figures (the
    // planner's row count, or the statistics' live rows) put the log within
    // 10 % of the bound, or when there are none.
    let boundary: Option<String> = sqlx::query_scalar(
        "WITH by_age AS (SELECT max(xid) AS x FROM change_log WHERE recorded_at < now() - make_interval(secs => $1)), \
              by_count AS (SELECT xid AS x FROM change_log \
                       WHERE (SELECT c.reltuples < 0 OR greatest(c.reltuples, coalesce(s.n_live_tup, 0)) > $2 * 0.9 \
                              FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
                              WHERE c.oid = 'change_log'::regclass) \
                       ORDER BY xid DESC, seq DESC OFFSET $2 LIMIT 1), \
              cut AS (SELECT max(x) AS x FROM (SELECT x FROM by_age UNION ALL SELECT x FROM by_count) c) \
         SELECT least(((cut.x::text)::numeric + 1)::text::xid8, pg_snapshot_xmin(pg_current_snapshot()), $3::text::xid8)::text \
         FROM cut WHERE cut.x IS NOT NULL",
    )
    .bind(retention.max_age.as_secs_f64())
    .bind(retention.max_rows)
    .bind(applied.xmin.to_string())
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let Some(boundary) = boundary else {
        return Ok(0);
    };
    sqlx::query(
        "UPDATE change_log_horizon SET pruned_below = greatest(pruned_below, $1::text::xid8), pruned_at = now()",
    )
    .bind(&boundary)
    .execute(&mut *tx)
    .await?;
    // In batches, oldest first, each followed by a pause as long as it took:
    // one statement deleting the 60,000 rows five minutes of 200 changes a
    // second leave took a core for most of a second, long enough to fill the
    // searches' waiting line (RELIABILITY.md, the soak); batched, the prune
    // takes at most half a core. One transaction still, so the horizon and
    // the deletion commit together.
    let mut deleted = 0;
    loop {
        let started = std::time::Instant::now();
        let batch = sqlx::query(
            "DELETE FROM change_log WHERE (xid, seq) IN \
               (SELECT xid, seq FROM change_log WHERE xid < $1::text::xid8 ORDER BY xid, seq LIMIT $2)",
        )
        .bind(&boundary)
        .bind(per_batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        deleted += batch;
        if batch < per_batch as u64 {
            break;
        }
        tokio::time::sleep(started.elapsed()).await;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Rows of `change_log` deleted per statement by [`prune`].
pub const PRUNE_BATCH: i64 = 5_000;
