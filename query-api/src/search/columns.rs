//! Facet columns of a segment decoded once into plain arrays (a few bytes per
//! document), so that counting eight facets over hundreds of thousands of
//! matches costs array reads instead of column decoding. Segments never change,
//! so an entry is valid for the segment's life; the cache is bounded by the
//! bytes it holds, and entries of segments no searcher holds any more (merged
//! away) are dropped (see [`super::SearchService`]'s sweep).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use certscope_domain::{DueBucket, Kind};
use moka::sync::Cache;
use tantivy::columnar::{Column, ColumnIndex, StrColumn};
use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

use super::collect::{Facet, SortBy};

/// No value for this document.
pub const NONE: u32 = u32::MAX;
/// Several values: see `multi`.
pub const MANY: u32 = u32::MAX - 1;

/// The UTC day a time falls on, in days since 1970 (saturating far beyond).
pub fn day_number(secs: i64) -> i32 {
    let day = secs.div_euclid(86_400);
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { NO_DATE - 1 })
}

/// The kinds `collapse=control` folds into one result per control.
pub const GROUPED_KINDS: [Kind; 2] = [Kind::Control, Kind::Requirement];
/// No due date.
pub const NO_DATE: i32 = i32::MAX;

/// Columns of at most this many values (per segment) also keep one bit set
/// per value, so that a facet is counted over many matches by a popcount per
/// value and word of the matches' bit set instead of a read per match.
pub const BIT_SET_VALUES: usize = 32;

/// A set of a segment's documents, a bit each.
#[derive(Clone, Debug, Default)]
pub struct DocBits {
    words: Vec<u64>,
}

/// Word buffers of dropped bit sets, for the next: a search makes several
/// per segment (the matches, those passing each selection, those failing
/// one), and a large buffer allocated and freed each time costs page faults
/// and the allocator's returns of pages to the kernel (with a TLB shootdown on
/// every core), more than a small search itself.
static SPARE_WORDS: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());
/// Buffers kept at most, and words in them at most (16 MiB).
const SPARE_BUFFERS: usize = 64;
const SPARE_WORDS_MAX: usize = (16 << 20) / 8;

impl Drop for DocBits {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        if words.capacity() == 0 || words.capacity() > SPARE_WORDS_MAX {
            return;
        }
        let mut spare = SPARE_WORDS.lock().unwrap_or_else(|e| e.into_inner());
        let kept: usize = spare.iter().map(Vec::capacity).sum();
        if spare.len() < SPARE_BUFFERS && kept + words.capacity() <= SPARE_WORDS_MAX {
            spare.push(words);
        }
    }
}

impl DocBits {
    /// The empty set of a segment of `max_doc` documents.
    pub fn new(max_doc: u32) -> Self {
        let n = (max_doc as usize).div_ceil(64);
        let reused = {
            let mut spare = SPARE_WORDS.lock().unwrap_or_else(|e| e.into_inner());
            // the smallest that fits
            let best = spare
                .iter()
                .enumerate()
                .filter(|(_, w)| w.capacity() >= n)
                .min_by_key(|(_, w)| w.capacity())
                .map(|(i, _)| i);
            best.map(|i| spare.swap_remove(i))
        };
        let words = match reused {
            Some(mut words) => {
                words.clear();
                words.resize(n, 0);
                words
            }
            None => vec![0; n],
        };
        Self { words }
    }

    #[inline(always)]
    pub fn insert(&mut self, doc: DocId) {
        if let Some(w) = self.words.get_mut((doc / 64) as usize) {
            *w |= 1 << (doc % 64);
        }
    }

    pub fn contains(&self, doc: DocId) -> bool {
        self.words
            .get((doc / 64) as usize)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    /// Documents in the set.
    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Words of 64 documents.
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// Documents in both sets.
    pub fn count_and(&self, other: &DocBits) -> u64 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }

