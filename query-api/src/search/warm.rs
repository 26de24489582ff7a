//! Warming: before the indexer publishes a new searcher, its new segments get
//! their decoded facet columns, and large ones the statistics searches asked
//! for most recently, so no search pays the first touch of a merge's output or,
//! after a restart, of every segment (about 100 ms per million documents to
//! decode, plus tens of milliseconds of document frequencies).
//!
//! tantivy runs [`tantivy::Warmer::warm`] inside the indexer's reader reload,
//! so the time is taken from freshness instead: the indexer's cycle that
//! publishes a large merged segment is that much later, the others (new
//! segments of a few documents) pay microseconds. Statistics get a time budget
//! ([`STATISTICS_BUDGET`]); what warming does not reach, a search computes as
//! before. Warming never fails a reload.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certscope_indexer::metrics::Histogram;
use certscope_indexer::schema::Fields;
use tantivy::{Searcher, SearcherGeneration};

use super::LiveSegments;
use super::columns::ColumnCache;
use super::stats::StatsCache;

/// A new segment with at least this many documents gets its statistics warmed
/// (computing them on a smaller one costs a search well under a millisecond).
pub const STATISTICS_MIN_DOCS: u32 = 20_000;
/// Time warming may spend on statistics per new searcher.
pub const STATISTICS_BUDGET: Duration = Duration::from_millis(100);

/// The [`tantivy::Warmer`] of the search caches.
pub struct SearchWarmer {
    columns: ColumnCache,
    stats: StatsCache,
    fields: Fields,
    /// Segments of the searcher warmed last: kept by the caches' sweep until a
    /// search pins them.
    pub(super) latest: Mutex<LiveSegments>,
    /// Time spent warming each new searcher, seconds.
    pub latency: Histogram,
    /// Segments warmed (decoded before any search touched them).
    pub segments: std::sync::atomic::AtomicU64,
}

impl SearchWarmer {
    pub(super) fn new(columns: ColumnCache, stats: StatsCache) -> Self {
        Self {
            columns,
            stats,
            fields: certscope_indexer::schema::build().1,
            latest: Mutex::default(),
            latency: Histogram::new(&[0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]),
            segments: Default::default(),
        }
    }
}

impl tantivy::Warmer for SearchWarmer {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let started = Instant::now();
        let mut new = 0u64;
        let mut large = false;
        let mut live = HashSet::new();
        for segment in searcher.segment_readers() {
            let id = segment.segment_id();
            live.insert(id);
            if self.columns.contains(&id) {
                continue;
            }
            new += 1;
            large |= segment.max_doc() >= STATISTICS_MIN_DOCS;
            // the facet columns (with today's due buckets), and the columns
            // of the orders a search and a listing take without a query
            let warmed = self.columns.get(segment).and_then(|cols| {
                let _ = cols.due_bits(super::columns::day_number(chrono::Utc::now().timestamp()));
                for by in super::params::unqueried_orders() {
                    self.columns.sort_values(segment, by)?;
                }
                Ok(())
            });
            if let Err(e) = warmed {
                // a search on this segment will try again and report it
                tracing::warn!(segment = %id.short_uuid_string(), error = %e, "warming a segment's columns failed");
            }
        }
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
        let statistics = if large {
            self.stats
                .warm(searcher, &self.fields, STATISTICS_BUDGET)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "warming statistics failed");
                    0
                })
        } else {
            0
        };
        self.segments
            .fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        let elapsed = started.elapsed();
        self.latency.observe(elapsed.as_secs_f64());
        if new > 0 {
            tracing::debug!(
                segments = new,
                statistics,
                ms = elapsed.as_secs_f64() * 1e3,
                "searcher warmed"
            );
        }
        Ok(())
    }

    /// The caches are swept by the search service (segments no pinned searcher
    /// and not the latest warmed one holds).
    fn garbage_collect(&self, _live: &[&SearcherGeneration]) {}
}

#[cfg(test)]
mod tests {
    use certscope_indexer::schema;
    use tantivy::query::Bm25StatisticsProvider as _;
    use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term, doc};

    use super::super::SearchService;
    use super::super::stats::Visible;
    use super::*;

    fn add(index: &Index, fields: &Fields, titles: &[&str]) {
        let mut writer = index.writer_with_num_threads(1, 50_000_000).unwrap();
        for (i, title) in titles.iter().enumerate() {
            let doc: TantivyDocument = doc!(
                fields.kind => "evidence",
                fields.id => i as u64,
                fields.org_id => 7u64,
                fields.certification_id => 3u64,
                fields.title => *title,
            );
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
    }

    fn warmed_reader(index: &Index, service: &SearchService) -> IndexReader {
        index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(service.warmers().0)
            .try_into()
            .unwrap()
    }

    #[test]
    fn new_segments_are_decoded_and_large_ones_get_recent_statistics_before_any_search() {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        add(
            &index,
            &fields,
            &["access control policy", "audit log review"],
        );
        let service = SearchService::default();
        let visible = Visible {
            org: 7,
            certifications: None,
        };
        let access = Term::from_field_text(fields.title, "access");

        // a restart: the first searcher is warmed as the reader is built
        let reader = warmed_reader(&index, &service);
        let first = reader.searcher();
        let small = first.segment_readers()[0].segment_id();
        assert!(service.columns.contains(&small), "columns decoded on open");
        service.columns.settle();
        assert_eq!(
            service.columns.figures()[1].0,
            2,
            "and the two default orders' sort columns"
        );
        // a search asks for a document frequency: remembered
        let stats = service.stats.provider(&first, &fields, visible.clone());
        assert_eq!(stats.doc_freq(&access).unwrap(), 1);

        // a small new segment: columns decoded, statistics left to searches
        add(&index, &fields, &["access review"]);
        reader.reload().unwrap();
        let second = reader.searcher();
        let tiny = second
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .find(|id| *id != small)
            .unwrap();
        assert!(service.columns.contains(&tiny));
        assert!(!service.stats.holds_doc_freq(tiny, &visible, &access));

        // a large new segment (as a merge makes): its statistics too
        let titles: Vec<&str> = (0..STATISTICS_MIN_DOCS)
            .map(|i| {
                if i % 4 == 0 {
                    "access badge"
                } else {
                    "backup test"
                }
            })
            .collect();
        add(&index, &fields, &titles);
        reader.reload().unwrap();
        let third = reader.searcher();
        let large = third
            .segment_readers()
            .iter()
            .find(|s| s.max_doc() >= STATISTICS_MIN_DOCS)
            .unwrap()
            .segment_id();
        assert!(service.columns.contains(&large));
        assert!(
            service.stats.holds_doc_freq(large, &visible, &access),
            "the recently asked frequency is computed on the large segment"
        );
        // and it is the right figure: what a search now reads from the cache
        let stats = service.stats.provider(&third, &fields, visible);
        assert_eq!(
            stats.doc_freq(&access).unwrap(),
            2 + u64::from(STATISTICS_MIN_DOCS) / 4
        );
        assert_eq!(
            stats.total_num_docs().unwrap(),
            3 + u64::from(STATISTICS_MIN_DOCS)
        );
        assert!(
            service
                .warmer
                .segments
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 3
        );
    }
}
