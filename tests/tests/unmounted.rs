//! Programs that import nothing able to reach a directory run without their mounts (see
//! `Program::reaches_files`): which real programs those are, in both builds, and that such a
//! guest cannot tell the difference.

use hermetic_runtime::sandbox::{Sandbox, UnknownImports};
use hermetic_tests::{Test, guests};

fn reaches_files(guest: &str) -> bool {
    let sandbox = Sandbox::new(1, None).expect("a sandbox");
    sandbox
        .load_file(guest.as_ref(), UnknownImports::Reject)
        .unwrap_or_else(|e| panic!("{guest}: {e}"))
        .reaches_files
}

#[test]
fn programs_that_only_compute_and_print_reach_no_files() {
    for guest in [
        guests::HELLO_P1,
        guests::HELLO_P2,
        guests::EXIT_CODE_P1,
        guests::EXIT_CODE_P2,
        guests::FD3_BLIND_P1,
    ] {
        assert!(!reaches_files(guest), "{guest}");
    }
}

#[test]
fn programs_that_use_files_reach_them() {
    for guest in [
        guests::COPY_IN_OUT_P1,
        guests::COPY_IN_OUT_P2,
        guests::FILE_OPS_P1,
        guests::FILE_OPS_P2,
        guests::LITTER_P1,
        guests::FD3_FILES_P1,
    ] {
        assert!(reaches_files(guest), "{guest}");
    }
}

/// Descriptor 3 is the first preopened directory of a guest that is mounted, and not open in
/// one that is not; a write to either fails with `EBADF` (8), so the unmounted guest cannot
/// tell.
#[test]
fn a_guest_that_reaches_no_files_cannot_tell_it_was_not_mounted() {
    for guest in [guests::FD3_BLIND_P1, guests::FD3_FILES_P1] {
        Test::new()
            .guest("fd3.wasm", guest)
            .dir("data")
            .args(["exec", "fd3.wasm", "--dir", "data::/d"])
            .expect_status(0)
            .expect_stdout("fd_write(3): errno 8, 0 written\n")
            .expect_stderr("")
            .run();
    }
}

/// In a workflow: a step whose program reaches no files (`hello`) is given inputs and a
/// dependency, which are neither staged nor listed for it, and it succeeds; the next step on
/// the same worker, which reaches files, sees its own inputs and dependencies and empty `/out`
/// and `/tmp`.
#[test]
fn a_step_that_reaches_no_files_runs_between_steps_that_do() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: unmounted
steps:
  litter:
    task: litter.wasm
    inputs: [input.txt]
    outputs: [kept.txt]
  greet:
    task: hello.wasm
    inputs: [input.txt, other.txt]
    depends_on: [litter]
  look:
    task: ls.wasm
    inputs: [other.txt]
    args: [/in, /deps, /out, /tmp]
    depends_on: [litter, greet]
",
        )
        .guest("litter.wasm", guests::LITTER_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .guest("ls.wasm", guests::LS_P1)
        .file("input.txt", "input\n")
        .file("other.txt", "other\n")
        .args(["run", "--jobs", "1", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(
        out.read(".hermetic/logs/greet/stdout"),
        "hello from wasm\narg[0]=greet\n"
    );
    assert_eq!(
        out.read(".hermetic/logs/look/stdout"),
        "/in\n  other.txt (6 bytes)\n/deps\n  greet/\n  litter/\n    kept.txt (5 bytes)\n/out\n/tmp\n"
    );
}
