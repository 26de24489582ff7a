//! The page of a relevance-ordered search over a union of terms, found by
//! block-max WAND instead of scoring every match.
//!
//! A word in every text field can match most of an organization's documents.
//! Its search then runs in two passes: the first counts the total and the
//! facets without scoring (no term frequencies are read), the second finds the
//! page with tantivy's block-max WAND, which skips the blocks of postings whose
//! best possible score cannot reach the page's worst. The pruned scorer sums
//! term scores in its own order, so it only nominates: every document it
//! offers is scored again by the plain union (the scorer the one-pass search
//! uses), the page is ordered by those exact scores, and pruning keeps a margin
//! below the page's worst score. Pages, ties and cursors are therefore the same
//! as a one-pass search's (`two_passes_find_what_one_pass_finds`).

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED};

use super::collect::{Fruit, SearchCollector, SegmentState};

/// Collects the page only (its plan counts no facets), visiting documents of
/// the text query that pass `filter` (tenancy, kind, ranges: everything but
/// the text, unscored).
///
/// Under `collapse=control` a group's place, count and related documents
/// depend on all its matching documents, so the catalogue controls and
/// requirements (what is grouped) are scored in full first by `grouped` (the
/// text query under the filters, for those kinds only), and WAND prunes among
/// the other kinds only.
pub struct TopScored<'a> {
    pub page: SearchCollector<'a>,
    pub filter: Box<dyn Weight>,
    pub grouped: Option<Box<dyn Weight>>,
}

impl Collector for TopScored<'_> {
    type Fruit = Fruit;
    type Child = SegmentState;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentState> {
        self.page.for_segment(segment, reader)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        self.page.merge_fruits(fruits)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Fruit> {
        let mut state = self.for_segment(segment, reader)?;
        let mut filter = self.filter.scorer(reader, 1.0)?;
        if filter.doc() == TERMINATED {
            return Ok(state.harvest());
        }
        let alive = reader.alive_bitset();
        let is_alive = |doc: DocId| alive.is_none_or(|a| a.is_alive(doc));
        if let Some(grouped) = &self.grouped {
            grouped.for_each(reader, &mut |doc, score| {
                if is_alive(doc) {
                    state.collect(doc, score);
                }
            })?;
        }
        let grouping = self.grouped.is_some();
        // the exact scores: the plain union of the same terms
        let mut exact = weight.scorer(reader, 1.0)?;
        let mut offer = |state: &SegmentState, doc: DocId| -> Option<Score> {
            if !is_alive(doc) || (grouping && state.is_grouped_kind(doc)) {
                return None;
            }
            (on(filter.as_mut(), doc) && on(exact.as_mut(), doc)).then(|| exact.score())
        };
        weight.for_each_pruning(Score::MIN, reader, &mut |doc, _pruned_score| {
            if let Some(score) = offer(&state, doc) {
                state.collect(doc, score);
            }
            state.prune_below()
        })?;
        Ok(state.harvest())
    }
}

/// Whether `docs`, moved forward to `doc` if behind it, holds it (nominees
/// come in increasing order, so nothing is ever sought backwards).
fn on(docs: &mut dyn DocSet, doc: DocId) -> bool {
    let at = docs.doc();
    (if at < doc { docs.seek(doc) } else { at }) == doc
}

#[cfg(test)]
mod tests {

    use certscope_indexer::schema;
    use tantivy::{Index, TantivyDocument, Term, doc};

    use super::super::params::{self, Route};
    use super::super::{Pinned, SearchService, Vocabulary, compile};
    use crate::auth::{Role, Scope};

    const DAY: i64 = 86_400;
    const TODAY: i64 = 20_000 * DAY;
    const WORDS: [&str; 10] = [
        "access",
        "control",
        "account",
        "management",
        "audit",
        "review",
        "policy",
        "incident",
        "baseline",
        "system",
    ];

