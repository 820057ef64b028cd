//! Whole-file tests: valid workflows decode to the right steps, and broken ones produce
//! exactly the expected error text.

use super::*;
use crate::chaos::FaultKind;
use std::collections::BTreeSet;

const FILE: &str = "ci/hermetic.yaml";

fn parse(source: &str) -> Workflow {
    Workflow::parse(Path::new(FILE), source).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(source: &str) -> String {
    match Workflow::parse(Path::new(FILE), source) {
        Ok(wf) => panic!("expected errors, got {wf:#?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts the complete error text; `expected` may start with a newline for readability.
#[track_caller]
fn check(source: &str, expected: &str) {
    let actual = errors(source);
    let expected = expected.strip_prefix('\n').unwrap_or(expected);
    assert_eq!(
        actual, expected,
        "\n--- actual ---\n{actual}\n--------------"
    );
}

const FULL: &str = r#"name: ci
defaults:
  timeout: 5m
  memory: 512MiB
  fuel: 10G
  retries: 2
  priority: 3
  out_dir: build/out
  env:
    RUST_LOG: info
    CI: "true"
steps:
  build:
    task: rust-build
    args: [--release, 42, 1.50, true, "quoted"]
    inputs: ["src/**/*.rs", Cargo.toml]
    outputs: [dist/, report.txt]
    env: {RUST_LOG: debug, JOBS: 4}
  lint:
    task: ../shared/lint.wasm
    timeout: 30s
    allow_failure: true
    priority: 9
    retries: 0
  test:
    task: tools/test.wasm
    depends_on: [build, lint]
    when: build.succeeded && (lint.succeeded || lint.failed)
    memory: 1 GiB
    fuel: 10_000_000
  report:
    task: report
    depends_on: test
    when: always
"#;

#[test]
fn decodes_a_complete_workflow() {
    let wf = parse(FULL);
    assert_eq!(wf.path, Path::new("ci/hermetic.yaml"));
    assert_eq!(wf.dir, Path::new("ci"));
    assert_eq!(wf.name, "ci");
    assert_eq!(wf.out_dir, Path::new("build/out"));
    let names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["build", "lint", "test", "report"]);

    let build = wf.step("build").unwrap();
    assert_eq!(build.task, TaskRef::Crate("rust-build".into()));
    assert_eq!(build.args, ["--release", "42", "1.50", "true", "quoted"]);
    assert_eq!(build.inputs, ["src/**/*.rs", "Cargo.toml"]);
    assert_eq!(build.outputs, ["dist/", "report.txt"]);
    let env: Vec<(&str, &str)> = build
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("CI", "true"), ("JOBS", "4"), ("RUST_LOG", "debug")]);
    assert_eq!(build.timeout, Some(Duration::from_secs(300)));
    assert_eq!(build.memory, Some(512 << 20));
    assert_eq!(build.fuel, Some(10_000_000_000));
    assert_eq!(
        (build.retries, build.priority, build.allow_failure),
        (2, 3, false)
    );
    assert_eq!(build.when, Condition::Success);
    assert!(build.depends_on.is_empty());
    assert_eq!(
        build.span,
        Span {
            line: 13,
            column: 3,
            len: 5
        }
    );
    assert_eq!(
        build.task_span,
        Span {
            line: 14,
            column: 11,
            len: 10
        }
    );
    assert_eq!(
        build.output_spans,
        [
            Span {
                line: 17,
                column: 15,
                len: 5
            },
            Span {
                line: 17,
                column: 22,
                len: 10
            }
        ]
    );

    let lint = wf.step("lint").unwrap();
    assert_eq!(lint.task, TaskRef::Wasm("../shared/lint.wasm".into()));
    assert_eq!(lint.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        (lint.retries, lint.priority, lint.allow_failure),
        (0, 9, true)
    );
    assert_eq!(lint.env.get("RUST_LOG").map(String::as_str), Some("info"));

    let test = wf.step("test").unwrap();
    assert_eq!(test.task, TaskRef::Wasm("tools/test.wasm".into()));
    assert_eq!(test.depends_on, ["build", "lint"]);
    assert_eq!(test.memory, Some(1 << 30));
    assert_eq!(test.fuel, Some(10_000_000));
    assert_eq!(
        test.when.to_string(),
        "build.succeeded && (lint.succeeded || lint.failed)"
    );

    let report = wf.step("report").unwrap();
    assert_eq!(
        report.depends_on,
        ["test"],
        "a single string is a one-item list"
    );
    assert_eq!(report.when, Condition::Always);
    assert!(wf.step("deploy").is_none());
}

#[test]
fn when_conditions_evaluate_against_dependency_outcomes() {
    let wf = parse(FULL);
    let when = &wf.step("test").unwrap().when;
    let outcomes = |build, lint| move |name: &str| if name == "build" { build } else { lint };
    use DepOutcome::{Failed, Skipped, Succeeded};
    assert!(when.eval(outcomes(Succeeded, Failed), &[Succeeded, Failed]));
    assert!(!when.eval(outcomes(Succeeded, Skipped), &[Succeeded, Skipped]));
    assert!(!when.eval(outcomes(Failed, Succeeded), &[Failed, Succeeded]));
}

#[test]
fn defaults_apply_when_unset() {
    let wf = parse("name: x\nsteps:\n  only:\n    task: t\n");
    let step = &wf.steps[0];
    assert_eq!(wf.out_dir, Path::new(DEFAULT_OUT_DIR));
    assert_eq!(
        (step.retries, step.priority, step.allow_failure),
        (0, DEFAULT_PRIORITY, false)
    );
    assert_eq!((step.timeout, step.fuel, step.memory), (None, None, None));
    assert_eq!(step.when, Condition::Success);
    assert!(step.args.is_empty() && step.env.is_empty() && step.inputs.is_empty());
}

#[test]
fn empty_lists_and_maps_may_be_left_blank() {
    let wf = parse("name: x\nsteps:\n  a:\n    task: t\n    args:\n    env: ~\n    inputs: []\n");
    assert!(wf.steps[0].args.is_empty() && wf.steps[0].env.is_empty());
}

#[test]
fn the_list_form_is_equivalent_to_the_map_form() {
    let list = parse(
        "name: ci
steps:
  - name: build
    task: rust-build
  - name: test
    task: tools/test.wasm
    depends_on: build
    when: build.failed
",
    );
    let map = parse(
        "name: ci
steps:
  build:
    task: rust-build
  test:
    task: tools/test.wasm
    depends_on: build
    when: build.failed
",
    );
    let strip = |wf: &Workflow| -> Vec<Step> {
        wf.steps
            .iter()
            .map(|s| Step {
                span: Span::new(1, 1),
                task_span: Span::new(1, 1),
                ..s.clone()
            })
            .collect()
    };
    assert_eq!(strip(&list), strip(&map));
    assert_eq!(
        list.steps[1].span,
        Span {
            line: 5,
            column: 11,
            len: 4
        }
    );
}

#[test]
fn the_directory_of_a_bare_file_name_is_dot() {
    let wf = Workflow::parse(
        Path::new("hermetic.yaml"),
        "name: x\nsteps: {a: {task: t}}\n",
    );
    assert_eq!(wf.unwrap().dir, Path::new("."));
}

#[test]
fn unknown_key_matches_the_documented_format() {
    let source = "# CI for the examples.
name: ci

defaults:
  timeout: 5m

steps:
  build:
    task: rust-build

  test:
    depend_on: [build]
    task: tools/test.wasm
";
    let e = Workflow::parse(Path::new("examples/ci/hermetic.yaml"), source).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error: unknown key `depend_on` in step `test`
  --> examples/ci/hermetic.yaml:12:5
   |
12 |     depend_on: [build]
   |     ^^^^^^^^^
   = help: did you mean `depends_on`?"
    );
    assert_eq!(e.error_count(), 1);
}

