//! Determinism: the same workflow run with different `--jobs`, from a different working
//! directory, in a different project directory, and with a different `TZ`, `LANG` and `LC_ALL`
//! produces byte-identical outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hermetic_tests::{Output, Test, guests, snapshot};

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

/// Everything the run left under `.hermetic/out`.
fn outputs(out: &Output) -> BTreeMap<PathBuf, Vec<u8>> {
    snapshot(&out.join(".hermetic/out"))
}

#[test]
fn same_outputs_across_jobs_cwd_tz_and_locale() {
    let first = project()
        .args(["run", "--jobs", "1"])
        .env("TZ", "UTC")
        .env("LANG", "C")
        .expect_status(0)
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
    assert!(!a.is_empty());
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
    assert_eq!(first.tree(".hermetic/out"), "TODO");
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

/// `clock_random`'s stdout (virtual clocks, seeded randomness) is the same on every run, and in
/// a workflow it depends on the step's identity, not on the run.
#[test]
fn clock_random_stdout_is_identical() {
    let runs: Vec<String> = (0..3)
        .map(|i| exec_clock(i).expect_status(0).run().stdout)
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
}

fn exec_clock(jobs: usize) -> Test {
    Test::new()
        .guest("clock_random.wasm", guests::CLOCK_RANDOM_P1)
        .env("TZ", if jobs == 0 { "UTC" } else { "Asia/Kolkata" })
        .args(["exec", "clock_random.wasm"])
}
