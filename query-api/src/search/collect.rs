//! One pass over the matching documents computes the exact total, the page of
//! hits after the cursor, and every facet's counts with multi-select semantics:
//! OR within a facet, AND across facets, and each facet counted with all
//! selections applied except its own. A document failing exactly one facet's
//! selection still counts for that facet; failing two, for none.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use certscope_indexer::schema::Kind;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// Facets, in response order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facet {
    Kind,
    Framework,
    Family,
    Status,
    Owner,
    Certification,
    RiskLevel,
    Due,
}

impl Facet {
    pub const ALL: [Facet; 8] = [
        Facet::Kind,
        Facet::Framework,
        Facet::Family,
        Facet::Status,
        Facet::Owner,
        Facet::Certification,
        Facet::RiskLevel,
        Facet::Due,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Facet::Kind => "kind",
            Facet::Framework => "framework",
            Facet::Family => "family",
            Facet::Status => "status",
            Facet::Owner => "owner",
            Facet::Certification => "certification",
            Facet::RiskLevel => "risk_level",
            Facet::Due => "due",
        }
    }

    pub fn parse(s: &str) -> Option<Facet> {
        Facet::ALL.into_iter().find(|f| f.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The keyword fast field behind a string facet.
    fn str_field(self) -> Option<&'static str> {
        Some(match self {
            Facet::Kind => "kind",
            Facet::Framework => "framework",
            Facet::Family => "family",
            Facet::Status => "status",
            Facet::Owner => "owner",
            Facet::RiskLevel => "risk_level",
            Facet::Certification | Facet::Due => return None,
        })
    }
}

/// Date buckets of the `due` facet (cumulative windows).
pub const DUE_BUCKETS: [&str; 4] = ["overdue", "due_30", "due_60", "due_90"];
const DAY: i64 = 86_400;

/// Whether an item in this status no longer has a deadline to meet.
pub fn is_closed(kind: Kind, status: &str) -> bool {
    match kind {
        Kind::Requirement => matches!(status, "implemented" | "not_applicable"),
        Kind::Certification => matches!(status, "certified" | "withdrawn" | "expired"),
        Kind::Evidence => status == "rejected",
        Kind::Risk => matches!(status, "closed" | "accepted"),
        Kind::Control => true,
    }
}

/// Selected values per facet; empty means no selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selections(pub [Vec<String>; 8]);

impl Selections {
    pub fn get(&self, f: Facet) -> &[String] {
        &self.0[f.index()]
    }

    pub fn get_mut(&mut self, f: Facet) -> &mut Vec<String> {
        &mut self.0[f.index()]
    }
}

