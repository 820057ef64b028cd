//! [`unpack`]: hardened extraction of an archive into a new directory.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

use super::{ArchiveError, ArchiveLimits};
use crate::fsx::PathContext;
use crate::tree::check_relative_path;
use crate::{Digest, FileEntry};

/// Longest GNU long-name record accepted (Linux `PATH_MAX` plus its NUL).
const MAX_LONG_NAME: u64 = 4097;
/// Copy buffer for file contents.
const COPY_BUFFER: usize = 256 * 1024;

/// Unpacks `bytes` (a tar+zstd archive) into `dest`, which must not exist yet: it is created,
/// along with any missing parent.
///
/// Only regular files and directories are extracted; every other entry type is rejected
/// (symlinks, hard links, devices, fifos, sparse files, pax headers). A GNU long-name record
/// is honoured for the entry after it. An entry is also rejected when its path is not valid
/// UTF-8 or breaks [`check_relative_path`] (absolute, `..`, `.`, empty component, NUL,
/// backslash; one trailing `/` is allowed on a directory), when the path appears twice, or
/// when it clashes with an earlier entry (a file below a file, a file where a directory was
/// created). The decompressed stream is cut off after [`ArchiveLimits::max_bytes`] (an entry
/// declaring more than what is left is refused before any of it is read) and the archive may
/// have at most [`ArchiveLimits::max_entries`] entries.
///
/// Nothing is ever written outside `dest`: files are created with `O_CREAT | O_EXCL`, and
/// their parents are directories this call created (no symlink is ever created). Files get
/// the default mode (`0o666` minus the umask) and are not fsynced; the caller publishes
/// the result. On any error the partially written `dest` is removed.
///
/// Returns the files written, sorted by path, with the digests of the bytes written.
pub fn unpack(
    bytes: &[u8],
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<Vec<FileEntry>, ArchiveError> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).at("cannot create directory", parent)?;
    }
    match fs::create_dir(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(ArchiveError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        Err(e) => {
            Err::<(), _>(e).at("cannot create directory", dest)?;
        }
    }
    let result = Extraction::new(dest, limits).run(bytes);
    if result.is_err()
        && let Err(e) = fs::remove_dir_all(dest)
    {
        tracing::warn!(path = %dest.display(), error = %e, "cannot remove a partly unpacked archive");
    }
    result
}

/// The state of one extraction.
struct Extraction<'a> {
    dest: &'a Path,
    limits: &'a ArchiveLimits,
    budget: Rc<Budget>,
    /// Directories created so far (explicitly or as parents).
    dirs: HashSet<String>,
    /// Paths of the entries seen so far.
    seen: HashSet<String>,
    files: Vec<FileEntry>,
}

impl<'a> Extraction<'a> {
    fn new(dest: &'a Path, limits: &'a ArchiveLimits) -> Self {
        Self {
            dest,
            limits,
            budget: Rc::new(Budget {
                limit: limits.max_bytes,
                used: Cell::new(0),
                exceeded: Cell::new(false),
            }),
            dirs: HashSet::new(),
            seen: HashSet::new(),
            files: Vec::new(),
        }
    }

    fn run(mut self, bytes: &[u8]) -> Result<Vec<FileEntry>, ArchiveError> {
        let decoder =
            zstd::stream::read::Decoder::with_buffer(bytes).map_err(ArchiveError::Corrupt)?;
        let reader = LimitedReader {
            inner: decoder,
            budget: Rc::clone(&self.budget),
        };
        let mut archive = tar::Archive::new(reader);
        // Raw: we see every header, including GNU long-name records, and handle them here
        // with our own limits instead of the tar crate's unbounded buffering.
        let entries = archive.entries().map_err(|e| self.read_error(e))?.raw(true);
        let mut count = 0u64;
        let mut long_name: Option<Vec<u8>> = None;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_error(e))?;
            let kind = entry.header().entry_type();
            if kind.is_gnu_longname() {
                // Not counted: at most one precedes each counted entry, and its bytes count.
                if long_name.is_some() {
                    return Err(corrupt("two GNU long-name records in a row"));
                }
                long_name = Some(self.read_long_name(&mut entry)?);
                continue;
            }
            count += 1;
            if count > self.limits.max_entries {
                return Err(ArchiveError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            let raw_path = match long_name.take() {
                Some(name) => name,
                None => entry.path_bytes().into_owned(),
            };
            let shown = show(&raw_path);
            let is_dir = match kind {
                tar::EntryType::Regular => false,
                tar::EntryType::Directory => true,
                other => {
                    return Err(ArchiveError::UnsupportedEntry {
                        entry: shown,
                        kind: describe_type(other),
                    });
                }
            };
            let path = checked_path(&raw_path, is_dir, &shown)?;
            if !self.seen.insert(path.clone()) {
                return Err(ArchiveError::Duplicate { entry: path });
            }
            if is_dir {
                self.create_dir(&path)?;
            } else {
                let written = self.write_file(&path, &mut entry)?;
                self.files.push(written);
            }
        }
        if long_name.is_some() {
            return Err(corrupt(
                "a GNU long-name record is not followed by an entry",
            ));
        }
        self.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Ok(self.files)
    }

