//! Full-store verification: every blob's hash, every entry's header, JSON and blobs.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use super::DiskStore;
use super::entry_file;
use super::layout::Area;
use super::quarantine::quarantine;
use super::scan::scan;
use crate::fsx::{self, PathContext};
use crate::{CacheError, Digest};

/// One problem found by [`DiskStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path.display(), self.reason)
    }
}

/// The result of [`DiskStore::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs read and hashed.
    pub blobs_checked: u64,
    /// Entries read and checked.
    pub entries_checked: u64,
    /// Everything found wrong, blobs first, each area in path order.
    pub problems: Vec<Problem>,
    /// Problems fixed (with `repair`): files quarantined or dangling entries removed.
    pub repaired: usize,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub(crate) fn run(store: &DiskStore, repair: bool) -> Result<VerifyReport, CacheError> {
    let layout = &store.layout;
    let mut report = VerifyReport::default();
    let mut corrupt_blobs = HashSet::new();

    scan(layout, Area::Blobs, |found| {
        let Some(digest) = found.digest else {
            report.problems.push(Problem {
                path: found.path.clone(),
                reason: "not a blob: the name is not the 64-hex digest of its shard".into(),
            });
            if repair {
                quarantine(layout, Area::Blobs, &found.path, "unexpected-file")?;
                report.repaired += 1;
            }
            return Ok(());
        };
        let Some(bytes) = read(&found.path)? else {
            return Ok(());
        };
        report.blobs_checked += 1;
        let actual = Digest::of(&bytes);
        if actual != digest {
            corrupt_blobs.insert(digest);
            report.problems.push(Problem {
                path: found.path.clone(),
                reason: format!("the content hashes to {actual}, not to its name"),
            });
            if repair {
                quarantine(layout, Area::Blobs, &found.path, "hash-mismatch")?;
                report.repaired += 1;
            }
        }
        Ok(())
    })?;

    scan(layout, Area::Entries, |found| {
        if found.digest.is_none() {
            report.problems.push(Problem {
                path: found.path.clone(),
                reason: "not an action entry: the name is not a 64-hex key of its shard".into(),
            });
            if repair {
                quarantine(layout, Area::Entries, &found.path, "unexpected-file")?;
                report.repaired += 1;
            }
            return Ok(());
        }
        let Some(bytes) = read(&found.path)? else {
            return Ok(());
        };
        report.entries_checked += 1;
        let entry = match entry_file::decode(&bytes) {
            Ok(entry) => entry,
            Err(defect) => {
                report.problems.push(Problem {
                    path: found.path.clone(),
                    reason: defect.to_string(),
                });
                if repair {
                    quarantine(layout, Area::Entries, &found.path, defect.tag())?;
                    report.repaired += 1;
                }
                return Ok(());
            }
        };
        // A fresh check per entry (not the blob scan's list): an entry committed after the
        // blob scan has its blobs committed too.
        let mut bad = Vec::new();
        for blob in entry.blobs() {
            if corrupt_blobs.contains(&blob) {
                bad.push(format!("{} (corrupt)", blob.short()));
            } else if !store.has_blob(&blob)? {
                bad.push(format!("{} (missing)", blob.short()));
            }
        }
        if !bad.is_empty() {
            report.problems.push(Problem {
                path: found.path.clone(),
                reason: format!("references unusable blobs: {}", bad.join(", ")),
            });
            if repair {
                fsx::remove_file_if_exists(&found.path)?;
                report.repaired += 1;
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// Reads a file; `None` if it vanished since the scan.
fn read(path: &std::path::Path) -> Result<Option<Vec<u8>>, CacheError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("cannot read", path)?,
    }
}
