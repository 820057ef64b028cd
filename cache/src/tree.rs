//! File lists and their Merkle digest: [`FileEntry`], [`tree_digest`], [`diff_trees`], and the
//! rules for relative paths ([`check_relative_path`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::Digest;

/// One regular file of a tree.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileEntry {
    /// Relative, `/`-separated path: no leading or trailing `/`, no empty, `.` or `..`
    /// component (see [`check_relative_path`]).
    pub path: String,
    /// blake3 of the content.
    pub digest: Digest,
    /// Length of the content in bytes.
    pub size: u64,
}

/// Checks that `path` is a canonical relative path as stored in a [`FileEntry`] or an archive:
/// non-empty, `/`-separated, no leading or trailing `/`, no empty, `.` or `..` component, no
/// NUL byte and no backslash. Returns the reason when it is not.
pub fn check_relative_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("the path is absolute");
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    if path.contains('\\') {
        return Err("the path contains a backslash");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("the path has an empty component (`//` or a trailing `/`)"),
            "." => return Err("the path has a `.` component"),
            ".." => return Err("the path has a `..` component"),
            _ => {}
        }
    }
    Ok(())
}

/// Domain-separation prefix of every directory node; the trailing digit is the encoding version.
const TREE_DOMAIN: &[u8] = b"hermetic-tree-v1\n";
const KIND_FILE: u8 = b'f';
const KIND_DIR: u8 = b'd';

/// One child of a directory node while hashing.
struct Child<'a> {
    name: &'a str,
    kind: u8,
    digest: Digest,
    size: u64,
}

/// The Merkle digest of a set of files, independent of the order of `files`.
///
/// Directories are implied by the file paths (a tree has no empty directories). Every
/// directory node, including the root, is hashed as
///
/// ```text
/// blake3( "hermetic-tree-v1\n"
///         || for each child, sorted by (name bytes, kind, digest bytes, size):
///              kind       1 byte: b'f' (0x66) for a file, b'd' (0x64) for a directory
///              name_len   u64, little-endian: byte length of name
///              name       name_len bytes: the UTF-8 path component
///              digest     32 bytes: a file's content blake3, or a directory's node digest
///              size       u64, little-endian: a file's size, or for a directory the sum of
///                         the sizes of every file below it (saturating) )
/// ```
///
/// and the result is the root directory's node digest; an empty list hashes the prefix alone.
/// Paths should satisfy [`check_relative_path`] and be unique; other inputs still hash
/// deterministically (a duplicate path is two children), but the digest of such an input is
/// not guaranteed to differ from that of a valid one.
pub fn tree_digest(files: &[FileEntry]) -> Digest {
    // Most steps declare no outputs and many read no inputs: their tree is hashed once.
    static EMPTY: std::sync::OnceLock<Digest> = std::sync::OnceLock::new();
    if files.is_empty() {
        return *EMPTY.get_or_init(|| digest_of_tree(&[]));
    }
    digest_of_tree(files)
}

fn digest_of_tree(files: &[FileEntry]) -> Digest {
    // An arena of directory nodes; a node's index is always greater than its parent's, so
    // walking the arena backwards finishes every subdirectory before its parent (no recursion,
    // linear in the total path length).
    let mut nodes = vec![DirNode {
        name: "",
        parent: 0,
        subdirs: HashMap::new(),
        children: Vec::new(),
    }];
    for file in files {
        let (dir, name) = split_last(&file.path);
        let mut current = 0;
        if !dir.is_empty() {
            for component in dir.split('/') {
                current = match nodes[current].subdirs.get(component) {
                    Some(&index) => index,
                    None => {
                        let index = nodes.len();
                        nodes.push(DirNode {
                            name: component,
                            parent: current,
                            subdirs: HashMap::new(),
                            children: Vec::new(),
                        });
                        nodes[current].subdirs.insert(component, index);
                        index
                    }
                };
            }
        }
        nodes[current].children.push(Child {
            name,
            kind: KIND_FILE,
            digest: file.digest,
            size: file.size,
        });
    }
    for index in (1..nodes.len()).rev() {
        let mut children = std::mem::take(&mut nodes[index].children);
        let (digest, size) = hash_node(&mut children);
        let (parent, name) = (nodes[index].parent, nodes[index].name);
        nodes[parent].children.push(Child {
            name,
            kind: KIND_DIR,
            digest,
            size,
        });
    }
    hash_node(&mut nodes[0].children).0
}

/// A directory while hashing.
struct DirNode<'a> {
    name: &'a str,
    parent: usize,
    subdirs: HashMap<&'a str, usize>,
    children: Vec<Child<'a>>,
}

