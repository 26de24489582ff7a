//! The parsed query turned into tantivy queries: BM25 over text fields with
//! boosts, identifiers matched exactly, typo tolerance for ordinary words that the
//! caller's organization does not know, phrases on positional fields.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use certscope_domain::Kind;
use certscope_indexer::schema::{Fields, normalize_ident};
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, BoostQuery, BoostWeight, ConstScoreQuery,
    EmptyQuery, EnableScoring, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{Searcher, Term};

use super::parser::Node;
use super::sha256::Sha256Query;
use super::vocabulary::{Concept, Vocabulary, control_id, natural_key, strip_possessive};
use crate::error::ApiError;

/// Boosts per field: a word in a title counts three times one in a body.
pub const BOOST_TITLE: f32 = 3.0;
pub const BOOST_BODY: f32 = 1.0;
pub const BOOST_DETAIL: f32 = 0.5;
pub const BOOST_CONTEXT: f32 = 0.7;
/// An exact identifier outranks any text match.
pub const BOOST_IDENT: f32 = 25.0;
/// Fuzzy matches score a constant this high, below any real match of the word.
pub const BOOST_FUZZY: f32 = 0.4;
/// Words the organization has fewer documents with than this get typo tolerance.
pub const FUZZY_BELOW_DOC_FREQ: u64 = 3;

pub struct Compiler<'a> {
    pub fields: &'a Fields,
    /// The English analyser of title/body (split, lowercase, stem).
    pub english: TextAnalyzer,
    /// Lowercased words without stemming (title_words).
    pub words: TextAnalyzer,
    /// Statistics of what the caller may see (relevance, typo tolerance,
    /// which corrections and spellings exist).
    pub stats: &'a dyn Bm25StatisticsProvider,
    /// Term dictionaries, for corrections and identifier prefixes.
    pub searcher: &'a Searcher,
    pub vocabulary: &'a Vocabulary,
    /// How many of a question's content words a document must hold.
    pub required: Words,
    /// How the question's words were matched (the first bag of words).
    pub matching: RefCell<Option<Matching>>,
    /// Inside a `-`/`NOT`: words there are excluded as typed, never relaxed.
    pub negated: Cell<bool>,
}

/// How many of a question's content words a document must hold: search asks
/// for every word first, for most of them when fewer than
/// [`FEW_WITH_EVERY_WORD`] documents hold every word, and for any one when
/// none holds most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    All,
    Most,
    Any,
}

/// Fewer documents than this holding every word of a question: those holding
/// most of them are listed too (after them).
pub const FEW_WITH_EVERY_WORD: u64 = 10;

/// How many of a question's words a document had to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    /// Content words (a synonym of several words counts once).
    pub words: usize,
    /// How many of them each hit holds at least.
    pub required: usize,
    /// Words that never had to match (what, do, we, for...).
    pub ignored: Vec<String>,
}

/// With [`Words::Most`], documents holding at least this many of a question's
/// `n` content words match: all of one or two, then half of them (rounded
/// up); those holding more rank higher, every word highest.
pub fn required_words(n: usize) -> usize {
    if n <= 2 { n } else { n.div_ceil(2) }
}

/// Score added to a document holding every content word, relative to its
/// score for them: those come first.
pub const BOOST_ALL_WORDS: f32 = 1.0;
/// A synonym scores below the word as typed.
pub const BOOST_SYNONYM: f32 = 0.8;
/// `evidence` in a question multiplies the score of evidence by this, without
/// requiring the word.
pub const BOOST_KIND_HINT: f32 = 1.0;
/// Words that say which kind of document is wanted rather than what it is about.
const KIND_HINTS: &[(&str, Kind)] = &[("evidence", Kind::Evidence), ("proof", Kind::Evidence)];
/// Corrections kept per misspelt word (those most documents hold).
const MAX_CORRECTIONS: usize = 3;
/// Enhancements of a control listed after it, and ids a prefix expands to.
const MAX_ID_EXPANSIONS: usize = 128;
/// A control id mentioned in text, below every document of the control.
pub const BOOST_ID_IN_TEXT: f32 = 0.5;
/// Hex characters of a sha256 prefix that is searched as one.
pub const MIN_SHA_PREFIX: usize = 8;

