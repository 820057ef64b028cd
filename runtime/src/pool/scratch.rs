//! Reusable per-attempt directories.
//!
//! Every attempt that runs with mounts, or collects declared outputs, needs a fresh, empty
//! `/out` and `/tmp`, and, when it has inputs, its own staged `/in`; an attempt of a program
//! that reaches no files and has no outputs to collect leases nothing (see
//! [`crate::pool::run_attempt`]). (Dependencies' outputs are mounted where they are published, over a view in
//! `.hermetic/views/`; see [`crate::outputs::dependency_view`].) Creating and removing those directories cost
//! about 260 µs per attempt on a 2-core CI machine, more than everything else a no-op step
//! does. So a finished attempt hands its directories back, and the next attempt reuses them once
//! they are emptied: an empty directory costs one `readdir` to check, and a used one keeps its
//! own inode (only what is inside goes), because on ext4 a new inode is the dearest part of
//! creating a directory. Publishing a step's outputs moves its `/out` away; the next lease
//! makes a new one.
//!
//! The reuse is safe because a directory goes back to the pool only through
//! [`Lease::recycle`], which empties it first, and an attempt that ends any other way (an error,
//! a panic, an interrupt that drops its future) drops its [`Lease`], which removes the whole
//! directory. A leftover from a killed process is swept with the rest of `.hermetic/tmp/` by the
//! next run that takes the project lock.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::outputs::fsx::{PathContext, PathError, remove_all};

/// Directories that idle between attempts, ready to be leased.
#[derive(Debug)]
pub struct ScratchPool {
    /// Where new scratch directories are created (`.hermetic/tmp/`).
    root: PathBuf,
    /// Clean scratch directories, most recently used last (warm in the dentry cache).
    free: Mutex<Vec<Scratch>>,
}

/// One attempt's private directories, all inside one temporary directory.
#[derive(Debug)]
pub struct Scratch {
    /// Owns the directory: dropping it removes everything inside. Never read, only dropped.
    _dir: TempDir,
    /// Mounted read-write at `/out`. Empty when leased.
    pub out: PathBuf,
    /// Mounted read-write at `/tmp`. Empty when leased.
    pub tmp: PathBuf,
    /// Where inputs are staged for `/in`. Empty when leased.
    pub inputs: PathBuf,
}

/// A scratch directory lent to one attempt. Dropping it without [`Lease::recycle`] removes it.
#[derive(Debug)]
pub struct Lease<'a> {
    /// Where a recycled scratch goes back to.
    pool: &'a ScratchPool,
    /// Always `Some` until `recycle` takes it.
    scratch: Option<Scratch>,
}

/// Empties `tmp` (`.hermetic/tmp/`) of whatever a killed process left there, keeping only the
/// shared empty directory ([`crate::plan::Plan::empty_dir`], `tmp/empty`) while it is still an
/// empty directory: removing it and making it again cost every run about 0.3 ms. A missing
/// `tmp` is already clean.
pub fn sweep(tmp: &Path) -> Result<(), PathError> {
    let entries = match fs::read_dir(tmp) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).at("cannot list", tmp),
    };
    for entry in entries {
        let path = entry.at("cannot list", tmp)?.path();
        let keep = path.file_name() == Some(EMPTY.as_ref())
            && crate::outputs::fsx::is_empty_dir(&path).unwrap_or(false);
        if !keep {
            remove_all(&path)?;
        }
    }
    Ok(())
}

/// The name of the shared empty directory in `.hermetic/tmp/` (see `Plan::empty_dir`).
pub(crate) const EMPTY: &str = "empty";

impl ScratchPool {
    /// A pool creating its directories under `root`, which must exist.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A clean scratch directory: a recycled one, or a new one named after `step` for anyone
    /// looking at `.hermetic/tmp/` during a run.
    pub fn lease(&self, step: &str) -> Result<Lease<'_>, PathError> {
        let recycled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let scratch = match recycled {
            Some(s) => s,
            None => Scratch::create(&self.root, step)?,
        };
        Ok(Lease {
            pool: self,
            scratch: Some(scratch),
        })
    }
}

impl Scratch {
    fn create(root: &Path, step: &str) -> Result<Self, PathError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{step}-"))
            .tempdir_in(root)
            .at("cannot create a directory in", root)?;
        let p = dir.path();
        let scratch = Self {
            out: p.join("out"),
            tmp: p.join("tmp"),
            inputs: p.join("in"),
            _dir: dir,
        };
        for d in [&scratch.out, &scratch.tmp, &scratch.inputs] {
            fs::create_dir(d).at("cannot create", d)?;
        }
        Ok(scratch)
    }

    /// Brings the directories back to their leased state: `out/`, `tmp/` and `in/` empty
    /// (made again if they are gone). Never follows a symlink the guest left behind.
    fn clean(&self, known_empty: &[PathBuf]) -> Result<(), PathError> {
        for d in [&self.out, &self.tmp, &self.inputs] {
            // The same paths, so compared as bytes: comparing `Path`s parses their components.
            // (A path spelt otherwise is cleaned again, which is only slower.)
            if !known_empty.iter().any(|k| k.as_os_str() == d.as_os_str()) {
                empty_dir(d)?;
            }
        }
        Ok(())
    }
}

