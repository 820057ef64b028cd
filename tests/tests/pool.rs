//! The pool through `hermetic run`: priorities, fail-fast against `--keep-going`, retries with
//! backoff and `retry_on`, the circuit breaker, stuck-step warnings, and `--seed` replaying the
//! same dispatch order.

use hermetic_tests::{Test, guests};
use serde_json::Value;

/// The `--json` events of `out` whose `event` is `kind`.
fn events_of(out: &hermetic_tests::Output, kind: &str) -> Vec<Value> {
    out.json_lines()
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

/// Each event's `key` field, as a string.
fn field(events: &[Value], key: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn ready_steps_start_by_priority_then_critical_path() {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: order
steps:
  low:
    task: hello.wasm
    priority: 1
  high:
    task: hello.wasm
    priority: 9
  plain:
    task: hello.wasm
  chain_head:
    task: hello.wasm
  chain_tail:
    task: hello.wasm
    depends_on: [chain_head]
",
        )
        .guest("hello.wasm", guests::HELLO_P1)
        .args(["run", "--jobs", "1", "--no-cache"])
        .expect_status(0)
        // `high` first; then `chain_head`, whose chain is longer than `plain`'s; its dependent
        // `chain_tail` (priority 5, like `plain`, but later in the file) waits for `plain`.
        .expect_stderr(
            "   Running high
  Finished high in [ELAPSED]
   Running chain_head
  Finished chain_head in [ELAPSED]
   Running plain
  Finished plain in [ELAPSED]
   Running chain_tail
  Finished chain_tail in [ELAPSED]
   Running low
  Finished low in [ELAPSED]
      Done 5 succeeded, 0 failed, 0 skipped in [ELAPSED]
",
        )
        .run();
}

/// A step that fails, an independent step after it, and a report that runs after failures.
fn failing_project() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: failing
steps:
  fail:
    task: exit_code.wasm
    args: [\"3\"]
    priority: 10
  later:
    task: hello.wasm
  report:
    task: hello.wasm
    depends_on: [fail]
    when: always
",
        )
        .guest("exit_code.wasm", guests::EXIT_CODE_P1)
        .guest("hello.wasm", guests::HELLO_P1)
}

#[test]
fn a_failure_stops_new_steps_by_default() {
    failing_project()
        .args(["run", "--jobs", "1", "--no-cache"])
        .expect_status(1)
        .expect_stderr(
            "   Running fail
    Failed fail: exited with code 3
   Skipped later (not started: `fail` failed, and the run stops at the first failure (--keep-going runs every step that can run))
   Running report
  Finished report in [ELAPSED]
    Failed 1 succeeded, 1 failed, 1 skipped in [ELAPSED]
",
        )
        .run();
}

#[test]
fn keep_going_runs_every_step_that_can_run() {
    failing_project()
        .args(["run", "--jobs", "1", "--no-cache", "--keep-going"])
        .expect_status(1)
        .expect_stderr(
            "   Running fail
    Failed fail: exited with code 3
   Running later
  Finished later in [ELAPSED]
   Running report
  Finished report in [ELAPSED]
    Failed 2 succeeded, 1 failed, 0 skipped in [ELAPSED]
",
        )
        .run();
}

