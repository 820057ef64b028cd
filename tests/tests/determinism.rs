//! Determinism: the same workflow run with different `--jobs`, from a different working
//! directory, in a different project directory, and with a different `TZ`, `LANG` and `LC_ALL`
//! produces byte-identical outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hermetic_tests::{Output, Test, guests, mask_random, snapshot};

const WORKFLOW: &str = "\
name: determinism
steps:
  greet:
    task: guests/hello.wasm
    args: [a, b]
    env: { GREETING: hi, ZED: last }
  copy:
    task: guests/copy_in_out.wasm
    inputs: [\"src/**/*.txt\"]
    outputs: [src]
  clock:
    task: guests/clock_random.wasm
  clock2:
    task: guests/clock_random_p2.wasm
  list:
    task: guests/ls.wasm
    args: [/deps]
    depends_on: [copy]
  env:
    task: guests/host_env.wasm
    env: { ONLY: this }
";

fn project() -> Test {
    Test::new()
        .file("hermetic.yaml", WORKFLOW)
        .guest("guests/hello.wasm", guests::HELLO_P1)
        .guest("guests/copy_in_out.wasm", guests::COPY_IN_OUT_P1)
        .guest("guests/clock_random.wasm", guests::CLOCK_RANDOM_P1)
        .guest("guests/clock_random_p2.wasm", guests::CLOCK_RANDOM_P2)
        .guest("guests/ls.wasm", guests::LS_P1)
        .guest("guests/host_env.wasm", guests::HOST_ENV_P1)
        .file("src/a.txt", "alpha\n")
        .file("src/nested/b.txt", "beta\n")
        .file("src/nested/ignored.md", "not an input\n")
        .file("src/z/last.txt", "zeta\n")
}

/// Everything the run published (`.hermetic/out`) and every step's captured output
/// (`.hermetic/logs`).
fn outputs(out: &Output) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for dir in [".hermetic/out", ".hermetic/logs"] {
        for (path, bytes) in snapshot(&out.join(dir)) {
            all.insert(Path::new(dir).join(path), bytes);
        }
    }
    all
}

#[test]
fn same_outputs_across_jobs_cwd_tz_and_locale() {
    let first = project()
        .args(["run", "--jobs", "1"])
        .env("TZ", "UTC")
        .env("LANG", "C")
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(
            "   Running copy\n  Finished copy in [ELAPSED]\n   Running greet\n  Finished greet in [ELAPSED]\n   Running clock\n  Finished clock in [ELAPSED]\n   Running clock2\n  Finished clock2 in [ELAPSED]\n   Running list\n  Finished list in [ELAPSED]\n   Running env\n  Finished env in [ELAPSED]\n      Done 6 succeeded, 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    let second = project()
        .current_dir("deeply/nested")
        .args(["run", "../../hermetic.yaml", "--jobs", "4"])
        .env("TZ", "Pacific/Chatham")
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .expect_status(0)
        .run();
    let a = outputs(&first);
    let b = outputs(&second);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "different output files"
    );
    for (path, bytes) in &a {
        assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&b[path]),
            "{} differs",
            path.display()
        );
    }
    assert_eq!(
        first.tree(".hermetic/out"),
        "copy/\n  src/\n    a.txt (6 bytes)\n    nested/\n      b.txt (5 bytes)\n    z/\n      last.txt (5 bytes)\n"
    );
    // Only stdout logs: no step wrote to stderr.
    assert_eq!(
        snapshot(&first.join(".hermetic/logs"))
            .into_keys()
            .filter(|p| p.components().count() == 2)
            .collect::<Vec<_>>(),
        ["clock", "clock2", "copy", "env", "greet", "list"]
            .map(|step| Path::new(step).join("stdout"))
    );
    assert_eq!(
        first.read(".hermetic/logs/copy/stdout"),
        "copied src/a.txt (6 bytes)\ncopied src/nested/b.txt (5 bytes)\ncopied src/z/last.txt (5 bytes)\n3 files\n"
    );
    assert_eq!(
        first.read(".hermetic/logs/greet/stdout"),
        "hello from wasm\narg[0]=greet\narg[1]=a\narg[2]=b\nenv GREETING=hi\nenv ZED=last\n"
    );
    assert_eq!(
        first.read(".hermetic/logs/list/stdout"),
        "/deps\n  copy/\n    src/\n      a.txt (6 bytes)\n      nested/\n        b.txt (5 bytes)\n      z/\n        last.txt (5 bytes)\n"
    );
    assert_eq!(
        first.read(".hermetic/logs/env/stdout"),
        "1 env vars\nenv ONLY=this\narg[0]=env\ncurrent_dir: /\n"
    );
    // Seeded from the step's identity: not the same stream as another step.
    assert_ne!(
        first.read(".hermetic/logs/clock/stdout"),
        first.read(".hermetic/logs/clock2/stdout")
    );
    assert_eq!(
        mask_random(&first.read(".hermetic/logs/clock/stdout")),
        "\
wall clock: 946684800.000001000
monotonic diff 1: 10002000ns
monotonic diff 2: 10002000ns
monotonic: true
random: <random>
hashmap seed hash: <random>
"
    );
    assert_eq!(
        mask_random(&first.read(".hermetic/logs/clock2/stdout")),
        "\
wall clock: 946684800.000001000
monotonic diff 1: 10001000ns
monotonic diff 2: 10001000ns
monotonic: true
random: <random>
hashmap seed hash: <random>
"
    );
}

/// The same project run twice in place: the second run publishes identical outputs.
#[test]
fn rerun_in_place_is_identical() {
    let first = project()
        .args(["run", "--jobs", "2"])
        .expect_status(0)
        .run();
    let before = outputs(&first);
    let second = first
        .again()
        .args(["run", "--jobs", "3"])
        .expect_status(0)
        .run();
    assert_eq!(before, outputs(&second));
}

/// `--json` events agree across runs but for durations, workers and the order of events of
/// steps that ran in parallel: the same steps, outcomes, exit codes, outputs and fuel.
#[test]
fn json_events_agree_across_runs() {
    let events = |jobs: &str, tz: &str| {
        let out = project()
            .args(["run", "--json", "--jobs", jobs])
            .env("TZ", tz)
            .expect_status(0)
            .expect_stderr("")
            .run();
        let mut events: Vec<String> = out
            .json_lines()
            .into_iter()
            .map(|mut event| {
                let map = event.as_object_mut().expect("an event is an object");
                assert!(map.remove("duration_ms").is_some() || map["event"] != "step_finished");
                if map["event"] == "run_started" {
                    map.remove("jobs");
                }
                if map["event"] == "step_dispatched" {
                    // Which worker took a step, and when, is timing; `--seed` fixes it.
                    map.remove("worker");
                    map.remove("queue_wait_us")
                        .expect("a dispatch reports its wait");
                }
                event.to_string()
            })
            .collect();
        events.sort();
        events
    };
    let one = events("1", "UTC");
    assert_eq!(one.len(), 20, "{one:#?}");
    assert_eq!(one, events("4", "Europe/Paris"));
}
