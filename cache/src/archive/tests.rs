use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;
use crate::{Digest, FileEntry};

/// A source tree with nested directories, an empty directory, an empty file, a long path.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("src/bin")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("README"), b"read me").unwrap();
    fs::write(root.join("src/lib.rs"), b"pub fn f() {}").unwrap();
    fs::write(root.join("src/bin/main.rs"), b"fn main() {}").unwrap();
    fs::write(root.join("src/a-b"), b"").unwrap();
    let long_dir = root.join("d".repeat(120)).join("e".repeat(150));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(200)), vec![7u8; 300_000]).unwrap();
}

fn tar_entries(archive: &[u8]) -> Vec<(String, tar::Header)> {
    let tar_bytes = zstd::stream::decode_all(archive).unwrap();
    let mut ar = tar::Archive::new(&tar_bytes[..]);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                e.header().clone(),
            )
        })
        .collect()
}

#[test]
fn pack_is_deterministic_across_mtimes_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make_tree(&a);
    make_tree(&b);
    // Different timestamps and permissions in b.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let f = fs::File::options()
        .write(true)
        .open(b.join("src/lib.rs"))
        .unwrap();
    f.set_modified(old).unwrap();
    fs::set_permissions(b.join("README"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(b.join("src/bin"), fs::Permissions::from_mode(0o700)).unwrap();

    let (bytes_a, files_a) = pack_dir(&a).unwrap();
    let (bytes_a2, files_a2) = pack_dir(&a).unwrap();
    let (bytes_b, files_b) = pack_dir(&b).unwrap();
    assert_eq!(bytes_a, bytes_a2);
    assert_eq!(bytes_a, bytes_b);
    assert_eq!(files_a, files_a2);
    assert_eq!(files_a, files_b);
}

#[test]
fn pack_writes_fixed_metadata_in_path_order() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let (bytes, files) = pack_dir(tmp.path()).unwrap();

    let entries = tar_entries(&bytes);
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
    assert!(paths.contains(&"empty"));
    assert!(paths.contains(&"src/bin/main.rs"));
    for (path, header) in &entries {
        assert!(header.as_gnu().is_some(), "{path}: not a GNU header");
        assert_eq!(header.mtime().unwrap(), 0, "{path}");
        assert_eq!(header.uid().unwrap(), 0, "{path}");
        assert_eq!(header.gid().unwrap(), 0, "{path}");
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{path}");
        assert_eq!(header.groupname_bytes(), Some(&b""[..]), "{path}");
        let want = if header.entry_type().is_dir() {
            0o755
        } else {
            0o644
        };
        assert_eq!(header.mode().unwrap(), want, "{path}");
    }

    let file_paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let long = format!(
        "{}/{}/{}",
        "d".repeat(120),
        "e".repeat(150),
        "f".repeat(200)
    );
    assert_eq!(
        file_paths,
        vec![
            "README",
            long.as_str(),
            "src/a-b",
            "src/bin/main.rs",
            "src/lib.rs"
        ]
    );
    assert_eq!(
        files[0],
        FileEntry {
            path: "README".into(),
            digest: Digest::of(b"read me"),
            size: 7
        }
    );
    assert_eq!(files[1].size, 300_000);
}

#[test]
fn pack_refuses_symlink_and_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/target"), b"x").unwrap();
    std::os::unix::fs::symlink("target", root.join("sub/link")).unwrap();
    match pack_dir(&root) {
        Err(ArchiveError::Symlink { path }) => assert_eq!(path, root.join("sub/link")),
        other => panic!("expected a symlink error, got {other:?}"),
    }
    let err = pack_dir(&root).unwrap_err().to_string();
    assert!(err.contains("sub/link") && err.contains("symlink"), "{err}");

    fs::remove_file(root.join("sub/link")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    match pack_dir(&root) {
        Err(ArchiveError::SpecialFile { path, kind }) => {
            assert_eq!(path, root.join("sock"));
            assert_eq!(kind, "socket");
        }
        other => panic!("expected a special-file error, got {other:?}"),
    }
}

#[test]
fn pack_refuses_a_file_as_root() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"").unwrap();
    assert!(matches!(
        pack_dir(&file),
        Err(ArchiveError::NotADirectory { .. })
    ));
    let err = pack_dir(&tmp.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn unpack_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let (bytes, files) = pack_dir(&src).unwrap();
    let dest = tmp.path().join("deep/er/dest");
    let unpacked = unpack(&bytes, &dest, &ArchiveLimits::default()).unwrap();
    assert_eq!(unpacked, files);
    for f in &files {
        let content = fs::read(dest.join(&f.path)).unwrap();
        assert_eq!(Digest::of(&content), f.digest, "{}", f.path);
        assert_eq!(content, fs::read(src.join(&f.path)).unwrap());
    }
    assert!(dest.join("empty").is_dir());
    assert_eq!(fs::read_dir(dest.join("empty")).unwrap().count(), 0);
    // Repacking the extracted tree gives the same archive.
    assert_eq!(pack_dir(&dest).unwrap().0, bytes);
}

