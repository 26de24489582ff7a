//! One pass over the matching documents computes the exact total, the page of
//! hits after the cursor, and every facet's counts with multi-select semantics:
//! OR within a facet, AND across facets, and each facet counted with all
//! selections applied except its own. A document failing exactly one facet's
//! selection still counts for that facet; failing two, for none.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use std::sync::Arc;

use certscope_domain::DueBucket;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;

use tantivy::columnar::{Column, ColumnIndex, ColumnValues, StrColumn};

use super::columns::{self, ColumnCache, DocBits, SegmentColumns};
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

    pub const COUNT: usize = Self::ALL.len();

    pub fn parse(s: &str) -> Option<Facet> {
        Facet::ALL.into_iter().find(|f| f.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The keyword fast field behind a string facet.
    pub(crate) fn str_field(self) -> Option<&'static str> {
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

/// Bit mask of the due buckets a document falls in (the domain's rule), with
/// `today` a day number.
#[inline(always)]
fn due_mask(cols: &SegmentColumns, today: i32, doc: DocId) -> u8 {
    let due = cols.open_due[doc as usize];
    if due == columns::NO_DATE {
        return 0;
    }
    DueBucket::mask(i64::from(due) - i64::from(today))
}

/// Relative margin below the page's worst score within which block-max WAND
/// still offers documents: summing a few f32 term scores in another order
/// moves them by a few parts in 10^7.
const PRUNE_MARGIN: Score = 1e-4;

/// Selected values per facet; empty means no selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selections(pub [Vec<String>; Facet::COUNT]);

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
    /// One result per control: a catalogue control and the requirements in
    /// scope of it (in any certification, from any catalogue) are one hit, at
    /// the place of the best of them.
    pub collapse: bool,
}

/// Related documents kept per collapsed result.
pub const MAX_RELATED: usize = 50;

/// A document folded into a result by `collapse=control`.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub kind: u8,
    pub id: u64,
    pub status: Option<String>,
    pub certification_id: Option<u64>,
    pub framework: Option<String>,
    /// Status and framework ordinals in the segment, until harvest names them.
    ords: (u32, u32),
}

/// The matching documents of one control, shown as one result.
#[derive(Debug, Clone)]
pub struct Collapsed {
    pub key: SortKey,
    pub addr: DocAddress,
    /// The shown document.
    pub shown: Related,
    /// Matching documents in the group, the shown one included.
    pub documents: u64,
    /// The others, best first (at most [`MAX_RELATED`]).
    pub related: Vec<(SortKey, Related)>,
}

impl Collapsed {
    /// One group of two halves (from two segments).
    fn merge(self, other: Collapsed, descending: bool) -> Collapsed {
        let (mut best, rest) = if other.key.order(&self.key, descending) == Ordering::Less {
            (other, self)
        } else {
            (self, other)
        };
        best.documents += rest.documents;
        best.related.push((rest.key, rest.shown));
        best.related.extend(rest.related);
        best.related.sort_by(|a, b| a.0.order(&b.0, descending));
        best.related.truncate(MAX_RELATED);
        best
    }

    /// Adds a document of this group.
    fn offer(&mut self, key: SortKey, addr: DocAddress, doc: Related, descending: bool) {
        self.documents += 1;
        let (key, doc) = if key.order(&self.key, descending) == Ordering::Less {
            let old_key = std::mem::replace(&mut self.key, key);
            let old_doc = std::mem::replace(&mut self.shown, doc);
            self.addr = addr;
            (old_key, old_doc)
        } else {
            (key, doc)
        };
        if self.related.len() < MAX_RELATED * 2 {
            self.related.push((key, doc));
        } else {
            self.related.sort_by(|a, b| a.0.order(&b.0, descending));
            self.related.truncate(MAX_RELATED);
            self.related.push((key, doc));
        }
    }
}

#[derive(Debug, Default)]
pub struct Fruit {
    pub total: u64,
    pub facets: HashMap<Facet, HashMap<String, u64>>,
    pub hits: Vec<(SortKey, DocAddress)>,
    /// With `collapse`: the groups by control; the page's hits that stand for
    /// one are found in it by address.
    pub groups: HashMap<String, Collapsed>,
}

