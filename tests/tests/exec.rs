//! `hermetic exec`: one test per well-behaved guest and per resource limit, each asserting the
//! complete stdout, stderr and exit code.

use std::time::Duration;

use hermetic_tests::{Test, guests, mask_random};

/// `hermetic exec <name> [flags…] -- <args…>` with the guest copied into the project as `name`.
fn exec(name: &str, guest: &str) -> Test {
    Test::new().guest(name, guest).args(["exec", name])
}

#[test]
fn hello_p1() {
    exec("hello.wasm", guests::HELLO_P1)
        .args(["--env", "GREETING=hi", "--env", "A=1", "--", "a", "b c"])
        .expect_status(0)
        .expect_stdout(
            "hello from wasm\narg[0]=hello.wasm\narg[1]=a\narg[2]=b c\nenv A=1\nenv GREETING=hi\n",
        )
        .expect_stderr("")
        .run();
}

#[test]
fn hello_p2() {
    exec("hello.wasm", guests::HELLO_P2)
        .args(["--env", "GREETING=hi", "--", "x"])
        .expect_status(0)
        .expect_stdout("hello from wasm\narg[0]=hello.wasm\narg[1]=x\nenv GREETING=hi\n")
        .expect_stderr("")
        .run();
}

#[test]
fn exit_code_p1() {
    for code in [0, 1, 3, 42, 125] {
        exec("exit_code.wasm", guests::EXIT_CODE_P1)
            .args(["--", &code.to_string()])
            .expect_status(code)
            .expect_stdout(format!("exiting with {code}\n"))
            .expect_stderr("")
            .run();
    }
}

/// A component can only report success or failure (`wasi:cli/exit.exit(result)`), so any
/// non-zero code arrives as 1.
#[test]
fn exit_code_p2() {
    for (code, status) in [(0, 0), (1, 1), (3, 1)] {
        exec("exit_code.wasm", guests::EXIT_CODE_P2)
            .args(["--", &code.to_string()])
            .expect_status(status)
            .expect_stdout(format!("exiting with {code}\n"))
            .expect_stderr("")
            .run();
    }
}

fn copy_in_out(guest: &str) {
    let out = exec("copy_in_out.wasm", guest)
        .file("input/a.txt", "alpha\n")
        .file("input/sub/b.txt", "beta\n")
        .file("input/sub/deeper/c.bin", [0u8, 1, 2, 255])
        .dir("output")
        .args(["--dir", "input::/in:ro", "--dir", "output::/out"])
        .expect_status(0)
        .expect_stdout(
            "copied a.txt (6 bytes)\ncopied sub/b.txt (5 bytes)\ncopied sub/deeper/c.bin (4 bytes)\n3 files\n",
        )
        .expect_stderr("")
        .run();
    assert_eq!(
        out.tree("output"),
        "a.txt (6 bytes)\nsub/\n  b.txt (5 bytes)\n  deeper/\n    c.bin (4 bytes)\n"
    );
    assert_eq!(out.read("output/sub/b.txt"), "beta\n");
    assert_eq!(out.read_bytes("output/sub/deeper/c.bin"), [0u8, 1, 2, 255]);
}

#[test]
fn copy_in_out_p1() {
    copy_in_out(guests::COPY_IN_OUT_P1);
}

#[test]
fn copy_in_out_p2() {
    copy_in_out(guests::COPY_IN_OUT_P2);
}

/// The virtual clocks: the wall clock reads the fixed epoch (2000-01-01) plus the virtual
/// monotonic time, a sleep advances the monotonic clock by exactly its duration, and randomness
/// (the WASI source and std's `HashMap` seed alike) is seeded from the module: identical on every
/// run.
fn clock_random(guest: &str, expected: &str) -> String {
    let first = exec("clock_random.wasm", guest)
        .expect_status(0)
        .expect_stderr("")
        .run();
    assert_eq!(mask_random(&first.stdout), expected);
    let second = exec("clock_random.wasm", guest)
        .env("TZ", "Asia/Kolkata")
        .env("LC_ALL", "tr_TR.UTF-8")
        .expect_status(0)
        .run();
    assert_eq!(first.stdout, second.stdout);
    first.stdout
}

