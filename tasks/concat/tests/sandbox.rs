//! `concat` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

#[test]
fn concatenates_inputs_in_the_sandbox() {
    let run = TaskTest::task("concat")
        .input("b.txt", "beta\n")
        .input("a/x.txt", "alpha\n")
        .args(["--output", "all/joined.txt"])
        .run();
    run.assert_success();
    // Every input, sorted by path.
    assert_eq!(run.output_str("all/joined.txt"), "alpha\nbeta\n");
    assert_eq!(run.outputs.len(), 1);
}

#[test]
fn a_missing_file_fails_with_its_path() {
    let run = TaskTest::task("concat").args(["/in/nope.txt"]).run();
    run.assert_exit(1);
    assert!(
        run.stderr_str()
            .starts_with("error: cannot open /in/nope.txt: "),
        "{}",
        run.stderr_str()
    );
}