    /// Adds the documents of `other` (a set of the same segment).
    pub fn union_with(&mut self, other: &DocBits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// The documents, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = DocId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let base = (i * 64) as DocId;
            std::iter::successors((w != 0).then_some(w), |w| {
                let rest = w & (w - 1);
                (rest != 0).then_some(rest)
            })
            .map(move |w| base + w.trailing_zeros())
        })
    }

    /// The words of 64 documents each (document `d` is bit `d % 64` of word
    /// `d / 64`).
    pub fn as_words(&self) -> &[u64] {
        &self.words
    }

    pub fn as_words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    fn bytes(&self) -> u64 {
        8 * self.words.len() as u64
    }
}

/// Each certification's documents, when there are at most `limit`
/// (`certification` and `multi` as in [`SegmentColumns`]).
fn certification_bits(
    certification: &[u32],
    multi: &HashMap<DocId, Vec<u64>>,
    n: u32,
    limit: usize,
) -> Option<Vec<(u64, DocBits)>> {
    if limit == 0 {
        return None;
    }
    let mut ids = std::collections::BTreeSet::new();
    let singles = certification
        .iter()
        .filter(|v| **v < MANY)
        .map(|v| u64::from(*v));
    for id in singles.chain(multi.values().flatten().copied()) {
        if ids.insert(id) && ids.len() > limit {
            return None;
        }
    }
    let mut bits: Vec<(u64, DocBits)> = ids.into_iter().map(|id| (id, DocBits::new(n))).collect();
    let mut add = |doc: DocId, id: u64| {
        if let Ok(i) = bits.binary_search_by_key(&id, |(v, _)| *v) {
            bits[i].1.insert(doc);
        }
    };
    for (doc, &v) in certification.iter().enumerate() {
        match v {
            NONE => {}
            MANY => {
                for &id in multi.get(&(doc as DocId)).into_iter().flatten() {
                    add(doc as DocId, id);
                }
            }
            v => add(doc as DocId, u64::from(v)),
        }
    }
    Some(bits)
}

/// A keyword column: each document's term ordinal, and the terms.
pub struct Keyword {
    pub ords: Vec<u32>,
    pub terms: Vec<String>,
}

/// Keyword facets in the order of a row.
pub const KEYWORD_FACETS: [Facet; 6] = [
    Facet::Kind,
    Facet::Framework,
    Facet::Family,
    Facet::Status,
    Facet::Owner,
    Facet::RiskLevel,
];
/// In a row: no value.
const ROW_NONE: u16 = u16::MAX;
/// In a row: an ordinal too large for 16 bits, found in `wide`.
const ROW_WIDE: u16 = u16::MAX - 1;

pub struct SegmentColumns {
    /// Kind rank per document.
    pub kind: Vec<u8>,
    /// Per document, the ordinals of the six keyword facets side by side: one
    /// 12-byte read per document instead of six scattered ones.
    rows: Vec<[u16; 6]>,
    /// Columns with more than 65,533 terms keep full ordinals here.
    wide: [Option<Vec<u32>>; 6],
    /// The terms of each keyword facet (`None`: the field is absent here).
    terms: [Option<Vec<String>>; 6],
    /// Certification id per document (`NONE`, or `MANY` for risks linked to
    /// several, found in `multi`).
    pub certification: Vec<u32>,
    pub multi: HashMap<DocId, Vec<u64>>,
    /// The largest single certification id, for sizing dense counts.
    pub max_certification: u32,
    /// The day (UTC, days since 1970) of the deadline still to meet,
    /// `NO_DATE` when none (closed): a day number, so that a search's due
    /// buckets cost a subtraction per document, not a division.
    pub open_due: Vec<i32>,
    /// The control a catalogue control or a requirement is (its ordinal in
    /// `control_terms`; `NONE` for other kinds): what `collapse=control` groups by.
    pub control: Vec<u32>,
    pub control_terms: Vec<String>,
    /// Per keyword column of at most [`BIT_SET_VALUES`] terms: each term's
    /// documents, by ordinal.
    value_bits: [Option<Vec<DocBits>>; 6],
    /// With at most [`BIT_SET_VALUES`] certifications here: each one's
    /// documents (a risk linked to several is in each), by id.
    certification_bits: Option<Vec<(u64, DocBits)>>,
    /// Each due bucket's documents (by [`DueBucket`] bit) on the day (a day
    /// number) they were last asked for: buckets move with the date.
    due_bits: Mutex<Option<(i32, Arc<DueBits>)>>,
    /// Whether bit sets are kept at all (off only to test counting without).
    bit_sets: bool,
}

