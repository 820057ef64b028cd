//! `hermetic chaos`: seeded faults (guest limits and clock, errors, short writes, delays and
//! traps at the WASI boundary, worker panics, damaged cache entries, a full disk), the
//! invariants checked on every run, the report, replays, and a planted bug that the suite must
//! catch.

use hermetic_tests::{Test, guests};
use serde_json::Value;

/// A small pipeline: a copy, a step reading its output, and an independent greeting.
fn project() -> Test {
    hermetic_tests::copy_list_greet("chaos")
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
            "     Chaos 40 seeds of `chaos`, faults memory,fuel,clock,clock_jump,worker,worker_lost,cache_bitflip,cache_truncate,disk_full,io,short_write,slow_io,trap,process_kill, rate 0.5\n",
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
            "clock_jump",
            "disk_full",
            "fuel",
            "io",
            "memory",
            "process_kill",
            "short_write",
            "slow_io",
            "trap",
            "worker",
            "worker_lost"
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
        // A worker fault (a panic, or a thread lost mid-step) is recovered: the step runs
        // again.
        let worker_faults = seed["faults"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "worker" || f["kind"] == "worker_lost")
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
    // A seed that kills the process ran in two processes, the second resuming the first.
    assert!(
        seeds.iter().any(|s| s["resumed"] == true),
        "some process was killed and resumed"
    );
    // Every seed's replay command is in the report.
    assert_eq!(
        seeds[3]["replay"],
        "hermetic chaos hermetic.yaml --faults memory,fuel,clock,clock_jump,worker,worker_lost,\
         cache_bitflip,cache_truncate,disk_full,io,short_write,slow_io,trap,process_kill --rate \
         0.5 --seeds 4"
    );
}

/// The whole process is killed once a step has finished: `--resume` in a second process
/// finishes the run with the reference's bytes, keeping what the first one finished.
#[test]
fn a_killed_process_is_resumed() {
    let out = project()
        .args(["chaos", "--seeds", "1..6", "--faults", "process_kill", "--rate", "1"])
        .expect_status(0)
        .expect_stderr_contains(
            "      Plan seed 1: 3 faults (rate 1, kinds process_kill)\n           · copy process_kill: hermetic is killed (SIGKILL) once the step has finished, then resumed\n",
        )
        .expect_stderr_contains("0 invariant violations")
        .run();
    let report = report(&out);
    for seed in report["seeds"].as_array().unwrap() {
        assert_eq!(seed["resumed"], true, "{seed}");
        assert_eq!(seed["outcome"], "succeeded", "{seed}");
    }
    // Both processes' journals: the killed run has no summary, the resumed one finished.
    let runs: Vec<_> = std::fs::read_dir(out.path().join(".hermetic/runs"))
        .unwrap()
        .map(|run| run.unwrap().path())
        .collect();
    assert!(runs.len() >= 12, "two runs per seed: {}", runs.len());
    // The step whose end killed the first process was journaled before it died, so the
    // second kept it rather than running it again: at least one kept step per seed.
    let kept = runs
        .iter()
        .filter_map(|run| std::fs::read_to_string(run.join("events.jsonl")).ok())
        .map(|events| {
            events
                .lines()
                .filter(|line| line.contains("\"event\":\"step_finished\""))
                .filter(|line| line.contains("\"resumed\":true"))
                .count()
        })
        .sum::<usize>();
    assert!(kept >= 6, "{kept} steps kept by the resumed runs");
}

/// A worker thread that ends mid-step, without reporting, is noticed by the pool, which runs
/// the step again on a new thread.
#[test]
fn a_lost_worker_thread_is_replaced_and_its_step_runs_again() {
    let out = project()
        .args([
            "chaos",
            "--seeds",
            "1..4",
            "--faults",
            "worker_lost",
            "--rate",
            "1",
        ])
        .expect_status(0)
        .expect_stderr_contains("0 invariant violations")
        .run();
    for seed in report(&out)["seeds"].as_array().unwrap() {
        assert_eq!(seed["outcome"], "succeeded", "{seed}");
        assert_eq!(seed["retries"], 3, "every step was lost once: {seed}");
    }
}

