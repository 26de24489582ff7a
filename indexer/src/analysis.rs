//! A memoizing English stemmer. Stemming was the largest single cost of a rebuild
//! (about a fifth of the CPU), and compliance text repeats a small vocabulary, so
//! each indexing thread remembers the stems it computed.

use fnv::FnvHashMap as HashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Entries kept per analyser before the memo starts over (bounds memory).
const MEMO_LIMIT: usize = 200_000;

/// Same output as tantivy's `Stemmer::new(Language::English)`; expects lowercase.
#[derive(Clone, Default)]
pub struct MemoStemmer;

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter {
            inner: tokenizer,
            memo: HashMap::default(),
        }
    }
}

#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    inner: T,
    memo: HashMap<String, String>,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        if self.memo.len() > MEMO_LIMIT {
            self.memo.clear();
        }
        MemoStemmerStream {
            tail: self.inner.token_stream(text),
            memo: &mut self.memo,
            stemmer: frostem::Stemmer::new(frostem::Algorithm::English),
        }
    }
}

pub struct MemoStemmerStream<'a, T> {
    tail: T,
    memo: &'a mut HashMap<String, String>,
    stemmer: frostem::Stemmer,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        match self.memo.get(&token.text) {
            Some(stem) => {
                token.text.clear();
                token.text.push_str(stem);
            }
            None => {
                let stem = self.stemmer.stem(&token.text).into_owned();
                self.memo
                    .insert(std::mem::replace(&mut token.text, stem.clone()), stem);
            }
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// The first `n` characters of `s` (all of it if shorter): what
/// [`KeepChars`] indexes, and what a search asks the index for.
pub fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// Keeps the first `n` characters of each token. A sha256 is indexed by its
/// first [`crate::schema::SHA256_INDEXED_CHARS`] characters: a term
/// dictionary (an FST) of a million whole hashes cost more CPU than anything
/// else in a rebuild, and every merge rebuilds it.
#[derive(Clone, Copy)]
pub struct KeepChars(pub usize);

impl TokenFilter for KeepChars {
    type Tokenizer<T: Tokenizer> = KeepCharsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> KeepCharsFilter<T> {
        KeepCharsFilter {
            inner: tokenizer,
            n: self.0,
        }
    }
}

#[derive(Clone)]
pub struct KeepCharsFilter<T> {
    inner: T,
    n: usize,
}

impl<T: Tokenizer> Tokenizer for KeepCharsFilter<T> {
    type TokenStream<'a> = KeepCharsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        KeepCharsStream {
            tail: self.inner.token_stream(text),
            n: self.n,
        }
    }
}

pub struct KeepCharsStream<T> {
    tail: T,
    n: usize,
}

impl<T: TokenStream> TokenStream for KeepCharsStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        let kept = first_chars(&token.text, self.n).len();
        token.text.truncate(kept);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    use super::*;

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn stems_exactly_like_tantivys_english_stemmer_including_repeats() {
        let text = "Accounts accounting reviewed reviewing policies policy monitoring monitored \
                    Accounts reviewed policies AC-2(1) configurations";
        let mut ours = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(MemoStemmer)
            .build();
        let mut theirs = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build();
        assert_eq!(tokens(&mut ours, text), tokens(&mut theirs, text));
        assert_eq!(
            tokens(&mut ours, text),
            tokens(&mut theirs, text),
            "second pass served from the memo"
        );
    }

    #[test]
    fn keeps_the_first_characters_of_each_token() {
        let mut keep = TextAnalyzer::builder(tantivy::tokenizer::RawTokenizer::default())
            .filter(LowerCaser)
            .filter(KeepChars(4))
            .build();
        assert_eq!(tokens(&mut keep, "F6362A0C"), ["f636"]);
        assert_eq!(tokens(&mut keep, "ab"), ["ab"]);
        assert_eq!(
            tokens(&mut keep, "éèêëx"),
            ["éèêë"],
            "characters, not bytes"
        );
    }
}