#[test]
fn unknown_keys_everywhere() {
    check(
        "name: ci
task: x
timeout: 3s
defaults:
  allow_failure: true
  steps: 1
steps:
  build:
    task: rust-build
    dependson: [x]
    input: [src]
    out_dir: y
    name: build
    colour: red
",
        r"
error: unknown key `task` at the top level
 --> ci/hermetic.yaml:2:1
  |
2 | task: x
  | ^^^^
  = help: `task` belongs to a step, under `steps:`

error: unknown key `timeout` at the top level
 --> ci/hermetic.yaml:3:1
  |
3 | timeout: 3s
  | ^^^^^^^
  = help: `timeout` is set on a step, or for every step under `defaults:`

error: unknown key `allow_failure` in `defaults`
 --> ci/hermetic.yaml:5:3
  |
5 |   allow_failure: true
  |   ^^^^^^^^^^^^^
  = help: `allow_failure` has no default; set it on each step

error: unknown key `steps` in `defaults`
 --> ci/hermetic.yaml:6:3
  |
6 |   steps: 1
  |   ^^^^^
  = help: `steps` belongs at the top level, not under `defaults:`

error: unknown key `dependson` in step `build`
  --> ci/hermetic.yaml:10:5
   |
10 |     dependson: [x]
   |     ^^^^^^^^^
   = help: did you mean `depends_on`?

error: unknown key `input` in step `build`
  --> ci/hermetic.yaml:11:5
   |
11 |     input: [src]
   |     ^^^^^
   = help: did you mean `inputs`?

error: unknown key `out_dir` in step `build`
  --> ci/hermetic.yaml:12:5
   |
12 |     out_dir: y
   |     ^^^^^^^
   = help: `out_dir` can only be set under `defaults:`

error: unknown key `name` in step `build`
  --> ci/hermetic.yaml:13:5
   |
13 |     name: build
   |     ^^^^
   = help: when `steps` is a map, a step's name is its key (`build:`); `name:` is only used when `steps` is a list

error: unknown key `colour` in step `build`
  --> ci/hermetic.yaml:14:5
   |
14 |     colour: red
   |     ^^^^^^
   = help: the keys allowed here are `task`, `args`, `env`, `params`, `inputs`, `outputs`, `depends_on`, `timeout`, `adaptive_timeout`, `stuck_after`, `fuel`, `memory`, `retries`, `retry_on`, `backoff`, `priority`, `allow_failure` and `when`

error: aborting due to 9 previous errors",
    );
}

#[test]
fn duplicate_step_names_in_the_map_form() {
    check(
        "name: ci
steps:
  build:
    task: rust-build
  build:
    task: other
",
        r"
error: duplicate step name `build`
 --> ci/hermetic.yaml:5:3
  |
5 |   build:
  |   ^^^^^
note: `build` is first defined here
 --> ci/hermetic.yaml:3:3
  |
3 |   build:
  |   ^^^^^",
    );
}

#[test]
fn duplicate_names_and_keys_in_the_list_form() {
    check(
        "name: ci
steps:
  - name: build
    task: rust-build
    dependson: x
  - name: build
    task: x
  - task: y
  - name: lint
    task: l
    task: m
  - name: [x]
    task: l
  - 42
",
        r"
error: unknown key `dependson` in step `build`
 --> ci/hermetic.yaml:5:5
  |
5 |     dependson: x
  |     ^^^^^^^^^
  = help: did you mean `depends_on`?

error: duplicate step name `build`
 --> ci/hermetic.yaml:6:11
  |
6 |   - name: build
  |           ^^^^^
note: `build` is first defined here
 --> ci/hermetic.yaml:3:11
  |
3 |   - name: build
  |           ^^^^^

error: step #3 has no `name`
 --> ci/hermetic.yaml:8:5
  |
8 |   - task: y
  |     ^
  = help: when `steps` is a list, every step needs `name:`; or write `steps` as a map from step name to step

error: duplicate key `task` in step `lint`
  --> ci/hermetic.yaml:11:5
   |
11 |     task: m
   |     ^^^^
note: `task` is first defined here
  --> ci/hermetic.yaml:10:5
   |
10 |     task: l
   |     ^^^^

error: expected a step name for `name`, found a list
  --> ci/hermetic.yaml:12:11
   |
12 |   - name: [x]
   |           ^

error: expected a map for step #6, found the integer `42`
  --> ci/hermetic.yaml:14:5
   |
14 |   - 42
   |     ^^
   = help: each item of `steps` is a map like `{name: build, task: rust-build}`

error: aborting due to 6 previous errors",
    );
}

#[test]
fn dependency_errors_and_cycles_are_sorted_by_position() {
    check(
        "name: ci
steps:
  a:
    task: t
    depends_on: [c]
  b:
    task: t
    depends_on: a
  c:
    task: t
    depends_on: [b, a, zz, c, b]
",
        r"
error: dependency cycle: a → c → a
 --> ci/hermetic.yaml:3:3
  |
3 |   a:
  |   ^
  = help: steps cannot depend on themselves, directly or through other steps; remove one of the `depends_on` entries in the cycle

error: unknown step `zz` in `depends_on` of step `c`
  --> ci/hermetic.yaml:11:24
   |
11 |     depends_on: [b, a, zz, c, b]
   |                        ^^
   = help: the steps are `a` and `b`

error: step `c` depends on itself
  --> ci/hermetic.yaml:11:28
   |
11 |     depends_on: [b, a, zz, c, b]
   |                            ^
   = help: remove `c` from its `depends_on`

error: `b` is listed twice in `depends_on` of step `c`
  --> ci/hermetic.yaml:11:31
   |
11 |     depends_on: [b, a, zz, c, b]
   |                               ^
note: first listed here
  --> ci/hermetic.yaml:11:18
   |
11 |     depends_on: [b, a, zz, c, b]
   |                  ^

error: aborting due to 4 previous errors",
    );
}

#[test]
fn unknown_dependency_suggests_a_step() {
    check(
        "name: ci\nsteps:\n  build: {task: t}\n  test: {task: t, depends_on: [biuld]}\n",
        r"
error: unknown step `biuld` in `depends_on` of step `test`
 --> ci/hermetic.yaml:4:32
  |
4 |   test: {task: t, depends_on: [biuld]}
  |                                ^^^^^
  = help: did you mean `build`?",
    );
    check(
        "name: ci\nsteps:\n  test: {task: t, depends_on: nothing}\n",
        r"
error: unknown step `nothing` in `depends_on` of step `test`
 --> ci/hermetic.yaml:3:31
  |
3 |   test: {task: t, depends_on: nothing}
  |                               ^^^^^^^
  = help: there are no other steps",
    );
}

