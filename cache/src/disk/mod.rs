//! [`DiskStore`]: the local store, a directory shared by any number of processes.
//!
//! The layout and the guarantees are described in the [crate documentation](crate).

mod commit;
mod entry_file;
mod gc;
mod layout;
mod quarantine;
mod runs;
mod scan;
mod scratch;
mod stats;
mod verify;
mod version;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

pub use gc::{GcOptions, GcReport};

pub use stats::{RECENT_RUNS, StoreStats};
pub use verify::{Problem, VerifyReport};

use self::layout::{Area, Layout};
use self::quarantine::quarantine_on_read;
use self::scratch::Scratch;
use crate::fsx::PathContext;
use crate::{ActionEntry, CacheError, Digest, NewResult, Store};

pub use layout::FORMAT_VERSION;

/// The local store. See the [crate documentation](crate) for the on-disk format.
///
/// The [`Store`] methods do blocking filesystem work directly inside their futures (they
/// never await anything): call them from a blocking context (`spawn_blocking`, a blocking
/// thread), not on an async executor's worker threads. The same operations are available as
/// plain functions ([`DiskStore::load_action`], ...).
///
/// A handle owns a temporary directory `tmp/<pid>-<n>/` for its whole life and removes it on
/// drop; one process may open the same store several times.
#[derive(Debug)]
pub struct DiskStore {
    layout: Layout,
    scratch: Scratch,
    /// Directories whose entries batches renamed since the last [`DiskStore::flush`]: their
    /// files' bytes are durable, their names not yet.
    unflushed: Mutex<BTreeSet<PathBuf>>,
}

