//! The index directory: opening it (setting aside one that is missing, corrupt or
//! of another schema version), the single writer, commits that carry their
//! position, and readers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::directory::IndexDirectory;
use crate::position::{CommitPayload, IndexPosition, Snapshot};
use certscope_domain::Kind;

use crate::schema::{self, Fields, doc_key};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("index error in {path}")]
    Tantivy {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("another indexer holds the index in {0}; only one writer may run per index directory")]
    Locked(PathBuf),
    #[error("failed to {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why an existing index could not be used.
#[derive(Debug, Clone)]
pub enum Unusable {
    Missing,
    Corrupt(String),
    SchemaVersion {
        found: u32,
    },
    NoPosition,
    /// Its position is below the pruned change log: it cannot catch up.
    BehindRetention,
    /// The storage failed while reading it (too many open files, a device
    /// error, no memory): nothing says the index is damaged, so it is not set
    /// aside; opening it is retried.
    Unreadable(String),
}

/// The I/O error behind a tantivy error, where it keeps one.
fn io_error_of(e: &tantivy::TantivyError) -> Option<&std::io::Error> {
    use tantivy::TantivyError as T;
    use tantivy::directory::error::{LockError, OpenDirectoryError, OpenReadError};
    match e {
        T::IoError(io)
        | T::OpenReadError(OpenReadError::IoError { io_error: io, .. })
        | T::OpenDirectoryError(OpenDirectoryError::IoError { io_error: io, .. })
        | T::LockFailure(LockError::IoError(io), _) => Some(io.as_ref()),
        _ => None,
    }
}

/// Why opening or reading the index failed: damage (a file missing, data that
/// does not parse) or trouble of the storage at the moment (any other I/O
/// error), which must not get a healthy index set aside and rebuilt.
fn unusable(e: &tantivy::TantivyError) -> Unusable {
    match io_error_of(e) {
        Some(io) if !is_damage(io) => Unusable::Unreadable(e.to_string()),
        _ => Unusable::Corrupt(e.to_string()),
    }
}

/// A file missing or data that does not parse; any other I/O error is the
/// storage's trouble.
fn is_damage(io: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(io.kind(), K::NotFound | K::InvalidData | K::UnexpectedEof)
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("missing"),
            Unusable::Corrupt(e) => write!(f, "corrupt: {e}"),
            Unusable::SchemaVersion { found } => {
                write!(
                    f,
                    "built with schema version {found}, this build uses {}",
                    schema::SCHEMA_VERSION
                )
            }
            Unusable::NoPosition => f.write_str("no committed position"),
            Unusable::BehindRetention => f.write_str("older than the retained change log"),
            Unusable::Unreadable(e) => write!(f, "unreadable at the moment: {e}"),
        }
    }
}

/// An open index with its writer.
pub struct IndexStore {
    pub dir: PathBuf,
    pub index: Index,
    pub fields: Fields,
    writer: IndexWriter<TantivyDocument>,
    reader: IndexReader,
    /// The index's directory, kept to prune its map of opened files.
    directory: IndexDirectory,
}

fn tv(path: &Path) -> impl FnOnce(tantivy::TantivyError) -> StoreError + '_ {
    move |source| match source {
        // busy: another writer; an I/O error taking the lock is storage trouble
        tantivy::TantivyError::LockFailure(tantivy::directory::error::LockError::LockBusy, _) => {
            StoreError::Locked(path.to_owned())
        }
        source => StoreError::Tantivy {
            path: path.to_owned(),
            source,
        },
    }
}

/// Segments below this many documents are merged in tiers of their own size.
///
/// tantivy's default (10,000) puts every segment below 10,000 documents in one
/// tier: a commit of ten changes every 50 ms (200 changes/s) then merges the
/// growing small segment again with each seven new ones, about 85 documents
/// merged per document indexed (a simulation of the policy, BENCHMARKS.md);
/// a profile gave tantivy's merge thread 29 % of the indexer at that rate, on
/// two cores that also index, commit and run PostgreSQL. Tiers from 1,000
/// documents cut that to about 11, for about four more small segments on
/// average.
pub const MERGE_MIN_LAYER_DOCS: u32 = 1_000;

/// The merge policy of the live index (a rebuild merges nothing until it is
/// swapped in): tantivy's log policy with [`MERGE_MIN_LAYER_DOCS`].
fn live_merge_policy() -> tantivy::merge_policy::LogMergePolicy {
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_layer_size(MERGE_MIN_LAYER_DOCS);
    policy
}

