//! `archive` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

/// The outputs of a run, as sorted `(path, bytes)` pairs.
fn files(run: &hermetic_runtime::testing::TaskRun, prefix: &str) -> Vec<(String, Vec<u8>)> {
    run.outputs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}

fn pack_run() -> hermetic_runtime::testing::TaskRun {
    TaskTest::task("archive")
        .input("docs/guide.md", "# Guide\n")
        .input("docs/img/logo.svg", "<svg/>\n")
        .input("notes.txt", "not packed\n")
        .dep_output("build", "app.wasm", b"\0asm\x01\0\0\0")
        .args([
            "pack",
            "--output",
            "release.tar.zst",
            "/in/docs",
            "/deps/build",
        ])
        .run()
}

#[test]
fn pack_is_reproducible_and_unpacks_to_the_same_files() {
    let first = pack_run();
    first.assert_success();
    let second = pack_run();
    second.assert_success();
    let packed = first.output("release.tar.zst").to_vec();
    assert_eq!(second.output("release.tar.zst"), packed.as_slice());
    assert_eq!(first.outputs.len(), 1);
    assert_eq!(first.progress.last(), Some(&(3, Some(3))));
    // zstd magic number: a standard frame.
    assert_eq!(packed[..4], [0x28, 0xB5, 0x2F, 0xFD]);

    let unpacked = TaskTest::task("archive")
        .dep_output("bundle", "release.tar.zst", &packed)
        .args(["unpack", "--into", "site", "/deps/bundle/release.tar.zst"])
        .run();
    unpacked.assert_success();
    assert_eq!(
        files(&unpacked, "site/"),
        [
            ("build/app.wasm".to_string(), b"\0asm\x01\0\0\0".to_vec()),
            ("docs/guide.md".to_string(), b"# Guide\n".to_vec()),
            ("docs/img/logo.svg".to_string(), b"<svg/>\n".to_vec()),
        ]
    );
    assert_eq!(unpacked.outputs.len(), 3);
}

#[test]
fn unpack_limits_come_from_params() {
    let packed = pack_run().output("release.tar.zst").to_vec();
    let run = TaskTest::task("archive")
        .input("r.tar.zst", &packed)
        .args(["unpack", "r.tar.zst"])
        .params(serde_json::json!({ "max_entries": 2 }))
        .run();
    run.assert_exit(1);
    // Sorted entries: build/, build/app.wasm, docs/, ...
    assert_eq!(
        run.stderr_str(),
        "error: cannot unpack /in/r.tar.zst: it has more than 2 entries (max_entries)\n"
    );
}

#[test]
fn unpack_refuses_a_non_archive() {
    let run = TaskTest::task("archive")
        .input("fake.tar.zst", "hello")
        .args(["unpack", "fake.tar.zst"])
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: cannot unpack /in/fake.tar.zst: not zstd data (bad magic number)\n"
    );
    assert!(run.outputs.is_empty());
}

#[test]
fn a_missing_command_prints_the_usage() {
    let run = TaskTest::task("archive").run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: missing command; usage: archive pack [--output FILE] [--strip N] [PATH...] | \
         archive unpack [--into DIR] [--max-bytes N] [--max-entries N] ARCHIVE\n"
    );
}
