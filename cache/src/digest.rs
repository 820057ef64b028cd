//! [`Digest`]: a blake3 content digest, and [`hash_file`].

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fsx::{self, PathContext};

/// A blake3 digest (32 bytes). Displayed, parsed and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

/// Files up to this size are read in one `read_to_end`; larger ones are streamed.
const SMALL_FILE: u64 = 64 * 1024;
/// Read buffer for streaming large files.
const STREAM_BUFFER: usize = 256 * 1024;

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Finalizes a hasher.
    pub fn from_hasher(hasher: blake3::Hasher) -> Self {
        Self(*hasher.finalize().as_bytes())
    }

    /// A digest from its raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl Digest {
    /// The 64 lower-case hex digits of [`Digest::to_hex`], on the stack: for a writer that
    /// would otherwise allocate a `String` per digest.
    pub fn hex_digits(&self) -> [u8; 64] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        out
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&self.hex_digits()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    /// Not exactly 64 characters.
    #[error("a digest is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not a lowercase or uppercase hex digit.
    #[error("a digest is 64 hex digits, got {0:?} at position {1}")]
    NotHex(char, usize),
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseDigestError::Length(s.chars().count()));
        }
        let nibble = |i: usize| -> Result<u8, ParseDigestError> {
            let c = bytes[i];
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(ParseDigestError::NotHex(
                    s[i..].chars().next().unwrap_or('?'),
                    i,
                )),
            }
        };
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = (nibble(2 * i)? << 4) | nibble(2 * i + 1)?;
        }
        Ok(Self(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A string written in one piece, not through `Display`'s formatter: keys serialize
        // one digest per input, dependency and module for every step.
        let hex = self.hex_digits();
        let text = std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a blake3 digest as 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Fewer files than this are hashed on the calling thread: starting a thread costs about as
/// much as hashing a few small files.
const PARALLEL_MIN: usize = 32;

/// [`hash_file`] of each of `paths`, on up to `threads` threads; the results are in the order
/// of `paths`, whatever order the threads finished in. A list of a few files is hashed on the
/// calling thread. Opening, reading and closing a small file costs more than hashing it, so
/// on many small files this is close to `threads` times faster than one thread.
pub fn hash_files(paths: &[&Path], threads: usize) -> Vec<io::Result<(Digest, u64)>> {
    let threads = threads.clamp(1, paths.len().max(1));
    if threads == 1 || paths.len() < PARALLEL_MIN {
        return paths.iter().map(|p| hash_file(p)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<io::Result<(Digest, u64)>>> =
        std::iter::repeat_with(|| None).take(paths.len()).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return mine;
                        };
                        mine.push((i, hash_file(path)));
                    }
                })
            })
            .collect();
        for worker in workers {
            let hashed = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, result) in hashed {
                results[i] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every index is claimed by exactly one thread"))
        .collect()
}

/// Hashes the regular file at `path`, returning its digest and the number of bytes hashed.
///
/// Refuses to follow a symlink in the last component (`O_NOFOLLOW`) and refuses anything that
/// is not a regular file (checked on the open handle, so there is no check-then-open race).
/// Small files are read whole; larger ones are streamed through a 256 KiB buffer. Errors name
/// the path.
pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let named = |e: fsx::PathError| io::Error::new(e.kind(), e);
    let (mut file, len) = fsx::open_regular_nofollow(path)
        .at("cannot open", path)
        .map_err(named)?;
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    if len <= SMALL_FILE {
        let mut buf = Vec::with_capacity(len as usize + 1);
        file.read_to_end(&mut buf)
            .at("cannot read", path)
            .map_err(named)?;
        hasher.update(&buf);
        total = buf.len() as u64;
    } else {
        let mut buf = vec![0u8; STREAM_BUFFER];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(named(fsx::PathError {
                        action: "cannot read",
                        path: path.to_path_buf(),
                        source: e,
                    }));
                }
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
    }
    Ok((Digest::from_hasher(hasher), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = Digest::of(b"hello");
        let hex = d.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(hex.parse::<Digest>().unwrap(), d);
        assert_eq!(hex.to_uppercase().parse::<Digest>().unwrap(), d);
        assert_eq!(format!("{d:?}"), hex);
        assert_eq!(d.short(), hex[..12]);
        assert_eq!(d.to_hex(), hex);
        assert_eq!(Digest::from_bytes(*d.as_bytes()), d);
        assert_eq!(Digest::from(blake3::hash(b"hello")), d);
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert_eq!("ab".parse::<Digest>(), Err(ParseDigestError::Length(2)));
        let mut s = "0".repeat(63);
        s.push('g');
        assert_eq!(s.parse::<Digest>(), Err(ParseDigestError::NotHex('g', 63)));
        let s = format!("é{}", "0".repeat(62));
        assert!(s.parse::<Digest>().is_err());
    }

    #[test]
    fn serde_uses_hex_string() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Digest>("[1,2]").is_err());
    }

    #[test]
    fn hash_file_small_and_large() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(hash_file(&small).unwrap(), (Digest::of(b"hello"), 5));

        let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let large = dir.path().join("large");
        std::fs::write(&large, &content).unwrap();
        assert_eq!(
            hash_file(&large).unwrap(),
            (Digest::of(&content), content.len() as u64)
        );
    }

    #[test]
    fn hash_file_refuses_symlink_and_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = hash_file(&link).unwrap_err();
        assert!(
            err.to_string().contains(&link.display().to_string()),
            "{err}"
        );

        let missing = dir.path().join("missing");
        let err = hash_file(&missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn hash_files_answers_in_order_on_any_number_of_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..100 {
            let path = tmp.path().join(format!("f{i}"));
            std::fs::write(&path, format!("file {i}").repeat(i % 7)).unwrap();
            paths.push(path);
        }
        // A missing file and a directory fail in their places.
        paths.insert(10, tmp.path().join("missing"));
        paths.insert(50, tmp.path().to_path_buf());
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let show = |results: Vec<io::Result<(Digest, u64)>>| -> Vec<String> {
            results
                .into_iter()
                .map(|r| match r {
                    Ok((d, n)) => format!("{d} {n}"),
                    Err(e) => format!("error {:?}", e.kind()),
                })
                .collect()
        };
        let one = show(hash_files(&refs, 1));
        assert_eq!(one.len(), 102);
        assert_eq!(one[10], "error NotFound");
        assert!(one[50].starts_with("error"), "{}", one[50]);
        let expected = format!("{} 0", Digest::of(b""));
        assert_eq!(one[0], expected, "f0 is empty");
        assert_eq!(one[3], {
            let bytes = "file 3".repeat(3);
            format!("{} {}", Digest::of(bytes.as_bytes()), bytes.len())
        });
        for threads in [2, 3, 8, 500] {
            assert_eq!(show(hash_files(&refs, threads)), one, "{threads} threads");
        }
        assert!(hash_files(&[], 4).is_empty());
    }
}
