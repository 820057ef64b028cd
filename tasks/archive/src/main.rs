//! `archive` — a hermetic task that packs files into a deterministic `.tar.zst` archive, or
//! unpacks one safely.
//!
//! ```text
//! archive pack [--output FILE] [--strip N] [PATH...]
//! archive unpack [--into DIR] [--max-bytes N] [--max-entries N] ARCHIVE
//! ```
//!
//! # `pack`
//!
//! Each `PATH` is a file or directory inside the sandbox, such as `/in/docs` or `/deps/build`; a
//! relative path is taken relative to `/in`. A directory stands for every file under it. With no
//! `PATH`, every file under `/in` is packed. The archive is written to `/out/FILE` (default
//! `/out/archive.tar.zst`).
//!
//! A file is stored under its path relative to its mount: `/in/docs/a.md` as `docs/a.md`, and
//! `/deps/build/app.wasm` as `build/app.wasm` (the dependency's name comes first). `--strip N`
//! removes the first `N` components (so `--strip 1 /deps/build` stores `app.wasm`). Two
//! different files with the same stored path are an error.
//!
//! The archive depends on nothing but the files' paths and bytes: entries are sorted by path,
//! every directory that holds a file gets its own entry before its contents (empty directories
//! are not stored), and every entry has mtime 0, uid and gid 0, no user or group name, and mode
//! 0644 (files) or 0755 (directories). It is a GNU tar stream (long paths use GNU long-name
//! entries) in one zstd frame with a checksum, at `ruzstd`'s fastest level (about `zstd -1`),
//! so `tar --zstd -xf` and `zstd -d` read it.
//!
//! # `unpack`
//!
//! `ARCHIVE` is a `.tar.zst` file in the sandbox (a relative path is taken relative to `/in`).
//! It is unpacked into `/out/DIR` (default `/out`). Unpacking is strict, so an archive from
//! anywhere is safe to unpack:
//!
//! - only regular files and directories are allowed: a symbolic link, hard link, device or
//!   FIFO is an error (pax and GNU metadata entries are understood and skipped);
//! - a path that is absolute or has a `..` component is an error, and so is a path that
//!   appears twice;
//! - at most `max_entries` entries (default 100000) and `max_bytes` bytes of file contents
//!   (default 1 GiB) are unpacked; an archive that holds more is an error, caught before the
//!   first byte over the limit is written (a zip-bomb guard).
//!
//! File permissions and timestamps in the archive are ignored. The limits can be given as
//! options or as `params`; an option wins.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   bundle:
//!     task: archive
//!     depends_on: [build]
//!     args: [pack, --output, release.tar.zst, --strip, 1, /deps/build]
//!     outputs: [release.tar.zst]
//!   vendor:
//!     task: archive
//!     inputs: [vendor.tar.zst]
//!     args: [unpack, --into, vendor, vendor.tar.zst]
//!     params: { max_bytes: 268435456, max_entries: 20000 }
//!     outputs: [vendor/]
//! ```

use hermetic_sdk::select::{self as paths, Opt};
use hermetic_sdk::zstd;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hermetic_sdk::{Error, Mounts, Result};
use serde::Deserialize;

const USAGE: &str = "usage: archive pack [--output FILE] [--strip N] [PATH...] | \
                     archive unpack [--into DIR] [--max-bytes N] [--max-entries N] ARCHIVE";

/// The default archive, relative to `/out`.
const DEFAULT_OUTPUT: &str = "archive.tar.zst";
/// The default cap on the bytes of file contents unpacked.
const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// The default cap on the entries unpacked.
const DEFAULT_MAX_ENTRIES: u64 = 100_000;
/// Tar stream bytes allowed per entry beyond its contents (headers, long names, padding).
const ENTRY_OVERHEAD: u64 = 8 * 1024;

fn main() {
    hermetic_sdk::main(|args| {
        let params = hermetic_sdk::params()?;
        run(&Mounts::sandbox(), &args, &params)
    });
}

