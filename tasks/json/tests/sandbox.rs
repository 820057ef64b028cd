//! `json` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;
use serde_json::json;

#[test]
fn selects_a_value() {
    let run = TaskTest::task("json")
        .input(
            "package.json",
            r#"{"name": "app", "deps": [{"name": "a", "v": {"z": 1, "a": [true, null]}}]}"#,
        )
        .params(json!({ "op": "select", "input": "package.json", "path": "deps[0].v", "output": "v.json" }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("v.json"),
        "{\n  \"a\": [\n    true,\n    null\n  ],\n  \"z\": 1\n}\n"
    );
    assert_eq!(run.outputs.len(), 1);
}

#[test]
fn merges_inputs_and_dependency_outputs() {
    let run = TaskTest::task("json")
        .dep_output(
            "defaults",
            "config.json",
            r#"{"log": {"level": "info", "color": true}, "ports": [80]}"#,
        )
        .input(
            "local.json",
            r#"{"log": {"level": "debug"}, "ports": [8080, 8081], "name": "dev"}"#,
        )
        .params(json!({
            "op": "merge",
            "inputs": ["/deps/defaults/config.json", "local.json"],
            "output": "out/config.json",
        }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("out/config.json"),
        "{\n  \"log\": {\n    \"color\": true,\n    \"level\": \"debug\"\n  },\n  \"name\": \"dev\",\n  \"ports\": [\n    8080,\n    8081\n  ]\n}\n"
    );
    assert_eq!(run.progress, vec![(1, Some(2)), (2, Some(2))]);
}

#[test]
fn transforms_a_document() {
    let run = TaskTest::task("json")
        .input(
            "a.json",
            r#"{"version": "1.0.0", "private": true, "scripts": {"test": "x", "dev": "y"}}"#,
        )
        .params(json!({
            "op": "transform",
            "input": "a.json",
            "output": "a.json",
            "set": { "version": "2.0.0", "files[0]": "dist", "meta[\"build.id\"]": 7 },
            "delete": ["private", "scripts.dev"],
        }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("a.json"),
        "{\n  \"files\": [\n    \"dist\"\n  ],\n  \"meta\": {\n    \"build.id\": 7\n  },\n  \"scripts\": {\n    \"test\": \"x\"\n  },\n  \"version\": \"2.0.0\"\n}\n"
    );
}

#[test]
fn a_missing_path_fails_saying_where() {
    let run = TaskTest::task("json")
        .input("a.json", r#"{"a": {"b": [1, 2]}}"#)
        .params(json!({ "op": "select", "input": "a.json", "path": "a.b[2]", "output": "o.json" }))
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: /in/a.json: select `a.b[2]`: index 2 is out of range for the list of 2 at `a.b`\n"
    );
    assert!(run.outputs.is_empty());
}