/// Each due bucket's documents, in the order of [`DueBucket::ALL`].
pub type DueBits = [DocBits; DueBucket::ALL.len()];

impl SegmentColumns {
    /// The row position of a keyword facet.
    pub fn keyword_column(facet: Facet) -> Option<usize> {
        KEYWORD_FACETS.iter().position(|f| *f == facet)
    }

    /// The terms of keyword column `column`, if the field exists here.
    pub fn terms(&self, column: usize) -> Option<&[String]> {
        self.terms[column].as_deref()
    }

    /// The ordinal of `doc` in keyword column `column`, or `NONE`.
    #[inline(always)]
    pub fn ordinal(&self, column: usize, doc: DocId) -> u32 {
        match self.rows[doc as usize][column] {
            ROW_NONE => NONE,
            ROW_WIDE => self.wide[column].as_ref().map_or(NONE, |w| w[doc as usize]),
            o => u32::from(o),
        }
    }

    /// Adds one to `counts[o]` for the ordinal `o` of each of `docs` in
    /// keyword column `column` (`counts` as long as the column's terms;
    /// documents without a value add nothing). A tight loop over a block of
    /// documents, the column's representation decided once.
    pub fn count_ordinals(
        &self,
        column: usize,
        docs: impl IntoIterator<Item = DocId>,
        counts: &mut [u64],
    ) {
        if self.wide[column].is_some() {
            for doc in docs {
                if let Some(n) = counts.get_mut(self.ordinal(column, doc) as usize) {
                    *n += 1;
                }
            }
            return;
        }
        // a column without wide ordinals has fewer than `ROW_WIDE` terms, so
        // both markers fall beyond `counts`
        for doc in docs {
            if let Some(n) = counts.get_mut(usize::from(self.rows[doc as usize][column])) {
                *n += 1;
            }
        }
    }

    /// Each term's documents in keyword column `column`, by ordinal, when
    /// the column has few enough terms to keep them.
    pub fn value_bits(&self, column: usize) -> Option<&[DocBits]> {
        self.value_bits[column].as_deref()
    }

    /// Each certification's documents, by id, when the segment has few
    /// enough certifications to keep them.
    pub fn certification_bits(&self) -> Option<&[(u64, DocBits)]> {
        self.certification_bits.as_deref()
    }

    /// Whether bit sets are kept (off only to test counting without): the
    /// unscored matches of a segment are then gathered into one too.
    pub fn bit_sets(&self) -> bool {
        self.bit_sets
    }

