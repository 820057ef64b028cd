//! Listing the items of `cas/` or `ac/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::layout::{Area, Layout, parse_item_name};
use crate::fsx::PathContext;
use crate::{CacheError, Digest};

/// One file found under an area.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    /// The digest its name spells, if it is a well-formed item name in the right shard.
    pub(crate) digest: Option<Digest>,
    pub(crate) len: u64,
    pub(crate) modified: SystemTime,
}

/// Calls `visit` for every file in the shard directories of `area` (and for anything that is
/// not a shard directory, with `digest: None`). Files that vanish during the scan (concurrent
/// gc, quarantine) are skipped.
pub(crate) fn scan(
    layout: &Layout,
    area: Area,
    mut visit: impl FnMut(Found) -> Result<(), CacheError>,
) -> Result<(), CacheError> {
    let area_dir = layout.area(area);
    for shard in read_dir_names(&area_dir)? {
        let shard_path = area_dir.join(&shard);
        let Some(meta) = metadata(&shard_path)? else {
            continue;
        };
        if !meta.is_dir() {
            visit(Found {
                path: shard_path,
                digest: None,
                len: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })?;
            continue;
        }
        let shard_name = shard.to_str().unwrap_or("");
        for name in read_dir_names(&shard_path)? {
            let path = shard_path.join(&name);
            let Some(meta) = metadata(&path)? else {
                continue;
            };
            let digest = name
                .to_str()
                .and_then(|n| parse_item_name(shard_name, n))
                .filter(|_| meta.is_file());
            visit(Found {
                path,
                digest,
                len: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })?;
        }
    }
    Ok(())
}

/// The names in `dir`; a missing directory is empty.
pub(crate) fn read_dir_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, CacheError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => Err(e).at("cannot read directory", dir)?,
    };
    let mut names = Vec::new();
    for entry in read {
        names.push(entry.at("cannot read directory", dir)?.file_name());
    }
    names.sort();
    Ok(names)
}

/// `symlink_metadata`, with "not found" as `None`.
pub(crate) fn metadata(path: &Path) -> Result<Option<fs::Metadata>, CacheError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("cannot read", path)?,
    }
}
