//! The file format of an action entry: a checksummed header line, then JSON.
//!
//! ```text
//! hermetic-action 1 <blake3 hex of everything after the newline>\n
//! {"outputs_archive":"…","output_files":[…],…}
//! ```

use std::fmt;

use crate::{ActionEntry, Digest};

const MAGIC: &str = "hermetic-action";
const VERSION: &str = "1";

/// The bytes of an entry file.
pub(crate) fn encode(entry: &ActionEntry) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(entry)?;
    let mut bytes = format!("{MAGIC} {VERSION} {}\n", Digest::of(&json)).into_bytes();
    bytes.extend_from_slice(&json);
    Ok(bytes)
}

/// What is wrong with an entry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Defect {
    /// No `hermetic-action <version> <hash>` line.
    BadHeader,
    /// A header of another entry format version.
    Version(String),
    /// The rest does not hash to the header's checksum (truncated or corrupt).
    Checksum,
    /// The JSON does not parse as an [`ActionEntry`].
    Json(String),
    /// The entry parses but is inconsistent ([`ActionEntry::check`]).
    Inconsistent(String),
}

impl Defect {
    /// A short tag for quarantine file names.
    pub(crate) fn tag(&self) -> &'static str {
        match self {
            Self::BadHeader => "bad-header",
            Self::Version(_) => "bad-version",
            Self::Checksum => "checksum-mismatch",
            Self::Json(_) => "bad-json",
            Self::Inconsistent(_) => "inconsistent",
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader => f.write_str("no `hermetic-action <version> <blake3>` header line"),
            Self::Version(v) => write!(f, "unsupported entry format version {v:?}"),
            Self::Checksum => {
                f.write_str("the content does not match the header checksum (truncated or corrupt)")
            }
            Self::Json(e) => write!(f, "the JSON is not a valid action entry: {e}"),
            Self::Inconsistent(e) => write!(f, "the entry is inconsistent: {e}"),
        }
    }
}

/// Parses and verifies an entry file.
pub(crate) fn decode(bytes: &[u8]) -> Result<ActionEntry, Defect> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Defect::BadHeader)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| Defect::BadHeader)?;
    let body = &bytes[newline + 1..];
    let mut fields = header.split(' ');
    let (Some(MAGIC), Some(version), Some(checksum), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Defect::BadHeader);
    };
    if version != VERSION {
        return Err(Defect::Version(version.to_owned()));
    }
    let checksum: Digest = checksum.parse().map_err(|_| Defect::BadHeader)?;
    if Digest::of(body) != checksum {
        return Err(Defect::Checksum);
    }
    let entry: ActionEntry =
        serde_json::from_slice(body).map_err(|e| Defect::Json(e.to_string()))?;
    entry.check().map_err(Defect::Inconsistent)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::tests::entry_for;

    #[test]
    fn round_trip_and_header_format() {
        let entry = entry_for(b"a", b"o", b"e");
        let bytes = encode(&entry).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let (header, json) = text.split_once('\n').unwrap();
        assert_eq!(
            header,
            format!("hermetic-action 1 {}", Digest::of(json.as_bytes()))
        );
        assert_eq!(decode(&bytes).unwrap(), entry);
    }

    #[test]
    fn detects_each_defect() {
        let entry = entry_for(b"a", b"o", b"e");
        let bytes = encode(&entry).unwrap();
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Err(Defect::Checksum));
        assert_eq!(decode(b"garbage"), Err(Defect::BadHeader));
        assert_eq!(decode(b"hermetic-action 1\n{}"), Err(Defect::BadHeader));
        let body = b"{}";
        let v2 = format!("hermetic-action 2 {}\n{{}}", Digest::of(body));
        assert_eq!(decode(v2.as_bytes()), Err(Defect::Version("2".into())));
        let not_entry = format!("hermetic-action 1 {}\n{{}}", Digest::of(body));
        assert!(matches!(decode(not_entry.as_bytes()), Err(Defect::Json(_))));

        let mut bad = entry.clone();
        bad.output_tree = Digest::of(b"wrong");
        let bytes = encode(&bad).unwrap();
        assert!(matches!(decode(&bytes), Err(Defect::Inconsistent(_))));
    }
}
