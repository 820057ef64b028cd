//! The adversarial corpus: guests that try to leave the sandbox. Each must be contained: every
//! attempt denied with the expected error, the right outcome, and nothing outside the sandbox
//! touched: a canary file beside the sandbox (whose absolute host path the guests are given)
//! stays byte-for-byte identical, and the project holds exactly what it held before plus what
//! hermetic itself writes.
//!
//! Each guest prints one line per attempt and ends with `contained` (exit 0) or `ESCAPED: …`
//! (exit 1); the tests compare the complete text.

use std::path::Path;

use hermetic_tests::{Output, Test, guests};

/// Bytes no guest may change; binary, so a partial overwrite cannot go unnoticed.
const CANARY: &[u8] = b"canary: if this changes, a guest escaped\n\x00\x01\xfe\xff\n";
const INPUT: &str = "the user's input: must never change\n";

/// `../` enough times to climb out of any directory to `/`, so that `CLIMB + <absolute path>`
/// names that absolute path from wherever the host resolves it.
fn climb_to(path: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(40),
        path.display().to_string().trim_start_matches('/')
    )
}

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

/// The canary is still there and unchanged, so are the inputs, and nothing appeared beside the
/// project.
fn assert_intact(out: &Output) {
    assert_eq!(out.read_bytes("canary.txt"), CANARY, "the canary changed");
    for input in ["sandbox/in/input.txt", "input.txt"] {
        if out.exists(input) {
            assert_eq!(out.read(input), INPUT, "{input} changed");
        }
    }
    let parent = out.path().parent().expect("tempdir parent");
    for name in ["escaped.txt", "escaped-dir"] {
        assert!(
            !parent.join(name).exists(),
            "{name} appeared beside the project"
        );
    }
}

/// The project of an `exec_contained` run, when the guest left nothing in `/out` or `/tmp`.
const EXEC_TREE: &str = "canary.txt (46 bytes)
guest.wasm (<size>)
sandbox/
  in/
    input.txt (36 bytes)
    sub/
      nested.txt (7 bytes)
  out/
  tmp/
";

/// `out.tree(".")` with the guest's size replaced by `<size>`.
fn project_tree(out: &Output) -> String {
    let size = out.read_bytes("guest.wasm").len();
    out.tree(".")
        .replace(&format!("guest.wasm ({size} bytes)"), "guest.wasm (<size>)")
}

#[test]
fn escape_dotdot() {
    let out = exec_contained(guests::ESCAPE_DOTDOT_P1)
        .expect_status(0)
        .expect_stdout(format!(
            "\
read /in/../../etc/passwd: error Operation not permitted (os error 63)
read /in/../etc/passwd: error Operation not permitted (os error 63)
read /in/./../../etc/passwd: error Operation not permitted (os error 63)
read /out/../../etc/passwd: error Operation not permitted (os error 63)
read /tmp/../../../etc/passwd: error Operation not permitted (os error 63)
read ../../../etc/passwd: error No such file or directory (os error 44)
read ../etc/passwd: error No such file or directory (os error 44)
read /in/{}etc/passwd: error Operation not permitted (os error 63)
list /in/..: error Operation not permitted (os error 63)
list /in/../..: error Operation not permitted (os error 63)
list /out/..: error Operation not permitted (os error 63)
list /out/../..: error Operation not permitted (os error 63)
list /tmp/../../..: error Operation not permitted (os error 63)
create /out/../escaped.txt: error Operation not permitted (os error 63)
create /out/../../escaped.txt: error Operation not permitted (os error 63)
create /tmp/../../escaped.txt: error Operation not permitted (os error 63)
mkdir /out/../escaped-dir: error Operation not permitted (os error 63)
chdir /out: ok
read ../../etc/passwd from /out: error Operation not permitted (os error 63)
list ../.. from /out: error Operation not permitted (os error 63)
contained
",
            "../".repeat(64)
        ))
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(project_tree(&out), EXEC_TREE);
}

