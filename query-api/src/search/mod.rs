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
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::Instant;

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
/// every query; no parameter reaches it.
pub fn tenancy(fields: &Fields, scope: &Scope) -> Box<dyn Query> {
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
    Box::new(ConstScoreQuery::new(
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, own),
            (Occur::Should, shared),
        ])),
        0.0,
    ))
}

fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

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

/// One thread per core (at most 4): a search over a large index is split by
/// segment, which cuts latency when the machine is not already saturated.
fn search_executor() -> tantivy::Executor {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads > 1
        && let Ok(executor) = tantivy::Executor::multi_thread(threads, "certscope-search-")
    {
        return executor;
    }
    tantivy::Executor::single_thread()
}

impl Default for SearchService {
    fn default() -> Self {
        Self {
            stats: StatsCache::default(),
            pinned: PinnedSearchers::default(),
            executed: Default::default(),
            latency: certscope_indexer::metrics::Histogram::new(&[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            executor: search_executor(),
            columns: columns::ColumnCache::default(),
        }
    }
}

impl SearchService {
    /// Runs a search. Blocking: call from a blocking thread.
    pub fn search(
        &self,
        pinned: &Pinned,
        fields: &Fields,
        scope: &Scope,
        p: &SearchParams,
        today: i64,
    ) -> Result<SearchResponse, ApiError> {
        let _timer = Timer {
            started: Instant::now(),
            into: &self.latency,
        };
        self.executed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let searcher = &pinned.searcher;
        let request_hash = cursor::hash(&format!("{}|{}", scope.cache_key(), p.canonical));
        let after = resume_after(p, request_hash)?;
        let stats = self
            .stats
            .provider(searcher, fields, stats::Visible::of(scope));
        let text = compile_text(searcher, fields, &stats, p)?;
        let query = filtered_query(searcher, fields, scope, p, text.as_deref(), today)?;
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
        };
        let collector = SearchCollector {
            plan,
            columns: &self.columns,
        };
        let scoring = if collector.requires_scoring() {
            EnableScoring::enabled_from_statistics_provider(&stats, searcher)
        } else {
            EnableScoring::disabled_from_searcher(searcher)
        };
        let mut fruit =
            searcher.search_with_executor(&query, &collector, &self.executor, scoring)?;
        let more = fruit.hits.len() > p.limit;
        fruit.hits.truncate(p.limit);
        let next_cursor = match fruit.hits.last() {
            Some((key, _)) if more => Some(Cursor::new(pinned.id, request_hash, key).encode()),
            _ => None,
        };
        let snippets = match &text {
            Some(t) => Some(snippet_generator(searcher, t.as_ref(), fields, &stats)?),
            None => None,
        };
        let hits = render_hits(searcher, fields, scope, p, &fruit.hits, snippets.as_ref())?;
        let mut facets = BTreeMap::new();
        for facet in &p.facets {
            let counts = fruit.facets.remove(facet).unwrap_or_default();
            facets.insert(
                facet.name(),
                facet_values(counts, p.selections.get(*facet), p.facet_size),
            );
        }
        Ok(SearchResponse {
            total: fruit.total,
            hits,
            facets,
            next_cursor,
            position: pinned.position.clone(),
        })
    }
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

/// The text part of the request as a tantivy query, if there is text.
fn compile_text(
    searcher: &Searcher,
    fields: &Fields,
    stats: &dyn Bm25StatisticsProvider,
    p: &SearchParams,
) -> Result<Option<Box<dyn Query>>, ApiError> {
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
    };
    p.node.as_ref().map(|n| compiler.compile(n)).transpose()
}

/// The text query under the filters the server adds (tenancy) and the ones the
/// request asks for (kind, date ranges, a due pre-filter).
fn filtered_query(
    searcher: &Searcher,
    fields: &Fields,
    scope: &Scope,
    p: &SearchParams,
    text: Option<&dyn Query>,
    today: i64,
) -> Result<BooleanQuery, ApiError> {
    let schema = searcher.index().schema();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some(t) = text {
        clauses.push((Occur::Must, t.box_clone()));
    }
    clauses.push(filter(tenancy(fields, scope)));
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
    if !due.is_empty() {
        // nothing due later than the widest bucket can pass or count: an
        // exact pre-filter that spares visiting far-future and undated items
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
    Ok(BooleanQuery::new(clauses))
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

fn facet_values(counts: HashMap<String, u64>, selected: &[String], size: usize) -> Vec<FacetValue> {
    let mut values: Vec<FacetValue> = counts
        .into_iter()
        .map(|(value, count)| FacetValue {
            selected: selected.contains(&value),
            value,
            count,
            label: None,
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
                label: None,
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
) -> Result<SnippetGenerator, ApiError> {
    let mut terms = BTreeMap::new();
    let mut err = None;
    query.query_terms(&mut |term, _| {
        if term.field() == fields.body
            && let Some(text) = term.value().as_str()
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

/// Autocomplete: titles and control ids starting with what was typed.
pub fn suggest(
    stats_cache: &StatsCache,
    pinned: &Pinned,
    fields: &Fields,
    scope: &Scope,
    text: &str,
    limit: usize,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    use tantivy::collector::TopDocs;
    use tantivy::query::FuzzyTermQuery;
    let searcher = &pinned.searcher;
    let stats = stats_cache.provider(searcher, fields, stats::Visible::of(scope));
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
    let words = compile::analyze(&analyzer, text);
    let ends_with_space = text.ends_with(char::is_whitespace);
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    // a control id typed so far: AC-2, ac-2.1, AC-2(
    let ident = certscope_indexer::schema::normalize_ident(text);
    if !ident.is_empty() && !ident.contains(' ') {
        alternatives.push((
            Occur::Should,
            Box::new(tantivy::query::BoostQuery::new(
                Box::new(FuzzyTermQuery::new_prefix(
                    Term::from_field_text(fields.ident, &ident),
                    0,
                    false,
                )),
                3.0,
            )),
        ));
    }
    if let Some((last, rest)) = words.split_last() {
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
        alternatives.push((Occur::Should, Box::new(BooleanQuery::new(title))));
    }
    if alternatives.is_empty() {
        return Ok(vec![]);
    }
    let query = BooleanQuery::new(vec![
        (Occur::Must, Box::new(BooleanQuery::new(alternatives))),
        filter(tenancy(fields, scope)),
    ]);
    let top = searcher.search_with_statistics_provider(
        &query,
        &TopDocs::with_limit(limit * 3).order_by_score(),
        &stats,
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (_, addr) in top {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let get = |f| doc.get_first(f).and_then(|v| v.as_str().map(str::to_owned));
        let title = get(fields.title).unwrap_or_default();
        let kind = get(fields.kind).unwrap_or_default();
        if !seen.insert((kind.clone(), title.clone())) {
            continue;
        }
        let mut m = Map::new();
        m.insert("kind".into(), Value::String(kind));
        if let Some(id) = doc
            .get_first(fields.id)
            .map(OwnedValue::from)
            .as_ref()
            .and_then(json_value)
        {
            m.insert("id".into(), id);
        }
        m.insert("title".into(), Value::String(title));
        if let Some(c) = get(fields.control) {
            m.insert("control".into(), Value::String(c));
        }
        out.push(m);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
