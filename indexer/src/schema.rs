//! The tantivy schema: the contract between the indexer (sole writer) and
//! query-api (reader). Bump [`SCHEMA_VERSION`] on any change of fields, options or
//! analysers; an index built with another version is set aside and rebuilt.

use certscope_domain::Kind;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, STORED, STRING,
    Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, Term};

/// Version of the schema and analysers written into every commit's payload.
pub const SCHEMA_VERSION: u32 = 5;

/// English words: split, lowercase, stem.
pub const TOKENIZER_EN: &str = "certscope_en";
/// Title words: split and lowercased, not stemmed, for prefix search and suggestions.
pub const TOKENIZER_WORDS: &str = "certscope_words";
/// Identifiers: the whole value, lowercased, never stemmed or split.
pub const TOKENIZER_IDENT: &str = "certscope_ident";
/// A sha256, lowercased and cut to [`SHA256_INDEXED_CHARS`] characters.
pub const TOKENIZER_SHA256: &str = "certscope_sha256";

/// How much of a sha256 the index's terms hold (64 bits). A search for a
/// longer prefix or a whole hash finds the documents of its first
/// characters and checks the rest against the stored hash; building the
/// terms of whole hashes was the largest cost of a rebuild.
pub const SHA256_INDEXED_CHARS: usize = 16;

/// The document key: one document per (kind, primary key).
pub fn doc_key(kind: Kind, id: i64) -> String {
    format!("{}:{id}", kind.as_str())
}

/// Handles to every field.
#[derive(Debug, Clone)]
pub struct Fields {
    pub key: Field,
    pub kind: Field,
    pub id: Field,
    pub org_id: Field,
    pub version: Field,
    /// Hash of the fields that child documents copy from this one; when it changes,
    /// the children are re-rendered.
    pub embed_sig: Field,
    // full text
    pub title: Field,
    /// The title lowercased and cut to [`TITLE_SORT_CHARS`], for sorting by name.
    pub title_sort: Field,
    /// The title's words unstemmed, for prefixes (`authenticat*`) and autocomplete.
    pub title_words: Field,
    pub body: Field,
    pub detail: Field,
    pub context: Field,
    pub ident: Field,
    // facets, filters, sorts, display
    pub control: Field,
    pub control_title: Field,
    pub family: Field,
    pub family_title: Field,
    pub framework: Field,
    pub framework_name: Field,
    pub certification_id: Field,
    pub certification: Field,
    pub requirement_id: Field,
    pub status: Field,
    pub owner_id: Field,
    pub owner: Field,
    pub media_type: Field,
    pub file_name: Field,
    pub sha256: Field,
    pub category: Field,
    pub treatment: Field,
    pub inherent_likelihood: Field,
    pub inherent_impact: Field,
    pub residual_likelihood: Field,
    pub residual_impact: Field,
    pub inherent_score: Field,
    pub residual_score: Field,
    pub risk_level: Field,
    pub due_date: Field,
    /// The deadline the item still has to meet (`certscope_domain::Deadline`):
    /// absent when it has none. The `due` facet and filter read it.
    pub deadline: Field,
    pub expires_on: Field,
    pub collected_on: Field,
    pub target_date: Field,
    pub updated_at: Field,
}

/// A text field; `positions` only where phrase queries need them (titles and
/// bodies): positions are the largest part of indexing cost.
fn text(tokenizer: &str, stored: bool, positions: bool) -> TextOptions {
    let record = if positions {
        IndexRecordOption::WithFreqsAndPositions
    } else {
        IndexRecordOption::WithFreqs
    };
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    );
    if stored { opts.set_stored() } else { opts }
}

fn keyword() -> TextOptions {
    STRING | STORED | FAST
}

/// A number searched by its terms (tenancy, an auditor's certifications,
/// deletion by id), read from its column and shown.
fn number() -> NumericOptions {
    NumericOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored()
}

/// A number only filtered, sorted and counted through its column (tantivy's
/// `RangeQuery` reads the column of a fast field) and shown: not indexed.
/// Every indexed field costs each commit a term dictionary builder (a 20,000
/// cell FST registry, ~1 MB zeroed, however few documents the segment holds)
/// and every rebuild its terms; a field nobody looks up by term pays that for
/// nothing.
fn column() -> NumericOptions {
    NumericOptions::default().set_fast().set_stored()
}

