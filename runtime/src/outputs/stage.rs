//! Staging a step's inputs into its per-attempt directory, and the view its dependencies'
//! outputs are mounted over.

use std::fs;
use std::path::{Path, PathBuf};

use super::fsx::{PathContext, PathError, copy_file_hashed, create_dir_all};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// An I/O error, with its path.
    #[error(transparent)]
    Io(#[from] PathError),
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

/// The directory mounted read-only at a step's `/deps`: one empty directory per dependency
/// name, over which each dependency's published outputs are mounted read-only as
/// `/deps/<name>`, so that listing `/deps` shows every dependency and a dependency that
/// published nothing is an empty directory. Nothing is copied.
///
/// Every step with the same dependency names shares one view, `<root>/deps-<digest of the
/// names>/`, made once (atomically: built under a temporary name, then renamed) and kept for
/// later runs: it depends on nothing but the names, and creating directories is what a
/// dependent no-op step spent most of its time on (ext4 looks for a free inode among recently
/// deleted ones).
pub fn dependency_view(root: &Path, names: &[&str]) -> Result<PathBuf, StageError> {
    let mut hasher = blake3::Hasher::new();
    for name in names {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
    }
    let digest = hasher.finalize().to_hex();
    let view = root.join(format!("deps-{}", &digest[..16]));
    if fs::symlink_metadata(&view).is_ok() {
        return Ok(view);
    }
    create_dir_all(root)?;
    let building = tempfile::Builder::new()
        .prefix(".deps-")
        .tempdir_in(root)
        .at("cannot create a directory in", root)?;
    for name in names {
        let dir = building.path().join(name);
        fs::create_dir(&dir).at("cannot create directory", &dir)?;
    }
    let building = building.keep();
    match fs::rename(&building, &view) {
        Ok(()) => Ok(view),
        // Another worker made the same view first: use it.
        Err(_) if fs::symlink_metadata(&view).is_ok() => {
            let _ = fs::remove_dir_all(&building);
            Ok(view)
        }
        Err(e) => Err(StageError::Io(PathError {
            action: "cannot create",
            path: view,
            source: e,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_view_lists_each_dependency_and_is_shared() {
        let root = tempfile::tempdir().unwrap();
        let view = dependency_view(root.path(), &["build", "lint"]).unwrap();
        let mut names: Vec<String> = fs::read_dir(&view)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["build", "lint"]);
        assert!(fs::read_dir(view.join("build")).unwrap().next().is_none());
        // The same names: the same view, made once; other names: another.
        assert_eq!(
            dependency_view(root.path(), &["build", "lint"]).unwrap(),
            view
        );
        assert_ne!(dependency_view(root.path(), &["build"]).unwrap(), view);
        // Nothing is left under a temporary name.
        let leftovers = fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