/// The step's `params:`, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `unpack`: the most bytes of file contents to unpack.
    max_bytes: Option<u64>,
    /// `unpack`: the most entries to unpack.
    max_entries: Option<u64>,
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Pack {
        /// The archive, relative to `/out`.
        output: PathBuf,
        /// How many leading components to remove from each stored path.
        strip: usize,
        /// Guest paths to pack; empty means every input.
        paths: Vec<String>,
    },
    Unpack {
        /// The archive's guest path.
        archive: String,
        /// Where to unpack, relative to `/out`; empty for `/out` itself.
        into: PathBuf,
        limits: Limits,
    },
}

/// The zip-bomb guard of `unpack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    max_bytes: u64,
    max_entries: u64,
}

fn parse_args(args: &[String], params: &Params) -> Result<Command> {
    let Some((command, args)) = args.split_first() else {
        return Err(Error::msg(format!("missing command; {USAGE}")));
    };
    let pack = match command.as_str() {
        "pack" => true,
        "unpack" => false,
        other => return Err(Error::msg(format!("unknown command {other:?}; {USAGE}"))),
    };
    const PACK: &[Opt] = &[
        Opt {
            names: &["--output", "-o"],
            value: true,
        },
        Opt {
            names: &["--strip"],
            value: true,
        },
    ];
    const UNPACK: &[Opt] = &[
        Opt {
            names: &["--into"],
            value: true,
        },
        Opt {
            names: &["--max-bytes"],
            value: true,
        },
        Opt {
            names: &["--max-entries"],
            value: true,
        },
    ];
    let opts = if pack { PACK } else { UNPACK };
    let mut parsed = paths::parse_options(args, opts, USAGE, &format!(" for {command}"))?;
    let paths_given = std::mem::take(&mut parsed.paths);
    if pack {
        return Ok(Command::Pack {
            output: match parsed.value("--output") {
                Some(value) => paths::relative_path("--output", value)?,
                None => PathBuf::from(DEFAULT_OUTPUT),
            },
            strip: match parsed.value("--strip") {
                Some(value) => paths::number("--strip", value, USAGE)?,
                None => 0,
            },
            paths: paths_given,
        });
    }
    let [archive] = <[String; 1]>::try_from(paths_given).map_err(|paths| {
        Error::msg(format!(
            "unpack needs exactly one ARCHIVE, not {}; {USAGE}",
            paths.len()
        ))
    })?;
    let limit = |flag: &str, param: Option<u64>, default: u64| match parsed.value(flag) {
        Some(value) => paths::number(flag, value, USAGE),
        None => Ok(param.unwrap_or(default)),
    };
    Ok(Command::Unpack {
        archive,
        into: match parsed.value("--into") {
            Some(value) => paths::relative_path("--into", value)?,
            None => PathBuf::new(),
        },
        limits: Limits {
            max_bytes: limit("--max-bytes", params.max_bytes, DEFAULT_MAX_BYTES)?,
            max_entries: limit("--max-entries", params.max_entries, DEFAULT_MAX_ENTRIES)?,
        },
    })
}

fn run(mounts: &Mounts, args: &[String], params: &Params) -> Result<()> {
    match parse_args(args, params)? {
        Command::Pack {
            output,
            strip,
            paths,
        } => {
            let entries = pack(mounts, &paths, strip, &output)?;
            hermetic_sdk::info!("packed {entries} entries into {}", output.display());
        }
        Command::Unpack {
            archive,
            into,
            limits,
        } => {
            let entries = unpack(mounts, &archive, &into, limits)?;
            hermetic_sdk::info!("unpacked {entries} entries from {archive}");
        }
    }
    Ok(())
}

