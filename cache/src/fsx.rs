//! Filesystem helpers: errors that always name their path, symlink-refusing opens, and
//! directory fsync.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An I/O error together with what was being done and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{}`: {source}", path.display())]
pub struct PathError {
    /// What was being done, e.g. "cannot read".
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// The kind of the underlying I/O error.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// Whether the underlying error is "not found".
    pub fn is_not_found(&self) -> bool {
        self.kind() == io::ErrorKind::NotFound
    }
}

/// Attaches an action and a path to an `io::Result`.
pub(crate) trait PathContext<T> {
    /// Wraps the error in a [`PathError`].
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> PathContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Opens `path` for reading without following a symlink in its last component and without
/// blocking on a fifo, and checks through the open handle that it is a regular file.
///
/// Returns the file and its length at open time. A symlink fails with the OS error for
/// `O_NOFOLLOW` (`ELOOP`); anything else that is not a regular file fails with
/// [`io::ErrorKind::InvalidInput`].
pub(crate) fn open_regular_nofollow(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta.len()))
}

/// Flushes a directory's entries (a completed rename or create inside it) to stable storage.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), PathError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("cannot sync directory", dir)
}

/// Removes `path` if it exists; a missing file is not an error. Returns whether it was removed.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<bool, PathError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("cannot remove", path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_error_names_action_and_path() {
        let err = std::fs::read("/nonexistent/hermetic-x")
            .at("cannot read", Path::new("/nonexistent/hermetic-x"))
            .unwrap_err();
        assert!(err.is_not_found());
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot read `/nonexistent/hermetic-x`: "),
            "{msg}"
        );
    }

    #[test]
    fn open_regular_refuses_symlink_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"abc").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(open_regular_nofollow(&target).unwrap().1, 3);
        assert!(open_regular_nofollow(&link).is_err());
        let err = open_regular_nofollow(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
