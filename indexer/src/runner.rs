//! The indexer's loop: wake on NOTIFY (or a poll), read the changes since the
//! index position, apply them, commit with the new position in the payload, reload
//! readers, publish. Runs on a thread of its own (tantivy commits block), with its
//! own runtime and pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexReader, Term};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::change_feed::{self, Retention};
use crate::error::{During, Operation};
use crate::index_store::{self, IndexStore, Unusable};
use crate::metrics::IndexerMetrics;
use crate::position::{CommitPayload, IndexPosition};
use crate::rebuild;
use crate::schema::{Fields, SCHEMA_VERSION};
use crate::sync;
use crate::{IndexerError, NOTIFY_CHANNEL};
use certscope_domain::Kind;

/// Settings of a running indexer.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    pub database_url: String,
    pub index_dir: PathBuf,
    /// Time to let a burst of changes accumulate before reading them.
    pub batch_window: Duration,
    /// Poll even without notifications (a missed NOTIFY, a restarted server).
    pub poll_interval: Duration,
    /// Changes read per query.
    pub page_size: i64,
    /// Intermediate commit (position unchanged) after this many documents.
    pub commit_every: u64,
    pub writer_memory: usize,
    pub retention: Retention,
    pub prune_interval: Duration,
    /// How often the indexer checks that its committed files are still in
    /// place (a directory deleted or damaged under it is rebuilt).
    pub check_interval: Duration,
    pub progress: bool,
    /// Run on every new searcher before it is published (see
    /// [`index_store::Warmers`]).
    pub warmers: index_store::Warmers,
}

impl IndexerConfig {
    pub const DEFAULT_BATCH_WINDOW_MS: u64 = 15;
    pub const DEFAULT_WRITER_MEMORY_MB: usize = 256;

    pub fn new(database_url: String, index_dir: PathBuf) -> Self {
        Self {
            database_url,
            index_dir,
            batch_window: Duration::from_millis(Self::DEFAULT_BATCH_WINDOW_MS),
            poll_interval: Duration::from_millis(1000),
            page_size: 20_000,
            commit_every: 200_000,
            writer_memory: Self::DEFAULT_WRITER_MEMORY_MB << 20,
            retention: Retention::default(),
            prune_interval: Duration::from_secs(300),
            check_interval: Duration::from_secs(2),
            progress: false,
            warmers: index_store::Warmers::default(),
        }
    }
}

/// What readers need: a reader on the live index and the position it reflects.
#[derive(Clone)]
pub struct IndexView {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub position: IndexPosition,
    /// Per organization, the generation that last changed its documents.
    pub versions: Arc<OrgVersions>,
}

/// The generation at which each organization's documents last changed, since
/// this indexer opened the index: what a cache of one organization's figures
/// is keyed by, so that a write in one organization leaves every other's
/// cached reports valid. Organization 0 is the shared catalogue, which every
/// organization's figures read.
#[derive(Debug, Clone)]
pub struct OrgVersions {
    /// Which opening of the index these count from (unique in the process):
    /// a reopened or rebuilt index starts again.
    epoch: u64,
    by_org: HashMap<u64, u64>,
    /// The last generation that may have changed any organization (a
    /// deletion, whose organization the indexer does not look up).
    every: u64,
}

impl Default for OrgVersions {
    fn default() -> Self {
        static EPOCHS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
            by_org: HashMap::new(),
            every: 0,
        }
    }
}

impl OrgVersions {
    /// The version of what `org` sees, as `epoch.generation`: it changes with
    /// every change to the organization's documents or the catalogue's, and
    /// with every reopening of the index, and with nothing else.
    pub fn of(&self, org: u64) -> String {
        let at = |o: u64| self.by_org.get(&o).copied().unwrap_or(0);
        format!("{}.{}", self.epoch, at(org).max(at(0)).max(self.every))
    }

