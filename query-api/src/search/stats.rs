//! BM25 statistics of what the caller can see: document count, field lengths
//! and term document frequencies counted over the caller's organization (for an
//! auditor: only its certifications) plus the shared control catalogue, so a
//! caller's scores and typo tolerance never depend on documents it cannot see,
//! and nobody can probe another tenant's (or another certification's)
//! vocabulary.
//!
//! Segments are immutable, so every figure is cached per (segment, visible
//! scope): the first query on a new segment pays for a scan of the postings
//! involved, the rest are lookups. The cache is bounded by bytes, and the
//! figures of segments no searcher holds any more (merged away) are dropped
//! (see [`super::SearchService`]'s sweep). Like tantivy's own statistics,
//! deleted documents still count until their segment is merged.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tantivy::index::SegmentId;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, SegmentReader, TERMINATED, Term};

/// Documents visible to everyone (the control catalogue) carry this org id.
pub const SHARED_ORG: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Docs(SegmentId, Visible),
    Tokens(SegmentId, Visible, u32),
    DocFreq(SegmentId, Visible, u32, Vec<u8>),
}

impl Key {
    fn segment(&self) -> &SegmentId {
        match self {
            Key::Docs(s, _) | Key::Tokens(s, _, _) | Key::DocFreq(s, _, _, _) => s,
        }
    }

    /// Bytes an entry holds, roughly: the key, its heap parts, and the cache's
    /// own bookkeeping per entry.
    fn weight(&self) -> u32 {
        let visible = |v: &Visible| v.certifications.as_ref().map_or(0, |c| 16 + 8 * c.len());
        let heap = match self {
            Key::Docs(_, v) | Key::Tokens(_, v, _) => visible(v),
            Key::DocFreq(_, v, _, term) => visible(v) + term.len(),
        };
        u32::try_from(std::mem::size_of::<Key>() + heap + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }
}

/// What the cache keeps per entry besides the key (moka's entry, its place in
/// the eviction queues and the hash table), measured roughly.
const ENTRY_OVERHEAD: usize = 160;
/// Bytes the statistics cache may hold.
const MAX_BYTES: u64 = 128 << 20;

/// What a caller sees: an organization, and for auditors the certifications.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Visible {
    pub org: u64,
    /// Sorted; `None`: the whole organization.
    pub certifications: Option<Arc<[u64]>>,
}

impl Visible {
    pub fn of(scope: &crate::Scope) -> Self {
        Self {
            org: scope.org_id as u64,
            certifications: scope
                .certifications
                .as_ref()
                .map(|c| c.iter().map(|id| *id as u64).collect()),
        }
    }
}

/// A statistic some search computed on a segment that lacked it: what
/// warming computes on the next large new segment, before a search asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Wanted {
    Docs(Visible),
    Tokens(Visible, Field),
    DocFreq(Visible, Term),
}

/// How many of the statistics searches computed last are remembered for
/// warming (a query asks for a few dozen: its words, their spellings, and the
/// per-field totals).
const REMEMBERED: usize = 4096;

/// Cache of per-segment, per-organization statistics, shared by all requests.
#[derive(Clone)]
pub struct StatsCache {
    cache: Cache<Key, u64>,
    /// The statistics searches computed most recently, oldest first.
    recent: Arc<Mutex<VecDeque<Wanted>>>,
}

impl Default for StatsCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|k: &Key, _| k.weight())
                .support_invalidation_closures()
                .build(),
            recent: Arc::default(),
        }
    }
}

impl StatsCache {
    /// Drops the figures of segments not in `live`.
    pub fn retain(&self, live: &super::LiveSegments) {
        let live = live.clone();
        // fails only without `support_invalidation_closures`, set above
        let _ = self
            .cache
            .invalidate_entries_if(move |key, _| !live.contains(key.segment()));
    }

    /// Whether the document frequency of `term` for `visible` on `segment` is
    /// cached.
    #[cfg(test)]
    pub fn holds_doc_freq(&self, segment: SegmentId, visible: &Visible, term: &Term) -> bool {
        self.cache.contains_key(&Key::DocFreq(
            segment,
            visible.clone(),
            term.field().field_id(),
            term.serialized_value_bytes().to_vec(),
        ))
    }

    /// Runs the cache's pending housekeeping (tests read exact figures).
    #[cfg(test)]
    pub fn settle(&self) {
        self.cache.run_pending_tasks();
    }