    /// Each due bucket's documents on day `today` (a day number): computed
    /// on the first search of a day, kept until the next.
    pub fn due_bits(&self, today: i32) -> Option<Arc<DueBits>> {
        if !self.bit_sets {
            return None;
        }
        let mut kept = self.due_bits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((day, bits)) = &*kept
            && *day == today
        {
            return Some(bits.clone());
        }
        let n = self.open_due.len() as u32;
        let mut bits: DueBits = std::array::from_fn(|_| DocBits::new(n));
        for (doc, &due) in self.open_due.iter().enumerate() {
            if due == NO_DATE {
                continue;
            }
            let mask = DueBucket::mask(i64::from(due) - i64::from(today));
            for (i, b) in bits.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    b.insert(doc as DocId);
                }
            }
        }
        let bits = Arc::new(bits);
        *kept = Some((today, bits.clone()));
        Some(bits)
    }

    /// The ordinal of `term` in keyword column `column`.
    pub fn ordinal_of(&self, column: usize, term: &str) -> Option<u32> {
        self.terms[column]
            .as_ref()?
            .binary_search_by(|t| t.as_str().cmp(term))
            .ok()
            .map(|i| i as u32)
    }

    /// Bytes held, roughly: the per-document arrays, the terms and the
    /// multi-valued certifications.
    fn memory(&self) -> u64 {
        let n = self.kind.len() as u64;
        let wide = self.wide.iter().flatten().count() as u64;
        let strings =
            |terms: &[String]| -> u64 { terms.iter().map(|t| t.len() as u64 + 24).sum::<u64>() };
        let terms: u64 = self.terms.iter().flatten().map(|t| strings(t)).sum();
        let multi: u64 = self.multi.values().map(|v| 48 + 8 * v.len() as u64).sum();
        let bits: u64 = self
            .value_bits
            .iter()
            .flatten()
            .flatten()
            .chain(self.certification_bits.iter().flatten().map(|(_, b)| b))
            .map(DocBits::bytes)
            .sum();
        n * (1 + 12 + 4 + 4 + 4 + wide * 4)
            + terms
            + strings(&self.control_terms)
            + multi
            + bits
            + DueBucket::ALL.len() as u64 * n.div_ceil(8)
    }

    /// Decodes a segment's columns; `bit_set_values` is the most values a
    /// column may have to keep a bit set per value (0: none kept).
    fn load(reader: &SegmentReader, bit_set_values: usize) -> tantivy::Result<Self> {
        let n = reader.max_doc();
        let ff = reader.fast_fields();
        let keyword = |name: &str| -> tantivy::Result<Option<Keyword>> {
            let Some(col) = ff.str(name)? else {
                return Ok(None);
            };
            Ok(Some(Keyword {
                ords: ordinals(&col, n),
                terms: terms(&col)?,
            }))
        };
        let mut kinds = keyword("kind")?;
        let mut status = keyword("status")?;
        let kind: Vec<u8> = match &kinds {
            Some(k) => {
                let ranks: Vec<u8> = k
                    .terms
                    .iter()
                    .map(|t| Kind::parse(t).map_or(0, |k| k.index() as u8))
                    .collect();
                k.ords
                    .iter()
                    .map(|o| ranks.get(*o as usize).copied().unwrap_or(0))
                    .collect()
            }
            None => vec![0; n as usize],
        };
        // the indexer stores the deadline the domain rule leaves an item with
        // (none when closed), so the due buckets need no status here
        let deadline: Column<tantivy::DateTime> = ff.date("deadline")?;
        let mut open_due = vec![NO_DATE; n as usize];
        first_values(&deadline, n, |doc, d| {
            open_due[doc as usize] = day_number(d.into_timestamp_secs());
        });
        let cert_col: Column<u64> = ff.u64("certification_id")?;
        let mut certification = vec![NONE; n as usize];
        let mut multi = HashMap::new();
        for doc in 0..n {
            let mut values = cert_col.values_for_doc(doc);
            let Some(first) = values.next() else { continue };
            match values.next() {
                None => certification[doc as usize] = u32::try_from(first).unwrap_or(NONE),
                Some(second) => {
                    let mut all = vec![first, second];
                    all.extend(values);
                    certification[doc as usize] = MANY;
                    multi.insert(doc, all);
                }
            }
        }
        let mut columns: [Option<Keyword>; 6] = Default::default();
        for (i, facet) in KEYWORD_FACETS.iter().enumerate() {
            columns[i] = match facet {
                Facet::Kind => kinds.take(),
                Facet::Status => status.take(),
                other => match other.str_field() {
                    Some(name) => keyword(name)?,
                    None => None,
                },
            };
        }
        let mut rows = vec![[ROW_NONE; 6]; n as usize];
        let mut wide: [Option<Vec<u32>>; 6] = Default::default();
        for (i, column) in columns.iter().enumerate() {
            let Some(k) = column else { continue };
            if k.terms.len() >= usize::from(ROW_WIDE) {
                wide[i] = Some(k.ords.clone());
            }
            for (row, &o) in rows.iter_mut().zip(&k.ords) {
                row[i] = match o {
                    NONE => ROW_NONE,
                    o => u16::try_from(o)
                        .ok()
                        .filter(|o| *o < ROW_WIDE)
                        .unwrap_or(ROW_WIDE),
                };
            }
        }
        let value_bits = columns.each_ref().map(|c| {
            let k = c.as_ref().filter(|k| k.terms.len() <= bit_set_values)?;
            let mut bits = vec![DocBits::new(n); k.terms.len()];
            for (doc, &o) in k.ords.iter().enumerate() {
                if let Some(b) = bits.get_mut(o as usize) {
                    b.insert(doc as DocId);
                }
            }
            Some(bits)
        });
        let terms = columns.map(|c| c.map(|k| k.terms));
        let (mut control, control_terms) = match keyword("control")? {
            Some(k) => (k.ords, k.terms),
            None => (vec![NONE; n as usize], vec![]),
        };
        let groups = GROUPED_KINDS.map(|k| k.index() as u8);
        for (c, k) in control.iter_mut().zip(&kind) {
            if !groups.contains(k) {
                *c = NONE;
            }
        }
        let max_certification = certification
            .iter()
            .filter(|v| **v < MANY)
            .max()
            .copied()
            .unwrap_or(0);
        let certification_bits = certification_bits(&certification, &multi, n, bit_set_values);
        Ok(Self {
            kind,
            rows,
            wide,
            terms,
            certification,
            multi,
            max_certification,
            open_due,
            control,
            control_terms,
            value_bits,
            certification_bits,
            due_bits: Mutex::new(None),
            bit_sets: bit_set_values > 0,
        })
    }
}

