//! Hostile archives planted in the store under a real step's key: each is rejected with a clear
//! message, writes nothing outside its destination, and the step simply runs again.

use std::io::Read;
use std::path::Path;

use hermetic_cache::{ActionEntry, Digest, DiskStore, FileEntry, tree_digest};
use hermetic_tests::{Output, Test, guests};

/// A GNU tar header with raw name bytes (no checks), for hostile entries.
fn header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}

fn link(name: &[u8], kind: tar::EntryType, target: &[u8]) -> tar::Header {
    let mut h = header(name, kind, 0);
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
    h
}

fn archive(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (mut h, data) in entries {
        h.set_cksum();
        builder.append(&h, &data[..]).unwrap();
    }
    zstd::stream::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap()
}

fn file(name: &str, data: &[u8]) -> (tar::Header, Vec<u8>) {
    (
        header(name.as_bytes(), tar::EntryType::Regular, data.len() as u64),
        data.to_vec(),
    )
}

/// 64 MiB of zeros in one entry: a few KiB compressed.
fn zstd_bomb() -> Vec<u8> {
    let size = 64u64 << 20;
    let mut h = header(b"a/one.txt", tar::EntryType::Regular, size);
    h.set_cksum();
    let mut builder = tar::Builder::new(zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap());
    builder.append(&h, std::io::repeat(0).take(size)).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// Runs the project once and returns it with the key of its step `a`.
fn cached_project() -> (Output, Digest) {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: hostile\nsteps:\n  a: { task: copy.wasm, inputs: [\"a/*\"], outputs: [a] }\n",
        )
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .file("a/one.txt", "one\n")
        .file("canary/secret", "canary\n")
        .args(["run"])
        .expect_status(0)
        .run();
    let records: serde_json::Value =
        serde_json::from_str(&out.read(".hermetic/keys.json")).unwrap();
    let key = records["steps"]["a"]["key"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (out, key)
}

/// Replaces the cached result of `key` with one whose archive is `bytes`.
fn plant(cache: &Path, key: &Digest, bytes: &[u8]) {
    let store = DiskStore::open(&cache.join("store")).unwrap();
    let files = vec![FileEntry {
        path: "a/one.txt".into(),
        digest: Digest::of(b"one\n"),
        size: 4,
    }];
    let empty = Digest::of(b"");
    store.store_blob(&Digest::of(bytes), bytes).unwrap();
    store.store_blob(&empty, b"").unwrap();
    let entry = ActionEntry {
        outputs_archive: Digest::of(bytes),
        output_tree: tree_digest(&files),
        output_files: files,
        stdout: empty,
        stderr: empty,
        exit_code: 0,
        fuel_used: 1,
        peak_memory: 0,
        duration_ms: 1,
    };
    store.store_action(key, &entry).unwrap();
}

#[test]
fn hostile_archives_are_rejected_and_the_step_reruns() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "zip-slip",
            archive(vec![file("../../../canary/secret", b"pwned\n")]),
            "`../../../canary/secret`",
        ),
        (
            "absolute path",
            archive(vec![file("/tmp/hermetic-pwned", b"pwned\n")]),
            "`/tmp/hermetic-pwned`",
        ),
        (
            "symlink then a file through it",
            archive(vec![
                (
                    link(b"a", tar::EntryType::Symlink, b"../../../canary"),
                    Vec::new(),
                ),
                file("a/secret", b"pwned\n"),
            ]),
            "symlink",
        ),
        (
            "hard link outside the root",
            archive(vec![(
                link(
                    b"a/one.txt",
                    tar::EntryType::Link,
                    b"../../../canary/secret",
                ),
                Vec::new(),
            )]),
            "link",
        ),
        (
            "tar bomb",
            archive((0..5000).map(|i| file(&format!("a/f{i}"), b"")).collect()),
            "tar bomb",
        ),
        ("zstd bomb", zstd_bomb(), "zstd bomb"),
    ];
    for (what, bytes, needle) in cases {
        let (out, key) = cached_project();
        plant(&out.cache_dir(), &key, &bytes);
        std::fs::remove_dir_all(out.join(".hermetic/out")).unwrap();
        let rerun = out.again().args(["run", "--json"]).expect_status(0).run();
        let events = rerun.json_lines();
        let warning = events
            .iter()
            .find(|e| e["event"] == "warning")
            .unwrap_or_else(|| panic!("{what}: no warning in {events:?}"));
        let message = warning["message"].as_str().unwrap();
        assert!(
            message.starts_with("cached outputs (archive ") && message.contains(needle),
            "{what}: {message}"
        );
        assert!(message.ends_with("; re-running"), "{what}: {message}");
        let finished = events
            .iter()
            .find(|e| e["event"] == "step_finished")
            .unwrap();
        assert_eq!(finished["cached"], false, "{what}");
        assert_eq!(out.read(".hermetic/out/a/a/one.txt"), "one\n", "{what}");
        assert_eq!(out.read("canary/secret"), "canary\n", "{what}");
        assert!(!Path::new("/tmp/hermetic-pwned").exists(), "{what}");
        // Nothing of the rejected archive is left beside the outputs.
        let leftovers: Vec<String> = std::fs::read_dir(out.join(".hermetic/out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, ["a"], "{what}");
    }
}
