//! Deterministic tar+zstd archives of output directories, and their hardened extraction.
//!
//! # Format
//!
//! An archive is one zstd frame (level [`ZSTD_LEVEL`], content checksum on) holding a tar
//! stream written by [`pack_dir`]. A tar stream of at most 1 MiB is compressed in one call,
//! so its frame also records the content size; a larger one is streamed:
//!
//! - one entry per directory and regular file under the root, sorted by relative path in byte
//!   order; directories are named without a trailing `/`;
//! - GNU headers only; a path longer than the 100-byte name field is preceded by a GNU
//!   long-name (`L`) entry named `././@LongLink`;
//! - mtime 0, uid/gid 0, empty user and group names, mode `0o644` for files and `0o755` for
//!   directories; nothing else about the file on disk (timestamps, permissions, owner,
//!   extended attributes) reaches the archive;
//! - the stream ends with the two zero blocks of the tar end-of-archive marker.
//!
//! The same tree therefore always packs to the same bytes, on any machine with the same zstd
//! library version, so an archive's blake3 is a stable content address.
//!
//! # Extraction
//!
//! [`unpack()`] trusts nothing in the archive: see its documentation for what it rejects. It
//! never writes outside the destination, which it creates and removes again on error.

mod pack;
mod unpack;

use std::io;
use std::path::PathBuf;

pub use pack::pack_dir;
pub use unpack::unpack;

use crate::fsx::PathError;

/// The zstd level of [`pack_dir`]. Part of the format: changing it changes archive bytes.
pub const ZSTD_LEVEL: i32 = 3;

/// Caps that [`unpack()`] enforces on an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most bytes the decompressed tar stream (headers and contents) may have.
    pub max_bytes: u64,
    /// Most entries (files and directories; the GNU long-name record that may precede each
    /// one is not counted separately) the archive may have.
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    /// 4 GiB and 100 000 entries.
    fn default() -> Self {
        Self {
            max_bytes: 4 << 30,
            max_entries: 100_000,
        }
    }
}

/// Why an archive could not be packed or unpacked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A filesystem error, with its path.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The directory to pack is not a directory.
    #[error("cannot pack `{}`: it is not a directory", path.display())]
    NotADirectory {
        /// The would-be root.
        path: PathBuf,
    },
    /// A symlink under the directory to pack.
    #[error("cannot pack `{}`: it is a symlink; archives hold regular files and directories only", path.display())]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// A fifo, socket or device under the directory to pack.
    #[error("cannot pack `{}`: it is a {kind}; archives hold regular files and directories only", path.display())]
    SpecialFile {
        /// The file.
        path: PathBuf,
        /// What it is ("fifo", "socket", ...).
        kind: &'static str,
    },
    /// A file name that cannot be stored (not UTF-8, or containing a backslash).
    #[error("cannot pack `{}`: {reason}", path.display())]
    UnsupportedName {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A file changed size while it was being packed.
    #[error("cannot pack `{}`: it changed while it was being read", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// Writing the archive itself failed (compression error).
    #[error("cannot write the archive: {0}")]
    Write(#[source] io::Error),
    /// The destination of [`unpack()`] exists already.
    #[error("cannot unpack into `{}`: it already exists", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The archive cannot be decoded: bad zstd frame, bad tar header, truncated data.
    #[error("the archive is corrupt: {0}")]
    Corrupt(#[source] io::Error),
    /// An entry of a type that is never extracted (link, device, fifo, pax header, ...).
    #[error(
        "archive entry `{entry}` is rejected: it is a {kind}; only regular files and directories are extracted"
    )]
    UnsupportedEntry {
        /// The entry's path (lossy UTF-8).
        entry: String,
        /// What it is.
        kind: String,
    },
    /// An entry whose path could escape the destination or cannot be represented.
    #[error("archive entry `{entry}` is rejected: {reason}")]
    UnsafePath {
        /// The entry's path (lossy UTF-8, control characters escaped).
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// A path that appears twice.
    #[error("archive entry `{entry}` is rejected: the path appears twice in the archive")]
    Duplicate {
        /// The entry's path.
        entry: String,
    },
    /// A path that clashes with an earlier entry (a file where a directory is needed, or the
    /// reverse).
    #[error("archive entry `{entry}` is rejected: {reason}")]
    Conflict {
        /// The entry's path.
        entry: String,
        /// Why.
        reason: String,
    },
    /// More entries than [`ArchiveLimits::max_entries`].
    #[error("the archive has more than {limit} entries (tar bomb?)")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// More decompressed bytes than [`ArchiveLimits::max_bytes`].
    #[error("the archive decompresses to more than {limit} bytes (zstd bomb?)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

#[cfg(test)]
mod tests;
