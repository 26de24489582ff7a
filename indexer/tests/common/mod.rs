//! Shared setup for indexer tests: a seeded database, an indexer on a temp index.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use certscope_domain::Kind;
use certscope_indexer::{IndexView, IndexerConfig, IndexerHandle, Snapshot, verify};
use certscope_store::seed::{Preset, SeedConfig};
use certscope_store::testing::TestDb;
use chrono::NaiveDate;
use sqlx::PgPool;
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{TantivyDocument, Term};
use tokio_util::sync::CancellationToken;

pub struct Fixture {
    pub db: TestDb,
    pub pool: PgPool,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn seeded() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let db = TestDb::seeded(&SeedConfig::preset(Preset::Small, 3, as_of)).await;
        let pool = db.pool().await;
        Self {
            db,
            pool,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config(&self) -> IndexerConfig {
        let mut config = IndexerConfig::new(self.db.url.clone(), self.dir.path().join("index"));
        config.writer_memory = 64 << 20;
        config.poll_interval = Duration::from_millis(300);
        config
    }

    pub fn start(&self) -> IndexerHandle {
        certscope_indexer::spawn(self.config(), CancellationToken::new())
    }

    /// Waits until the index reflects everything committed before the call.
    pub async fn caught_up(&self, handle: &IndexerHandle) -> IndexView {
        let target = snapshot(&self.pool).await;
        handle
            .wait_for(&target, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("index did not reach {target} within 30 s"))
    }

    /// Asserts the index holds exactly PostgreSQL's (kind, id, version) set.
    pub async fn assert_converged(&self, handle: &IndexerHandle) {
        let view = self.caught_up(handle).await;
        let in_index = verify::index_triples(&view.reader.searcher(), &view.fields).unwrap();
        let in_db = verify::database_triples(&self.pool).await.unwrap();
        assert!(
            in_index == in_db,
            "{}",
            verify::describe_difference(&in_index, &in_db, 5)
        );
    }
}

pub async fn snapshot(pool: &PgPool) -> Snapshot {
    let text: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    Snapshot::parse(&text).unwrap()
}

/// The committed document of (kind, id), if any.
pub fn document(view: &IndexView, kind: Kind, id: i64) -> Option<TantivyDocument> {
    let searcher = view.reader.searcher();
    let term = Term::from_field_text(
        view.fields.key,
        &certscope_indexer::schema::doc_key(kind, id),
    );
    let hits = searcher
        .search(
            &TermQuery::new(term, IndexRecordOption::Basic),
            &TopDocs::with_limit(2).order_by_score(),
        )
        .unwrap();
    assert!(hits.len() <= 1, "one document per key");
    hits.first()
        .map(|(_, address)| searcher.doc(*address).unwrap())
}

pub fn version(view: &IndexView, kind: Kind, id: i64) -> Option<u64> {
    document(view, kind, id).and_then(|d| d.get_first(view.fields.version).and_then(|v| v.as_u64()))
}

pub fn text(view: &IndexView, doc: &TantivyDocument, field: tantivy::schema::Field) -> String {
    let _ = view;
    doc.get_first(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to `within`) for `cond` on fresh views.
pub async fn eventually(
    handle: &IndexerHandle,
    within: Duration,
    mut cond: impl FnMut(&IndexView) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut views = handle.views.clone();
    loop {
        if let Some(view) = views.borrow_and_update().as_ref()
            && cond(view)
        {
            return true;
        }
        if tokio::time::timeout_at(deadline, views.changed())
            .await
            .is_err()
        {
            return false;
        }
    }
}

pub fn ids_of(set: &BTreeSet<(String, i64, i64)>, kind: &str) -> Vec<i64> {
    set.iter().filter(|t| t.0 == kind).map(|t| t.1).collect()
}