fn boxed(q: impl Query) -> Box<dyn Query> {
    Box::new(q)
}

fn boost(q: Box<dyn Query>, by: f32) -> Box<dyn Query> {
    if (by - 1.0).abs() < f32::EPSILON {
        q
    } else {
        boxed(BoostQuery::new(q, by))
    }
}

/// Clauses of which any may match. No clauses (a word of punctuation only) is
/// neutral: it matches everything with no score.
fn any_of(clauses: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    match clauses.len() {
        0 => boxed(ConstScoreQuery::new(boxed(AllQuery), 0.0)),
        1 => clauses
            .into_iter()
            .next()
            .unwrap_or_else(|| boxed(EmptyQuery)),
        _ => boxed(BooleanQuery::new(
            clauses.into_iter().map(|q| (Occur::Should, q)).collect(),
        )),
    }
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    boxed(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ))
}

/// A term's query with a boost. Unlike tantivy's `BoostQuery`, which hides
/// what it wraps, it can be recognised: a union of these is what block-max
/// WAND can prune ([`is_term_union`]). Weighs exactly as `BoostQuery` does.
#[derive(Clone, Debug)]
struct BoostedTerm {
    query: TermQuery,
    boost: f32,
}

impl Query for BoostedTerm {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let weight = self.query.weight(scoring)?;
        Ok(if scoring.is_scoring_enabled() {
            Box::new(BoostWeight::new(weight, self.boost))
        } else {
            weight
        })
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

fn boosted_term(field: Field, text: &str, by: f32) -> Box<dyn Query> {
    let query = TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    );
    if (by - 1.0).abs() < f32::EPSILON {
        boxed(query)
    } else {
        boxed(BoostedTerm { query, boost: by })
    }
}

/// Whether a text query is a plain union of (boosted) terms, the shape whose
/// best hits tantivy finds by block-max WAND, skipping the blocks of postings
/// that cannot reach the page: a single word in every text field, with its
/// spellings and corrections.
pub fn is_term_union(query: &dyn Query) -> bool {
    let Some(union) = query.downcast_ref::<BooleanQuery>() else {
        return false;
    };
    union.clauses().len() >= 2
        && union.get_minimum_number_should_match() <= 1
        && union.clauses().iter().all(|(occur, q)| {
            *occur == Occur::Should
                && (q.downcast_ref::<TermQuery>().is_some()
                    || q.downcast_ref::<BoostedTerm>().is_some())
        })
}

/// Whether a word is an identifier (`AC-2(1)`, `ac-2.1`, a file name, a hash)
/// rather than an ordinary word: identifiers are matched exactly, never fuzzily.
pub fn is_identifier(word: &str) -> bool {
    let has_digit = word.chars().any(|c| c.is_ascii_digit());
    let has_punct = word.chars().any(|c| "-.()_/#".contains(c));
    has_digit || (has_punct && word.chars().any(char::is_alphanumeric))
}

pub fn is_sha256(word: &str) -> bool {
    word.len() == 64 && word.chars().all(|c| c.is_ascii_hexdigit())
}

/// Which text fields a word or phrase searches, with their boosts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Title,
    Body,
}

/// The tokens `analyzer` makes of `text`.
pub fn analyze(analyzer: &TextAnalyzer, text: &str) -> Vec<String> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

