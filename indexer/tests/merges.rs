//! Why tantivy sometimes logs "couldn't find segment in SegmentManager", and
//! why it is harmless.
//!
//! The indexer replaces whole documents (delete the key, add the new one), so
//! a small segment whose documents were all updated since becomes empty, and
//! every commit drops empty segments from the writer's registers. A background
//! merge that started on such a segment then ends on inputs that are gone:
//! tantivy logs the warning (with the segment lists) and discards the merged
//! segment. Nothing is lost: the merge's inputs are either still registered
//! (and keep serving) or were dropped because no live document was left in
//! them; the discarded output is unreferenced and garbage-collected. Under
//! SIGKILLs and PostgreSQL restarts it shows up more often because every
//! restart replays and re-renders recent documents and reopens a writer whose
//! merge policy starts merging at once.
//!
//! This test provokes that race many times under an aggressive merge policy and
//! checks that every key is present exactly once after every commit, and that
//! no segment file outlives the commits that stopped referencing it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use certscope_domain::Kind;
use certscope_indexer::index_store::IndexStore;
use certscope_indexer::position::CommitPayload;
use certscope_indexer::schema::SCHEMA_VERSION;
use tantivy::TantivyDocument;
use tantivy::collector::Count;
use tantivy::query::{AllQuery, TermQuery};
use tantivy::schema::IndexRecordOption;

/// Counts tantivy's warnings about merges whose segments are gone.
struct MergeRaces {
    seen: AtomicUsize,
    sample: Mutex<Option<String>>,
}

impl log::Log for MergeRaces {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record) {
        let text = r.args().to_string();
        if text.contains("couldn't find segment in SegmentManager") {
            self.seen.fetch_add(1, Ordering::Relaxed);
            self.sample.lock().unwrap().get_or_insert(text);
        }
    }

    fn flush(&self) {}
}

static RACES: MergeRaces = MergeRaces {
    seen: AtomicUsize::new(0),
    sample: Mutex::new(None),
};

fn payload(generation: u64) -> CommitPayload {
    CommitPayload {
        schema_version: SCHEMA_VERSION,
        snapshot: format!("{}:{}:", generation + 1, generation + 1),
        generation,
        built_at: String::new(),
    }
}

fn evidence(fields: &certscope_indexer::schema::Fields, id: i64, round: u64) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_text(
        fields.key,
        certscope_indexer::schema::doc_key(Kind::Evidence, id),
    );
    d.add_text(fields.kind, Kind::Evidence.as_str());
    d.add_u64(fields.id, id as u64);
    d.add_text(fields.title, format!("evidence {id} revision {round}"));
    d
}

fn aggressive_merges() -> Box<dyn tantivy::merge_policy::MergePolicy> {
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_num_segments(2);
    policy.set_min_layer_size(1);
    Box::new(policy)
}

/// How many live documents each key has.
fn copies(store: &IndexStore, keys: i64) -> Vec<(i64, usize)> {
    let searcher = store.reader().searcher();
    (0..keys)
        .map(|id| {
            let term = certscope_indexer::schema::key_term(&store.fields, Kind::Evidence, id);
            let n = searcher
                .search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)
                .unwrap();
            (id, n)
        })
        .collect()
}

/// Segment files in `dir` (everything but tantivy's metadata and locks).
fn segment_files(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "meta.json" && !n.ends_with(".lock"))
        .collect()
}

#[test]
fn merges_racing_updates_lose_nothing_and_leak_no_files() {
    let _ = log::set_logger(&RACES);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let mut store = IndexStore::create(dir.path(), 16 << 20, 1).unwrap();
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_num_segments(2);
    policy.set_min_layer_size(1);
    store.set_merge_policy(Box::new(policy));
    let fields = store.fields.clone();
    const KEYS: i64 = 300;
    for round in 0..60u64 {
        // every round rewrites a rotating third of the keys: older small
        // segments empty out while merges of them are running
        let ids: Vec<i64> = (0..KEYS)
            .filter(|k| (*k as u64 + round).is_multiple_of(3))
            .collect();
        let docs = ids.iter().map(|id| evidence(&fields, *id, round)).collect();
        store
            .replace(Kind::Evidence, ids.iter().copied(), docs)
            .unwrap();
        if round == 0 {
            // the first round writes every key
            let rest: Vec<i64> = (0..KEYS).filter(|k| !ids.contains(k)).collect();
            let docs = rest
                .iter()
                .map(|id| evidence(&fields, *id, round))
                .collect();
            store.replace(Kind::Evidence, rest, docs).unwrap();
        }
        store.commit(&payload(round)).unwrap();
        let searcher = store.reader().searcher();
        assert_eq!(
            searcher.search(&AllQuery, &Count).unwrap(),
            KEYS as usize,
            "round {round}: documents lost or duplicated"
        );
    }
    // every key exactly once
    let searcher = store.reader().searcher();
    for id in 0..KEYS {
        let term = certscope_indexer::schema::key_term(&fields, Kind::Evidence, id);
        let n = searcher
            .search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)
            .unwrap();
        assert_eq!(n, 1, "key {id}");
    }
    drop(searcher);
    // let merges finish, commit once more so garbage collection runs with
    // nothing in flight, then every file on disk belongs to a live segment
    let index = store.index.clone();
    store.close().unwrap();
    let mut store = IndexStore::open(dir.path(), 16 << 20, 1).unwrap();
    store.commit(&payload(1_000)).unwrap();
    store.close().unwrap();
    // segment files are named `<segment uuid>.<component>`
    let live: BTreeSet<String> = index
        .searchable_segment_metas()
        .unwrap()
        .iter()
        .map(|m| m.id().uuid_string())
        .collect();
    let leaked: Vec<String> = segment_files(dir.path())
        .into_iter()
        .filter(|f| !live.iter().any(|uuid| f.starts_with(uuid.as_str())))
        .collect();
    assert!(
        leaked.is_empty(),
        "files of discarded merges left behind: {leaked:?}"
    );
    eprintln!(
        "merges that ended on vanished segments: {} (e.g. {:?})",
        RACES.seen.load(Ordering::Relaxed),
        RACES
            .sample
            .lock()
            .unwrap()
            .as_deref()
            .map(|s| &s[..s.len().min(160)])
    );
}