/// A clock jump is seen by the guest: `stamp` writes the wall clock, so a jump at its first
/// read changes its output, which the suite catches; a jump at a later read does not.
#[test]
fn a_clock_jump_is_seen_by_the_guest() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: planted\nsteps:\n  stamp:\n    task: stamp.wasm\n    outputs: [stamp.txt]\n",
        )
        .guest("stamp.wasm", guests::STAMP_P1)
        .args([
            "chaos",
            "--seeds",
            "1..30",
            "--faults",
            "clock_jump",
            "--rate",
            "1",
        ])
        .expect_status(1)
        .run();
    let report = report(&out);
    let seeds = report["seeds"].as_array().unwrap();
    let (caught, missed): (Vec<&Value>, Vec<&Value>) = seeds
        .iter()
        .partition(|s| !s["violations"].as_array().unwrap().is_empty());
    assert!(!caught.is_empty() && !missed.is_empty(), "{report}");
    for seed in caught {
        let detail = seed["faults"][0]["detail"].as_str().unwrap();
        assert!(detail.starts_with("at clock read number 1,"), "{detail}");
    }
    for seed in missed {
        let detail = seed["faults"][0]["detail"].as_str().unwrap();
        assert!(!detail.starts_with("at clock read number 1,"), "{detail}");
    }
}

