//! `hermetic chaos`: seeded faults (guest limits and clock, errors, short writes, delays and
//! traps at the WASI boundary, worker panics, damaged cache entries, a full disk), the
//! invariants checked on every run, the report, replays, and a planted bug that the suite must
//! catch.

use hermetic_tests::{Test, guests};
use serde_json::Value;

/// A small pipeline: a copy, a step reading its output, and an independent greeting.
fn project() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: chaos
steps:
  copy:
    task: copy.wasm
    inputs: [\"src/*.txt\"]
    outputs: [src/a.txt]
  list:
    task: ls.wasm
    args: [/deps]
    depends_on: [copy]
  greet:
    task: hello.wasm
",
        )
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("ls.wasm", guests::LS_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .file("src/a.txt", "alpha\n")
}

fn report(out: &hermetic_tests::Output) -> Value {
    serde_json::from_str(&out.read(".hermetic/chaos/report.json")).expect("a JSON report")
}

#[test]
fn every_fault_kind_is_injected_and_the_invariants_hold() {
    let out = project()
        .args(["chaos", "--seeds", "1..40", "--rate", "0.5", "--jobs", "2"])
        .expect_status(0)
        .expect_stderr_contains(
            "     Chaos 40 seeds of `chaos`, faults memory,fuel,clock,worker,cache_bitflip,cache_truncate,disk_full,io,short_write,slow_io,trap, rate 0.5\n",
        )
        .expect_stderr_contains("0 invariant violations")
        .run();
    let report = report(&out);
    let seeds = report["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 40);
    assert_eq!(report["violations"], 0);
    // The first seed ran twice and gave the same trace.
    assert_eq!(report["replayed_trace"], seeds[0]["trace"]);
    // Every kind was injected somewhere.
    let kinds: std::collections::BTreeSet<&str> = seeds
        .iter()
        .flat_map(|s| s["faults"].as_array().unwrap())
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "cache_bitflip",
            "cache_truncate",
            "clock",
            "disk_full",
            "fuel",
            "io",
            "memory",
            "short_write",
            "slow_io",
            "trap",
            "worker"
        ]
    );
    // Damaged archives were met by a later run, which re-ran those steps instead of serving
    // them (or it would be a violation).
    let damaged: usize = seeds
        .iter()
        .map(|s| s["damaged"].as_array().unwrap().len())
        .sum();
    assert!(damaged > 0, "some stored archives were damaged");
    for seed in seeds {
        // A worker fault is recovered: the step runs again.
        let worker_faults = seed["faults"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "worker")
            .count() as u64;
        assert!(seed["retries"].as_u64().unwrap() >= worker_faults, "{seed}");
        // Every failure is attributed to a fault on that step.
        for failed in seed["failed"].as_array().unwrap() {
            assert!(failed["fault"].is_string(), "{seed}");
        }
    }
    assert!(
        seeds.iter().any(|s| s["outcome"] == "failed"),
        "some faults (fuel starvation, memory pressure) fail steps"
    );
}

#[test]
fn a_replayed_seed_gives_the_same_trace() {
    let out = project()
        .args(["chaos", "--seeds", "3..5", "--rate", "0.5"])
        .expect_status(0)
        .run();
    let first = report(&out);
    let again = out
        .again()
        .args(["chaos", "--seeds", "4", "--rate", "0.5"])
        .expect_status(0)
        .run();
    assert_eq!(
        report(&again)["seeds"][0]["trace"],
        first["seeds"][1]["trace"]
    );
    assert_eq!(
        report(&again)["seeds"][0]["faults"],
        first["seeds"][1]["faults"]
    );
}

/// A planted bug: a task whose output depends on the clock. Clock faults make it succeed with
/// other bytes, which the suite reports as a violation, naming the seed and how to replay it.
#[test]
fn a_step_that_lies_under_a_fault_is_caught() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: planted\nsteps:\n  stamp:\n    task: stamp.wasm\n    outputs: [stamp.txt]\n",
        )
        .guest("stamp.wasm", guests::STAMP_P1)
        .args(["chaos", "--seeds", "1..10", "--faults", "clock", "--rate", "1"])
        .expect_status(1)
        .expect_stderr_contains(
            " VIOLATION 1: succeeded (stamp clock)\n           | step `stamp` succeeded with outputs that differ from the fault-free run\n           | replay: hermetic chaos hermetic.yaml --seeds 1 --faults clock --rate 1\n",
        )
        .expect_stderr_contains("10 invariant violations")
        .run();
    let report = report(&out);
    assert_eq!(report["violations"], 10);
    assert_eq!(
        report["seeds"][0]["violations"][0],
        "step `stamp` succeeded with outputs that differ from the fault-free run"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    project()
        .args(["chaos", "--faults", "disk"])
        .expect_status(2)
        .expect_stderr(
            "error: unknown fault `disk`; the faults are memory, fuel, clock, worker, cache_bitflip, cache_truncate, disk_full, io, short_write, slow_io, trap\n",
        )
        .run();
    project()
        .args(["chaos", "--seeds", "9..2"])
        .expect_status(2)
        .expect_stderr("error: --seeds `9..2` is empty: 9 is after 2\n")
        .run();
}

#[test]
fn a_workflow_that_fails_without_faults_is_refused() {
    Test::new()
        .file(
            "hermetic.yaml",
            "name: broken\nsteps:\n  fail:\n    task: exit_code.wasm\n    args: [\"3\"]\n",
        )
        .guest("exit_code.wasm", guests::EXIT_CODE_P1)
        .args(["chaos", "--seeds", "1..3"])
        .expect_status(1)
        .expect_stderr_contains(
            "error: the workflow does not succeed without faults (`fail`: exited with code 3); fix it before a chaos suite judges it\n",
        )
        .run();
}