    /// (entries, bytes held) as of the cache's last housekeeping, for
    /// `/metrics` (which must not wait on it).
    pub fn figures(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    pub fn provider<'a>(
        &'a self,
        searcher: &'a Searcher,
        fields: &certscope_indexer::schema::Fields,
        visible: Visible,
    ) -> OrgStats<'a> {
        OrgStats {
            cache: self,
            searcher,
            org_field: fields.org_id,
            certification_field: fields.certification_id,
            visible,
            remember: true,
        }
    }

    fn remember(&self, wanted: Wanted) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == REMEMBERED {
            recent.pop_front();
        }
        recent.push_back(wanted);
    }

    /// Computes on `searcher`'s segments that lack them the statistics searches
    /// computed most recently (newest first), then each organization's
    /// document count and its title and body token totals, until `budget` is
    /// spent. Returns how many statistics it computed over all segments (those
    /// already cached cost a lookup).
    pub fn warm(
        &self,
        searcher: &Searcher,
        fields: &certscope_indexer::schema::Fields,
        budget: Duration,
    ) -> tantivy::Result<usize> {
        let started = Instant::now();
        let recent: Vec<Wanted> = {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.iter().rev().cloned().collect()
        };
        let everyone = organizations(searcher, fields.org_id)?
            .into_iter()
            .map(|org| Visible {
                org,
                certifications: None,
            })
            .flat_map(|v| {
                [
                    Wanted::Docs(v.clone()),
                    Wanted::Tokens(v.clone(), fields.title),
                    Wanted::Tokens(v, fields.body),
                ]
            });
        let mut seen = HashSet::new();
        let mut computed = 0;
        for wanted in recent.into_iter().chain(everyone) {
            if started.elapsed() >= budget {
                break;
            }
            if !seen.insert(wanted.clone()) {
                continue;
            }
            let visible = match &wanted {
                Wanted::Docs(v) | Wanted::Tokens(v, _) | Wanted::DocFreq(v, _) => v.clone(),
            };
            let mut stats = self.provider(searcher, fields, visible);
            stats.remember = false;
            match &wanted {
                Wanted::Docs(_) => drop(stats.total_num_docs()?),
                Wanted::Tokens(_, field) => drop(stats.total_num_tokens(*field)?),
                Wanted::DocFreq(_, term) => drop(stats.doc_freq(term)?),
            }
            computed += 1;
        }
        Ok(computed)
    }
}

/// The organizations with documents in `searcher` (the shared catalogue's 0
/// aside).
fn organizations(searcher: &Searcher, org_field: Field) -> tantivy::Result<Vec<u64>> {
    let mut orgs = std::collections::BTreeSet::new();
    for segment in searcher.segment_readers() {
        orgs.extend(
            segment_organizations(segment, org_field)?
                .into_iter()
                .map(|(o, _)| o),
        );
    }
    orgs.remove(&SHARED_ORG);
    Ok(orgs.into_iter().collect())
}

/// Each organization with documents in `segment` (the shared catalogue's 0
/// included), with how many: the terms of `org_field` and their document
/// counts.
fn segment_organizations(
    segment: &SegmentReader,
    org_field: Field,
) -> tantivy::Result<Vec<(u64, u64)>> {
    let inverted = segment.inverted_index(org_field)?;
    let mut terms = inverted.terms().stream()?;
    let mut orgs = Vec::new();
    while terms.advance() {
        // u64 terms are stored big-endian
        if let Ok(bytes) = <[u8; 8]>::try_from(terms.key()) {
            orgs.push((u64::from_be_bytes(bytes), u64::from(terms.value().doc_freq)));
        }
    }
    Ok(orgs)
}

/// A [`Bm25StatisticsProvider`] for what one caller sees, on one searcher.
pub struct OrgStats<'a> {
    cache: &'a StatsCache,
    searcher: &'a Searcher,
    org_field: Field,
    certification_field: Field,
    visible: Visible,
    /// Whether statistics computed here are remembered for warming (not
    /// when warming computes them).
    remember: bool,
}

/// Which documents of a segment count: by organization, and for auditors by
/// certification (the catalogue always counts).
struct Counted {
    org: u64,
    /// The organization's documents must carry one of these (sorted).
    certifications: Option<Arc<[u64]>>,
    orgs: tantivy::columnar::Column<u64>,
    certs: tantivy::columnar::Column<u64>,
}

impl Counted {
    fn new(
        segment: &SegmentReader,
        visible: &Visible,
        org_field: Field,
        cert_field: Field,
    ) -> tantivy::Result<Self> {
        let schema = segment.schema();
        let ff = segment.fast_fields();
        Ok(Self {
            org: visible.org,
            certifications: visible.certifications.clone(),
            orgs: ff.u64(schema.get_field_name(org_field))?,
            certs: ff.u64(schema.get_field_name(cert_field))?,
        })
    }

