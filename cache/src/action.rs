//! [`ActionEntry`]: what the action cache records for one step execution.

use serde::{Deserialize, Serialize};

use crate::tree::check_relative_path;
use crate::{Digest, FileEntry, tree_digest};

/// The recorded result of one step, stored under the step's action key.
///
/// Unknown JSON fields are ignored when reading, so a later version may add fields without
/// invalidating entries (the store's `VERSION` guards incompatible changes).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ActionEntry {
    /// Blob: tar.zst (see [`archive`](crate::archive)) of the step's published outputs.
    pub outputs_archive: Digest,
    /// The files in the archive, sorted by path.
    pub output_files: Vec<FileEntry>,
    /// [`tree_digest`] of `output_files`.
    pub output_tree: Digest,
    /// Blob: the captured standard output.
    pub stdout: Digest,
    /// Blob: the captured standard error.
    pub stderr: Digest,
    /// The step's exit code.
    pub exit_code: i32,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: u64,
    /// Wall-clock duration of the original execution.
    pub duration_ms: u64,
}

impl ActionEntry {
    /// The blobs the entry references: outputs archive, stdout, stderr.
    pub fn blobs(&self) -> [Digest; 3] {
        [self.outputs_archive, self.stdout, self.stderr]
    }

    /// Checks internal consistency: every output path is a valid relative path, the list is
    /// sorted without duplicates, and `output_tree` is the tree digest of `output_files`.
    pub fn check(&self) -> Result<(), String> {
        for file in &self.output_files {
            check_relative_path(&file.path)
                .map_err(|why| format!("output path {:?}: {why}", file.path))?;
        }
        if let Some(pair) = self
            .output_files
            .windows(2)
            .find(|w| w[0].path.as_bytes() >= w[1].path.as_bytes())
        {
            return Err(format!(
                "output files are not sorted and unique at {:?}",
                pair[1].path
            ));
        }
        let tree = tree_digest(&self.output_files);
        if tree != self.output_tree {
            return Err(format!(
                "output_tree is {} but the output files hash to {}",
                self.output_tree.short(),
                tree.short()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A consistent entry whose blobs are `archive`, `out`, `err`.
    pub(crate) fn entry_for(archive: &[u8], out: &[u8], err: &[u8]) -> ActionEntry {
        let output_files = vec![
            FileEntry {
                path: "bin/tool".into(),
                digest: Digest::of(b"tool"),
                size: 4,
            },
            FileEntry {
                path: "lib.a".into(),
                digest: Digest::of(b"lib"),
                size: 3,
            },
        ];
        ActionEntry {
            outputs_archive: Digest::of(archive),
            output_tree: tree_digest(&output_files),
            output_files,
            stdout: Digest::of(out),
            stderr: Digest::of(err),
            exit_code: 0,
            fuel_used: 1234,
            peak_memory: 65536,
            duration_ms: 12,
        }
    }

    #[test]
    fn blobs_lists_the_three_blobs() {
        let e = entry_for(b"a", b"o", b"e");
        assert_eq!(
            e.blobs(),
            [Digest::of(b"a"), Digest::of(b"o"), Digest::of(b"e")]
        );
    }

    #[test]
    fn check_accepts_consistent_and_rejects_inconsistent() {
        let good = entry_for(b"a", b"o", b"e");
        assert_eq!(good.check(), Ok(()));

        let mut bad_tree = good.clone();
        bad_tree.output_tree = Digest::of(b"nope");
        assert!(bad_tree.check().unwrap_err().contains("output_tree"));

        let mut unsorted = good.clone();
        unsorted.output_files.reverse();
        unsorted.output_tree = tree_digest(&unsorted.output_files);
        assert!(unsorted.check().unwrap_err().contains("sorted"));

        let mut escaping = good.clone();
        escaping.output_files[0].path = "../x".into();
        assert!(escaping.check().unwrap_err().contains(".."));
    }

    #[test]
    fn json_ignores_unknown_fields() {
        let e = entry_for(b"a", b"o", b"e");
        let mut value = serde_json::to_value(&e).unwrap();
        value["added_later"] = serde_json::json!(42);
        assert_eq!(serde_json::from_value::<ActionEntry>(value).unwrap(), e);
    }
}
