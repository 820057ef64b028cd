//! Writing lockfiles atomically, and only when they change.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::read::read_text;
use crate::{FORMAT_VERSION, Lockfile, LockfileError};

impl Lockfile {
    /// Writes the lockfile to `path` if its bytes differ from what is there, and returns whether
    /// it wrote.
    ///
    /// An unchanged file is not touched, so it keeps its modification time. A changed one is
    /// replaced atomically: the new contents go to a temporary file in the same directory, which
    /// is synced, renamed over `path`, and the directory synced, so readers and crashes see
    /// either the old lockfile or the new one. A replaced file keeps its permissions.
    ///
    /// A file at `path` that does not parse as a lockfile — malformed, or written by a newer
    /// hermetic — is never overwritten: its parse error is returned and the file is left alone.
    /// Nor is a lockfile written that would not read back ([`LockfileError::Invalid`]): one whose
    /// `version` is not [`FORMAT_VERSION`] or with two entries of the same name. Exact duplicate
    /// entries are dropped, as by [`Lockfile::normalize`].
    pub fn write_if_changed(&self, path: &Path) -> Result<bool, LockfileError> {
        let mut normalized = self.clone();
        normalized.normalize();
        normalized
            .check_writable()
            .map_err(|message| LockfileError::Invalid {
                path: path.to_owned(),
                message,
            })?;
        let text = normalized.render();
        let permissions = match read_text(path)? {
            Some(existing) if existing == text => return Ok(false),
            Some(existing) => {
                Lockfile::parse(&existing, path)?;
                // The file was just read, so this fails only in a race; the default is fine then.
                fs::metadata(path)
                    .ok()
                    .map(|metadata| metadata.permissions())
            }
            None => None,
        };
        write_atomically(path, text.as_bytes(), permissions).map_err(|source| {
            LockfileError::Write {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(true)
    }

    /// Checks that the (normalized) lockfile would read back: the current format version and
    /// unique names.
    fn check_writable(&self) -> Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "its format version is {}, but this hermetic writes format {FORMAT_VERSION}",
                self.version
            ));
        }
        let tasks = self.tasks.iter().map(|task| ("task", &task.name));
        let modules = self.modules.iter().map(|module| ("module", &module.path));
        let steps = self.steps.iter().map(|step| ("step", &step.name));
        let mut seen = HashSet::new();
        for (kind, id) in tasks.chain(modules).chain(steps) {
            if !seen.insert((kind, id)) {
                return Err(format!("duplicate {kind} `{id}`"));
            }
        }
        Ok(())
    }
}

/// Replaces `path` with `contents` via a synced temporary file in the same directory.
fn write_atomically(
    path: &Path,
    contents: &[u8],
    permissions: Option<Permissions>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let (temp_path, mut file) = create_temp_file(dir, file_name)?;
    let result = (|| {
        file.write_all(contents)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)
    })();
    if let Err(error) = result {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    sync_dir(dir)
}

/// Creates a new, uniquely named file `.<file_name>.<pid>.<n>.tmp` in `dir`.
fn create_temp_file(dir: &Path, file_name: &OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.{n}.tmp", process::id()));
        let temp_path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            // Left behind by a crashed process that had the same id; try the next name.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Elsewhere there is no portable way to sync a directory; the rename is still atomic.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
