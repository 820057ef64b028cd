//! Staging a step's inputs and dependencies into its per-attempt directory.

use std::fs;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::fsx::{PathContext, PathError, copy_file_nofollow, create_dir_all};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// An I/O error, with its path.
    #[error(transparent)]
    Io(#[from] PathError),
    /// A symlink where a regular file or directory was expected.
    #[error("`{}` is a symlink; hermetic stages regular files and directories only", .0.display())]
    Symlink(PathBuf),
}

/// Copies each `(relative path, host file)` into `dest/<relative path>`.
pub fn stage_files(files: &[(String, PathBuf)], dest: &Path) -> Result<u64, StageError> {
    let mut bytes = 0;
    for (rel, host) in files {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            create_dir_all(parent)?;
        }
        bytes += copy_file_nofollow(host, &to)?;
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