    /// Three segments of an organization's requirements and evidence, the
    /// shared catalogue's controls and another organization's documents,
    /// with texts drawn from a few words (so that many documents tie) and a
    /// few deletions.
    fn corpus() -> Index {
        let (schema, f) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register_tokenizers(&index);
        let mut writer = index.writer_with_num_threads(1, 30_000_000).unwrap();
        let mut next = super::super::seeded(7);
        for id in 1..=4_500u64 {
            let words = |n: u64, next: &mut dyn FnMut(u64) -> u64| {
                (0..n)
                    .map(|_| WORDS[next(WORDS.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let title = {
                let n = 1 + next(3);
                words(n, &mut next)
            };
            let body = {
                let n = next(5);
                words(n, &mut next)
            };
            let (kind, org) = match id % 10 {
                0 => ("control", 0u64),
                1 | 2 => ("requirement", 7),
                3 => ("evidence", 8),
                _ => ("evidence", 7),
            };
            let mut d: TantivyDocument = doc!(
                f.key => format!("{kind}:{id}"),
                f.kind => kind,
                f.id => id,
                f.org_id => org,
                f.title => title.clone(),
                f.title_sort => title,
                f.body => body,
                f.status => ["accepted", "pending", "rejected"][next(3) as usize],
                f.framework => "nist-800-53-r5-moderate",
            );
            if next(2) == 0 {
                d.add_text(f.context, "Moderate baseline");
            }
            if kind != "control" {
                d.add_u64(f.certification_id, 1 + next(3));
                let due = TODAY + (next(90) as i64 - 45) * DAY;
                d.add_date(f.deadline, tantivy::DateTime::from_timestamp_secs(due));
            }
            if kind != "evidence" {
                d.add_text(f.control, format!("ac-{}", next(40)));
            }
            writer.add_document(d).unwrap();
            if id % 1_500 == 0 {
                writer.commit().unwrap();
            }
        }
        for id in (5..4_500u64).step_by(97) {
            writer.delete_term(Term::from_field_text(f.key, &format!("evidence:{id}")));
        }
        writer.commit().unwrap();
        index
    }

    fn officer() -> Scope {
        Scope {
            user_id: 1,
            org_id: 7,
            role: Role::Officer,
            certifications: None,
        }
    }

    /// An auditor of `certifications` in the officer's organization.
    fn auditor(certifications: &[i64]) -> Scope {
        Scope {
            role: Role::Auditor,
            certifications: Some(certifications.iter().copied().collect()),
            ..officer()
        }
    }

    #[test]
    fn two_passes_find_what_one_pass_finds() {
        let index = corpus();
        let (_, fields) = schema::build();
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() >= 3);
        let pinned = Pinned::of(searcher.clone());
        let vocabulary = Vocabulary::builtin();
        let pruned = SearchService::default();
        let plain = SearchService::default().without_pruning();
        let auditor = auditor(&[2]);
        let mut pages = 0;
        for scope in [officer(), auditor] {
            for word in ["access", "baseline", "review", "control"] {
                for extra in [
                    "",
                    "&collapse=none",
                    "&kind=evidence&status=accepted,pending",
                    "&due=overdue,due_30",
                    "&kind=requirement&collapse=none",
                ] {
                    let mut cursor: Option<String> = None;
                    for page in 0..6 {
                        let mut query = format!(
                            "q={word}&limit=7&facets=kind,status,framework,certification,due{extra}"
                        );
                        if let Some(c) = &cursor {
                            query.push_str(&format!("&cursor={c}"));
                        }
                        let pairs: Vec<(String, String)> = query
                            .split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect();
                        let p = params::parse(&pairs, Route::Search).unwrap();
                        if page == 0 {
                            let stats = pruned.stats.provider(
                                &searcher,
                                &fields,
                                super::super::stats::Visible::of(&scope),
                            );
                            let (text, _) = super::super::compile_text(
                                &searcher,
                                &fields,
                                &stats,
                                &p,
                                &vocabulary,
                                compile::Words::All,
                            )
                            .unwrap();
                            assert!(
                                text.as_deref().is_some_and(compile::is_term_union),
                                "{query}: a single word is a union of terms"
                            );
                        }
                        let search = |service: &SearchService| {
                            let r = service
                                .search(&pinned, &fields, &scope, &p, TODAY, &vocabulary)
                                .unwrap();
                            serde_json::to_value(&r).unwrap()
                        };
                        let (a, b) = (search(&pruned), search(&plain));
                        assert_eq!(a, b, "{query}");
                        assert!(
                            a["total"].as_u64().unwrap() > 0 || extra.contains("kind=requirement"),
                            "{query}: the corpus has matches"
                        );
                        pages += 1;
                        cursor = a["next_cursor"].as_str().map(str::to_owned);
                        if cursor.is_none() {
                            break;
                        }
                    }
                }
            }
        }
        assert!(pages > 100, "{pages} pages compared");
    }

    #[test]
    fn bit_sets_count_what_documents_count() {
        let index = corpus();
        let (_, fields) = schema::build();
        let searcher = index.reader().unwrap().searcher();
        let pinned = Pinned::of(searcher.clone());
        let vocabulary = Vocabulary::builtin();
        let bits = SearchService::default();
        let per_document = SearchService::default().without_bit_sets();
        let auditor = auditor(&[2, 3]);
        let mut compared = 0;
        for scope in [officer(), auditor] {
            for text in ["", "q=access&", "q=baseline&", "q=review%20policy&"] {
                for selection in [
                    "",
                    "kind=evidence",
                    "kind=evidence&status=accepted,pending",
                    "status=rejected&certification=2",
                    "certification=1,3&due=due_30",
                    "due=overdue&kind=requirement",
                    "due=overdue,due_60&status=pending&kind=evidence,requirement",
                    "framework=nist-800-53-r5-moderate&status=withdrawn",
                ] {
                    for (sort, collapse) in [
                        ("", "none"),
                        ("&sort=-due_date", "none"),
                        ("&sort=-due_date", "control"),
                        ("&sort=-updated_at", "control"),
                    ] {
                        let query = format!(
                            "{text}{selection}{sort}&limit=5&collapse={collapse}&facets=kind,status,framework,certification,due"
                        );
                        let pairs: Vec<(String, String)> = query
                            .split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect();
                        let p = params::parse(&pairs, Route::Search).unwrap();
                        let search = |service: &SearchService| {
                            let r = service
                                .search(&pinned, &fields, &scope, &p, TODAY, &vocabulary)
                                .unwrap();
                            serde_json::to_value(&r).unwrap()
                        };
                        let (a, b) = (search(&bits), search(&per_document));
                        assert_eq!(a, b, "{query}");
                        compared += u64::from(a["total"].as_u64().unwrap() > 0);
                        if !sort.is_empty() {
                            continue;
                        }
                        // multi-select: a facet's count of a value is the
                        // total with that value as the facet's only selection
                        for name in ["kind", "status", "framework", "certification", "due"] {
                            for value in a["facets"][name].as_array().unwrap() {
                                let mut pairs: Vec<(String, String)> = pairs
                                    .iter()
                                    .filter(|(k, _)| k != name && k != "facets")
                                    .cloned()
                                    .collect();
                                pairs.push((
                                    name.to_owned(),
                                    value["value"].as_str().unwrap().to_owned(),
                                ));
                                pairs.push(("facets".to_owned(), "none".to_owned()));
                                let p = params::parse(&pairs, Route::Search).unwrap();
                                let r = bits
                                    .search(&pinned, &fields, &scope, &p, TODAY, &vocabulary)
                                    .unwrap();
                                let total = serde_json::to_value(&r).unwrap()["total"].clone();
                                assert_eq!(total, value["count"], "{query}: {name}={value}");
                            }
                        }
                    }
                }
            }
        }
        assert!(compared > 80, "{compared} searches with matches compared");
    }
}
