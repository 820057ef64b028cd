//! REAPI Merkle trees of files: an action's input root, built from files on the host
//! ([`InputRoot`]), and materialised on a worker from the server's blobs ([`materialise`]),
//! checking every name and size it is told and every byte it fetches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;

/// The most files and directories a worker materialises for one action.
pub const MAX_NODES: usize = 100_000;
/// The most bytes of files a worker materialises for one action.
pub const MAX_BYTES: u64 = 8 << 30;

/// A directory being assembled: files by name (their bytes), subdirectories by name.
#[derive(Debug, Default)]
pub struct InputRoot {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeMap<String, InputRoot>,
}

/// A finished tree: its root digest and every blob it needs (directories and files), each
/// digest once.
#[derive(Debug)]
pub struct BuiltTree {
    pub root: re::Digest,
    pub blobs: Vec<(re::Digest, Vec<u8>)>,
}

impl InputRoot {
    /// Adds a file at `path` (relative, `/`-separated), creating its directories.
    pub fn add_file(&mut self, path: &str, bytes: Vec<u8>) {
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default().to_string();
        let mut dir = self;
        for part in parts {
            dir = dir.dirs.entry(part.to_string()).or_default();
        }
        dir.files.insert(name, bytes);
    }

    /// Adds an empty directory at `path`.
    pub fn add_dir(&mut self, path: &str) {
        let mut dir = self;
        for part in path.split('/') {
            dir = dir.dirs.entry(part.to_string()).or_default();
        }
    }

    /// Adds every regular file under the host directory `host`, at `path`. Symbolic links and
    /// other special files are refused: hermetic's directories never hold them.
    pub fn add_tree(&mut self, path: &str, host: &Path) -> Result<(), String> {
        self.add_dir(path);
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| format!("cannot read `{}`: {e}", host.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read `{}`: {e}", host.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| format!("`{}` is not UTF-8", entry.path().display()))?;
            let child = format!("{path}/{name}");
            let kind = std::fs::symlink_metadata(entry.path())
                .map_err(|e| format!("cannot stat `{}`: {e}", entry.path().display()))?
                .file_type();
            if kind.is_dir() {
                self.add_tree(&child, &entry.path())?;
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path())
                    .map_err(|e| format!("cannot read `{}`: {e}", entry.path().display()))?;
                self.add_file(&child, bytes);
            } else {
                return Err(format!(
                    "`{}` is not a regular file or directory",
                    entry.path().display()
                ));
            }
        }
        Ok(())
    }

    /// The tree's `Directory` messages, bottom up, named by `digest_of` (the server's digest
    /// function). Names are sorted, as REAPI requires for a canonical tree.
    pub fn build(self, digest_of: &dyn Fn(&[u8]) -> re::Digest) -> BuiltTree {
        let mut blobs = BTreeMap::new();
        let root = self.build_into(digest_of, &mut blobs);
        BuiltTree {
            root,
            blobs: blobs.into_values().collect(),
        }
    }

    fn build_into(
        self,
        digest_of: &dyn Fn(&[u8]) -> re::Digest,
        blobs: &mut BTreeMap<String, (re::Digest, Vec<u8>)>,
    ) -> re::Digest {
        let mut directory = re::Directory::default();
        for (name, bytes) in self.files {
            let digest = digest_of(&bytes);
            directory.files.push(re::FileNode {
                name,
                digest: Some(digest.clone()),
                ..Default::default()
            });
            blobs.insert(digest.hash.clone(), (digest, bytes));
        }
        for (name, dir) in self.dirs {
            let digest = dir.build_into(digest_of, blobs);
            directory.directories.push(re::DirectoryNode {
                name,
                digest: Some(digest),
            });
        }
        let bytes = directory.encode_to_vec();
        let digest = digest_of(&bytes);
        blobs.insert(digest.hash.clone(), (digest.clone(), bytes));
        digest
    }
}

/// Where a worker gets blobs: the bytes of `digest`, verified against it, or an error.
#[async_trait::async_trait]
pub trait Fetch: Send + Sync {
    async fn fetch(&self, digest: &re::Digest) -> Result<Vec<u8>, String>;
}

