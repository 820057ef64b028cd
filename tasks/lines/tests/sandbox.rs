//! `lines` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;
use serde_json::json;

#[test]
fn runs_a_pipeline_in_the_sandbox() {
    let run = TaskTest::task("lines")
        .input("a.log", "WARN disk 10\nINFO ok\nWARN disk 9\n")
        .dep_output("scan", "b.log", "WARN net 100\nWARN disk 9\nWARN ignored\n")
        .params(json!({
            "input": ["a.log", "/deps/scan/b.log"],
            "output": "report/warnings.txt",
            "ops": [
                { "grep": "WARN" },
                { "grep_v": "ignored" },
                "sort",
                "uniq",
            ],
        }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("report/warnings.txt"),
        "WARN disk 10\nWARN disk 9\nWARN net 100\n"
    );
    assert_eq!(run.outputs.len(), 1);
    assert_eq!(run.progress, vec![(1, Some(2)), (2, Some(2))]);
}

#[test]
fn sorts_numerically_and_counts() {
    let run = TaskTest::task("lines")
        .input("n.txt", "10\n9\n-1\n100\n9\n")
        .params(json!({
            "output": "top.txt",
            "ops": [{ "sort": { "numeric": true, "reverse": true } }, "uniq", { "head": 3 }],
        }))
        .run();
    run.assert_success();
    assert_eq!(run.output_str("top.txt"), "100\n10\n9\n");

    let run = TaskTest::task("lines")
        .input("n.txt", "a\nb\n")
        .input("m.txt", "c")
        .params(json!({ "output": "n.txt", "ops": ["count"] }))
        .run();
    run.assert_success();
    assert_eq!(run.output_str("n.txt"), "3\n");
}

#[test]
fn an_unknown_op_fails_naming_it() {
    let run = TaskTest::task("lines")
        .input("a.txt", "x\n")
        .params(json!({ "output": "o.txt", "ops": ["sort", { "grepp": "x" }] }))
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: params: ops[1]: unknown op `grepp`; expected grep, grep_v, sort, uniq, count, head or tail\n"
    );
    assert!(run.outputs.is_empty());
}