impl DiskStore {
    /// Opens the store at `root`, creating it if needed.
    ///
    /// Creates the directory and layout when missing; writes `VERSION` for a new store and
    /// refuses a store of a newer format ([`CacheError::NewerVersion`]) or a non-empty
    /// directory that is not a store ([`CacheError::NotACache`]); sweeps the temporaries
    /// left by dead processes.
    pub fn open(root: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(root).at("cannot create directory", root)?;
        let layout = Layout::new(root.to_path_buf());
        version::check_or_create(&layout)?;
        for dir in [
            layout.area(Area::Blobs),
            layout.area(Area::Entries),
            layout.tmp(),
            layout.quarantine(),
        ] {
            fs::create_dir_all(&dir).at("cannot create directory", &dir)?;
        }
        let swept = scratch::sweep(&layout.tmp())?;
        if swept > 0 {
            tracing::debug!(swept, "removed temporaries of dead processes");
        }
        let scratch = Scratch::claim(&layout.tmp())?;
        Ok(Self {
            layout,
            scratch,
            unflushed: Mutex::new(BTreeSet::new()),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where the blob `digest` is kept (whether or not it is there): for fault injection and
    /// tests, which corrupt stored items on purpose.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// Where the action entry of `key` is kept (whether or not it is there).
    pub fn entry_path(&self, key: &Digest) -> PathBuf {
        self.layout.entry(key)
    }

    /// Looks up an action entry; see [`Store::get_action`] for what the answers mean. A hit
    /// refreshes the entry's mtime (its last use, for [`DiskStore::gc`]).
    pub fn load_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        let path = self.layout.entry(key);
        let Some((file, bytes)) = read_file(&path)? else {
            return Ok(None);
        };
        let entry = match entry_file::decode(&bytes) {
            Ok(entry) => entry,
            Err(defect) => {
                quarantine_on_read(&self.layout, Area::Entries, &path, defect.tag(), &defect);
                return Ok(None);
            }
        };
        let missing = self.missing_blobs(&entry.blobs())?;
        if !missing.is_empty() {
            tracing::warn!(
                path = %path.display(),
                missing = ?missing,
                "action entry references missing blobs; treating it as a miss"
            );
            return Ok(None);
        }
        if let Err(e) = file.set_modified(SystemTime::now()) {
            tracing::debug!(path = %path.display(), error = %e, "cannot record the use of a cache entry");
        }
        Ok(Some(entry))
    }

    /// Records an action entry, replacing any previous one; its blobs must be present
    /// ([`CacheError::MissingBlobs`] otherwise).
    pub fn store_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        let missing = self.missing_blobs(&entry.blobs())?;
        if !missing.is_empty() {
            return Err(CacheError::MissingBlobs { key: *key, missing });
        }
        let bytes =
            entry_file::encode(entry).map_err(|source| CacheError::Encode { key: *key, source })?;
        commit::publish(&self.scratch, &self.layout.entry(key), &bytes)
    }

    /// Fetches a blob, verified; see [`Store::get_blob`].
    pub fn load_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.layout.blob(digest);
        let Some((_, bytes)) = read_file(&path)? else {
            return Ok(None);
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            let reason = format!("the content hashes to {actual}");
            quarantine_on_read(&self.layout, Area::Blobs, &path, "hash-mismatch", &reason);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores a blob after checking its digest. When a blob of the right length is present
    /// already, only its mtime is refreshed (protecting it from a concurrent `gc` until the
    /// entry that needs it is written).
    pub fn store_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        if self.blob_needs_write(digest, bytes)? {
            commit::publish(&self.scratch, &self.layout.blob(digest), bytes)?;
        }
        Ok(())
    }

    /// Stores a batch of results, each one's blobs before its entry, with one durability
    /// barrier for the whole batch (see [`Store::put_results`]). Checks everything
    /// first: a blob whose bytes do not hash to its digest, or an entry naming a blob that is
    /// neither in the batch nor in the store, fails the batch before anything is written.
    pub fn store_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        let mut blobs: Vec<(PathBuf, &[u8])> = Vec::new();
        let mut offered: HashSet<Digest> = HashSet::new();
        for result in results {
            for (digest, bytes) in &result.blobs {
                if offered.insert(*digest) && self.blob_needs_write(digest, bytes)? {
                    blobs.push((self.layout.blob(digest), bytes));
                }
            }
        }
        let mut encoded = Vec::with_capacity(results.len());
        for result in results {
            let needed = result.entry.blobs();
            let missing: Vec<Digest> = self
                .missing_blobs(&needed)?
                .into_iter()
                .filter(|d| !offered.contains(d))
                .collect();
            if !missing.is_empty() {
                return Err(CacheError::MissingBlobs {
                    key: result.key,
                    missing,
                });
            }
            let bytes = entry_file::encode(&result.entry).map_err(|source| CacheError::Encode {
                key: result.key,
                source,
            })?;
            encoded.push((self.layout.entry(&result.key), bytes));
        }
        let entries: Vec<(PathBuf, &[u8])> = encoded
            .iter()
            .map(|(p, b)| (p.clone(), b.as_slice()))
            .collect();
        let renamed = commit::publish_batch(&self.scratch, self.layout.root(), &[blobs, entries])?;
        self.unflushed().extend(renamed);
        Ok(())
    }

    /// The directories renamed into since the last flush. (A poisoned lock only means a
    /// thread panicked while adding to the set; what it holds is still to be flushed.)
    fn unflushed(&self) -> std::sync::MutexGuard<'_, BTreeSet<PathBuf>> {
        self.unflushed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every result stored by [`DiskStore::store_results`] so far durable (see
    /// [`Store::flush`]): one `syncfs` on Linux, an fsync of each changed directory elsewhere.
    /// Nothing to do, and no system call, when no batch was stored since the last flush.
    pub fn flush_results(&self) -> Result<(), CacheError> {
        let dirs = std::mem::take(&mut *self.unflushed());
        if dirs.is_empty() {
            return Ok(());
        }
        let flushed = commit::barrier(self.layout.root(), &[], &dirs);
        if flushed.is_err() {
            // Try again at the next flush.
            self.unflushed().extend(dirs);
        }
        flushed
    }

    /// Whether `bytes` (checked to hash to `digest`) must be written: true unless a sound copy
    /// is present, in which case its mtime is refreshed. A present copy of the same length is
    /// compared in full, and a corrupt one quarantined, so that no fresh entry points at it.
    fn blob_needs_write(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, CacheError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(CacheError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        let path = self.layout.blob(digest);
        let Some(meta) = scan::metadata(&path)? else {
            return Ok(true);
        };
        if !meta.is_file() || meta.len() != bytes.len() as u64 {
            return Ok(true);
        }
        match fs::read(&path) {
            Ok(existing) if existing == bytes => {}
            Ok(_) => {
                let reason = "its content differs from the bytes being stored";
                quarantine_on_read(&self.layout, Area::Blobs, &path, "hash-mismatch", &reason);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e).at("cannot read", &path)?,
        }
        let touched = fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
        match touched {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true), // gc'd meanwhile.
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot refresh a blob's mtime");
                Ok(false)
            }
        }
    }

