use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hermetic-archive-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("in")).unwrap();
        Self(dir)
    }
    fn put(&self, path: &str, bytes: &[u8]) {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    fn read(&self, path: &str) -> Vec<u8> {
        fs::read(self.0.join(path)).unwrap()
    }
    fn mounts(&self) -> Mounts {
        Mounts::rooted(&self.0)
    }
    /// Every file under `dir`, with its contents.
    fn tree(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        let dir = self.0.join(dir);
        hermetic_sdk::list_files(&dir)
            .unwrap()
            .into_iter()
            .map(|rel| (rel.display().to_string(), fs::read(dir.join(&rel)).unwrap()))
            .collect()
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn unzstd(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    zstd::Decoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// A raw tar entry: its name, type and contents.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// What `packs_deterministically_with_fixed_metadata` reads back of an entry: path, type,
/// mode, mtime, uid, gid, contents.
type Listed = (String, char, u32, u64, u64, u64, Vec<u8>);

/// A `.tar.zst` of raw entries, written without the tar crate's checks, as an attacker would.
fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.extend([0; 1024]);
    let mut out = Vec::new();
    zstd::compress(&tar[..], &mut out).unwrap();
    out
}

fn limits(max_bytes: u64, max_entries: u64) -> Limits {
    Limits {
        max_bytes,
        max_entries,
    }
}

#[test]
fn parses_commands() {
    let none = Params::default();
    assert_eq!(
        parse_args(&args(&["pack"]), &none).unwrap(),
        Command::Pack {
            output: DEFAULT_OUTPUT.into(),
            strip: 0,
            paths: vec![],
        }
    );
    assert_eq!(
        parse_args(
            &args(&["pack", "-o", "r/x.tar.zst", "/deps/b", "--strip=1"]),
            &none
        )
        .unwrap(),
        Command::Pack {
            output: "r/x.tar.zst".into(),
            strip: 1,
            paths: args(&["/deps/b"]),
        }
    );
    assert_eq!(
        parse_args(&args(&["unpack", "a.tar.zst"]), &none).unwrap(),
        Command::Unpack {
            archive: "a.tar.zst".into(),
            into: PathBuf::new(),
            limits: limits(DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES),
        }
    );
    // Params set the limits; an option wins over a param.
    let params = Params {
        max_bytes: Some(10),
        max_entries: Some(20),
    };
    assert_eq!(
        parse_args(
            &args(&["unpack", "--max-entries", "5", "--into", "v", "/deps/x/a"]),
            &params
        )
        .unwrap(),
        Command::Unpack {
            archive: "/deps/x/a".into(),
            into: "v".into(),
            limits: limits(10, 5),
        }
    );
}

#[test]
fn rejects_bad_arguments() {
    let err = |a: &[&str]| {
        parse_args(&args(a), &Params::default())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(&[]), format!("missing command; {USAGE}"));
    assert_eq!(err(&["zip"]), format!("unknown command \"zip\"; {USAGE}"));
    assert_eq!(
        err(&["unpack"]),
        format!("unpack needs exactly one ARCHIVE, not 0; {USAGE}")
    );
    assert_eq!(
        err(&["unpack", "a", "b"]),
        format!("unpack needs exactly one ARCHIVE, not 2; {USAGE}")
    );
    assert_eq!(
        err(&["pack", "--into", "x"]),
        format!("unknown option --into for pack; {USAGE}")
    );
    assert_eq!(
        err(&["unpack", "--max-bytes", "lots", "a"]),
        format!("--max-bytes needs a non-negative integer, not \"lots\"; {USAGE}")
    );
    assert!(err(&["unpack", "--into", "../x", "a"]).contains("without `..`"));
    assert!(
        err(&["pack", "-o", "a", "--output", "b"]).starts_with("--output given more than once")
    );
    assert_eq!(
        params_from::<Params>(r#"{"max_byte": 1}"#)
            .unwrap_err()
            .to_string(),
        "invalid params: unknown field `max_byte`, expected `max_bytes` or `max_entries` \
         at line 1 column 11"
    );
}

fn params_from<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    hermetic_sdk::params_from(json)
}

#[test]
fn packs_deterministically_with_fixed_metadata() {
    let s = Scratch::new("pack");
    s.put("in/b.txt", b"bee\n");
    s.put("in/a/z.txt", b"zed\n");
    s.put("in/a/deep/y.bin", &[0, 1, 2, 255]);
    s.put("deps/build/app.wasm", b"\0asm");
    let m = s.mounts();
    pack(&m, &[], 0, Path::new("one.tar.zst")).unwrap();
    pack(&m, &[], 0, Path::new("two.tar.zst")).unwrap();
    assert_eq!(s.read("out/one.tar.zst"), s.read("out/two.tar.zst"));
    assert!(
        !s.0.join("tmp/archive-pack.tar").exists(),
        "the scratch tar is removed"
    );

    let tar = unzstd(&s.read("out/one.tar.zst"));
    let mut archive = tar::Archive::new(&tar[..]);
    let listed: Vec<Listed> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (
                e.path().unwrap().display().to_string(),
                char::from(h.entry_type().as_byte()),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                data,
            )
        })
        .collect();
    let entry = |name: &str, kind, mode, data: &[u8]| {
        (name.to_string(), kind, mode, 0, 0, 0, data.to_vec())
    };
    assert_eq!(
        listed,
        [
            entry("a", '5', 0o755, b""),
            entry("a/deep", '5', 0o755, b""),
            entry("a/deep/y.bin", '0', 0o644, &[0, 1, 2, 255]),
            entry("a/z.txt", '0', 0o644, b"zed\n"),
            entry("b.txt", '0', 0o644, b"bee\n"),
        ]
    );

    // Named paths, stripped.
    pack(
        &m,
        &args(&["/deps/build", "/in/b.txt"]),
        0,
        Path::new("d.tar.zst"),
    )
    .unwrap();
    let tar = unzstd(&s.read("out/d.tar.zst"));
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["b.txt", "build", "build/app.wasm"]);
    pack(&m, &args(&["/deps/build"]), 1, Path::new("e.tar.zst")).unwrap();
    let tar = unzstd(&s.read("out/e.tar.zst"));
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["app.wasm"]);
}

