//! The adversarial corpus: guests that try to leave the sandbox. Each must be contained: every
//! attempt denied with the expected error, the right outcome, and nothing outside the sandbox
//! touched: a canary file beside the sandbox (whose absolute host path the guests are given)
//! stays byte-for-byte identical, and the project holds exactly the files it held before plus
//! the declared outputs.

use hermetic_tests::{Output, Test, guests};

/// Bytes no guest may change; binary, so a partial overwrite cannot go unnoticed.
const CANARY: &[u8] = b"canary: if this changes, a guest escaped\n\x00\x01\xfe\xff\n";
const INPUT: &str = "the user's input: must never change\n";

/// A project with `canary.txt` at its root, the guest as `guest.wasm`, and `sandbox/{in,out,tmp}`
/// for `hermetic exec` mounts (`sandbox/in/input.txt` is the read-only input).
fn exec_project(guest: &str) -> Test {
    Test::new()
        .file("canary.txt", CANARY)
        .guest("guest.wasm", guest)
        .file("sandbox/in/input.txt", INPUT)
        .file("sandbox/in/sub/nested.txt", "nested\n")
        .dir("sandbox/out")
        .dir("sandbox/tmp")
}

/// `hermetic exec guest.wasm` with `/in` (read-only), `/out` and `/tmp` mounted, passing the
/// canary's absolute host path as argv[1].
fn exec_contained(guest: &str) -> Test {
    let t = exec_project(guest);
    let canary = t.join("canary.txt");
    t.args(["exec", "guest.wasm"])
        .args(["--dir", "sandbox/in::/in:ro", "--dir", "sandbox/out::/out"])
        .args(["--dir", "sandbox/tmp::/tmp", "--"])
        .arg(canary)
}

/// The canary is still there and unchanged, and so is the input.
fn assert_intact(out: &Output) {
    assert_eq!(out.read_bytes("canary.txt"), CANARY, "the canary changed");
    if out.exists("sandbox/in/input.txt") {
        assert_eq!(out.read("sandbox/in/input.txt"), INPUT, "the input changed");
    }
    if out.exists("input.txt") {
        assert_eq!(out.read("input.txt"), INPUT, "the input changed");
    }
    // Nothing was created beside the project either.
    let parent = out.path().parent().expect("tempdir parent");
    for name in ["escaped.txt", "escaped-dir"] {
        assert!(
            !parent.join(name).exists(),
            "{name} appeared beside the project"
        );
    }
}

#[test]
fn escape_dotdot() {
    let out = exec_contained(guests::ESCAPE_DOTDOT_P1)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(
        out.tree("."),
        "canary.txt (47 bytes)\nguest.wasm (TODO)\nsandbox/\n  in/\n    input.txt (36 bytes)\n    sub/\n      nested.txt (7 bytes)\n  out/\n  tmp/\n"
    );
}

#[test]
fn escape_abs() {
    let out = exec_contained(guests::ESCAPE_ABS_P1)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
}

#[test]
fn escape_symlink() {
    let out = exec_contained(guests::ESCAPE_SYMLINK_P1)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    // Whatever links the guest managed to leave in the host directory are links, not copies.
    assert_eq!(out.tree("sandbox/out"), "TODO");
}

#[test]
fn socket_p1() {
    exec_contained(guests::SOCKET_P1)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
}

#[test]
fn socket_p2() {
    exec_contained(guests::SOCKET_P2)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
}

#[test]
fn write_in_exec_ro_mount() {
    let out = exec_contained(guests::WRITE_IN_P1)
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(out.tree("sandbox/out"), "");
}

/// A workflow whose one step `attack` runs `guest.wasm` with `input.txt` and `sub/**` as inputs
/// and the canary's host path as its argument.
fn workflow_project(guest: &str, outputs: &str) -> Test {
    let t = Test::new()
        .file("canary.txt", CANARY)
        .guest("guest.wasm", guest)
        .file("input.txt", INPUT)
        .file("sub/nested.txt", "nested\n");
    let canary = t.join("canary.txt");
    let yaml = format!(
        "name: contain\nsteps:\n  attack:\n    task: guest.wasm\n    args: [{canary:?}]\n    inputs: [input.txt, \"sub/**\"]\n    outputs: {outputs}\n",
        canary = canary.display().to_string(),
    );
    t.file("hermetic.yaml", yaml).arg("run")
}

/// Hard-linking the read-only input and writing through the link changes neither what `/in`
/// shows nor the user's file: `/in` is a per-attempt copy.
#[test]
fn hardlink_write() {
    let out = workflow_project(guests::HARDLINK_WRITE_P1, "[link.txt]")
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(out.read("input.txt"), INPUT);
}

#[test]
fn write_in() {
    let out = workflow_project(guests::WRITE_IN_P1, "[]")
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(out.read("input.txt"), INPUT);
    assert_eq!(out.read("sub/nested.txt"), "nested\n");
}

/// A declared output that is a symlink out of the sandbox fails the step, with an error naming
/// the symlink, and its target is never copied.
#[test]
fn symlink_leave_absolute() {
    let t = workflow_project(guests::SYMLINK_LEAVE_P1, "[result.txt]");
    let out = t
        .expect_status(1)
        .expect_stdout("TODO")
        .expect_stderr("TODO")
        .run();
    assert_intact(&out);
    assert_eq!(out.tree(".hermetic/out"), "TODO");
}

/// The same with a relative target that climbs out of any staging directory to the canary.
#[test]
fn symlink_leave_relative() {
    let t = Test::new()
        .file("canary.txt", CANARY)
        .guest("guest.wasm", guests::SYMLINK_LEAVE_P1);
    let target = format!(
        "{}{}",
        "../".repeat(40),
        t.join("canary.txt")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    let out = t
        .file(
            "hermetic.yaml",
            format!("name: contain\nsteps:\n  attack:\n    task: guest.wasm\n    args: [{target:?}]\n    outputs: [result.txt]\n"),
        )
        .arg("run")
        .expect_status(1)
        .expect_stdout("TODO")
        .expect_stderr("TODO")
        .run();
    assert_intact(&out);
    assert_eq!(out.tree(".hermetic/out"), "TODO");
}

/// Symlinks the guest leaves in `/out` but does not declare are never followed or published.
#[test]
fn escape_symlink_in_a_workflow() {
    let out = workflow_project(guests::ESCAPE_SYMLINK_P1, "[]")
        .expect_status(0)
        .expect_stdout("TODO")
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(out.tree(".hermetic/out"), "TODO");
}

/// A step that writes 2 GiB into `/out` is stopped by the output cap.
#[test]
fn output_flood() {
    let out = Test::new()
        .guest("guest.wasm", guests::OUTPUT_FLOOD_P1)
        .file(
            "hermetic.yaml",
            "name: flood\nsteps:\n  flood:\n    task: guest.wasm\n    outputs: [\"*.bin\"]\n    output_limit: 256MiB\n",
        )
        .arg("run")
        .expect_status(1)
        .expect_stdout("TODO")
        .expect_stderr("TODO")
        .run();
    assert!(!out.exists(".hermetic/out/flood"));
}
