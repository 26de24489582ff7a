//! The documents a caller may see, per segment, as a cached bit set.
//!
//! The tenancy filter (the caller's organization, or an auditor's
//! certifications, plus the shared catalogue) is itself a union of posting
//! lists. Every search intersects it with the text query, and for the
//! organization that holds most of a segment that intersection cost as much as
//! the text query: the union of ~1M postings was advanced and the text union
//! seeked for every document (a third of a common word's search, by `perf`).
//! A segment never changes, so the documents a scope may see in it never do
//! either: they are computed once from the same tenancy query into a bit set,
//! and searches test membership instead (a seek is a word lookup). A scope
//! that sees a whole segment gets tantivy's `AllScorer`, which a Boolean query
//! drops from its intersection altogether; one that sees none, the empty
//! scorer. Deleted documents may be in the set: every collector already
//! skips them.

use std::fmt;
use std::sync::Arc;

use moka::sync::Cache;
use tantivy::index::SegmentId;
use tantivy::query::{AllScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{
    BitSet, DocId, DocSet, Score, SeekDangerResult, SegmentReader, TERMINATED, TantivyError,
};

/// Visible documents by (segment, scope key), weighed in bytes.
#[derive(Clone)]
pub struct VisibleCache {
    cache: Cache<(SegmentId, Arc<str>), Arc<BitSet>>,
}

impl Default for VisibleCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                // an eighth of a byte per document and scope: 64 MiB holds
                // a 1M-document index for about 500 scopes
                .max_capacity(64 << 20)
                .weigher(|_, v: &Arc<BitSet>| (v.max_value() / 8).saturating_add(64))
                .support_invalidation_closures()
                .build(),
        }
    }
}

impl fmt::Debug for VisibleCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisibleCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl VisibleCache {
    /// Drops the entries of segments not in `live`.
    pub fn retain(&self, live: &super::LiveSegments) {
        let live = live.clone();
        // fails only without `support_invalidation_closures`, set above
        let _ = self
            .cache
            .invalidate_entries_if(move |(segment, _), _| !live.contains(segment));
    }

    /// (entries, bytes held) as of the cache's last housekeeping.
    pub fn figures(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    /// Runs the cache's pending housekeeping (tests read exact figures).
    #[cfg(test)]
    pub fn settle(&self) {
        self.cache.run_pending_tasks();
    }
}

/// The documents of `scope` matching `inner` (the tenancy query), served from
/// the cache. `key` must name the scope exactly ([`crate::auth::Scope::cache_key`]):
/// two scopes with one key share their sets.
#[derive(Debug)]
pub struct Visible {
    pub key: Arc<str>,
    pub inner: Box<dyn Query>,
    pub cache: VisibleCache,
}

impl Clone for Visible {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            inner: self.inner.box_clone(),
            cache: self.cache.clone(),
        }
    }
}

impl Query for Visible {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        // which documents, never how well: the inner query is never scored
        let inner = self
            .inner
            .weight(EnableScoring::disabled_from_schema(enable_scoring.schema()))?;
        Ok(Box::new(VisibleWeight {
            key: self.key.clone(),
            inner,
            cache: self.cache.clone(),
        }))
    }
}

struct VisibleWeight {
    key: Arc<str>,
    inner: Box<dyn Weight>,
    cache: VisibleCache,
}

impl VisibleWeight {
    fn docs(&self, reader: &SegmentReader) -> tantivy::Result<Arc<BitSet>> {
        let key = (reader.segment_id(), self.key.clone());
        self.cache
            .cache
            .try_get_with(key, || -> tantivy::Result<Arc<BitSet>> {
                let mut set = BitSet::with_max_value(reader.max_doc());
                let mut scorer = self.inner.scorer(reader, 1.0)?;
                let mut doc = scorer.doc();
                while doc != TERMINATED {
                    set.insert(doc);
                    doc = scorer.advance();
                }
                Ok(Arc::new(set))
            })
            .map_err(|e| TantivyError::InternalError(format!("visible documents: {e}")))
    }
}