#[test]
fn round_trips_including_long_paths() {
    let s = Scratch::new("round");
    let long = format!("{}/{}.txt", "d".repeat(120), "f".repeat(150));
    s.put(&format!("in/{long}"), b"long\n");
    s.put("in/empty", b"");
    s.put(
        "in/big.bin",
        &(0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    );
    let m = s.mounts();
    run(
        &m,
        &args(&["pack", "--output", "x.tar.zst"]),
        &Params::default(),
    )
    .unwrap();

    let t = Scratch::new("round-unpack");
    t.put("deps/bundle/x.tar.zst", &s.read("out/x.tar.zst"));
    let args = args(&["unpack", "--into", "restored", "/deps/bundle/x.tar.zst"]);
    run(&t.mounts(), &args, &Params::default()).unwrap();
    assert_eq!(t.tree("out/restored"), s.tree("in"));
}

#[test]
fn unpack_refuses_unsafe_entries() {
    use tar::EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};
    let cases: &[(&[RawEntry], &str)] = &[
        (
            &[("ok.txt", Regular, b"ok"), ("link", Symlink, b"")],
            "entry \"link\" is a symbolic link; only regular files and directories can be unpacked",
        ),
        (
            &[("hard", Link, b"")],
            "entry \"hard\" is a hard link; only regular files and directories can be unpacked",
        ),
        (
            &[("dev", Char, b"")],
            "entry \"dev\" is a character device; only regular files and directories can be \
             unpacked",
        ),
        (
            &[("dev", Block, b"")],
            "entry \"dev\" is a block device; only regular files and directories can be unpacked",
        ),
        (
            &[("pipe", Fifo, b"")],
            "entry \"pipe\" is a FIFO; only regular files and directories can be unpacked",
        ),
        (
            &[("/etc/passwd", Regular, b"x")],
            "entry \"/etc/passwd\" has an absolute path",
        ),
        (
            &[("a/../../x", Regular, b"x")],
            "entry \"a/../../x\" has a `..` component",
        ),
        (
            &[("..", Directory, b"")],
            "entry \"..\" has a `..` component",
        ),
        (
            &[("a.txt", Regular, b"1"), ("./a.txt", Regular, b"2")],
            "entry \"./a.txt\" appears more than once",
        ),
    ];
    for (i, (entries, message)) in cases.iter().enumerate() {
        let s = Scratch::new(&format!("unsafe-{i}"));
        s.put("in/evil.tar.zst", &raw_archive(entries));
        let err = unpack(&s.mounts(), "evil.tar.zst", Path::new(""), limits(1000, 10))
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("cannot unpack /in/evil.tar.zst: {message}"));
        // Nothing unsafe was created.
        assert!(!s.0.join("out/link").exists() && !s.0.join("x").exists());
    }
}

