//! [`DigestMap`]: BLAKE3 digests to the server's digests, in memory and optionally in a file.
//!
//! # The file
//!
//! `<dir>/digest-map-<function>.v1` (function `sha256` or `blake3`) holds one line per
//! mapping, appended with `O_APPEND` in one `write` each:
//!
//! ```text
//! <blake3 hex> <server hash hex> <size> <check>\n
//! ```
//!
//! where `<check>` is the first 16 hex digits of the BLAKE3 of the line's text before it
//! (`"<blake3 hex> <server hash hex> <size>"`). A line that does not have exactly this shape
//! (a torn write, garbage, a hand edit) is ignored; for a BLAKE3 that appears several times
//! the last line wins. The file is never rewritten, so a crash loses at most the line being
//! written, and any number of processes may append at once. It is read whole at open, up to
//! [`MAX_FILE`] bytes (the rest is ignored with a warning).
//!
//! The map is **untrusted**: every blob fetched through it is re-verified against both the
//! server digest and the BLAKE3, so a wrong line can only cause a miss.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::digests::{DigestFunction, ServerDigest};
use crate::fsx::PathContext;
use crate::{CacheError, Digest};

/// The most of a map file that is read at open.
pub(crate) const MAX_FILE: u64 = 256 * 1024 * 1024;

/// What the map knows about one BLAKE3 digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// The server's digest of the same bytes.
    pub(crate) server: ServerDigest,
    /// Whether this process or an earlier one hashed the bytes both ways (a `put_blob`, a
    /// verified fetch, a line of the file), rather than reading the pair from an
    /// `ActionResult` it has not verified yet.
    pub(crate) verified: bool,
}

/// BLAKE3 → server digest, shared by every call of one store.
#[derive(Debug)]
pub(crate) struct DigestMap {
    entries: Mutex<HashMap<Digest, Mapping>>,
    /// The file verified mappings are appended to, with its path for messages.
    file: Option<(Mutex<File>, PathBuf)>,
}