#[test]
fn clock_random_p1_and_p2() {
    let p1 = clock_random(
        guests::CLOCK_RANDOM_P1,
        "\
wall clock: 946684800.000001000
monotonic diff 1: 10002000ns
monotonic diff 2: 10002000ns
monotonic: true
random: <random>
hashmap seed hash: <random>
",
    );
    let p2 = clock_random(
        guests::CLOCK_RANDOM_P2,
        "\
wall clock: 946684800.000001000
monotonic diff 1: 10001000ns
monotonic diff 2: 10001000ns
monotonic: true
random: <random>
hashmap seed hash: <random>
",
    );
    // Different modules, different seeds.
    let random = |s: &str| s.lines().nth(4).unwrap_or_default().to_owned();
    assert_ne!(random(&p1), random(&p2));
}

/// `--clock-epoch` moves the wall clock, and nothing else.
#[test]
fn clock_epoch_flag() {
    let default = exec("clock_random.wasm", guests::CLOCK_RANDOM_P1)
        .expect_status(0)
        .run();
    exec("clock_random.wasm", guests::CLOCK_RANDOM_P1)
        .args(["--clock-epoch", "1700000000"])
        .expect_status(0)
        .expect_stdout(default.stdout.replace("946684800.", "1700000000."))
        .run();
}

#[test]
fn ls_shows_exactly_the_mounts() {
    exec("ls.wasm", guests::LS_P1)
        .file("data/a.txt", "12345")
        .file("data/sub/b.txt", "")
        .dir("scratch")
        .args([
            "--dir",
            "data::/data:ro",
            "--dir",
            "scratch::/scratch",
            "--",
            "/",
        ])
        .expect_status(0)
        .expect_stdout("/\n  <cannot list /: No such file or directory (os error 44)>\n")
        .expect_stderr("")
        .run();
}

#[test]
fn ls_lists_a_mount() {
    exec("ls.wasm", guests::LS_P1)
        .file("data/a.txt", "12345")
        .file("data/sub/b.txt", "")
        .file("data/sub/c/d.txt", "d")
        .args(["--dir", "data::/data:ro", "--", "/data"])
        .expect_status(0)
        .expect_stdout("/data\n  a.txt (5 bytes)\n  sub/\n    b.txt (0 bytes)\n    c/\n      d.txt (1 bytes)\n")
        .expect_stderr("")
        .run();
}

/// Nothing of `hermetic`'s own environment reaches the guest, only `--env`.
#[test]
fn host_env_is_not_inherited() {
    exec("host_env.wasm", guests::HOST_ENV_P1)
        .env("SECRET_TOKEN", "leaked")
        .env("TZ", "America/New_York")
        .env("LANG", "de_DE.UTF-8")
        .args(["--env", "ONLY=this", "--", "one"])
        .expect_status(0)
        .expect_stdout(
            "1 env vars\nenv ONLY=this\narg[0]=host_env.wasm\narg[1]=one\ncurrent_dir: /\n",
        )
        .expect_stderr("")
        .run();
}

#[test]
fn host_env_empty() {
    exec("host_env.wasm", guests::HOST_ENV_P1)
        .env("SECRET_TOKEN", "leaked")
        .expect_status(0)
        .expect_stdout("0 env vars\narg[0]=host_env.wasm\ncurrent_dir: /\n")
        .expect_stderr("")
        .run();
}

#[test]
fn memory_limit() {
    let out = exec("memory_bomb.wasm", guests::MEMORY_BOMB_P1)
        .args(["--memory", "256MiB"])
        .expect_status(124)
        .expect_stdout("allocated 64 MiB\nallocated 128 MiB\nallocated 192 MiB\n")
        .expect_stderr(
            "memory allocation of 67108864 bytes failed\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\
             error: `memory_bomb.wasm` exceeded its memory limit of 256 MiB\n",
        )
        .run();
    assert!(out.elapsed < Duration::from_secs(60), "{:?}", out.elapsed);
}

