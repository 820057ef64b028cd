//! `hermetic new task`: the files it writes and its errors. (`scripts/test` builds and tests a
//! scaffold in this workspace.)

use hermetic_tests::Test;

#[test]
fn scaffolds_a_task_crate() {
    let out = Test::new()
        .file(
            "Cargo.toml",
            "[workspace]\nmembers = [\"tasks/*\"]\n\n[workspace.dependencies]\nhermetic-sdk = { path = \"sdk\" }\n",
        )
        .args(["new", "task", "shout"])
        .expect_status(0)
        .expect_stderr(
            "   Created task `shout` in `./tasks/shout`\n      Next `cargo test -p shout`, then use it in hermetic.yaml: `task: shout`\n",
        )
        .run();
    assert_eq!(
        out.tree("tasks"),
        format!(
            "shout/\n  Cargo.toml ({} bytes)\n  src/\n    main.rs ({} bytes)\n  tests/\n    sandbox.rs ({} bytes)\n",
            out.read("tasks/shout/Cargo.toml").len(),
            out.read("tasks/shout/src/main.rs").len(),
            out.read("tasks/shout/tests/sandbox.rs").len(),
        )
    );
    let manifest = out.read("tasks/shout/Cargo.toml");
    // The workspace has the SDK, not the runtime: one is shared, the other comes from git.
    assert!(
        manifest.contains("\nhermetic-sdk.workspace = true\n"),
        "{manifest}"
    );
    assert!(
        manifest.contains(
            "\nhermetic-runtime = { git = \"https://github.com/hermetic-build/hermetic\" }\n"
        ),
        "{manifest}"
    );

    // Again: the crate exists.
    out.again()
        .args(["new", "task", "shout"])
        .expect_status(2)
        .expect_stderr(
            "error: `./tasks/shout` already exists\n  = help: choose another name, or remove it first\n",
        )
        .run();
}

#[test]
fn a_bad_name_is_refused() {
    Test::new()
        .args(["new", "task", "Shout"])
        .expect_status(2)
        .expect_stderr("error: `Shout` cannot name a task: it must start with a lowercase letter\n")
        .run();
}

#[test]
fn outside_a_tasks_workspace_it_says_what_to_add() {
    Test::new()
        .args(["new", "task", "solo"])
        .expect_status(0)
        .expect_stderr_contains(
            "      Note add \"tasks/solo\" to `members` in the workspace's Cargo.toml\n",
        )
        .run();
}