#[test]
fn unpack_enforces_its_limits() {
    let s = Scratch::new("limits");
    let m = s.mounts();
    let files: Vec<(String, Vec<u8>)> =
        (0..5).map(|i| (format!("f{i}"), vec![b'x'; 100])).collect();
    let entries: Vec<RawEntry> = files
        .iter()
        .map(|(n, d)| (n.as_str(), tar::EntryType::Regular, d.as_slice()))
        .collect();
    s.put("in/a.tar.zst", &raw_archive(&entries));
    let err = |l: Limits| {
        let _ = fs::remove_dir_all(s.0.join("out"));
        unpack(&m, "/in/a.tar.zst", Path::new("u"), l)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(limits(1000, 4)),
        "cannot unpack /in/a.tar.zst: it has more than 4 entries (max_entries)"
    );
    assert_eq!(
        err(limits(450, 10)),
        "cannot unpack /in/a.tar.zst: its files hold more than 450 bytes (max_bytes)"
    );
    // The file that would cross the limit was not written.
    assert!(!s.0.join("out/u/f4").exists());
    let _ = fs::remove_dir_all(s.0.join("out"));
    assert_eq!(
        unpack(&m, "/in/a.tar.zst", Path::new("u"), limits(500, 5)).unwrap(),
        5
    );

    // Padding after the archive's end counts towards the stream cap too.
    let tar = vec![0u8; 3 * 1024 * 1024];
    let mut bomb = Vec::new();
    zstd::compress(&tar[..], &mut bomb).unwrap();
    assert!(bomb.len() < 100_000);
    s.put("in/bomb.tar.zst", &bomb);
    let err = unpack(&m, "/in/bomb.tar.zst", Path::new("b"), limits(1000, 10))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot unpack /in/bomb.tar.zst: it decompresses to more than 99304 bytes, the most \
         that max_entries 10 and max_bytes 1000 allow"
    );
}

#[test]
fn unpack_reports_corrupt_archives() {
    let s = Scratch::new("corrupt");
    s.put("in/plain.tar.zst", b"not an archive");
    let err = unpack(&s.mounts(), "plain.tar.zst", Path::new(""), limits(10, 10))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot unpack /in/plain.tar.zst: not zstd data (bad magic number)"
    );
    let err = unpack(&s.mounts(), "/out/x", Path::new(""), limits(10, 10))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "path \"/out/x\" is not under /in or /deps");
}

#[test]
fn safe_paths() {
    assert_eq!(safe_path(b"a//./b/").unwrap(), Path::new("a/b"));
    assert_eq!(safe_path(b"./").unwrap(), Path::new(""));
    assert_eq!(safe_path(b"/x").unwrap_err(), "has an absolute path");
    assert_eq!(safe_path(b"a/..").unwrap_err(), "has a `..` component");
    assert_eq!(
        safe_path(b"\xff").unwrap_err(),
        "has a path that is not valid UTF-8"
    );
}