#[test]
fn entry_limit_counts_files_and_directories_not_long_name_records() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let (bytes, _) = pack_dir(&src).unwrap();
    // 10 entries: README, d…, d…/e…, d…/e…/f…, empty, src, src/a-b, src/bin, src/bin/main.rs,
    // src/lib.rs; three of them have long-name records.
    let real = tar_entries(&bytes).len() as u64;
    assert_eq!(real, 10);
    let exact = ArchiveLimits {
        max_bytes: u64::MAX,
        max_entries: real,
    };
    unpack(&bytes, &tmp.path().join("ok"), &exact).unwrap();
    let one_less = ArchiveLimits {
        max_entries: real - 1,
        ..exact
    };
    let err = unpack(&bytes, &tmp.path().join("too-many"), &one_less).unwrap_err();
    assert!(matches!(err, ArchiveError::TooManyEntries { limit } if limit == real - 1));
}

#[test]
fn unpack_empty_directory_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let (bytes, files) = pack_dir(&src).unwrap();
    assert!(files.is_empty());
    let dest = tmp.path().join("dest");
    assert!(
        unpack(&bytes, &dest, &ArchiveLimits::default())
            .unwrap()
            .is_empty()
    );
    assert!(dest.is_dir());
}

#[test]
fn unpack_refuses_existing_destination_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let (bytes, _) = pack_dir(&src).unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), b"k").unwrap();
    let err = unpack(&bytes, &dest, &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::DestinationExists { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"k");
}

// ---- hostile archives ----

/// A GNU header with raw name bytes (bypassing `set_path`'s checks).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header
}

/// Builds a tar+zstd archive from `(header, data)` pairs, with checksums fixed up.
fn hostile(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (mut header, data) in entries {
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    zstd::stream::encode_all(&tar_bytes[..], 3).unwrap()
}

fn file(name: &str, data: &[u8]) -> (tar::Header, Vec<u8>) {
    (
        raw_header(name.as_bytes(), tar::EntryType::Regular, data.len() as u64),
        data.to_vec(),
    )
}

/// A scratch area: `dest` (not created) and a `canary` directory next to it.
struct Scene {
    _tmp: tempfile::TempDir,
    dest: PathBuf,
    canary: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        fs::create_dir(&canary).unwrap();
        fs::write(canary.join("secret"), b"secret").unwrap();
        Self {
            dest: tmp.path().join("dest"),
            canary,
            _tmp: tmp,
        }
    }

    /// Unpacks, expecting an error; checks that nothing leaked and dest was removed.
    fn reject(&self, archive: &[u8], limits: &ArchiveLimits) -> ArchiveError {
        let err = unpack(archive, &self.dest, limits).expect_err("unpack should fail");
        let mut names: Vec<_> = fs::read_dir(&self.canary)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec!["secret"], "the canary directory was touched");
        assert_eq!(fs::read(self.canary.join("secret")).unwrap(), b"secret");
        assert!(
            !self.dest.exists(),
            "the partial destination was not removed"
        );
        let parent = self.dest.parent().unwrap();
        let mut siblings: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        siblings.sort();
        assert_eq!(
            siblings,
            vec!["canary"],
            "something was written next to dest"
        );
        err
    }
}

