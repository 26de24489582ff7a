//! Search over the index: tenancy filter, compiled query, one-pass collection of
//! hits, totals and facets, snippets, cursors on pinned searchers.
//!
//! Words: a *position* is a PostgreSQL snapshot the index reflects; a *pinned
//! searcher* is one tantivy searcher (one set of segments) kept so that a
//! cursor's later pages read the same documents.

pub mod collect;
pub mod columns;
pub mod compile;
pub mod cursor;
pub mod params;
pub mod parser;
pub mod pinned;
pub mod sha256;
pub mod stats;
pub mod top;
pub mod visible;
pub mod vocabulary;
pub mod warm;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certscope_domain::{DueBucket, Kind};
use certscope_indexer::schema::{Fields, TOKENIZER_EN, TOKENIZER_WORDS};
use serde::Serialize;
use serde_json::{Map, Value};
use tantivy::collector::Collector;
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{IndexRecordOption, OwnedValue, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime as TvDate, Searcher, TantivyDocument, Term};

use crate::auth::Scope;
use crate::error::ApiError;
use collect::{Plan, SearchCollector, SortKey};
use compile::Compiler;
use cursor::Cursor;
use params::SearchParams;
pub use pinned::{Pinned, PinnedSearchers, searcher_id};
use stats::{SHARED_ORG, StatsCache};
use visible::{Visible, VisibleCache};
pub use vocabulary::Vocabulary;

const SNIPPET_CHARS: usize = 180;

#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
#[schema(example = json!({"value": "1", "count": 120, "label": "NIST 800-53 High: Patient Portal 2026", "selected": true}))]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub selected: bool,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct SearchResponse {
    pub total: u64,
    /// Built from each document's stored fields; their shape per kind is
    /// `SearchHit` (checked against every response in the tests).
    #[schema(value_type = Vec<crate::openapi::schemas::SearchHit>)]
    pub hits: Vec<Map<String, Value>>,
    #[schema(value_type = crate::openapi::schemas::Facets)]
    pub facets: BTreeMap<&'static str, Vec<FacetValue>>,
    pub next_cursor: Option<String>,
    /// The index position this answer reflects.
    pub position: String,
    /// Results after `collapse=control` folded each control's documents into
    /// one (equal to `total` without collapsing). `total` and the facets count
    /// documents.
    pub results: u64,
    /// How a question's words were matched: present when some words did not
    /// have to (stop words; or `fallback`: fewer than 10 documents held every
    /// content word, so each hit holds at least `required` of the `words`, those
    /// holding all first; or none held that many, and one was enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching: Option<MatchingReport>,
}

/// See [`SearchResponse::matching`].
#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct MatchingReport {
    /// Content words of the question (a synonym of several words counts once).
    pub words: usize,
    /// How many of them every hit holds at least (`words` unless `fallback`).
    pub required: usize,
    /// Words that never had to match (stop words such as what, do, we, for;
    /// `evidence`, which prefers evidence instead).
    pub ignored: Vec<String>,
    /// Fewer than 10 documents held every content word: documents holding
    /// `required` of them are listed too (or, when none held half, any one).
    pub fallback: bool,
}

/// Stored fields returned with each hit, in this order.
const HIT_FIELDS: &[&str] = &[
    "status",
    "control",
    "control_title",
    "family",
    "family_title",
    "framework",
    "framework_name",
    "certification_id",
    "certification",
    "requirement_id",
    "owner",
    "owner_id",
    "risk_level",
    "category",
    "treatment",
    "inherent_score",
    "residual_score",
    "file_name",
    "media_type",
    "sha256",
    "due_date",
    "expires_on",
    "collected_on",
    "target_date",
    "updated_at",
];

fn json_value(v: &OwnedValue) -> Option<Value> {
    Some(match v {
        OwnedValue::Str(s) => Value::String(s.clone()),
        OwnedValue::U64(n) => Value::from(*n),
        OwnedValue::I64(n) => Value::from(*n),
        OwnedValue::Date(d) => {
            let secs = d.into_timestamp_secs();
            let t = chrono::DateTime::from_timestamp(secs, 0)?;
            if secs % 86_400 == 0 {
                Value::String(t.format("%Y-%m-%d").to_string())
            } else {
                Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
        }
        _ => return None,
    })
}

/// The tenancy filter: the caller's organization (an auditor: only its
/// certifications) plus the shared control catalogue. Added by the server to
/// every query; no parameter reaches it. Matches score nothing; the documents
/// are computed once per segment and scope (see [`visible`]).
pub fn tenancy(fields: &Fields, scope: &Scope, visible: &VisibleCache) -> Box<dyn Query> {
    let org = |id: u64| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_u64(fields.org_id, id),
            IndexRecordOption::Basic,
        ))
    };
    let own: Box<dyn Query> = match &scope.certifications {
        None => org(scope.org_id as u64),
        Some(certs) => {
            let any_cert = certs
                .iter()
                .map(|c| -> (Occur, Box<dyn Query>) {
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(
                            Term::from_field_u64(fields.certification_id, *c as u64),
                            IndexRecordOption::Basic,
                        )),
                    )
                })
                .collect::<Vec<_>>();
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, org(scope.org_id as u64)),
                (Occur::Must, Box::new(BooleanQuery::new(any_cert))),
            ]))
        }
    };
    let shared = Box::new(BooleanQuery::new(vec![
        (Occur::Must, org(SHARED_ORG)),
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.kind, Kind::Control.as_str()),
                IndexRecordOption::Basic,
            )),
        ),
    ]));
    Box::new(Visible {
        key: scope.cache_key().into(),
        inner: Box::new(BooleanQuery::new(vec![
            (Occur::Should, own),
            (Occur::Should, shared),
        ])),
        cache: visible.clone(),
    })
}

fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

/// Segments some pinned searcher still reads: what the segment-keyed caches
/// keep.
pub type LiveSegments = Arc<HashSet<tantivy::index::SegmentId>>;

/// How often the segment-keyed caches drop the entries of segments no
/// searcher holds. Under a steady stream of changes the indexer commits
/// several times a second and merges replace segments as often, so without
/// the sweep those caches fill with figures of segments that are gone.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Shared state of search: statistics and pinned searchers.
pub struct SearchService {
    pub stats: StatsCache,
    pub pinned: PinnedSearchers,
    /// Searches executed (cache misses), for `/metrics` and coalescing tests.
    pub executed: std::sync::atomic::AtomicU64,
    /// Search execution time, seconds.
    pub latency: certscope_indexer::metrics::Histogram,
    /// Segments of one search are collected in parallel on these threads.
    executor: tantivy::Executor,
    columns: columns::ColumnCache,
    /// The documents each scope may see, per segment.
    visible: VisibleCache,
    /// When the caches were last swept, and the segments they kept.
    swept: Mutex<(Instant, LiveSegments)>,
    /// Fills the caches for each new searcher before it is published.
    pub warmer: Arc<warm::SearchWarmer>,
    /// Whether a union of terms under a relevance order finds its page by
    /// block-max WAND (`top`); off only to compare against one pass.
    prune: bool,
}

/// Observes the time from its creation to its drop.
struct Timer<'a> {
    started: Instant,
    into: &'a certscope_indexer::metrics::Histogram,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.into.observe(self.started.elapsed().as_secs_f64());
    }
}

/// The threads one search is split over: one per core, at most 4.
pub fn threads_per_search() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// [`threads_per_search`] threads: a search over a large index is split by
/// segment, which cuts latency when the machine is not already saturated.
fn search_executor() -> tantivy::Executor {
    let threads = threads_per_search();
    if threads > 1
        && let Ok(executor) = tantivy::Executor::multi_thread(threads, "certscope-search-")
    {
        return executor;
    }
    tantivy::Executor::single_thread()
}

