//! The `VERSION` file: created with a new store, checked on every open.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::layout::{FORMAT_VERSION, Layout, TOP_LEVEL_NAMES, TOP_LEVEL_TEMP_PREFIX};
use crate::CacheError;
use crate::fsx::{self, PathContext};

/// Checks the format version of the store at `layout`, creating `VERSION` for a new store.
///
/// Refuses a newer version, an unreadable `VERSION`, and a non-empty directory without one
/// (so that a mistyped cache path never turns a user's directory into a cache).
pub(crate) fn check_or_create(layout: &Layout) -> Result<(), CacheError> {
    let path = layout.version();
    match fs::read(&path) {
        Ok(content) => check(&path, layout.root(), &content),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(layout),
        Err(e) => Err(e).at("cannot read", &path)?,
    }
}

fn check(path: &Path, root: &Path, content: &[u8]) -> Result<(), CacheError> {
    let bad = || CacheError::BadVersion {
        path: path.to_path_buf(),
        content: String::from_utf8_lossy(&content[..content.len().min(64)]).into_owned(),
    };
    let text = std::str::from_utf8(content).map_err(|_| bad())?;
    let found: u32 = text.trim().parse().map_err(|_| bad())?;
    if found > FORMAT_VERSION {
        return Err(CacheError::NewerVersion {
            path: root.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    if found < FORMAT_VERSION {
        // Version 1 is the first format; anything lower was never written by hermetic.
        return Err(bad());
    }
    Ok(())
}

/// Writes `VERSION` into a new (empty) store, atomically: temp file, fsync, rename, fsync.
fn create(layout: &Layout) -> Result<(), CacheError> {
    let root = layout.root();
    for entry in fs::read_dir(root).at("cannot read directory", root)? {
        let entry = entry.at("cannot read directory", root)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !TOP_LEVEL_NAMES.contains(&name.as_ref()) && !name.starts_with(TOP_LEVEL_TEMP_PREFIX) {
            return Err(CacheError::NotACache {
                path: root.to_path_buf(),
            });
        }
    }
    let temp = root.join(format!(
        "{TOP_LEVEL_TEMP_PREFIX}VERSION-{}-{}",
        std::process::id(),
        super::scratch::unique()
    ));
    let written = fs::File::create_new(&temp)
        .and_then(|mut f| {
            f.write_all(format!("{FORMAT_VERSION}\n").as_bytes())?;
            f.sync_all()
        })
        .at("cannot write", &temp);
    let renamed = written
        .and_then(|()| fs::rename(&temp, layout.version()).at("cannot create", &layout.version()));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(e.into());
    }
    fsx::sync_dir(root)?;
    Ok(())
}
