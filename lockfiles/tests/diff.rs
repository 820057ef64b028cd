//! `diff`, `Drift`'s one-line descriptions, and `render_diff`.

use std::collections::BTreeMap;

use hermetic_lockfile::{
    Change, Drift, Lockfile, ModulePin, StepField, StepPin, TaskField, TaskPin, diff, render_diff,
};

/// A 64-hex-digit digest repeating `seed`.
fn digest(seed: &str) -> String {
    format!(
        "blake3:{}",
        seed.chars().cycle().take(64).collect::<String>()
    )
}

fn pinned() -> Lockfile {
    Lockfile {
        tasks: vec![TaskPin {
            name: "hello".into(),
            source: digest("a1"),
            module: digest("b2"),
            toolchain: "rustc 1.94.0 (4a4ef493e 2026-03-02)".into(),
            target: "wasm32-wasip1".into(),
        }],
        modules: vec![ModulePin {
            path: "tools/fmt.wasm".into(),
            digest: digest("c3"),
        }],
        steps: vec![StepPin {
            name: "build".into(),
            task: "hello".into(),
            module: digest("b2"),
            args: vec!["-O1".into()],
            depends_on: vec!["fetch".into()],
            key: digest("d4"),
            env: BTreeMap::from([("RUST_LOG".into(), "debug".into())]),
            inputs: BTreeMap::from([("src/a.txt".into(), digest("1a2b3c4d5e6f"))]),
        }],
        ..Lockfile::new()
    }
}

/// The single drift from `pinned()` to `pinned()` changed by `change`.
fn one_drift(change: impl FnOnce(&mut Lockfile)) -> Drift {
    let mut current = pinned();
    change(&mut current);
    let drifts = diff(&pinned(), &current);
    assert_eq!(drifts.len(), 1, "{drifts:#?}");
    drifts.into_iter().next().unwrap()
}

fn step(lockfile: &mut Lockfile) -> &mut StepPin {
    &mut lockfile.steps[0]
}

#[test]
fn equal_lockfiles_do_not_drift() {
    assert_eq!(diff(&pinned(), &pinned()), []);
    let mut reordered = pinned();
    reordered.steps[0].depends_on = vec!["fetch".into(), "fetch".into()];
    assert_eq!(diff(&pinned(), &reordered), []);
    assert_eq!(render_diff(&[]), "");
}

#[test]
fn format_version() {
    let drift = one_drift(|l| l.version = 2);
    assert_eq!(
        drift,
        Drift::FormatVersion {
            pinned: 1,
            current: 2
        }
    );
    assert_eq!(drift.to_string(), "format version changed (1 → 2)");
}

#[test]
fn task_added_and_removed() {
    let drift = one_drift(|l| {
        let mut task = l.tasks[0].clone();
        task.name = "world".into();
        l.tasks.push(task);
    });
    assert_eq!(
        drift,
        Drift::TaskAdded {
            task: "world".into()
        }
    );
    assert_eq!(drift.to_string(), "task `world` added");

    let drift = one_drift(|l| l.tasks.clear());
    assert_eq!(
        drift,
        Drift::TaskRemoved {
            task: "hello".into()
        }
    );
    assert_eq!(drift.to_string(), "task `hello` removed");
}

#[test]
fn task_fields() {
    let drift = one_drift(|l| l.tasks[0].source = digest("0f9e8d7c6b5a"));
    assert_eq!(
        drift,
        Drift::TaskChanged {
            task: "hello".into(),
            field: TaskField::Source,
            pinned: digest("a1"),
            current: digest("0f9e8d7c6b5a"),
        }
    );
    assert_eq!(
        drift.to_string(),
        "task `hello`: source changed (blake3:a1a1a1a1a1a1 → blake3:0f9e8d7c6b5a)"
    );

    let drift = one_drift(|l| l.tasks[0].module = digest("99"));
    assert_eq!(
        drift.to_string(),
        "task `hello`: module changed (blake3:b2b2b2b2b2b2 → blake3:999999999999)"
    );

    let drift = one_drift(|l| l.tasks[0].toolchain = "rustc 1.95.0 (59807616e 2026-04-14)".into());
    assert_eq!(
        drift.to_string(),
        "task `hello`: toolchain changed (\"rustc 1.94.0 (4a4ef493e 2026-03-02)\" → \
         \"rustc 1.95.0 (59807616e 2026-04-14)\")"
    );

    let drift = one_drift(|l| l.tasks[0].target = "wasm32-wasip2".into());
    assert!(matches!(
        drift,
        Drift::TaskChanged {
            field: TaskField::Target,
            ..
        }
    ));
    assert_eq!(
        drift.to_string(),
        "task `hello`: target changed (\"wasm32-wasip1\" → \"wasm32-wasip2\")"
    );
}

