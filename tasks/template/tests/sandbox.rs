//! `template` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;
use serde_json::json;

#[test]
fn renders_templates_in_the_sandbox() {
    let run = TaskTest::task("template")
        .input(
            "page.html",
            "<h1>{{ title }}</h1>\n<p>{{ site.name }} {{ site.year }}</p>\n",
        )
        .dep_output("gen", "notes.txt", "{{{{ literal }} and {{ missing }}.\n")
        .params(json!({
            "template": "page.html",
            "output": "site/index.html",
            "files": [{ "template": "/deps/gen/notes.txt", "output": "notes.txt" }],
            "vars": { "title": "Home", "site": { "name": "Example", "year": 2024 } },
            "strict": false,
        }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("site/index.html"),
        "<h1>Home</h1>\n<p>Example 2024</p>\n"
    );
    assert_eq!(run.output_str("notes.txt"), "{{ literal }} and .\n");
    assert_eq!(run.outputs.len(), 2);
    assert_eq!(run.progress, vec![(1, Some(2)), (2, Some(2))]);
}

#[test]
fn an_unknown_variable_fails_with_its_position() {
    let run = TaskTest::task("template")
        .input("page.html", "ok\n  {{ user.name }}\n")
        .params(json!({
            "template": "page.html",
            "output": "page.html",
            "vars": { "user": { "id": 7 } },
        }))
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: /in/page.html:2:3: unknown variable `user.name`\n"
    );
    assert!(run.outputs.is_empty());
}

#[test]
fn unknown_params_are_rejected() {
    let run = TaskTest::task("template")
        .params(json!({ "template": "a", "output": "b", "var": {} }))
        .run();
    run.assert_exit(1);
    assert!(
        run.stderr_str()
            .starts_with("error: invalid params: unknown field `var`, expected one of "),
        "{}",
        run.stderr_str()
    );
}

#[test]
fn vars_can_come_from_json_files() {
    let run = TaskTest::task("template")
        .input(
            "page.html",
            "{{ site.title }} {{ version }} {{ channel }}\n",
        )
        .dep_output(
            "config",
            "config.json",
            r#"{"site": {"title": "Ex"}, "version": "1.0", "channel": "beta"}"#,
        )
        .params(json!({
            "template": "page.html",
            "output": "page.txt",
            "vars_from": ["/deps/config/config.json"],
            "vars": { "channel": "stable" },
        }))
        .run();
    run.assert_success();
    // `vars` wins over the file.
    assert_eq!(run.output_str("page.txt"), "Ex 1.0 stable\n");

    let run = TaskTest::task("template")
        .input("page.html", "x\n")
        .input("list.json", "[1, 2]")
        .params(json!({ "template": "page.html", "output": "p", "vars_from": ["list.json"] }))
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: /in/list.json: `vars_from` needs a JSON object at the top\n"
    );
}