    fn counts(&self, doc: u32) -> bool {
        match self.orgs.first(doc) {
            Some(SHARED_ORG) => true,
            Some(o) if o == self.org => match &self.certifications {
                None => true,
                Some(allowed) => self
                    .certs
                    .values_for_doc(doc)
                    .any(|c| allowed.binary_search(&c).is_ok()),
            },
            _ => false,
        }
    }
}

impl OrgStats<'_> {
    fn orgs(&self) -> [u64; 2] {
        [self.visible.org, SHARED_ORG]
    }

    fn org_term(&self, org: u64) -> Term {
        Term::from_field_u64(self.org_field, org)
    }

    fn counted(&self, segment: &SegmentReader) -> tantivy::Result<Counted> {
        Counted::new(
            segment,
            &self.visible,
            self.org_field,
            self.certification_field,
        )
    }

    /// Calls `f` for every document the caller sees in `segment`.
    fn for_each_visible_doc(
        &self,
        segment: &SegmentReader,
        mut f: impl FnMut(u32),
    ) -> tantivy::Result<()> {
        let inverted = segment.inverted_index(self.org_field)?;
        let counted = self.counted(segment)?;
        for org in self.orgs() {
            if let Some(mut postings) =
                inverted.read_postings(&self.org_term(org), IndexRecordOption::Basic)?
            {
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    if counted.counts(doc) {
                        f(doc);
                    }
                    doc = postings.advance();
                }
            }
        }
        Ok(())
    }

    fn segment_docs(&self, segment: &SegmentReader) -> tantivy::Result<u64> {
        let key = Key::Docs(segment.segment_id(), self.visible.clone());
        if let Some(n) = self.cache.cache.get(&key) {
            return Ok(n);
        }
        let n = if self.visible.certifications.is_none() {
            let inverted = segment.inverted_index(self.org_field)?;
            let mut n = 0;
            for org in self.orgs() {
                n += u64::from(inverted.doc_freq(&self.org_term(org))?);
            }
            n
        } else {
            let mut n = 0;
            self.for_each_visible_doc(segment, |_| n += 1)?;
            n
        };
        self.cache.cache.insert(key, n);
        if self.remember {
            self.cache.remember(Wanted::Docs(self.visible.clone()));
        }
        Ok(n)
    }
}

impl Bm25StatisticsProvider for OrgStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let mut total = 0;
        let mut missed = false;
        for segment in self.searcher.segment_readers() {
            let key = Key::Tokens(segment.segment_id(), self.visible.clone(), field.field_id());
            if let Some(n) = self.cache.cache.get(&key) {
                total += n;
                continue;
            }
            let norms = segment.get_fieldnorms_reader(field)?;
            let mut n = 0u64;
            self.for_each_visible_doc(segment, |doc| n += u64::from(norms.fieldnorm(doc)))?;
            self.cache.cache.insert(key, n);
            total += n;
            missed = true;
        }
        if missed && self.remember {
            self.cache
                .remember(Wanted::Tokens(self.visible.clone(), field));
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
        let mut missed = false;
        for segment in self.searcher.segment_readers() {
            let key = Key::DocFreq(
                segment.segment_id(),
                self.visible.clone(),
                term.field().field_id(),
                term.serialized_value_bytes().to_vec(),
            );
            if let Some(n) = self.cache.cache.get(&key) {
                total += n;
                continue;
            }
            let n = if self.visible.certifications.is_none() {
                org_doc_freq(segment, term, self.org_field, self.visible.org)?
            } else {
                segment_doc_freq(segment, term, &self.counted(segment)?)?
            };
            self.cache.cache.insert(key, n);
            total += n;
            missed = true;
        }
        if missed && self.remember {
            self.cache
                .remember(Wanted::DocFreq(self.visible.clone(), term.clone()));
        }
        Ok(total)
    }
}

/// What reading a posting list costs besides its documents, counted in
/// documents (for choosing the cheaper way to count).
const LIST_COST: u64 = 64;