impl DigestMap {
    /// A map kept in memory only.
    pub(crate) fn in_memory() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            file: None,
        }
    }

    /// Opens (creating `dir` and the file if needed) the map file for `function` in `dir`
    /// and loads its valid lines.
    pub(crate) fn open(dir: &Path, function: DigestFunction) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).at("cannot create directory", dir)?;
        let name = match function {
            DigestFunction::Sha256 => "digest-map-sha256.v1",
            DigestFunction::Blake3 => "digest-map-blake3.v1",
        };
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .at("cannot open", &path)?;
        let len = file.metadata().at("cannot stat", &path)?.len();
        if len > MAX_FILE {
            tracing::warn!(
                path = %path.display(),
                bytes = len,
                "the digest map is larger than {MAX_FILE} bytes; reading only its beginning"
            );
        }
        let mut text = Vec::new();
        (&mut file)
            .take(MAX_FILE)
            .read_to_end(&mut text)
            .at("cannot read", &path)?;
        let entries = parse(&text);
        if text.last().is_some_and(|&b| b != b'\n') {
            // A torn last line: end it, so that the next line appended stands on its own.
            file.write_all(b"\n").at("cannot write", &path)?;
        }
        Ok(Self {
            entries: Mutex::new(entries),
            file: Some((Mutex::new(file), path)),
        })
    }

    /// The mapping for `digest`, if any.
    pub(crate) fn get(&self, digest: &Digest) -> Option<Mapping> {
        self.lock().get(digest).copied()
    }

    /// Records a mapping whose bytes were hashed both ways; appends it to the file when it
    /// is new. A failure to append is a warning (the map is a cache of facts).
    pub(crate) fn record_verified(&self, digest: Digest, server: ServerDigest) {
        let mapping = Mapping {
            server,
            verified: true,
        };
        let previous = self.lock().insert(digest, mapping);
        if previous == Some(mapping) {
            return;
        }
        if let Some((file, path)) = &self.file {
            let line = format_line(&digest, &server);
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!(path = %path.display(), error = %e, "cannot append to the digest map");
            }
        }
    }

    /// Records a mapping read from an `ActionResult`, unless a verified one exists. Returns
    /// the verified mapping when it disagrees (the result is then inconsistent).
    pub(crate) fn record_claimed(
        &self,
        digest: Digest,
        server: ServerDigest,
    ) -> Result<(), ServerDigest> {
        let mut entries = self.lock();
        match entries.get(&digest) {
            Some(known) if known.verified && known.server != server => Err(known.server),
            Some(known) if known.verified => Ok(()),
            _ => {
                entries.insert(
                    digest,
                    Mapping {
                        server,
                        verified: false,
                    },
                );
                Ok(())
            }
        }
    }

    /// The verified mapping of `digest` when it differs from `server`.
    pub(crate) fn conflict(&self, digest: &Digest, server: &ServerDigest) -> Option<ServerDigest> {
        self.get(digest)
            .filter(|known| known.verified && known.server != *server)
            .map(|known| known.server)
    }

    /// Forgets the mapping of `digest` (it led to bytes that are not `digest`).
    pub(crate) fn forget(&self, digest: &Digest) {
        self.lock().remove(digest);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Mapping>> {
        // The map is consistent after every statement; a panic elsewhere cannot break it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One line of the file, newline included.
pub(crate) fn format_line(digest: &Digest, server: &ServerDigest) -> String {
    let body = format!("{digest} {} {}", server.hex(), server.size);
    let check = &blake3::hash(body.as_bytes()).to_hex()[..16];
    format!("{body} {check}\n")
}

/// The valid lines of a map file; the last line for a digest wins.
pub(crate) fn parse(text: &[u8]) -> HashMap<Digest, Mapping> {
    let mut entries = HashMap::new();
    // Only complete lines: the part after the last newline may be a torn write.
    let complete = match text.iter().rposition(|&b| b == b'\n') {
        Some(end) => &text[..end],
        None => return entries,
    };
    for line in complete.split(|&b| b == b'\n') {
        if let Some((digest, server)) = parse_line(line) {
            entries.insert(
                digest,
                Mapping {
                    server,
                    verified: true,
                },
            );
        }
    }
    entries
}

/// One line without its newline, or `None` when it is not exactly a valid line.
fn parse_line(line: &[u8]) -> Option<(Digest, ServerDigest)> {
    let line = std::str::from_utf8(line).ok()?;
    let (body, check) = line.rsplit_once(' ')?;
    if check.len() != 16 || blake3::hash(body.as_bytes()).to_hex()[..16] != *check {
        return None;
    }
    let mut fields = body.split(' ');
    let digest: Digest = fields.next()?.parse().ok()?;
    let hash: Digest = fields.next()?.parse().ok()?;
    let size_text = fields.next()?;
    if fields.next().is_some() || !size_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size = size_text.parse().ok()?;
    Some((
        digest,
        ServerDigest {
            hash: *hash.as_bytes(),
            size,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> ServerDigest {
        ServerDigest::of(DigestFunction::Sha256, bytes)
    }

    #[test]
    fn lines_round_trip_and_garbage_is_ignored() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let line_a = format_line(&a, &sha(b"a"));
        let line_b = format_line(&b, &sha(b"b"));
        let mut text = Vec::new();
        text.extend_from_slice(b"garbage\n\n\xff\xfe binary\n");
        text.extend_from_slice(line_a.as_bytes());
        // A line whose check does not match (one hex digit of the hash changed).
        let tampered = line_b.replacen(&sha(b"b").hex()[..1], "0", 1);
        assert_ne!(tampered, line_b);
        text.extend_from_slice(tampered.as_bytes());
        // Extra fields, a signed size, a missing field.
        text.extend_from_slice(format!("{a} {} +1 0123456789abcdef\n", sha(b"a").hex()).as_bytes());
        text.extend_from_slice(format!("{a} {}\n", sha(b"a").hex()).as_bytes());
        // A torn last line (no newline) is ignored even though its prefix looks valid.
        text.extend_from_slice(&line_b.as_bytes()[..line_b.len() - 1]);
        let map = parse(&text);
        assert_eq!(map.len(), 1, "{map:?}");
        assert_eq!(map[&a].server, sha(b"a"));
        assert!(map[&a].verified);
    }

    #[test]
    fn the_last_line_wins() {
        let a = Digest::of(b"a");
        let text = format!(
            "{}{}",
            format_line(&a, &sha(b"x")),
            format_line(&a, &sha(b"a"))
        );
        assert_eq!(parse(text.as_bytes())[&a].server, sha(b"a"));
    }

    #[test]
    fn the_file_persists_verified_mappings_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        {
            let map = DigestMap::open(dir.path(), DigestFunction::Sha256).unwrap();
            map.record_verified(a, sha(b"a"));
            map.record_claimed(b, sha(b"b")).unwrap();
            assert_eq!(map.get(&b).map(|m| m.verified), Some(false));
        }
        let path = dir.path().join("digest-map-sha256.v1");
        // A torn write at the end.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"0123abc").unwrap();
        drop(file);
        {
            let map = DigestMap::open(dir.path(), DigestFunction::Sha256).unwrap();
            assert_eq!(map.get(&a).map(|m| m.server), Some(sha(b"a")));
            // Claimed mappings are not persisted.
            assert_eq!(map.get(&b), None);
            map.record_verified(c, sha(b"c"));
        }
        let map = DigestMap::open(dir.path(), DigestFunction::Sha256).unwrap();
        assert_eq!(map.get(&c).map(|m| m.server), Some(sha(b"c")));
        // Another function's map is another file.
        let blake = DigestMap::open(dir.path(), DigestFunction::Blake3).unwrap();
        assert_eq!(blake.get(&a), None);
    }

    #[test]
    fn claimed_mappings_never_override_verified_ones() {
        let map = DigestMap::in_memory();
        let a = Digest::of(b"a");
        map.record_verified(a, sha(b"a"));
        assert_eq!(map.record_claimed(a, sha(b"wrong")), Err(sha(b"a")));
        assert_eq!(map.conflict(&a, &sha(b"wrong")), Some(sha(b"a")));
        assert_eq!(map.conflict(&a, &sha(b"a")), None);
        assert_eq!(map.record_claimed(a, sha(b"a")), Ok(()));
        assert!(map.get(&a).unwrap().verified);
        map.forget(&a);
        assert_eq!(map.get(&a), None);
    }
}