    /// Records that `applied` became generation `generation`.
    fn record(&mut self, applied: &sync::Applied, generation: u64) {
        for org in &applied.orgs {
            self.by_org.insert(*org, generation);
        }
        if applied.every_org {
            self.every = generation;
        }
    }
}

/// A running indexer.
pub struct IndexerHandle {
    pub views: watch::Receiver<Option<IndexView>>,
    pub metrics: Arc<IndexerMetrics>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<Result<(), IndexerError>>>,
}

impl IndexerHandle {
    /// Asks the indexer to stop and waits for it (the last commit is kept).
    pub fn stop(mut self) -> Result<(), IndexerError> {
        self.cancel.cancel();
        self.join()
    }

    fn join(&mut self) -> Result<(), IndexerError> {
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Err(IndexerError::Panicked)),
            None => Ok(()),
        }
    }

    /// Waits until the indexer thread ends on its own (an error, or cancellation).
    pub async fn finished(mut self) -> Result<(), IndexerError> {
        let cancel = self.cancel.clone();
        let thread = self.thread.take();
        tokio::task::spawn_blocking(move || match thread {
            Some(t) => t.join().unwrap_or(Err(IndexerError::Panicked)),
            None => Ok(()),
        })
        .await
        .unwrap_or_else(|_| {
            cancel.cancel();
            Err(IndexerError::Panicked)
        })
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits until the published position covers `target` (every transaction
    /// finished in `target` is in the index), or `timeout` passes.
    pub async fn wait_for(&self, target: &crate::Snapshot, timeout: Duration) -> Option<IndexView> {
        wait_for_view(self.views.clone(), target, timeout).await
    }
}

/// Waits on a view channel until its position covers `target`.
pub async fn wait_for_view(
    mut views: watch::Receiver<Option<IndexView>>,
    target: &crate::Snapshot,
    timeout: Duration,
) -> Option<IndexView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(view) = views.borrow_and_update().as_ref()
            && view.position.snapshot.covers(target)
        {
            return Some(view.clone());
        }
        match tokio::time::timeout_at(deadline, views.changed()).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
    }
}

impl Drop for IndexerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        let _ = self.join();
    }
}

/// Starts the indexer on its own thread.
pub fn spawn(config: IndexerConfig, cancel: CancellationToken) -> IndexerHandle {
    let (tx, rx) = watch::channel(None);
    let metrics = Arc::new(IndexerMetrics::default());
    let thread_metrics = metrics.clone();
    let thread_cancel = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("indexer".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(IndexerError::Runtime)?;
            let result = runtime.block_on(run(config, tx, thread_metrics, thread_cancel.clone()));
            if let Err(e) = &result {
                tracing::error!(error = %e, "indexer stopped");
                thread_cancel.cancel();
            }
            result
        })
        .map_err(IndexerError::Runtime);
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "failed to start the indexer thread");
            cancel.cancel();
            None
        }
    };
    IndexerHandle {
        views: rx,
        metrics,
        cancel,
        thread,
    }
}

struct Backoff {
    current: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            current: Duration::from_millis(100),
        }
    }

    fn reset(&mut self) {
        self.current = Duration::from_millis(100);
    }

    async fn wait(&mut self, cancel: &CancellationToken) {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(self.current) => {}
        }
        self.current = (self.current * 2).min(Duration::from_secs(10));
    }
}

async fn connect(config: &IndexerConfig, cancel: &CancellationToken) -> Option<PgPool> {
    let mut backoff = Backoff::new();
    let opts = certscope_store::PoolOptions {
        max_connections: 4,
        ..Default::default()
    };
    loop {
        match certscope_store::connect(&config.database_url, &opts).await {
            Ok(pool) => return Some(pool),
            Err(e) => {
                tracing::warn!(error = %e, "indexer cannot reach the database; retrying");
                backoff.wait(cancel).await;
                if cancel.is_cancelled() {
                    return None;
                }
            }
        }
    }
}

