//! Moving corrupt files out of the way: `quarantine/<area>-<name>.<secs>-<pid>-<n>.<tag>`.
//!
//! Quarantined files are never read by the store again; they are kept for inspection and
//! removed by [`DiskStore::gc`](super::DiskStore::gc) once older than
//! [`GcOptions::quarantine_max_age`](super::GcOptions::quarantine_max_age).

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::layout::{Area, Layout};
use super::scratch::unique;
use crate::CacheError;
use crate::fsx::PathContext;

/// Moves `path` (an item of `area`) into the quarantine with a `tag` naming the reason.
/// A file that is already gone is not an error.
pub(crate) fn quarantine(
    layout: &Layout,
    area: Area,
    path: &Path,
    tag: &str,
) -> Result<(), CacheError> {
    let dir = layout.quarantine();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dest = dir.join(format!(
        "{}-{name}.{secs}-{}-{}.{tag}",
        area.dir_name(),
        std::process::id(),
        unique()
    ));
    fs::create_dir_all(&dir).at("cannot create directory", &dir)?;
    match fs::rename(path, &dest) {
        Ok(()) => {
            // Date the file by its quarantine, for `gc`'s `quarantine_max_age`.
            let touched = fs::File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
            if let Err(e) = touched {
                tracing::debug!(path = %dest.display(), error = %e, "cannot date a quarantined file");
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("cannot quarantine", path)?,
    }
}

/// Quarantines a corrupt item found by a read, logging why; never fails (the read is a miss
/// either way).
pub(crate) fn quarantine_on_read(
    layout: &Layout,
    area: Area,
    path: &Path,
    tag: &str,
    reason: &dyn Display,
) {
    tracing::warn!(path = %path.display(), reason = %reason, "corrupt cache item quarantined; treating it as a miss");
    if let Err(e) = quarantine(layout, area, path, tag) {
        tracing::warn!(error = %e, "cannot quarantine a corrupt cache item");
    }
}
