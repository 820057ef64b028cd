//! The cache under abuse: `hermetic` killed with SIGKILL at many moments while it writes to the
//! cache, and several processes sharing one cache at once. Nothing corrupt is ever found or
//! served, and every later run gives the right bytes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use hermetic_tests::{Test, guests};

/// Four steps, each copying one directory of inputs to its outputs.
const WORKFLOW: &str = "\
name: crash
steps:
  s0: { task: copy.wasm, inputs: [\"d0/*\"], outputs: [d0] }
  s1: { task: copy.wasm, inputs: [\"d1/*\"], outputs: [d1] }
  s2: { task: copy.wasm, inputs: [\"d2/*\"], outputs: [d2] }
  s3: { task: copy.wasm, inputs: [\"d3/*\"], depends_on: [s0], outputs: [d3] }
";

/// Deterministic, poorly compressible bytes: `len` bytes from a xorshift seeded by `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes the inputs for `variant`: each step's directory holds two files of 256 KiB.
fn write_inputs(project: &Path, variant: u64) {
    for d in 0..4u64 {
        let dir = project.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..2u64 {
            let bytes = noise(variant * 100 + d * 10 + f + 1, 256 << 10);
            std::fs::write(dir.join(format!("f{f}.bin")), bytes).unwrap();
        }
    }
}

/// Checks that every step's published outputs are byte-identical to its inputs.
fn check_outputs(project: &Path) {
    for d in 0..4 {
        for f in 0..2 {
            let rel = format!("d{d}/f{f}.bin");
            let input = std::fs::read(project.join(&rel)).unwrap();
            let output = std::fs::read(
                project
                    .join(".hermetic/out")
                    .join(format!("s{d}"))
                    .join(&rel),
            )
            .unwrap_or_else(|e| panic!("output {rel} of s{d}: {e}"));
            assert!(
                input == output,
                "output {rel} of s{d} differs from its input"
            );
        }
    }
}

fn hermetic(project: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = hermetic_tests::command(project, cache);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

fn finish(mut child: Child, what: &str) -> i32 {
    let out = std::mem::take(&mut child.stderr);
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = out {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    status
        .code()
        .unwrap_or_else(|| panic!("{what} was killed: {status}\n{err}"))
}

fn run_ok(project: &Path, cache: &Path, args: &[&str], what: &str) {
    let out = hermetic(project, cache, args).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_while_writing_the_cache_never_leaves_a_corrupt_entry() {
    let t = Test::new()
        .file("hermetic.yaml", WORKFLOW)
        .guest("copy.wasm", guests::COPY_IN_OUT_P1);
    let project = t.path().to_path_buf();
    let cache = t.cache_dir();

    // How long a run with new inputs takes once the module is compiled, to spread the kills
    // over it.
    write_inputs(&project, 1000);
    run_ok(&project, &cache, &["run", "--jobs", "2"], "the warm-up run");
    write_inputs(&project, 1001);
    let started = Instant::now();
    run_ok(&project, &cache, &["run", "--jobs", "2"], "the timing run");
    let cold = started.elapsed();

    // Kill until 100 kills have landed while a run was going (a kill can come after a run
    // that was fast to finish), with a bound so a broken timing cannot loop forever.
    const KILLS: u64 = 100;
    let mut killed_mid_run = 0;
    let mut i = 0;
    while killed_mid_run < KILLS {
        assert!(
            i < 4 * KILLS,
            "only {killed_mid_run} of {i} kills landed before the run finished"
        );
        // Mostly new inputs, so the killed run is writing entries; every third run reuses one
        // of seven variants, to hit entries that an earlier killed run may have been writing.
        let variant = if i % 3 == 0 { i % 7 } else { 10_000 + i };
        write_inputs(&project, variant);
        let child = hermetic(&project, &cache, &["run", "--jobs", "2"])
            .spawn()
            .unwrap();
        // Spread over [0, cold) with a stride that visits the range in a scattered order.
        let frac = ((i * 37) % KILLS) as f64 / KILLS as f64;
        std::thread::sleep(cold.mul_f64(frac));
        let pid = child.id();
        // SIGKILL: no handler runs, nothing is cleaned up.
        sigkill(pid);
        let mut child = child;
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_mid_run += 1;
        }

        // Nothing corrupt is found...
        let verify = hermetic(&project, &cache, &["cache", "verify"])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "kill {i}: `hermetic cache verify` found corruption:\n{}",
            String::from_utf8_lossy(&verify.stdout)
        );
        // ...and the next run gives the right bytes.
        run_ok(
            &project,
            &cache,
            &["run", "--jobs", "2"],
            &format!("the run after kill {i}"),
        );
        check_outputs(&project);
        i += 1;
    }
    // No temporaries of the killed processes survive the later runs.
    let tmp = cache.join("store").join("tmp");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "left in {}: {leftovers:?}",
        tmp.display()
    );
}

/// Sends SIGKILL to `pid` through the `kill` command (the tests crate has no unsafe code).
fn sigkill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
fn two_processes_share_one_cache_at_once() {
    let a = Test::new()
        .file("hermetic.yaml", WORKFLOW)
        .guest("copy.wasm", guests::COPY_IN_OUT_P1);
    let b = Test::new()
        .file("hermetic.yaml", WORKFLOW)
        .guest("copy.wasm", guests::COPY_IN_OUT_P1);
    let cache = a.cache_dir();
    for round in 0..4u64 {
        // Overlapping workflows: the same steps, and half the inputs in common.
        write_inputs(a.path(), round);
        write_inputs(b.path(), round);
        std::fs::write(b.path().join("d2/f1.bin"), noise(round + 77, 100_000)).unwrap();
        let pa = hermetic(a.path(), &cache, &["run", "--jobs", "2"])
            .spawn()
            .unwrap();
        let pb = hermetic(b.path(), &cache, &["run", "--jobs", "2"])
            .spawn()
            .unwrap();
        assert_eq!(finish(pa, "process a"), 0, "round {round}");
        assert_eq!(finish(pb, "process b"), 0, "round {round}");
        check_outputs(a.path());
        check_outputs(b.path());
    }
    run_ok(a.path(), &cache, &["cache", "verify"], "cache verify");
}