struct Live {
    store: IndexStore,
    position: IndexPosition,
    payload: CommitPayload,
    versions: Arc<OrgVersions>,
}

/// Opens the index, setting aside and rebuilding one that is unusable.
async fn open_or_rebuild(
    pool: &PgPool,
    config: &IndexerConfig,
    metrics: &IndexerMetrics,
) -> Result<Live, IndexerError> {
    let dir = &config.index_dir;
    match index_store::inspect(dir) {
        Ok(_) => {}
        Err(Unusable::Unreadable(why)) => {
            // storage trouble, not damage: retried, never set aside
            return Err(IndexerError::Store(index_store::StoreError::Io {
                what: "read the index in",
                path: dir.clone(),
                source: std::io::Error::other(why),
            }));
        }
        Err(Unusable::Missing) => {
            tracing::info!(index = %dir.display(), "no index yet; building it from PostgreSQL");
            rebuild::rebuild(pool, dir, config.writer_memory, config.progress).await?;
            metrics.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
        Err(reason) => {
            index_store::set_aside(dir, &reason)?;
            rebuild::rebuild(pool, dir, config.writer_memory, config.progress).await?;
            metrics.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
    }
    let store = IndexStore::open_warmed(dir, config.writer_memory, 1, &config.warmers)?;
    let payload = store.payload().ok_or(IndexerError::NoPosition)?;
    let position = index_store::position_of(&payload).ok_or(IndexerError::NoPosition)?;
    Ok(Live {
        store,
        position,
        payload,
        versions: Arc::default(),
    })
}

/// `open_or_rebuild`, retried with backoff while the database is unreachable (a
/// restart during a rebuild must not end the indexer). `None` when cancelled.
async fn open_with_retry(
    pool: &PgPool,
    config: &IndexerConfig,
    metrics: &IndexerMetrics,
    cancel: &CancellationToken,
) -> Result<Option<Live>, IndexerError> {
    let mut backoff = Backoff::new();
    loop {
        match open_or_rebuild(pool, config, metrics).await {
            Ok(live) => return Ok(Some(live)),
            Err(e) if e.is_transient() || e.is_index_fault() => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_index_fault() {
                    metrics.set_problem(Some(fault_problem(&e, &config.index_dir)));
                }
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "opening or rebuilding the index failed; retrying");
                backoff.wait(cancel).await;
                if cancel.is_cancelled() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// What `/readyz` says while the index cannot be written.
fn fault_problem(e: &IndexerError, dir: &std::path::Path) -> String {
    let what = if disk_full(e, dir) {
        "the disk under the index is full"
    } else {
        "the index could not be written"
    };
    format!("{what}; the indexer retries, and searches answer from the last commit")
}

/// Whether a fault is the disk being full: the error says so, or (when a
/// writer thread's failure reached the commit without its I/O error, which
/// tantivy sometimes reports as text of another kind) the filesystem under the
/// index has no room left.
fn disk_full(e: &IndexerError, dir: &std::path::Path) -> bool {
    e.is_disk_full() || index_store::no_space_left(dir)
}

/// Drops the writer of an index that failed or changed under it and opens the
/// index again: at its last commit, or rebuilt from PostgreSQL when `damage`
/// says it cannot be used (the damaged one is set aside, never deleted). The
/// published view keeps answering searches meanwhile. `None` when cancelled.
async fn reopen(
    pool: &PgPool,
    config: &IndexerConfig,
    metrics: &IndexerMetrics,
    cancel: &CancellationToken,
    live: Live,
    damage: Option<&Unusable>,
) -> Result<Option<Live>, IndexerError> {
    let Live { store, .. } = live;
    if let Err(e) = store.close() {
        tracing::warn!(error = %e, "closing the index writer after a fault failed");
    }
    if let Some(reason) = damage {
        index_store::set_aside(&config.index_dir, reason)?;
    }
    open_with_retry(pool, config, metrics, cancel).await
}

fn publish(live: &Live, tx: &watch::Sender<Option<IndexView>>, metrics: &IndexerMetrics) {
    metrics
        .generation
        .store(live.position.generation, Ordering::Relaxed);
    metrics
        .position_xmax
        .store(live.position.snapshot.xmax, Ordering::Relaxed);
    let view = IndexView {
        index: live.store.index.clone(),
        reader: live.store.reader(),
        fields: live.store.fields.clone(),
        position: live.position.clone(),
        versions: live.versions.clone(),
    };
    tx.send_replace(Some(view));
}

fn count_docs(live: &Live, metrics: &IndexerMetrics) {
    let searcher = live.store.reader().searcher();
    for kind in Kind::ALL {
        let term = Term::from_field_text(live.store.fields.kind, kind.as_str());
        let n = searcher
            .search(
                &TermQuery::new(term, IndexRecordOption::Basic),
                &tantivy::collector::Count,
            )
            .unwrap_or(0);
        metrics.docs[kind.index()].store(n as u64, Ordering::Relaxed);
    }
}

async fn run(
    config: IndexerConfig,
    tx: watch::Sender<Option<IndexView>>,
    metrics: Arc<IndexerMetrics>,
    cancel: CancellationToken,
) -> Result<(), IndexerError> {
    let Some(pool) = connect(&config, &cancel).await else {
        return Ok(());
    };
    let Some(mut live) = open_with_retry(&pool, &config, &metrics, &cancel).await? else {
        return Ok(());
    };
    publish(&live, &tx, &metrics);
    count_docs(&live, &metrics);
    tracing::info!(position = %live.position.snapshot, generation = live.position.generation, "indexer following changes");

    let mut listener: Option<PgListener> = None;
    let mut backoff = Backoff::new();
    // the lag figures and the change log's pruning run beside the loop: a
    // prune scans up to the retained row count (0.5 s at a million rows) and
    // must not hold up the changes waiting to be indexed
    let stop_housekeeping = cancel.child_token();
    let housekeeping = tokio::spawn(housekeeping(
        pool.clone(),
        config.retention,
        config.prune_interval,
        tx.subscribe(),
        metrics.clone(),
        stop_housekeeping.clone(),
    ));
    let mut last_count = Instant::now();
    let mut last_check = Instant::now();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        // (re)subscribe; a lost connection is re-established with backoff
        if listener.is_none() {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(e) => tracing::warn!(error = %e, "indexer cannot LISTEN; polling"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "indexer cannot open its notification connection; polling")
                }
            }
        }
        let woke = match listener.as_mut() {
            Some(l) => tokio::select! {
                () = cancel.cancelled() => break,
                n = l.recv() => n.map(|_| true).map_err(|e| e.to_string()),
                () = tokio::time::sleep(config.poll_interval) => Ok(false),
            },
            None => tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(config.poll_interval) => Ok(false),
            },
        };
        match woke {
            Ok(notified) => tracing::trace!(notified, "indexer woke"),
            Err(error) => {
                tracing::warn!(error, "notification connection lost; reconnecting");
                listener = None;
                backoff.wait(&cancel).await;
                continue;
            }
        }
        // let a burst accumulate, then drain what is already queued
        tokio::time::sleep(config.batch_window).await;
        if let Some(l) = listener.as_mut() {
            while l.next_buffered().is_some() {}
        }

        match cycle(&pool, &config, &mut live, &metrics).await {
            Ok(advanced) => {
                backoff.reset();
                if metrics.problem().is_some() {
                    tracing::info!("the index advances again");
                    metrics.set_problem(None);
                }
                if advanced {
                    publish(&live, &tx, &metrics);
                    if last_count.elapsed() > Duration::from_secs(2) {
                        count_docs(&live, &metrics);
                        last_count = Instant::now();
                    }
                }
            }
            Err(IndexerError::NeedsRebuild {
                position,
                pruned_below,
            }) => {
                tracing::warn!(
                    position,
                    pruned_below,
                    "index position is older than the retained changes; rebuilding"
                );
                // below the horizon: set the index aside so that opening rebuilds it
                let damage = Some(&Unusable::BehindRetention);
                let Some(reopened) =
                    reopen(&pool, &config, &metrics, &cancel, live, damage).await?
                else {
                    return Ok(());
                };
                live = reopened;
                publish(&live, &tx, &metrics);
                count_docs(&live, &metrics);
            }
            Err(e) if e.is_index_fault() => {
                // a write refused (a full disk) or a file gone: the position did
                // not advance (a large cycle's intermediate commits keep the old
                // one), so the changes are read again, and applied again
                // idempotently, once the index can be written
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                metrics.set_problem(Some(fault_problem(&e, &config.index_dir)));
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), disk_full = disk_full(&e, &config.index_dir), "the index could not be written; reopening it and retrying");
                backoff.wait(&cancel).await;
                if cancel.is_cancelled() {
                    break;
                }
                let Some(reopened) = reopen(&pool, &config, &metrics, &cancel, live, None).await?
                else {
                    return Ok(());
                };
                live = reopened;
                publish(&live, &tx, &metrics);
                continue;
            }
            Err(e) if e.is_transient() => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "indexer cycle failed; retrying");
                live.store.rollback()?;
                backoff.wait(&cancel).await;
                continue;
            }
            Err(e) => return Err(e),
        }
        if last_check.elapsed() > config.check_interval {
            last_check = Instant::now();
            if let Err(damage) = live.store.check_in_place() {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                metrics.set_problem(Some(format!(
                    "the index directory changed under the indexer ({damage}); rebuilding it \
                     from PostgreSQL while searches answer from the last open index"
                )));
                tracing::warn!(index = %config.index_dir.display(), reason = %damage, "the committed index is no longer in place; rebuilding it");
                let Some(reopened) =
                    reopen(&pool, &config, &metrics, &cancel, live, Some(&damage)).await?
                else {
                    return Ok(());
                };
                live = reopened;
                metrics.set_problem(None);
                publish(&live, &tx, &metrics);
                count_docs(&live, &metrics);
                continue;
            }
        }
    }
    stop_housekeeping.cancel();
    let _ = housekeeping.await;
    // the listener holds a pooled connection: close() would wait for it forever
    drop(listener);
    live.store.close()?;
    pool.close().await;
    tracing::info!("indexer stopped");
    Ok(())
}

