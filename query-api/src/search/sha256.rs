//! Evidence by its sha256: a whole hash, or its first characters.
//!
//! The index holds the first [`SHA256_INDEXED_CHARS`] characters of each hash
//! (the schema's sha256 analyser), not the whole: a term dictionary of a
//! million whole hashes was the largest single cost of a rebuild and of every
//! merge. A prefix that short is answered by the terms alone; a longer one or
//! a whole hash finds the documents of its first characters (one in a million
//! share 64 bits by chance) and checks each against the stored hash, so the
//! answer is exactly the documents whose hash is, or starts with, what was
//! asked.

use certscope_indexer::analysis::first_chars;
use certscope_indexer::schema::SHA256_INDEXED_CHARS;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{
    BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyDocument, TantivyError,
};

/// Documents whose sha256 is `hex` (`whole`) or starts with it; scores the
/// boost it is given, like any identity match.
#[derive(Clone, Debug)]
pub struct Sha256Query {
    field: Field,
    hex: String,
    whole: bool,
}

impl Sha256Query {
    /// `hex` must already be lowercase hexadecimal (the caller's rule).
    pub fn whole(field: Field, hex: &str) -> Self {
        Self {
            field,
            hex: hex.to_owned(),
            whole: true,
        }
    }

    pub fn prefix(field: Field, hex: &str) -> Self {
        Self {
            field,
            hex: hex.to_owned(),
            whole: false,
        }
    }

    /// The part of the question the index's terms hold.
    fn indexed(&self) -> &str {
        first_chars(&self.hex, SHA256_INDEXED_CHARS)
    }

    /// Whether the terms alone answer: a prefix no longer than a term.
    fn answered_by_terms(&self) -> bool {
        !self.whole && self.indexed().len() == self.hex.len()
    }

    fn accepts(&self, stored: &str) -> bool {
        if self.whole {
            stored.eq_ignore_ascii_case(&self.hex)
        } else {
            stored
                .get(..self.hex.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(&self.hex))
        }
    }

    fn docs(&self, reader: &SegmentReader) -> tantivy::Result<Option<BitSet>> {
        let inverted = reader.inverted_index(self.field)?;
        let prefix = self.indexed().as_bytes();
        let mut terms = inverted.terms().range().ge(prefix).into_stream()?;
        let mut candidates = Vec::new();
        while terms.advance() {
            if !terms.key().starts_with(prefix) {
                break;
            }
            let mut postings =
                inverted.read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                candidates.push(doc);
                doc = postings.advance();
            }
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut set = BitSet::with_max_value(reader.max_doc());
        if self.answered_by_terms() {
            for doc in candidates {
                set.insert(doc);
            }
            return Ok(Some(set));
        }
        let store = reader.get_store_reader(1)?;
        let mut any = false;
        for doc in candidates {
            let stored: TantivyDocument = store.get(doc)?;
            if stored
                .get_first(self.field)
                .and_then(|v| v.as_str())
                .is_some_and(|s| self.accepts(s))
            {
                set.insert(doc);
                any = true;
            }
        }
        Ok(any.then_some(set))
    }
}

impl Query for Sha256Query {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(Sha256Weight(self.clone())))
    }
}

struct Sha256Weight(Sha256Query);

impl Weight for Sha256Weight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.0.docs(reader)? {
            Some(set) => Box::new(ConstScorer::new(BitSetDocSet::from(set), boost)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        match self.0.docs(reader)? {
            Some(set) if doc < reader.max_doc() && set.contains(doc) => {
                Ok(Explanation::new("the sha256 matches", 1.0))
            }
            _ => Err(TantivyError::InvalidArgument(format!(
                "document #{doc} does not have this sha256"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use certscope_indexer::schema;
    use tantivy::collector::DocSetCollector;
    use tantivy::schema::Value as _;
    use tantivy::{Index, TantivyDocument, doc};

    use super::*;

    /// Hashes that share their first 16 characters and more, in three
    /// segments, one of them with a deletion.
    fn corpus() -> (Index, Field) {
        let (schema, f) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let same16 = "f6362a0cd6755109";
        let hashes = [
            format!("{same16}{}", "1".repeat(48)),
            format!("{same16}{}", "2".repeat(48)),
            format!("{same16}1111{}", "3".repeat(44)),
            format!("{same16}{}", "2".repeat(48)),
            format!("0f6362a0cd675510{}", "9".repeat(48)),
            "A".repeat(64),
        ];
        for (i, h) in hashes.iter().enumerate() {
            writer
                .add_document(doc!(f.id => i as u64, f.sha256 => h.as_str()))
                .unwrap();
            if i % 2 == 1 {
                writer.commit().unwrap();
            }
        }
        writer.delete_term(tantivy::Term::from_field_u64(f.id, 3));
        writer.commit().unwrap();
        (index, f.sha256)
    }

    fn found(index: &Index, query: &Sha256Query) -> Vec<String> {
        let searcher = index.reader().unwrap().searcher();
        let mut out: Vec<String> = searcher
            .search(query, &DocSetCollector)
            .unwrap()
            .into_iter()
            .map(|a| {
                let d: TantivyDocument = searcher.doc(a).unwrap();
                d.get_first(query.field)
                    .and_then(|v| v.as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn whole_hashes_and_prefixes_of_any_length_match_exactly() {
        let (index, field) = corpus();
        let same16 = "f6362a0cd6755109";
        let ones = format!("{same16}{}", "1".repeat(48));
        let twos = format!("{same16}{}", "2".repeat(48));
        let threes = format!("{same16}1111{}", "3".repeat(44));
        // the whole hash: only itself, not the others of its first 16
        assert_eq!(
            found(&index, &Sha256Query::whole(field, &ones)),
            [ones.as_str()]
        );
        // the deleted copy of a hash is not found; the live one is
        assert_eq!(
            found(&index, &Sha256Query::whole(field, &twos)),
            [twos.as_str()]
        );
        // 16 or fewer characters: the terms answer
        assert_eq!(
            found(&index, &Sha256Query::prefix(field, same16)),
            [ones.as_str(), threes.as_str(), twos.as_str()]
        );
        assert_eq!(
            found(&index, &Sha256Query::prefix(field, "f6362a0c")),
            [ones.as_str(), threes.as_str(), twos.as_str()]
        );
        // longer: checked against the stored hash
        assert_eq!(
            found(
                &index,
                &Sha256Query::prefix(field, &format!("{same16}1111"))
            ),
            [ones.as_str(), threes.as_str()]
        );
        assert_eq!(
            found(
                &index,
                &Sha256Query::prefix(field, &format!("{same16}11113"))
            ),
            [threes.as_str()]
        );
        // a prefix of the whole hash is no whole hash
        assert!(found(&index, &Sha256Query::whole(field, same16)).is_empty());
        // nothing of that start; and case: the index is lowercase
        assert!(found(&index, &Sha256Query::prefix(field, "f6362a0cd6755108")).is_empty());
        assert_eq!(
            found(&index, &Sha256Query::whole(field, &"a".repeat(64))),
            ["A".repeat(64)]
        );
    }
}