impl Weight for VisibleWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let docs = self.docs(reader)?;
        let max_doc = reader.max_doc();
        Ok(match docs.len() as u32 {
            0 => Box::new(EmptyScorer),
            n if n == max_doc => Box::new(AllScorer::new(max_doc)),
            n => Box::new(VisibleScorer::new(
                docs,
                // membership is a word lookup, so a set of more than an
                // eighth of the segment follows whatever else is intersected
                // (a text query is advanced, not seeked); a sparse one (a
                // small organization in a large segment) leads
                if u64::from(n) * 8 >= u64::from(max_doc) {
                    u64::from(max_doc) * 8
                } else {
                    u64::from(n)
                },
            )),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        if doc < reader.max_doc() && self.docs(reader)?.contains(doc) {
            Ok(Explanation::new("visible to the caller", 0.0))
        } else {
            Err(TantivyError::InvalidArgument(format!(
                "document #{doc} is not visible to the caller"
            )))
        }
    }
}

/// The visible documents of one segment; scores nothing. Reads the cached set
/// itself (no copy per search); when it follows a text query in an
/// intersection, testing a document is one bit (`seek_danger`), not a search
/// for the next member.
struct VisibleScorer {
    docs: Arc<BitSet>,
    doc: DocId,
    cost: u64,
}

impl VisibleScorer {
    fn new(docs: Arc<BitSet>, cost: u64) -> Self {
        let mut scorer = VisibleScorer { docs, doc: 0, cost };
        scorer.doc = scorer.first_from(0);
        scorer
    }

    /// The first visible document at or after `from`, or `TERMINATED`.
    fn first_from(&self, from: DocId) -> DocId {
        if from >= self.docs.max_value() {
            return TERMINATED;
        }
        let word = |bucket: u32| u64::from_le_bytes(self.docs.tinyset(bucket).into_bytes());
        let bucket = from / 64;
        let here = word(bucket) & (u64::MAX << (from % 64));
        if here != 0 {
            return bucket * 64 + here.trailing_zeros();
        }
        match self.docs.first_non_empty_bucket(bucket + 1) {
            Some(next) => next * 64 + word(next).trailing_zeros(),
            None => TERMINATED,
        }
    }

    #[inline]
    fn contains(&self, doc: DocId) -> bool {
        doc < self.docs.max_value() && self.docs.contains(doc)
    }
}

impl DocSet for VisibleScorer {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.first_from(self.doc + 1);
        }
        self.doc
    }

    #[inline]
    fn seek(&mut self, target: DocId) -> DocId {
        if target > self.doc {
            self.doc = if self.contains(target) {
                target
            } else {
                self.first_from(target)
            };
        }
        self.doc
    }

    #[inline]
    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        if target >= TERMINATED {
            return SeekDangerResult::SeekLowerBound(TERMINATED);
        }
        if self.contains(target) {
            self.doc = target;
            SeekDangerResult::Found
        } else {
            SeekDangerResult::SeekLowerBound(target + 1)
        }
    }

    #[inline]
    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.docs.len() as u32
    }

    fn cost(&self) -> u64 {
        self.cost
    }
}