/// Packs the files `paths` name into `/out/<output>`; returns the number of entries.
fn pack(mounts: &Mounts, paths: &[String], strip: usize, output: &Path) -> Result<usize> {
    let sources = paths::collect(mounts, paths, strip)?;
    // Every file, and every directory that holds one, sorted by path (so a directory comes
    // just before its contents).
    let mut entries: BTreeMap<PathBuf, Option<&paths::Source>> = BTreeMap::new();
    for source in &sources {
        for dir in source.name.ancestors().skip(1) {
            if dir.as_os_str().is_empty() {
                break;
            }
            if let Some(Some(file)) = entries.insert(dir.to_path_buf(), None) {
                return Err(both_file_and_dir(dir, &file.guest));
            }
        }
    }
    for source in &sources {
        if entries.insert(source.name.clone(), Some(source)).is_some() {
            return Err(both_file_and_dir(&source.name, &source.guest));
        }
    }

    // The tar stream goes to /tmp first: the encoder pulls its input from a reader.
    let tar_path = mounts.tmp("archive-pack.tar");
    if let Some(parent) = tar_path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let tar_file = File::create(&tar_path).map_err(|e| Error::io("create", &tar_path, e))?;
    let mut builder = tar::Builder::new(BufWriter::with_capacity(64 * 1024, tar_file));
    let total = sources.len() as u64;
    let mut done = 0;
    for (name, source) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match source {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(|e| Error::io("write", &tar_path, e))?;
            }
            Some(source) => {
                let file =
                    File::open(&source.path).map_err(|e| Error::io("open", &source.path, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| Error::io("inspect", &source.path, e))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                // A read error is reported as such; anything else is the tar file's.
                let failed_read = Rc::new(Cell::new(false));
                let reader = Exactly {
                    inner: BufReader::new(file),
                    left: size,
                    failed: failed_read.clone(),
                };
                builder
                    .append_data(&mut header, name, reader)
                    .map_err(|e| match failed_read.get() {
                        true => Error::io("read", &source.path, e),
                        false => Error::io("write", &tar_path, e),
                    })?;
                done += 1;
                hermetic_sdk::progress(done, Some(total));
            }
        }
    }
    let mut tar_out = builder
        .into_inner()
        .map_err(|e| Error::io("write", &tar_path, e))?;
    tar_out
        .flush()
        .map_err(|e| Error::io("write", &tar_path, e))?;
    drop(tar_out);

    let out_path = mounts.output(output);
    if let Some(parent) = out_path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let tar_in = File::open(&tar_path).map_err(|e| Error::io("open", &tar_path, e))?;
    let out = File::create(&out_path).map_err(|e| Error::io("create", &out_path, e))?;
    zstd::compress(
        BufReader::with_capacity(64 * 1024, tar_in),
        BufWriter::with_capacity(64 * 1024, out),
    )
    .map_err(|e| match e {
        zstd::StreamError::Read(e) => Error::io("read", &tar_path, e),
        zstd::StreamError::Write(e) => Error::io("write", &out_path, e),
    })?;
    fs::remove_file(&tar_path).map_err(|e| Error::io("remove", &tar_path, e))?;
    Ok(entries.len())
}

fn both_file_and_dir(name: &Path, guest: &Path) -> Error {
    Error::msg(format!(
        "{} would be both a file and a directory in the archive (from {})",
        name.display(),
        guest.display()
    ))
}

/// A file's contents, exactly `left` bytes of them: a file that changed size while being packed
/// is an error rather than a corrupt archive.
struct Exactly<R> {
    inner: R,
    left: u64,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fail = |message: &str| {
            self.failed.set(true);
            Err(io::Error::other(message.to_string()))
        };
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => fail("the file shrank while it was being packed"),
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed.set(true);
                Err(e)
            }
        }
    }
}