impl Fruit {
    /// Results after collapsing: each group counts once.
    pub fn results(&self) -> u64 {
        let folded: u64 = self
            .groups
            .values()
            .map(|g| g.documents.saturating_sub(1))
            .sum();
        self.total.saturating_sub(folded)
    }
}

pub struct SearchCollector<'a> {
    pub plan: Plan,
    pub columns: &'a ColumnCache,
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

/// A single-valued fast column, read directly when every document has a value.
enum One<T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static> {
    Full(std::sync::Arc<dyn ColumnValues<T>>),
    Sparse(Column<T>),
}

impl<T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static> One<T> {
    fn new(col: Column<T>) -> Self {
        match col.index {
            ColumnIndex::Full => One::Full(col.values),
            _ => One::Sparse(col),
        }
    }

    #[inline]
    fn get(&self, doc: DocId) -> Option<T> {
        match self {
            One::Full(v) => Some(v.get_val(doc)),
            One::Sparse(c) => c.first(doc),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Keyword,
    Certification,
    Due,
    /// The field does not exist in this segment.
    Absent,
}

struct Slot {
    facet: Facet,
    kind: SlotKind,
    /// Row position of a keyword facet.
    column: usize,
    /// Selected ordinals (keywords) or ids (certification), sorted.
    selected: Vec<u64>,
    /// Selected due buckets.
    due_selected: u8,
    /// For auditors: the certification ids that may be counted.
    visible: Option<Vec<u64>>,
    /// Whether its facet is counted (asked for), not only selected.
    counted: bool,
    /// With a selection: the segment's documents that pass it, when the
    /// column keeps a bit set per value (a bit test per document instead of
    /// reading its value).
    pass_bits: Option<DocBits>,
    /// Counted with a selection: the documents that failed this selection
    /// alone (they count for this facet only), and how many.
    failed: Option<DocBits>,
    failed_n: u64,
    /// Counts by ordinal or id (dense), or by id beyond the dense range.
    counts: Vec<u64>,
    sparse: HashMap<u64, u64>,
    due_counts: [u64; DueBucket::ALL.len()],
}

impl Slot {
    #[inline(always)]
    fn passes(&self, cols: &SegmentColumns, doc: DocId, due: u8) -> bool {
        if let Some(bits) = &self.pass_bits {
            return bits.contains(doc);
        }
        match self.kind {
            SlotKind::Keyword => {
                let o = cols.ordinal(self.column, doc);
                o != columns::NONE && self.selected.binary_search(&u64::from(o)).is_ok()
            }
            SlotKind::Certification => match cols.certification[doc as usize] {
                columns::NONE => false,
                columns::MANY => cols
                    .multi
                    .get(&doc)
                    .is_some_and(|ids| ids.iter().any(|v| self.selected.binary_search(v).is_ok())),
                v => self.selected.binary_search(&u64::from(v)).is_ok(),
            },
            SlotKind::Due => due & self.due_selected != 0,
            SlotKind::Absent => false,
        }
    }

    #[inline(always)]
    fn add(&mut self, v: u64) {
        self.add_n(v, 1);
    }

    /// Adds `n` documents of certification `v` (if the caller may see it).
    #[inline(always)]
    fn add_n(&mut self, v: u64, n: u64) {
        if self
            .visible
            .as_ref()
            .is_some_and(|ids| ids.binary_search(&v).is_err())
        {
            return;
        }
        match self.counts.get_mut(v as usize) {
            Some(c) => *c += n,
            None => *self.sparse.entry(v).or_default() += n,
        }
    }

    /// Counts one document's certifications (without bit sets).
    #[inline(always)]
    fn count_certifications(&mut self, cols: &SegmentColumns, doc: DocId) {
        match cols.certification[doc as usize] {
            columns::NONE => {}
            columns::MANY => {
                if let Some(ids) = cols.multi.get(&doc) {
                    for v in ids {
                        self.add(*v);
                    }
                }
            }
            v => self.add(u64::from(v)),
        }
    }

    /// The segment's documents that pass this slot's selection, from the bit
    /// sets of its values (`None` where the column keeps none).
    fn pass_bits(&self, cols: &SegmentColumns, today: i32) -> Option<DocBits> {
        let mut pass = DocBits::new(cols.kind.len() as u32);
        match self.kind {
            SlotKind::Keyword => {
                let bits = cols.value_bits(self.column)?;
                for &o in &self.selected {
                    if let Some(b) = bits.get(o as usize) {
                        pass.union_with(b);
                    }
                }
            }
            SlotKind::Certification => {
                for (id, b) in cols.certification_bits()? {
                    if self.selected.binary_search(id).is_ok() {
                        pass.union_with(b);
                    }
                }
            }
            SlotKind::Due => {
                let bits = cols.due_bits(today)?;
                for (bucket, b) in DueBucket::ALL.iter().zip(bits.iter()) {
                    if self.due_selected & bucket.bit() != 0 {
                        pass.union_with(b);
                    }
                }
            }
            SlotKind::Absent => {}
        }
        Some(pass)
    }

    /// Counts the documents that passed every selection (`passed`, `n` of
    /// them): by a popcount per value and word where the column keeps a bit
    /// set per value and that costs less than reading each document's value.
    fn count_passed(&mut self, cols: &SegmentColumns, passed: &DocBits, n: u64, today: i32) {
        if n == 0 {
            return;
        }
        // a word of the bit set against each value, or about four times that
        // per document (finding its bit, reading and counting its value)
        let by_bits = |values: usize| (values * passed.words()) as u64 <= 4 * n;
        match self.kind {
            SlotKind::Keyword => match cols.value_bits(self.column) {
                Some(bits) if by_bits(bits.len()) => {
                    for (count, b) in self.counts.iter_mut().zip(bits) {
                        *count += passed.count_and(b);
                    }
                }
                _ => cols.count_ordinals(self.column, passed.iter(), &mut self.counts),
            },
            SlotKind::Certification => match cols.certification_bits() {
                Some(bits) if by_bits(bits.len()) => {
                    for (id, b) in bits {
                        let n = passed.count_and(b);
                        if n > 0 {
                            self.add_n(*id, n);
                        }
                    }
                }
                _ => {
                    for doc in passed.iter() {
                        self.count_certifications(cols, doc);
                    }
                }
            },
            SlotKind::Due => match cols
                .due_bits(today)
                .filter(|_| by_bits(DueBucket::ALL.len()))
            {
                Some(bits) => {
                    for (count, b) in self.due_counts.iter_mut().zip(bits.iter()) {
                        *count += passed.count_and(b);
                    }
                }
                None => {
                    for doc in passed.iter() {
                        let due = due_mask(cols, today, doc);
                        for (i, c) in self.due_counts.iter_mut().enumerate() {
                            *c += u64::from((due >> i) & 1);
                        }
                    }
                }
            },
            SlotKind::Absent => {}
        }
    }

    /// Counts by value, for the fruit.
    fn harvest(self, cols: &SegmentColumns) -> HashMap<String, u64> {
        let nonzero = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(v, n)| (v as u64, *n))
            .chain(self.sparse);
        match self.kind {
            SlotKind::Keyword => match cols.terms(self.column) {
                Some(terms) => nonzero
                    .filter_map(|(o, n)| terms.get(o as usize).map(|t| (t.clone(), n)))
                    .collect(),
                None => HashMap::new(),
            },
            SlotKind::Certification => nonzero.map(|(id, n)| (id.to_string(), n)).collect(),
            SlotKind::Due => DueBucket::ALL
                .iter()
                .zip(self.due_counts)
                .filter(|(_, n)| *n > 0)
                .map(|(b, n)| (b.as_str().to_owned(), n))
                .collect(),
            SlotKind::Absent => HashMap::new(),
        }
    }
}

pub struct SegmentState {
    segment: SegmentOrdinal,
    plan: Plan,
    cols: Arc<SegmentColumns>,
    ids: One<u64>,
    slots: Vec<Slot>,
    /// Slots with a selection, and slots to count.
    active: Vec<usize>,
    counted: Vec<usize>,
    uses_due: bool,
    /// Today's day number (the plan's `today` is the start of a UTC day).
    today: i32,
    /// Date and number sorts: the decoded column.
    sort_values: Option<columns::SortValues>,
    sort_str: Option<StrColumn>,
    total: u64,
    /// With facets to count: the documents that passed every selection,
    /// counted when the segment is done ([`Slot::count_passed`]).
    passed: Option<DocBits>,
    heap: BinaryHeap<Entry>,
    /// Once the page is full and its worst has a number (a score, a date, a
    /// number): that number, which a document's must beat.
    worst: Option<f64>,
    buf: String,
    /// With `collapse`: groups by control ordinal.
    groups: HashMap<u32, Collapsed>,
}

fn str_col(reader: &SegmentReader, name: &str) -> tantivy::Result<Option<StrColumn>> {
    reader.fast_fields().str(name)
}

impl Collector for SearchCollector<'_> {
    type Fruit = Fruit;
    type Child = SegmentState;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentState> {
        let plan = self.plan.clone();
        let cols = self.columns.get(reader)?;
        let ff = reader.fast_fields();
        let visible = plan.visible_certifications.clone().map(|mut v| {
            v.sort_unstable();
            v
        });
        let mut slots = Vec::new();
        for &facet in Facet::ALL.iter() {
            let selected_values = plan.selections.get(facet);
            if selected_values.is_empty() && !plan.facets.contains(&facet) {
                continue;
            }
            let mut slot = Slot {
                facet,
                kind: SlotKind::Absent,
                column: 0,
                selected: Vec::new(),
                due_selected: 0,
                visible: None,
                counted: false,
                pass_bits: None,
                failed: None,
                failed_n: 0,
                counts: Vec::new(),
                sparse: HashMap::new(),
                due_counts: [0; DueBucket::ALL.len()],
            };
            match facet {
                Facet::Certification => {
                    slot.kind = SlotKind::Certification;
                    slot.selected = selected_values
                        .iter()
                        .filter_map(|s| s.parse().ok())
                        .collect();
                    slot.counts = vec![0; cols.max_certification as usize + 1];
                    slot.visible = visible.clone();
                }
                Facet::Due => {
                    slot.kind = SlotKind::Due;
                    for s in selected_values {
                        if let Some(b) = DueBucket::parse(s) {
                            slot.due_selected |= b.bit();
                        }
                    }
                }
                _ => {
                    if let Some(column) = SegmentColumns::keyword_column(facet)
                        && let Some(terms) = cols.terms(column)
                    {
                        slot.kind = SlotKind::Keyword;
                        slot.column = column;
                        slot.counts = vec![0; terms.len()];
                        slot.selected = selected_values
                            .iter()
                            .filter_map(|v| cols.ordinal_of(column, v))
                            .map(u64::from)
                            .collect();
                    }
                }
            }
            slot.selected.sort_unstable();
            slots.push(slot);
        }
        let active: Vec<usize> = (0..slots.len())
            .filter(|i| !plan.selections.get(slots[*i].facet).is_empty())
            .collect();
        let counted: Vec<usize> = (0..slots.len())
            .filter(|i| plan.facets.contains(&slots[*i].facet))
            .collect();
        let today = columns::day_number(plan.today);
        for &i in &active {
            slots[i].pass_bits = slots[i].pass_bits(&cols, today);
        }
        for &i in &counted {
            slots[i].counted = true;
            if active.contains(&i) {
                slots[i].failed = Some(DocBits::new(reader.max_doc()));
            }
        }
        // a document's due buckets are needed per document only to test a
        // selection of them without bit sets
        let uses_due = slots
            .iter()
            .any(|s| s.kind == SlotKind::Due && s.due_selected != 0 && s.pass_bits.is_none());
        let passed = (!counted.is_empty()).then(|| DocBits::new(reader.max_doc()));
        let sort_values = self.columns.sort_values(reader, plan.sort.by)?;
        let sort_str = match plan.sort.by {
            SortBy::Title => str_col(reader, "title_sort")?,
            _ => None,
        };
        Ok(SegmentState {
            segment,
            ids: One::new(ff.u64("id")?),
            cols,
            slots,
            active,
            counted,
            uses_due,
            today,
            sort_values,
            sort_str,
            total: 0,
            passed,
            heap: BinaryHeap::with_capacity(plan.limit + 1),
            worst: None,
            plan,
            buf: String::new(),
            groups: HashMap::new(),
        })
    }

