//! The index's directory: tantivy's memory-mapped directory, except for the
//! list of files tantivy manages (`.managed.json`).
//!
//! tantivy rewrites that list, with an `fdatasync` and a rename, for every file
//! it creates and after every garbage collection: six times for each new
//! segment, once for each deletion file, once after each commit: at 200
//! changes/s about 9 of the 20 `fdatasync`s of each commit (`strace -c`,
//! BENCHMARKS.md). The list only names the files garbage collection may
//! delete; what the index is, and what a commit made durable, is `meta.json`
//! and the files it names, which are still synced before `meta.json` is
//! replaced (and `meta.json` itself). So the list is written as before (a new
//! file renamed over the old one, so that no reader sees half of it) but not
//! synced: after a crash of the machine (not of the process, whose writes the
//! kernel keeps) it may lack the newest files, which are then never collected
//! (disk space, no data), or be unreadable, which is read as an empty list
//! rather than a damaged index: the index opens and is not rebuilt for it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, FileSlice, Lock, MmapDirectory, WatchCallback,
    WatchHandle, WritePtr,
};

/// tantivy's list of the files it created.
const MANAGED: &str = ".managed.json";
/// The next list, renamed over [`MANAGED`] once written.
const MANAGED_NEW: &str = ".managed.json.new";

/// [`MmapDirectory`] with the managed-file list written without a sync.
#[derive(Clone, Debug)]
pub struct IndexDirectory {
    root: PathBuf,
    inner: MmapDirectory,
}

impl IndexDirectory {
    pub fn open(root: &Path) -> Result<Self, tantivy::directory::error::OpenDirectoryError> {
        Ok(Self {
            root: root.to_owned(),
            inner: MmapDirectory::open(root)?,
        })
    }

    /// The memory-mapped directory underneath (its map of opened files).
    pub fn mmap(&self) -> &MmapDirectory {
        &self.inner
    }

    fn is_managed_list(path: &Path) -> bool {
        path == Path::new(MANAGED)
    }

    /// Writes `data` to a new file beside the list and renames it over the
    /// list: readers see the old list or the new one, never a part.
    /// (tantivy writes the list under a lock, and one writer holds an index
    /// directory, so one name for the new file is enough; a leading dot keeps
    /// it out of garbage collection.)
    fn replace_unsynced(&self, data: &[u8]) -> io::Result<()> {
        let new = self.root.join(MANAGED_NEW);
        let mut file = std::fs::File::create(&new)?;
        file.write_all(data)?;
        drop(file);
        std::fs::rename(&new, self.root.join(MANAGED))
    }
}

impl Directory for IndexDirectory {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<std::sync::Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn open_read(&self, path: &Path) -> Result<FileSlice, OpenReadError> {
        self.inner.open_read(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.inner.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let data = self.inner.atomic_read(path)?;
        if Self::is_managed_list(path) && serde_json::from_slice::<Vec<PathBuf>>(&data).is_err() {
            // torn by a crash of the machine: tantivy would refuse the whole
            // index; an empty list only leaves old files uncollected
            tracing::warn!(index = %self.root.display(), bytes = data.len(), "tantivy's list of managed files is unreadable; starting a new one (files it named are left in place)");
            return Err(OpenReadError::FileDoesNotExist(path.to_owned()));
        }
        Ok(data)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if Self::is_managed_list(path) {
            return self.replace_unsynced(data);
        }
        self.inner.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}