/// Documents in `segment` that contain `term` and belong to `org` or the shared
/// catalogue: as [`segment_doc_freq`] counts them, without reading a column per
/// document. Each organization's documents are a posting list of `org_field`,
/// so the count is a sum of intersections, computed by leapfrogging (the
/// shorter list seeks in the longer one): either of the visible organizations'
/// lists with the term's, or, when that is cheaper (the caller's organization
/// holds most of the segment), the term's document count less its
/// intersections with every other organization's list.
fn org_doc_freq(
    segment: &SegmentReader,
    term: &Term,
    org_field: Field,
    org: u64,
) -> tantivy::Result<u64> {
    let inverted = segment.inverted_index(term.field())?;
    let Some(info) = inverted.get_term_info(term)? else {
        return Ok(0);
    };
    let term_docs = u64::from(info.doc_freq);
    let orgs_index = segment.inverted_index(org_field)?;
    let (visible, hidden): (Vec<_>, Vec<_>) = segment_organizations(segment, org_field)?
        .into_iter()
        .partition(|(o, _)| *o == org || *o == SHARED_ORG);
    let cost = |lists: &[(u64, u64)]| -> u64 {
        lists
            .iter()
            .map(|(_, docs)| (*docs).min(term_docs) + LIST_COST)
            .sum()
    };
    let complement = cost(&hidden) < cost(&visible);
    let mut n = 0;
    for (o, _) in if complement { &hidden } else { &visible } {
        let Some(mut members) = orgs_index.read_postings(
            &Term::from_field_u64(org_field, *o),
            IndexRecordOption::Basic,
        )?
        else {
            continue;
        };
        let mut holders = inverted.read_postings_from_terminfo(&info, IndexRecordOption::Basic)?;
        n += intersection_len(&mut members, &mut holders);
    }
    Ok(if complement {
        term_docs.saturating_sub(n)
    } else {
        n
    })
}

/// Documents in both `a` and `b`, by leapfrogging: the list behind seeks to the
/// other's document (posting lists skip whole blocks).
fn intersection_len(a: &mut impl DocSet, b: &mut impl DocSet) -> u64 {
    let (mut x, mut y) = (a.doc(), b.doc());
    let mut n = 0;
    while x != TERMINATED && y != TERMINATED {
        if x == y {
            n += 1;
            x = a.advance();
            y = b.advance();
        } else if x < y {
            x = a.seek(y);
        } else {
            y = b.seek(x);
        }
    }
    n
}

/// Documents in `segment` that contain `term` and count for the caller.
fn segment_doc_freq(
    segment: &SegmentReader,
    term: &Term,
    counted: &Counted,
) -> tantivy::Result<u64> {
    let inverted = segment.inverted_index(term.field())?;
    let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
        return Ok(0);
    };
    let mut n = 0;
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if counted.counts(doc) {
            n += 1;
        }
        doc = postings.advance();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use certscope_indexer::schema;
    use rand::{Rng, SeedableRng};
    use tantivy::{Index, TantivyDocument, doc};

    use super::*;

    /// Segments of several organizations (one holding most documents, as the
    /// benchmark's does), the shared catalogue, and deleted documents.
    #[test]
    fn counting_by_intersections_matches_counting_document_by_document() {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer = index.writer_with_num_threads(1, 50_000_000).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let words = ["access", "audit", "backup", "control", "encryption", "log"];
        for round in 0..3 {
            for id in 0..4_000u64 {
                let org = match rng.random_range(0..100) {
                    0..=69 => 1,
                    70..=79 => 2,
                    80..=89 => 3,
                    90..=94 => 4,
                    _ => SHARED_ORG,
                };
                let title: Vec<&str> = words
                    .iter()
                    .filter(|_| rng.random_bool(0.3))
                    .copied()
                    .collect();
                let doc: TantivyDocument = doc!(
                    fields.kind => "evidence",
                    fields.id => round * 10_000 + id,
                    fields.org_id => org,
                    fields.title => title.join(" "),
                );
                writer.add_document(doc).unwrap();
            }
            // deleted documents still count, as tantivy's statistics do
            writer.delete_term(Term::from_field_u64(fields.id, round * 10_000 + 5));
            writer.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        for segment in searcher.segment_readers() {
            for org in [1, 2, 3, 4, 5] {
                let visible = Visible {
                    org,
                    certifications: None,
                };
                let counted =
                    Counted::new(segment, &visible, fields.org_id, fields.certification_id)
                        .unwrap();
                for word in words.iter().chain(&["absent"]) {
                    let term = Term::from_field_text(fields.title, word);
                    assert_eq!(
                        org_doc_freq(segment, &term, fields.org_id, org).unwrap(),
                        segment_doc_freq(segment, &term, &counted).unwrap(),
                        "organization {org}, {word}"
                    );
                }
            }
        }
    }
}
