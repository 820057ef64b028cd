//! Garbage collection; the algorithm and its concurrency argument are documented on
//! [`DiskStore::gc`].

use std::collections::HashMap;
use std::fs::{self, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::DiskStore;
use super::entry_file;
use super::layout::{Area, TOP_LEVEL_TEMP_PREFIX};
use super::quarantine::quarantine;
use super::scan::{metadata, read_dir_names, scan};
use super::{runs, scratch};
use crate::fsx::PathContext;
use crate::{CacheError, Digest};

/// What [`DiskStore::gc`] may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Keep entries plus the blobs they reference within this many bytes.
    pub max_size: Option<u64>,
    /// Remove entries not used for this long.
    pub max_age: Option<Duration>,
    /// The current time (a parameter so that tests can age the store).
    pub now: SystemTime,
    /// Unreferenced blobs younger than this are kept (see the module docs). Default 15 min.
    pub blob_grace: Duration,
    /// Quarantined files older than this are removed. Default 7 days.
    pub quarantine_max_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            max_size: None,
            max_age: None,
            now: SystemTime::now(),
            blob_grace: Duration::from_secs(15 * 60),
            quarantine_max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What [`DiskStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Entries removed (dangling, too old, or evicted for size).
    pub entries_removed: u64,
    /// Blobs removed.
    pub blobs_removed: u64,
    /// Corrupt or misnamed files moved to the quarantine during the scan.
    pub quarantined: u64,
    /// Old quarantined files removed.
    pub quarantine_removed: u64,
    /// Bytes removed (entries, blobs, old quarantined files).
    pub bytes_freed: u64,
    /// Entries left.
    pub entries_kept: u64,
    /// Blobs left.
    pub blobs_kept: u64,
    /// Bytes of the entries and blobs left.
    pub bytes_kept: u64,
}

impl std::fmt::Display for GcReport {
    /// One line, e.g. `removed 2 entries and 6 blobs (20.3 KiB); kept 1 entry and 3 blobs
    /// (10.1 KiB)`, plus the quarantine figures when there are any.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "removed {} {} and {} {} ({}); kept {} {} and {} {} ({})",
            self.entries_removed,
            plural(self.entries_removed, "entry", "entries"),
            self.blobs_removed,
            plural(self.blobs_removed, "blob", "blobs"),
            human_bytes(self.bytes_freed),
            self.entries_kept,
            plural(self.entries_kept, "entry", "entries"),
            self.blobs_kept,
            plural(self.blobs_kept, "blob", "blobs"),
            human_bytes(self.bytes_kept),
        )?;
        if self.quarantined > 0 {
            write!(f, "; quarantined {} corrupt files", self.quarantined)?;
        }
        if self.quarantine_removed > 0 {
            write!(
                f,
                "; removed {} old quarantined files",
                self.quarantine_removed
            )?;
        }
        Ok(())
    }
}

/// `999 B`, `1.5 KiB`, `2.0 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

struct EntryInfo {
    key: Digest,
    path: PathBuf,
    len: u64,
    modified: SystemTime,
    blobs: [Digest; 3],
}

struct BlobInfo {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

/// The outcome of a guarded removal.
pub(super) enum Removal {
    Removed(u64),
    /// Touched since the scan: kept.
    Changed,
    /// Already gone.
    Gone,
}

/// Removes `path` unless its mtime moved past `scanned` since the scan.
pub(super) fn remove_unless_touched(
    path: &Path,
    scanned: SystemTime,
) -> Result<Removal, CacheError> {
    let Some(meta) = metadata(path)? else {
        return Ok(Removal::Gone);
    };
    if meta.modified().unwrap_or(scanned) > scanned {
        return Ok(Removal::Changed);
    }
    if crate::fsx::remove_file_if_exists(path)? {
        Ok(Removal::Removed(meta.len()))
    } else {
        Ok(Removal::Gone)
    }
}

fn older_than(modified: SystemTime, now: SystemTime, age: Duration) -> bool {
    now.duration_since(modified)
        .is_ok_and(|elapsed| elapsed > age)
}

pub(crate) fn run(store: &DiskStore, opts: &GcOptions) -> Result<GcReport, CacheError> {
    let lock_path = store.layout.gc_lock();
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .at("cannot open", &lock_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(CacheError::Busy {
                path: lock_path,
                what: "garbage collection",
            });
        }
        Err(TryLockError::Error(e)) => Err(e).at("cannot lock", &lock_path)?,
    }

    let layout = &store.layout;
    let mut report = GcReport::default();

    // 1. Entries, then blobs.
    let mut entries = Vec::new();
    scan(layout, Area::Entries, |found| {
        let Some(key) = found.digest else {
            quarantine(layout, Area::Entries, &found.path, "unexpected-file")?;
            report.quarantined += 1;
            return Ok(());
        };
        let bytes = match fs::read(&found.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => Err(e).at("cannot read", &found.path)?,
        };
        match entry_file::decode(&bytes) {
            Ok(entry) => entries.push(EntryInfo {
                key,
                path: found.path,
                len: found.len,
                modified: found.modified,
                blobs: entry.blobs(),
            }),
            Err(defect) => {
                tracing::warn!(path = %found.path.display(), reason = %defect, "gc: quarantining a corrupt action entry");
                quarantine(layout, Area::Entries, &found.path, defect.tag())?;
                report.quarantined += 1;
            }
        }
        Ok(())
    })?;
    let mut blobs: HashMap<Digest, BlobInfo> = HashMap::new();
    scan(layout, Area::Blobs, |found| {
        match found.digest {
            Some(digest) => {
                blobs.insert(
                    digest,
                    BlobInfo {
                        path: found.path,
                        len: found.len,
                        modified: found.modified,
                    },
                );
            }
            None => {
                quarantine(layout, Area::Blobs, &found.path, "unexpected-file")?;
                report.quarantined += 1;
            }
        }
        Ok(())
    })?;

