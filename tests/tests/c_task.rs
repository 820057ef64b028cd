//! A task written in C, built with Debian's clang and wasi-libc (which `.ci/run` installs), runs
//! as a step: any language that targets WASI can write tasks, and reach the host calls too.

use std::path::Path;
use std::process::Command;

use hermetic_tests::Test;

/// Builds `examples/c-task/wc.c` into `dest` with clang, as the example's README says.
fn build_wc(dest: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c-task/wc.c");
    let output = Command::new("clang")
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-O2",
            "-DHERMETIC_HOST_CALLS",
        ])
        .arg("-o")
        .arg(dest)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run clang ({e}); install it with: \
                 apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"
            )
        });
    assert!(
        output.status.success(),
        "clang failed to build {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_c_task_counts_its_inputs_and_reports_progress() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c-task");
    let t = Test::new()
        .file(
            "hermetic.yaml",
            std::fs::read(example.join("hermetic.yaml")).unwrap(),
        )
        .file(
            "notes/a.txt",
            std::fs::read(example.join("notes/a.txt")).unwrap(),
        )
        .file(
            "notes/b.txt",
            std::fs::read(example.join("notes/b.txt")).unwrap(),
        );
    build_wc(&t.join("wc.wasm"));
    let out = t.args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        out.read(".hermetic/out/count/wc.txt"),
        "2 3 14 /in/notes/a.txt\n1 2 11 /in/notes/b.txt\n3 5 25 total\n"
    );
    let progress: Vec<String> = out
        .json_lines()
        .into_iter()
        .filter(|e| e["event"] == "step_progress")
        .map(|e| format!("{}/{}", e["done"], e["total"]))
        .collect();
    assert_eq!(progress.last().map(String::as_str), Some("2/2"));

    // A bad path fails the step with the C program's own message.
    std::fs::write(
        out.join("hermetic.yaml"),
        "name: c\nsteps:\n  count:\n    task: wc.wasm\n    args: [/in/missing.txt]\n",
    )
    .unwrap();
    out.again()
        .args(["run"])
        .expect_status(1)
        .expect_stderr_contains("    Failed count: exited with code 1\n")
        .expect_stderr_contains("           | error: cannot open /in/missing.txt\n")
        .run();
}
