//! Per-process temporary directories under `tmp/`, and the sweep of dead processes' ones.
//!
//! A store handle owns `tmp/<pid>-<n>/` (where `n` makes several handles in one process
//! distinct) and holds an exclusive advisory lock (`flock`) on `tmp/<pid>-<n>.lock` for its
//! whole life. The kernel drops the lock when the process dies, however it dies, so a lock
//! file that *can* be locked belongs to a dead owner: the sweep removes its directory, then
//! the lock file. A live owner is never swept, because it holds its lock from before it
//! creates its directory until after it has removed it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::CacheError;
use crate::fsx::{PathContext, PathError};

/// A process-wide counter for unique names.
pub(crate) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The temporary directory of one store handle.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    lock_path: PathBuf,
    /// Holds the exclusive lock for as long as the handle lives.
    _lock: File,
}

impl Scratch {
    /// Claims a fresh `tmp/<pid>-<n>/` under `tmp_root`.
    pub(crate) fn claim(tmp_root: &Path) -> Result<Self, CacheError> {
        let pid = std::process::id();
        // Another process with the same pid (other pid namespace sharing the store) or a
        // concurrent sweep can take a name; a few retries with new names always succeed.
        for _ in 0..64 {
            let name = format!("{pid}-{}", unique());
            let lock_path = tmp_root.join(format!("{name}.lock"));
            let lock = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .at("cannot create", &lock_path)?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => Err(e).at("cannot lock", &lock_path)?,
            }
            // A sweep may have unlinked the file between our open and our lock: then we
            // hold a lock on a file nobody can see. Only a lock on the visible file counts.
            if !same_file(&lock, &lock_path)? {
                continue;
            }
            let dir = tmp_root.join(&name);
            // A dead process with the same name may have left its directory.
            remove_dir_all_if_exists(&dir)?;
            fs::create_dir(&dir).at("cannot create directory", &dir)?;
            return Ok(Self {
                dir,
                lock_path,
                _lock: lock,
            });
        }
        Err(PathError {
            action: "cannot claim a temporary directory in",
            path: tmp_root.to_path_buf(),
            source: io::Error::other("every candidate name was taken"),
        }
        .into())
    }

    /// A fresh path inside the directory (not created).
    pub(crate) fn temp_path(&self) -> PathBuf {
        self.dir.join(unique().to_string())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Directory first, lock file second, lock released last (when `_lock` drops).
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::debug!(path = %self.dir.display(), error = %e, "cannot remove temporary directory");
        }
        let _ = fs::remove_file(&self.lock_path);
    }
}

fn same_file(file: &File, path: &Path) -> Result<bool, CacheError> {
    let open = file.metadata().at("cannot read", path)?;
    match fs::metadata(path) {
        Ok(visible) => Ok(visible.dev() == open.dev() && visible.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("cannot read", path)?,
    }
}

fn remove_dir_all_if_exists(dir: &Path) -> Result<(), CacheError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("cannot remove", dir)?,
    }
}

/// Removes the temporaries of dead processes under `tmp_root`; returns how many owners' worth.
///
/// Also removes directories that have no lock file at all (left by a sweep that crashed
/// between removing a directory's contents and its lock file).
pub(crate) fn sweep(tmp_root: &Path) -> Result<usize, CacheError> {
    let mut swept = 0;
    let mut dirs = Vec::new();
    for entry in fs::read_dir(tmp_root).at("cannot read directory", tmp_root)? {
        let entry = entry.at("cannot read directory", tmp_root)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(owner) = name.strip_suffix(".lock") {
            if sweep_owner(tmp_root, owner)? {
                swept += 1;
            }
        } else {
            dirs.push(name.to_owned());
        }
    }
    for name in dirs {
        let lock_path = tmp_root.join(format!("{name}.lock"));
        if fs::symlink_metadata(&lock_path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            let path = tmp_root.join(&name);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => Err(e).at("cannot read", &path)?,
            };
            if meta.is_dir() {
                remove_dir_all_if_exists(&path)?;
            } else {
                crate::fsx::remove_file_if_exists(&path)?;
            }
            swept += 1;
        }
    }
    Ok(swept)
}

/// Sweeps one owner if it is dead. Returns whether it was.
fn sweep_owner(tmp_root: &Path, owner: &str) -> Result<bool, CacheError> {
    let lock_path = tmp_root.join(format!("{owner}.lock"));
    let lock = match OpenOptions::new().read(true).open(&lock_path) {
        Ok(lock) => lock,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => Err(e).at("cannot open", &lock_path)?,
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => Err(e).at("cannot lock", &lock_path)?,
    }
    // Dead owner. Keep the lock while removing, so nobody can claim the name meanwhile.
    remove_dir_all_if_exists(&tmp_root.join(owner))?;
    crate::fsx::remove_file_if_exists(&lock_path)?;
    tracing::debug!(path = %lock_path.display(), "swept the temporaries of a dead process");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_creates_and_drop_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let scratch = Scratch::claim(tmp.path()).unwrap();
        let dir = scratch.dir().to_path_buf();
        assert!(dir.is_dir());
        assert!(
            tmp.path()
                .join(format!(
                    "{}.lock",
                    dir.file_name().unwrap().to_str().unwrap()
                ))
                .exists()
        );
        assert_ne!(scratch.temp_path(), scratch.temp_path());
        drop(scratch);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn sweep_removes_dead_owners_only() {
        let tmp = tempfile::tempdir().unwrap();
        let live = Scratch::claim(tmp.path()).unwrap();
        fs::write(live.temp_path(), b"in flight").unwrap();

        // A dead process: its directory and an unlocked lock file.
        let dead = tmp.path().join("99999999-0");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("partial"), b"half").unwrap();
        fs::write(tmp.path().join("99999999-0.lock"), b"").unwrap();
        // An orphan directory without a lock file.
        fs::create_dir(tmp.path().join("88888888-3")).unwrap();

        assert_eq!(sweep(tmp.path()).unwrap(), 2);
        assert!(!dead.exists());
        assert!(!tmp.path().join("99999999-0.lock").exists());
        assert!(!tmp.path().join("88888888-3").exists());
        assert!(live.dir().is_dir());
        assert_eq!(fs::read_dir(live.dir()).unwrap().count(), 1);
        assert_eq!(sweep(tmp.path()).unwrap(), 0);
    }
}