impl Scorer for VisibleScorer {
    #[inline]
    fn score(&mut self) -> Score {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use certscope_indexer::schema;
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::{BooleanQuery, Occur, TermQuery};
    use tantivy::schema::{IndexRecordOption, Value as _};
    use tantivy::{Index, IndexWriter, TantivyDocument, Term, doc};

    use super::super::stats::SHARED_ORG;
    use super::*;
    use crate::auth::{Role, Scope};

    /// Three segments: one wholly organization 7's, one mixed (7, 8 and a
    /// shared control), one wholly 8's. Documents: (id, org, kind, certification).
    fn index() -> (Index, schema::Fields) {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let segments: [&[(u64, u64, &str, u64)]; 3] = [
            &[(1, 7, "requirement", 3), (2, 7, "evidence", 4)],
            &[
                (3, 7, "evidence", 3),
                (4, 8, "evidence", 5),
                (5, SHARED_ORG, "control", 0),
            ],
            &[(6, 8, "requirement", 5)],
        ];
        for docs in segments {
            for &(id, org, kind, cert) in docs {
                let mut d: TantivyDocument = doc!(
                    fields.id => id,
                    fields.org_id => org,
                    fields.kind => kind,
                    fields.title => "access control",
                );
                if cert > 0 {
                    d.add_u64(fields.certification_id, cert);
                }
                writer.add_document(d).unwrap();
            }
            writer.commit().unwrap();
        }
        (index, fields)
    }

    fn scope(org_id: i64, certifications: Option<&[i64]>) -> Scope {
        Scope {
            user_id: 1,
            org_id,
            role: if certifications.is_some() {
                Role::Auditor
            } else {
                Role::Officer
            },
            certifications: certifications.map(|c| c.iter().copied().collect()),
        }
    }

    /// (id, score) of every document a title search for "access" finds
    /// within the scope.
    fn found(index: &Index, fields: &schema::Fields, q: Box<dyn Query>) -> HashMap<u64, f32> {
        let searcher = index.reader().unwrap().searcher();
        let text = TermQuery::new(
            Term::from_field_text(fields.title, "access"),
            IndexRecordOption::WithFreqs,
        );
        let query = BooleanQuery::new(vec![(Occur::Must, Box::new(text)), (Occur::Must, q)]);
        let top = searcher
            .search(&query, &TopDocs::with_limit(100).order_by_score())
            .unwrap();
        top.into_iter()
            .map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr).unwrap();
                (d.get_first(fields.id).unwrap().as_u64().unwrap(), score)
            })
            .collect()
    }

    #[test]
    fn each_scope_sees_exactly_its_documents_and_they_score_as_the_text_alone() {
        let (index, fields) = index();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        let cache = VisibleCache::default();
        let cases: [(Scope, &[u64]); 4] = [
            (scope(7, None), &[1, 2, 3, 5]),
            (scope(8, None), &[4, 5, 6]),
            (scope(7, Some(&[3])), &[1, 3, 5]),
            (scope(9, None), &[5]),
        ];
        let alone = found(&index, &fields, Box::new(tantivy::query::AllQuery));
        for (scope, want) in cases {
            let q = || super::super::tenancy(&fields, &scope, &cache);
            let got = found(&index, &fields, q());
            let ids: BTreeSet<u64> = got.keys().copied().collect();
            assert_eq!(ids, want.iter().copied().collect(), "{scope:?}");
            // the filter adds nothing to a score, whichever scorer a
            // segment got (all, some or none of its documents)
            for (id, score) in &got {
                assert_eq!(*score, alone[id], "{id}");
            }
            // a second search reads the cached sets and agrees
            assert_eq!(q().count(&searcher).unwrap(), want.len());
            assert_eq!(
                searcher.search(&q(), &Count).unwrap(),
                want.len(),
                "{scope:?}"
            );
        }
        cache.settle();
        // one set per segment and scope
        assert_eq!(cache.figures().0, 12);
    }

    #[test]
    fn the_scorer_walks_seeks_and_tests_like_a_bit_set() {
        use tantivy::query::BitSetDocSet;
        let mut next = super::super::seeded(11);
        // dense, sparse, empty tail, one member, sizes off the word boundary
        for (max, per_mille) in [
            (1_000u32, 900u64),
            (4_097, 30),
            (64, 500),
            (129, 2),
            (700, 1),
        ] {
            let mut set = BitSet::with_max_value(max);
            for doc in 0..max {
                if next(1_000) < per_mille {
                    set.insert(doc);
                }
            }
            if set.len() == 0 {
                set.insert(max - 1);
            }
            let set = Arc::new(set);
            let mut expected = BitSetDocSet::from((*set).clone());
            let mut scorer = VisibleScorer::new(set.clone(), 0);
            // walking
            while expected.doc() != TERMINATED {
                assert_eq!(scorer.doc(), expected.doc());
                assert_eq!(scorer.advance(), expected.advance());
            }
            assert_eq!(scorer.advance(), TERMINATED);
            // seeking to increasing targets
            let mut expected = BitSetDocSet::from((*set).clone());
            let mut scorer = VisibleScorer::new(set.clone(), 0);
            let mut target = 0;
            while target < max + 10 {
                assert_eq!(
                    scorer.seek(target),
                    expected.seek(target),
                    "seek {target} of {max}"
                );
                target += 1 + next(40) as u32;
            }
            // testing membership
            let mut scorer = VisibleScorer::new(set.clone(), 0);
            for target in (0..max + 3).filter(|_| next(3) == 0) {
                match scorer.seek_danger(target) {
                    SeekDangerResult::Found => {
                        assert!(set.contains(target));
                        assert_eq!(scorer.doc(), target);
                    }
                    SeekDangerResult::SeekLowerBound(bound) => {
                        assert!(target >= max || !set.contains(target));
                        assert!(bound > target);
                    }
                }
            }
        }
    }
}