/// Builds the index if needed and applies every change committed before the call;
/// for `certscope reindex` and tests. Returns the position reached.
pub async fn catch_up(config: &IndexerConfig) -> Result<IndexPosition, IndexerError> {
    let cancel = CancellationToken::new();
    let Some(pool) = connect(config, &cancel).await else {
        return Err(IndexerError::NoPosition);
    };
    let metrics = IndexerMetrics::default();
    let mut live = open_or_rebuild(&pool, config, &metrics).await?;
    let target = change_feed::current_snapshot(&pool, Operation::ReadingChanges).await?;
    while !live.position.snapshot.covers(&target) {
        cycle(&pool, config, &mut live, &metrics).await?;
    }
    let position = live.position.clone();
    live.store.close()?;
    pool.close().await;
    Ok(position)
}

/// Every 2 s the indexer's lag (changes committed but not yet searchable, and
/// the age of the oldest), every `prune_interval` the change log's pruning,
/// never below what the published index has applied.
async fn housekeeping(
    pool: PgPool,
    retention: Retention,
    prune_interval: Duration,
    mut views: watch::Receiver<Option<IndexView>>,
    metrics: Arc<IndexerMetrics>,
    cancel: CancellationToken,
) {
    let mut last_prune: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(applied) = views
            .borrow_and_update()
            .as_ref()
            .map(|v| v.position.snapshot.clone())
        else {
            continue;
        };
        if let Ok((pending, oldest)) = change_feed::pending(&pool, &applied, 1_000_000).await {
            metrics.pending_changes.store(pending, Ordering::Relaxed);
            let behind = oldest.map_or(0, |t| {
                (chrono::Utc::now() - t).num_milliseconds().max(0) as u64
            });
            metrics.behind_millis.store(behind, Ordering::Relaxed);
        }
        if last_prune.is_none_or(|t| t.elapsed() >= prune_interval) {
            match change_feed::prune(&pool, retention, &applied).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned change log"),
                Err(e) => tracing::warn!(error = %e, "change log pruning failed"),
            }
            last_prune = Some(Instant::now());
        }
    }
}