    // 2 and 3: dangling and expired entries.
    let mut live = Vec::with_capacity(entries.len());
    for entry in entries {
        let dangling = entry.blobs.iter().any(|b| !blobs.contains_key(b));
        let expired = opts
            .max_age
            .is_some_and(|age| older_than(entry.modified, opts.now, age));
        if (dangling || expired) && remove_entry(&entry, &mut report)? {
            continue;
        }
        live.push(entry);
    }

    // 4. Size: least recently used first.
    let mut refs: HashMap<Digest, u64> = HashMap::new();
    for entry in &live {
        for blob in unique(&entry.blobs) {
            *refs.entry(blob).or_default() += 1;
        }
    }
    let blob_len = |d: &Digest| blobs.get(d).map_or(0, |b| b.len);
    let mut total: u64 =
        live.iter().map(|e| e.len).sum::<u64>() + refs.keys().map(blob_len).sum::<u64>();
    if let Some(max_size) = opts.max_size {
        live.sort_by_key(|e| (e.modified, e.key));
        let mut kept = Vec::with_capacity(live.len());
        let mut candidates = live.into_iter();
        for entry in candidates.by_ref() {
            if total <= max_size {
                kept.push(entry);
                break;
            }
            if !remove_entry(&entry, &mut report)? {
                kept.push(entry);
                continue;
            }
            total -= entry.len;
            for blob in unique(&entry.blobs) {
                if let Some(count) = refs.get_mut(&blob) {
                    *count -= 1;
                    if *count == 0 {
                        refs.remove(&blob);
                        total -= blob_len(&blob);
                    }
                }
            }
        }
        kept.extend(candidates);
        live = kept;
    }

    // 5. Unreferenced blobs past the grace period.
    let mut blobs_kept = 0;
    let mut blob_bytes_kept = 0;
    for (digest, blob) in &blobs {
        let removable =
            !refs.contains_key(digest) && older_than(blob.modified, opts.now, opts.blob_grace);
        if removable {
            match remove_unless_touched(&blob.path, blob.modified)? {
                Removal::Removed(len) => {
                    report.blobs_removed += 1;
                    report.bytes_freed += len;
                    continue;
                }
                Removal::Gone => continue,
                Removal::Changed => {}
            }
        }
        blobs_kept += 1;
        blob_bytes_kept += blob.len;
    }
    report.entries_kept = live.len() as u64;
    report.blobs_kept = blobs_kept;
    report.bytes_kept = live.iter().map(|e| e.len).sum::<u64>() + blob_bytes_kept;

    // 6. Housekeeping.
    remove_old_quarantine(store, opts, &mut report)?;
    scratch::sweep(&layout.tmp())?;
    remove_stale_top_level_temps(store, opts)?;
    runs::compact(layout, &store.scratch, 1 << 20, 1000)?;
    tracing::debug!(?report, "gc done");
    Ok(report)
}

/// Removes an entry unless it was touched since the scan. Returns whether it is gone.
fn remove_entry(entry: &EntryInfo, report: &mut GcReport) -> Result<bool, CacheError> {
    match remove_unless_touched(&entry.path, entry.modified)? {
        Removal::Removed(len) => {
            report.entries_removed += 1;
            report.bytes_freed += len;
            Ok(true)
        }
        Removal::Gone => Ok(true),
        Removal::Changed => Ok(false),
    }
}

/// The distinct digests of an entry's blob list (stdout and stderr may be the same blob).
fn unique(blobs: &[Digest; 3]) -> impl Iterator<Item = Digest> + '_ {
    blobs
        .iter()
        .enumerate()
        .filter(|&(i, d)| !blobs[..i].contains(d))
        .map(|(_, d)| *d)
}

fn remove_old_quarantine(
    store: &DiskStore,
    opts: &GcOptions,
    report: &mut GcReport,
) -> Result<(), CacheError> {
    let dir = store.layout.quarantine();
    for name in read_dir_names(&dir)? {
        let path = dir.join(name);
        let Some(meta) = metadata(&path)? else {
            continue;
        };
        // Quarantining sets the mtime, so this is the time since the file was quarantined.
        let modified = meta.modified().unwrap_or(opts.now);
        if meta.is_file()
            && older_than(modified, opts.now, opts.quarantine_max_age)
            && crate::fsx::remove_file_if_exists(&path)?
        {
            report.quarantine_removed += 1;
            report.bytes_freed += meta.len();
        }
    }
    Ok(())
}

/// Removes `.tmp-*` files at the top level (from a crash while creating `VERSION`) once they
/// are older than the blob grace period.
fn remove_stale_top_level_temps(store: &DiskStore, opts: &GcOptions) -> Result<(), CacheError> {
    let root = store.layout.root();
    for name in read_dir_names(root)? {
        if !name.to_string_lossy().starts_with(TOP_LEVEL_TEMP_PREFIX) {
            continue;
        }
        let path = root.join(name);
        if let Some(meta) = metadata(&path)?
            && meta.is_file()
            && older_than(
                meta.modified().unwrap_or(opts.now),
                opts.now,
                opts.blob_grace,
            )
        {
            crate::fsx::remove_file_if_exists(&path)?;
        }
    }
    Ok(())
}