/// Opens the index in `dir` read-only (no writer): for readers in other processes
/// and for tests. Returns the index, its fields and the committed payload.
pub fn open_read_only(dir: &Path) -> Result<(Index, Fields, Option<CommitPayload>), StoreError> {
    let index = Index::open(index_directory(dir)?).map_err(tv(dir))?;
    schema::register_tokenizers(&index);
    let (_, fields) = schema::build();
    let payload = read_payload(&index);
    Ok((index, fields, payload))
}

fn read_payload(index: &Index) -> Option<CommitPayload> {
    let metas = index.load_metas().ok()?;
    serde_json::from_str(metas.payload.as_deref()?).ok()
}

/// Checks the index in `dir`: its position if usable, or why not.
pub fn inspect(dir: &Path) -> Result<CommitPayload, Unusable> {
    if !dir.join("meta.json").exists() {
        return Err(Unusable::Missing);
    }
    let directory = IndexDirectory::open(dir).map_err(|e| unusable(&e.into()))?;
    let index = Index::open(directory).map_err(|e| unusable(&e))?;
    let (expected, _) = schema::build();
    if index.schema() != expected {
        let found = read_payload(&index).map_or(0, |p| p.schema_version);
        return Err(Unusable::SchemaVersion { found });
    }
    let payload = match index.load_metas() {
        Ok(metas) => metas.payload,
        Err(e) => return Err(unusable(&e)),
    };
    let payload: CommitPayload = payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or(Unusable::NoPosition)?;
    if payload.schema_version != schema::SCHEMA_VERSION {
        return Err(Unusable::SchemaVersion {
            found: payload.schema_version,
        });
    }
    // every segment file must be readable
    let reader = index.reader().map_err(|e| unusable(&e))?;
    let searcher = reader.searcher();
    for segment in searcher.segment_readers() {
        if let Err(e) = segment.get_store_reader(0) {
            let what = format!(
                "segment {} unreadable: {e}",
                segment.segment_id().short_uuid_string()
            );
            return Err(if is_damage(&e) {
                Unusable::Corrupt(what)
            } else {
                Unusable::Unreadable(what)
            });
        }
    }
    if Snapshot::parse(&payload.snapshot).is_err() {
        return Err(Unusable::NoPosition);
    }
    Ok(payload)
}

/// Less room than this on the index's filesystem counts as full.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// Whether the filesystem under `dir` (or under its parent, if `dir` is gone)
/// has no room left for the index: under [`MIN_FREE_BYTES`] available, or no
/// inode. `false` when it cannot tell.
#[allow(unsafe_code)] // one statvfs call, explained below
pub fn no_space_left(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let existing = if dir.exists() {
        dir
    } else {
        dir.parent().unwrap_or(dir)
    };
    let Ok(path) = std::ffi::CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `st`
    // points to writable memory of the type statvfs fills.
    if unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    let available = st.f_bavail.saturating_mul(st.f_frsize);
    available < MIN_FREE_BYTES || (st.f_files > 0 && st.f_favail == 0)
}

/// Moves an unusable index out of the way (kept for inspection, never deleted).
pub fn set_aside(dir: &Path, reason: &Unusable) -> Result<Option<PathBuf>, StoreError> {
    if !dir.exists() {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let aside = dir.with_file_name(format!(
        "{}.broken-{stamp}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("index")
    ));
    std::fs::rename(dir, &aside).map_err(|source| StoreError::Io {
        what: "set aside",
        path: dir.to_owned(),
        source,
    })?;
    tracing::warn!(index = %dir.display(), set_aside_to = %aside.display(), reason = %reason, "index set aside; it will be rebuilt");
    Ok(Some(aside))
}

/// Work done on each new searcher before a reader hands it out (tantivy's
/// [`tantivy::Warmer`]): the API decodes the columns and statistics a search
/// would otherwise decode on its first touch of a new segment. Held weakly: a
/// warmer dropped by its owner is skipped.
#[derive(Clone, Default)]
pub struct Warmers(pub Vec<std::sync::Weak<dyn tantivy::Warmer>>);

impl std::fmt::Debug for Warmers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Warmers({})", self.0.len())
    }
}