impl Compiler<'_> {
    fn text_fields(&self, scope: Scope) -> Vec<(Field, f32, bool)> {
        let f = self.fields;
        // (field, boost, has positions)
        match scope {
            Scope::All => vec![
                (f.title, BOOST_TITLE, true),
                (f.body, BOOST_BODY, true),
                (f.detail, BOOST_DETAIL, false),
                (f.context, BOOST_CONTEXT, false),
            ],
            Scope::Title => vec![(f.title, 1.0, true)],
            Scope::Body => vec![(f.body, 1.0, true)],
        }
    }

    fn doc_freq(&self, field: Field, token: &str) -> u64 {
        self.stats
            .doc_freq(&Term::from_field_text(field, token))
            .unwrap_or(u64::MAX)
    }

    /// Documents the caller can see that hold `token` in a title or body.
    fn known(&self, token: &str) -> u64 {
        self.doc_freq(self.fields.title, token)
            .saturating_add(self.doc_freq(self.fields.body, token))
    }

    /// Terms of `field` within `distance` edits of `word` that documents the
    /// caller can see hold, those most documents hold first. Expanded here
    /// (not left to a fuzzy query) so that snippets highlight the correction.
    fn corrections(&self, field: Field, word: &str, distance: u8) -> Vec<String> {
        let fuzzy = FuzzyTermQuery::new(Term::from_field_text(field, word), distance, true);
        let Ok(automaton) = fuzzy.automaton() else {
            return vec![];
        };
        let mut found = BTreeSet::new();
        for segment in self.searcher.segment_readers() {
            let Ok(inverted) = segment.inverted_index(field) else {
                continue;
            };
            let Ok(mut stream) = inverted.terms().search(&automaton).into_stream() else {
                continue;
            };
            while stream.advance() && found.len() < 512 {
                if let Ok(t) = std::str::from_utf8(stream.key())
                    && t != word
                {
                    found.insert(t.to_owned());
                }
            }
        }
        let mut scored: Vec<(u64, String)> = found
            .into_iter()
            .map(|t| (self.doc_freq(field, &t), t))
            .filter(|(df, _)| *df > 0 && *df != u64::MAX)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(MAX_CORRECTIONS)
            .map(|(_, t)| t)
            .collect()
    }

    /// One analysed token across the scope's fields; when `raw` (the word as
    /// typed, lowercased) is given, also its other spellings and, for a word the
    /// caller's documents hardly know, its corrections.
    fn token(&self, scope: Scope, token: &str, raw: Option<&str>) -> Vec<Box<dyn Query>> {
        let mut clauses = Vec::new();
        for (field, b, _) in self.text_fields(scope) {
            clauses.push(boosted_term(field, token, b));
        }
        let Some(raw) = raw else {
            return clauses;
        };
        // British and American spellings the caller's documents use: the
        // same word, so the same weight in every field
        let mut also = Vec::new();
        for variant in super::vocabulary::spelling_variants(raw) {
            if let Some(t) = analyze(&self.english, &variant).pop()
                && t != token
                && !also.contains(&t)
                && self.known(&t) > 0
            {
                for (field, b, _) in self.text_fields(scope) {
                    clauses.push(boosted_term(field, &t, b));
                }
                also.push(t);
            }
        }
        let spellings = also.len();
        let len = token.chars().count();
        // a word known in its other spelling is not a typo
        let known = also
            .iter()
            .chain(std::iter::once(&token.to_owned()))
            .map(|t| self.known(t).min(FUZZY_BELOW_DOC_FREQ))
            .sum::<u64>();
        if len >= 4 && known < FUZZY_BELOW_DOC_FREQ {
            let distance = |n: usize| if n >= 8 { 2 } else { 1 };
            // the typed word against unstemmed title words: "separaton" is one
            // edit from "separation", though far from its stem "separ"
            if scope != Scope::Body {
                for word in
                    self.corrections(self.fields.title_words, raw, distance(raw.chars().count()))
                {
                    if let Some(t) = analyze(&self.english, &word).pop()
                        && t != token
                        && !also.contains(&t)
                    {
                        also.push(t);
                    }
                }
            }
            for field in [self.fields.title, self.fields.body] {
                for t in self.corrections(field, token, distance(len)) {
                    if !also.contains(&t) {
                        also.push(t);
                    }
                }
            }
        }
        for t in &also[spellings..] {
            for (field, b, _) in self.text_fields(scope) {
                if field == self.fields.title || field == self.fields.body {
                    clauses.push(boosted_term(field, t, BOOST_FUZZY * b));
                }
            }
        }
        clauses
    }

    /// Several analysed tokens in order: a phrase on positional fields.
    fn phrase(&self, scope: Scope, tokens: &[String], weight: f32) -> Vec<Box<dyn Query>> {
        self.text_fields(scope)
            .into_iter()
            .filter(|(_, _, positions)| *positions)
            .map(|(field, b, _)| {
                let terms = tokens
                    .iter()
                    .map(|t| Term::from_field_text(field, t))
                    .collect();
                boost(boxed(PhraseQuery::new(terms)), b * weight)
            })
            .collect()
    }

    /// Identifier terms starting with `prefix`, in natural order (`ac-2`,
    /// `ac-2(1)`, `ac-2(2)`, `ac-2(10)`), at most `limit`.
    fn ident_terms(&self, prefix: &str, limit: usize) -> Vec<String> {
        ident_terms(
            self.searcher,
            self.stats,
            self.fields.ident,
            prefix,
            limit,
            |_| true,
        )
    }

    /// Identifiers in natural order, each a constant score just below the one
    /// before, all below an exact identifier.
    fn ident_ladder(&self, ids: &[String], top: f32) -> Vec<Box<dyn Query>> {
        let step = top / (ids.len() as f32 + 1.0) / 4.0;
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                boxed(ConstScoreQuery::new(
                    term_query(self.fields.ident, id),
                    top - step * i as f32,
                ))
            })
            .collect()
    }

    fn word(&self, scope: Scope, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut clauses = Vec::new();
        if scope == Scope::All && is_sha256(text) {
            return self.sha256(&text.to_lowercase(), true);
        }
        if scope == Scope::All && is_sha_prefix(text) {
            clauses.push(self.sha256(&text.to_lowercase(), false));
        }
        let ident = is_identifier(text);
        if ident && scope == Scope::All {
            let id = normalize_ident(text);
            clauses.push(boxed(ConstScoreQuery::new(
                term_query(f.ident, &id),
                BOOST_IDENT,
            )));
            // a control's enhancements follow it, in natural order
            if control_id(text).is_some_and(|c| !c.contains('(')) {
                let enhancements = ident_terms(
                    self.searcher,
                    self.stats,
                    f.ident,
                    &format!("{id}("),
                    MAX_ID_EXPANSIONS,
                    |t| control_id(t).is_some(),
                );
                clauses.extend(self.ident_ladder(&enhancements, BOOST_IDENT / 2.0));
            }
        }
        let tokens = analyze(&self.english, text);
        match tokens.len() {
            0 => {}
            1 => {
                let raw = analyze(&self.words, text);
                let raw = raw.first().map(String::as_str).filter(|_| !ident);
                clauses.extend(self.token(scope, &tokens[0], raw));
            }
            // a control id written in a text ("see AC-2"): found, but below
            // every document of the control, whose order the id decides
            _ if scope == Scope::All && control_id(text).is_some() => clauses.push(boxed(
                ConstScoreQuery::new(any_of(self.phrase(scope, &tokens, 1.0)), BOOST_ID_IN_TEXT),
            )),
            _ => clauses.extend(self.phrase(scope, &tokens, if ident { 0.5 } else { 1.0 })),
        }
        any_of(clauses)
    }

    /// Evidence whose sha256 is `hex` (`whole`) or starts with it.
    fn sha256(&self, hex: &str, whole: bool) -> Box<dyn Query> {
        let f = self.fields.sha256;
        let query = if whole {
            Sha256Query::whole(f, hex)
        } else {
            Sha256Query::prefix(f, hex)
        };
        boost(boxed(query), BOOST_IDENT)
    }

    fn prefix(&self, scope: Scope, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut clauses = Vec::new();
        if scope == Scope::All && is_sha_prefix(text) {
            clauses.push(self.sha256(&text.to_lowercase(), false));
        }
        if scope == Scope::All && is_identifier(text) {
            let ids = self.ident_terms(&normalize_ident(text), MAX_ID_EXPANSIONS);
            clauses.extend(self.ident_ladder(&ids, BOOST_IDENT / 2.0));
        }
        // the last word is the prefix; earlier words must appear as words
        let words = analyze(&self.words, text);
        if let Some((last, _)) = words.split_last() {
            let fields: &[(Field, f32)] = match scope {
                Scope::All => &[(f.title_words, 2.0), (f.body, 1.0)],
                Scope::Title => &[(f.title_words, 1.0)],
                Scope::Body => &[(f.body, 1.0)],
            };
            for &(field, b) in fields {
                clauses.push(boost(
                    boxed(FuzzyTermQuery::new_prefix(
                        Term::from_field_text(field, last),
                        0,
                        false,
                    )),
                    b,
                ));
            }
        }
        any_of(clauses)
    }

    fn phrase_node(&self, scope: Scope, text: &str) -> Box<dyn Query> {
        let tokens = analyze(&self.english, text);
        match tokens.len() {
            0 => any_of(vec![]),
            1 => any_of(self.token(scope, &tokens[0], None)),
            _ => any_of(self.phrase(scope, &tokens, 1.0)),
        }
    }

    /// Another way to write a concept (a synonym): its words as a phrase, never
    /// corrected.
    fn alternative(&self, words: &str) -> Box<dyn Query> {
        if let Some(id) = control_id(words) {
            return boxed(ConstScoreQuery::new(
                term_query(self.fields.ident, &normalize_ident(&id)),
                BOOST_IDENT * BOOST_SYNONYM,
            ));
        }
        let tokens = analyze(&self.english, words);
        match tokens.len() {
            0 => any_of(vec![]),
            1 => any_of(self.token(Scope::All, &tokens[0], None)),
            _ => {
                let mut clauses = self.phrase(Scope::All, &tokens, 1.0);
                // guidance has no positions: all the words there will do
                clauses.push(boost(
                    boxed(BooleanQuery::new(
                        tokens
                            .iter()
                            .map(|t| (Occur::Must, term_query(self.fields.detail, t)))
                            .collect(),
                    )),
                    BOOST_DETAIL,
                ));
                any_of(clauses)
            }
        }
    }

    /// A concept: the words as typed, or any of their synonyms.
    fn concept(&self, c: &Concept) -> Box<dyn Query> {
        let mut clauses = vec![match c.typed.as_slice() {
            [one] => self.word(Scope::All, strip_possessive(one)),
            // several typed words a synonym line names: searched like any of
            // its alternatives, so that each way of writing it finds the same
            many => self.alternative(
                &many
                    .iter()
                    .map(|w| strip_possessive(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }];
        for alt in &c.alternatives {
            clauses.push(boost(self.alternative(alt), BOOST_SYNONYM));
        }
        any_of(clauses)
    }

    /// Plain words side by side, the way people ask: stop words never have to
    /// match, synonyms stand in for each other, a word that says "evidence"
    /// prefers that kind, and most (not all) of the rest must match.
    fn bag(&self, typed: &[String]) -> Box<dyn Query> {
        let concepts = self.vocabulary.concepts(typed);
        let mut ignored: Vec<String> = Vec::new();
        let mut content: Vec<&Concept> = concepts.iter().filter(|c| !c.stop).collect();
        if content.is_empty() {
            // only stop words: search them as typed
            content = concepts.iter().collect();
        } else {
            ignored.extend(
                concepts
                    .iter()
                    .filter(|c| c.stop)
                    .map(|c| c.typed.join(" ")),
            );
        }
        let mut hints = Vec::new();
        if content.len() > 1 {
            content.retain(|c| {
                let hint = match (c.typed.as_slice(), c.alternatives.is_empty()) {
                    ([one], true) => KIND_HINTS
                        .iter()
                        .find(|(w, _)| one.eq_ignore_ascii_case(w))
                        .map(|(_, k)| *k),
                    _ => None,
                };
                match hint {
                    Some(k) => {
                        hints.push(k);
                        ignored.push(c.typed.join(" "));
                        false
                    }
                    None => true,
                }
            });
        }
        let n = content.len();
        let required = match self.required {
            _ if self.negated.get() => n,
            Words::All => n,
            Words::Most => required_words(n),
            Words::Any => n.min(1),
        };
        let mut matching = self.matching.borrow_mut();
        if matching.is_none() && !self.negated.get() {
            *matching = Some(Matching {
                words: n,
                required,
                ignored,
            });
        }
        drop(matching);
        let parts: Vec<Box<dyn Query>> = content.iter().map(|c| self.concept(c)).collect();
        let words = match parts.len() {
            0 => any_of(vec![]),
            1 => parts
                .into_iter()
                .next()
                .unwrap_or_else(|| boxed(EmptyQuery)),
            n if required >= n => boxed(BooleanQuery::new(
                parts.into_iter().map(|p| (Occur::Must, p)).collect(),
            )),
            _ => {
                let all =
                    BooleanQuery::new(parts.iter().map(|p| (Occur::Must, p.box_clone())).collect());
                let most = BooleanQuery::with_minimum_required_clauses(
                    parts.into_iter().map(|p| (Occur::Should, p)).collect(),
                    required,
                );
                boxed(BooleanQuery::new(vec![
                    (Occur::Must, boxed(most)),
                    (Occur::Should, boost(boxed(all), BOOST_ALL_WORDS)),
                ]))
            }
        };
        if hints.is_empty() {
            return words;
        }
        // the words again, for that kind only: its documents score twice
        let mut clauses = vec![(Occur::Must, words.box_clone())];
        for k in hints {
            let of_kind = BooleanQuery::new(vec![
                (Occur::Must, words.box_clone()),
                (
                    Occur::Must,
                    boxed(ConstScoreQuery::new(
                        boxed(TermQuery::new(
                            Term::from_field_text(self.fields.kind, k.as_str()),
                            IndexRecordOption::Basic,
                        )),
                        0.0,
                    )),
                ),
            ]);
            clauses.push((Occur::Should, boost(boxed(of_kind), BOOST_KIND_HINT)));
        }
        boxed(BooleanQuery::new(clauses))
    }

    fn keyword_field(&self, name: &str) -> Option<Field> {
        let f = self.fields;
        Some(match name {
            "family" => f.family,
            "framework" => f.framework,
            "status" => f.status,
            "owner" => f.owner,
            "kind" => f.kind,
            "category" => f.category,
            "treatment" => f.treatment,
            "risk_level" => f.risk_level,
            "media_type" => f.media_type,
            _ => return None,
        })
    }

    fn field(&self, name: &'static str, value: &Node) -> Result<Box<dyn Query>, ApiError> {
        let (text, prefix) = match value {
            Node::Word { text, prefix } => (text.as_str(), *prefix),
            Node::Phrase(p) => (p.as_str(), false),
            _ => {
                return Err(ApiError::bad(
                    "bad_query",
                    format!("`{name}:` takes a word or a phrase"),
                ));
            }
        };
        let f = self.fields;
        let q = match name {
            "title" | "body" => {
                let scope = if name == "title" {
                    Scope::Title
                } else {
                    Scope::Body
                };
                return Ok(match value {
                    Node::Phrase(p) => self.phrase_node(scope, p),
                    _ if prefix => self.prefix(scope, text),
                    _ => self.word(scope, text),
                });
            }
            "control" => {
                let id = normalize_ident(&control_id(text).unwrap_or_else(|| text.to_owned()));
                if prefix {
                    // a filter (constant score): the ids, in no order of their own
                    let ids = ident_terms(
                        self.searcher,
                        self.stats,
                        f.ident,
                        &id,
                        MAX_TERMS_EXAMINED,
                        |t| control_id(t).is_some(),
                    );
                    any_of(ids.iter().map(|i| term_query(f.ident, i)).collect())
                } else {
                    term_query(f.ident, &id)
                }
            }
            "sha256" => {
                let hex = text.trim().to_lowercase();
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ApiError::bad(
                        "bad_query",
                        format!("`sha256:{text}`: a sha256 is hexadecimal (0-9, a-f)"),
                    ));
                }
                if prefix || hex.len() < 64 {
                    if hex.len() < MIN_SHA_PREFIX && !prefix {
                        return Err(ApiError::bad(
                            "bad_query",
                            format!(
                                "`sha256:{text}`: give the whole hash or at least {MIN_SHA_PREFIX} characters of it (or end it with `*`)"
                            ),
                        ));
                    }
                    self.sha256(&hex, false)
                } else {
                    self.sha256(&hex, true)
                }
            }
            "owner" => {
                // people's names in any case: the index's spelling of them
                let names = self.owner_terms(text);
                let t = |n: &str| -> Box<dyn Query> {
                    boxed(TermQuery::new(
                        Term::from_field_text(f.owner, n),
                        IndexRecordOption::Basic,
                    ))
                };
                if prefix {
                    let wanted = text.to_lowercase();
                    any_of(
                        self.all_terms(f.owner)
                            .iter()
                            .filter(|n| n.to_lowercase().starts_with(&wanted))
                            .map(|n| t(n))
                            .collect(),
                    )
                } else if names.is_empty() {
                    t(text)
                } else {
                    any_of(names.iter().map(|n| t(n)).collect())
                }
            }
            other => {
                let field = self.keyword_field(other).ok_or_else(|| {
                    ApiError::bad("bad_query", format!("`{other}:` cannot be searched"))
                })?;
                let value = if prefix {
                    text.to_lowercase()
                } else {
                    super::params::keyword_value(other, text)
                        .map_err(|e| ApiError::bad("bad_query", format!("`q`: {e}")))?
                };
                let t = Term::from_field_text(field, &value);
                if prefix {
                    boxed(FuzzyTermQuery::new_prefix(t, 0, false))
                } else {
                    boxed(TermQuery::new(t, IndexRecordOption::Basic))
                }
            }
        };
        Ok(boxed(ConstScoreQuery::new(q, 1.0)))
    }

    /// The terms of a keyword field (small fields only: owners) that documents
    /// the caller can see hold.
    fn all_terms(&self, field: Field) -> Vec<String> {
        let mut found = BTreeSet::new();
        for segment in self.searcher.segment_readers() {
            let Ok(inverted) = segment.inverted_index(field) else {
                continue;
            };
            let Ok(mut stream) = inverted.terms().range().into_stream() else {
                continue;
            };
            let mut examined = 0;
            while stream.advance() && examined < 16 * MAX_TERMS_EXAMINED {
                examined += 1;
                if let Ok(t) = std::str::from_utf8(stream.key()) {
                    found.insert(t.to_owned());
                }
            }
        }
        found
            .into_iter()
            .filter(|t| self.doc_freq(field, t) > 0)
            .collect()
    }

    /// The owner names the index holds that equal `name` ignoring case.
    fn owner_terms(&self, name: &str) -> Vec<String> {
        let wanted = name.trim().to_lowercase();
        self.all_terms(self.fields.owner)
            .into_iter()
            .filter(|n| n.to_lowercase() == wanted)
            .collect()
    }

    /// What a `-`/`NOT` excludes: its words as typed, all of them.
    fn excluded(&self, node: &Node) -> Result<Box<dyn Query>, ApiError> {
        let outer = self.negated.replace(true);
        let q = self.compile(node);
        self.negated.set(outer);
        q
    }

    /// Compiles a parsed query.
    pub fn compile(&self, node: &Node) -> Result<Box<dyn Query>, ApiError> {
        Ok(match node {
            Node::Word {
                text,
                prefix: false,
            } => self.bag(std::slice::from_ref(text)),
            Node::Word { text, prefix: true } => self.prefix(Scope::All, text),
            Node::Phrase(p) => self.phrase_node(Scope::All, p),
            Node::Field { field, value } => self.field(field, value)?,
            Node::Or(parts) => {
                let mut clauses = Vec::new();
                for p in parts {
                    clauses.push((Occur::Should, self.compile(p)?));
                }
                boxed(BooleanQuery::new(clauses))
            }
            Node::Not(inner) => boxed(BooleanQuery::new(vec![
                (
                    Occur::Must,
                    boxed(ConstScoreQuery::new(boxed(AllQuery), 0.0)),
                ),
                (Occur::MustNot, self.excluded(inner)?),
            ])),
            Node::And(parts) => {
                let mut clauses = Vec::new();
                // plain words, wherever they stand, are one question
                let words: Vec<String> = parts
                    .iter()
                    .filter_map(|p| match p {
                        Node::Word {
                            text,
                            prefix: false,
                        } => Some(text.clone()),
                        _ => None,
                    })
                    .collect();
                if !words.is_empty() {
                    clauses.push((Occur::Must, self.bag(&words)));
                }
                for p in parts {
                    match p {
                        Node::Word { prefix: false, .. } => {}
                        Node::Not(inner) => clauses.push((Occur::MustNot, self.excluded(inner)?)),
                        other => clauses.push((Occur::Must, self.compile(other)?)),
                    }
                }
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    clauses.push((
                        Occur::Must,
                        boxed(ConstScoreQuery::new(boxed(AllQuery), 0.0)),
                    ));
                }
                boxed(BooleanQuery::new(clauses))
            }
        })
    }
}

