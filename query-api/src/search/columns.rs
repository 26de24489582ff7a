//! Facet columns of a segment decoded once into plain arrays (a few bytes per
//! document), so that counting eight facets over hundreds of thousands of
//! matches costs array reads instead of column decoding. Segments never change,
//! so an entry is valid for the segment's life; the cache is bounded by the
//! bytes it holds, and entries of segments no searcher holds any more (merged
//! away) are dropped (see [`super::SearchService`]'s sweep).

use std::collections::HashMap;
use std::sync::Arc;

use certscope_domain::Kind;
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
}

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
        n * (1 + 12 + 4 + 4 + 4 + wide * 4) + terms + strings(&self.control_terms) + multi
    }

    fn load(reader: &SegmentReader) -> tantivy::Result<Self> {
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
        }
    }
}

impl ColumnCache {
    pub fn contains(&self, segment: &SegmentId) -> bool {
        self.cache.contains_key(segment)
    }

    pub fn get(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
        let id = reader.segment_id();
        if let Some(c) = self.cache.get(&id) {
            return Ok(c);
        }
        let loaded = Arc::new(SegmentColumns::load(reader)?);
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