    /// Scores order the page; a search that only counts (no page) reads no
    /// term frequencies.
    fn requires_scoring(&self) -> bool {
        self.plan.limit > 0 && self.plan.sort.by == SortBy::Relevance
    }

    /// Unscored matches are gathered into a bit set and tested against the
    /// selections 64 at a time when every selection has one
    /// ([`SegmentState::collect_matched`]); otherwise, and when scores order
    /// the page, document by document.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Fruit> {
        let mut state = self.for_segment(segment, reader)?;
        let alive = reader.alive_bitset();
        let is_alive = |doc: DocId| alive.is_none_or(|a| a.is_alive(doc));
        if self.requires_scoring() {
            weight.for_each(reader, &mut |doc, score| {
                if is_alive(doc) {
                    state.collect(doc, score);
                }
            })?;
        } else if state.tests_by_bits() {
            let mut matched = DocBits::new(reader.max_doc());
            weight.for_each_no_score(reader, &mut |docs| {
                for &doc in docs {
                    if is_alive(doc) {
                        matched.insert(doc);
                    }
                }
            })?;
            state.collect_matched(&matched);
        } else {
            weight.for_each_no_score(reader, &mut |docs| {
                for &doc in docs {
                    if is_alive(doc) {
                        state.collect(doc, 0.0);
                    }
                }
            })?;
        }
        Ok(state.harvest())
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let descending = self.plan.sort.descending;
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
            for (control, g) in f.groups {
                let merged = match out.groups.remove(&control) {
                    Some(had) => had.merge(g, descending),
                    None => g,
                };
                out.groups.insert(control, merged);
            }
        }
        // a group stands where its best document stands; one that a previous
        // page showed is not shown again
        for g in out.groups.values() {
            let after = self
                .plan
                .after
                .as_ref()
                .is_none_or(|a| g.key.order(a, descending) == Ordering::Greater);
            if after {
                out.hits.push((g.key.clone(), g.addr));
            }
        }
        out.hits.sort_by(|a, b| a.0.order(&b.0, descending));
        out.hits.truncate(self.plan.limit);
        Ok(out)
    }
}