/// Calls `put` with each document's first value, in document order. An
/// optional column (most dates) is read in one pass over its documents and
/// values, instead of a rank lookup per document.
fn first_values<T>(col: &Column<T>, n: u32, mut put: impl FnMut(DocId, T))
where
    T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static,
{
    match &col.index {
        ColumnIndex::Empty { .. } => {}
        ColumnIndex::Full => {
            for (doc, v) in (0..n).zip(col.values.iter()) {
                put(doc, v);
            }
        }
        ColumnIndex::Optional(index) => {
            for (doc, v) in index.iter_non_null_docs().zip(col.values.iter()) {
                if doc < n {
                    put(doc, v);
                }
            }
        }
        ColumnIndex::Multivalued(_) => {
            for doc in 0..n {
                if let Some(v) = col.first(doc) {
                    put(doc, v);
                }
            }
        }
    }
}

fn ordinals(col: &StrColumn, n: u32) -> Vec<u32> {
    let ords = col.ords();
    let docs: Vec<DocId> = (0..n).collect();
    let mut out = vec![None; n as usize];
    for (chunk, into) in docs.chunks(1024).zip(out.chunks_mut(1024)) {
        ords.first_vals(chunk, into);
    }
    out.into_iter()
        .map(|o| o.map_or(NONE, |v| u32::try_from(v).unwrap_or(NONE)))
        .collect()
}

fn terms(col: &StrColumn) -> tantivy::Result<Vec<String>> {
    let mut out = Vec::with_capacity(col.num_terms());
    let mut s = String::new();
    for ord in 0..col.num_terms() as u64 {
        s.clear();
        col.ord_to_str(ord, &mut s)?;
        out.push(s.clone());
    }
    Ok(out)
}

