//! The parsed query turned into tantivy queries: BM25 over text fields with
//! boosts, identifiers matched exactly, typo tolerance for ordinary words that the
//! caller's organization does not know, phrases on positional fields.

use certscope_domain::Kind;
use certscope_indexer::schema::{Fields, normalize_ident};
use tantivy::Term;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery,
    FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{TextAnalyzer, TokenStream};

use super::parser::Node;
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
    pub stats: &'a dyn Bm25StatisticsProvider,
}

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

    /// One analysed token across the scope's fields, with typo tolerance when
    /// allowed and the organization does not know the word.
    /// `raw` is the word as typed (lowercased, unstemmed) when it was one word.
    fn token(
        &self,
        scope: Scope,
        token: &str,
        raw: Option<&str>,
        fuzzy: bool,
    ) -> Vec<Box<dyn Query>> {
        let mut clauses = Vec::new();
        let mut known = 0;
        for (field, b, _) in self.text_fields(scope) {
            clauses.push(boost(term_query(field, token), b));
            if field == self.fields.title || field == self.fields.body {
                known += self.doc_freq(field, token).min(FUZZY_BELOW_DOC_FREQ);
            }
        }
        let len = token.chars().count();
        if fuzzy && len >= 4 && known < FUZZY_BELOW_DOC_FREQ {
            // the typed word against unstemmed title words: "separaton" is one
            // edit from "separation", though far from its stem "separ"
            if let Some(raw) = raw
                && scope != Scope::Body
            {
                let n = raw.chars().count();
                clauses.push(boost(
                    boxed(FuzzyTermQuery::new(
                        Term::from_field_text(self.fields.title_words, raw),
                        if n >= 8 { 2 } else { 1 },
                        true,
                    )),
                    BOOST_FUZZY * BOOST_TITLE,
                ));
            }
            let distance = if len >= 8 { 2 } else { 1 };
            for (field, b, _) in self.text_fields(scope) {
                if field == self.fields.title || field == self.fields.body {
                    clauses.push(boost(
                        boxed(FuzzyTermQuery::new(
                            Term::from_field_text(field, token),
                            distance,
                            true,
                        )),
                        BOOST_FUZZY * b,
                    ));
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

    fn word(&self, scope: Scope, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut clauses = Vec::new();
        if scope == Scope::All && is_sha256(text) {
            return boost(term_query(f.ident, &text.to_lowercase()), BOOST_IDENT);
        }
        let ident = is_identifier(text);
        if ident && scope == Scope::All {
            clauses.push(boost(
                term_query(f.ident, &normalize_ident(text)),
                BOOST_IDENT,
            ));
        }
        let tokens = analyze(&self.english, text);
        match tokens.len() {
            0 => {}
            1 => {
                let raw = analyze(&self.words, text);
                clauses.extend(self.token(
                    scope,
                    &tokens[0],
                    raw.first().map(String::as_str),
                    !ident,
                ));
            }
            _ => clauses.extend(self.phrase(scope, &tokens, if ident { 0.5 } else { 1.0 })),
        }
        any_of(clauses)
    }

    fn prefix(&self, scope: Scope, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut clauses = Vec::new();
        if scope == Scope::All && is_identifier(text) {
            clauses.push(boost(
                boxed(FuzzyTermQuery::new_prefix(
                    Term::from_field_text(f.ident, &normalize_ident(text)),
                    0,
                    false,
                )),
                BOOST_IDENT / 5.0,
            ));
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
            1 => any_of(self.token(scope, &tokens[0], None, false)),
            _ => any_of(self.phrase(scope, &tokens, 1.0)),
        }
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
                let t = Term::from_field_text(f.ident, &normalize_ident(text));
                if prefix {
                    boxed(FuzzyTermQuery::new_prefix(t, 0, false))
                } else {
                    boxed(TermQuery::new(t, IndexRecordOption::Basic))
                }
            }
            "sha256" => term_query(f.sha256, &text.to_lowercase()),
            other => {
                let field = self.keyword_field(other).ok_or_else(|| {
                    ApiError::bad("bad_query", format!("`{other}:` cannot be searched"))
                })?;
                if other == "kind" && !prefix && Kind::parse(text).is_none() {
                    return Err(ApiError::bad(
                        "bad_query",
                        format!(
                            "unknown kind `{text}`; kinds are control, certification, requirement, evidence, risk"
                        ),
                    ));
                }
                let t = Term::from_field_text(field, text);
                if prefix {
                    boxed(FuzzyTermQuery::new_prefix(t, 0, false))
                } else {
                    boxed(TermQuery::new(t, IndexRecordOption::Basic))
                }
            }
        };
        Ok(boxed(ConstScoreQuery::new(q, 1.0)))
    }

    /// Compiles a parsed query.
    pub fn compile(&self, node: &Node) -> Result<Box<dyn Query>, ApiError> {
        Ok(match node {
            Node::Word {
                text,
                prefix: false,
            } => self.word(Scope::All, text),
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
                (Occur::MustNot, self.compile(inner)?),
            ])),
            Node::And(parts) => {
                let mut clauses = Vec::new();
                for p in parts {
                    match p {
                        Node::Not(inner) => clauses.push((Occur::MustNot, self.compile(inner)?)),
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
