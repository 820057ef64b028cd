//! Small filesystem helpers that never follow symlinks and always name the path in errors.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An I/O error together with the path it happened on.
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

/// Attaches a path and an action to an `io::Result`.
pub trait PathContext<T> {
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

/// Opens a regular file for reading, refusing to follow a symlink in the last component.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Copies the regular file `from` to `to` (created, must not exist), without following a
/// symlink at `from`. Returns the number of bytes copied.
pub fn copy_file_nofollow(from: &Path, to: &Path) -> Result<u64, PathError> {
    let (mut src, mut dst) = open_copy_pair(from, to)?;
    io::copy(&mut src, &mut dst).at("cannot copy", from)
}

/// Like [`copy_file_nofollow`], also returning the blake3 digest of the bytes.
pub fn copy_file_hashed(
    from: &Path,
    to: &Path,
) -> Result<(u64, hermetic_cache::Digest), PathError> {
    use std::io::{Read, Write};
    let (mut src, mut dst) = open_copy_pair(from, to)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        let n = src.read(&mut buf).at("cannot read", from)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).at("cannot write", to)?;
        total += n as u64;
    }
    Ok((total, hermetic_cache::Digest::from_hasher(hasher)))
}

/// Opens `from` for reading and creates `to` (which must not exist), following no symlink at
/// either end.
fn open_copy_pair(from: &Path, to: &Path) -> Result<(File, File), PathError> {
    let src = open_nofollow(from).at("cannot open", from)?;
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)
        .at("cannot create", to)?;
    Ok((src, dst))
}

/// Whether `dir` is a directory (not a symlink to one) with no entries. On Linux it costs
/// `open`, two `getdents` into a buffer on the stack and `close`, without the `fstat` and the
/// allocations of `std::fs::read_dir`: it runs twice per step.
pub fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags, RawDir};
        use std::mem::MaybeUninit;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(dir, flags, Mode::empty())?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
        let mut entries = RawDir::new(&fd, &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        if !fs::symlink_metadata(dir)?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(fs::read_dir(dir)?.next().is_none())
    }
}

/// Creates `dir` and its parents.
pub fn create_dir_all(dir: &Path) -> Result<(), PathError> {
    fs::create_dir_all(dir).at("cannot create directory", dir)
}

/// Removes `path` (a file or a directory tree) if it exists. Never follows symlinks.
pub fn remove_all(path: &Path) -> Result<(), PathError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("cannot inspect", path),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).at("cannot remove", path),
        Ok(_) => fs::remove_file(path).at("cannot remove", path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_is_told_from_a_used_one_and_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        fs::create_dir(&dir).unwrap();
        assert!(is_empty_dir(&dir).unwrap());
        fs::create_dir(dir.join("sub")).unwrap();
        assert!(!is_empty_dir(&dir).unwrap());
        fs::remove_dir(dir.join("sub")).unwrap();
        fs::write(dir.join(".hidden"), "x").unwrap();
        assert!(!is_empty_dir(&dir).unwrap());
        // Many entries, more than one read's worth.
        fs::remove_file(dir.join(".hidden")).unwrap();
        for i in 0..300 {
            fs::write(dir.join(format!("file-with-a-long-name-{i:04}")), "").unwrap();
        }
        assert!(!is_empty_dir(&dir).unwrap());
        // A symlink to an empty directory is not one.
        let empty = t.path().join("empty");
        fs::create_dir(&empty).unwrap();
        std::os::unix::fs::symlink(&empty, t.path().join("link")).unwrap();
        assert!(is_empty_dir(&t.path().join("link")).is_err());
        assert!(is_empty_dir(&t.path().join("missing")).is_err());
    }
}
