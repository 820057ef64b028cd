//! Staging a step's inputs and dependencies into its per-attempt directory.

use std::fs;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::fsx::{PathContext, PathError, copy_file_hashed, copy_file_nofollow, create_dir_all};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// An I/O error, with its path.
    #[error(transparent)]
    Io(#[from] PathError),
    /// A symlink where a regular file or directory was expected.
    #[error("`{}` is a symlink; hermetic stages regular files and directories only", .0.display())]
    Symlink(PathBuf),
    /// An input whose content changed after it was hashed for the action key.
    #[error("input `{0}` changed during the run; run again once it is no longer being written")]
    Changed(String),
}

/// Copies each `(relative path, host file)` into `dest/<relative path>`, hashing the bytes as
/// they are copied. `expected` holds the blake3 digest each file had when the step's action key
/// was computed, in the same order; a file that changed since is an error, because the step
/// would otherwise run on content its key does not describe.
pub fn stage_files(
    files: &[(String, PathBuf)],
    expected: &[hermetic_cache::Digest],
    dest: &Path,
) -> Result<u64, StageError> {
    let mut bytes = 0;
    for (i, (rel, host)) in files.iter().enumerate() {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            create_dir_all(parent)?;
        }
        let (size, digest) = copy_file_hashed(host, &to)?;
        if let Some(want) = expected.get(i)
            && *want != digest
        {
            return Err(StageError::Changed(rel.clone()));
        }
        bytes += size;
    }
    Ok(bytes)
}

/// Copies the tree `from` into `dest` (created), regular files and directories only.
pub fn stage_tree(from: &Path, dest: &Path) -> Result<u64, StageError> {
    create_dir_all(dest)?;
    if fs::symlink_metadata(from).is_err() {
        return Ok(0);
    }
    let mut bytes = 0;
    for entry in WalkDir::new(from)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(from).to_path_buf();
            PathError {
                action: "cannot read",
                path,
                source: e.into(),
            }
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let to = dest.join(rel);
        let ft = entry.file_type();
        if ft.is_symlink() {
            return Err(StageError::Symlink(entry.path().to_path_buf()));
        } else if ft.is_dir() {
            fs::create_dir(&to).at("cannot create directory", &to)?;
        } else {
            bytes += copy_file_nofollow(entry.path(), &to)?;
        }
    }
    Ok(bytes)
}
