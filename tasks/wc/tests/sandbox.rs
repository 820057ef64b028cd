//! `wc` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

#[test]
fn counts_inputs_then_dependency_outputs() {
    let run = TaskTest::task("wc")
        .input("b.txt", "one two\nthree\n")
        .input("a/x.txt", "x")
        .dep_output("compile", "log.txt", "  spaced   words \n\n")
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("wc.txt"),
        "0 1 1 /in/a/x.txt\n2 3 14 /in/b.txt\n2 2 19 /deps/compile/log.txt\n4 6 34 total\n"
    );
}

#[test]
fn arguments_are_refused() {
    let run = TaskTest::task("wc").args(["extra"]).run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: wc takes no arguments (got extra); it counts every file under /in and /deps\n"
    );
}