/// A sort column decoded into plain values: dates in seconds, numbers as
/// they are; `NO_VALUE` where a document has none.
pub type SortValues = Arc<Vec<i64>>;
/// In [`SortValues`]: the document has no value.
pub const NO_VALUE: i64 = i64::MIN;

/// Decoded columns of recently searched segments.
#[derive(Clone)]
pub struct ColumnCache {
    cache: Cache<SegmentId, Arc<SegmentColumns>>,
    /// Sort columns, decoded when a search first sorts a segment by them: a
    /// sorted search over many matches read each one from the column's
    /// (sparse) index, a fifth of its time by `perf`.
    sorts: Cache<(SegmentId, &'static str), SortValues>,
    /// See [`SegmentColumns::load`].
    bit_set_values: usize,
}

impl Default for ColumnCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                // bytes: room for several million documents
                .max_capacity(512 << 20)
                .weigher(|_, v: &Arc<SegmentColumns>| u32::try_from(v.memory()).unwrap_or(u32::MAX))
                .support_invalidation_closures()
                .build(),
            sorts: Cache::builder()
                // eight bytes per document and column
                .max_capacity(256 << 20)
                .weigher(|_, v: &SortValues| u32::try_from(v.len() * 8).unwrap_or(u32::MAX))
                .support_invalidation_closures()
                .build(),
            bit_set_values: BIT_SET_VALUES,
        }
    }
}

impl ColumnCache {
    /// A cache whose columns keep no bit sets: every facet counted and
    /// selection tested per document (to test the bit sets against).
    #[cfg(test)]
    pub fn without_bit_sets() -> Self {
        Self {
            bit_set_values: 0,
            ..Self::default()
        }
    }

    pub fn contains(&self, segment: &SegmentId) -> bool {
        self.cache.contains_key(segment)
    }

    pub fn get(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
        let id = reader.segment_id();
        if let Some(c) = self.cache.get(&id) {
            return Ok(c);
        }
        let loaded = Arc::new(SegmentColumns::load(reader, self.bit_set_values)?);
        self.cache.insert(id, loaded.clone());
        Ok(loaded)
    }

    /// The values per document of the date or number column `by` sorts on
    /// (`None` for orders that read no such column: relevance, title).
    pub fn sort_values(
        &self,
        reader: &SegmentReader,
        by: SortBy,
    ) -> tantivy::Result<Option<SortValues>> {
        let (field, date) = match by {
            SortBy::Date(field) => (field, true),
            SortBy::Number(field) => (field, false),
            SortBy::Relevance | SortBy::Title => return Ok(None),
        };
        let key = (reader.segment_id(), field);
        if let Some(v) = self.sorts.get(&key) {
            return Ok(Some(v));
        }
        let n = reader.max_doc();
        let ff = reader.fast_fields();
        let mut values = vec![NO_VALUE; n as usize];
        if date {
            let col: Column<tantivy::DateTime> = ff.date(field)?;
            first_values(&col, n, |doc, d| {
                values[doc as usize] = d.into_timestamp_secs();
            });
        } else {
            let col: Column<u64> = ff.u64(field)?;
            first_values(&col, n, |doc, x| {
                // scores and counts: far below 2^63
                values[doc as usize] = i64::try_from(x).unwrap_or(i64::MAX);
            });
        }
        let values = Arc::new(values);
        self.sorts.insert(key, values.clone());
        Ok(Some(values))
    }

    /// Drops the entries of segments not in `live`.
    pub fn retain(&self, live: &super::LiveSegments) {
        let keep = live.clone();
        // fails only without `support_invalidation_closures`, set above
        let _ = self
            .cache
            .invalidate_entries_if(move |segment, _| !keep.contains(segment));
        let keep = live.clone();
        let _ = self
            .sorts
            .invalidate_entries_if(move |(segment, _), _| !keep.contains(segment));
    }

