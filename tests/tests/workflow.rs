//! `hermetic run`, `check` and `graph` on real workflows: where outputs and logs land, exit
//! codes, per-step limits, configuration errors, the dependency graph and `--json` events.

use hermetic_tests::{Test, guests};

/// A project whose workflow `copy` step copies `src/**/*.txt` to its outputs and whose `list`
/// step lists what it receives from `copy` in `/deps`.
fn copy_project() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: demo
steps:
  copy:
    task: guests/copy_in_out.wasm
    inputs: [\"src/**/*.txt\"]
    outputs: [src/a.txt, src/nested]
  list:
    task: guests/ls.wasm
    args: [/in, /deps, /out, /tmp, /]
    depends_on: [copy]
  greet:
    task: guests/hello.wasm
    args: [a, b]
    env: { GREETING: hi }
",
        )
        .guest("guests/copy_in_out.wasm", guests::COPY_IN_OUT_P2)
        .guest("guests/ls.wasm", guests::LS_P1)
        .guest("guests/hello.wasm", guests::HELLO_P1)
        .file("src/a.txt", "alpha\n")
        .file("src/nested/b.txt", "beta\n")
        .file("src/nested/skip.md", "not an input\n")
        .file(
            "src/undeclared.txt",
            "an input, but not a declared output\n",
        )
}

#[test]
fn outputs_and_logs_land_beside_the_workflow() {
    let out = copy_project()
        .args(["run", "--jobs", "1"])
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(
            "   Running copy\n  Finished copy in [ELAPSED]\n   Running list\n  Finished list in [ELAPSED]\n   Running greet\n  Finished greet in [ELAPSED]\n      Done 3 succeeded, 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.tree(".hermetic/out"),
        "copy/\n  src/\n    a.txt (6 bytes)\n    nested/\n      b.txt (5 bytes)\n"
    );
    assert_eq!(
        out.read(".hermetic/logs/copy/stdout"),
        "copied src/a.txt (6 bytes)\ncopied src/nested/b.txt (5 bytes)\ncopied src/undeclared.txt (36 bytes)\n3 files\n"
    );
    // The guest's whole world: only `/deps/<name>` of its dependency, `/out` and `/tmp` empty.
    assert_eq!(
        out.read(".hermetic/logs/list/stdout"),
        "\
/in
/deps
  copy/
    src/
      a.txt (6 bytes)
      nested/
        b.txt (5 bytes)
/out
/tmp
/
  <cannot list /: No such file or directory (os error 44)>
"
    );
    assert_eq!(
        out.read(".hermetic/logs/greet/stdout"),
        "hello from wasm\narg[0]=greet\narg[1]=a\narg[2]=b\nenv GREETING=hi\n"
    );
    // The attempt directories are cleaned up.
    assert_eq!(out.tree(".hermetic/tmp"), "empty/\n");
}

#[test]
fn out_dir_flag() {
    let out = copy_project()
        .args(["run", "--step", "copy", "--out-dir", "published"])
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(
            "   Running copy\n  Finished copy in [ELAPSED]\n      Done 1 succeeded, 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.tree("published"),
        "copy/\n  src/\n    a.txt (6 bytes)\n    nested/\n      b.txt (5 bytes)\n"
    );
    assert!(!out.exists(".hermetic/out"));
}