impl Lease<'_> {
    /// The leased directories.
    pub fn get(&self) -> &Scratch {
        self.scratch
            .as_ref()
            .expect("a lease holds its scratch until recycled")
    }

    /// Empties the directories and returns them to the pool. If they cannot be emptied, they
    /// are removed instead, so a dirty directory is never leased again. The directories in
    /// `known_empty` are taken at their word and not looked at: pass only directories that
    /// were seen empty after anything that could write into them had ended.
    pub fn recycle(mut self, known_empty: &[PathBuf]) {
        let scratch = self.scratch.take().expect("a lease is recycled once");
        if scratch.clean(known_empty).is_ok() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(scratch);
        }
        // Otherwise dropping `scratch` removes it.
    }
}

/// Makes `dir` an empty real directory: removes what is inside, keeping the directory itself,
/// or makes it if it is gone. Anything else at `dir` (a symlink) is removed first.
fn empty_dir(dir: &Path) -> Result<(), PathError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            for entry in fs::read_dir(dir).at("cannot read", dir)? {
                remove_all(&entry.at("cannot read", dir)?.path())?;
            }
            return Ok(());
        }
        Ok(_) => remove_all(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).at("cannot inspect", dir),
    }
    fs::create_dir(dir).at("cannot create", dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sweeping_removes_leftovers_and_keeps_an_empty_empty_dir() {
        let state = tempfile::tempdir().unwrap();
        let tmp = state.path().join("tmp");
        sweep(&tmp).expect("a missing tmp is clean");
        fs::create_dir_all(tmp.join(EMPTY)).unwrap();
        fs::create_dir_all(tmp.join("step-abc/out/deep")).unwrap();
        fs::write(tmp.join("step-abc/out/deep/f"), "x").unwrap();
        fs::write(tmp.join("stray"), "x").unwrap();
        let canary = tempfile::tempdir().unwrap();
        fs::write(canary.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(canary.path(), tmp.join("link")).unwrap();
        let inode = fs::metadata(tmp.join(EMPTY)).unwrap().ino();

        sweep(&tmp).unwrap();
        let left: Vec<_> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [EMPTY]);
        assert_eq!(
            fs::metadata(tmp.join(EMPTY)).unwrap().ino(),
            inode,
            "kept, not made again"
        );
        assert!(
            canary.path().join("keep").exists(),
            "a symlink is removed, not followed"
        );

        // Something in it (never put there by hermetic): it goes too, so that no guest sees
        // it at `/in` or `/deps`.
        fs::write(tmp.join(EMPTY).join("x"), "x").unwrap();
        sweep(&tmp).unwrap();
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn a_recycled_scratch_comes_back_empty_and_is_reused() {
        let root = tempfile::tempdir().unwrap();
        let pool = ScratchPool::new(root.path().to_path_buf());
        let lease = pool.lease("a").unwrap();
        let first = lease.get().out.clone();
        fs::write(lease.get().out.join("left-behind"), "x").unwrap();
        fs::create_dir_all(lease.get().tmp.join("d/e")).unwrap();
        fs::create_dir(lease.get().inputs.join("in")).unwrap();
        fs::write(lease.get().inputs.join("in/staged.txt"), "x").unwrap();
        let canary = tempfile::tempdir().unwrap();
        fs::write(canary.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(canary.path(), lease.get().out.join("escape")).unwrap();
        let tmp_inode = fs::metadata(&lease.get().tmp).unwrap().ino();
        lease.recycle(&[]);

        let lease = pool.lease("b").unwrap();
        let s = lease.get();
        assert_eq!(s.out, first, "the scratch is reused");
        assert_eq!(fs::read_dir(&s.out).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&s.tmp).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&s.inputs).unwrap().count(), 0);
        assert_eq!(
            fs::metadata(&s.tmp).unwrap().ino(),
            tmp_inode,
            "kept, not made again"
        );
        assert!(
            canary.path().join("keep").exists(),
            "the symlink was not followed"
        );
        // An `out/` moved away by publishing is made again.
        let out = s.out.clone();
        fs::rename(&out, out.with_extension("published")).unwrap();
        lease.recycle(&[]);
        let lease = pool.lease("c").unwrap();
        assert_eq!(fs::read_dir(&lease.get().out).unwrap().count(), 0);
    }

    #[test]
    fn a_dropped_lease_removes_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let pool = ScratchPool::new(root.path().to_path_buf());
        let lease = pool.lease("a").unwrap();
        let dir = lease.get().out.parent().unwrap().to_path_buf();
        fs::write(lease.get().out.join("f"), "x").unwrap();
        drop(lease);
        assert!(!dir.exists());
        let lease = pool.lease("b").unwrap();
        assert_ne!(lease.get().out.parent().unwrap(), dir, "a new scratch");
    }

    #[test]
    fn two_leases_at_once_get_different_directories() {
        let root = tempfile::tempdir().unwrap();
        let pool = ScratchPool::new(root.path().to_path_buf());
        let (a, b) = (pool.lease("a").unwrap(), pool.lease("b").unwrap());
        assert_ne!(a.get().out, b.get().out);
        a.recycle(&[]);
        b.recycle(&[]);
        assert_eq!(pool.free.lock().unwrap().len(), 2);
    }
}