#[test]
fn every_cycle_is_reported_with_its_whole_path() {
    check(
        "name: x
steps:
  a:
    task: t
  b: {task: t, depends_on: [a, c]}
  c: {task: t, depends_on: [d]}
  d: {task: t, depends_on: [b]}
  e: {task: t, depends_on: [f]}
  f: {task: t, depends_on: [e]}
",
        r"
error: dependency cycle: b → c → d → b
 --> ci/hermetic.yaml:5:3
  |
5 |   b: {task: t, depends_on: [a, c]}
  |   ^
  = help: steps cannot depend on themselves, directly or through other steps; remove one of the `depends_on` entries in the cycle

error: dependency cycle: e → f → e
 --> ci/hermetic.yaml:8:3
  |
8 |   e: {task: t, depends_on: [f]}
  |   ^
  = help: steps cannot depend on themselves, directly or through other steps; remove one of the `depends_on` entries in the cycle

error: aborting due to 2 previous errors",
    );
}

#[test]
fn when_must_only_name_dependencies() {
    check(
        "name: ci
steps:
  lint: {task: t}
  build: {task: t}
  test:
    task: t
    depends_on: [build]
    when: success && lint.failed || biuld.failed || test.skipped || lint.skipped
",
        r"
error: `when` refers to `lint`, which `test` does not depend on
 --> ci/hermetic.yaml:8:22
  |
8 |     when: success && lint.failed || biuld.failed || test.skipped || lint.skipped
  |                      ^^^^
  = help: add `lint` to `depends_on`

error: `when` refers to `biuld`, which is not a step
 --> ci/hermetic.yaml:8:37
  |
8 |     when: success && lint.failed || biuld.failed || test.skipped || lint.skipped
  |                                     ^^^^^
  = help: did you mean `build`?

error: `when` of step `test` refers to `test` itself
 --> ci/hermetic.yaml:8:53
  |
8 |     when: success && lint.failed || biuld.failed || test.skipped || lint.skipped
  |                                                     ^^^^
  = help: a condition can only test the outcome of the step's dependencies

error: aborting due to 3 previous errors",
    );
}