fn index_directory(dir: &Path) -> Result<IndexDirectory, StoreError> {
    IndexDirectory::open(dir).map_err(|e| tv(dir)(e.into()))
}

impl IndexStore {
    /// Creates a new, empty index in `dir` (which must not hold one).
    pub fn create(dir: &Path, writer_memory: usize, threads: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            what: "create",
            path: dir.to_owned(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let directory = index_directory(dir)?;
        let index = Index::create(directory.clone(), schema, tantivy::IndexSettings::default())
            .map_err(tv(dir))?;
        Self::with_index(
            dir,
            index,
            directory,
            fields,
            writer_memory,
            threads,
            &Warmers::default(),
        )
    }

    /// Opens an index that `inspect` found usable.
    pub fn open(dir: &Path, writer_memory: usize, threads: usize) -> Result<Self, StoreError> {
        Self::open_warmed(dir, writer_memory, threads, &Warmers::default())
    }

    /// [`IndexStore::open`], with `warmers` run on every new searcher (the
    /// first one included) before this store's reader hands it out.
    pub fn open_warmed(
        dir: &Path,
        writer_memory: usize,
        threads: usize,
        warmers: &Warmers,
    ) -> Result<Self, StoreError> {
        let directory = index_directory(dir)?;
        let index = Index::open(directory.clone()).map_err(tv(dir))?;
        let (_, fields) = schema::build();
        Self::with_index(
            dir,
            index,
            directory,
            fields,
            writer_memory,
            threads,
            warmers,
        )
    }

    fn with_index(
        dir: &Path,
        index: Index,
        directory: IndexDirectory,
        fields: Fields,
        writer_memory: usize,
        threads: usize,
        warmers: &Warmers,
    ) -> Result<Self, StoreError> {
        schema::register_tokenizers(&index);
        let writer: IndexWriter = index
            .writer_with_num_threads(threads, writer_memory)
            .map_err(tv(dir))?;
        // A commit cut short by a kill can leave files no meta.json refers to,
        // such as a `<segment>.<opstamp>.del` named after an opstamp the new
        // writer hands out again; its first commit would then fail with
        // FileAlreadyExists. tantivy collects files only after a commit, so
        // collect them before the first one.
        if let Err(e) = writer.garbage_collect_files().wait() {
            tracing::warn!(index = %dir.display(), error = %e, "index garbage collection on open failed");
        }
        step_past_last_commit(&writer);
        writer.set_merge_policy(Box::new(live_merge_policy()));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(warmers.0.clone())
            .try_into()
            .map_err(tv(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
            index,
            fields,
            writer,
            reader,
            directory,
        })
    }

    pub fn set_merge_policy(&self, policy: Box<dyn tantivy::merge_policy::MergePolicy>) {
        self.writer.set_merge_policy(policy);
    }

    pub fn reader(&self) -> IndexReader {
        self.reader.clone()
    }

    pub fn payload(&self) -> Option<CommitPayload> {
        read_payload(&self.index)
    }

    /// Replaces the documents of `kind` with ids `ids` by `docs` (ids without a
    /// document are deleted).
    pub fn replace(
        &mut self,
        kind: Kind,
        ids: impl IntoIterator<Item = i64>,
        docs: Vec<TantivyDocument>,
    ) -> Result<(), StoreError> {
        for id in ids {
            self.writer
                .delete_term(Term::from_field_text(self.fields.key, &doc_key(kind, id)));
        }
        for doc in docs {
            self.writer.add_document(doc).map_err(tv(&self.dir))?;
        }
        Ok(())
    }

    pub fn add(&mut self, doc: TantivyDocument) -> Result<(), StoreError> {
        self.writer.add_document(doc).map_err(tv(&self.dir))?;
        Ok(())
    }

    /// Commits with `payload` and makes the commit visible to this process's readers.
    pub fn commit(&mut self, payload: &CommitPayload) -> Result<(), StoreError> {
        let json = serde_json::to_string(payload).map_err(|e| StoreError::Io {
            what: "encode payload for",
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })?;
        let t = std::time::Instant::now();
        let mut prepared = self.writer.prepare_commit().map_err(tv(&self.dir))?;
        let prepare = t.elapsed();
        prepared.set_payload(&json);
        prepared.commit().map_err(tv(&self.dir))?;
        let commit = t.elapsed();
        self.reader.reload().map_err(tv(&self.dir))?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::trace!(
            prepare_ms = ms(prepare),
            commit_ms = ms(commit - prepare),
            reload_ms = ms(t.elapsed() - commit),
            "index committed"
        );
        // tantivy's MmapDirectory remembers every file it ever mapped (a
        // path and a weak reference each) and forgets the dead ones only
        // when asked for its cache figures: at 200 changes/s, segments come
        // and go several times a second and the map grew by about 1 MiB a
        // minute through the soak (a jemalloc heap profile, RELIABILITY.md).
        // Asking prunes it to the files still mapped.
        let _ = self.directory.mmap().get_cache_info();
        Ok(())
    }

    /// Drops uncommitted work (after a failed cycle, so that a retry starts clean).
    pub fn rollback(&mut self) -> Result<(), StoreError> {
        self.writer.rollback().map_err(tv(&self.dir))?;
        step_past_last_commit(&self.writer);
        Ok(())
    }

    /// The `embed_sig` of the committed documents of `kind` with these ids.
    pub fn indexed_signatures(&self, kind: Kind, ids: &[i64]) -> HashMap<i64, u64> {
        let searcher = self.reader.searcher();
        let mut out = HashMap::with_capacity(ids.len());
        for segment in searcher.segment_readers() {
            let Ok(inverted) = segment.inverted_index(self.fields.key) else {
                continue;
            };
            let Ok(sig_column) = segment.fast_fields().u64("embed_sig") else {
                continue;
            };
            let alive = segment.alive_bitset();
            for &id in ids {
                let term = Term::from_field_text(self.fields.key, &doc_key(kind, id));
                let Ok(Some(mut postings)) =
                    inverted.read_postings(&term, tantivy::schema::IndexRecordOption::Basic)
                else {
                    continue;
                };
                use tantivy::DocSet;
                let mut doc = postings.doc();
                while doc != tantivy::TERMINATED {
                    if alive.is_none_or(|a| a.is_alive(doc))
                        && let Some(sig) = sig_column.first(doc)
                    {
                        out.insert(id, sig);
                    }
                    doc = postings.advance();
                }
            }
        }
        out
    }

    /// Whether the last commit is still on disk as this writer left it: catches
    /// the directory deleted or emptied, `meta.json` replaced by something
    /// unreadable, or a file of a live segment removed, under a running
    /// indexer. Reads `meta.json` and stats each file it names (cheap enough for
    /// every few seconds). Damage inside a segment file is found when the index
    /// is next opened (`inspect`), or by `certscope verify-index`.
    pub fn check_in_place(&self) -> Result<(), Unusable> {
        if !self.dir.join("meta.json").is_file() {
            return Err(Unusable::Missing);
        }
        // tantivy's readers take this lock to load a meta.json and open its
        // files; the writer's garbage collection takes it to decide which files
        // are dead. Held here, a merge that replaces meta.json cannot delete
        // the files of the one being checked halfway through the check. If it
        // cannot be taken, this round checks nothing rather than guess.
        use tantivy::Directory as _;
        let Ok(_meta_lock) = self
            .index
            .directory()
            .acquire_lock(&tantivy::directory::META_LOCK)
        else {
            return Ok(());
        };
        let metas = match self.index.load_metas() {
            Ok(metas) => metas,
            Err(e) => {
                return match unusable(&e) {
                    Unusable::Corrupt(_) => Err(Unusable::Corrupt(format!("meta.json: {e}"))),
                    // storage trouble of the moment says nothing of the index
                    _ => Ok(()),
                };
            }
        };
        use tantivy::index::SegmentComponent as C;
        for segment in &metas.segments {
            let always = [
                C::Postings,
                C::Terms,
                C::Store,
                C::FastFields,
                C::FieldNorms,
            ];
            let deletes = segment.has_deletes().then_some(C::Delete);
            for component in always.into_iter().chain(deletes) {
                let file = segment.relative_path(component);
                if !self.dir.join(&file).is_file() {
                    return Err(Unusable::Corrupt(format!(
                        "{} of a live segment is gone",
                        file.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits for background merges and releases the writer lock.
    pub fn close(self) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        self.writer.wait_merging_threads().map_err(tv(&dir))
    }
}

/// Spends the opstamp a newly opened or rolled back writer would hand its
/// first operation. tantivy starts counting at the last commit's opstamp,
/// which is also the delete stamp of every segment that commit wrote deletes
/// for; a delete stamped with it is then skipped for those segments by a merge
/// of committed segments (whose target is that same opstamp), while the merged
/// segment's delete cursor moves past it: the deleted document stays alive
/// for good. The crash loop found one (a row deleted in PostgreSQL, alive in
/// the index after a restart); `a_delete_right_after_reopening_is_not_lost_in_a_merge`
/// reproduces it. An empty batch takes a stamp and queues nothing.
fn step_past_last_commit(writer: &IndexWriter) {
    let _ = writer.run(Vec::<tantivy::indexer::UserOperation>::new());
}

/// The position a payload describes.
pub fn position_of(payload: &CommitPayload) -> Option<IndexPosition> {
    Some(IndexPosition {
        snapshot: Snapshot::parse(&payload.snapshot).ok()?,
        generation: payload.generation,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};
    use std::sync::Arc;

    use tantivy::TantivyError;
    use tantivy::directory::error::{LockError, OpenReadError};

    use super::*;

    fn io(e: Error) -> TantivyError {
        TantivyError::IoError(Arc::new(e))
    }

    #[test]
    fn storage_trouble_is_not_damage() {
        // too many open files, a device error: retried, never set aside
        for trouble in [
            io(Error::from_raw_os_error(24)),
            io(Error::from_raw_os_error(5)),
            TantivyError::OpenReadError(OpenReadError::wrap_io_error(
                Error::from_raw_os_error(24),
                "meta.json".into(),
            )),
        ] {
            assert!(
                matches!(unusable(&trouble), Unusable::Unreadable(_)),
                "{trouble}"
            );
        }
        // a file gone or data that does not parse: damage
        for damage in [
            io(Error::from(ErrorKind::NotFound)),
            io(Error::from(ErrorKind::InvalidData)),
            TantivyError::OpenReadError(OpenReadError::FileDoesNotExist("x.idx".into())),
            TantivyError::InvalidArgument("meta.json".into()),
        ] {
            assert!(
                matches!(unusable(&damage), Unusable::Corrupt(_)),
                "{damage}"
            );
        }
    }

    /// A document keyed `kind:id`, as the indexer writes them.
    fn keyed(fields: &Fields, kind: Kind, id: i64) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_text(fields.key, doc_key(kind, id));
        doc.add_text(fields.kind, kind.as_str());
        doc.add_u64(fields.id, id as u64);
        doc
    }

    fn alive(store: &IndexStore, kind: Kind, id: i64) -> usize {
        let term = Term::from_field_text(store.fields.key, &doc_key(kind, id));
        let query = tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
        store
            .reader()
            .searcher()
            .search(&query, &tantivy::collector::Count)
            .unwrap()
    }

    fn payload() -> CommitPayload {
        CommitPayload {
            schema_version: schema::SCHEMA_VERSION,
            snapshot: "10:10:".into(),
            generation: 0,
            built_at: String::new(),
        }
    }

    /// Committed segments `[one document, two documents with the first of
    /// them deleted]`: the second one's deletes stamped with the last commit.
    fn two_segments(dir: &Path) -> (tantivy::index::SegmentId, tantivy::index::SegmentId) {
        let mut store = IndexStore::create(dir, 15 << 20, 1).unwrap();
        store.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
        let f = store.fields.clone();
        store.add(keyed(&f, Kind::Evidence, 1)).unwrap();
        store.commit(&payload()).unwrap();
        store.add(keyed(&f, Kind::Evidence, 2)).unwrap();
        store.add(keyed(&f, Kind::Evidence, 3)).unwrap();
        store.commit(&payload()).unwrap();
        store.replace(Kind::Evidence, [2], Vec::new()).unwrap();
        store.commit(&payload()).unwrap();
        let metas = store.index.searchable_segment_metas().unwrap();
        let id_of = |max_doc| metas.iter().find(|m| m.max_doc() == max_doc).unwrap().id();
        let ids = (id_of(1), id_of(2));
        store.close().unwrap();
        ids
    }

    /// tantivy hands the first operation of a newly opened (or rolled back)
    /// writer the opstamp of the last commit, which is also the delete stamp
    /// of the segments that commit wrote deletes for. A merge of committed
    /// segments targets that opstamp: it applies the new delete to the other
    /// segments but skips the one already stamped with it, and the merged
    /// segment takes the first segment's delete cursor, past the delete. The
    /// document it should have removed stays alive for good: after a restart
    /// (a SIGKILL, the crash loop found it) or a failed cycle, a deleted row
    /// or a stale version beside the new one.
    #[test]
    fn a_delete_right_after_reopening_is_not_lost_in_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let segments = two_segments(dir.path());
        let mut store = IndexStore::open(dir.path(), 15 << 20, 1).unwrap();
        delete_during_a_merge(&mut store, segments);
        assert_eq!(alive(&store, Kind::Evidence, 1), 1);
    }

    #[test]
    fn a_delete_right_after_a_rollback_is_not_lost_in_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let segments = two_segments(dir.path());
        let mut store = IndexStore::open(dir.path(), 15 << 20, 1).unwrap();
        let fields = store.fields.clone();
        store.add(keyed(&fields, Kind::Evidence, 4)).unwrap();
        store.rollback().unwrap();
        delete_during_a_merge(&mut store, segments);
        assert_eq!(alive(&store, Kind::Evidence, 4), 0, "rolled back");
    }

    /// The writer's first operation deletes evidence 3 (in the second
    /// segment), then the two segments merge, the first one first (the
    /// segment stamped by the last commit's deletes is not first), and the
    /// delete commits.
    fn delete_during_a_merge(
        store: &mut IndexStore,
        (one, two): (tantivy::index::SegmentId, tantivy::index::SegmentId),
    ) {
        store.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
        store.replace(Kind::Evidence, [3], Vec::new()).unwrap();
        store.writer.merge(&[one, two]).wait().unwrap();
        store.commit(&payload()).unwrap();
        assert_eq!(alive(store, Kind::Evidence, 3), 0, "the delete was lost");
    }

    /// tantivy's list of the files it created, as written.
    fn managed_list(dir: &Path) -> Vec<PathBuf> {
        serde_json::from_slice(&std::fs::read(dir.join(".managed.json")).unwrap()).unwrap()
    }

    /// The list of managed files is written without a sync, so a crash of the
    /// machine may leave it torn: the index must still open, search and
    /// commit (not be set aside and rebuilt), and the next list must name the
    /// files written since.
    #[test]
    fn a_torn_list_of_managed_files_is_not_a_damaged_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IndexStore::create(dir.path(), 15 << 20, 1).unwrap();
        let f = store.fields.clone();
        store.add(keyed(&f, Kind::Evidence, 1)).unwrap();
        store.commit(&payload()).unwrap();
        let listed = managed_list(dir.path());
        assert!(
            listed
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "store")),
            "{listed:?}"
        );
        let first = store.index.searchable_segment_metas().unwrap()[0].id();
        store.close().unwrap();

        std::fs::write(dir.path().join(".managed.json"), b"[\"abc.idx\", \"de").unwrap();
        assert!(inspect(dir.path()).is_ok(), "{:?}", inspect(dir.path()));
        let mut store = IndexStore::open(dir.path(), 15 << 20, 1).unwrap();
        assert_eq!(alive(&store, Kind::Evidence, 1), 1);
        store.add(keyed(&f, Kind::Evidence, 2)).unwrap();
        store.commit(&payload()).unwrap();
        assert_eq!(alive(&store, Kind::Evidence, 2), 1);
        let listed = managed_list(dir.path());
        let new = store
            .index
            .searchable_segment_metas()
            .unwrap()
            .into_iter()
            .map(|m| m.id())
            .find(|id| *id != first)
            .unwrap();
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| PathBuf::from(e.unwrap().file_name()))
            .filter(|p| p.to_string_lossy().starts_with(&new.uuid_string()))
            .collect();
        assert!(files.len() >= 5, "{files:?}");
        for file in files {
            assert!(listed.contains(&file), "{file:?} not in {listed:?}");
        }
        assert!(!dir.path().join(".managed.json.new").exists());
    }

    #[test]
    fn only_a_busy_lock_is_another_writer() {
        let dir = Path::new("/index");
        let busy = TantivyError::LockFailure(LockError::LockBusy, None);
        assert!(matches!(tv(dir)(busy), StoreError::Locked(_)));
        let failed = TantivyError::LockFailure(
            LockError::IoError(Arc::new(Error::from_raw_os_error(28))),
            None,
        );
        assert!(matches!(tv(dir)(failed), StoreError::Tantivy { .. }));
    }
}