impl Default for SearchService {
    fn default() -> Self {
        let columns = columns::ColumnCache::default();
        let stats = StatsCache::default();
        Self {
            warmer: Arc::new(warm::SearchWarmer::new(columns.clone(), stats.clone())),
            stats,
            pinned: PinnedSearchers::default(),
            executed: Default::default(),
            latency: certscope_indexer::metrics::Histogram::new(&[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            executor: search_executor(),
            columns,
            visible: VisibleCache::default(),
            swept: Mutex::new((Instant::now(), LiveSegments::default())),
            prune: true,
        }
    }
}

impl SearchService {
    /// Facets counted and selections tested per document, without bit sets:
    /// what the bit sets are checked against.
    #[cfg(test)]
    pub fn without_bit_sets(self) -> Self {
        Self {
            columns: columns::ColumnCache::without_bit_sets(),
            ..self
        }
    }

    /// Every search in one pass, scoring every match: what the two-pass
    /// search is checked against.
    pub fn without_pruning(self) -> Self {
        Self {
            prune: false,
            ..self
        }
    }

    /// What the indexer runs on each new searcher before publishing it (give
    /// it to [`certscope_indexer::IndexerConfig::warmers`]).
    pub fn warmers(&self) -> certscope_indexer::index_store::Warmers {
        let warmer: Arc<dyn tantivy::Warmer> = self.warmer.clone();
        certscope_indexer::index_store::Warmers(vec![Arc::downgrade(&warmer)])
    }

    /// At most every [`SWEEP_INTERVAL`], drops the cached columns and
    /// statistics of segments that no pinned searcher holds and the searcher
    /// warmed last does not. Every search runs on a pinned searcher, so a
    /// segment a search may still read is never swept (a searcher evicted from
    /// the pins mid-search at worst recomputes).
    pub fn sweep(&self) {
        let Ok(mut swept) = self.swept.try_lock() else {
            return; // another search is sweeping
        };
        if swept.0.elapsed() < SWEEP_INTERVAL {
            return;
        }
        let mut live = self.pinned.segments();
        live.extend(
            self.warmer
                .latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied(),
        );
        let live: LiveSegments = Arc::new(live);
        if live != swept.1 {
            self.columns.retain(&live);
            self.visible.retain(&live);
            self.stats.retain(&live);
        }
        *swept = (Instant::now(), live);
    }

    /// (entries, bytes) of the decoded facet and sort columns, the
    /// visible-document and the statistics caches.
    pub fn cache_figures(&self) -> [(&'static str, (u64, u64)); 4] {
        let [columns, sorts] = self.columns.figures();
        [
            ("search_columns", columns),
            ("search_sort_columns", sorts),
            ("search_visible", self.visible.figures()),
            ("search_statistics", self.stats.figures()),
        ]
    }

    /// Runs a search. Blocking: call from a blocking thread.
    pub fn search(
        &self,
        pinned: &Pinned,
        fields: &Fields,
        scope: &Scope,
        p: &SearchParams,
        today: i64,
        vocabulary: &Vocabulary,
    ) -> Result<SearchResponse, ApiError> {
        let _timer = Timer {
            started: Instant::now(),
            into: &self.latency,
        };
        self.executed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sweep();
        let searcher = &pinned.searcher;
        let request_hash = cursor::hash(&format!(
            "{}|{}|{}",
            scope.cache_key(),
            p.canonical,
            vocabulary.version
        ));
        let after = resume_after(p, request_hash)?;
        let stats = self
            .stats
            .provider(searcher, fields, stats::Visible::of(scope));
        let plan = Plan {
            selections: p.selections.clone(),
            facets: p.facets.clone(),
            sort: p.sort,
            after,
            limit: p.limit + 1,
            today,
            visible_certifications: scope
                .certifications
                .as_ref()
                .map(|c| c.iter().map(|id| *id as u64).collect()),
            collapse: p.collapse,
        };
        let scored = || EnableScoring::enabled_from_statistics_provider(&stats, searcher);
        let unscored = || EnableScoring::disabled_from_searcher(searcher);
        let collector = SearchCollector {
            plan: plan.clone(),
            columns: &self.columns,
        };
        // a union of terms under a relevance order: counted unscored first,
        // its page found by block-max WAND after (`top`)
        let two_passes = |text: Option<&dyn Query>| {
            self.prune
                && plan.sort.by == collect::SortBy::Relevance
                && text.is_some_and(compile::is_term_union)
        };
        let counter = SearchCollector {
            plan: Plan {
                limit: 0,
                ..plan.clone()
            },
            columns: &self.columns,
        };
        let run = |words: compile::Words| -> Result<_, ApiError> {
            let (text, matching) = compile_text(searcher, fields, &stats, p, vocabulary, words)?;
            let filters = filters(
                searcher,
                fields,
                scope,
                &self.visible,
                p,
                text.is_some(),
                today,
            )?;
            let query = filtered_query(text.as_deref(), &filters);
            let paged = !two_passes(text.as_deref());
            let fruit = if paged {
                let scoring = if collector.requires_scoring() {
                    scored()
                } else {
                    unscored()
                };
                searcher.search_with_executor(&query, &collector, &self.executor, scoring)?
            } else {
                searcher.search_with_executor(&query, &counter, &self.executor, unscored())?
            };
            Ok((text, matching, filters, fruit, paged))
        };
        // every content word of a question first; when few documents hold
        // them all, most of them (those with all first); when none holds
        // most, any one. Deterministic on a cursor's pinned searcher, so
        // later pages take the same path.
        let (mut text, mut matching, mut filters, mut fruit, mut paged) = run(compile::Words::All)?;
        let relaxable = |m: &Option<compile::Matching>, words: compile::Words| {
            m.as_ref().is_some_and(|m| {
                m.required > 1
                    && (words == compile::Words::Any || compile::required_words(m.words) < m.words)
            })
        };
        if fruit.total < compile::FEW_WITH_EVERY_WORD && relaxable(&matching, compile::Words::Most)
        {
            (text, matching, filters, fruit, paged) = run(compile::Words::Most)?;
        }
        if fruit.total == 0 && relaxable(&matching, compile::Words::Any) {
            (text, matching, filters, fruit, paged) = run(compile::Words::Any)?;
        }
        if !paged
            && fruit.total > 0
            && let Some(text) = &text
        {
            let grouped = match plan.collapse {
                true => {
                    let kinds = columns::GROUPED_KINDS
                        .iter()
                        .map(|k| -> (Occur, Box<dyn Query>) {
                            (
                                Occur::Should,
                                Box::new(TermQuery::new(
                                    Term::from_field_text(fields.kind, k.as_str()),
                                    IndexRecordOption::Basic,
                                )),
                            )
                        })
                        .collect();
                    let mut filters = filters
                        .iter()
                        .map(|(o, q)| (*o, q.box_clone()))
                        .collect::<Vec<_>>();
                    filters.push(filter(Box::new(BooleanQuery::new(kinds))));
                    Some(filtered_query(Some(text.as_ref()), &filters).weight(scored())?)
                }
                false => None,
            };
            let top = top::TopScored {
                page: SearchCollector {
                    plan: Plan {
                        facets: Vec::new(),
                        ..plan.clone()
                    },
                    columns: &self.columns,
                },
                filter: BooleanQuery::new(filters).weight(unscored())?,
                grouped,
            };
            let page =
                searcher.search_with_executor(text.as_ref(), &top, &self.executor, scored())?;
            fruit.hits = page.hits;
            fruit.groups = page.groups;
        }
        let matching = matching
            .filter(|m| m.required < m.words || !m.ignored.is_empty())
            .map(|m| MatchingReport {
                fallback: m.required < m.words,
                words: m.words,
                required: m.required,
                ignored: m.ignored,
            });
        let more = fruit.hits.len() > p.limit;
        fruit.hits.truncate(p.limit);
        let next_cursor = match fruit.hits.last() {
            Some((key, _)) if more => Some(Cursor::new(pinned.id, request_hash, key).encode()),
            _ => None,
        };
        let snippets = match &text {
            Some(t) => Some(snippet_generator(
                searcher,
                t.as_ref(),
                fields,
                &stats,
                vocabulary,
            )?),
            None => None,
        };
        let mut hits = render_hits(searcher, fields, scope, p, &fruit.hits, snippets.as_ref())?;
        if p.collapse {
            let by_addr: HashMap<tantivy::DocAddress, (&String, &collect::Collapsed)> =
                fruit.groups.iter().map(|(c, g)| (g.addr, (c, g))).collect();
            for (hit, (_, addr)) in hits.iter_mut().zip(&fruit.hits) {
                if let Some((control, g)) = by_addr.get(addr) {
                    hit.insert("collapsed".into(), collapsed_json(control, g));
                }
            }
        }
        let results = fruit.results();
        let mut facets = BTreeMap::new();
        for facet in &p.facets {
            let counts = fruit.facets.remove(facet).unwrap_or_default();
            facets.insert(
                facet.name(),
                facet_values(*facet, counts, p.selections.get(*facet), p.facet_size),
            );
        }
        Ok(SearchResponse {
            total: fruit.total,
            hits,
            facets,
            next_cursor,
            position: pinned.position.clone(),
            results,
            matching,
        })
    }
}

/// What `collapse=control` folded into a hit: the control, how many matching
/// documents it stands for, and the others (requirements per certification,
/// the control in another catalogue), best first.
fn collapsed_json(control: &str, g: &collect::Collapsed) -> Value {
    let related: Vec<Value> = g
        .related
        .iter()
        .map(|(_, r)| {
            let mut m = Map::new();
            let kind = Kind::ALL.get(r.kind as usize).copied();
            m.insert("kind".into(), Value::from(kind.map_or("", Kind::as_str)));
            m.insert("id".into(), Value::from(r.id));
            if let Some(s) = &r.status {
                m.insert("status".into(), Value::from(s.as_str()));
            }
            if let Some(c) = r.certification_id {
                m.insert("certification_id".into(), Value::from(c));
            }
            if let Some(f) = &r.framework {
                m.insert("framework".into(), Value::from(f.as_str()));
            }
            Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "control": control,
        "documents": g.documents,
        "related": related,
    })
}

/// The sort key a cursor resumes after; a cursor of another request is refused.
fn resume_after(p: &SearchParams, request_hash: u64) -> Result<Option<SortKey>, ApiError> {
    match &p.cursor {
        Some(c) if c.h != request_hash => Err(ApiError::bad(
            "bad_cursor",
            "`cursor` belongs to another request; pass the same parameters as the first page",
        )),
        Some(c) => Ok(Some(c.key())),
        None => Ok(None),
    }
}

/// A request's text as a query (none without text), and how its words matched.
type CompiledText = (Option<Box<dyn Query>>, Option<compile::Matching>);

/// The text part of the request as a tantivy query, if there is text, and how
/// its words were matched.
fn compile_text(
    searcher: &Searcher,
    fields: &Fields,
    stats: &dyn Bm25StatisticsProvider,
    p: &SearchParams,
    vocabulary: &Vocabulary,
    words: compile::Words,
) -> Result<CompiledText, ApiError> {
    let index = searcher.index();
    let tokenizer = |name: &str| {
        index.tokenizers().get(name).ok_or_else(|| {
            ApiError::internal(
                "opening the index",
                format!("tokenizer {name} not registered"),
            )
        })
    };
    let compiler = Compiler {
        fields,
        english: tokenizer(TOKENIZER_EN)?,
        words: tokenizer(TOKENIZER_WORDS)?,
        stats,
        searcher,
        vocabulary,
        required: words,
        matching: Default::default(),
        negated: Default::default(),
    };
    let query = p.node.as_ref().map(|n| compiler.compile(n)).transpose()?;
    Ok((query, compiler.matching.into_inner()))
}

/// Clauses of a Boolean query.
type Clauses = Vec<(Occur, Box<dyn Query>)>;

/// The text query under the filters.
fn filtered_query(text: Option<&dyn Query>, filters: &[(Occur, Box<dyn Query>)]) -> BooleanQuery {
    BooleanQuery::new(
        text.map(|t| (Occur::Must, t.box_clone()))
            .into_iter()
            .chain(filters.iter().map(|(o, q)| (*o, q.box_clone())))
            .collect(),
    )
}

/// The filters the server adds (tenancy) and the ones the request asks for
/// (kind, date ranges, a due pre-filter), around a text query or none. None of
/// them scores.
fn filters(
    searcher: &Searcher,
    fields: &Fields,
    scope: &Scope,
    visible: &VisibleCache,
    p: &SearchParams,
    text: bool,
    today: i64,
) -> Result<Clauses, ApiError> {
    let schema = searcher.index().schema();
    let mut clauses: Clauses = Vec::new();
    // unwrapped: where the scope sees a whole segment its `AllScorer` leaves
    // the intersection (it scores nothing either way)
    clauses.push((Occur::Must, tenancy(fields, scope, visible)));
    if let Some(kind) = p.kind {
        clauses.push(filter(Box::new(TermQuery::new(
            Term::from_field_text(fields.kind, kind.as_str()),
            IndexRecordOption::Basic,
        ))));
    }
    for r in &p.ranges {
        let field = schema.get_field(r.field)?;
        let bound = |t: Option<i64>, inclusive: bool| match t {
            Some(t) => {
                let term = Term::from_field_date(field, TvDate::from_timestamp_secs(t));
                if inclusive {
                    Bound::Included(term)
                } else {
                    Bound::Excluded(term)
                }
            }
            None => Bound::Unbounded,
        };
        clauses.push(filter(Box::new(RangeQuery::new(
            bound(r.from, true),
            bound(r.until, false),
        ))));
    }
    let due = p.selections.get(collect::Facet::Due);
    if !due.is_empty() && !text {
        // nothing due later than the widest bucket can pass or count: an
        // exact pre-filter that spares visiting far-future and undated items.
        // Not beside a text query: there it leads nothing and is seeked for
        // every match (a seventh of a common word's search, by `perf`), while
        // the collector tests the same buckets from its decoded deadlines
        let days = if p.facets.contains(&collect::Facet::Due) {
            DueBucket::WIDEST_DAYS
        } else {
            due.iter()
                .filter_map(|b| DueBucket::parse(b))
                .map(DueBucket::days)
                .max()
                .unwrap_or(DueBucket::WIDEST_DAYS)
        };
        // buckets reach their last day inclusively: the bound is the day after
        let until = TvDate::from_timestamp_secs(today + (days + 1) * 86_400);
        clauses.push(filter(Box::new(RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_date(fields.deadline, until)),
        ))));
    }
    Ok(clauses)
}

/// The page's documents as hits; what an auditor may not see of a risk's
/// certifications is removed.
fn render_hits(
    searcher: &Searcher,
    fields: &Fields,
    scope: &Scope,
    p: &SearchParams,
    page: &[(SortKey, tantivy::DocAddress)],
    snippets: Option<&SnippetGenerator>,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let schema = searcher.index().schema();
    let mut hits = Vec::with_capacity(page.len());
    for (key, addr) in page {
        let doc: TantivyDocument = searcher.doc(*addr)?;
        let mut hit = render_hit(fields, &schema, &doc, key, p, snippets);
        // a risk's other certifications, and the controls it reaches
        // through them, are outside an auditor's view
        if let Some(Value::Array(ids)) = hit.get_mut("certification_id")
            && scope.retain_visible(ids)
        {
            hit.remove("control");
        }
        hits.push(hit);
    }
    Ok(hits)
}

/// What people read for a facet value the domain names: kinds, statuses (of
/// whichever kind has it: `in_progress` reads "In progress" for all), risk
/// levels and due buckets. Ids and keys are labelled from the database.
pub fn domain_label(facet: collect::Facet, value: &str) -> Option<&'static str> {
    use collect::Facet;
    match facet {
        Facet::Kind => Kind::parse(value).map(Kind::label),
        Facet::Status => Kind::ALL.into_iter().find_map(|k| {
            certscope_domain::Status::parse(k, value)
                .ok()
                .map(certscope_domain::Status::label)
        }),
        Facet::RiskLevel => certscope_domain::RiskLevel::parse(value).map(|l| l.label()),
        Facet::Due => DueBucket::parse(value).map(DueBucket::label),
        _ => None,
    }
}

