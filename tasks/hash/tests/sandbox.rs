//! `hash` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

fn line(contents: &[u8], name: &str) -> String {
    format!("{}  {name}\n", blake3::hash(contents).to_hex())
}

#[test]
fn writes_a_b3sum_manifest_of_inputs_and_deps() {
    let big = vec![7u8; 300_000]; // several BLAKE3 chunks
    let run = TaskTest::task("hash")
        .input("src/main.rs", "fn main() {}\n")
        .input("README", "hello\n")
        .dep_output("build", "app.wasm", &big)
        .args(["--deps"])
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("MANIFEST.b3"),
        line(b"hello\n", "README")
            + &line(&big, "build/app.wasm")
            + &line(b"fn main() {}\n", "src/main.rs")
    );
    assert_eq!(run.outputs.len(), 1);
    assert_eq!(run.progress.last(), Some(&(3, Some(3))));
}

#[test]
fn names_the_manifest_and_strips_paths() {
    let run = TaskTest::task("hash")
        .dep_output("build", "dist/app.js", "main();\n")
        .args([
            "--output",
            "sums/SHA.b3",
            "--strip",
            "2",
            "/deps/build/dist",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.output_str("sums/SHA.b3"), line(b"main();\n", "app.js"));
}

#[test]
fn a_bad_option_prints_the_usage() {
    let run = TaskTest::task("hash").args(["--strip", "two"]).run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: --strip needs a non-negative integer, not \"two\"; \
         usage: hash [--output NAME] [--deps] [--strip N] [PATH...]\n"
    );
    assert!(run.outputs.is_empty());
}