#[test]
fn modules() {
    let drift = one_drift(|l| l.modules[0].digest = digest("44"));
    assert_eq!(
        drift,
        Drift::Module {
            path: "tools/fmt.wasm".into(),
            change: Change::Changed {
                pinned: digest("c3"),
                current: digest("44")
            },
        }
    );
    assert_eq!(
        drift.to_string(),
        "module `tools/fmt.wasm` changed (blake3:c3c3c3c3c3c3 → blake3:444444444444)"
    );

    let drift = one_drift(|l| {
        l.modules.push(ModulePin {
            path: "tools/lint.wasm".into(),
            digest: digest("55"),
        });
    });
    assert_eq!(
        drift,
        Drift::Module {
            path: "tools/lint.wasm".into(),
            change: Change::Added(digest("55")),
        }
    );
    assert_eq!(
        drift.to_string(),
        "module `tools/lint.wasm` added (blake3:555555555555)"
    );

    let drift = one_drift(|l| l.modules.clear());
    assert_eq!(
        drift,
        Drift::Module {
            path: "tools/fmt.wasm".into(),
            change: Change::Removed(digest("c3")),
        }
    );
    assert_eq!(drift.to_string(), "module `tools/fmt.wasm` removed");
}

#[test]
fn steps_added_and_removed() {
    let drift = one_drift(|l| {
        let mut lint = l.steps[0].clone();
        lint.name = "lint".into();
        l.steps.push(lint);
    });
    assert_eq!(
        drift,
        Drift::StepAdded {
            step: "lint".into()
        }
    );
    assert_eq!(drift.to_string(), "step `lint` added");

    let drift = one_drift(|l| l.steps.clear());
    assert_eq!(
        drift,
        Drift::StepRemoved {
            step: "build".into()
        }
    );
    assert_eq!(drift.to_string(), "step `build` removed");
}

#[test]
fn step_fields() {
    let drift = one_drift(|l| step(l).task = "tools/hello.wasm".into());
    assert_eq!(
        drift,
        Drift::StepChanged {
            step: "build".into(),
            field: StepField::Task,
            pinned: "hello".into(),
            current: "tools/hello.wasm".into(),
        }
    );
    assert_eq!(
        drift.to_string(),
        "step `build`: task changed (\"hello\" → \"tools/hello.wasm\")"
    );

    let drift = one_drift(|l| step(l).module = digest("66"));
    assert_eq!(
        drift.to_string(),
        "step `build`: module changed (blake3:b2b2b2b2b2b2 → blake3:666666666666)"
    );

    let drift = one_drift(|l| step(l).key = digest("77"));
    assert!(matches!(
        drift,
        Drift::StepChanged {
            field: StepField::Key,
            ..
        }
    ));
    assert_eq!(
        drift.to_string(),
        "step `build`: key changed (blake3:d4d4d4d4d4d4 → blake3:777777777777)"
    );
}

#[test]
fn step_args() {
    let drift = one_drift(|l| step(l).args = vec!["-O2".into(), "--name=a b".into()]);
    assert_eq!(
        drift,
        Drift::StepArgs {
            step: "build".into(),
            pinned: vec!["-O1".into()],
            current: vec!["-O2".into(), "--name=a b".into()],
        }
    );
    assert_eq!(
        drift.to_string(),
        "step `build`: args changed ([\"-O1\"] → [\"-O2\", \"--name=a b\"])"
    );
}