#[test]
fn retries_back_off_and_retry_on_chooses_what_is_retried() {
    let project = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: retries
defaults:
  retries: 2
  backoff: 40ms
steps:
  slow:
    task: infinite_loop.wasm
    timeout: 200ms
    fuel: 1000G
  deterministic:
    task: exit_code.wasm
    args: [\"3\"]
  chosen:
    task: exit_code.wasm
    args: [\"3\"]
    retry_on: [3]
",
        )
        .guest("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .guest("exit_code.wasm", guests::EXIT_CODE_P1);
    let args = |seed: &str| {
        [
            "run",
            "--json",
            "--keep-going",
            "--jobs",
            "2",
            "--seed",
            seed,
        ]
        .map(String::from)
    };
    let out = project.args(args("7")).expect_status(1).run();
    let run = |seed: &str| out.again().args(args(seed)).expect_status(1).run();
    let finished = events_of(&out, "step_finished");
    let by_step = |name: &str| {
        finished
            .iter()
            .find(|e| e["step"] == name)
            .unwrap_or_else(|| panic!("{name} finished"))
            .clone()
    };
    // A timeout is retried by default; a deterministic exit code is not, unless listed.
    assert_eq!(by_step("slow")["attempts"], 3);
    assert_eq!(by_step("slow")["outcome"], "timed_out");
    assert_eq!(by_step("deterministic")["attempts"], 1);
    assert_eq!(
        by_step("deterministic")["message"],
        "exited with code 3 (not retried: exit code 3 is not in `retry_on: [timeout, host_error]`)"
    );
    assert_eq!(by_step("chosen")["attempts"], 3);

    // Each retry is announced with its backoff: 40ms doubled per attempt, half of it jitter.
    let retrying = events_of(&out, "step_retrying");
    let mut delays: Vec<(String, u64, u64)> = retrying
        .iter()
        .map(|e| {
            let step = e["step"].as_str().unwrap_or_default().to_string();
            let attempt = e["attempt"].as_u64().unwrap_or_default();
            (step, attempt, e["delay_ms"].as_u64().unwrap_or(u64::MAX))
        })
        .collect();
    delays.sort();
    assert_eq!(delays.len(), 4, "{delays:?}");
    for (step, attempt, delay) in &delays {
        let full = 40 << (attempt - 1);
        assert!(
            (full / 2..=full).contains(delay),
            "{step} attempt {attempt}: {delay} ms"
        );
    }
    // Each later attempt is dispatched again, as attempt 2 and 3.
    let attempts: Vec<String> = events_of(&out, "step_dispatched")
        .iter()
        .filter(|e| e["step"] == "chosen")
        .map(|e| e["attempt"].to_string())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);

    // The jitter comes from the seed: the same seed waits the same, another seed differently.
    let delays_of = |out: &hermetic_tests::Output| {
        let mut d = field(&events_of(out, "step_retrying"), "delay_ms");
        d.sort();
        d
    };
    assert_eq!(delays_of(&out), delays_of(&run("7")));
    assert_ne!(delays_of(&out), delays_of(&run("8")));
}

#[test]
fn the_circuit_breaker_opens_half_opens_and_closes() {
    // One worker; steps start in priority order. Two failures open the breaker of
    // `exit_code.wasm`; `f3` fails without running; `slow` (another module) times out after
    // 1s, past the cool-down, so `f4` tries the module (half-open), succeeds and closes it;
    // `f5` runs normally.
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: breaker
defaults:
  circuit_breaker: { failures: 2, cool_down: 500ms }
steps:
  f1: { task: exit_code.wasm, args: [\"3\"], priority: 10 }
  f2: { task: exit_code.wasm, args: [\"3\"], priority: 9 }
  f3: { task: exit_code.wasm, args: [\"3\"], priority: 8 }
  slow: { task: infinite_loop.wasm, timeout: 1s, fuel: 1000G, priority: 7 }
  f4: { task: exit_code.wasm, args: [\"0\"], priority: 6 }
  f5: { task: exit_code.wasm, args: [\"4\"], priority: 5 }
",
        )
        .guest("exit_code.wasm", guests::EXIT_CODE_P1)
        .guest("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .args(["run", "--json", "--keep-going", "--jobs", "1", "--no-cache"])
        .expect_status(1)
        .run();
    let story: Vec<String> = out
        .json_lines()
        .into_iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("step_finished") => Some(format!("{} {}", e["step"], e["outcome"])),
            Some("circuit") => Some(format!("circuit {} {}", e["state"], e["message"])),
            _ => None,
        })
        .collect();
    assert_eq!(
        story,
        [
            r#""f1" "exit""#,
            r#""f2" "exit""#,
            r#"circuit "open" "2 consecutive failures, the last `f2`; its other steps fail without running for 500ms""#,
            r#""f3" "circuit_open""#,
            r#""slow" "timed_out""#,
            r#"circuit "half_open" "cool-down over: `f4` tries the module""#,
            r#""f4" "success""#,
            r#"circuit "closed" "`f4` succeeded""#,
            r#""f5" "exit""#,
        ]
    );
    let f3 = events_of(&out, "step_finished")
        .into_iter()
        .find(|e| e["step"] == "f3")
        .expect("f3 finished");
    assert_eq!(f3["status"], "failed");
    assert_eq!(f3["attempts"], 0);
    let message = f3["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "not run: the circuit breaker of `exit_code.wasm` is open after 2 consecutive failures; one step tries it again in "
        ),
        "{message}"
    );
}

#[test]
fn a_silent_step_raises_a_stuck_warning_before_its_timeout() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: stuck
steps:
  spin:
    task: infinite_loop.wasm
    timeout: 1s
    fuel: 1000G
    stuck_after: 300ms
",
        )
        .guest("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .args(["run", "--json", "--no-cache"])
        .expect_status(1)
        .run();
    let kinds: Vec<String> = field(&out.json_lines(), "event");
    let stuck = kinds.iter().position(|k| k == "step_stuck");
    let finished = kinds.iter().position(|k| k == "step_finished");
    assert!(
        stuck.is_some() && stuck < finished,
        "a stuck warning, then the end: {kinds:?}"
    );
    let silent = events_of(&out, "step_stuck")[0]["silent_ms"]
        .as_u64()
        .unwrap_or_default();
    assert!(silent >= 300, "{silent}");
}

/// A wide graph with chains: many steps of equal priority, so that their order is a choice.
fn wide_project() -> Test {
    let mut yaml = String::from("name: wide\nsteps:\n");
    for i in 0..12 {
        yaml.push_str(&format!("  s{i:02}:\n    task: hello.wasm\n"));
        if i % 4 == 3 {
            yaml.push_str(&format!("    depends_on: [s{:02}]\n", i - 1));
        }
    }
    Test::new()
        .file("hermetic.yaml", yaml)
        .guest("hello.wasm", guests::HELLO_P1)
}

#[test]
fn the_same_seed_gives_the_same_dispatch_order() {
    let dispatches = |seed: &str| {
        let out = wide_project()
            .args(["run", "--json", "--no-cache", "--jobs", "2", "--seed", seed])
            .expect_status(0)
            .run();
        assert_eq!(events_of(&out, "run_started")[0]["seed"].to_string(), seed);
        events_of(&out, "step_dispatched")
            .iter()
            .map(|e| format!("{} on {}", e["step"], e["worker"]))
            .collect::<Vec<_>>()
    };
    let first = dispatches("42");
    assert_eq!(first.len(), 12);
    assert_eq!(first, dispatches("42"));
    assert_eq!(first, dispatches("42"));
    // Another seed explores another order.
    assert_ne!(first, dispatches("43"));
}

#[test]
fn an_adaptive_timeout_follows_the_steps_past_run_times() {
    let project = |task: &str, args: &str| {
        format!(
            "name: adaptive\nsteps:\n  work:\n    task: {task}\n    args: [{args}]\n    fuel: 1000G\n    adaptive_timeout: {{factor: 2, cap: 1m}}\n  other:\n    task: hello.wasm\n"
        )
    };
    let mut out = Test::new()
        .file("hermetic.yaml", project("hello.wasm", "x"))
        .guest("hello.wasm", guests::HELLO_P1)
        .guest("spin.wasm", guests::SPIN_P1)
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    // Five quick runs: the step's limit becomes 2 × p95, at least 1s.
    for _ in 0..4 {
        out = out
            .again()
            .args(["run", "--no-cache"])
            .expect_status(0)
            .run();
    }
    // Only the step with an adaptive timeout keeps a history of its run times.
    let history: Value = serde_json::from_str(&out.read(".hermetic/durations.json")).unwrap();
    let steps = history["steps"].as_object().unwrap();
    assert_eq!(steps.keys().collect::<Vec<_>>(), ["work"]);
    assert_eq!(steps["work"].as_array().unwrap().len(), 5);
    // The step now takes seconds: it is stopped at the adaptive limit, not the default 10m.
    std::fs::write(
        out.join("hermetic.yaml"),
        project("spin.wasm", "\"100000000000\""),
    )
    .unwrap();
    out.again()
        .args(["run", "--no-cache"])
        .args(["--step", "work"])
        .expect_status(1)
        .expect_stderr_contains("    Failed work: timed out after 1s\n")
        .run();
}

#[test]
fn sdk_progress_and_logs_become_events() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: p\nsteps:\n  work:\n    task: progress.wasm\n    args: [\"40\"]\n    outputs: [count.txt]\n",
        )
        .guest("progress.wasm", guests::PROGRESS_P1)
        .args(["run", "--json", "--no-cache"])
        .expect_status(0)
        .run();
    let progress = events_of(&out, "step_progress");
    assert!(!progress.is_empty());
    // Throttled, but the completion is always reported.
    let last = progress.last().unwrap();
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(40), Some(40))
    );
    let dones: Vec<u64> = progress.iter().filter_map(|e| e["done"].as_u64()).collect();
    assert!(dones.windows(2).all(|w| w[0] < w[1]), "{dones:?}");
    let logs: Vec<String> = events_of(&out, "step_log")
        .iter()
        .map(|e| format!("{} {}", e["level"], e["message"]))
        .collect();
    assert_eq!(
        logs,
        [
            r#""info" "working through 40 items""#,
            r#""warn" "done with 40 items""#
        ]
    );
    assert_eq!(out.read(".hermetic/out/work/count.txt"), "40\n");
    // The host calls go to the host, not to the step's stderr.
    assert!(!out.exists(".hermetic/logs/work/stderr"));

    // Without `--json`, a warning is a status line.
    out.again()
        .args(["run", "--no-cache"])
        .expect_status(0)
        .expect_stderr_contains("   Warning work: done with 40 items\n")
        .run();
}

/// On a terminal, the live display shows a running step's progress. (`script` gives hermetic a
/// pseudo-terminal.)
#[test]
fn the_live_display_shows_progress() {
    let t = Test::new()
        .file(
            "hermetic.yaml",
            "name: p\nsteps:\n  work:\n    task: progress.wasm\n    args: [\"2000\"]\n",
        )
        .guest("progress.wasm", guests::PROGRESS_P1);
    let command = format!(
        "{} run --no-cache",
        hermetic_tests::hermetic_bin().display()
    );
    // The environment every test gives hermetic, plus a terminal type.
    let env = hermetic_tests::command(t.path(), &t.cache_dir());
    let script = std::process::Command::new("script")
        .current_dir(t.path())
        .env_clear()
        .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TERM", "xterm")
        .args(["-qfec", &command, "/dev/null"])
        .output()
        .expect("run script(1)");
    let screen = String::from_utf8_lossy(&script.stdout);
    assert!(script.status.success(), "{screen}");
    // Progress drawn while the step ran, then the final status line.
    let shown = screen
        .split(['\r', '\n', '\u{1b}'])
        .any(|s| s.contains("work ") && s.contains("/2000"));
    assert!(shown, "no progress on the display:\n{screen:?}");
    assert!(screen.contains("Finished work in "), "{screen:?}");
}

/// Built for `wasm32-wasip2`, where the SDK has no host calls, the same task writes its
/// progress and logs to stderr and still succeeds.
#[test]
fn a_wasip2_sdk_task_reports_on_stderr() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: p\nsteps:\n  work:\n    task: progress.wasm\n    args: [\"3\"]\n    outputs: [count.txt]\n",
        )
        .guest("progress.wasm", guests::PROGRESS_P2)
        .args(["run", "--json", "--no-cache"])
        .expect_status(0)
        .run();
    assert!(events_of(&out, "step_progress").is_empty());
    assert_eq!(
        out.read(".hermetic/logs/work/stderr"),
        "info: working through 3 items\nprogress: 1/3\nprogress: 2/3\nprogress: 3/3\nwarn: done with 3 items\n"
    );
    assert_eq!(out.read(".hermetic/out/work/count.txt"), "3\n");
}

/// A step that runs after a dependency failed (`when: always`) finds nothing at
/// `/deps/<name>`, as its key says: not what an earlier run published for that dependency. The
/// failed step's stale outputs are removed.
#[test]
fn a_failed_dependency_leaves_no_stale_outputs_behind() {
    let workflow = |output: &str| {
        format!(
            "name: stale\nsteps:\n  make:\n    task: copy.wasm\n    inputs: [\"src/*.txt\"]\n    \
             outputs: [{output}]\n  look:\n    task: ls.wasm\n    args: [/deps]\n    \
             depends_on: [make]\n    when: always\n"
        )
    };
    let first = Test::new()
        .file("hermetic.yaml", workflow("src/a.txt"))
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("ls.wasm", guests::LS_P1)
        .file("src/a.txt", "alpha\n")
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert!(first.read(".hermetic/logs/look/stdout").contains("a.txt"));
    // Now `make` fails: it does not produce the output it declares.
    let second = first
        .again()
        .file("hermetic.yaml", workflow("src/missing.txt"))
        .args(["run", "--no-cache"])
        .expect_status(1)
        .run();
    assert_eq!(
        second.read(".hermetic/logs/look/stdout"),
        "/deps\n  make/\n",
        "the failed dependency's old outputs are not visible"
    );
    assert!(!second.path().join(".hermetic/out/make").exists());
}
