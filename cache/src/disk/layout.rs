//! Where everything lives under a store root.

use std::path::{Path, PathBuf};

use crate::Digest;

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Names at the top of a store root; anything else there means the directory is not a store.
pub(crate) const TOP_LEVEL_NAMES: &[&str] = &[
    "VERSION",
    "cas",
    "ac",
    "tmp",
    "quarantine",
    "runs.jsonl",
    "gc.lock",
];

/// Prefix of the temporary files used to create `VERSION` and rewrite `runs.jsonl`.
pub(crate) const TOP_LEVEL_TEMP_PREFIX: &str = ".tmp-";

/// The two sharded directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// `cas/`: blobs.
    Blobs,
    /// `ac/`: action entries.
    Entries,
}

impl Area {
    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            Self::Blobs => "cas",
            Self::Entries => "ac",
        }
    }
}

/// Paths under a store root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn version(&self) -> PathBuf {
        self.root.join("VERSION")
    }

    pub(crate) fn area(&self, area: Area) -> PathBuf {
        self.root.join(area.dir_name())
    }

    /// `<area>/<first 2 hex>/<64 hex>`.
    pub(crate) fn item(&self, area: Area, digest: &Digest) -> PathBuf {
        let hex = digest.to_string();
        let mut path = self.area(area);
        path.push(&hex[..2]);
        path.push(hex);
        path
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        self.item(Area::Blobs, digest)
    }

    pub(crate) fn entry(&self, key: &Digest) -> PathBuf {
        self.item(Area::Entries, key)
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    pub(crate) fn runs(&self) -> PathBuf {
        self.root.join("runs.jsonl")
    }

    pub(crate) fn gc_lock(&self) -> PathBuf {
        self.root.join("gc.lock")
    }
}

/// The digest named by a file `name` in shard directory `shard`, if the name is a well-formed
/// item name (64 lowercase hex digits starting with the shard's two).
pub(crate) fn parse_item_name(shard: &str, name: &str) -> Option<Digest> {
    let is_lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if name.len() != 64 || !is_lower_hex(name) || !name.starts_with(shard) || shard.len() != 2 {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths_are_sharded_by_the_first_two_hex_digits() {
        let layout = Layout::new(PathBuf::from("/c"));
        let d = Digest::of(b"x");
        let hex = d.to_string();
        assert_eq!(
            layout.blob(&d),
            PathBuf::from(format!("/c/cas/{}/{hex}", &hex[..2]))
        );
        assert_eq!(
            layout.entry(&d),
            PathBuf::from(format!("/c/ac/{}/{hex}", &hex[..2]))
        );
        assert_eq!(parse_item_name(&hex[..2], &hex), Some(d));
        assert_eq!(parse_item_name("zz", &hex), None);
        assert_eq!(parse_item_name(&hex[..2], &hex.to_uppercase()), None);
        assert_eq!(parse_item_name(&hex[..2], &hex[..63]), None);
    }
}