/// `--step` runs the step and what it depends on, nothing else.
#[test]
fn step_flag_runs_dependencies() {
    let out = copy_project()
        .args(["run", "--step", "list", "--jobs", "1"])
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(
            "   Running copy\n  Finished copy in [ELAPSED]\n   Running list\n  Finished list in [ELAPSED]\n      Done 2 succeeded, 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert!(!out.exists(".hermetic/logs/greet"));
}

#[test]
fn unknown_step_flag() {
    copy_project()
        .args(["run", "--step", "nosuch"])
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr("error: --step `nosuch`: no such step\n")
        .run();
}

#[test]
fn misspelt_step_flag() {
    copy_project()
        .args(["run", "--step", "lsit"])
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr("error: --step `lsit`: no such step\n  = help: did you mean `list`?\n")
        .run();
}

/// `--json`: one event per line; everything but `duration_ms` is deterministic (fuel included).
#[test]
fn json_events() {
    let out = copy_project()
        .args(["run", "--json", "--jobs", "1", "--step", "list"])
        .expect_status(0)
        .expect_stderr("")
        .run();
    let events: Vec<String> = out
        .json_lines()
        .into_iter()
        .map(|mut event| {
            // Fuel is deterministic but depends on how the guest was compiled.
            if let Some(map) = event.as_object_mut() {
                for (key, mask) in [
                    ("duration_ms", "[ELAPSED]"),
                    ("fuel_used", "[FUEL]"),
                    ("queue_wait_us", "[WAIT]"),
                ] {
                    if let Some(value) = map.get_mut(key) {
                        assert!(value.as_u64().is_some(), "{key}: {value}");
                        *value = mask.into();
                    }
                }
                // The action key depends on how the guest was compiled, like fuel.
                if let Some(key) = map.get_mut("key") {
                    let hex = key.as_str().unwrap_or_default();
                    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
                    *key = "[KEY]".into();
                }
            }
            event.to_string()
        })
        .collect();
    assert_eq!(
        events,
        [
            r#"{"event":"run_started","jobs":1,"steps":2,"workflow":"demo"}"#,
            r#"{"attempt":1,"event":"step_dispatched","queue_wait_us":"[WAIT]","step":"copy","worker":0}"#,
            r#"{"attempt":1,"event":"step_started","step":"copy"}"#,
            r#"{"attempts":1,"cached":false,"duration_ms":"[ELAPSED]","event":"step_finished","exit_code":0,"fuel_used":"[FUEL]","key":"[KEY]","outcome":"success","outputs":["src/a.txt","src/nested/b.txt"],"peak_memory":1114112,"status":"succeeded","step":"copy"}"#,
            r#"{"attempt":1,"event":"step_dispatched","queue_wait_us":"[WAIT]","step":"list","worker":0}"#,
            r#"{"attempt":1,"event":"step_started","step":"list"}"#,
            r#"{"attempts":1,"cached":false,"duration_ms":"[ELAPSED]","event":"step_finished","exit_code":0,"fuel_used":"[FUEL]","key":"[KEY]","outcome":"success","outputs":[],"peak_memory":1114112,"status":"succeeded","step":"list"}"#,
            r#"{"cached":0,"duration_ms":"[ELAPSED]","event":"run_finished","failed":0,"skipped":0,"status":"succeeded","succeeded":2}"#,
        ]
    );
}

/// Each kind of failure fails its step with one clear line; dependents are skipped, the others
/// still run, and the run exits 1.
#[test]
fn failures_and_limits_in_a_workflow() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: failing
steps:
  fail:
    task: exit_code.wasm
    args: [\"3\"]
  after:
    task: hello.wasm
    depends_on: [fail]
  trap:
    task: recursion.wasm
  bomb:
    task: memory_bomb.wasm
    memory: 128MiB
  spin:
    task: infinite_loop.wasm
    fuel: 10M
  slow:
    task: infinite_loop.wasm
    timeout: 1s
    fuel: 1000G
",
        )
        .guest("exit_code.wasm", guests::EXIT_CODE_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .guest("recursion.wasm", guests::RECURSION_P1)
        .guest("memory_bomb.wasm", guests::MEMORY_BOMB_P1)
        .guest("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .args(["run", "--jobs", "1", "--keep-going"])
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr(
            "   Running fail
    Failed fail: exited with code 3
   Skipped after (dependency `fail` failed)
   Running trap
    Failed trap: trapped: call stack exhausted
wasm backtrace:
    0..=63: recursion::recurse (repeated 64 times)
   Running bomb
    Failed bomb: exceeded its memory limit of 128 MiB
           | memory allocation of 67108864 bytes failed
           | note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
   Running spin
    Failed spin: ran out of fuel (limit: 10000000)
   Running slow
    Failed slow: timed out after 1s
    Failed 0 succeeded, 5 failed, 1 skipped in [ELAPSED]
",
        )
        .run();
    assert_eq!(out.read(".hermetic/logs/fail/stdout"), "exiting with 3\n");
    assert_eq!(
        out.read(".hermetic/logs/bomb/stderr"),
        "memory allocation of 67108864 bytes failed\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
    );
    assert!(!out.exists(".hermetic/logs/after"));
    assert_eq!(out.tree(".hermetic/tmp"), "empty/\n");
}

/// Every problem in a workflow is reported at once, with its location and a hint; `check` and
/// `run` agree, and exit 2.
#[test]
fn configuration_errors() {
    const YAML: &str = "name: bad\nsteps:\n  a:\n    task: nope.wasm\n    timeout: 5 parsecs\n    depends_on: [b]\n";
    const ERRORS: &str = "\
error: invalid duration `5 parsecs` for `timeout`: unknown unit ` parsecs`
 --> hermetic.yaml:5:14
  |
5 |     timeout: 5 parsecs
  |              ^^^^^^^^^
  = help: use `ms`, `s`, `m` (minutes), `h` or `d`, e.g. `30s`, `500ms`, `2m`, `1h30m`, `1.5s`

error: unknown step `b` in `depends_on` of step `a`
 --> hermetic.yaml:6:18
  |
6 |     depends_on: [b]
  |                  ^
  = help: there are no other steps

error: aborting due to 2 previous errors
";
    for command in ["check", "run"] {
        Test::new()
            .file("hermetic.yaml", YAML)
            .arg(command)
            .expect_status(2)
            .expect_stdout("")
            .expect_stderr(ERRORS)
            .run();
    }
}

/// The workflow memos in the cache of the project that `out` ran in.
fn memos(out: &hermetic_tests::Output) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(out.cache_dir().join("parsed")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_remembered_workflow_gives_the_same_run_and_the_same_errors() {
    let first = copy_project()
        .args(["-v", "run", "--jobs", "1"])
        .expect_status(0)
        .expect_stderr_contains("workflow: memo miss")
        .run();
    // One memo, in the user's cache: never in the project, where a checkout could bring one.
    let [memo] = &memos(&first)[..] else {
        panic!("one memo: {:?}", memos(&first))
    };
    assert!(!first.exists(".hermetic/parsed"));
    let published = hermetic_tests::snapshot(&first.join(".hermetic/out"));
    let greeted = first.read(".hermetic/logs/greet/stdout");

    let second = first
        .again()
        .args(["-v", "run", "--jobs", "1", "--no-cache"])
        .expect_status(0)
        .expect_stderr_contains("workflow: memo hit")
        .run();
    assert_eq!(
        hermetic_tests::snapshot(&second.join(".hermetic/out")),
        published
    );
    assert_eq!(second.read(".hermetic/logs/greet/stdout"), greeted);

    // An edited workflow is parsed again: the new argument reaches the guest.
    let yaml = second
        .read("hermetic.yaml")
        .replace("args: [a, b]", "args: [a, c]");
    std::fs::write(second.join("hermetic.yaml"), yaml).unwrap();
    let edited = second
        .again()
        .args(["-v", "run", "--jobs", "1"])
        .expect_status(0)
        .expect_stderr_contains("workflow: memo miss (the workflow changed)")
        .run();
    assert_eq!(
        edited.read(".hermetic/logs/greet/stdout"),
        "hello from wasm\narg[0]=greet\narg[1]=a\narg[2]=c\nenv GREETING=hi\n"
    );
    assert_eq!(
        &memos(&edited),
        std::slice::from_ref(memo),
        "the edit replaced the memo"
    );

    // A damaged memo is a miss, never a wrong step.
    let mut bytes = std::fs::read(memo).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(memo, bytes).unwrap();
    let repaired = edited
        .again()
        .args(["-v", "run", "--jobs", "1", "--no-cache"])
        .expect_status(0)
        .expect_stderr_contains(
            "workflow: memo miss (corrupt: the payload does not match its digest)",
        )
        .run();
    assert_eq!(
        repaired.read(".hermetic/logs/greet/stdout"),
        "hello from wasm\narg[0]=greet\narg[1]=a\narg[2]=c\nenv GREETING=hi\n"
    );
}

#[test]
fn a_remembered_workflow_points_at_the_same_places() {
    // A workflow with errors is never remembered: each run reports them again.
    const BAD: &str = "name: bad\nsteps:\n  a:\n    task: nope.wasm\n    timout: 5s\n";
    let bad = Test::new()
        .file("hermetic.yaml", BAD)
        .arg("run")
        .expect_status(2)
        .expect_stderr_contains("error: unknown key `timout` in step `a`")
        .run();
    assert!(memos(&bad).is_empty());

    // One that only fails to plan is remembered, and its next run, from the memo, points at
    // the same line and column.
    const ERRORS: &str = "\
error: task file `nope.wasm` does not exist
 --> hermetic.yaml:4:11
  |
4 |     task: nope.wasm
  |           ^^^^^^^^^
  = help: paths in `task:` are relative to the workflow file
";
    let unplanned = bad
        .again()
        .file(
            "hermetic.yaml",
            "name: bad\nsteps:\n  a:\n    task: nope.wasm\n",
        )
        .args(["-v", "run"])
        .expect_status(2)
        .expect_stderr_contains("workflow: memo miss")
        .expect_stderr_contains(ERRORS)
        .run();
    assert_eq!(memos(&unplanned).len(), 1);
    unplanned
        .again()
        .args(["-v", "run"])
        .expect_status(2)
        .expect_stderr_contains("workflow: memo hit")
        .expect_stderr_contains(ERRORS)
        .run();
}

#[test]
fn missing_task_file() {
    for command in ["check", "run"] {
        Test::new()
            .file(
                "hermetic.yaml",
                "name: bad\nsteps:\n  a:\n    task: nope.wasm\n",
            )
            .arg(command)
            .expect_status(2)
            .expect_stdout("")
            .expect_stderr(
                "\
error: task file `nope.wasm` does not exist
 --> hermetic.yaml:4:11
  |
4 |     task: nope.wasm
  |           ^^^^^^^^^
  = help: paths in `task:` are relative to the workflow file
",
            )
            .run();
    }
}

#[test]
fn dependency_cycle() {
    Test::new()
        .file(
            "hermetic.yaml",
            "name: cyc\nsteps:\n  a:\n    task: hello.wasm\n    depends_on: [b]\n  b:\n    task: hello.wasm\n    depends_on: [a]\n",
        )
        .guest("hello.wasm", guests::HELLO_P1)
        .arg("check")
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr(
            "\
error: dependency cycle: a → b → a
 --> hermetic.yaml:3:3
  |
3 |   a:
  |   ^
  = help: steps cannot depend on themselves, directly or through other steps; remove one of the `depends_on` entries in the cycle
",
        )
        .run();
}

#[test]
fn missing_workflow() {
    Test::new()
        .arg("run")
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr(
            "error: cannot read workflow `hermetic.yaml`: No such file or directory (os error 2)\n",
        )
        .run();
}

#[test]
fn check_ok() {
    copy_project()
        .arg("check")
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr("ok: workflow `demo` (3 steps)\n")
        .run();
}

#[test]
fn graph_dot_and_mermaid() {
    copy_project()
        .arg("graph")
        .expect_status(0)
        .expect_stdout(
            "digraph \"demo\" {\n  rankdir=LR;\n  \"copy\";\n  \"list\";\n  \"greet\";\n  \"copy\" -> \"list\";\n}\n",
        )
        .expect_stderr("")
        .run();
    copy_project()
        .args(["graph", "--format", "mermaid"])
        .expect_status(0)
        .expect_stdout(
            "flowchart LR\n  s0[\"copy\"]\n  s1[\"list\"]\n  s2[\"greet\"]\n  s0 --> s1\n",
        )
        .expect_stderr("")
        .run();
}

/// A step that prints nothing leaves no log, and removes the one an earlier run of it left.
#[test]
fn a_silent_run_removes_the_log_of_a_talkative_one() {
    let talk = Test::new()
        .file(
            "hermetic.yaml",
            "name: logs\nsteps:\n  s: { task: hello.wasm }\n",
        )
        .guest("hello.wasm", guests::HELLO_P1)
        .guest("stamp.wasm", guests::STAMP_P1)
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert!(
        talk.read(".hermetic/logs/s/stdout")
            .starts_with("hello from wasm\n")
    );
    let silent = talk
        .again()
        .file(
            "hermetic.yaml",
            "name: logs\nsteps:\n  s: { task: stamp.wasm, outputs: [stamp.txt] }\n",
        )
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert!(!silent.exists(".hermetic/logs/s/stdout"));
    assert!(!silent.exists(".hermetic/logs/s/stderr"));
    // The first run's journal keeps its own copy.
    let runs: Vec<_> = std::fs::read_dir(silent.path().join(".hermetic/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let kept = runs
        .iter()
        .filter(|r| r.join("logs/s/stdout").exists())
        .count();
    assert_eq!((runs.len(), kept), (2, 1));
}
