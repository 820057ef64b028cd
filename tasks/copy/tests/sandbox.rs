//! `copy` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

#[test]
fn copies_inputs_and_dependency_outputs() {
    let run = TaskTest::task("copy")
        .input("static/index.html", "<html>\n")
        .input("static/img/logo.svg", "<svg/>\n")
        .dep_output("build", "dist/app.js", "main();\n")
        .dep_output("build", "build.log", "ignored\n")
        .args(["--into", "public", "--strip", "1", "/in/static"])
        .args(["/deps/build/dist/app.js"])
        .run();
    run.assert_success();
    let outputs: Vec<(&str, &[u8])> = run
        .outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("public/dist/app.js", &b"main();\n"[..]),
            ("public/img/logo.svg", b"<svg/>\n"),
            ("public/index.html", b"<html>\n"),
        ]
    );
    assert_eq!(run.progress.last(), Some(&(3, Some(3))));
}

#[test]
fn copies_every_input_by_default() {
    let run = TaskTest::task("copy")
        .input("b.txt", "b")
        .input("a/c.txt", "c")
        .run();
    run.assert_success();
    assert_eq!(run.output_str("a/c.txt"), "c");
    assert_eq!(run.output_str("b.txt"), "b");
    assert_eq!(run.outputs.len(), 2);
}

#[test]
fn a_path_outside_the_mounts_is_refused() {
    let run = TaskTest::task("copy").args(["/out/x"]).run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: path \"/out/x\" is not under /in or /deps\n"
    );
    assert!(run.outputs.is_empty());
}