/// Unpacks `archive` into `/out/<into>`; returns the number of entries unpacked.
fn unpack(mounts: &Mounts, archive: &str, into: &Path, limits: Limits) -> Result<u64> {
    let (guest, _) = paths::mount_relative(archive)?;
    let path = mounts.resolve(&guest);
    let fail =
        |message: String| Error::msg(format!("cannot unpack {}: {message}", guest.display()));
    let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let stream_cap = limits
        .max_bytes
        .saturating_add(ENTRY_OVERHEAD.saturating_mul(limits.max_entries.saturating_add(2)));
    let over_cap = Rc::new(Cell::new(false));
    let stream = Capped {
        inner: zstd::Decoder::new(BufReader::with_capacity(64 * 1024, file)),
        left: stream_cap,
        over: over_cap.clone(),
    };
    // Why reading the archive failed, in words.
    let read_error = |e: io::Error| {
        if over_cap.get() {
            fail(format!(
                "it decompresses to more than {stream_cap} bytes, the most that \
                 max_entries {} and max_bytes {} allow",
                limits.max_entries, limits.max_bytes
            ))
        } else {
            fail(e.to_string())
        }
    };

    let mut tar = tar::Archive::new(stream);
    let mut seen = BTreeSet::new();
    let (mut entries, mut bytes) = (0u64, 0u64);
    let out_root = mounts.output(into);
    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let is_dir = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => false,
            tar::EntryType::Directory => true,
            // Metadata the tar reader has applied already.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(fail(format!(
                    "entry {name:?} is {}; only regular files and directories can be unpacked",
                    kind_name(other)
                )));
            }
        };
        entries += 1;
        if entries > limits.max_entries {
            return Err(fail(format!(
                "it has more than {} entries (max_entries)",
                limits.max_entries
            )));
        }
        let rel =
            safe_path(&entry.path_bytes()).map_err(|why| fail(format!("entry {name:?} {why}")))?;
        if rel.as_os_str().is_empty() {
            if is_dir {
                continue; // `./`
            }
            return Err(fail(format!("entry {name:?} has an empty path")));
        }
        if !seen.insert(rel.clone()) {
            return Err(fail(format!("entry {name:?} appears more than once")));
        }
        let dest = out_root.join(&rel);
        if is_dir {
            fs::create_dir_all(&dest).map_err(|e| Error::io("create directory", &dest, e))?;
        } else {
            let size = entry.size();
            bytes = bytes.saturating_add(size);
            if bytes > limits.max_bytes {
                return Err(fail(format!(
                    "its files hold more than {} bytes (max_bytes)",
                    limits.max_bytes
                )));
            }
            write_entry(&mut entry, &dest).map_err(|e| match e {
                Side::Read(e) => read_error(e),
                Side::Write(e) => e,
            })?;
        }
        hermetic_sdk::progress(entries, None);
    }
    // Read to the end, so that the zstd checksum is verified and trailing junk is found.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_error)?;
    Ok(entries)
}

/// A failure while unpacking one file: of the archive, or of the output.
enum Side {
    Read(io::Error),
    Write(Error),
}

fn write_entry(entry: &mut impl Read, dest: &Path) -> Result<(), Side> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| Side::Write(Error::io("create directory", parent, e)))?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| Side::Write(Error::io("create", dest, e)))?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Side::Read(e)),
        };
        out.write_all(&buf[..n])
            .map_err(|e| Side::Write(Error::io("write", dest, e)))?;
    }
    out.flush()
        .map_err(|e| Side::Write(Error::io("write", dest, e)))
}

/// The relative path an entry's name stands for, or why it is unsafe. `.` components and
/// repeated or trailing slashes are dropped.
fn safe_path(name: &[u8]) -> std::result::Result<PathBuf, &'static str> {
    let Ok(name) = std::str::from_utf8(name) else {
        return Err("has a path that is not valid UTF-8");
    };
    if name.starts_with('/') {
        return Err("has an absolute path");
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a `..` component"),
            part => path.push(part),
        }
    }
    Ok(path)
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "a symbolic link".into(),
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::Char => "a character device".into(),
        tar::EntryType::Block => "a block device".into(),
        tar::EntryType::Fifo => "a FIFO".into(),
        tar::EntryType::GNUSparse => "a sparse file".into(),
        other => format!("of type {:?}", char::from(other.as_byte())),
    }
}

/// A reader that fails once more than `left` bytes have come through it.
struct Capped<R> {
    inner: R,
    left: u64,
    over: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n as u64 > self.left {
            self.over.set(true);
            return Err(io::Error::other("the archive is too large"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