impl SegmentState {
    /// Under a relevance order, the score a document must exceed to have a
    /// chance at the page, for block-max WAND (`search::top`): below the
    /// page's worst score by a margin far wider than the rounding by which the
    /// pruned scorer's sums may differ from the exact ones, so that a document
    /// tied with the worst (and ahead of it by kind and id) is still offered.
    pub(super) fn prune_below(&self) -> Score {
        match self.worst {
            Some(worst) => {
                let worst = worst as Score;
                worst - (worst.abs() * PRUNE_MARGIN).max(Score::MIN_POSITIVE)
            }
            None => Score::MIN,
        }
    }

    /// Whether the document is of a kind `collapse=control` groups (a
    /// catalogue control or a requirement).
    pub(super) fn is_grouped_kind(&self, doc: DocId) -> bool {
        let kind = self.cols.kind[doc as usize];
        columns::GROUPED_KINDS
            .iter()
            .any(|k| k.index() as u8 == kind)
    }

    /// A document that passed every selection, offered to the page.
    #[inline(always)]
    fn page(&mut self, doc: DocId, score: Score) {
        if self.plan.limit == 0 {
            return;
        }
        match self.cols.control[doc as usize] {
            control if self.plan.collapse && control != columns::NONE => {
                self.group(control, doc, score);
            }
            _ => self.offer(doc, score),
        }
    }