    /// Which of `digests` are not in `cas/`, in the order given.
    pub fn missing_blobs(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        let mut missing = Vec::new();
        for digest in digests {
            if !self.has_blob(digest)? {
                missing.push(*digest);
            }
        }
        Ok(missing)
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, CacheError> {
        Ok(scan::metadata(&self.layout.blob(digest))?.is_some_and(|m| m.is_file()))
    }

    /// Appends one line to `runs.jsonl`.
    pub fn record_run(&self, hits: u64, misses: u64, unix_secs: u64) -> Result<(), CacheError> {
        runs::append(
            &self.layout,
            &runs::RunRecord {
                unix_secs,
                hits,
                misses,
            },
        )
    }

    /// Counts entries, blobs and bytes, quarantined files, and the recent hit rate.
    pub fn stats(&self) -> Result<StoreStats, CacheError> {
        stats::compute(self)
    }

    /// Removes old and least recently used entries, then unreferenced blobs.
    ///
    /// # Algorithm
    ///
    /// 1. Scan `ac/` (parsing every entry; corrupt ones are quarantined), **then** `cas/`. Because
    ///    writers commit blobs before the entry that references them, every entry seen in step 1
    ///    has its blobs already visible to the later blob scan.
    /// 2. Remove entries that reference a missing blob (they can never hit).
    /// 3. Remove entries last used (file mtime: set on write and on every hit) more than
    ///    `max_age` ago.
    /// 4. Remove the least recently used entries until the entries plus the blobs they reference
    ///    fit in `max_size` (sizes are file lengths).
    /// 5. Remove blobs that no remaining entry references **and** that are older than
    ///    `blob_grace`: a concurrent process commits its blobs (or, for a blob already present,
    ///    refreshes its mtime) shortly before its entry, and the grace keeps them alive meanwhile.
    /// 6. Remove quarantined files older than `quarantine_max_age`, dead processes' temporaries,
    ///    and compact `runs.jsonl`.
    ///
    /// # Concurrency
    ///
    /// An exclusive lock on `gc.lock` keeps two collections apart ([`CacheError::Busy`] for the
    /// second). Other processes may keep reading and writing: every removal re-checks the file's
    /// mtime first and keeps a file that was touched since the scan (a hit, a rewrite, a re-put).
    /// What remains is a short window in which a reader loses a file it was about to read; it then
    /// sees a miss, never a wrong result, because every read is verified.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport, CacheError> {
        gc::run(self, opts)
    }

    /// Reads and checks everything: blob hashes, entry headers, JSON and referenced blobs.
    /// With `repair`, quarantines corrupt files and removes entries with unusable blobs.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, CacheError> {
        verify::run(self, repair)
    }

    /// The temporary directory this handle owns.
    pub fn temp_dir(&self) -> &Path {
        self.scratch.dir()
    }

    #[cfg(test)]
    fn path_of(&self, area: Area, digest: &Digest) -> PathBuf {
        self.layout.item(area, digest)
    }
}

/// Reads a whole file, keeping the handle; "not found" is `None`.
fn read_file(path: &Path) -> Result<Option<(fs::File, Vec<u8>)>, CacheError> {
    use std::io::Read;
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => Err(e).at("cannot open", path)?,
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).at("cannot read", path)?;
    Ok(Some((file, bytes)))
}

#[async_trait::async_trait]
impl Store for DiskStore {
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        self.load_action(key)
    }

    async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        self.store_action(key, entry)
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.load_blob(digest)
    }

    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        self.store_blob(digest, bytes)
    }

    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        self.missing_blobs(digests)
    }

    async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        self.store_results(results)
    }

    async fn flush(&self) -> Result<(), CacheError> {
        self.flush_results()
    }

    fn describe(&self) -> String {
        format!("local cache at {}", self.root().display())
    }
}

#[cfg(test)]
mod tests;