/// Hashes one directory node; returns its digest and the total size of the files below it.
fn hash_node(children: &mut [Child<'_>]) -> (Digest, u64) {
    children.sort_unstable_by(|a, b| {
        (a.name.as_bytes(), a.kind, a.digest.as_bytes(), a.size).cmp(&(
            b.name.as_bytes(),
            b.kind,
            b.digest.as_bytes(),
            b.size,
        ))
    });
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN);
    let mut total = 0u64;
    for child in children.iter() {
        hasher.update(&[child.kind]);
        hasher.update(&(child.name.len() as u64).to_le_bytes());
        hasher.update(child.name.as_bytes());
        hasher.update(child.digest.as_bytes());
        hasher.update(&child.size.to_le_bytes());
        total = total.saturating_add(child.size);
    }
    (Digest::from_hasher(hasher), total)
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
fn split_last(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// One difference between two file lists.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TreeChange {
    /// In the new list only.
    Added(String),
    /// In the old list only.
    Removed(String),
    /// In both, with a different digest or size.
    Modified(String),
}

impl TreeChange {
    /// The path that changed.
    pub fn path(&self) -> &str {
        match self {
            Self::Added(p) | Self::Removed(p) | Self::Modified(p) => p,
        }
    }
}

/// The changes from `old` to `new`, sorted by path (byte order). When a list names a path twice,
/// its last occurrence counts.
pub fn diff_trees(old: &[FileEntry], new: &[FileEntry]) -> Vec<TreeChange> {
    let index = |files: &[FileEntry]| -> BTreeMap<String, (Digest, u64)> {
        files
            .iter()
            .map(|f| (f.path.clone(), (f.digest, f.size)))
            .collect()
    };
    let mut old = index(old);
    let mut changes = Vec::new();
    for (path, content) in index(new) {
        match old.remove(&path) {
            None => changes.push(TreeChange::Added(path)),
            Some(before) if before != content => changes.push(TreeChange::Modified(path)),
            Some(_) => {}
        }
    }
    changes.extend(old.into_keys().map(TreeChange::Removed));
    changes.sort_by(|a, b| a.path().cmp(b.path()));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn entry(path: &str, content: &[u8]) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            digest: Digest::of(content),
            size: content.len() as u64,
        }
    }

    #[test]
    fn relative_path_rules() {
        for ok in ["a", "a/b", "a.b/c-d_e", ".hidden/x", "a/..b", "é/ü"] {
            assert_eq!(check_relative_path(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("/etc/x", "absolute"),
            ("a/../b", "`..`"),
            ("..", "`..`"),
            ("./a", "`.`"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a\\b", "backslash"),
            ("a\0b", "NUL"),
        ] {
            let err = check_relative_path(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn empty_tree_is_the_domain_prefix() {
        assert_eq!(tree_digest(&[]), Digest::of(b"hermetic-tree-v1\n"));
    }

    #[test]
    fn encoding_matches_the_documented_format() {
        let files = [entry("d/x", b"hi"), entry("top", b"t")];
        let node = |children: &[(u8, &str, Digest, u64)]| {
            let mut h = blake3::Hasher::new();
            h.update(b"hermetic-tree-v1\n");
            for (kind, name, digest, size) in children {
                h.update(&[*kind]);
                h.update(&(name.len() as u64).to_le_bytes());
                h.update(name.as_bytes());
                h.update(digest.as_bytes());
                h.update(&size.to_le_bytes());
            }
            Digest::from_hasher(h)
        };
        let d = node(&[(b'f', "x", Digest::of(b"hi"), 2)]);
        let root = node(&[(b'd', "d", d, 2), (b'f', "top", Digest::of(b"t"), 1)]);
        assert_eq!(tree_digest(&files), root);
    }

    #[test]
    fn independent_of_order() {
        let a = vec![
            entry("src/main.rs", b"fn main() {}"),
            entry("src/lib/mod.rs", b"mod x;"),
            entry("README", b"readme"),
            entry("src/lib/x.rs", b""),
        ];
        let mut b = a.clone();
        b.reverse();
        let mut c = a.clone();
        c.swap(0, 2);
        assert_eq!(tree_digest(&a), tree_digest(&b));
        assert_eq!(tree_digest(&a), tree_digest(&c));
    }

    #[test]
    fn sensitive_to_paths_content_and_structure() {
        let base = vec![entry("a/b", b"1"), entry("c", b"2")];
        let d = tree_digest(&base);
        let variants = [
            vec![entry("a/b", b"1"), entry("c", b"3")],   // content
            vec![entry("a/x", b"1"), entry("c", b"2")],   // name
            vec![entry("b", b"1"), entry("c", b"2")],     // moved up a level
            vec![entry("a/b", b"1"), entry("a/c", b"2")], // moved into a directory
            vec![entry("a/b", b"1")],                     // removed
            vec![entry("a/b", b"1"), entry("c", b"2"), entry("d", b"")], // added empty file
        ];
        let mut seen = HashSet::new();
        seen.insert(d);
        for v in &variants {
            assert!(seen.insert(tree_digest(v)), "collision for {v:?}");
        }
        // Same digest, different recorded size: still a different tree.
        let mut sized = base.clone();
        sized[1].size = 99;
        assert_ne!(tree_digest(&sized), d);
    }

    #[test]
    fn name_boundaries_are_unambiguous() {
        // "ab" + "c" must not collide with "a" + "bc" thanks to the length prefix.
        let x = [entry("ab", b"1"), entry("c", b"2")];
        let y = [entry("a", b"1"), entry("bc", b"2")];
        assert_ne!(tree_digest(&x), tree_digest(&y));
    }

    #[test]
    fn deep_paths_do_not_recurse() {
        let path = vec!["d"; 20_000].join("/");
        let files = [entry(&path, b"x")];
        assert_eq!(tree_digest(&files), tree_digest(&files));
    }

    #[test]
    fn diff_reports_sorted_changes() {
        let old = vec![
            entry("same", b"s"),
            entry("gone", b"g"),
            entry("changed", b"1"),
            entry("resized", b"r"),
        ];
        let mut resized = entry("resized", b"r");
        resized.size = 7;
        let new = vec![
            entry("zz-new", b"n"),
            entry("changed", b"2"),
            entry("same", b"s"),
            resized,
            entry("a-new", b"a"),
        ];
        assert_eq!(
            diff_trees(&old, &new),
            vec![
                TreeChange::Added("a-new".into()),
                TreeChange::Modified("changed".into()),
                TreeChange::Removed("gone".into()),
                TreeChange::Modified("resized".into()),
                TreeChange::Added("zz-new".into()),
            ]
        );
        assert!(diff_trees(&new, &new).is_empty());
        assert_eq!(TreeChange::Removed("p".into()).path(), "p");
    }
}