/// Terms examined at most when listing identifiers or names: a bound on the
/// work one query can cause, whatever other organizations hold.
const MAX_TERMS_EXAMINED: usize = 4096;

/// Identifier terms of `field` starting with `prefix` that `keep` accepts and
/// that documents the caller can see hold (`stats` is scoped to the caller: other
/// organizations' file names never decide what is listed, nor its order), in
/// natural order (`ac-2`, `ac-2(1)`, `ac-2(2)`, `ac-2(10)`), at most `limit`.
/// A control is listed once, by its displayed id (not also as `ac-2.1`).
pub fn ident_terms(
    searcher: &Searcher,
    stats: &dyn Bm25StatisticsProvider,
    field: Field,
    prefix: &str,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let Ok(inverted) = segment.inverted_index(field) else {
            continue;
        };
        let Ok(mut stream) = inverted.terms().range().ge(prefix.as_bytes()).into_stream() else {
            continue;
        };
        let mut examined = 0;
        while stream.advance() && examined < MAX_TERMS_EXAMINED && found.len() < 4 * limit {
            examined += 1;
            let Ok(t) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if !t.starts_with(prefix) {
                break;
            }
            if control_id(t).is_some_and(|c| normalize_ident(&c) != t) || !keep(t) {
                continue;
            }
            found.insert(t.to_owned());
        }
    }
    let mut ids: Vec<String> = found
        .into_iter()
        .filter(|t| {
            stats
                .doc_freq(&Term::from_field_text(field, t))
                .is_ok_and(|n| n > 0)
        })
        .collect();
    ids.sort_by_key(|i| natural_key(i));
    ids.truncate(limit);
    ids
}

/// 8 to 63 hexadecimal characters with a digit and a letter among them: the
/// start of a sha256 (with or without `sha256:`).
pub fn is_sha_prefix(word: &str) -> bool {
    let w = word.strip_prefix("sha256:").unwrap_or(word);
    (MIN_SHA_PREFIX..64).contains(&w.len())
        && w.chars().all(|c| c.is_ascii_hexdigit())
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars().any(|c| c.is_ascii_alphabetic())
}