#[test]
fn step_env() {
    let drift = one_drift(|l| {
        step(l).env.insert("RUST_LOG".into(), "info".into());
    });
    assert_eq!(
        drift,
        Drift::StepEnv {
            step: "build".into(),
            var: "RUST_LOG".into(),
            change: Change::Changed {
                pinned: "debug".into(),
                current: "info".into()
            },
        }
    );
    assert_eq!(
        drift.to_string(),
        "step `build`: env `RUST_LOG` changed (\"debug\" → \"info\")"
    );

    let drift = one_drift(|l| {
        step(l).env.insert("CI".into(), "1".into());
    });
    assert_eq!(drift.to_string(), "step `build`: env `CI` added (\"1\")");

    let drift = one_drift(|l| step(l).env.clear());
    assert_eq!(
        drift,
        Drift::StepEnv {
            step: "build".into(),
            var: "RUST_LOG".into(),
            change: Change::Removed("debug".into()),
        }
    );
    assert_eq!(drift.to_string(), "step `build`: env `RUST_LOG` removed");
}

#[test]
fn step_inputs() {
    let drift = one_drift(|l| {
        step(l)
            .inputs
            .insert("src/a.txt".into(), digest("0f9e8d7c6b5a"));
    });
    assert_eq!(
        drift,
        Drift::StepInput {
            step: "build".into(),
            path: "src/a.txt".into(),
            change: Change::Changed {
                pinned: digest("1a2b3c4d5e6f"),
                current: digest("0f9e8d7c6b5a"),
            },
        }
    );
    assert_eq!(
        drift.to_string(),
        "step `build`: input `src/a.txt` changed (blake3:1a2b3c4d5e6f → blake3:0f9e8d7c6b5a)"
    );

    let drift = one_drift(|l| {
        step(l).inputs.insert("src/b.txt".into(), digest("88"));
    });
    assert_eq!(
        drift.to_string(),
        "step `build`: input `src/b.txt` added (blake3:888888888888)"
    );

    let drift = one_drift(|l| step(l).inputs.clear());
    assert_eq!(drift.to_string(), "step `build`: input `src/a.txt` removed");
}

#[test]
fn step_dependencies() {
    let drift = one_drift(|l| step(l).depends_on.push("setup".into()));
    assert_eq!(
        drift,
        Drift::StepDependencyAdded {
            step: "build".into(),
            dependency: "setup".into(),
        }
    );
    assert_eq!(drift.to_string(), "step `build`: dependency `setup` added");

    let drift = one_drift(|l| step(l).depends_on.clear());
    assert_eq!(
        drift,
        Drift::StepDependencyRemoved {
            step: "build".into(),
            dependency: "fetch".into(),
        }
    );
    assert_eq!(
        drift.to_string(),
        "step `build`: dependency `fetch` removed"
    );
}

#[test]
fn digests_that_are_not_blake3_hex_are_shown_whole() {
    let drift = one_drift(|l| step(l).key = "sha256:abc".into());
    assert_eq!(
        drift.to_string(),
        "step `build`: key changed (blake3:d4d4d4d4d4d4 → sha256:abc)"
    );
}

/// Everything drifts at once: checks the order of `diff` and the full text of `render_diff`.
fn everything_drifted() -> Lockfile {
    let mut current = pinned();
    current.tasks[0].name = "greet".into();
    current.tasks.push(TaskPin {
        name: "hello".into(),
        toolchain: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
        ..pinned().tasks[0].clone()
    });
    current.modules[0].digest = digest("44");
    current.modules.push(ModulePin {
        path: "a.wasm".into(),
        digest: digest("55"),
    });
    let build = step(&mut current);
    build.key = digest("77");
    build.args = vec!["-O2".into()];
    build.env.insert("RUST_LOG".into(), "info".into());
    build.env.insert("CI".into(), "true".into());
    build
        .inputs
        .insert("src/a.txt".into(), digest("0f9e8d7c6b5a"));
    build.inputs.insert("src/b.txt".into(), digest("88"));
    build.depends_on = vec!["setup".into()];
    build.module = digest("66");
    let mut lint = build.clone();
    lint.name = "lint".into();
    // Steps are matched by name, not position.
    current.steps.insert(0, lint);
    current
}