    /// Whether every selection is a bit set of the documents that pass it, so
    /// that unscored matches can be gathered into a set and tested 64 at a
    /// time ([`Self::collect_matched`]).
    fn tests_by_bits(&self) -> bool {
        self.cols.bit_sets()
            && !self.uses_due
            && self
                .active
                .iter()
                .all(|&i| self.slots[i].pass_bits.is_some())
    }

    /// Collects the unscored matches `matched` as [`SegmentCollector::collect`]
    /// would one by one: the selections, the total and the sets the facets are
    /// counted from a word of 64 documents at a time, then the page from the
    /// documents that passed, in order. Only where [`Self::tests_by_bits`].
    fn collect_matched(&mut self, matched: &DocBits) {
        debug_assert!(self.tests_by_bits());
        let word = |bits: &DocBits, w: usize| bits.as_words().get(w).copied().unwrap_or(0);
        // per selection: its slot, the documents passing it, those failing
        // it alone (when its facet is counted) and how many
        let mut tests: Vec<(usize, DocBits, Option<DocBits>, u64)> = Vec::new();
        for &i in &self.active {
            let slot = &mut self.slots[i];
            if let Some(pass) = slot.pass_bits.take() {
                tests.push((i, pass, slot.failed.take(), 0));
            }
        }
        let mut passed = self.passed.take();
        for (w, &m) in matched.as_words().iter().enumerate() {
            if m == 0 {
                continue;
            }
            let all = tests.iter().fold(m, |acc, t| acc & word(&t.1, w));
            if all != m {
                // a document failing exactly one selection counts for its facet
                for k in 0..tests.len() {
                    if tests[k].2.is_none() {
                        continue;
                    }
                    let others = tests
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != k)
                        .fold(m, |acc, (_, t)| acc & word(&t.1, w));
                    let alone = others & !word(&tests[k].1, w);
                    if alone != 0
                        && let (_, _, Some(failed), n) = &mut tests[k]
                        && let Some(into) = failed.as_words_mut().get_mut(w)
                    {
                        *into |= alone;
                        *n += u64::from(alone.count_ones());
                    }
                }
            }
            if all == 0 {
                continue;
            }
            self.total += u64::from(all.count_ones());
            if let Some(into) = passed.as_mut().and_then(|p| p.as_words_mut().get_mut(w)) {
                *into |= all;
            }
            if self.plan.limit > 0 {
                let mut rest = all;
                while rest != 0 {
                    let doc = (w * 64) as DocId + rest.trailing_zeros();
                    rest &= rest - 1;
                    self.page(doc, 0.0);
                }
            }
        }
        self.passed = passed;
        for (i, pass, failed, n) in tests {
            let slot = &mut self.slots[i];
            slot.pass_bits = Some(pass);
            slot.failed = failed;
            slot.failed_n += n;
        }
    }

    /// Counts the documents that passed every selection in every counted
    /// facet.
    fn count_passed(&mut self) {
        let Some(passed) = self.passed.take() else {
            return;
        };
        let n = self.total;
        for &i in &self.counted {
            let slot = &mut self.slots[i];
            match slot.failed.take() {
                // the documents failing this facet's selection alone count
                // for it too
                Some(mut failed) if slot.failed_n > 0 => {
                    failed.union_with(&passed);
                    let n = n + slot.failed_n;
                    slot.count_passed(&self.cols, &failed, n, self.today);
                }
                _ => slot.count_passed(&self.cols, &passed, n, self.today),
            }
        }
    }

    fn primary(&mut self, doc: DocId, score: Score) -> Primary {
        match self.plan.sort.by {
            SortBy::Relevance => Primary::Num(f64::from(score)),
            SortBy::Number(_) | SortBy::Date(_) => match self
                .sort_values
                .as_ref()
                .map_or(columns::NO_VALUE, |v| v[doc as usize])
            {
                columns::NO_VALUE => Primary::Missing,
                v => Primary::Num(v as f64),
            },
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
        }
    }

    fn offer(&mut self, doc: DocId, score: Score) {
        let descending = self.plan.sort.descending;
        // cheap rejection on the primary value alone (a score, a date, a number)
        // before reading kind and id
        let primary = match self.plan.sort.by {
            SortBy::Relevance => Primary::Num(f64::from(score)),
            SortBy::Number(_) | SortBy::Date(_) => self.primary(doc, score),
            SortBy::Title => Primary::Missing,
        };
        if let (Some(w), Primary::Num(v)) = (self.worst, &primary)
            && (if descending { *v < w } else { *v > w })
        {
            return;
        }
        let primary = match self.plan.sort.by {
            SortBy::Title => self.primary(doc, score),
            _ => primary,
        };
        let key = SortKey {
            primary,
            kind: self.cols.kind[doc as usize],
            id: self.ids.get(doc).unwrap_or(0),
        };
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
        if self.heap.len() >= self.plan.limit {
            self.worst = match self.heap.peek().map(|w| &w.key.primary) {
                Some(Primary::Num(w)) => Some(*w),
                _ => None,
            };
        }
    }
}

