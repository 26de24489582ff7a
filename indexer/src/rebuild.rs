//! A full rebuild from one consistent PostgreSQL snapshot into a staging directory,
//! swapped into place when committed. The snapshot becomes the new index's
//! position, so catching up afterwards reads exactly the changes that committed
//! after it: nothing missed, nothing twice.

use std::path::{Path, PathBuf};
use std::time::Instant;

use certscope_domain::Kind;
use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::change_feed;
use crate::documents::{self, DocumentRow, with_row_type};
use crate::error::{During, IndexerError, Operation};
use crate::index_store::{IndexStore, StoreError};
use crate::position::{CommitPayload, IndexPosition};
use crate::schema::{Fields, SCHEMA_VERSION};

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub position: IndexPosition,
    pub documents: u64,
    pub seconds: f64,
}

impl RebuildReport {
    pub fn docs_per_second(&self) -> f64 {
        self.documents as f64 / self.seconds.max(1e-9)
    }
}

/// Writer memory for rebuilds (fewer, larger segments than a live indexer's),
/// shared by the indexing threads: with the rows in flight and the segment
/// being written, a rebuild's peak resident memory stays under 1 GiB (at
/// 1 GiB of writer memory it peaked at 1.15-1.22 GiB).
const REBUILD_MEMORY: usize = 640 << 20;

fn staging_dir(dir: &Path) -> PathBuf {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("index");
    dir.with_file_name(format!("{name}.staging"))
}

/// Rebuilds the index in `dir` from PostgreSQL. The live index (if any) keeps
/// serving until the new one replaces it.
pub async fn rebuild(
    pool: &PgPool,
    dir: &Path,
    writer_memory: usize,
    progress: bool,
) -> Result<RebuildReport, IndexerError> {
    let started = Instant::now();
    let staging = staging_dir(dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|source| StoreError::Io {
            what: "remove",
            path: staging.clone(),
            source,
        })?;
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    // a rebuild writes each document once: merging while writing would redo the
    // work; large segments and no merges until the normal policy takes over
    let mut store = IndexStore::create(&staging, writer_memory.max(REBUILD_MEMORY), threads)?;
    store.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));

    let op = Operation::Rebuilding;
    let mut tx = pool.begin().await.during(op)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .during(op)?;
    let snapshot = change_feed::current_snapshot(&mut *tx, op).await?;
    let total = documents::count_rows(&mut *tx).await.during(op)?;
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "reindex [{bar:40}] {human_pos}/{human_len} docs {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let fields = store.fields.clone();
    let mut documents = 0u64;
    for kind in Kind::ALL {
        documents +=
            with_row_type!(kind, R => stream::<R>(&mut tx, &mut store, &fields, &bar).await?);
    }
    tx.commit().await.during(op)?;
    let mut conn = pool.acquire().await.during(op)?;
    change_feed::make_durable(&mut conn, op).await?;
    drop(conn);
    let position = IndexPosition {
        snapshot,
        generation: 0,
    };
    store.commit(&CommitPayload {
        schema_version: SCHEMA_VERSION,
        snapshot: position.snapshot.to_string(),
        generation: 0,
        built_at: chrono::Utc::now().to_rfc3339(),
    })?;
    store.close()?;
    bar.finish_and_clear();
    swap_into_place(&staging, dir)?;
    let report = RebuildReport {
        position,
        documents,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        documents,
        seconds = report.seconds,
        docs_per_second = report.docs_per_second() as u64,
        position = %report.position.snapshot,
        "index rebuilt"
    );
    // announced to everyone's notices room; the index is fine without it
    let event = crate::events::NewEvent {
        kind: crate::events::EventKind::IndexRebuilt,
        organization_id: None,
        certification_id: None,
        related_certifications: Vec::new(),
        user_ids: Vec::new(),
        occurred_at: chrono::Utc::now(),
        data: crate::events::payload::data(&crate::events::payload::IndexRebuilt {
            documents,
            seconds: (report.seconds * 10.0).round() / 10.0,
        }),
        dedupe_key: None,
    };
    if let Err(e) = crate::events::append(pool, &[event]).await {
        tracing::warn!(error = %e, "could not announce the rebuild");
    }
    Ok(report)
}

async fn stream<R: DocumentRow>(
    conn: &mut PgConnection,
    store: &mut IndexStore,
    fields: &Fields,
    bar: &ProgressBar,
) -> Result<u64, IndexerError> {
    let mut rows = sqlx::query_as::<_, R>(AssertSqlSafe(R::SQL)).fetch(&mut *conn);
    let mut n = 0u64;
    while let Some(row) = rows.try_next().await.during(Operation::Rebuilding)? {
        store.add(row.render(fields).doc)?;
        n += 1;
        if n.is_multiple_of(1024) {
            bar.inc(1024);
        }
    }
    bar.inc(n % 1024);
    Ok(n)
}

fn swap_into_place(staging: &Path, dir: &Path) -> Result<(), StoreError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { what, path, source }
    };
    if dir.exists() {
        let old = dir.with_file_name(format!(
            "{}.old",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("index")
        ));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
        std::fs::rename(dir, &old).map_err(io("move aside", dir))?;
        std::fs::rename(staging, dir).map_err(io("move into place", staging))?;
        std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
    } else {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::rename(staging, dir).map_err(io("move into place", staging))?;
    }
    Ok(())
}
