//! `serve`, `index`, `reindex` and `verify-index`: the indexer alone, or with the API.

use std::time::Duration;

use anyhow::Context;
use certscope_indexer::{IndexerConfig, change_feed::Retention};
use tokio_util::sync::CancellationToken;

use certscope_query_api::app::{Application, Databases};

use crate::api::ApiArgs;
use crate::database::{self, Database};
use crate::demo::shutdown_signal;
use crate::{GlobalArgs, IndexArgs};

pub fn indexer_config(global: &GlobalArgs, args: &IndexArgs, db: &Database) -> IndexerConfig {
    let dir = args
        .index_dir
        .clone()
        .unwrap_or_else(|| database::data_dir(global).join("index"));
    let mut config = IndexerConfig::new(db.url.clone(), dir);
    config.batch_window = Duration::from_millis(args.batch_window_ms);
    config.retention = Retention {
        max_age: Duration::from_secs(args.change_retention_hours * 3600),
        max_rows: args.change_retention_rows,
    };
    config.writer_memory = args.index_memory_mb.max(32) << 20;
    config.progress = true;
    config
}

/// `certscope index`: the indexer on its own until SIGTERM.
pub async fn index(global: &GlobalArgs, args: &IndexArgs) -> anyhow::Result<()> {
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    let config = indexer_config(global, args, &db);
    let cancel = CancellationToken::new();
    let handle = certscope_indexer::spawn(config, cancel.clone());
    // live events come from the same change log; API servers only read them
    let deriver = certscope_indexer::events::spawn_deriver(
        db.pool.clone(),
        certscope_indexer::events::DeriverConfig::default(),
        cancel.clone(),
    );
    let metrics = handle.metrics.clone();
    let reporter = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            use std::sync::atomic::Ordering::Relaxed;
            tracing::info!(
                generation = metrics.generation.load(Relaxed),
                pending_changes = metrics.pending_changes.load(Relaxed),
                behind_ms = metrics.behind_millis.load(Relaxed),
                applied = metrics.changes_applied.load(Relaxed),
                "indexer progress"
            );
        }
    });
    tokio::select! {
        () = shutdown_signal() => cancel.cancel(),
        () = cancel.cancelled() => {}
    }
    reporter.abort();
    cancel.cancel();
    let _ = deriver.await;
    handle.finished().await.context("indexer failed")?;
    db.close().await
}

/// `certscope reindex`: rebuild from a consistent snapshot, then catch up.
pub async fn reindex(global: &GlobalArgs, args: &IndexArgs) -> anyhow::Result<()> {
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    let config = indexer_config(global, args, &db);
    // refuse while another indexer holds the writer lock
    if certscope_indexer::index_store::inspect(&config.index_dir).is_ok() {
        let store =
            certscope_indexer::index_store::IndexStore::open(&config.index_dir, 32 << 20, 1)?;
        store.close()?;
    }
    let report = certscope_indexer::rebuild::rebuild(
        &db.pool,
        &config.index_dir,
        config.writer_memory,
        true,
    )
    .await?;
    let position = certscope_indexer::catch_up(&config).await?;
    println!(
        "rebuilt {} documents in {:.1} s ({:.0} docs/s) at {}; caught up to {}",
        report.documents,
        report.seconds,
        report.docs_per_second(),
        report.position.snapshot,
        position.snapshot
    );
    db.close().await
}

/// `certscope verify-index`: does the index equal PostgreSQL? Read-only, so it can
/// run beside a live indexer; with writers active, a difference may only be lag.
pub async fn verify(global: &GlobalArgs, args: &IndexArgs) -> anyhow::Result<()> {
    let db = database::open(global).await?;
    let config = indexer_config(global, args, &db);
    let (index, fields, payload) =
        certscope_indexer::index_store::open_read_only(&config.index_dir)
            .with_context(|| format!("no readable index in {}", config.index_dir.display()))?;
    let position = payload.map(|p| p.snapshot).unwrap_or_default();
    let searcher = index.reader()?.searcher();
    let in_index = certscope_indexer::verify::index_triples(&searcher, &fields)?;
    let in_db = certscope_indexer::verify::database_triples(&db.pool).await?;
    if in_index == in_db {
        println!(
            "index equals PostgreSQL: {} documents at {position}",
            in_index.len()
        );
        db.close().await
    } else {
        let detail = certscope_indexer::verify::describe_difference(&in_index, &in_db, 5);
        db.close().await?;
        anyhow::bail!("index differs from PostgreSQL: {detail}")
    }
}

/// `certscope serve`: the API with the indexer in the same process.
pub async fn serve(
    global: &GlobalArgs,
    args: &IndexArgs,
    api: &ApiArgs,
    listen: &str,
) -> anyhow::Result<()> {
    let config = crate::api::config(global, api)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    run_with(global, args, config, &db, listener).await?;
    db.close().await
}

/// Runs the indexer and the API until a signal, or until the indexer fails.
pub async fn run_with(
    global: &GlobalArgs,
    args: &IndexArgs,
    api: certscope_query_api::ApiConfig,
    db: &Database,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let databases = Databases {
        primary: db.pool.clone(),
        read: database::read_pool(global, db).await?,
    };
    let app = Application::build(databases, indexer_config(global, args, db), api, listener);
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