/// A failing seed is shrunk to the faults that matter, and `--only` replays just those.
#[test]
fn a_failing_seed_is_shrunk_to_its_minimal_faults() {
    let planted = Test::new()
        .file(
            "hermetic.yaml",
            "name: planted\nsteps:\n  stamp:\n    task: stamp.wasm\n    outputs: [stamp.txt]\n  \
             greet:\n    task: hello.wasm\n",
        )
        .guest("stamp.wasm", guests::STAMP_P1)
        .guest("hello.wasm", guests::HELLO_P1);
    let out = planted
        .args([
            "chaos",
            "--seeds",
            "1..12",
            "--faults",
            "clock,worker",
            "--rate",
            "1",
        ])
        .expect_status(1)
        .run();
    let first = report(&out);
    let violating: Vec<&Value> = first["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["violations"].as_array().unwrap().is_empty())
        .collect();
    assert!(!violating.is_empty());
    for seed in &violating {
        // Two faults planned (one per step), one of them needed: the clock fault on stamp.
        assert_eq!(seed["faults"].as_array().unwrap().len(), 2, "{seed}");
        let shrunk = &seed["shrunk"];
        assert_eq!(shrunk["faults"].as_array().unwrap().len(), 1, "{seed}");
        assert_eq!(shrunk["faults"][0]["step"], "stamp");
        assert_eq!(shrunk["faults"][0]["kind"], "clock");
        assert_eq!(shrunk["minimal"], true);
        assert_eq!(
            shrunk["replay"],
            format!(
                "hermetic chaos hermetic.yaml --faults clock,worker --rate 1 --seeds {} --only \
                 stamp:clock",
                seed["seed"]
            )
        );
    }
    // The shrunk replay injects only the clock fault, and still fails the same way.
    let seed = violating[0]["seed"].to_string();
    let again = out
        .again()
        .args([
            "chaos",
            "--seeds",
            &seed,
            "--faults",
            "clock,worker",
            "--rate",
            "1",
            "--only",
            "stamp:clock",
        ])
        .expect_status(1)
        .run();
    let replayed = &report(&again)["seeds"][0];
    assert_eq!(replayed["faults"], violating[0]["shrunk"]["faults"]);
    assert_eq!(replayed["violations"], violating[0]["shrunk"]["violations"]);
}

/// The workflow's `chaos:` section is the suite `hermetic chaos` runs by default, with the
/// resilience it expects: here, that retries absorb every trap.
#[test]
fn the_workflow_declares_its_suite_and_the_resilience_it_expects() {
    let suite = |retries: &str, max_retries: u32| {
        Test::new()
            .file(
                "hermetic.yaml",
                format!(
                    "name: staged\nsteps:\n  copy:\n    task: copy.wasm\n    inputs: [\"src/*.txt\"]\n    \
                     outputs: [src/a.txt]\n{retries}chaos:\n  seeds: 1..4\n  faults: {{trap: 1}}\n  \
                     expect:\n    succeeds: true\n    max_retries: {max_retries}\n"
                ),
            )
            .guest("copy.wasm", guests::COPY_IN_OUT_P1)
            .file("src/a.txt", "alpha\n")
            .args(["chaos"])
    };
    // Without retries, a trap fails the step, which the suite does not accept.
    let out = suite("", 1)
        .expect_status(1)
        .expect_stderr_contains("     Chaos 4 seeds of `staged`, faults trap, rate 1\n")
        .expect_stderr_contains(
            "           | step `copy` failed, but the suite expects every run to succeed: ",
        )
        .expect_stderr_contains("           | replay: hermetic chaos hermetic.yaml --seeds 1\n")
        .run();
    assert_eq!(report(&out)["violations"], 4);
    // With a retry on traps, every run succeeds with one retry.
    let out = suite("    retries: 1\n    retry_on: [trap]\n", 1)
        .expect_status(0)
        .expect_stderr_contains("0 invariant violations")
        .run();
    for seed in report(&out)["seeds"].as_array().unwrap() {
        assert_eq!(seed["outcome"], "succeeded");
        assert_eq!(seed["retries"], 1);
    }
    // Expecting no retries at all is then too much.
    suite("    retries: 1\n    retry_on: [trap]\n", 0)
        .expect_status(1)
        .expect_stderr_contains(
            "           | the run took 1 retries, but the suite expects at most 0\n",
        )
        .run();
}

/// The WASI-boundary faults reach components (`wasm32-wasip2`) as they reach core modules: a
/// trap at one of its first file operations fails the component's step, on every seed; errors,
/// short writes and delays keep the invariants, and a replayed seed gives the same trace.
#[test]
fn wasi_faults_reach_components() {
    let project = || {
        Test::new()
            .file(
                "hermetic.yaml",
                "name: p2\nsteps:\n  copy:\n    task: copy.wasm\n    inputs: [\"src/*.txt\"]\n    \
                 outputs: [src/a.txt]\n",
            )
            .guest("copy.wasm", guests::COPY_IN_OUT_P2)
            .file("src/a.txt", "alpha\n")
    };
    let out = project()
        .args([
            "chaos", "--seeds", "1..4", "--faults", "trap", "--rate", "1",
        ])
        .expect_status(0)
        .expect_stderr_contains("0 invariant violations")
        .run();
    for seed in report(&out)["seeds"].as_array().unwrap() {
        assert_eq!(seed["outcome"], "failed", "{seed}");
        let failed = &seed["failed"][0];
        assert_eq!(failed["step"], "copy", "{seed}");
        assert!(
            failed["fault"].as_str().unwrap().starts_with("trap: "),
            "{seed}"
        );
        let message = failed["message"].as_str().unwrap();
        assert!(
            message.contains("trap injected at file operation"),
            "{message}"
        );
    }
    let out = project()
        .args([
            "chaos",
            "--seeds",
            "1..12",
            "--faults",
            "io,short_write,slow_io",
            "--rate",
            "1",
        ])
        .expect_status(0)
        .expect_stderr_contains("0 invariant violations")
        .run();
    let report = report(&out);
    let seeds = report["seeds"].as_array().unwrap();
    assert_eq!(report["replayed_trace"], seeds[0]["trace"]);
    assert!(
        seeds.iter().any(|s| s["outcome"] == "failed"),
        "some io fault fails the copy: {report}"
    );
}

#[test]
fn a_bad_chaos_section_is_a_located_error() {
    project()
        .file(
            "hermetic.yaml",
            "name: chaos\nsteps:\n  copy:\n    task: copy.wasm\n    inputs: [\"src/*.txt\"]\n\
             chaos:\n  seeds: 5..1\n  faults: {tarp: 0.5, io: 0.7}\n  steps: [cpy]\n  expect: {retries: 2}\n",
        )
        .args(["chaos"])
        .expect_status(2)
        .expect_stderr(
            "\
error: `seeds: 5..1` is empty: 5 is after 1
 --> hermetic.yaml:7:10
  |
7 |   seeds: 5..1
  |          ^^^^
  = help: write one seed, e.g. `seeds: 7`, or a range, e.g. `seeds: 1..200`

error: unknown fault `tarp`; the faults are memory, fuel, clock, clock_jump, worker, worker_lost, cache_bitflip, cache_truncate, disk_full, io, short_write, slow_io, trap, process_kill
 --> hermetic.yaml:8:12
  |
8 |   faults: {tarp: 0.5, io: 0.7}
  |            ^^^^
  = help: did you mean `trap`?

error: `chaos.steps` names no step `cpy`
 --> hermetic.yaml:9:11
  |
9 |   steps: [cpy]
  |           ^^^
  = help: did you mean `copy`?

error: unknown key `retries` in `chaos.expect`
  --> hermetic.yaml:10:12
   |
10 |   expect: {retries: 2}
   |            ^^^^^^^
   = help: the keys allowed here are `succeeds` and `max_retries`

error: aborting due to 4 previous errors
",
        )
        .run();
}

#[test]
fn a_replayed_seed_gives_the_same_trace() {
    let out = project()
        .args(["chaos", "--seeds", "3..5", "--rate", "0.5"])
        .expect_status(0)
        .run();
    let first = report(&out);
    // The report's own replay command, as a user would paste it.
    let replay = first["seeds"][1]["replay"].as_str().unwrap();
    let args: Vec<&str> = replay.split(' ').collect();
    assert_eq!(args[0], "hermetic");
    assert!(replay.ends_with(" --seeds 4"), "{replay}");
    let again = out.again().args(&args[1..]).expect_status(0).run();
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
            "      Plan seed 1: 1 fault (rate 1, kinds clock)\n           · stamp clock: wall clock skewed by ",
        )
        .expect_stderr_contains(
            " VIOLATION 1: succeeded (stamp clock)\n           | step `stamp` succeeded with outputs that differ from the fault-free run\n           | replay: hermetic chaos hermetic.yaml --faults clock --rate 1 --seeds 1\n           | shrunk to 1 fault (stamp clock): hermetic chaos hermetic.yaml --faults clock --rate 1 --seeds 1 --only stamp:clock\n",
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
            "error: unknown fault `disk`; the faults are memory, fuel, clock, clock_jump, worker, worker_lost, cache_bitflip, cache_truncate, disk_full, io, short_write, slow_io, trap, process_kill\n",
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

/// Shrinking a seed that kills the process: the child processes inject exactly the faults of
/// each trial, not the seed's whole plan (nor all that `--only` kept), so the clock fault that
/// makes `stamp` lie is the one left.
#[test]
fn a_seed_that_kills_the_process_shrinks_to_the_fault_that_matters() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "name: planted\nsteps:\n  stamp:\n    task: stamp.wasm\n    outputs: [stamp.txt]\n  \
             greet:\n    task: hello.wasm\n",
        )
        .guest("stamp.wasm", guests::STAMP_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .args([
            "chaos",
            "--seeds",
            "1..20",
            "--faults",
            "clock,process_kill",
            "--rate",
            "1",
            "--only",
            "stamp:clock,greet:process_kill",
        ])
        .expect_status(1)
        .run();
    let report = report(&out);
    let both: Vec<&Value> = report["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["faults"].as_array().unwrap().len() == 2)
        .collect();
    assert!(!both.is_empty(), "some seed planned both faults: {report}");
    for seed in both {
        assert_eq!(seed["resumed"], true, "{seed}");
        // The replay names the suite's `--only`, which decided its faults.
        assert_eq!(
            seed["replay"],
            format!(
                "hermetic chaos hermetic.yaml --faults clock,process_kill --rate 1 --seeds {} \
                 --only stamp:clock,greet:process_kill",
                seed["seed"]
            )
        );
        let shrunk = &seed["shrunk"]["faults"];
        assert_eq!(shrunk.as_array().unwrap().len(), 1, "{seed}");
        assert_eq!(shrunk[0]["step"], "stamp", "{seed}");
        assert_eq!(shrunk[0]["kind"], "clock", "{seed}");
    }
}