#[test]
fn diff_order_is_stable() {
    let drifts = diff(&pinned(), &everything_drifted());
    let lines: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "task `greet` added",
            "task `hello`: toolchain changed (\"rustc 1.94.0 (4a4ef493e 2026-03-02)\" → \
             \"rustc 1.95.0 (59807616e 2026-04-14)\")",
            "module `a.wasm` added (blake3:555555555555)",
            "module `tools/fmt.wasm` changed (blake3:c3c3c3c3c3c3 → blake3:444444444444)",
            "step `build`: module changed (blake3:b2b2b2b2b2b2 → blake3:666666666666)",
            "step `build`: args changed ([\"-O1\"] → [\"-O2\"])",
            "step `build`: env `CI` added (\"true\")",
            "step `build`: env `RUST_LOG` changed (\"debug\" → \"info\")",
            "step `build`: input `src/a.txt` changed (blake3:1a2b3c4d5e6f → blake3:0f9e8d7c6b5a)",
            "step `build`: input `src/b.txt` added (blake3:888888888888)",
            "step `build`: dependency `fetch` removed",
            "step `build`: dependency `setup` added",
            "step `build`: key changed (blake3:d4d4d4d4d4d4 → blake3:777777777777)",
            "step `lint` added",
        ]
    );
}

#[test]
fn render_diff_full_text() {
    let mut current = everything_drifted();
    current.version = 2;
    current.tasks.remove(0);
    current.tasks[0].name = "world".into();
    current.tasks.push(TaskPin {
        source: digest("0f9e8d7c6b5a"),
        ..pinned().tasks[0].clone()
    });
    current.modules.remove(0);
    current.steps[1].env.remove("RUST_LOG");
    current.steps[1].inputs.remove("src/a.txt");
    current.steps.remove(0);
    let rendered = render_diff(&diff(&pinned(), &current));
    let expected = "\
- version = 1
+ version = 2
task `hello`:
  - source = blake3:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
  + source = blake3:0f9e8d7c6b5a0f9e8d7c6b5a0f9e8d7c6b5a0f9e8d7c6b5a0f9e8d7c6b5a0f9e
+ task `world`
+ module `a.wasm` = blake3:5555555555555555555555555555555555555555555555555555555555555555
- module `tools/fmt.wasm` = blake3:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3
step `build`:
  - module = blake3:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
  + module = blake3:6666666666666666666666666666666666666666666666666666666666666666
  - args = [\"-O1\"]
  + args = [\"-O2\"]
  + env `CI` = \"true\"
  - env `RUST_LOG` = \"debug\"
  - input `src/a.txt` = blake3:1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b
  + input `src/b.txt` = blake3:8888888888888888888888888888888888888888888888888888888888888888
  - dependency `fetch`
  + dependency `setup`
  - key = blake3:d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4
  + key = blake3:7777777777777777777777777777777777777777777777777777777777777777
";
    assert_eq!(rendered, expected);
}

#[test]
fn render_diff_repeats_a_header_after_an_interruption() {
    let drifts = [
        Drift::StepDependencyAdded {
            step: "a".into(),
            dependency: "b".into(),
        },
        Drift::StepAdded { step: "c".into() },
        Drift::StepEnv {
            step: "a".into(),
            var: "X".into(),
            change: Change::Changed {
                pinned: "1\n".into(),
                current: "2".into(),
            },
        },
    ];
    assert_eq!(
        render_diff(&drifts),
        "step `a`:\n  + dependency `b`\n+ step `c`\nstep `a`:\n  - env `X` = \"1\\n\"\n  + env `X` = \"2\"\n"
    );
}