/// A date: a column and shown, like [`column`].
fn date() -> DateOptions {
    DateOptions::default()
        .set_fast()
        .set_stored()
        .set_precision(DateTimePrecision::Seconds)
}

/// Builds the schema and the handles to its fields.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        key: b.add_text_field("key", STRING | STORED),
        kind: b.add_text_field("kind", keyword()),
        id: b.add_u64_field("id", number()),
        org_id: b.add_u64_field("org_id", number()),
        version: b.add_u64_field("version", FAST | STORED),
        embed_sig: b.add_u64_field("embed_sig", FAST | STORED),
        title: b.add_text_field("title", text(TOKENIZER_EN, true, true)),
        title_sort: b.add_text_field("title_sort", TextOptions::default().set_fast("raw")),
        title_words: b.add_text_field("title_words", text(TOKENIZER_WORDS, false, false)),
        body: b.add_text_field("body", text(TOKENIZER_EN, true, true)),
        detail: b.add_text_field("detail", text(TOKENIZER_EN, false, false)),
        context: b.add_text_field("context", text(TOKENIZER_EN, false, false)),
        ident: b.add_text_field("ident", text(TOKENIZER_IDENT, false, false)),
        control: b.add_text_field("control", keyword()),
        control_title: b.add_text_field("control_title", STORED),
        family: b.add_text_field("family", keyword()),
        family_title: b.add_text_field("family_title", STORED),
        framework: b.add_text_field("framework", keyword()),
        framework_name: b.add_text_field("framework_name", STORED),
        certification_id: b.add_u64_field("certification_id", number()),
        certification: b.add_text_field("certification", STORED),
        requirement_id: b.add_u64_field("requirement_id", column()),
        status: b.add_text_field("status", keyword()),
        owner_id: b.add_u64_field("owner_id", column()),
        owner: b.add_text_field("owner", keyword()),
        media_type: b.add_text_field("media_type", keyword()),
        file_name: b.add_text_field("file_name", STORED),
        sha256: b.add_text_field(
            "sha256",
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(TOKENIZER_SHA256)
                        .set_index_option(IndexRecordOption::Basic),
                )
                .set_stored(),
        ),
        category: b.add_text_field("category", keyword()),
        treatment: b.add_text_field("treatment", keyword()),
        inherent_likelihood: b.add_u64_field("inherent_likelihood", column()),
        inherent_impact: b.add_u64_field("inherent_impact", column()),
        residual_likelihood: b.add_u64_field("residual_likelihood", column()),
        residual_impact: b.add_u64_field("residual_impact", column()),
        inherent_score: b.add_u64_field("inherent_score", column()),
        residual_score: b.add_u64_field("residual_score", column()),
        risk_level: b.add_text_field("risk_level", keyword()),
        due_date: b.add_date_field("due_date", date()),
        deadline: b.add_date_field("deadline", date()),
        expires_on: b.add_date_field("expires_on", date()),
        collected_on: b.add_date_field("collected_on", date()),
        target_date: b.add_date_field("target_date", date()),
        updated_at: b.add_date_field("updated_at", date()),
    };
    (b.build(), fields)
}

/// Registers Certscope's analysers on an index (readers must do this too).
pub fn register_tokenizers(index: &Index) {
    let en = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(crate::analysis::MemoStemmer)
        .build();
    let ident = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build();
    let words = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .build();
    index.tokenizers().register(TOKENIZER_EN, en);
    index.tokenizers().register(TOKENIZER_WORDS, words);
    index.tokenizers().register(TOKENIZER_IDENT, ident);
    let sha256 = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(crate::analysis::KeepChars(SHA256_INDEXED_CHARS))
        .build();
    index.tokenizers().register(TOKENIZER_SHA256, sha256);
}

/// Characters of a title kept for sorting by name.
pub const TITLE_SORT_CHARS: usize = 64;

/// The sort key of a title: lowercased, cut to [`TITLE_SORT_CHARS`] characters.
pub fn title_sort_key(title: &str) -> String {
    title
        .trim()
        .to_lowercase()
        .chars()
        .take(TITLE_SORT_CHARS)
        .collect()
}

/// Normalises an identifier the way the `ident` field stores it.
pub fn normalize_ident(s: &str) -> String {
    s.trim().to_lowercase()
}

pub fn key_term(fields: &Fields, kind: Kind, id: i64) -> Term {
    Term::from_field_text(fields.key, &doc_key(kind, id))
}
