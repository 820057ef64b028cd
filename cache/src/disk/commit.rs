//! Crash-safe publication of a file: temp file, fsync, rename, fsync of the directory.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::scratch::Scratch;
use crate::CacheError;
use crate::fsx::{self, PathContext};

/// Publishes `bytes` at `dest`, replacing what is there, such that after a crash `dest` is
/// either absent, its previous content, or exactly `bytes` — never partial.
///
/// The bytes go to a file in the handle's temporary directory (same filesystem), which is
/// fsynced, renamed over `dest` (atomic), and then the directory holding `dest` is fsynced so
/// the rename itself is durable. A missing shard directory is created (and its parent
/// fsynced).
pub(crate) fn publish(scratch: &Scratch, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let temp = scratch.temp_path();
    let result = write_synced(&temp, bytes).and_then(|()| rename_into_place(&temp, dest));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_synced(temp: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut file = fs::File::create_new(temp).at("cannot create", temp)?;
    file.write_all(bytes).at("cannot write", temp)?;
    file.sync_all().at("cannot sync", temp)?;
    Ok(())
}

fn rename_into_place(temp: &Path, dest: &Path) -> Result<(), CacheError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    match fs::rename(temp, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The shard directory does not exist yet.
            match fs::create_dir(dir) {
                Ok(()) => {
                    if let Some(area) = dir.parent() {
                        fsx::sync_dir(area)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => Err(e).at("cannot create directory", dir)?,
            }
            fs::rename(temp, dest).at("cannot create", dest)?;
        }
        Err(e) => Err(e).at("cannot create", dest)?,
    }
    fsx::sync_dir(dir)?;
    Ok(())
}