#[test]
fn rejects_zip_slip() {
    let scene = Scene::new();
    let archive = hostile(vec![file("ok", b"fine"), file("../canary/x", b"evil")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert!(
        matches!(err, ArchiveError::UnsafePath { ref entry, .. } if entry == "../canary/x"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "archive entry `../canary/x` is rejected: the path has a `..` component"
    );
}

#[test]
fn rejects_absolute_path() {
    let scene = Scene::new();
    let target = format!("{}/x", scene.canary.display());
    assert!(target.len() < 100);
    let archive = hostile(vec![file(&target, b"evil")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert_eq!(
        err.to_string(),
        format!("archive entry `{target}` is rejected: the path is absolute")
    );
}

#[test]
fn rejects_symlink_then_file_through_it() {
    let scene = Scene::new();
    let mut link = raw_header(b"link", tar::EntryType::Symlink, 0);
    let target = scene.canary.to_str().unwrap().as_bytes();
    link.as_old_mut().linkname[..target.len()].copy_from_slice(target);
    let archive = hostile(vec![(link, vec![]), file("link/x", b"evil")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert_eq!(
        err.to_string(),
        "archive entry `link` is rejected: it is a symlink; only regular files and directories are extracted"
    );
}

#[test]
fn rejects_hard_link() {
    let scene = Scene::new();
    let mut link = raw_header(b"hl", tar::EntryType::Link, 0);
    link.as_old_mut().linkname[..16].copy_from_slice(b"../canary/secret");
    let archive = hostile(vec![(link, vec![]), file("hl", b"overwrite")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert!(
        matches!(err, ArchiveError::UnsupportedEntry { ref kind, .. } if kind == "hard link"),
        "{err:?}"
    );
}

#[test]
fn rejects_devices_fifos_and_pax_headers() {
    for (kind, name) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
        (tar::EntryType::XHeader, "pax extended header"),
        (tar::EntryType::GNUSparse, "GNU sparse file"),
    ] {
        let scene = Scene::new();
        let archive = hostile(vec![(raw_header(b"dev", kind, 0), vec![])]);
        let err = scene.reject(&archive, &ArchiveLimits::default());
        assert!(
            err.to_string().contains(&format!("it is a {name}")),
            "{err}"
        );
    }
}

#[test]
fn rejects_bad_names() {
    for (name, reason) in [
        (&b"a\\b"[..], "backslash"),
        (&b"bad\xff"[..], "not valid UTF-8"),
        (&b"a//b"[..], "empty component"),
        (&b"./a"[..], "`.` component"),
        (&b"a/"[..], "empty component"), // a trailing slash on a file
    ] {
        let scene = Scene::new();
        let archive = hostile(vec![(raw_header(name, tar::EntryType::Regular, 0), vec![])]);
        let err = scene.reject(&archive, &ArchiveLimits::default());
        assert!(
            matches!(err, ArchiveError::UnsafePath { .. }) && err.to_string().contains(reason),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn rejects_duplicates_and_conflicts() {
    let scene = Scene::new();
    let err = scene.reject(
        &hostile(vec![file("x", b"1"), file("x", b"2")]),
        &ArchiveLimits::default(),
    );
    assert_eq!(
        err.to_string(),
        "archive entry `x` is rejected: the path appears twice in the archive"
    );

    let err = scene.reject(
        &hostile(vec![file("x", b"1"), file("x/y", b"2")]),
        &ArchiveLimits::default(),
    );
    assert_eq!(
        err.to_string(),
        "archive entry `x/y` is rejected: its parent `x` is a file"
    );

    let err = scene.reject(
        &hostile(vec![file("x/y", b"1"), file("x", b"2")]),
        &ArchiveLimits::default(),
    );
    assert!(matches!(err, ArchiveError::Conflict { .. }), "{err:?}");
}

#[test]
fn accepts_directory_entries_in_any_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let archive = hostile(vec![
        file("a/b/c", b"c"),
        (raw_header(b"a/", tar::EntryType::Directory, 0), vec![]),
        (raw_header(b"a/b", tar::EntryType::Directory, 0), vec![]),
        (raw_header(b"z", tar::EntryType::Directory, 0), vec![]),
    ]);
    let files = unpack(&archive, &dest, &ArchiveLimits::default()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(fs::read(dest.join("a/b/c")).unwrap(), b"c");
    assert!(dest.join("z").is_dir());
}

#[test]
fn rejects_tar_bomb() {
    let scene = Scene::new();
    let entries = (0..50).map(|i| file(&format!("f{i}"), b"")).collect();
    let limits = ArchiveLimits {
        max_bytes: u64::MAX,
        max_entries: 10,
    };
    let err = scene.reject(&hostile(entries), &limits);
    assert_eq!(
        err.to_string(),
        "the archive has more than 10 entries (tar bomb?)"
    );
}

#[test]
fn rejects_zstd_bomb_declared_size() {
    // 256 MiB of zeros compresses to a few KiB.
    let size = 256u64 << 20;
    let mut header = raw_header(b"bomb", tar::EntryType::Regular, size);
    header.set_cksum();
    let mut builder = tar::Builder::new(zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap());
    builder.append(&header, io::repeat(0).take(size)).unwrap();
    let archive = builder.into_inner().unwrap().finish().unwrap();
    assert!(archive.len() < 100_000, "{}", archive.len());

    let scene = Scene::new();
    let limits = ArchiveLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };
    let err = scene.reject(&archive, &limits);
    assert_eq!(
        err.to_string(),
        "the archive decompresses to more than 1048576 bytes (zstd bomb?)"
    );
}

#[test]
fn rejects_stream_past_the_byte_limit() {
    // Every entry is small; the headers alone exceed the limit.
    let scene = Scene::new();
    let entries = (0..20).map(|i| file(&format!("f{i}"), b"")).collect();
    let limits = ArchiveLimits {
        max_bytes: 4096,
        max_entries: 1000,
    };
    let err = scene.reject(&hostile(entries), &limits);
    assert!(
        matches!(err, ArchiveError::TooLarge { limit: 4096 }),
        "{err:?}"
    );
}

#[test]
fn byte_limit_is_inclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = hostile(vec![file("a", b"x")]);
    let exact = zstd::stream::decode_all(&archive[..]).unwrap().len() as u64;
    let limits = ArchiveLimits {
        max_bytes: exact,
        max_entries: 10,
    };
    assert_eq!(
        unpack(&archive, &tmp.path().join("d"), &limits)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn rejects_corrupt_and_truncated_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let (bytes, _) = pack_dir(&src).unwrap();

    let scene = Scene::new();
    let err = scene.reject(&bytes[..bytes.len() / 2], &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::Corrupt(_)), "{err:?}");
    let err = scene.reject(b"definitely not zstd", &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::Corrupt(_)), "{err:?}");

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let err = scene.reject(&flipped, &ArchiveLimits::default());
    assert!(
        matches!(
            err,
            ArchiveError::Corrupt(_) | ArchiveError::UnsafePath { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_oversized_long_name() {
    let scene = Scene::new();
    let mut long = raw_header(b"././@LongLink", tar::EntryType::GNULongName, 10_000);
    long.set_mode(0o644);
    let archive = hostile(vec![(long, vec![b'a'; 10_000]), file("x", b"")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert!(err.to_string().contains("longer than 4096"), "{err}");
}

#[test]
fn long_name_cannot_smuggle_dotdot() {
    let scene = Scene::new();
    let name = format!("{}/../../canary/x", "a".repeat(120));
    let mut long = raw_header(
        b"././@LongLink",
        tar::EntryType::GNULongName,
        name.len() as u64 + 1,
    );
    long.set_mode(0o644);
    let mut data = name.clone().into_bytes();
    data.push(0);
    let archive = hostile(vec![(long, data), file("innocent", b"evil")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert!(
        matches!(err, ArchiveError::UnsafePath { ref entry, .. } if *entry == name),
        "{err:?}"
    );
}

#[test]
fn long_name_with_an_embedded_nul_is_rejected() {
    let scene = Scene::new();
    let name = format!("{}\0/../../canary/x", "a".repeat(120));
    let mut long = raw_header(
        b"././@LongLink",
        tar::EntryType::GNULongName,
        name.len() as u64 + 1,
    );
    long.set_mode(0o644);
    let mut data = name.into_bytes();
    data.push(0);
    let archive = hostile(vec![(long, data), file("innocent", b"evil")]);
    let err = scene.reject(&archive, &ArchiveLimits::default());
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[test]
fn write_error_names_the_path() {
    // A file name longer than NAME_MAX fails at create, with the path in the message.
    let tmp = tempfile::tempdir().unwrap();
    let name = "n".repeat(300);
    let mut long = raw_header(
        b"././@LongLink",
        tar::EntryType::GNULongName,
        name.len() as u64 + 1,
    );
    long.set_mode(0o644);
    let mut data = name.clone().into_bytes();
    data.push(0);
    let archive = hostile(vec![(long, data), file("short", b"x")]);
    let dest = tmp.path().join("dest");
    let err = unpack(&archive, &dest, &ArchiveLimits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::Io(_)), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
    assert!(!dest.exists());
}

/// Trees whose tar stream is just under, at and over the one-shot limit pack deterministically
/// and unpack to the same files; only the small ones' frames record their content size.
#[test]
fn small_and_large_archives_round_trip_on_either_side_of_the_one_shot_limit() {
    // A tar stream is the 512-byte header, the content padded to 512, and two zero blocks.
    let limit = pack::ONE_SHOT_MAX;
    for (content, one_shot) in [
        (limit - 512 - 1024, true),
        (limit - 512 - 1024 + 1, false),
        (3 * limit, false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        let bytes: Vec<u8> = (0..content).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(root.join("data"), &bytes).unwrap();
        let (archive, files) = pack_dir(&root).unwrap();
        assert_eq!(pack_dir(&root).unwrap().0, archive, "deterministic");
        assert_eq!(files[0].digest, Digest::of(&bytes));
        let recorded = zstd::zstd_safe::get_frame_content_size(&archive).unwrap();
        assert_eq!(recorded.is_some(), one_shot, "{content} bytes");
        let out = tmp.path().join("out");
        unpack(&archive, &out, &ArchiveLimits::default()).unwrap();
        assert_eq!(fs::read(out.join("data")).unwrap(), bytes);
    }
}