fn facet_values(
    facet: collect::Facet,
    counts: HashMap<String, u64>,
    selected: &[String],
    size: usize,
) -> Vec<FacetValue> {
    let label = |v: &str| domain_label(facet, v).map(str::to_owned);
    let mut values: Vec<FacetValue> = counts
        .into_iter()
        .map(|(value, count)| FacetValue {
            selected: selected.contains(&value),
            label: label(&value),
            value,
            count,
        })
        .collect();
    if counts_are_buckets(selected, &values) {
        // due buckets keep their natural order
        values.sort_by_key(|v| DueBucket::parse(&v.value));
    } else {
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    }
    let mut kept: Vec<FacetValue> = Vec::with_capacity(size);
    for v in values {
        if kept.len() < size || v.selected {
            kept.push(v);
        }
    }
    // selected values are always listed, with 0 when nothing matches them
    for s in selected {
        if !kept.iter().any(|v| &v.value == s) {
            kept.push(FacetValue {
                value: s.clone(),
                count: 0,
                label: label(s),
                selected: true,
            });
        }
    }
    kept
}

fn counts_are_buckets(selected: &[String], values: &[FacetValue]) -> bool {
    let is_bucket = |v: &str| DueBucket::parse(v).is_some();
    !values.is_empty()
        && values.iter().all(|v| is_bucket(&v.value))
        && selected.iter().all(|s| is_bucket(s))
}

