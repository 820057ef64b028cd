//! `compress` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

fn text() -> Vec<u8> {
    (0..20_000)
        .flat_map(|i| format!("{i},{}\n", i % 7).into_bytes())
        .collect()
}

#[test]
fn compresses_to_standard_zstd_and_back() {
    let run = TaskTest::task("compress")
        .input("data/table.csv", text())
        .input("empty", "")
        .args(["--level", "19"])
        .run();
    run.assert_success();
    let keys: Vec<&str> = run.outputs.keys().map(String::as_str).collect();
    assert_eq!(keys, ["data/table.csv.zst", "empty.zst"]);
    let packed = run.output("data/table.csv.zst");
    assert!(packed.len() < text().len() / 2);
    // The reference implementation reads what the task wrote.
    assert_eq!(zstd::decode_all(packed).unwrap(), text());
    assert_eq!(zstd::decode_all(run.output("empty.zst")).unwrap(), b"");
    assert_eq!(run.progress.last(), Some(&(2, Some(2))));

    // The same bytes every time, and they decompress (from a dependency) to the original.
    let again = TaskTest::task("compress")
        .input("data/table.csv", text())
        .input("empty", "")
        .run();
    assert_eq!(again.output("data/table.csv.zst"), packed);
    let back = TaskTest::task("compress")
        .dep_output("zip", "data/table.csv.zst", packed)
        .args(["--decompress", "--strip", "1", "/deps/zip"])
        .run();
    back.assert_success();
    assert_eq!(back.output("data/table.csv"), text().as_slice());
    assert_eq!(back.outputs.len(), 1);
}

#[test]
fn decompresses_the_reference_format() {
    let reference = zstd::encode_all(&text()[..], 3).unwrap();
    let run = TaskTest::task("compress")
        .input("t.csv.zst", reference)
        .args(["-d"])
        .run();
    run.assert_success();
    assert_eq!(run.output("t.csv"), text().as_slice());
}

#[test]
fn decompressing_a_file_without_zst_fails() {
    let run = TaskTest::task("compress")
        .input("a.txt", "plain")
        .args(["-d", "a.txt"])
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: cannot decompress /in/a.txt: its name does not end in `.zst`\n"
    );
    assert!(run.outputs.is_empty());
}