#[test]
fn fuel_limit() {
    exec("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .args(["--fuel", "100M"])
        .expect_status(124)
        .expect_stdout("looping\n")
        .expect_stderr("error: `infinite_loop.wasm` ran out of fuel (limit: 100000000)\n")
        .run();
}

/// Pure compute is stopped by the wall clock (epoch interruption) when fuel would allow it.
#[test]
fn timeout_while_computing() {
    let out = exec("infinite_loop.wasm", guests::INFINITE_LOOP_P1)
        .args(["--timeout", "1s", "--fuel", "1000G"])
        .kill_after(Duration::from_secs(30))
        .expect_status(124)
        .expect_stdout("looping\n")
        .expect_stderr("error: `infinite_loop.wasm` timed out after 1s\n")
        .run();
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
}

/// A sleep is virtual (p1 `poll_oneoff` and p2 pollables alike): it advances the guest's clock
/// and returns at once, so even a sleep of eleven days finishes immediately and
/// deterministically. (So no test guest can block in a host call: stdin is closed, files are
/// always ready, sleeps return at once. The wall-clock timer for that case cannot be reached from
/// a guest; `timeout_while_computing` covers epoch interruption.)
#[test]
fn sleep_is_virtual() {
    for guest in [guests::SLEEP_FOREVER_P1, guests::SLEEP_FOREVER_P2] {
        let out = exec("sleep_forever.wasm", guest)
            .args(["--timeout", "20s"])
            .kill_after(Duration::from_secs(30))
            .expect_status(0)
            .expect_stdout("sleeping\nwoke up\n")
            .expect_stderr("")
            .run();
        assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    }
}

#[test]
fn stack_overflow_traps() {
    exec("recursion.wasm", guests::RECURSION_P1)
        .expect_status(134)
        .expect_stdout("recursing\n")
        .expect_stderr(
            "error: `recursion.wasm` trapped: call stack exhausted\n\
             wasm backtrace:\n    0..=63: recursion::recurse (repeated 64 times)\n",
        )
        .run();
}

/// The stdout cap stops the guest: the guest's write fails at the cap, what is printed is exactly
/// the cap, never the 1 GiB it tried.
#[test]
fn stdout_limit() {
    let out = exec("stdout_flood.wasm", guests::STDOUT_FLOOD_P1)
        .args(["--stdout-limit", "1MiB"])
        .expect_status(124)
        .expect_stderr(
            "stdout_flood: write failed after 1048576 bytes: I/O error (os error 29)\n\
             error: `stdout_flood.wasm` exceeded its stdout limit of 1 MiB\n",
        )
        .run();
    assert_eq!(out.raw_stdout.len(), 1 << 20);
    assert!(out.raw_stdout.iter().all(|&b| b == b'x'));
}

/// Without `--stdout-limit`, the default cap (16 MiB) still applies.
#[test]
fn stdout_default_limit() {
    let out = exec("stdout_flood.wasm", guests::STDOUT_FLOOD_P1)
        .expect_status(124)
        .expect_stderr(
            "stdout_flood: write failed after 16777216 bytes: I/O error (os error 29)\n\
             error: `stdout_flood.wasm` exceeded its stdout limit of 16 MiB\n",
        )
        .run();
    assert_eq!(out.raw_stdout.len(), 16 << 20);
}

#[test]
fn missing_module_is_a_usage_error() {
    Test::new()
        .args(["exec", "nope.wasm"])
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr(
            "error: `nope.wasm` cannot be read: No such file or directory (os error 2)\n",
        )
        .run();
}

#[test]
fn not_wasm_is_a_usage_error() {
    Test::new()
        .file("text.wasm", "hello")
        .args(["exec", "text.wasm"])
        .expect_status(2)
        .expect_stdout("")
        .expect_stderr(
            "error: `text.wasm` is not a WebAssembly file (it does not start with the `\\0asm` \
             magic bytes)\n",
        )
        .run();
}