/// Snippets weighted by the organization's own statistics (tantivy's default
/// would use the whole index's).
fn snippet_generator(
    searcher: &Searcher,
    query: &dyn Query,
    fields: &Fields,
    stats: &dyn Bm25StatisticsProvider,
    vocabulary: &Vocabulary,
) -> Result<SnippetGenerator, ApiError> {
    let mut terms = BTreeMap::new();
    let mut err = None;
    // stop words are never highlighted, even inside a phrase
    query.query_terms(&mut |term, _| {
        if term.field() == fields.body
            && let Some(text) = term.value().as_str()
            && !vocabulary.is_stop(text)
        {
            match stats.doc_freq(term) {
                Ok(df) if df > 0 => {
                    terms.insert(text.to_owned(), 1.0 / (1.0 + df as f32));
                }
                Ok(_) => {}
                Err(e) => err = Some(e),
            }
        }
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    let tokenizer = searcher.index().tokenizer_for_field(fields.body)?;
    Ok(SnippetGenerator::new(
        terms,
        tokenizer,
        fields.body,
        SNIPPET_CHARS,
    ))
}

fn render_hit(
    fields: &Fields,
    schema: &tantivy::schema::Schema,
    doc: &TantivyDocument,
    key: &SortKey,
    p: &SearchParams,
    snippets: Option<&SnippetGenerator>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let first_str = |f| doc.get_first(f).and_then(|v| v.as_str().map(str::to_owned));
    let kind = first_str(fields.kind).unwrap_or_default();
    out.insert("kind".into(), Value::String(kind));
    let id = doc.get_first(fields.id).map(OwnedValue::from);
    out.insert(
        "id".into(),
        id.as_ref().and_then(json_value).unwrap_or(Value::Null),
    );
    out.insert(
        "title".into(),
        Value::String(first_str(fields.title).unwrap_or_default()),
    );
    let body = first_str(fields.body).unwrap_or_default();
    let snippet = match snippets {
        Some(g) => {
            let s = g.snippet(&body);
            if s.is_empty() {
                None
            } else {
                Some(s.to_html())
            }
        }
        None => None,
    };
    let snippet = snippet.unwrap_or_else(|| {
        let mut s: String = body.chars().take(SNIPPET_CHARS).collect();
        if s.len() < body.len() {
            s.push('…');
        }
        html_escape(&s)
    });
    out.insert("snippet".into(), Value::String(snippet));
    let score = match key.primary {
        collect::Primary::Num(n) if p.sort.by == collect::SortBy::Relevance => Value::from(n),
        _ => Value::Null,
    };
    out.insert("score".into(), score);
    for name in HIT_FIELDS {
        let Ok(field) = schema.get_field(name) else {
            continue;
        };
        let values: Vec<Value> = doc
            .get_all(field)
            .filter_map(|v| json_value(&OwnedValue::from(v)))
            .collect();
        match values.len() {
            0 => {}
            1 if *name != "certification_id" || out.get("kind") != Some(&Value::from("risk")) => {
                out.insert(
                    (*name).into(),
                    values.into_iter().next().unwrap_or(Value::Null),
                );
            }
            _ => {
                out.insert((*name).into(), Value::Array(values));
            }
        }
    }
    out
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Kinds suggested, in the order they take turns within a match quality.
const SUGGESTED_KINDS: [Kind; 4] = [
    Kind::Control,
    Kind::Certification,
    Kind::Evidence,
    Kind::Risk,
];

/// Autocomplete: control ids in natural order when an id is being typed, then
/// titles of controls, certifications, evidence and risks, best match first:
/// a title that starts with the text, then one with a word that does; within a
/// quality the kinds take turns, so one kind never fills the list.
/// (Requirements repeat their control's title and are not suggested.)
pub fn suggest(
    service: &SearchService,
    pinned: &Pinned,
    fields: &Fields,
    scope: &Scope,
    text: &str,
    limit: usize,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    use tantivy::collector::TopDocs;
    use tantivy::query::FuzzyTermQuery;
    let searcher = &pinned.searcher;
    let stats = service
        .stats
        .provider(searcher, fields, stats::Visible::of(scope));
    let analyzer = searcher
        .index()
        .tokenizers()
        .get(TOKENIZER_WORDS)
        .ok_or_else(|| {
            ApiError::internal(
                "opening the index",
                "tokenizer certscope_words not registered",
            )
        })?;
    let kind_term = |k: Kind| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(fields.kind, k.as_str()),
            IndexRecordOption::Basic,
        ))
    };
    let render = |addr: tantivy::DocAddress| -> Result<Map<String, Value>, ApiError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let get = |f| doc.get_first(f).and_then(|v| v.as_str().map(str::to_owned));
        let mut m = Map::new();
        m.insert(
            "kind".into(),
            Value::String(get(fields.kind).unwrap_or_default()),
        );
        if let Some(id) = doc
            .get_first(fields.id)
            .map(OwnedValue::from)
            .as_ref()
            .and_then(json_value)
        {
            m.insert("id".into(), id);
        }
        m.insert(
            "title".into(),
            Value::String(get(fields.title).unwrap_or_default()),
        );
        if let Some(c) = get(fields.control) {
            m.insert("control".into(), Value::String(c));
        }
        Ok(m)
    };
    let mut out: Vec<Map<String, Value>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |m: Map<String, Value>, out: &mut Vec<Map<String, Value>>| {
        let key = (
            m.get("kind").cloned().unwrap_or(Value::Null),
            m.get("control")
                .or_else(|| m.get("title"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        if seen.insert(format!("{}|{}", key.0, key.1)) {
            out.push(m);
        }
    };

    // a control id being typed: AC-, ac-2, AC-2(, ia2(1
    let typed = text.trim();
    let canonical = vocabulary::control_id(typed).unwrap_or_else(|| typed.to_owned());
    let ident = certscope_indexer::schema::normalize_ident(&canonical);
    let looks_like_id = {
        let b = ident.as_bytes();
        b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1].is_ascii_alphabetic()
            && (b[2] == b'-' || b[2].is_ascii_digit())
    };
    if looks_like_id {
        // the catalogue's controls only, not file names that start alike
        let ids = compile::ident_terms(searcher, &stats, fields.ident, &ident, limit, |t| {
            vocabulary::control_id(t).is_some()
        });
        let n = ids.len() as f32;
        let ladder: Vec<(Occur, Box<dyn Query>)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| -> (Occur, Box<dyn Query>) {
                (
                    Occur::Should,
                    Box::new(ConstScoreQuery::new(
                        Box::new(TermQuery::new(
                            Term::from_field_text(fields.ident, id),
                            IndexRecordOption::Basic,
                        )),
                        n - i as f32,
                    )),
                )
            })
            .collect();
        if !ladder.is_empty() {
            let query = BooleanQuery::new(vec![
                (Occur::Must, Box::new(BooleanQuery::new(ladder))),
                (Occur::Must, kind_term(Kind::Control)),
                filter(tenancy(fields, scope, &service.visible)),
            ]);
            let top = searcher.search(&query, &TopDocs::with_limit(limit * 2).order_by_score())?;
            for (_, addr) in top {
                push(render(addr)?, &mut out);
            }
        }
    }
    if out.len() >= limit {
        out.truncate(limit);
        return Ok(out);
    }

    // titles, per kind
    let words = compile::analyze(&analyzer, text);
    let Some((last, rest)) = words.split_last() else {
        return Ok(out);
    };
    let ends_with_space = text.ends_with(char::is_whitespace);
    let mut title: Vec<(Occur, Box<dyn Query>)> = rest
        .iter()
        .map(|w| -> (Occur, Box<dyn Query>) {
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.title_words, w),
                    IndexRecordOption::WithFreqs,
                )),
            )
        })
        .collect();
    let last_term = Term::from_field_text(fields.title_words, last);
    title.push((
        Occur::Must,
        if ends_with_space {
            Box::new(TermQuery::new(last_term, IndexRecordOption::WithFreqs))
        } else {
            Box::new(FuzzyTermQuery::new_prefix(last_term, 0, false))
        },
    ));
    let title = BooleanQuery::new(title);
    let typed_lower = typed.to_lowercase();
    // (quality, turn, kind order, suggestion)
    let mut candidates: Vec<(u8, usize, usize, Map<String, Value>)> = Vec::new();
    for (k, kind) in SUGGESTED_KINDS.iter().enumerate() {
        let query = BooleanQuery::new(vec![
            (Occur::Must, tantivy::query::QueryClone::box_clone(&title)),
            (Occur::Must, kind_term(*kind)),
            filter(tenancy(fields, scope, &service.visible)),
        ]);
        let top = searcher.search_with_statistics_provider(
            &query,
            &TopDocs::with_limit(limit * 2).order_by_score(),
            &stats,
        )?;
        for (turn, (_, addr)) in top.into_iter().enumerate() {
            let m = render(addr)?;
            let t = m
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            let quality = if t.starts_with(&typed_lower) { 0 } else { 1 };
            candidates.push((quality, turn, k, m));
        }
    }
    candidates.sort_by_key(|c| (c.0, c.1, c.2));
    for (_, _, _, m) in candidates {
        if out.len() >= limit {
            break;
        }
        push(m, &mut out);
    }
    Ok(out)
}

