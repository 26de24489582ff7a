//! BM25 statistics of one organization: document count, field lengths and term
//! document frequencies counted over that organization's documents (plus the
//! shared control catalogue) only, so a caller's scores never depend on another
//! tenant's documents, and nobody can probe another tenant's vocabulary.
//!
//! Segments are immutable, so every figure is cached per (segment, organization):
//! the first query on a new segment pays for a scan of the postings involved, the
//! rest are lookups. Like tantivy's own statistics, deleted documents still count
//! until their segment is merged.

use moka::sync::Cache;
use tantivy::index::SegmentId;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, SegmentReader, TERMINATED, Term};

/// Documents visible to everyone (the control catalogue) carry this org id.
pub const SHARED_ORG: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Docs(SegmentId, u64),
    Tokens(SegmentId, u64, u32),
    DocFreq(SegmentId, u64, u32, Vec<u8>),
}

/// Cache of per-segment, per-organization statistics, shared by all requests.
#[derive(Clone)]
pub struct StatsCache {
    cache: Cache<Key, u64>,
}

impl Default for StatsCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder().max_capacity(2_000_000).build(),
        }
    }
}

impl StatsCache {
    pub fn provider<'a>(
        &'a self,
        searcher: &'a Searcher,
        org_field: Field,
        org: u64,
    ) -> OrgStats<'a> {
        OrgStats {
            cache: self,
            searcher,
            org_field,
            org,
        }
    }
}

/// A [`Bm25StatisticsProvider`] for one organization on one searcher.
pub struct OrgStats<'a> {
    cache: &'a StatsCache,
    searcher: &'a Searcher,
    org_field: Field,
    org: u64,
}

impl OrgStats<'_> {
    fn orgs(&self) -> [u64; 2] {
        [self.org, SHARED_ORG]
    }

    fn org_term(&self, org: u64) -> Term {
        Term::from_field_u64(self.org_field, org)
    }

    /// Calls `f` for every document of the caller's organizations in `segment`.
    fn for_each_org_doc(
        &self,
        segment: &SegmentReader,
        mut f: impl FnMut(u32),
    ) -> tantivy::Result<()> {
        let inverted = segment.inverted_index(self.org_field)?;
        for org in self.orgs() {
            if let Some(mut postings) =
                inverted.read_postings(&self.org_term(org), IndexRecordOption::Basic)?
            {
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    f(doc);
                    doc = postings.advance();
                }
            }
        }
        Ok(())
    }

    fn segment_docs(&self, segment: &SegmentReader) -> tantivy::Result<u64> {
        let key = Key::Docs(segment.segment_id(), self.org);
        if let Some(n) = self.cache.cache.get(&key) {
            return Ok(n);
        }
        let inverted = segment.inverted_index(self.org_field)?;
        let mut n = 0;
        for org in self.orgs() {
            n += u64::from(inverted.doc_freq(&self.org_term(org))?);
        }
        self.cache.cache.insert(key, n);
        Ok(n)
    }
}

impl Bm25StatisticsProvider for OrgStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let mut total = 0;
        for segment in self.searcher.segment_readers() {
            let key = Key::Tokens(segment.segment_id(), self.org, field.field_id());
            if let Some(n) = self.cache.cache.get(&key) {
                total += n;
                continue;
            }
            let norms = segment.get_fieldnorms_reader(field)?;
            let mut n = 0u64;
            self.for_each_org_doc(segment, |doc| n += u64::from(norms.fieldnorm(doc)))?;
            self.cache.cache.insert(key, n);
            total += n;
        }
        Ok(total)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        let mut total = 0;
        for segment in self.searcher.segment_readers() {
            total += self.segment_docs(segment)?;
        }
        Ok(total.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut total = 0;
        for segment in self.searcher.segment_readers() {
            let key = Key::DocFreq(
                segment.segment_id(),
                self.org,
                term.field().field_id(),
                term.serialized_value_bytes().to_vec(),
            );
            if let Some(n) = self.cache.cache.get(&key) {
                total += n;
                continue;
            }
            let n = segment_doc_freq(segment, term, self.org_field, self.orgs())?;
            self.cache.cache.insert(key, n);
            total += n;
        }
        Ok(total)
    }
}

/// Documents of `orgs` in `segment` that contain `term`.
fn segment_doc_freq(
    segment: &SegmentReader,
    term: &Term,
    org_field: Field,
    orgs: [u64; 2],
) -> tantivy::Result<u64> {
    let inverted = segment.inverted_index(term.field())?;
    let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
        return Ok(0);
    };
    let org_name = segment.schema().get_field_name(org_field).to_owned();
    let orgs_col = segment.fast_fields().u64(&org_name)?;
    let mut n = 0;
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if orgs_col.first(doc).is_some_and(|o| orgs.contains(&o)) {
            n += 1;
        }
        doc = postings.advance();
    }
    Ok(n)
}
