//! [`StoreStats`]: what a store holds and how well it has served recent runs.

use super::DiskStore;
use super::layout::Area;
use super::runs::{self, RunRecord};
use super::scan::{read_dir_names, scan};
use crate::CacheError;

/// How many recorded runs the hit rate covers.
pub const RECENT_RUNS: usize = 20;

/// A summary of a [`DiskStore`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Action entries.
    pub entries: u64,
    /// Blobs.
    pub blobs: u64,
    /// Bytes of entries and blobs together (what `gc`'s `max_size` bounds).
    pub bytes: u64,
    /// Bytes of action entries.
    pub entry_bytes: u64,
    /// Bytes of blobs.
    pub blob_bytes: u64,
    /// Files in `quarantine/`.
    pub quarantined: u64,
    /// How many recorded runs the `recent_*` figures cover: the last [`RECENT_RUNS`], or
    /// fewer if fewer were recorded.
    pub recent_runs: u64,
    /// Hits over the recent runs.
    pub recent_hits: u64,
    /// Misses over the recent runs.
    pub recent_misses: u64,
}

impl StoreStats {
    /// Hits / (hits + misses) over the recent runs; `None` when they looked nothing up.
    pub fn hit_rate(&self) -> Option<f64> {
        let total = self.recent_hits + self.recent_misses;
        (total > 0).then(|| self.recent_hits as f64 / total as f64)
    }
}

pub(crate) fn compute(store: &DiskStore) -> Result<StoreStats, CacheError> {
    let mut stats = StoreStats::default();
    scan(&store.layout, Area::Entries, |found| {
        if found.digest.is_some() {
            stats.entries += 1;
            stats.entry_bytes += found.len;
        }
        Ok(())
    })?;
    scan(&store.layout, Area::Blobs, |found| {
        if found.digest.is_some() {
            stats.blobs += 1;
            stats.blob_bytes += found.len;
        }
        Ok(())
    })?;
    stats.bytes = stats.entry_bytes + stats.blob_bytes;
    stats.quarantined = read_dir_names(&store.layout.quarantine())?.len() as u64;
    let recent: Vec<RunRecord> = runs::recent(&store.layout, RECENT_RUNS)?;
    stats.recent_runs = recent.len() as u64;
    stats.recent_hits = recent.iter().map(|r| r.hits).sum();
    stats.recent_misses = recent.iter().map(|r| r.misses).sum();
    Ok(stats)
}