/// A writer reopened (a restart) or rolled back (a failed cycle) between
/// rounds, with merges running at once: the first delete after either must
/// reach every segment, merged or not. Before the indexer spent the opstamp
/// tantivy hands out again after a reopen, keys kept a stale second copy here
/// (and the crash loop once found a deleted row alive; RELIABILITY.md, "A
/// lost delete after the index writer reopened").
#[test]
fn deletes_right_after_reopening_or_rolling_back_reach_merged_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = IndexStore::create(dir.path(), 16 << 20, 1).unwrap();
    store.set_merge_policy(aggressive_merges());
    let fields = store.fields.clone();
    const KEYS: i64 = 16;
    let all: Vec<i64> = (0..KEYS).collect();
    let docs = all.iter().map(|id| evidence(&fields, *id, 0)).collect();
    store.replace(Kind::Evidence, all, docs).unwrap();
    store.commit(&payload(0)).unwrap();
    // a fixed pseudo-random walk over the keys (a 64-bit LCG)
    let mut state = 20_261_202u64;
    let mut next_key = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % KEYS as u64) as i64
    };
    let mut reopened = false;
    for round in 1..300u64 {
        // small segments pile up unmerged; the first round after a reopen or
        // a rollback merges them while its delete is pending (the merge
        // targets the last commit, as after a restart)
        store.set_merge_policy(if reopened {
            aggressive_merges()
        } else {
            Box::new(tantivy::merge_policy::NoMergePolicy)
        });
        // two keys per round: segments that keep a live document after a
        // later round's deletes
        let mut ids = vec![next_key(), next_key()];
        ids.dedup();
        let docs = ids.iter().map(|id| evidence(&fields, *id, round)).collect();
        store.replace(Kind::Evidence, ids.clone(), docs).unwrap();
        store.commit(&payload(round)).unwrap();
        reopened = true;
        match round % 4 {
            0 => {
                store.close().unwrap();
                store = IndexStore::open(dir.path(), 16 << 20, 1).unwrap();
            }
            1 => {
                let docs = ids.iter().map(|id| evidence(&fields, *id, 9_999)).collect();
                store.replace(Kind::Evidence, ids, docs).unwrap();
                store.rollback().unwrap();
            }
            _ => reopened = false,
        }
        let wrong: Vec<(i64, usize)> = copies(&store, KEYS)
            .into_iter()
            .filter(|(_, n)| *n != 1)
            .collect();
        assert!(
            wrong.is_empty(),
            "round {round}: keys without exactly one live document: {wrong:?}"
        );
    }
    store.close().unwrap();
    let store = IndexStore::open(dir.path(), 16 << 20, 1).unwrap();
    assert!(copies(&store, KEYS).iter().all(|(_, n)| *n == 1));
}

/// The live index merges small segments with their own size only: eight
/// commits of ten changes each merge into one segment of 80 and leave a
/// segment of 5,000 alone. tantivy's default policy puts every segment under
/// 10,000 documents in one tier and would merge the 5,000 again with them,
/// every eighth commit until it reached 10,000 (most of the indexer's merging
/// at 200 changes/s; BENCHMARKS.md, "Merges of small segments").
#[test]
fn small_commits_merge_among_themselves_and_leave_a_larger_segment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = IndexStore::create(dir.path(), 16 << 20, 1).unwrap();
    let fields = store.fields.clone();
    let write = |store: &mut IndexStore, ids: Vec<i64>, round: u64| {
        let docs = ids.iter().map(|id| evidence(&fields, *id, round)).collect();
        store.replace(Kind::Evidence, ids, docs).unwrap();
        store.commit(&payload(round)).unwrap();
    };
    write(&mut store, (0..5_000).collect(), 0);
    let large = store.index.searchable_segment_metas().unwrap();
    assert_eq!(large.len(), 1);
    let large = large[0].id();
    for round in 1..=8u64 {
        let first = 5_000 + 10 * round as i64;
        write(&mut store, (first..first + 10).collect(), round);
    }
    let index = store.index.clone();
    // waits for every merge, those a merge's result starts included
    store.close().unwrap();
    let mut segments: Vec<(bool, u32)> = index
        .searchable_segment_metas()
        .unwrap()
        .iter()
        .map(|m| (m.id() == large, m.num_docs()))
        .collect();
    segments.sort();
    assert_eq!(segments, vec![(false, 80), (true, 5_000)]);
}
