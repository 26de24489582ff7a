//! The positions tantivy reads for a term in a document, against the
//! document's own words.
//!
//! tantivy is vendored (`vendor/tantivy`) with one change: a posting list
//! remembers where the last positions it read began in their block, so that
//! reading those of a later document of the same block sums only the term
//! frequencies in between. Phrases and their scores depend on it, so every
//! way of reaching a document is checked here: the next one, a seek within
//! the block and across blocks, a document skipped, the same document twice,
//! long and short documents (positions spanning blocks of 128).

use tantivy::postings::Postings;
use tantivy::schema::{IndexRecordOption, Schema, TEXT};
use tantivy::{DocSet, Index, TERMINATED, Term, doc};

const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

fn seeded(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    }
}

#[test]
fn positions_read_in_any_order_are_the_documents_own() {
    let mut schema = Schema::builder();
    let body = schema.add_text_field("body", TEXT);
    let index = Index::create_in_ram(schema.build());
    let mut writer = index.writer_with_num_threads(1, 30_000_000).unwrap();
    let mut next = seeded(5);
    let mut texts = Vec::new();
    for _ in 0..3_000 {
        // mostly short documents, some of hundreds of words
        let len = match next(10) {
            0 => 100 + next(400),
            _ => next(12),
        };
        // a skewed vocabulary: some words in most documents, often repeated
        let words: Vec<&str> = (0..len)
            .map(|_| WORDS[(next(6) * next(6) / 5) as usize])
            .collect();
        writer.add_document(doc!(body => words.join(" "))).unwrap();
        texts.push(words);
    }
    writer.commit().unwrap();
    let searcher = index.reader().unwrap().searcher();
    assert_eq!(searcher.segment_readers().len(), 1);
    // one thread, one segment: documents are numbered in the order added
    let segment = &searcher.segment_readers()[0];
    assert_eq!(segment.max_doc() as usize, texts.len());
    let inverted = segment.inverted_index(body).unwrap();
    let mut checked = 0u64;
    for word in WORDS {
        for round in 0..4u64 {
            let mut postings = inverted
                .read_postings(
                    &Term::from_field_text(body, word),
                    IndexRecordOption::WithFreqsAndPositions,
                )
                .unwrap()
                .unwrap();
            let mut positions = Vec::new();
            let mut doc = postings.doc();
            while doc != TERMINATED {
                let expected: Vec<u32> = texts[doc as usize]
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w == word)
                    .map(|(p, _)| p as u32)
                    .collect();
                assert_eq!(postings.term_freq() as usize, expected.len());
                // read or skip; read twice now and then
                if next(3) > 0 || round == 0 {
                    for _ in 0..=next(4) / 3 {
                        postings.positions(&mut positions);
                        assert_eq!(positions, expected, "{word} in document {doc}");
                        checked += 1;
                    }
                }
                doc = match next(5) {
                    // a seek a little or far ahead (within the block or past it)
                    0 => postings.seek(doc + 1 + next(if round % 2 == 0 { 8 } else { 400 }) as u32),
                    _ => postings.advance(),
                };
            }
        }
    }
    assert!(checked > 10_000, "{checked} reads checked");
}