#[test]
fn escape_abs() {
    let out = exec_contained(guests::ESCAPE_ABS_P1)
        .expect_status(0)
        .expect_stdout(
            "\
read /etc/passwd: error No such file or directory (os error 44)
read /proc/self/environ: error No such file or directory (os error 44)
read /proc/self/cmdline: error No such file or directory (os error 44)
read //etc/passwd: error No such file or directory (os error 44)
list /: error No such file or directory (os error 44)
list /etc: error No such file or directory (os error 44)
list /proc/self/fd: error No such file or directory (os error 44)
list $PROJECT: error No such file or directory (os error 44)
read canary: error No such file or directory (os error 44)
stat canary: error No such file or directory (os error 44)
truncate canary: error No such file or directory (os error 44)
append canary: error No such file or directory (os error 44)
remove canary: error No such file or directory (os error 44)
create beside canary: error No such file or directory (os error 44)
contained
",
        )
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(project_tree(&out), EXEC_TREE);
}

/// Symlinks with absolute targets cannot even be created; relative ones that climb out can be,
/// but nothing can be opened through them. What the guest leaves on the host is a link, never a
/// copy, and hermetic never follows it.
#[test]
fn escape_symlink() {
    let t = exec_contained(guests::ESCAPE_SYMLINK_P1);
    // The guest climbs 32 levels (enough for any tempdir) before the canary's absolute path.
    let deep = format!(
        "{}{}",
        "../".repeat(32),
        t.join("canary.txt")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    let out = t
        .expect_status(0)
        .expect_stdout(ESCAPE_SYMLINK_STDOUT)
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(
        out.tree("sandbox/out"),
        format!("deep -> {deep}\nup -> ../../..\n")
    );
    assert_eq!(
        out.read_bytes("sandbox/out/deep"),
        CANARY,
        "the link leads to the canary"
    );
}

const ESCAPE_SYMLINK_STDOUT: &str = "\
symlink /out/root -> /: error Operation not permitted (os error 63)
symlink /out/host -> <canary>: error Operation not permitted (os error 63)
symlink /out/up -> ../../..: ok
symlink /out/deep -> <canary>: ok
read /out/root/etc/passwd: error No such file or directory (os error 44)
list /out/root: error No such file or directory (os error 44)
list /out/root/: error No such file or directory (os error 44)
read /out/up/etc/passwd: error Operation not permitted (os error 63)
list /out/up: error Operation not permitted (os error 63)
read /out/host: error No such file or directory (os error 44)
truncate /out/host: error No such file or directory (os error 44)
append /out/host: error No such file or directory (os error 44)
read /out/deep: error Operation not permitted (os error 63)
truncate /out/deep: error Operation not permitted (os error 63)
append /out/deep: error Operation not permitted (os error 63)
create /out/root/escaped.txt: error No such file or directory (os error 44)
create /out/up/escaped.txt: error Operation not permitted (os error 63)
contained
";

/// wasip1 has no sockets at all.
#[test]
fn socket_p1() {
    exec_contained(guests::SOCKET_P1)
        .expect_status(0)
        .expect_stdout(
            "\
connect 127.0.0.1:80: error operation not supported on this platform
bind tcp 127.0.0.1:0: error operation not supported on this platform
bind udp 127.0.0.1:0: error operation not supported on this platform
resolve localhost:80: error operation not supported on this platform
resolve example.com:80: error operation not supported on this platform
contained
",
        )
        .expect_stderr("")
        .run();
}

/// wasip2 has `wasi:sockets`; the sandbox denies every use (`Permission denied` is WASI's
/// `EACCES`, errno 2).
#[test]
fn socket_p2() {
    exec_contained(guests::SOCKET_P2)
        .expect_status(0)
        .expect_stdout(
            "\
connect 127.0.0.1:80: error Permission denied (os error 2)
bind tcp 127.0.0.1:0: error Permission denied (os error 2)
bind udp 127.0.0.1:0: error Permission denied (os error 2)
resolve localhost:80: error failed to lookup address information: Non-recoverable error
resolve example.com:80: error failed to lookup address information: Non-recoverable error
contained
",
        )
        .expect_stderr("")
        .run();
}

const WRITE_IN_STDOUT: &str = "\
create /in/new.txt: error Operation not permitted (os error 63)
truncate /in/input.txt: error Operation not permitted (os error 63)
write /in/input.txt: error Operation not permitted (os error 63)
append /in/input.txt: error Operation not permitted (os error 63)
set_len /in/input.txt: error Operation not permitted (os error 63)
remove /in/input.txt: error Operation not permitted (os error 63)
rename /in/input.txt /in/renamed.txt: error Operation not permitted (os error 63)
rename /in/input.txt /out/stolen.txt: error Operation not permitted (os error 63)
mkdir /in/dir: error Operation not permitted (os error 63)
remove /in/sub: error Operation not permitted (os error 63)
read /in/input.txt: ok (36 bytes, first line \"the user's input: must never change\")
contained
";

/// `--dir HOST::GUEST:ro` is enforced by the sandbox itself.
#[test]
fn write_in_exec_ro_mount() {
    let out = exec_project(guests::WRITE_IN_P1)
        .args(["exec", "guest.wasm"])
        .args(["--dir", "sandbox/in::/in:ro", "--dir", "sandbox/out::/out"])
        .args(["--dir", "sandbox/tmp::/tmp", "--", "/in"])
        .expect_status(0)
        .expect_stdout(WRITE_IN_STDOUT)
        .expect_stderr("")
        .run();
    assert_intact(&out);
    assert_eq!(project_tree(&out), EXEC_TREE);
}

/// A workflow whose one step `attack` runs `guest.wasm` with `input.txt` and `sub/**` as inputs,
/// the arguments `args` makes from the project's path, and the given outputs.
fn workflow(guest: &str, args: impl FnOnce(&Path) -> Vec<String>, outputs: &str) -> Test {
    let t = Test::new()
        .file("canary.txt", CANARY)
        .guest("guest.wasm", guest)
        .file("input.txt", INPUT)
        .file("sub/nested.txt", "nested\n");
    let args = args(t.path());
    let yaml = format!(
        "name: contain\nsteps:\n  attack:\n    task: guest.wasm\n    args: {args:?}\n    inputs: [input.txt, \"sub/**\"]\n    outputs: {outputs}\n",
    );
    t.file("hermetic.yaml", yaml).arg("run")
}

fn no_args(_: &Path) -> Vec<String> {
    Vec::new()
}

/// The canary's absolute host path, as the only argument.
fn canary_arg(project: &Path) -> Vec<String> {
    vec![project.join("canary.txt").display().to_string()]
}

const SUCCEEDED: &str = "   Running attack\n  Finished attack in [ELAPSED]\n      Done 1 succeeded, 0 failed, 0 skipped in [ELAPSED]\n";

/// Hard-linking the read-only input into `/out` or `/tmp` is refused, so nothing can be written
/// through a link; and the user's input is untouched either way, since `/in` is a copy.
#[test]
fn hardlink_write() {
    let out = workflow(guests::HARDLINK_WRITE_P1, no_args, "[]")
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(SUCCEEDED)
        .run();
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        "\
read /in/input.txt: ok (36 bytes, first line \"the user's input: must never change\")
hard_link /in/input.txt /out/link.txt: error Operation not permitted (os error 63)
hard_link /in/input.txt /tmp/link.txt: error Operation not permitted (os error 63)
read /in/input.txt again: ok (36 bytes, first line \"the user's input: must never change\")
contained
"
    );
    assert_intact(&out);
    assert_eq!(out.read("input.txt"), INPUT);
}

/// The real input mount of a workflow step is read-only.
#[test]
fn write_in() {
    let out = workflow(guests::WRITE_IN_P1, no_args, "[]")
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(SUCCEEDED)
        .run();
    assert_eq!(out.read(".hermetic/logs/attack/stdout"), WRITE_IN_STDOUT);
    assert_intact(&out);
    assert_eq!(out.read("sub/nested.txt"), "nested\n");
}

/// A dependency's outputs in `/deps/<name>` are read-only too, and what was published for it
/// stays as it was.
#[test]
fn write_in_deps() {
    let out = Test::new()
        .file("canary.txt", CANARY)
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("guest.wasm", guests::WRITE_IN_P1)
        .file("input.txt", INPUT)
        .file("sub/nested.txt", "nested\n")
        .file(
            "hermetic.yaml",
            "\
name: contain
steps:
  produce:
    task: copy.wasm
    inputs: [input.txt, \"sub/**\"]
    outputs: [input.txt, sub]
  attack:
    task: guest.wasm
    args: [/deps/produce]
    depends_on: [produce]
",
        )
        .args(["run", "--jobs", "1"])
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(
            "   Running produce\n  Finished produce in [ELAPSED]\n   Running attack\n  Finished attack in [ELAPSED]\n      Done 2 succeeded, 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        WRITE_IN_STDOUT.replace("/in/", "/deps/produce/")
    );
    assert_intact(&out);
    assert_eq!(
        out.tree(".hermetic/out"),
        "produce/\n  input.txt (36 bytes)\n  sub/\n    nested.txt (7 bytes)\n"
    );
    assert_eq!(out.read(".hermetic/out/produce/input.txt"), INPUT);
}

/// Symlinks the guest leaves in `/out` but does not declare are never followed or published.
#[test]
fn escape_symlink_in_a_workflow() {
    let out = workflow(guests::ESCAPE_SYMLINK_P1, canary_arg, "[]")
        .expect_status(0)
        .expect_stdout("")
        .expect_stderr(SUCCEEDED)
        .run();
    assert_intact(&out);
    // Nothing is published (no outputs are declared) and the attempt's directory, symlinks and
    // all, is gone without its links having been followed.
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        ESCAPE_SYMLINK_STDOUT
    );
    // The run journal's directory is named after the time; its logs are the step's.
    let tree = out.tree(".hermetic");
    let (before_runs, runs) = tree.split_once("runs/\n").expect("a run journal");
    let (run, rest) = runs.split_once("tmp/\n").expect("tmp/ after runs/");
    let run_id = run.lines().next().unwrap().trim().trim_end_matches('/');
    assert_eq!(
        format!("{before_runs}tmp/\n{rest}"),
        format!(
            "keys.json ({} bytes)\nlock (0 bytes)\nlogs/\n  attack/\n    stdout ({} bytes)\ntmp/\n  empty/\n",
            out.read(".hermetic/keys.json").len(),
            ESCAPE_SYMLINK_STDOUT.len(),
        )
    );
    assert_eq!(
        out.tree(format!(".hermetic/runs/{run_id}")),
        format!(
            "events.jsonl ({} bytes)\nlogs/\n  attack/\n    stdout ({} bytes)\nsummary.json ({} bytes)\n",
            out.read(format!(".hermetic/runs/{run_id}/events.jsonl"))
                .len(),
            ESCAPE_SYMLINK_STDOUT.len(),
            out.read(format!(".hermetic/runs/{run_id}/summary.json"))
                .len(),
        )
    );
}

/// A symlink with an absolute target cannot be created at all: the guest fails.
#[test]
fn symlink_leave_absolute() {
    let out = workflow(guests::SYMLINK_LEAVE_P1, canary_arg, "[result.txt]")
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr(
            "   Running attack\n    Failed attack: exited with code 1\n    Failed 0 succeeded, 1 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        "symlink /out/result.txt: error Operation not permitted (os error 63)\n"
    );
    assert_intact(&out);
    assert!(!out.exists(".hermetic/out/attack"));
}

/// A declared output that is a symlink climbing out of the sandbox (to the canary, from any
/// staging directory) fails the step with an error naming the symlink; its target is never
/// copied.
#[test]
fn symlink_leave_relative() {
    let climb = |project: &Path| vec![climb_to(&project.join("canary.txt"))];
    let out = workflow(guests::SYMLINK_LEAVE_P1, climb, "[result.txt]")
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr(
            "   Running attack\n    Failed attack: left a symlink at `/out/result.txt`; outputs must be regular files or directories\n    Failed 0 succeeded, 1 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        "left /out/result.txt as a symlink\n"
    );
    assert_intact(&out);
    assert!(!out.exists(".hermetic/out/attack"));
}

/// A symlinked directory on the way to a declared output (`/out/dir -> <project>`, output
/// `dir/canary.txt`) is caught before anything is opened through it.
#[test]
fn symlink_leave_directory_on_the_way() {
    let climb = |project: &Path| vec![climb_to(project), "dir".to_owned()];
    let out = workflow(guests::SYMLINK_LEAVE_P1, climb, "[dir/canary.txt]")
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr(
            "   Running attack\n    Failed attack: left a symlink at `/out/dir`; outputs must be regular files or directories\n    Failed 0 succeeded, 1 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert_eq!(
        out.read(".hermetic/logs/attack/stdout"),
        "left /out/dir as a symlink\n"
    );
    assert_intact(&out);
    assert!(!out.exists(".hermetic/out/attack"));
}

/// `/out` may hold at most the output limit (4 GiB by default): a step that leaves more fails,
/// naming the limit, and nothing is published. (Sparse files: the logical size counts, and the
/// test does not write gigabytes to the host's disk.)
#[test]
fn output_limit() {
    let out = Test::new()
        .guest("guest.wasm", guests::OUTPUT_FLOOD_P1)
        .file(
            "hermetic.yaml",
            "name: flood\nsteps:\n  flood:\n    task: guest.wasm\n    args: [\"5120\", sparse]\n    outputs: [flood-000.bin]\n",
        )
        .arg("run")
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr(
            "   Running flood\n    Failed flood: exceeded its output limit of 4 GiB\n    Failed 0 succeeded, 1 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
    assert!(!out.exists(".hermetic/out/flood"));
    assert_eq!(out.tree(".hermetic/tmp"), "empty/\n");
}

/// The output limit must bound what a step can put on the host's disk *while it runs*, as the
/// stdout cap does: a guest writing 5 GiB must be refused (or stopped) once `/out` holds the
/// limit, not only judged after it has written everything.
///
/// Known gap: the sandbox measures the writable mounts every 50 ms while the guest runs and
/// interrupts it past the limit, but this sparse flood finishes within one interval, so it is
/// caught only by the check after exit. Enforcing the limit at the WASI write calls closes it.
#[test]
#[ignore = "output limit is polled every 50 ms; a flood faster than that is caught only after exit"]
fn output_flood_is_stopped_at_the_limit() {
    let out = Test::new()
        .guest("guest.wasm", guests::OUTPUT_FLOOD_P1)
        .file(
            "hermetic.yaml",
            "name: flood\nsteps:\n  flood:\n    task: guest.wasm\n    args: [\"5120\", sparse]\n    outputs: [flood-000.bin]\n",
        )
        .arg("run")
        .expect_status(1)
        .expect_stdout("")
        .expect_stderr_contains("output limit")
        .run();
    let log = out.read(".hermetic/logs/flood/stdout");
    assert_ne!(
        log, "wrote 5120 MiB\n",
        "the guest wrote all 5 GiB: the output limit is not enforced while it runs"
    );
}

/// Scratch directories are reused from step to step: one that a step littered (files, a tree,
/// a symlink pointing out, undeclared outputs) comes to the next step empty, and only the declared
/// output is published.
#[test]
fn a_step_after_a_littering_step_starts_with_empty_directories() {
    let out = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: reuse
steps:
  litter:
    task: litter.wasm
    inputs: [input.txt]
    outputs: [kept.txt]
  look:
    task: ls.wasm
    inputs: [other.txt]
    args: [/in, /out, /tmp]
    depends_on: [litter]
",
        )
        .guest("litter.wasm", guests::LITTER_P1)
        .guest("ls.wasm", guests::LS_P1)
        .file("input.txt", INPUT)
        .file("other.txt", "other\n")
        .args(["run", "--jobs", "1", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(
        out.read(".hermetic/logs/litter/stdout"),
        "littered /out and /tmp\n"
    );
    assert_eq!(
        out.read(".hermetic/logs/look/stdout"),
        "/in\n  other.txt (6 bytes)\n/out\n/tmp\n"
    );
    assert_eq!(out.tree(".hermetic/out/litter"), "kept.txt (5 bytes)\n");
    assert_eq!(out.read(".hermetic/out/litter/kept.txt"), "kept\n");
}
