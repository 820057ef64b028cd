//! Crash-safe publication of files: temp file, fsync, rename, fsync of the directory; one file
//! at a time ([`publish`]) or a whole batch behind one shared durability barrier
//! ([`publish_batch`]).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
    let result = write_temp(&temp, bytes)
        .and_then(|file| file.sync_all().at("cannot sync", &temp).map_err(Into::into))
        .and_then(|()| {
            let mut created = BTreeSet::new();
            rename_into_place(&temp, dest, &mut created)?;
            created.insert(parent(dest));
            for dir in &created {
                fsx::sync_dir(dir)?;
            }
            Ok(())
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Publishes every `(dest, bytes)` of each stage, in stage order (stage 0 holds blobs, stage
/// 1 the entries that name them), such that after a crash each destination is absent, old, or
/// complete, never partial.
///
/// The cost of durability is paid once per batch instead of once per file: every temporary
/// of every stage is written first, one [`barrier`] makes their bytes durable, and then each
/// stage is renamed into place. The renames themselves are not waited for: they reach the disk
/// with the kernel's writeback, or at the next [`barrier`] ([`DiskStore::flush_results`] at the
/// end of a run). Until then a power loss may lose some of them, in any order, which loses cache
/// entries but never serves a wrong one: a renamed file's bytes were durable before its name
/// was, and a lookup checks that an entry's blobs exist. Returns the directories whose
/// entries changed, for [`barrier`] to make durable later (on systems without `syncfs`).
///
/// [`DiskStore::flush_results`]: super::DiskStore::flush_results
pub(crate) fn publish_batch(
    scratch: &Scratch,
    root: &Path,
    stages: &[Vec<(PathBuf, &[u8])>],
) -> Result<BTreeSet<PathBuf>, CacheError> {
    let mut temps: Vec<Vec<PathBuf>> = Vec::with_capacity(stages.len());
    let mut renamed = 0;
    let result = (|| {
        let mut written = Vec::new();
        for stage in stages {
            let mut names = Vec::with_capacity(stage.len());
            for (_, bytes) in stage {
                let temp = scratch.temp_path();
                names.push(temp.clone());
                written.push(write_temp(&temp, bytes)?);
            }
            temps.push(names);
        }
        if written.is_empty() {
            return Ok(BTreeSet::new());
        }
        barrier(root, &written, &BTreeSet::new())?;
        drop(written);
        let mut dirs = BTreeSet::new();
        for (stage, names) in stages.iter().zip(&temps) {
            for ((dest, _), temp) in stage.iter().zip(names) {
                rename_into_place(temp, dest, &mut dirs)?;
                dirs.insert(parent(dest));
                renamed += 1;
            }
        }
        Ok(dirs)
    })();
    if result.is_err() {
        for temp in temps.iter().flatten().skip(renamed) {
            let _ = fs::remove_file(temp);
        }
    }
    result
}

/// Makes `files` (written, not yet synced) and the entries of `dirs` durable.
///
/// Durable means: on the disk, surviving a power loss. A process that is killed loses nothing
/// the kernel has accepted, synced or not.
///
/// On Linux one `syncfs` on the filesystem of `root` does it all, whatever the number of
/// files. Elsewhere each file and directory is fsynced in turn.
pub(crate) fn barrier(
    root: &Path,
    files: &[fs::File],
    dirs: &BTreeSet<PathBuf>,
) -> Result<(), CacheError> {
    #[cfg(target_os = "linux")]
    {
        let _ = (files, dirs);
        let handle = fs::File::open(root).at("cannot open", root)?;
        rustix::fs::syncfs(&handle)
            .map_err(io::Error::from)
            .at("cannot sync the filesystem of", root)?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = root;
        for file in files {
            file.sync_all().map_err(|source| crate::fsx::PathError {
                action: "cannot sync a temporary in",
                path: root.to_path_buf(),
                source,
            })?;
        }
        for dir in dirs {
            fsx::sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Creates `temp` (which must not exist) holding `bytes`; returns it open, not synced.
fn write_temp(temp: &Path, bytes: &[u8]) -> Result<fs::File, CacheError> {
    let mut file = fs::File::create_new(temp).at("cannot create", temp)?;
    file.write_all(bytes).at("cannot write", temp)?;
    Ok(file)
}

/// The directory holding `path`.
fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).to_path_buf()
}

/// Renames `temp` over `dest`, creating `dest`'s shard directory if it does not exist yet.
/// Syncs nothing: adds the parent of a directory it created to `unsynced`, whose entries the
/// caller must make durable (as well as `dest`'s directory).
fn rename_into_place(
    temp: &Path,
    dest: &Path,
    unsynced: &mut BTreeSet<PathBuf>,
) -> Result<(), CacheError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    match fs::rename(temp, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The shard directory does not exist yet.
            match fs::create_dir(dir) {
                Ok(()) => {
                    unsynced.insert(parent(dir));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => Err(e).at("cannot create directory", dir)?,
            }
            fs::rename(temp, dest).at("cannot create", dest)?;
        }
        Err(e) => Err(e).at("cannot create", dest)?,
    }
    Ok(())
}