#[test]
fn when_syntax_errors_point_inside_the_string() {
    check(
        "name: ci
steps:
  a:
    task: t
    when: \"build.success\"
  b:
    task: t
    when: success &&
  c:
    task: t
    when: (always
  d:
    task: t
    when: a.failed and always
  e:
    task: t
    when: true
  f:
    task: t
    when: \"\"
",
        r#"
error: invalid `when` condition: unknown step outcome `success` in `build.success`
 --> ci/hermetic.yaml:5:18
  |
5 |     when: "build.success"
  |                  ^^^^^^^
  = help: did you mean `build.succeeded`?

error: invalid `when` condition: expected a condition after `&&`, found the end
 --> ci/hermetic.yaml:8:21
  |
8 |     when: success &&
  |                     ^
  = help: a condition combines `success`, `failure`, `always`, `<step>.succeeded`, `<step>.failed` and `<step>.skipped` with `!`, `&&`, `||` and parentheses

error: invalid `when` condition: unclosed `(`
  --> ci/hermetic.yaml:11:11
   |
11 |     when: (always
   |           ^
   = help: add a matching `)`

error: invalid `when` condition: expected `&&`, `||` or the end of the condition, found `and`
  --> ci/hermetic.yaml:14:20
   |
14 |     when: a.failed and always
   |                    ^^^
   = help: write `&&` instead of `and`

error: expected a condition such as `success` or `build.failed` for `when`, found the boolean `true`
  --> ci/hermetic.yaml:17:11
   |
17 |     when: true
   |           ^^^^

error: invalid `when` condition: the condition is empty
  --> ci/hermetic.yaml:20:12
   |
20 |     when: ""
   |            ^
   = help: use `success` (the default), `failure`, `always` or `<step>.failed`, or remove `when`

error: aborting due to 6 previous errors"#,
    );
}

#[test]
fn bad_types_and_units_are_all_reported() {
    check(
        "name: ci
defaults:
  timeout: 30
  memory: 512Mb
  fuel: lots
  priority: 11
  out_dir: /var/out
steps:
  a:
    task: t
    args: {a: 1}
    env: [A=1]
    retries: three
    allow_failure: yes
    timeout: 8d
    memory: 0
    fuel: 1.5
    priority: 2.5
  b:
    task:
    args: x
    inputs: '*.rs'
    retries: -1
",
        r"
error: invalid duration `30` for `timeout`: a bare number has no unit
 --> ci/hermetic.yaml:3:12
  |
3 |   timeout: 30
  |            ^^
  = help: write `30s` for 30 seconds, or use another unit: `500ms`, `2m`, `1h`

error: invalid size `512Mb` for `memory`: unknown unit `Mb`
 --> ci/hermetic.yaml:4:11
  |
4 |   memory: 512Mb
  |           ^^^^^
  = help: a lowercase `b` means bits; write `MB` for bytes, or use `512MiB`, `2GiB`, `100MB`, `65536`

error: invalid fuel amount `lots` for `fuel`: it does not start with a number
 --> ci/hermetic.yaml:5:9
  |
5 |   fuel: lots
  |         ^^^^
  = help: valid fuel amounts look like `10G`, `500M`, `10_000_000`

error: `priority` must be from 1 to 10, found `11`
 --> ci/hermetic.yaml:6:13
  |
6 |   priority: 11
  |             ^^

error: `out_dir` is an absolute path: `/var/out`
 --> ci/hermetic.yaml:7:12
  |
7 |   out_dir: /var/out
  |            ^^^^^^^^
  = help: `out_dir` is relative to the directory of the workflow file, e.g. `.hermetic/out` (the default)

error: expected a list of strings for `args`, found a map
  --> ci/hermetic.yaml:11:11
   |
11 |     args: {a: 1}
   |           ^
   = help: a `key: value` pair makes a map; if you meant a string containing `: `, put it in quotes

error: expected a map of environment variables for `env`, found a list
  --> ci/hermetic.yaml:12:10
   |
12 |     env: [A=1]
   |          ^
   = help: write one `NAME: value` line per variable under `env:`, e.g. `env: {RUST_LOG: debug}`

error: expected an integer from 0 to 10 for `retries`, found the string `three`
  --> ci/hermetic.yaml:13:14
   |
13 |     retries: three
   |              ^^^^^

error: expected `true` or `false` for `allow_failure`, found the string `yes`
  --> ci/hermetic.yaml:14:20
   |
14 |     allow_failure: yes
   |                    ^^^
   = help: write `true`

error: invalid duration `8d` for `timeout`: it is longer than the maximum of 7 days
  --> ci/hermetic.yaml:15:14
   |
15 |     timeout: 8d
   |              ^^
   = help: use at most `7d` (or `168h`)

error: invalid size `0` for `memory`: it must be greater than zero
  --> ci/hermetic.yaml:16:13
   |
16 |     memory: 0
   |             ^
   = help: valid sizes look like `512MiB`, `2GiB`, `100MB`, `65536`

error: invalid fuel amount `1.5` for `fuel`: it is not a whole number
  --> ci/hermetic.yaml:17:11
   |
17 |     fuel: 1.5
   |           ^^^
   = help: valid fuel amounts look like `10G`, `500M`, `10_000_000`

error: expected an integer from 1 to 10 for `priority`, found the number `2.5`
  --> ci/hermetic.yaml:18:15
   |
18 |     priority: 2.5
   |               ^^^

error: expected a task name or `.wasm` path for `task`, found nothing
  --> ci/hermetic.yaml:20:5
   |
20 |     task:
   |     ^^^^

error: expected a list of strings for `args`, found the string `x`
  --> ci/hermetic.yaml:21:11
   |
21 |     args: x
   |           ^
   = help: write a list: `args: [x]`

error: expected a list of strings for `inputs`, found the string `*.rs`
  --> ci/hermetic.yaml:22:13
   |
22 |     inputs: '*.rs'
   |             ^^^^^^
   = help: write a list: `inputs: ['*.rs']`

error: `retries` must be from 0 to 10, found `-1`
  --> ci/hermetic.yaml:23:14
   |
23 |     retries: -1
   |              ^^

error: aborting due to 17 previous errors",
    );
}

#[test]
fn environment_variables() {
    check(
        "name: ci
steps:
  a:
    task: t
    env:
      A:
      B=C: x
      D: {x: 1}
      A: 2
",
        r#"
error: environment variable `A` has no value
 --> ci/hermetic.yaml:6:7
  |
6 |       A:
  |       ^
  = help: write `A: ""` for an empty value

error: environment variable name `B=C` contains `=`
 --> ci/hermetic.yaml:7:7
  |
7 |       B=C: x
  |       ^^^
  = help: write it as a map entry: `B: C`

error: expected a string for `D`, found a map
 --> ci/hermetic.yaml:8:10
  |
8 |       D: {x: 1}
  |          ^
  = help: a `key: value` pair makes a map; if you meant a string containing `: `, put it in quotes

error: duplicate environment variable `A`
 --> ci/hermetic.yaml:9:7
  |
9 |       A: 2
  |       ^
note: `A` is first defined here
 --> ci/hermetic.yaml:6:7
  |
6 |       A:
  |       ^

error: aborting due to 4 previous errors"#,
    );
}

#[test]
fn tasks_names_inputs_and_outputs() {
    check(
        "name: ci
steps:
  a/b:
    task: /abs/x.wasm
    outputs: [../x, '*.o', ok/, ok/, /out/y, '']
    inputs: ['/etc', '../x', 'src/[a', 'src/**']
  c:
    task: Foo
  d:
    task: tasks/foo
  e:
    args: [a, {b: c}, ~]
",
        r"
error: invalid step name `a/b`
 --> ci/hermetic.yaml:3:3
  |
3 |   a/b:
  |   ^^^
  = help: step names become directory names, so they cannot contain `/` or `\`; use only letters, digits, `_`, `-` and `.`, starting with a letter, digit or `_`

error: `task` is an absolute path: `/abs/x.wasm`
 --> ci/hermetic.yaml:4:11
  |
4 |     task: /abs/x.wasm
  |           ^^^^^^^^^^^
  = help: write the path of the `.wasm` file relative to the directory of the workflow file, e.g. `tools/lint.wasm` or `../shared/lint.wasm`

error: output `../x` reaches outside the step's output directory
 --> ci/hermetic.yaml:5:15
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |               ^^^^
  = help: `outputs` are paths inside the step's output directory (`/out` in the sandbox), e.g. `report.txt`, or `dist/` for a whole directory

error: output `*.o` is a glob
 --> ci/hermetic.yaml:5:21
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |                     ^^^^^
  = help: outputs are exact paths, not globs; to collect everything in a directory, declare the directory with a trailing `/`, e.g. `dist/`

error: output `ok/` is declared twice
 --> ci/hermetic.yaml:5:33
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |                                 ^^^
note: first declared here
 --> ci/hermetic.yaml:5:28
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |                            ^^^

error: output `/out/y` is an absolute path
 --> ci/hermetic.yaml:5:38
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |                                      ^^^^^^
  = help: outputs are relative to `/out`: write `y`

error: an output path is empty
 --> ci/hermetic.yaml:5:46
  |
5 |     outputs: [../x, '*.o', ok/, ok/, /out/y, '']
  |                                              ^^
  = help: `outputs` are paths inside the step's output directory (`/out` in the sandbox), e.g. `report.txt`, or `dist/` for a whole directory

error: input `/etc` is an absolute path
 --> ci/hermetic.yaml:6:14
  |
6 |     inputs: ['/etc', '../x', 'src/[a', 'src/**']
  |              ^^^^^^
  = help: `inputs` are globs relative to the directory of the workflow file, e.g. `src/**/*.rs` or `Cargo.toml`; files outside that directory cannot be inputs

error: input `../x` reaches outside the workflow's directory
 --> ci/hermetic.yaml:6:22
  |
6 |     inputs: ['/etc', '../x', 'src/[a', 'src/**']
  |                      ^^^^^^
  = help: `inputs` are globs relative to the directory of the workflow file, e.g. `src/**/*.rs` or `Cargo.toml`; files outside that directory cannot be inputs

error: invalid glob `src/[a`: unclosed character class; missing ']'
 --> ci/hermetic.yaml:6:30
  |
6 |     inputs: ['/etc', '../x', 'src/[a', 'src/**']
  |                              ^^^^^^^^
  = help: globs use `*`, `**`, `?`, `[abc]` and `{a,b}`; escape special characters with `\` or `[...]`

error: invalid task `Foo`
 --> ci/hermetic.yaml:8:11
  |
8 |     task: Foo
  |           ^^^
  = help: task crate names are lowercase: `foo`

error: invalid task `tasks/foo`
  --> ci/hermetic.yaml:10:11
   |
10 |     task: tasks/foo
   |           ^^^^^^^^^
   = help: a path to a module must end in `.wasm`; crate names under `tasks/` contain no `/`

error: step `e` has no `task`
  --> ci/hermetic.yaml:11:3
   |
11 |   e:
   |   ^
   = help: add `task:` with the name of a crate under `tasks/` or the path of a `.wasm` file

error: expected a string in `args`, found a map
  --> ci/hermetic.yaml:12:15
   |
12 |     args: [a, {b: c}, ~]
   |               ^
   = help: a `key: value` item makes a map; if you meant a string containing `: `, put it in quotes

error: expected a string in `args`, found null (`~`)
  --> ci/hermetic.yaml:12:23
   |
12 |     args: [a, {b: c}, ~]
   |                       ^

error: aborting due to 15 previous errors",
    );
}

#[test]
fn top_level_shape() {
    check(
        "",
        r"
error: the workflow file is empty
  = help: a workflow needs a `name` and at least one step, e.g. `name: ci` and `steps: {build: {task: rust-build}}`",
    );
    check(
        "- a\n- b\n",
        r"
error: expected a map with `name` and `steps` at the top level, found a list
 --> ci/hermetic.yaml:1:1
  |
1 | - a
  | ^",
    );
    check(
        "steps: {}\n",
        r"
error: missing `name` at the top level
 --> ci/hermetic.yaml:1:1
  |
1 | steps: {}
  | ^
  = help: add a name for the workflow, e.g. `name: ci`

error: `steps` is empty
 --> ci/hermetic.yaml:1:8
  |
1 | steps: {}
  |        ^
  = help: add at least one step, e.g. `steps: {build: {task: rust-build}}`

error: aborting due to 2 previous errors",
    );
    check(
        "name: ''\ndefaults: [x]\n",
        r"
error: missing `steps` at the top level
 --> ci/hermetic.yaml:1:1
  |
1 | name: ''
  | ^
  = help: add the steps to run, e.g. `steps: {build: {task: rust-build}}`

error: `name` is empty
 --> ci/hermetic.yaml:1:7
  |
1 | name: ''
  |       ^^
  = help: give the workflow a name, e.g. `name: ci`

error: expected a map for `defaults`, found a list
 --> ci/hermetic.yaml:2:11
  |
2 | defaults: [x]
  |           ^

error: aborting due to 3 previous errors",
    );
    check(
        "? [a, b]\n: 1\nname: x\nsteps: {a: {task: t}, b: }\n",
        r"
error: expected a string as key, found a list
 --> ci/hermetic.yaml:1:3
  |
1 | ? [a, b]
  |   ^

error: step `b` is empty
 --> ci/hermetic.yaml:4:23
  |
4 | steps: {a: {task: t}, b: }
  |                       ^
  = help: add `task:` with the name of a crate under `tasks/` or the path of a `.wasm` file

error: aborting due to 2 previous errors",
    );
}

#[test]
fn yaml_errors_keep_their_location() {
    check(
        "name: x\nsteps:\n  a: [1, 2\n",
        r"
error: invalid YAML: unclosed bracket '['
 --> ci/hermetic.yaml:3:6
  |
3 |   a: [1, 2
  |      ^",
    );
    check(
        "a: 1\n---\nb: 2\n",
        r"
error: a workflow file must hold exactly one YAML document
 --> ci/hermetic.yaml:3:1
  |
3 | b: 2
  | ^
  = help: remove the `---` separator and everything after it",
    );
    check(
        "name: ci\nsteps:\n  a:\n    task: t\n    when: !x.failed && y\n",
        r"
error: unsupported YAML tag `!x.failed`
 --> ci/hermetic.yaml:5:11
  |
5 |     when: !x.failed && y
  |           ^^^^^^^^^
  = help: a value starting with `!` is read as a YAML tag; if `!x.failed` starts a condition, put the whole value in quotes",
    );
}

#[test]
fn a_billion_laughs_fails_fast_with_a_clear_error() {
    let mut doc = String::from("name: x\nsteps: {}\na: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        doc.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    let started = std::time::Instant::now();
    let text = errors(&doc);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        text,
        r#"error: the YAML document is too large or too complex: anchors and aliases copy too many values
 --> ci/hermetic.yaml:7:20
  |
7 | e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  |                    ^
  = help: workflow files are limited to 100000 values, 32 levels of nesting and 2000 aliases; aliases that expand exponentially ("billion laughs") are rejected"#
    );
}

#[test]
fn aliases_and_merges_still_work_for_small_documents() {
    let wf = parse(
        "name: ci
steps:
  a: &common
    task: t
    timeout: 1m
    args: &args [one, two]
  b:
    <<: *common
    timeout: 2m
    args: *args
",
    );
    let (a, b) = (&wf.steps[0], &wf.steps[1]);
    assert_eq!(b.task, TaskRef::Crate("t".into()));
    assert_eq!(
        (a.timeout, b.timeout),
        (
            Some(Duration::from_secs(60)),
            Some(Duration::from_secs(120))
        )
    );
    assert_eq!(b.args, ["one", "two"]);
}

#[test]
fn load_reports_io_errors_with_the_path() {
    let e = Workflow::load(Path::new("no/such/hermetic.yaml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error: cannot read workflow `no/such/hermetic.yaml`: No such file or directory (os error 2)"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Workflow::load(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "error: cannot read workflow `{0}`: it is a directory\n  = help: pass the workflow file itself, e.g. `{0}/hermetic.yaml`",
            dir.path().display()
        )
    );
}

#[test]
fn load_reads_the_file_and_keeps_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hermetic.yaml");
    std::fs::write(
        &path,
        "name: x\nsteps:\n  a: {task: t, outputs: [out.txt]}\n",
    )
    .unwrap();
    let wf = Workflow::load(&path).unwrap();
    assert_eq!(wf.path, path);
    assert_eq!(wf.dir, dir.path());
    std::fs::write(&path, "name: x\nsteps:\n  a: {task: t, oputs: [out.txt]}\n").unwrap();
    let e = Workflow::load(&path).unwrap_err();
    assert!(e.to_string().starts_with(&format!(
        "error: unknown key `oputs` in step `a`\n --> {}:3:16\n",
        path.display()
    )));
}

#[test]
fn other_stages_can_point_at_tasks_and_outputs() {
    let wf =
        parse("name: x\nsteps:\n  a:\n    task: tools/missing.wasm\n    outputs: [report.txt]\n");
    let step = &wf.steps[0];
    let d = wf
        .diagnostic(
            Some(step.task_span),
            "cannot read module `ci/tools/missing.wasm`",
        )
        .with_help("build it first");
    assert_eq!(
        d.to_string(),
        r"error: cannot read module `ci/tools/missing.wasm`
 --> ci/hermetic.yaml:4:11
  |
4 |     task: tools/missing.wasm
  |           ^^^^^^^^^^^^^^^^^^
  = help: build it first"
    );
    let d = wf.diagnostic(
        Some(step.output_spans[0]),
        "output `report.txt` was not created",
    );
    assert_eq!(
        d.to_string(),
        r"error: output `report.txt` was not created
 --> ci/hermetic.yaml:5:15
  |
5 |     outputs: [report.txt]
  |               ^^^^^^^^^^"
    );
}

#[test]
fn crlf_line_endings_and_non_ascii_text_keep_columns_right() {
    check(
        "name: x\r\nsteps:\r\n  a:\r\n    tsk: t\r\n",
        r"
error: unknown key `tsk` in step `a`
 --> ci/hermetic.yaml:4:5
  |
4 |     tsk: t
  |     ^^^
  = help: did you mean `task`?",
    );
    check(
        "name: café\nsteps:\n  é: {task: t, env: {ÉTÉ: \"ça\"}, depends_on: [zz]}\n",
        r#"
error: invalid step name `é`
 --> ci/hermetic.yaml:3:3
  |
3 |   é: {task: t, env: {ÉTÉ: "ça"}, depends_on: [zz]}
  |   ^
  = help: step names cannot start with `é`; use only letters, digits, `_`, `-` and `.`, starting with a letter, digit or `_`

error: unknown step `zz` in `depends_on` of step `é`
 --> ci/hermetic.yaml:3:47
  |
3 |   é: {task: t, env: {ÉTÉ: "ça"}, depends_on: [zz]}
  |                                               ^^
  = help: there are no other steps

error: aborting due to 2 previous errors"#,
    );
}

#[test]
fn oversized_files_are_rejected_before_parsing() {
    let source = format!("name: x\nsteps: {{}}\n# {}\n", "x".repeat(5 << 20));
    assert_eq!(
        errors(&source),
        format!(
            "error: the workflow file is too large ({} bytes; the limit is 4194304 bytes)",
            source.len()
        )
    );
}

#[test]
fn large_workflows_validate_quickly() {
    let mut source = String::from("name: big\nsteps:\n");
    for i in 0..3000 {
        source.push_str(&format!("  s{i}:\n    task: t\n"));
        if i > 0 {
            source.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
    }
    let started = std::time::Instant::now();
    assert_eq!(parse(&source).steps.len(), 3000);
    // Closing the chain into one big cycle is found and printed from its first step.
    source.insert_str(
        source.find("    task: t\n").unwrap() + 12,
        "    depends_on: [s2999]\n",
    );
    let text = errors(&source);
    assert!(
        text.starts_with("error: dependency cycle: s0 → s2999 → s2998 → "),
        "{}",
        &text[..200]
    );
    assert!(text.contains(" → s1 → s0\n --> ci/hermetic.yaml:3:3\n"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_misspelt_required_key_is_not_also_reported_missing() {
    check(
        "nme: ci\nstep:\n  - nam: a\n    task: t\n",
        r"
error: unknown key `nme` at the top level
 --> ci/hermetic.yaml:1:1
  |
1 | nme: ci
  | ^^^
  = help: did you mean `name`?

error: unknown key `step` at the top level
 --> ci/hermetic.yaml:2:1
  |
2 | step:
  | ^^^^
  = help: did you mean `steps`?

error: aborting due to 2 previous errors",
    );
    check(
        "name: ci\nsteps:\n  - nam: a\n    task: t\n  - name: b\n    tsak: t\n",
        r"
error: unknown key `nam` in step #1
 --> ci/hermetic.yaml:3:5
  |
3 |   - nam: a
  |     ^^^
  = help: did you mean `name`?

error: unknown key `tsak` in step `b`
 --> ci/hermetic.yaml:6:5
  |
6 |     tsak: t
  |     ^^^^
  = help: did you mean `task`?

error: aborting due to 2 previous errors",
    );
}

#[test]
fn resilience_settings_have_defaults() {
    let wf = parse("name: x\nsteps:\n  only:\n    task: t\n");
    let step = &wf.steps[0];
    assert_eq!(step.retry_on, RetryOn::default());
    assert_eq!(step.retry_on, RetryOn::default_set());
    assert_eq!(step.retry_on.to_string(), "[timeout, host_error]");
    assert_eq!(step.backoff, DEFAULT_BACKOFF);
    assert_eq!(step.backoff, Duration::from_millis(500));
    assert_eq!(step.adaptive_timeout, None);
    assert_eq!(step.stuck_after, Some(DEFAULT_STUCK_AFTER));
    assert_eq!(step.stuck_after, Some(Duration::from_secs(60)));
    assert_eq!(
        wf.circuit_breaker,
        Some(CircuitBreaker {
            failures: DEFAULT_BREAKER_FAILURES,
            cool_down: DEFAULT_BREAKER_COOL_DOWN,
        })
    );
    assert_eq!(
        (DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_COOL_DOWN),
        (5, Duration::from_secs(30))
    );
    assert!(wf.warnings.is_empty());
}

#[test]
fn resilience_settings_come_from_defaults_and_steps() {
    let wf = parse(
        "name: ci
defaults:
  retries: 2
  retry_on: [timeout, exit, 75]
  backoff: 2s
  adaptive_timeout: {cap: 10m}
  stuck_after: 5m
  circuit_breaker: {failures: 3}
steps:
  inherit:
    task: t
  override:
    task: t
    retry_on: []
    backoff: 10m
    adaptive_timeout: off
    stuck_after: off
  own:
    task: t
    retry_on: trap
    adaptive_timeout:
      factor: 1.5
      cap: 1h
  list:
    task: t
    retry_on: [host_error, outputs, out_of_fuel, 3, 1, 255]
    adaptive_timeout: {factor: 100, cap: 30s}
",
    );
    let retry_on = |outcomes: &[RetryOutcome], codes: &[i32]| RetryOn {
        outcomes: outcomes.iter().copied().collect(),
        exit_codes: codes.iter().copied().collect(),
    };
    use RetryOutcome::{Exit, HostError, OutOfFuel, Outputs, Timeout, Trap};

    let inherit = wf.step("inherit").unwrap();
    assert_eq!(inherit.retry_on, retry_on(&[Timeout, Exit], &[75]));
    assert_eq!(inherit.retry_on.to_string(), "[timeout, exit, 75]");
    assert_eq!(inherit.backoff, Duration::from_secs(2));
    assert_eq!(
        inherit.adaptive_timeout,
        Some(AdaptiveTimeout {
            factor: DEFAULT_ADAPTIVE_FACTOR,
            cap: Duration::from_secs(600),
        })
    );
    assert_eq!(DEFAULT_ADAPTIVE_FACTOR, 3.0);
    assert_eq!(inherit.stuck_after, Some(Duration::from_secs(300)));

    let over = wf.step("override").unwrap();
    assert_eq!(over.retry_on, retry_on(&[], &[]));
    assert_eq!(over.retry_on.to_string(), "[]");
    assert_eq!(over.backoff, MAX_BACKOFF);
    assert_eq!((over.adaptive_timeout, over.stuck_after), (None, None));

    let own = wf.step("own").unwrap();
    assert_eq!(own.retry_on, retry_on(&[Trap], &[]));
    assert_eq!(
        own.adaptive_timeout,
        Some(AdaptiveTimeout {
            factor: 1.5,
            cap: Duration::from_secs(3600),
        })
    );

    let list = wf.step("list").unwrap();
    assert_eq!(
        list.retry_on,
        retry_on(&[HostError, Outputs, OutOfFuel], &[1, 3, 255])
    );
    assert_eq!(
        list.retry_on.to_string(),
        "[out_of_fuel, host_error, outputs, 1, 3, 255]"
    );
    assert_eq!(
        list.adaptive_timeout,
        Some(AdaptiveTimeout {
            factor: 100.0,
            cap: Duration::from_secs(30),
        })
    );

    assert_eq!(
        wf.circuit_breaker,
        Some(CircuitBreaker {
            failures: 3,
            cool_down: DEFAULT_BREAKER_COOL_DOWN,
        })
    );
    assert!(wf.warnings.is_empty(), "{}", wf.warnings);
}

#[test]
fn the_circuit_breaker_can_be_tuned_or_turned_off() {
    let breaker = |defaults: &str| {
        parse(&format!(
            "name: x\ndefaults:\n{defaults}\nsteps: {{a: {{task: t}}}}\n"
        ))
        .circuit_breaker
    };
    assert_eq!(breaker("  circuit_breaker: off"), None);
    assert_eq!(
        breaker("  circuit_breaker: {failures: 1000, cool_down: 2m}"),
        Some(CircuitBreaker {
            failures: 1000,
            cool_down: Duration::from_secs(120),
        })
    );
    assert_eq!(
        breaker("  circuit_breaker: {cool_down: 1s}"),
        Some(CircuitBreaker {
            failures: 5,
            cool_down: Duration::from_secs(1),
        })
    );
    assert_eq!(
        breaker("  circuit_breaker:"),
        Some(CircuitBreaker::default())
    );
}

#[test]
fn retry_on_matches_sandbox_outcome_kinds() {
    let default = RetryOn::default();
    let all_kinds = [
        "exit",
        "trap",
        "out_of_fuel",
        "timed_out",
        "memory_limit",
        "output_limit",
        "outputs",
        "host_error",
    ];
    let retried: Vec<&str> = all_kinds
        .into_iter()
        .filter(|kind| default.matches(kind, Some(1)))
        .collect();
    assert_eq!(retried, ["timed_out", "host_error"]);
    assert!(default.matches("timeout", None), "the YAML name works too");
    assert!(!default.matches("success", None));
    assert!(!default.matches("bogus", None));

    let codes = RetryOn {
        outcomes: OutcomeSet::from([RetryOutcome::Trap]),
        exit_codes: BTreeSet::from([3, 75]),
    };
    assert_eq!(codes.to_string(), "[trap, 3, 75]");
    assert!(codes.matches("exit", Some(75)));
    assert!(codes.matches("exit", Some(3)));
    assert!(!codes.matches("exit", Some(4)));
    assert!(!codes.matches("exit", None));
    assert!(codes.matches("trap", None));
    assert!(!codes.matches("timed_out", None));

    let any_exit = RetryOn {
        outcomes: OutcomeSet::from([RetryOutcome::Exit]),
        exit_codes: BTreeSet::new(),
    };
    assert!(any_exit.matches("exit", Some(1)));
    assert!(any_exit.matches("exit", Some(255)));
    assert!(any_exit.matches("exit", None));
    assert!(!any_exit.matches("exit", Some(0)), "exit code 0 is success");
    assert!(!any_exit.matches("trap", None));

    let everything = RetryOn {
        outcomes: RetryOutcome::ALL.into_iter().collect(),
        exit_codes: BTreeSet::new(),
    };
    for kind in all_kinds {
        assert!(everything.matches(kind, Some(2)), "{kind}");
    }
    assert_eq!(
        everything.to_string(),
        "[timeout, trap, out_of_fuel, memory_limit, output_limit, host_error, outputs, exit]"
    );
    for outcome in RetryOutcome::ALL {
        assert_eq!(RetryOutcome::from_name(outcome.name()), Some(outcome));
    }
    assert_eq!(RetryOutcome::from_name("timed_out"), None);
}

#[test]
fn retry_on_without_retries_is_a_warning() {
    let wf = parse(
        "name: ci
steps:
  a:
    task: t
    retry_on: [exit]
  b:
    task: t
    retries: 1
    retry_on: [exit]
",
    );
    assert_eq!(
        wf.warnings.to_string(),
        "warning: `retry_on` has no effect: step `a` is never retried
 --> ci/hermetic.yaml:5:5
  |
5 |     retry_on: [exit]
  |     ^^^^^^^^
  = help: set `retries:` on the step, or for every step under `defaults:`"
    );
    let wf = parse(
        "name: ci\ndefaults:\n  retries: 1\nsteps:\n  a:\n    task: t\n    retry_on: [exit]\n",
    );
    assert!(wf.warnings.is_empty(), "{}", wf.warnings);
}

#[test]
fn resilience_errors_are_all_reported() {
    check(
        "name: ci
defaults:
  retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  backoff: 11m
  stuck_after: false
  circuit_breaker: {failures: 0, cool_down: 30, thresold: 2}
steps:
  a:
    task: t
    retries: 1
    adaptive_timeout: {factor: 0.5, cap: 10}
    circuit_breaker: off
  b:
    task: t
    adaptive_timeout: {factr: 2}
    stuck_after: soon
    backoff: 30
  c:
    task: t
    adaptive_timeout: {factor: fast}
    retry_on: {timeout: true}
",
        r"
error: unknown outcome `timout` in `retry_on`
 --> ci/hermetic.yaml:3:14
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |              ^^^^^^
  = help: did you mean `timeout`? `retry_on` lists `timeout`, `trap`, `out_of_fuel`, `memory_limit`, `output_limit`, `host_error`, `outputs` or `exit` (any non-zero exit code), or exit codes from 1 to 255

error: unknown outcome `exit_code` in `retry_on`
 --> ci/hermetic.yaml:3:22
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                      ^^^^^^^^^
  = help: `retry_on` lists `timeout`, `trap`, `out_of_fuel`, `memory_limit`, `output_limit`, `host_error`, `outputs` or `exit` (any non-zero exit code), or exit codes from 1 to 255

error: an exit code in `retry_on` must be from 1 to 255, found `0`
 --> ci/hermetic.yaml:3:33
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                                 ^
  = help: exit code 0 is success, which is never retried; `exit` retries any non-zero code

error: an exit code in `retry_on` must be from 1 to 255, found `256`
 --> ci/hermetic.yaml:3:36
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                                    ^^^
  = help: a guest's exit code is from 1 to 255 when it fails; `exit` retries any of them

error: `3` is listed twice in `retry_on`
 --> ci/hermetic.yaml:3:44
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                                            ^
note: first listed here
 --> ci/hermetic.yaml:3:41
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                                         ^

error: expected an outcome or exit code in `retry_on`, found the number `1.5`
 --> ci/hermetic.yaml:3:47
  |
3 |   retry_on: [timout, exit_code, 0, 256, 3, 3, 1.5]
  |                                               ^^^
  = help: `retry_on` lists `timeout`, `trap`, `out_of_fuel`, `memory_limit`, `output_limit`, `host_error`, `outputs` or `exit` (any non-zero exit code), or exit codes from 1 to 255

error: `backoff` must be at most 10m, found `11m`
 --> ci/hermetic.yaml:4:12
  |
4 |   backoff: 11m
  |            ^^^
  = help: `backoff` is the delay before the first retry; it doubles for each later retry

error: expected a duration or `off` for `stuck_after`, found the boolean `false`
 --> ci/hermetic.yaml:5:16
  |
5 |   stuck_after: false
  |                ^^^^^
  = help: write `off`

error: `failures` must be from 1 to 1000, found `0`
 --> ci/hermetic.yaml:6:31
  |
6 |   circuit_breaker: {failures: 0, cool_down: 30, thresold: 2}
  |                               ^

error: invalid duration `30` for `cool_down`: a bare number has no unit
 --> ci/hermetic.yaml:6:45
  |
6 |   circuit_breaker: {failures: 0, cool_down: 30, thresold: 2}
  |                                             ^^
  = help: write `30s` for 30 seconds, or use another unit: `500ms`, `2m`, `1h`

error: unknown key `thresold` in `circuit_breaker`
 --> ci/hermetic.yaml:6:49
  |
6 |   circuit_breaker: {failures: 0, cool_down: 30, thresold: 2}
  |                                                 ^^^^^^^^
  = help: the keys allowed here are `failures` and `cool_down`

error: `factor` must be from 1 to 100, found `0.5`
  --> ci/hermetic.yaml:11:32
   |
11 |     adaptive_timeout: {factor: 0.5, cap: 10}
   |                                ^^^
   = help: the limit is the p95 of past run times multiplied by `factor`, e.g. `3`

error: invalid duration `10` for `cap`: a bare number has no unit
  --> ci/hermetic.yaml:11:42
   |
11 |     adaptive_timeout: {factor: 0.5, cap: 10}
   |                                          ^^
   = help: write `10s` for 10 seconds, or use another unit: `500ms`, `2m`, `1h`

error: unknown key `circuit_breaker` in step `a`
  --> ci/hermetic.yaml:12:5
   |
12 |     circuit_breaker: off
   |     ^^^^^^^^^^^^^^^
   = help: `circuit_breaker` can only be set under `defaults:`

error: `adaptive_timeout` has no `cap`
  --> ci/hermetic.yaml:15:5
   |
15 |     adaptive_timeout: {factr: 2}
   |     ^^^^^^^^^^^^^^^^
   = help: add the longest the adaptive limit may be, e.g. `adaptive_timeout: {factor: 3, cap: 10m}`

error: unknown key `factr` in `adaptive_timeout`
  --> ci/hermetic.yaml:15:24
   |
15 |     adaptive_timeout: {factr: 2}
   |                        ^^^^^
   = help: did you mean `factor`?

error: invalid duration `soon` for `stuck_after`: expected a number before `soon`
  --> ci/hermetic.yaml:16:18
   |
16 |     stuck_after: soon
   |                  ^^^^
   = help: valid durations look like `30s`, `500ms`, `2m`, `1h30m`, `1.5s`

error: invalid duration `30` for `backoff`: a bare number has no unit
  --> ci/hermetic.yaml:17:14
   |
17 |     backoff: 30
   |              ^^
   = help: write `30s` for 30 seconds, or use another unit: `500ms`, `2m`, `1h`

error: `adaptive_timeout` has no `cap`
  --> ci/hermetic.yaml:20:5
   |
20 |     adaptive_timeout: {factor: fast}
   |     ^^^^^^^^^^^^^^^^
   = help: add the longest the adaptive limit may be, e.g. `adaptive_timeout: {factor: 3, cap: 10m}`

error: expected a number from 1 to 100 for `factor`, found the string `fast`
  --> ci/hermetic.yaml:20:32
   |
20 |     adaptive_timeout: {factor: fast}
   |                                ^^^^

error: expected a list of outcomes and exit codes for `retry_on`, found a map
  --> ci/hermetic.yaml:21:15
   |
21 |     retry_on: {timeout: true}
   |               ^
   = help: a `key: value` pair makes a map; if you meant a string containing `: `, put it in quotes

error: aborting due to 21 previous errors",
    );
}

#[test]
fn params_become_canonical_json_in_the_environment() {
    let wf = parse(
        "name: p\nsteps:\n  a:\n    task: a.wasm\n    params:\n      zeta: [1, 2.5, true, ~]\n      alpha: { name: x, n: -3 }\n",
    );
    assert_eq!(
        wf.steps[0].env[PARAMS_ENV],
        r#"{"alpha":{"n":-3,"name":"x"},"zeta":[1,2.5,true,null]}"#
    );
    // Written in another order, the same parameters are the same JSON, hence the same key.
    let again = parse(
        "name: p\nsteps:\n  a:\n    task: a.wasm\n    params: {alpha: {name: x, n: -3}, zeta: [1, 2.5, true, null]}\n",
    );
    assert_eq!(wf.steps[0].env, again.steps[0].env);
}

#[test]
fn bad_params_are_reported() {
    check(
        "name: p\nsteps:\n  a:\n    task: a.wasm\n    params: [1]\n  b:\n    task: b.wasm\n    env: {HERMETIC_PARAMS: '{}'}\n    params: {x: 1}\n  c:\n    task: c.wasm\n    params: {y: 1, y: 2}\n",
        "
error: expected a map of parameters for `params`, found a list
 --> ci/hermetic.yaml:5:13
  |
5 |     params: [1]
  |             ^

error: `env` sets `HERMETIC_PARAMS`, which carries the step's `params`
 --> ci/hermetic.yaml:8:5
  |
8 |     env: {HERMETIC_PARAMS: '{}'}
  |     ^^^
  = help: remove `HERMETIC_PARAMS` from `env`: `params:` sets it from its map

error: duplicate parameter `y`
  --> ci/hermetic.yaml:12:20
   |
12 |     params: {y: 1, y: 2}
   |                    ^
note: `y` is first defined here
  --> ci/hermetic.yaml:12:14
   |
12 |     params: {y: 1, y: 2}
   |              ^

error: aborting due to 3 previous errors",
    );
}

/// The `hermetic.yaml` snippets in the standard tasks' docs use only keys that exist.
#[test]
fn task_docs_show_known_keys() {
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks");
    let mut checked = 0;
    for entry in std::fs::read_dir(&tasks).unwrap() {
        let main = entry.unwrap().path().join("src/main.rs");
        let Ok(source) = std::fs::read_to_string(&main) else {
            continue;
        };
        let mut snippet: Option<String> = None;
        for line in source.lines() {
            let doc = line
                .strip_prefix("//!")
                .map(|l| l.strip_prefix(' ').unwrap_or(l));
            match (doc, &mut snippet) {
                (Some("```yaml"), None) => snippet = Some(String::from("name: doc\n")),
                (Some("```"), Some(text)) => {
                    if let Err(e) = Workflow::parse(&main, text) {
                        let e = e.to_string();
                        assert!(!e.contains("unknown key"), "{}:\n{e}", main.display());
                    }
                    checked += 1;
                    snippet = None;
                }
                (Some(l), Some(text)) => {
                    text.push_str(l);
                    text.push('\n');
                }
                _ => {}
            }
        }
    }
    assert!(checked >= 8, "only {checked} snippets found");
}

#[test]
fn chaos_section_lists_faults_or_rates_each() {
    let listed = parse(
        "name: w\nsteps:\n  a: {task: a.wasm}\n  b: {task: b.wasm}\nchaos:\n  seeds: 3..5\n  \
         faults: [io, worker]\n  rate: 0.4\n  steps: [b]\n  expect: {succeeds: true, max_retries: 2}\n",
    );
    let chaos = listed.chaos.unwrap();
    assert_eq!(chaos.seeds, Some(vec![3, 4, 5]));
    assert_eq!(
        chaos.rates,
        Some(vec![(FaultKind::Io, 0.2), (FaultKind::Worker, 0.2)])
    );
    assert_eq!(chaos.steps, Some(vec!["b".to_string()]));
    assert!(chaos.expect.succeeds);
    assert_eq!(chaos.expect.max_retries, Some(2));

    let rated =
        parse("name: w\nsteps:\n  a: {task: a.wasm}\nchaos:\n  faults: {trap: 0.1, fuel: 0.25}\n");
    let chaos = rated.chaos.unwrap();
    assert_eq!(
        chaos.rates,
        Some(vec![(FaultKind::Trap, 0.1), (FaultKind::Fuel, 0.25)])
    );
    assert_eq!(chaos.seeds, None);
    assert_eq!(chaos.steps, None);
    assert_eq!(chaos.expect, crate::chaos::suite::Expect::default());
    assert!(
        parse("name: w\nsteps:\n  a: {task: a.wasm}\n")
            .chaos
            .is_none()
    );
}

#[test]
fn chaos_rates_must_be_chances_that_fit_in_one() {
    check(
        "name: w\nsteps:\n  a: {task: a.wasm}\nchaos:\n  faults: {trap: 0.6, fuel: 0.5}\n",
        "
error: the fault rates add up to 1.1, more than 1
 --> ci/hermetic.yaml:5:11
  |
5 |   faults: {trap: 0.6, fuel: 0.5}
  |           ^
  = help: a step gets at most one fault per run: the rates are the chances of each, so they must sum to at most 1",
    );
    let out_of_range = errors("name: w\nsteps:\n  a: {task: a.wasm}\nchaos:\n  rate: 2\n");
    assert!(
        out_of_range.contains("error: `rate` must be from 0 to 1, found `2`"),
        "{out_of_range}"
    );
}
