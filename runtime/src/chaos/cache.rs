//! Cache faults: a store whose disk is full for some results, and damage done to stored
//! archives, so that a suite proves a corrupt entry is never served and a failed write never
//! fails a run.

use std::collections::HashSet;
use std::sync::Arc;

use hermetic_cache::{ActionEntry, CacheError, Digest, DiskStore, NewResult, PathError, Store};

use super::plan::{Fault, FaultKind};

/// A store that refuses, as a full disk would, to store the results of some action keys.
#[derive(Debug)]
pub(crate) struct FullDisk {
    pub inner: Arc<DiskStore>,
    /// The keys whose results cannot be stored.
    pub full_for: HashSet<Digest>,
}

impl FullDisk {
    fn no_space(&self, key: &Digest) -> CacheError {
        CacheError::Io(PathError {
            action: "cannot write",
            path: self.inner.entry_path(key),
            source: std::io::Error::from_raw_os_error(28), // ENOSPC
        })
    }
}

#[async_trait::async_trait]
impl Store for FullDisk {
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        self.inner.get_action(key).await
    }
    async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        if self.full_for.contains(key) {
            return Err(self.no_space(key));
        }
        self.inner.put_action(key, entry).await
    }
    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.inner.get_blob(digest).await
    }
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        self.inner.put_blob(digest, bytes).await
    }
    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        self.inner.find_missing(digests).await
    }
    async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        let (refused, stored): (Vec<&NewResult>, Vec<&NewResult>) =
            results.iter().partition(|r| self.full_for.contains(&r.key));
        let stored: Vec<NewResult> = stored.into_iter().cloned().collect();
        self.inner.put_results(&stored).await?;
        match refused.first() {
            Some(r) => Err(self.no_space(&r.key)),
            None => Ok(()),
        }
    }
    fn describe(&self) -> String {
        format!(
            "{} (disk full for {} results)",
            self.inner.describe(),
            self.full_for.len()
        )
    }
}

/// Damages the stored outputs archive of the result under `key` as `fault` says: one bit
/// flipped, or the file cut short. Returns whether there was a result to damage: a result
/// without output files is restored without reading its (empty) archive, so damaging it could
/// not matter.
pub(crate) fn damage(store: &DiskStore, key: &Digest, fault: &Fault) -> std::io::Result<bool> {
    let Ok(Some(entry)) = store.load_action(key) else {
        return Ok(false);
    };
    if entry.output_files.is_empty() {
        return Ok(false);
    }
    let path = store.blob_path(&entry.outputs_archive);
    let mut bytes = std::fs::read(&path)?;
    if bytes.is_empty() {
        return Ok(false);
    }
    let at = (fault.offset % bytes.len() as u64) as usize;
    match fault.kind {
        FaultKind::CacheBitflip => bytes[at] ^= 1 << (fault.offset % 8),
        FaultKind::CacheTruncate => bytes.truncate(at),
        _ => return Ok(false),
    }
    // Stored items are read-only; the damage is done as a disk would do it, in place.
    let mut permissions = std::fs::metadata(&path)?.permissions();
    #[allow(clippy::permissions_set_readonly_false)] // reason: the fault writes a stored item.
    permissions.set_readonly(false);
    std::fs::set_permissions(&path, permissions)?;
    std::fs::write(&path, bytes)?;
    Ok(true)
}
