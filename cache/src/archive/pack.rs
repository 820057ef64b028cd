//! [`pack_dir`]: a directory to deterministic archive bytes.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::{ArchiveError, ZSTD_LEVEL};
use crate::fsx::{self, PathContext};
use crate::{Digest, FileEntry};

/// One directory or file found under the root.
struct Item {
    /// Relative, `/`-separated path.
    rel: String,
    /// Path on disk.
    full: PathBuf,
    is_dir: bool,
}

/// Packs every regular file and directory under `root` (not `root` itself) into a
/// deterministic tar+zstd archive (format in the [module documentation](super)).
///
/// Returns the archive bytes and the files it holds, sorted by path, with their digests and
/// sizes as read while packing. Fails on a symlink, fifo, socket or device anywhere under
/// `root`, on a name that is not UTF-8 or contains a backslash, and on a file whose size
/// changes while it is read. `root` itself may be a symlink to a directory.
pub fn pack_dir(root: &Path) -> Result<(Vec<u8>, Vec<FileEntry>), ArchiveError> {
    let meta = fs::metadata(root).at("cannot read", root)?;
    if !meta.is_dir() {
        return Err(ArchiveError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut items = walk(root)?;
    items.sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));

    let mut builder = tar::Builder::new(Sink::Buffer(Vec::new()));
    let mut files = Vec::new();
    for item in &items {
        if item.is_dir {
            let mut header = base_header(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut header, &item.rel, io::empty())
                .map_err(ArchiveError::Write)?;
        } else {
            files.push(append_file(&mut builder, item)?);
        }
    }
    let sink = builder.into_inner().map_err(ArchiveError::Write)?;
    let bytes = sink.finish().map_err(ArchiveError::Write)?;
    Ok((bytes, files))
}

/// Up to this many bytes of tar stream, an archive is compressed in one call; above, it is
/// streamed. Part of the format: the two make different (equally valid) frames.
pub(super) const ONE_SHOT_MAX: usize = 1 << 20;

/// Where the tar stream goes: a buffer while it is small, then a zstd stream.
///
/// Most outputs are small, and compressing them in one call lets zstd size its tables to the
/// input; a stream of unknown size starts with tables for megabytes, and clearing them was
/// most of the cost of packing a small output.
enum Sink {
    Buffer(Vec<u8>),
    Stream(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Sink {
    /// The zstd frame of everything written.
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Buffer(tar) => compress_one_shot(&tar),
            Self::Stream(encoder) => encoder.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Buffer(tar) if tar.len() + buf.len() <= ONE_SHOT_MAX => {
                tar.extend_from_slice(buf);
                Ok(buf.len())
            }
            Self::Buffer(tar) => {
                let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                encoder.include_checksum(true)?;
                encoder.write_all(tar)?;
                encoder.write_all(buf)?;
                *self = Self::Stream(encoder);
                Ok(buf.len())
            }
            Self::Stream(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Buffer(_) => Ok(()),
            Self::Stream(encoder) => encoder.flush(),
        }
    }
}

/// One zstd frame of `tar` (level [`ZSTD_LEVEL`], content checksum on, content size
/// recorded), made with this thread's reusable compression context.
fn compress_one_shot(tar: &[u8]) -> io::Result<Vec<u8>> {
    use std::cell::RefCell;
    thread_local! {
        static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { RefCell::new(None) };
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match &mut *slot {
            Some(c) => c,
            None => {
                let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                c.include_checksum(true)?;
                slot.insert(c)
            }
        };
        compressor.compress(tar)
    })
}

/// A header with every field that [`pack_dir`] fixes; the path and checksum are set by
/// `append_data`.
fn base_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Appends one regular file, hashing it on the way.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &Item,
) -> Result<FileEntry, ArchiveError> {
    let (file, len) = fsx::open_regular_nofollow(&item.full).map_err(|e| {
        // The walk saw a regular file; if it is now a symlink, say so.
        if fs::symlink_metadata(&item.full).is_ok_and(|m| m.file_type().is_symlink()) {
            ArchiveError::Symlink {
                path: item.full.clone(),
            }
        } else {
            ArchiveError::Io(fsx::PathError {
                action: "cannot open",
                path: item.full.clone(),
                source: e,
            })
        }
    })?;
    let mut reader = HashingReader {
        inner: file.take(len),
        hasher: blake3::Hasher::new(),
        count: 0,
        error: None,
    };
    let mut header = base_header(tar::EntryType::Regular, 0o644, len);
    let appended = builder.append_data(&mut header, &item.rel, &mut reader);
    if let Some(source) = reader.error.take() {
        return Err(ArchiveError::Io(fsx::PathError {
            action: "cannot read",
            path: item.full.clone(),
            source,
        }));
    }
    appended.map_err(ArchiveError::Write)?;
    // Shrunk (fewer bytes than the header says) or grown (bytes beyond it).
    let mut file = reader.inner.into_inner();
    let mut probe = [0u8; 1];
    let grew = file.read(&mut probe).at("cannot read", &item.full)? > 0;
    if reader.count != len || grew {
        return Err(ArchiveError::Changed {
            path: item.full.clone(),
        });
    }
    Ok(FileEntry {
        path: item.rel.clone(),
        digest: Digest::from_hasher(reader.hasher),
        size: len,
    })
}

/// Hashes what passes through; keeps the read error so that it can be told apart from an
/// error writing the archive.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

/// Every directory and regular file under `root`, in no particular order.
fn walk(root: &Path) -> Result<Vec<Item>, ArchiveError> {
    let mut items = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = pending.pop() {
        let read = fs::read_dir(&dir).at("cannot read directory", &dir)?;
        for entry in read {
            let entry = entry.at("cannot read directory", &dir)?;
            let full = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(ArchiveError::UnsupportedName {
                    path: full,
                    reason: "its name is not valid UTF-8",
                });
            };
            if name.contains('\\') {
                return Err(ArchiveError::UnsupportedName {
                    path: full,
                    reason: "its name contains a backslash",
                });
            }
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            // `DirEntry::file_type` does not follow symlinks.
            let kind = entry.file_type().at("cannot read the type of", &full)?;
            if kind.is_symlink() {
                return Err(ArchiveError::Symlink { path: full });
            } else if kind.is_dir() {
                items.push(Item {
                    rel: rel.clone(),
                    full: full.clone(),
                    is_dir: true,
                });
                pending.push((full, rel));
            } else if kind.is_file() {
                items.push(Item {
                    rel,
                    full,
                    is_dir: false,
                });
            } else {
                let kind = if kind.is_fifo() {
                    "fifo"
                } else if kind.is_socket() {
                    "socket"
                } else if kind.is_block_device() {
                    "block device"
                } else if kind.is_char_device() {
                    "character device"
                } else {
                    "special file"
                };
                return Err(ArchiveError::SpecialFile { path: full, kind });
            }
        }
    }
    Ok(items)
}