/// One pass: everything committed since the position. Returns whether the
/// position moved.
async fn cycle(
    pool: &PgPool,
    config: &IndexerConfig,
    live: &mut Live,
    metrics: &IndexerMetrics,
) -> Result<bool, IndexerError> {
    let begun = Instant::now();
    let mut conn = pool.acquire().await.during(Operation::Connecting)?;
    let acquire_ms = begun.elapsed().as_secs_f64() * 1e3;
    let to = change_feed::current_snapshot(&mut *conn, Operation::ReadingChanges).await?;
    if to == live.position.snapshot {
        return Ok(false);
    }
    let durable = Instant::now();
    // everything `to` counts as finished becomes durable before any of it is
    // indexed (intermediate commits included) or `to` becomes the position,
    // stored or only held in memory: crash recovery must not reuse those ids
    change_feed::make_durable(&mut conn, Operation::ReadingChanges).await?;
    let pruned_below = change_feed::pruned_below(&mut *conn).await?;
    if live.position.snapshot.xmin < pruned_below {
        return Err(IndexerError::NeedsRebuild {
            position: live.position.snapshot.xmin,
            pruned_below,
        });
    }
    let from = live.position.snapshot.clone();
    let unchanged = live.payload.clone();
    let durable_ms = durable.elapsed().as_secs_f64() * 1e3;
    let reading = Instant::now();
    let mut cursor = None;
    let mut applied = sync::Applied::default();
    loop {
        let page = change_feed::read_page(&mut *conn, &from, &to, cursor, config.page_size).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.xid, last.seq));
        applied.absorb(
            sync::apply(
                &mut conn,
                &mut live.store,
                &page,
                |s| s.commit(&unchanged),
                config.commit_every,
            )
            .await?,
        );
        if (page.len() as i64) < config.page_size {
            break;
        }
    }
    let (changes, docs) = (applied.changes, applied.total_docs());
    let position = IndexPosition {
        snapshot: to,
        generation: live.position.generation + u64::from(changes > 0),
    };
    if changes == 0 {
        // nothing in between: the index already reflects `to`
        live.position = position;
        return Ok(true);
    }
    let payload = CommitPayload {
        schema_version: SCHEMA_VERSION,
        snapshot: position.snapshot.to_string(),
        generation: position.generation,
        built_at: live.payload.built_at.clone(),
    };
    let read_ms = reading.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    live.store.commit(&payload)?;
    let commit = started.elapsed();
    metrics.commit_seconds.observe(commit.as_secs_f64());
    metrics.batch_changes.observe(changes as f64);
    metrics.batch_docs.observe(docs as f64);
    metrics
        .changes_applied
        .fetch_add(changes, Ordering::Relaxed);
    tracing::debug!(
        changes,
        docs,
        generation = position.generation,
        acquire_ms,
        durable_ms,
        read_ms,
        commit_ms = commit.as_secs_f64() * 1e3,
        "index advanced"
    );
    Arc::make_mut(&mut live.versions).record(&applied, position.generation);
    live.position = position;
    live.payload = payload;
    Ok(true)
}