impl SegmentState {
    /// A catalogue control or requirement under `collapse=control`: kept as
    /// its control's group (every one, whatever the page: the group's place is
    /// its best document's, decided after all documents are seen).
    fn group(&mut self, control: u32, doc: DocId, score: Score) {
        let descending = self.plan.sort.descending;
        let key = SortKey {
            primary: self.primary(doc, score),
            kind: self.cols.kind[doc as usize],
            id: self.ids.get(doc).unwrap_or(0),
        };
        let cols = &self.cols;
        let ord = |facet| {
            SegmentColumns::keyword_column(facet).map_or(columns::NONE, |c| cols.ordinal(c, doc))
        };
        let related = Related {
            kind: key.kind,
            id: key.id,
            status: None,
            certification_id: match cols.certification[doc as usize] {
                columns::NONE | columns::MANY => None,
                c => Some(u64::from(c)),
            },
            framework: None,
            ords: (ord(Facet::Status), ord(Facet::Framework)),
        };
        let addr = DocAddress::new(self.segment, doc);
        match self.groups.entry(control) {
            std::collections::hash_map::Entry::Occupied(mut g) => {
                g.get_mut().offer(key, addr, related, descending);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Collapsed {
                    key,
                    addr,
                    shown: related,
                    documents: 1,
                    related: Vec::new(),
                });
            }
        }
    }
}