/// What hits are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortBy {
    Relevance,
    /// A date fast field.
    Date(&'static str),
    /// A u64 fast field.
    Number(&'static str),
    /// `title_sort`.
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

/// A hit's place in the order: primary value, then kind and id (unique).
#[derive(Debug, Clone, PartialEq)]
pub enum Primary {
    Num(f64),
    Str(String),
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub primary: Primary,
    pub kind: u8,
    pub id: u64,
}

impl SortKey {
    /// `Less` when `self` comes first in results.
    pub fn order(&self, other: &SortKey, descending: bool) -> Ordering {
        let primary = match (&self.primary, &other.primary) {
            (Primary::Missing, Primary::Missing) => Ordering::Equal,
            (Primary::Missing, _) => Ordering::Greater,
            (_, Primary::Missing) => Ordering::Less,
            (Primary::Num(a), Primary::Num(b)) => {
                let o = a.total_cmp(b);
                if descending { o.reverse() } else { o }
            }
            (Primary::Str(a), Primary::Str(b)) => {
                let o = a.cmp(b);
                if descending { o.reverse() } else { o }
            }
            (Primary::Num(_), Primary::Str(_)) => Ordering::Less,
            (Primary::Str(_), Primary::Num(_)) => Ordering::Greater,
        };
        primary
            .then(self.kind.cmp(&other.kind))
            .then(self.id.cmp(&other.id))
    }
}

pub fn kind_rank(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub selections: Selections,
    /// Facets to count.
    pub facets: Vec<Facet>,
    pub sort: Sort,
    pub after: Option<SortKey>,
    pub limit: usize,
    /// Start of today (UTC), seconds, for the due buckets.
    pub today: i64,
    /// For auditors: the only certification ids that may be counted (a risk
    /// linked to several certifications must not reveal the others).
    pub visible_certifications: Option<Vec<u64>>,
}

#[derive(Debug, Default)]
pub struct Fruit {
    pub total: u64,
    pub facets: HashMap<Facet, HashMap<String, u64>>,
    pub hits: Vec<(SortKey, DocAddress)>,
}

pub struct SearchCollector {
    pub plan: Plan,
}

struct Entry {
    key: SortKey,
    addr: DocAddress,
    descending: bool,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// The heap's top is the worst hit kept so far.
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.order(&other.key, self.descending)
    }
}

enum FacetColumn {
    Str {
        col: StrColumn,
        selected: Vec<u64>,
        counts: Vec<u64>,
    },
    Cert {
        col: Column<u64>,
        selected: Vec<u64>,
        counts: HashMap<u64, u64>,
        visible: Option<Vec<u64>>,
    },
    Due {
        selected: u8,
        counts: [u64; 4],
    },
    /// The field does not exist in this segment: nothing matches a selection.
    Absent,
}

pub struct SegmentState {
    segment: SegmentOrdinal,
    plan: Plan,
    kinds: Option<StrColumn>,
    kind_ranks: Vec<u8>,
    ids: Column<u64>,
    due: Option<Column<tantivy::DateTime>>,
    /// Per status ordinal, per kind rank: closed?
    status: Option<(StrColumn, Vec<[bool; 5]>)>,
    facets: Vec<(Facet, FacetColumn)>,
    sort_num: Option<Column<u64>>,
    sort_date: Option<Column<tantivy::DateTime>>,
    sort_str: Option<StrColumn>,
    total: u64,
    heap: BinaryHeap<Entry>,
    buf: String,
}

fn str_col(reader: &SegmentReader, name: &str) -> tantivy::Result<Option<StrColumn>> {
    reader.fast_fields().str(name)
}

fn ords_of(col: &StrColumn, values: &[String]) -> tantivy::Result<Vec<u64>> {
    let mut out = Vec::new();
    for v in values {
        if let Some(ord) = col.dictionary().term_ord(v.as_bytes())? {
            out.push(ord);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl Collector for SearchCollector {
    type Fruit = Fruit;
    type Child = SegmentState;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentState> {
        let plan = self.plan.clone();
        let kinds = str_col(reader, "kind")?;
        let mut kind_ranks = Vec::new();
        if let Some(col) = &kinds {
            let mut s = String::new();
            for ord in 0..col.num_terms() as u64 {
                s.clear();
                col.ord_to_str(ord, &mut s)?;
                kind_ranks.push(Kind::parse(&s).map_or(0, kind_rank));
            }
        }
        let status = match str_col(reader, "status")? {
            Some(col) => {
                let mut closed = Vec::new();
                let mut s = String::new();
                for ord in 0..col.num_terms() as u64 {
                    s.clear();
                    col.ord_to_str(ord, &mut s)?;
                    let mut row = [false; 5];
                    for (i, k) in Kind::ALL.iter().enumerate() {
                        row[i] = is_closed(*k, &s);
                    }
                    closed.push(row);
                }
                Some((col, closed))
            }
            None => None,
        };
        let mut facets = Vec::new();
        for &facet in Facet::ALL.iter() {
            let selected = plan.selections.get(facet);
            if selected.is_empty() && !plan.facets.contains(&facet) {
                continue;
            }
            let column = if let Some(name) = facet.str_field() {
                match str_col(reader, name)? {
                    Some(col) => FacetColumn::Str {
                        selected: ords_of(&col, selected)?,
                        counts: vec![0; col.num_terms()],
                        col,
                    },
                    None => FacetColumn::Absent,
                }
            } else if facet == Facet::Certification {
                let mut ids: Vec<u64> = selected.iter().filter_map(|s| s.parse().ok()).collect();
                ids.sort_unstable();
                FacetColumn::Cert {
                    col: reader.fast_fields().u64("certification_id")?,
                    selected: ids,
                    counts: HashMap::new(),
                    visible: plan.visible_certifications.clone().map(|mut v| {
                        v.sort_unstable();
                        v
                    }),
                }
            } else {
                let mut mask = 0u8;
                for s in selected {
                    if let Some(i) = DUE_BUCKETS.iter().position(|b| b == s) {
                        mask |= 1 << i;
                    }
                }
                FacetColumn::Due {
                    selected: mask,
                    counts: [0; 4],
                }
            };
            facets.push((facet, column));
        }
        let (mut sort_num, mut sort_date, mut sort_str) = (None, None, None);
        match plan.sort.by {
            SortBy::Relevance => {}
            SortBy::Number(name) => sort_num = Some(reader.fast_fields().u64(name)?),
            SortBy::Date(name) => sort_date = Some(reader.fast_fields().date(name)?),
            SortBy::Title => sort_str = str_col(reader, "title_sort")?,
        }
        Ok(SegmentState {
            segment,
            ids: reader.fast_fields().u64("id")?,
            due: Some(reader.fast_fields().date("due_date")?),
            kinds,
            kind_ranks,
            status,
            facets,
            sort_num,
            sort_date,
            sort_str,
            total: 0,
            heap: BinaryHeap::with_capacity(plan.limit + 1),
            plan,
            buf: String::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.plan.sort.by == SortBy::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let mut out = Fruit::default();
        for f in fruits {
            out.total += f.total;
            for (facet, counts) in f.facets {
                let into = out.facets.entry(facet).or_default();
                for (v, n) in counts {
                    *into.entry(v).or_default() += n;
                }
            }
            out.hits.extend(f.hits);
        }
        let descending = self.plan.sort.descending;
        out.hits.sort_by(|a, b| a.0.order(&b.0, descending));
        out.hits.truncate(self.plan.limit);
        Ok(out)
    }
}

impl SegmentState {
    fn kind_rank(&self, doc: DocId) -> u8 {
        self.kinds
            .as_ref()
            .and_then(|c| c.ords().first(doc))
            .and_then(|o| self.kind_ranks.get(o as usize).copied())
            .unwrap_or(0)
    }

    /// Bit mask of the due buckets the document falls in.
    fn due_mask(&self, doc: DocId, kind: u8) -> u8 {
        let Some(due) = self.due.as_ref().and_then(|c| c.first(doc)) else {
            return 0;
        };
        if let Some((col, closed)) = &self.status {
            let is_closed = col
                .ords()
                .first(doc)
                .and_then(|o| closed.get(o as usize))
                .is_some_and(|row| row[kind as usize]);
            if is_closed {
                return 0;
            }
        }
        let due = due.into_timestamp_secs();
        let today = self.plan.today;
        if due < today {
            return 1;
        }
        let mut mask = 0;
        for (i, days) in [30, 60, 90].into_iter().enumerate() {
            if due < today + days * DAY {
                mask |= 1 << (i + 1);
            }
        }
        mask
    }

    /// Whether the document is in an active facet's selection.
    fn passes(column: &FacetColumn, doc: DocId, due: u8) -> bool {
        match column {
            FacetColumn::Str { col, selected, .. } => col
                .term_ords(doc)
                .any(|o| selected.binary_search(&o).is_ok()),
            FacetColumn::Cert { col, selected, .. } => col
                .values_for_doc(doc)
                .any(|v| selected.binary_search(&v).is_ok()),
            FacetColumn::Due { selected, .. } => due & selected != 0,
            FacetColumn::Absent => false,
        }
    }

    fn count(column: &mut FacetColumn, doc: DocId, due: u8) {
        match column {
            FacetColumn::Str { col, counts, .. } => {
                for o in col.term_ords(doc) {
                    if let Some(c) = counts.get_mut(o as usize) {
                        *c += 1;
                    }
                }
            }
            FacetColumn::Cert {
                col,
                counts,
                visible,
                ..
            } => {
                for v in col.values_for_doc(doc) {
                    if visible
                        .as_ref()
                        .is_none_or(|ids| ids.binary_search(&v).is_ok())
                    {
                        *counts.entry(v).or_default() += 1;
                    }
                }
            }
            FacetColumn::Due { counts, .. } => {
                for (i, c) in counts.iter_mut().enumerate() {
                    if due & (1 << i) != 0 {
                        *c += 1;
                    }
                }
            }
            FacetColumn::Absent => {}
        }
    }

    fn key(&mut self, doc: DocId, score: Score, kind: u8) -> SortKey {
        let primary = match self.plan.sort.by {
            SortBy::Relevance => Primary::Num(f64::from(score)),
            SortBy::Number(_) => self
                .sort_num
                .as_ref()
                .and_then(|c| c.first(doc))
                .map_or(Primary::Missing, |v| Primary::Num(v as f64)),
            SortBy::Date(_) => self
                .sort_date
                .as_ref()
                .and_then(|c| c.first(doc))
                .map_or(Primary::Missing, |v| {
                    Primary::Num(v.into_timestamp_secs() as f64)
                }),
            SortBy::Title => {
                let ord = self.sort_str.as_ref().and_then(|c| c.ords().first(doc));
                match (ord, &self.sort_str) {
                    (Some(ord), Some(col)) => {
                        self.buf.clear();
                        match col.ord_to_str(ord, &mut self.buf) {
                            Ok(true) => Primary::Str(self.buf.clone()),
                            _ => Primary::Missing,
                        }
                    }
                    _ => Primary::Missing,
                }
            }
        };
        SortKey {
            primary,
            kind,
            id: self.ids.first(doc).unwrap_or(0),
        }
    }
}

impl SegmentCollector for SegmentState {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let kind = self.kind_rank(doc);
        let needs_due = self.facets.iter().any(|(f, _)| *f == Facet::Due);
        let due = if needs_due {
            self.due_mask(doc, kind)
        } else {
            0
        };
        let mut failed: Option<usize> = None;
        for (i, (facet, column)) in self.facets.iter().enumerate() {
            if self.plan.selections.get(*facet).is_empty() {
                continue;
            }
            if !Self::passes(column, doc, due) {
                if failed.is_some() {
                    return;
                }
                failed = Some(i);
            }
        }
        if let Some(i) = failed {
            let (facet, column) = &mut self.facets[i];
            if self.plan.facets.contains(facet) {
                Self::count(column, doc, due);
            }
            return;
        }
        self.total += 1;
        for (facet, column) in self.facets.iter_mut() {
            if self.plan.facets.contains(facet) {
                Self::count(column, doc, due);
            }
        }
        if self.plan.limit == 0 {
            return;
        }
        let key = self.key(doc, score, kind);
        let descending = self.plan.sort.descending;
        if let Some(after) = &self.plan.after
            && key.order(after, descending) != Ordering::Greater
        {
            return;
        }
        if self.heap.len() >= self.plan.limit {
            if let Some(worst) = self.heap.peek()
                && key.order(&worst.key, descending) != Ordering::Less
            {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Entry {
            key,
            addr: DocAddress::new(self.segment, doc),
            descending,
        });
    }

    fn harvest(self) -> Fruit {
        let mut facets = HashMap::new();
        let mut buf = String::new();
        for (facet, column) in self.facets {
            let counts: HashMap<String, u64> = match column {
                FacetColumn::Str { col, counts, .. } => counts
                    .into_iter()
                    .enumerate()
                    .filter(|(_, n)| *n > 0)
                    .filter_map(|(ord, n)| {
                        buf.clear();
                        match col.ord_to_str(ord as u64, &mut buf) {
                            Ok(true) => Some((buf.clone(), n)),
                            _ => None,
                        }
                    })
                    .collect(),
                FacetColumn::Cert { counts, .. } => counts
                    .into_iter()
                    .map(|(k, n)| (k.to_string(), n))
                    .collect(),
                FacetColumn::Due { counts, .. } => DUE_BUCKETS
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(b, n)| ((*b).to_owned(), n))
                    .collect(),
                FacetColumn::Absent => HashMap::new(),
            };
            facets.insert(facet, counts);
        }
        Fruit {
            total: self.total,
            facets,
            hits: self.heap.into_iter().map(|e| (e.key, e.addr)).collect(),
        }
    }
}