    /// Reads a GNU long-name record: the name without its terminating NULs.
    fn read_long_name<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Vec<u8>, ArchiveError> {
        if entry.size() > MAX_LONG_NAME {
            return Err(ArchiveError::UnsafePath {
                entry: "././@LongLink".to_owned(),
                reason: "the GNU long name is longer than 4096 bytes",
            });
        }
        let mut name = Vec::new();
        entry
            .read_to_end(&mut name)
            .map_err(|e| self.read_error(e))?;
        // The record ends with a NUL (padding); a NUL inside the name is rejected later.
        while name.last() == Some(&0) {
            name.pop();
        }
        Ok(name)
    }

    /// Creates directory `path` (and its parents) unless an earlier entry created it.
    fn create_dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        if self.dirs.contains(path) {
            return Ok(());
        }
        self.create_parents(path)?;
        let full = self.dest.join(path);
        fs::create_dir(&full).at("cannot create directory", &full)?;
        self.dirs.insert(path.to_owned());
        Ok(())
    }

    /// Creates the missing ancestors of `path`, which must not be files.
    fn create_parents(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let ancestor = &path[..end];
            if !self.dirs.contains(ancestor) {
                if self.seen.contains(ancestor) {
                    return Err(ArchiveError::Conflict {
                        entry: path.to_owned(),
                        reason: format!("its parent `{ancestor}` is a file"),
                    });
                }
                let full = self.dest.join(ancestor);
                fs::create_dir(&full).at("cannot create directory", &full)?;
                self.dirs.insert(ancestor.to_owned());
            }
            end += 1;
        }
        Ok(())
    }

    /// Writes one regular file, hashing what is written.
    fn write_file<R: Read>(
        &mut self,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<FileEntry, ArchiveError> {
        if self.dirs.contains(path) {
            return Err(ArchiveError::Conflict {
                entry: path.to_owned(),
                reason: "an earlier entry made it a directory".to_owned(),
            });
        }
        let size = entry.size();
        if size > self.budget.remaining() {
            return Err(ArchiveError::TooLarge {
                limit: self.limits.max_bytes,
            });
        }
        self.create_parents(path)?;
        let full = self.dest.join(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&full)
            .at("cannot create", &full)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; COPY_BUFFER.min(size as usize).max(1)];
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).at("cannot write", &full)?;
            written += n as u64;
        }
        if written != size {
            return Err(corrupt(&format!(
                "entry `{path}` ends after {written} of its {size} bytes"
            )));
        }
        Ok(FileEntry {
            path: path.to_owned(),
            digest: Digest::from_hasher(hasher),
            size,
        })
    }

    /// An error reading the stream: the size limit if the limiter cut it off, else corruption.
    fn read_error(&self, e: io::Error) -> ArchiveError {
        if self.budget.exceeded.get() {
            ArchiveError::TooLarge {
                limit: self.limits.max_bytes,
            }
        } else {
            ArchiveError::Corrupt(e)
        }
    }
}

fn corrupt(message: &str) -> ArchiveError {
    ArchiveError::Corrupt(io::Error::new(io::ErrorKind::InvalidData, message))
}

/// Validates an entry path; returns it without a directory's trailing `/`.
fn checked_path(raw: &[u8], is_dir: bool, shown: &str) -> Result<String, ArchiveError> {
    let unsafe_path = |reason| ArchiveError::UnsafePath {
        entry: shown.to_owned(),
        reason,
    };
    let Ok(path) = std::str::from_utf8(raw) else {
        return Err(unsafe_path("the path is not valid UTF-8"));
    };
    let path = match path.strip_suffix('/') {
        Some(stripped) if is_dir => stripped,
        _ => path,
    };
    check_relative_path(path).map_err(unsafe_path)?;
    Ok(path.to_owned())
}

/// A printable form of a raw entry path: lossy UTF-8 with control characters escaped.
fn show(raw: &[u8]) -> String {
    let mut shown = String::with_capacity(raw.len());
    for c in String::from_utf8_lossy(raw).chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

fn describe_type(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symlink".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::Continuous => "contiguous file".into(),
        tar::EntryType::GNUSparse => "GNU sparse file".into(),
        tar::EntryType::GNULongLink => "GNU long link name".into(),
        tar::EntryType::XHeader => "pax extended header".into(),
        tar::EntryType::XGlobalHeader => "pax global header".into(),
        other => format!("entry of unknown type {:?}", char::from(other.as_byte())),
    }
}

/// How much of the decompressed stream may still be read.
struct Budget {
    limit: u64,
    used: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used.get())
    }
}

/// Cuts the decompressed stream off after `budget.limit` bytes: reading more is an error
/// (and sets `exceeded`), so a bomb is never decompressed further than the limit.
struct LimitedReader<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.budget.remaining();
        if remaining == 0 {
            // At the limit: fine if the stream ends here, an error if it goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.budget.exceeded.set(true);
                    Err(io::Error::other("decompressed size limit exceeded"))
                }
            };
        }
        let len = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.budget.used.set(self.budget.used.get() + n as u64);
        Ok(n)
    }
}