/// Writes the tree under `root` into the empty directory `dest`. Every name must be a plain
/// file name, every size within [`MAX_BYTES`] in all, every node within [`MAX_NODES`]; symbolic
/// links are refused.
pub async fn materialise(fetch: &dyn Fetch, root: &re::Digest, dest: &Path) -> Result<(), String> {
    let mut budget = Budget { nodes: 0, bytes: 0 };
    let mut pending: Vec<(re::Digest, PathBuf)> = vec![(root.clone(), dest.to_path_buf())];
    while let Some((digest, dir)) = pending.pop() {
        let bytes = fetch.fetch(&digest).await?;
        let directory = re::Directory::decode(bytes.as_slice())
            .map_err(|e| format!("directory {} is not a Directory message: {e}", digest.hash))?;
        if !directory.symlinks.is_empty() {
            return Err(format!("directory {} holds symbolic links", digest.hash));
        }
        for node in &directory.directories {
            check_name(&node.name)?;
            budget.node()?;
            let path = dir.join(&node.name);
            std::fs::create_dir(&path)
                .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
            let digest = node
                .digest
                .clone()
                .ok_or_else(|| format!("directory `{}` has no digest", node.name))?;
            pending.push((digest, path));
        }
        for file in &directory.files {
            check_name(&file.name)?;
            budget.node()?;
            let digest = file
                .digest
                .as_ref()
                .ok_or_else(|| format!("file `{}` has no digest", file.name))?;
            budget.bytes(digest.size_bytes)?;
            let bytes = fetch.fetch(digest).await?;
            let path = dir.join(&file.name);
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// What one action may still materialise.
struct Budget {
    nodes: usize,
    bytes: u64,
}

impl Budget {
    fn node(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("the input root has more than {MAX_NODES} entries"));
        }
        Ok(())
    }

    fn bytes(&mut self, size: i64) -> Result<(), String> {
        let size = u64::try_from(size).map_err(|_| format!("a file has size {size}"))?;
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > MAX_BYTES {
            return Err(format!("the input root holds more than {MAX_BYTES} bytes"));
        }
        Ok(())
    }
}

/// A name in a `Directory`: one path component, not `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!("`{name}` is not a file name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn digest_of(bytes: &[u8]) -> re::Digest {
        re::Digest {
            hash: blake3::hash(bytes).to_hex().to_string(),
            size_bytes: bytes.len() as i64,
        }
    }

    struct Blobs(HashMap<String, Vec<u8>>);

    #[async_trait::async_trait]
    impl Fetch for Blobs {
        async fn fetch(&self, digest: &re::Digest) -> Result<Vec<u8>, String> {
            self.0
                .get(&digest.hash)
                .cloned()
                .ok_or_else(|| "missing".to_string())
        }
    }

    #[tokio::test]
    async fn a_tree_round_trips_and_is_canonical() {
        let mut a = InputRoot::default();
        a.add_file("b/y.txt", b"y".to_vec());
        a.add_file("a.txt", b"a".to_vec());
        a.add_dir("empty");
        let mut b = InputRoot::default();
        b.add_dir("empty");
        b.add_file("a.txt", b"a".to_vec());
        b.add_file("b/y.txt", b"y".to_vec());
        let (a, b) = (a.build(&digest_of), b.build(&digest_of));
        assert_eq!(a.root, b.root, "insertion order does not matter");
        let blobs = Blobs(a.blobs.into_iter().map(|(d, v)| (d.hash, v)).collect());
        let dest = tempfile::tempdir().unwrap();
        materialise(&blobs, &a.root, dest.path()).await.unwrap();
        assert_eq!(std::fs::read(dest.path().join("b/y.txt")).unwrap(), b"y");
        assert!(dest.path().join("empty").is_dir());
    }

    #[tokio::test]
    async fn hostile_names_are_refused() {
        for name in ["..", "a/b", ""] {
            let dir = re::Directory {
                files: vec![re::FileNode {
                    name: name.into(),
                    digest: Some(digest_of(b"x")),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let bytes = dir.encode_to_vec();
            let root = digest_of(&bytes);
            let blobs = Blobs(
                [
                    (root.hash.clone(), bytes),
                    (digest_of(b"x").hash, b"x".to_vec()),
                ]
                .into_iter()
                .collect(),
            );
            let dest = tempfile::tempdir().unwrap();
            let err = materialise(&blobs, &root, dest.path()).await.unwrap_err();
            assert!(err.contains("is not a file name"), "{err}");
        }
    }
}