    /// Runs the cache's pending housekeeping (tests read exact figures).
    #[cfg(test)]
    pub fn settle(&self) {
        self.cache.run_pending_tasks();
        self.sorts.run_pending_tasks();
    }

    /// (entries, bytes held) as of the cache's last housekeeping, for
    /// `/metrics` (which must not wait on it): the facet columns, then the
    /// sort columns.
    pub fn figures(&self) -> [(u64, u64); 2] {
        [
            (self.cache.entry_count(), self.cache.weighted_size()),
            (self.sorts.entry_count(), self.sorts.weighted_size()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use certscope_indexer::schema;
    use tantivy::{DateTime, Index, TantivyDocument, doc};

    use super::*;

    #[test]
    fn sort_columns_decode_to_each_documents_first_value() {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer = index.writer_with_num_threads(1, 50_000_000).unwrap();
        // dates on some documents only (an optional column), a score on all
        // (a full one)
        for i in 0..300u64 {
            let mut doc: TantivyDocument = doc!(
                fields.kind => "risk",
                fields.id => i,
                fields.residual_score => i * 7 % 25,
            );
            if i % 3 != 0 {
                doc.add_date(
                    fields.due_date,
                    DateTime::from_timestamp_secs(1_700_000_000 + (i as i64) * 86_400),
                );
            }
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let reader = searcher.segment_reader(0);
        let cache = ColumnCache::default();
        let dates = cache
            .sort_values(reader, SortBy::Date("due_date"))
            .unwrap()
            .unwrap();
        let scores = cache
            .sort_values(reader, SortBy::Number("residual_score"))
            .unwrap()
            .unwrap();
        let ff = reader.fast_fields();
        let (date_col, score_col) = (
            ff.date("due_date").unwrap(),
            ff.u64("residual_score").unwrap(),
        );
        for doc in 0..reader.max_doc() {
            let want = date_col
                .first(doc)
                .map_or(NO_VALUE, |d| d.into_timestamp_secs());
            assert_eq!(dates[doc as usize], want, "due_date of #{doc}");
            let want = score_col.first(doc).map_or(NO_VALUE, |v| v as i64);
            assert_eq!(scores[doc as usize], want, "residual_score of #{doc}");
        }
        assert_eq!(dates.iter().filter(|d| **d == NO_VALUE).count(), 100);
    }
}

#[cfg(test)]
mod bit_tests {
    use std::collections::BTreeSet;

    use super::DocBits;

    #[test]
    fn doc_bits_hold_what_a_set_holds() {
        let mut next = super::super::seeded(11);
        for max_doc in [1u32, 63, 64, 65, 1_000, 4_099] {
            let mut sets = Vec::new();
            for density in [0u64, 1, 10, 90, 100] {
                let mut bits = DocBits::new(max_doc);
                let mut set = BTreeSet::new();
                for doc in 0..max_doc {
                    if next(100) < density {
                        bits.insert(doc);
                        set.insert(doc);
                    }
                }
                // beyond the segment: ignored
                bits.insert(max_doc + 64);
                assert_eq!(
                    bits.iter().collect::<Vec<_>>(),
                    set.iter().copied().collect::<Vec<_>>()
                );
                assert_eq!(bits.len(), set.len() as u64);
                assert_eq!(bits.is_empty(), set.is_empty());
                for doc in [0, 63, 64, max_doc - 1, max_doc] {
                    assert_eq!(bits.contains(doc), set.contains(&doc), "{max_doc} {doc}");
                }
                sets.push((bits, set));
            }
            for (a, sa) in &sets {
                for (b, sb) in &sets {
                    assert_eq!(a.count_and(b), sa.intersection(sb).count() as u64);
                    let mut u = a.clone();
                    u.union_with(b);
                    let su: Vec<u32> = sa.union(sb).copied().collect();
                    assert_eq!(u.iter().collect::<Vec<_>>(), su);
                }
            }
        }
    }
}