impl SegmentCollector for SegmentState {
    type Fruit = Fruit;

    #[inline]
    fn collect(&mut self, doc: DocId, score: Score) {
        let due = if self.uses_due {
            due_mask(&self.cols, self.today, doc)
        } else {
            0
        };
        let cols = &*self.cols;
        let mut failed = usize::MAX;
        for &i in &self.active {
            if !self.slots[i].passes(cols, doc, due) {
                if failed != usize::MAX {
                    return;
                }
                failed = i;
            }
        }
        if failed != usize::MAX {
            let slot = &mut self.slots[failed];
            if let Some(f) = &mut slot.failed {
                f.insert(doc);
                slot.failed_n += 1;
            }
            return;
        }
        self.total += 1;
        if let Some(passed) = &mut self.passed {
            passed.insert(doc);
        }
        self.page(doc, score);
    }

    fn harvest(mut self) -> Fruit {
        self.count_passed();
        let mut facets = HashMap::new();
        for slot in self.slots {
            let facet = slot.facet;
            facets.insert(facet, slot.harvest(&self.cols));
        }
        let cols = &self.cols;
        let status = SegmentColumns::keyword_column(Facet::Status).and_then(|c| cols.terms(c));
        let framework =
            SegmentColumns::keyword_column(Facet::Framework).and_then(|c| cols.terms(c));
        let name = |terms: Option<&[String]>, o: u32| -> Option<String> {
            terms.and_then(|t| t.get(o as usize)).cloned()
        };
        let named = |mut r: Related| {
            r.status = name(status, r.ords.0);
            r.framework = name(framework, r.ords.1);
            r
        };
        let groups = self
            .groups
            .into_iter()
            .filter_map(|(control, mut g)| {
                let control = cols.control_terms.get(control as usize)?.clone();
                g.shown = named(g.shown);
                g.related
                    .sort_by(|a, b| a.0.order(&b.0, self.plan.sort.descending));
                g.related.truncate(MAX_RELATED);
                g.related = g.related.into_iter().map(|(k, r)| (k, named(r))).collect();
                Some((control, g))
            })
            .collect();
        Fruit {
            total: self.total,
            facets,
            hits: self.heap.into_iter().map(|e| (e.key, e.addr)).collect(),
            groups,
        }
    }
}
