//! The run journal through `hermetic run`: `.hermetic/runs/<id>/`, `hermetic runs`, `--resume`
//! after SIGKILL, and `--trace`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hermetic_tests::{Output, Test, guests};
use serde_json::Value;

/// `copy` copies `src/` to its outputs, `list` lists what `copy` gave it, `spin` takes a few
/// seconds after them, and `last` runs after `spin`.
fn chain_project() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: chain
steps:
  copy:
    task: copy.wasm
    inputs: [\"src/*\"]
    outputs: [src]
  list:
    task: ls.wasm
    args: [/deps]
    depends_on: [copy]
  spin:
    task: spin.wasm
    args: [\"1500000000\"]
    fuel: 1000G
    depends_on: [list]
  last:
    task: hello.wasm
    depends_on: [spin]
",
        )
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("ls.wasm", guests::LS_P1)
        .guest("spin.wasm", guests::SPIN_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .file("src/a.txt", "alpha\n")
}

/// The run directories under `.hermetic/runs`, oldest first.
fn run_dirs(project: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(project.join(".hermetic/runs"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn events(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn each_run_leaves_its_events_logs_and_summary() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: one\nsteps:\n  greet:\n    task: hello.wasm\n    args: [x]\n",
        )
        .guest("hello.wasm", guests::HELLO_P1)
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    let dirs = run_dirs(out.path());
    assert_eq!(dirs.len(), 1);
    let run = &dirs[0];
    let recorded = events(run);
    let kinds: Vec<&str> = recorded
        .iter()
        .map(|e| e["event"].as_str().expect("an event has a kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "step_dispatched",
            "step_started",
            "step_finished",
            "run_finished"
        ]
    );
    assert!(recorded.iter().all(|e| e["t_us"].is_u64()));
    assert_eq!(
        std::fs::read_to_string(run.join("logs/greet/stdout")).unwrap(),
        "hello from wasm\narg[0]=greet\narg[1]=x\n"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["counts"]["succeeded"], 1);
    assert_eq!(summary["metrics"]["steps"][0]["step"], "greet");
    assert_eq!(summary["metrics"]["success_rate"], 1.0);
    for key in ["p50", "p90", "p99"] {
        assert!(summary["metrics"]["latency_us"][key].is_u64(), "{key}");
    }

    // A second run keeps the first's logs as they were, and `runs` lists both, newest first.
    let again = out
        .again()
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(
        std::fs::read_to_string(run.join("logs/greet/stdout")).unwrap(),
        "hello from wasm\narg[0]=greet\narg[1]=x\n"
    );
    let listed = again
        .again()
        .args(["runs", "--json"])
        .expect_status(0)
        .run()
        .json_lines();
    let ids: Vec<&str> = listed.iter().filter_map(|r| r["run_id"].as_str()).collect();
    let names: Vec<String> = run_dirs(out.path())
        .iter()
        .rev()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids, names);
    assert_eq!(listed[0]["status"], "succeeded");
}

#[test]
fn resume_after_sigkill_reruns_only_the_unfinished_steps() {
    let t = chain_project();
    let project = t.path().to_path_buf();
    let mut child = hermetic_tests::command(&project, &t.cache_dir())
        .args(["run", "--jobs", "1", "--no-cache"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until `spin` is running, its dependencies recorded as finished, then SIGKILL.
    let started = Instant::now();
    loop {
        let recorded = run_dirs(&project)
            .last()
            .map(|run| events(run))
            .unwrap_or_default();
        if recorded
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "spin")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "spin never started: {recorded:?}"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix_kill(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal ({pid})");
    let killed = run_dirs(&project).pop().unwrap();
    assert!(!killed.join("summary.json").exists());

    // `runs` shows the killed run as unfinished.
    let listed = t.args(["runs"]).expect_status(0).run();
    let table = &listed.stdout;
    assert!(
        table.contains("unfinished")
            && table.contains("2 finished (`hermetic run --resume` continues it)"),
        "{table}"
    );

    let resumed = listed
        .again()
        .args(["run", "--jobs", "1", "--no-cache", "--resume"])
        .expect_status(0)
        .expect_stderr(
            "      Kept copy (it succeeded in the resumed run)
      Kept list (it succeeded in the resumed run)
   Running spin
  Finished spin in [ELAPSED]
   Running last
  Finished last in [ELAPSED]
      Done 4 succeeded, 0 failed, 0 skipped in [ELAPSED]
",
        )
        .run();
    assert_eq!(resumed.read(".hermetic/out/copy/src/a.txt"), "alpha\n");
    assert_eq!(
        resumed.read(".hermetic/logs/spin/stdout"),
        "spun 1500000000: cc95933dd64b0481\n"
    );
    let newest = run_dirs(&project).pop().unwrap();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(newest.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["resumed_from"],
        killed.file_name().unwrap().to_string_lossy().as_ref()
    );

    // A kept step whose outputs changed since runs again.
    std::fs::write(project.join(".hermetic/out/copy/src/a.txt"), "tampered\n").unwrap();
    resumed
        .again()
        .args(["run", "--jobs", "1", "--no-cache", "--resume"])
        .expect_status(0)
        .expect_stderr_contains("   Running copy\n")
        .expect_stderr_contains("      Kept spin (it succeeded in the resumed run)\n")
        .run();
    assert_eq!(
        std::fs::read_to_string(project.join(".hermetic/out/copy/src/a.txt")).unwrap(),
        "alpha\n"
    );
}

/// SIGKILL: no handler runs, nothing is cleaned up.
fn rustix_kill(pid: u32) -> u32 {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    pid
}

#[test]
fn trace_writes_one_track_per_worker_and_a_slice_per_step() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: t\nsteps:\n  a: { task: hello.wasm }\n  b: { task: hello.wasm }\n  c: { task: hello.wasm, depends_on: [a] }\n",
        )
        .guest("hello.wasm", guests::HELLO_P1)
        .args(["run", "--no-cache", "--jobs", "2", "--trace", "trace.json"])
        .expect_status(0)
        .run();
    let trace: Value = serde_json::from_str(&out.read("trace.json")).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let tracks: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| &e["args"]["name"])
        .collect();
    assert_eq!(tracks, ["worker 0", "worker 1"]);
    let mut slices: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    slices.sort_unstable();
    assert_eq!(slices, ["a", "b", "c"]);
    let c = events.iter().find(|e| e["name"] == "c").unwrap();
    let a = events.iter().find(|e| e["name"] == "a").unwrap();
    assert!(
        c["ts"].as_u64() >= Some(a["ts"].as_u64().unwrap() + a["dur"].as_u64().unwrap()),
        "c starts after a ends: {a} {c}"
    );
}

/// The first run of the tests below: step `s` of `workflow` copies `src/a.txt` into `/out` and
/// declares it, so the run publishes it.
fn a_run_that_publishes_s(workflow: impl Fn(&str) -> String) -> Output {
    let first = Test::new()
        .file(
            "hermetic.yaml",
            workflow("{ task: copy.wasm, inputs: [\"src/*\"], outputs: [src] }"),
        )
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("stamp.wasm", guests::STAMP_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .file("src/a.txt", "alpha\n")
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(first.read(".hermetic/out/s/src/a.txt"), "alpha\n");
    first
}

/// Runs `first`'s project again with `workflow`, whose `s` declares no outputs, and checks that
/// what the first run published for `s` is gone.
fn rerun_removes_what_s_published(first: &Output, workflow: &str) -> Output {
    let again = first
        .again()
        .file("hermetic.yaml", workflow)
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert!(
        !again.exists(".hermetic/out/s"),
        "{}",
        again.tree(".hermetic/out")
    );
    again
}

/// A step whose program reaches no files, and so runs without directories, still removes what
/// an earlier run published under its name.
#[test]
fn outputs_published_before_go_when_the_step_reaches_no_files() {
    let workflow = |s: &str| format!("name: leftovers\nsteps:\n  s: {s}\n");
    let first = a_run_that_publishes_s(workflow);
    rerun_removes_what_s_published(&first, &workflow("{ task: hello.wasm }"));
}

/// What an earlier run left of a step goes once the step no longer leaves it: its logs when it
/// prints nothing, its published outputs when it declares none. The run journal links only
/// the logs of this run.
#[test]
fn what_an_earlier_run_left_of_a_step_goes_when_the_step_no_longer_leaves_it() {
    let workflow =
        |s: &str| format!("name: leftovers\nsteps:\n  s: {s}\n  greet:\n    task: hello.wasm\n");
    let first = a_run_that_publishes_s(workflow);
    let [run] = run_dirs(first.path()).try_into().unwrap();
    assert_eq!(
        hermetic_tests::tree(&run.join("logs")),
        format!(
            "greet/\n  stdout ({} bytes)\ns/\n  stdout ({} bytes)\n",
            first.read(".hermetic/logs/greet/stdout").len(),
            first.read(".hermetic/logs/s/stdout").len(),
        )
    );

    // `stamp` prints nothing, and its output is not declared.
    let second = rerun_removes_what_s_published(&first, &workflow("{ task: stamp.wasm }"));
    assert_eq!(
        second.tree(".hermetic/logs"),
        format!(
            "greet/\n  stdout ({} bytes)\ns/\n",
            second.read(".hermetic/logs/greet/stdout").len()
        )
    );
    let [_, run] = run_dirs(second.path()).try_into().unwrap();
    assert_eq!(
        hermetic_tests::tree(&run.join("logs")),
        format!(
            "greet/\n  stdout ({} bytes)\n",
            second.read(".hermetic/logs/greet/stdout").len()
        )
    );
}