/// A seeded generator for tests: `next(n)` is in `0..n`, the same sequence
/// for the same seed on every run.
#[cfg(test)]
pub(crate) fn seeded(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    }
}

#[cfg(test)]
mod tests {
    use certscope_indexer::schema;
    use tantivy::{Index, TantivyDocument, doc};

    use super::*;

    /// An index of two one-document segments.
    fn two_segments() -> (Index, Fields) {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for (id, title) in [(1u64, "access control"), (2, "access review")] {
            let doc: TantivyDocument = doc!(
                fields.kind => "requirement",
                fields.id => id,
                fields.org_id => 7u64,
                fields.certification_id => 3u64,
                fields.title => title,
            );
            writer.add_document(doc).unwrap();
            writer.commit().unwrap();
        }
        (index, fields)
    }

    #[test]
    fn the_segment_caches_drop_what_no_searcher_holds() {
        let (index, fields) = two_segments();
        let searcher = index.reader().unwrap().searcher();
        let segments: Vec<_> = searcher.segment_readers().iter().collect();
        assert_eq!(segments.len(), 2);
        let service = SearchService::default();
        let visible = stats::Visible {
            org: 7,
            certifications: None,
        };
        let stats = service.stats.provider(&searcher, &fields, visible);
        use tantivy::query::Bm25StatisticsProvider as _;
        let term = Term::from_field_text(fields.title, "access");
        assert_eq!(stats.doc_freq(&term).unwrap(), 2);
        assert_eq!(stats.total_num_docs().unwrap(), 2);
        for segment in &segments {
            service.columns.get(segment).unwrap();
            service
                .columns
                .sort_values(segment, collect::SortBy::Date("due_date"))
                .unwrap();
        }
        let scope = Scope {
            user_id: 1,
            org_id: 7,
            role: crate::auth::Role::Officer,
            certifications: None,
        };
        let own = tenancy(&fields, &scope, &service.visible);
        assert_eq!(own.count(&searcher).unwrap(), 2);
        let settle = || {
            service.columns.settle();
            service.visible.settle();
            service.stats.settle();
        };
        settle();
        let [
            (_, (columns, column_bytes)),
            (_, (sorts, sort_bytes)),
            (_, (visible, visible_bytes)),
            (_, (figures, figure_bytes)),
        ] = service.cache_figures();
        assert_eq!(
            (columns, sorts, visible, figures),
            (2, 2, 2, 4),
            "per segment: its columns, a sort column, the scope's documents, its docs and a doc freq"
        );
        assert!(column_bytes > 0 && sort_bytes > 0 && visible_bytes > 0 && figure_bytes > 0);

        // the first segment merged away: only the second's entries stay
        let live: LiveSegments = Arc::new([segments[1].segment_id()].into());
        service.columns.retain(&live);
        service.visible.retain(&live);
        service.stats.retain(&live);
        settle();
        let [
            (_, (columns, _)),
            (_, (sorts, _)),
            (_, (visible, _)),
            (_, (figures, _)),
        ] = service.cache_figures();
        assert_eq!((columns, sorts, visible, figures), (1, 1, 1, 2));
        // and what stays still answers
        assert_eq!(stats.doc_freq(&term).unwrap(), 2);
    }
}
