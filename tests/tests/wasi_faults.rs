//! The WASI-boundary faults of `hermetic chaos` (`io`, `short_write`, `slow_io`, `trap`) as the
//! guest sees them, in a core module (`wasm32-wasip1`) and in a component (`wasm32-wasip2`).
//!
//! The `file_ops` guest prints what each of its file calls returned (see
//! `tests/guests/src/bin/file_ops.rs`); it runs here in the library's sandbox, made with
//! `Sandbox::with_fault_hooks`, with one exact fault per run. Both builds meet each fault at
//! the same call; where a component sees it differently (a stream has no short count, and is
//! closed after an error), the test says so. With `pread(2)` and `pwrite(2)` (a component's
//! `descriptor.read` and `descriptor.write`), both builds see exactly the same.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use hermetic_runtime::sandbox::faults::{WasiFault, WasiOp};
use hermetic_runtime::sandbox::{
    CaptureTo, Invocation, Limits, Mount, Outcome, Sandbox, UnknownImports,
};
use hermetic_tests::guests;

/// What one run of `file_ops` left.
#[derive(Debug)]
struct Seen {
    outcome: Outcome,
    stdout: String,
    /// The files in `/out`, by name.
    out: BTreeMap<String, String>,
    duration: Duration,
}

/// The sandbox every test shares, with the fault wrappers.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::with_fault_hooks(4, None).expect("a sandbox"))
}

/// Runs `guest` (`file_ops`, either build) with `/in/a.txt` holding 16 bytes, injecting
/// `fault`.
fn run(guest: &str, fault: Option<WasiFault>) -> Seen {
    run_with(guest, &[], fault)
}

/// [`run`] with arguments after `argv[0]`.
fn run_with(guest: &str, args: &[&str], fault: Option<WasiFault>) -> Seen {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(input.join("a.txt"), "0123456789abcdef").unwrap();
    let mount = |host: &Path, guest: &str, writable| Mount {
        host: host.to_path_buf(),
        guest: guest.into(),
        writable,
    };
    let invocation = Invocation {
        args: ["file_ops"]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect(),
        env: Vec::new(),
        mounts: vec![mount(&input, "/in", false), mount(&output, "/out", true)],
        limits: Limits::default(),
        seed: [7; 32],
        clock_epoch: Duration::from_secs(946_684_800),
        clock_jump: None,
        stdout: CaptureTo::Memory,
        stderr: CaptureTo::Memory,
        heartbeat: None,
        host_calls: None,
        wasi_fault: fault,
    };
    let program = sandbox()
        .load_file(Path::new(guest), UnknownImports::Reject)
        .expect("the guest loads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(sandbox().run(&program, &invocation))
        .expect("the sandbox runs the guest");
    let out = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    Seen {
        outcome: report.outcome,
        stdout: String::from_utf8(report.stdout).unwrap(),
        out,
        duration: report.duration,
    }
}

/// Runs both builds of `file_ops` under `fault`.
fn both(fault: WasiFault) -> (Seen, Seen) {
    (
        run(guests::FILE_OPS_P1, Some(fault)),
        run(guests::FILE_OPS_P2, Some(fault)),
    )
}

/// What `file_ops` prints when nothing goes wrong.
const CLEAN: &str = "\
open /in/a.txt: ok
read 1: ok 16 bytes
read 2: ok 0 bytes
create /out/b.txt: ok
write 1: ok 10 of 10 bytes
write 2: ok 10 of 10 bytes
write 3: ok 10 of 10 bytes
create /out/c.txt: ok
write_all: ok 10 bytes
";

/// `CLEAN` with line `from` replaced by `to`.
fn clean_but(changes: &[(&str, &str)]) -> String {
    let mut text = CLEAN.to_string();
    for (from, to) in changes {
        assert!(text.contains(from), "{from:?} is not a line of CLEAN");
        text = text.replace(from, to);
    }
    text
}

fn files(b: &str, c: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("b.txt".into(), b.into()), ("c.txt".into(), c.into())])
}

#[test]
fn without_a_fault_both_builds_see_every_call_succeed() {
    for guest in [guests::FILE_OPS_P1, guests::FILE_OPS_P2] {
        let seen = run(guest, None);
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.stdout, CLEAN);
        assert_eq!(
            seen.out,
            files("0123456789abcdefghijABCDEFGHIJ", "klmnopqrst")
        );
    }
}

#[test]
fn an_open_fails_with_the_faults_errno_in_both_builds() {
    let (p1, p2) = both(WasiFault::Errno {
        op: WasiOp::Open,
        nth: 2,
        errno: 51,
    });
    let expected = "\
open /in/a.txt: ok
read 1: ok 16 bytes
read 2: ok 0 bytes
create /out/b.txt: error No space left on device (os error 51)
create /out/c.txt: ok
write_all: ok 10 bytes
";
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Exit(1), "{seen:?}");
        assert_eq!(seen.stdout, expected);
    }
}

/// A failed read: a core module's next read starts again where it was; a component's file
/// stream is closed after the error, as wasmtime-wasi's is, so the next read sees the end.
#[test]
fn a_read_fails_with_eio_and_a_components_stream_then_ends() {
    let (p1, p2) = both(WasiFault::Errno {
        op: WasiOp::Read,
        nth: 1,
        errno: 29,
    });
    let failed = "read 1: error I/O error (os error 29)\n";
    assert_eq!(
        p1.stdout,
        clean_but(&[
            ("read 1: ok 16 bytes\n", failed),
            ("read 2: ok 0 bytes", "read 2: ok 16 bytes")
        ])
    );
    assert_eq!(p2.stdout, clean_but(&[("read 1: ok 16 bytes\n", failed)]));
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Exit(1), "{seen:?}");
    }
}

/// A failed write: a core module gets the errno; a component's stream fails with the same
/// code, which wasi-libc reports as EIO, and is closed, so the next write is a broken pipe.
#[test]
fn a_write_fails_and_a_components_stream_is_closed_after_it() {
    let (p1, p2) = both(WasiFault::Errno {
        op: WasiOp::Write,
        nth: 2,
        errno: 51,
    });
    assert_eq!(
        p1.stdout,
        clean_but(&[(
            "write 2: ok 10 of 10 bytes",
            "write 2: error No space left on device (os error 51)"
        )])
    );
    assert_eq!(p1.out, files("0123456789ABCDEFGHIJ", "klmnopqrst"));
    assert_eq!(
        p2.stdout,
        clean_but(&[
            (
                "write 2: ok 10 of 10 bytes",
                "write 2: error I/O error (os error 29)"
            ),
            (
                "write 3: ok 10 of 10 bytes",
                "write 3: error Broken pipe (os error 64)"
            ),
        ])
    );
    assert_eq!(p2.out, files("0123456789", "klmnopqrst"));
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Exit(1), "{seen:?}");
    }
}

/// A short write: half of the buffer on a core module, one byte on a component's stream (the
/// permit `check-write` gives). `write` says so, and `write_all` writes the rest.
#[test]
fn a_short_write_says_how_much_it_wrote_and_write_all_finishes() {
    let (p1, p2) = both(WasiFault::ShortWrite { nth: 1 });
    assert_eq!(
        p1.stdout,
        clean_but(&[("write 1: ok 10 of 10", "write 1: ok 5 of 10")])
    );
    assert_eq!(p1.out, files("01234abcdefghijABCDEFGHIJ", "klmnopqrst"));
    assert_eq!(
        p2.stdout,
        clean_but(&[("write 1: ok 10 of 10", "write 1: ok 1 of 10")])
    );
    assert_eq!(p2.out, files("0abcdefghijABCDEFGHIJ", "klmnopqrst"));
    // The fourth write is `write_all`'s, which writes the rest after a short write.
    let (p1, p2) = both(WasiFault::ShortWrite { nth: 4 });
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.stdout, CLEAN);
        assert_eq!(
            seen.out,
            files("0123456789abcdefghijABCDEFGHIJ", "klmnopqrst")
        );
    }
}

/// Slow I/O changes nothing but the time: `file_ops` makes 3 opens, 2 reads and 4 writes, and
/// each waits.
#[test]
fn slow_io_delays_every_file_operation_of_both_builds() {
    let (p1, p2) = both(WasiFault::Slow { millis: 40 });
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.stdout, CLEAN);
        assert!(
            seen.duration >= Duration::from_millis(9 * 40),
            "{:?}",
            seen.duration
        );
    }
}

/// A trap at the k-th file operation of any kind: an open, a read or a write. The guest prints
/// nothing more.
#[test]
fn a_trap_stops_both_builds_at_the_same_file_operation() {
    // The k-th operation, and how many of `CLEAN`'s lines come before it.
    for (nth, lines_before) in [(1, 0), (3, 2), (6, 5)] {
        let before: String = CLEAN.split_inclusive('\n').take(lines_before).collect();
        let (p1, p2) = both(WasiFault::Trap { nth });
        for seen in [&p1, &p2] {
            let Outcome::Trap { message, .. } = &seen.outcome else {
                panic!("not a trap: {seen:?}");
            };
            assert!(
                message.contains(&format!("trap injected at file operation {nth}")),
                "{message}"
            );
            assert_eq!(seen.stdout, before, "trap at {nth}");
        }
    }
}

/// A fault counts only file operations: the guest's stdout, a stream too on a component, is
/// never cut short or failed.
#[test]
fn stdout_is_never_a_file_operation() {
    let (p1, p2) = both(WasiFault::ShortWrite { nth: 5 });
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.stdout, CLEAN);
    }
    let (p1, p2) = both(WasiFault::Errno {
        op: WasiOp::Write,
        nth: 5,
        errno: 29,
    });
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.stdout, CLEAN);
    }
}

/// With `pread(2)` and `pwrite(2)` (`fd_pread`/`fd_pwrite`; `descriptor.read`/`write`), a
/// component sees every fault exactly as a core module does: the errno itself, half a write.
#[test]
fn positioned_io_meets_the_same_faults_in_both_builds() {
    let cases = [
        (None, CLEAN.to_string()),
        (
            Some(WasiFault::ShortWrite { nth: 1 }),
            clean_but(&[("write 1: ok 10 of 10", "write 1: ok 5 of 10")]),
        ),
        (
            Some(WasiFault::Errno {
                op: WasiOp::Read,
                nth: 1,
                errno: 51,
            }),
            clean_but(&[
                (
                    "read 1: ok 16 bytes",
                    "read 1: error No space left on device (os error 51)",
                ),
                ("read 2: ok 0 bytes", "read 2: ok 16 bytes"),
            ]),
        ),
        (
            Some(WasiFault::Errno {
                op: WasiOp::Write,
                nth: 2,
                errno: 2,
            }),
            clean_but(&[(
                "write 2: ok 10 of 10 bytes",
                "write 2: error Permission denied (os error 2)",
            )]),
        ),
        (
            Some(WasiFault::Trap { nth: 6 }),
            CLEAN.split_inclusive('\n').take(5).collect(),
        ),
    ];
    for (fault, expected) in cases {
        for guest in [guests::FILE_OPS_P1, guests::FILE_OPS_P2] {
            let seen = run_with(guest, &["positioned"], fault);
            assert_eq!(seen.stdout, expected, "{fault:?} in {guest}");
        }
    }
    let (p1, p2) = (
        run_with(
            guests::FILE_OPS_P1,
            &["positioned"],
            Some(WasiFault::ShortWrite { nth: 1 }),
        ),
        run_with(
            guests::FILE_OPS_P2,
            &["positioned"],
            Some(WasiFault::ShortWrite { nth: 1 }),
        ),
    );
    for seen in [&p1, &p2] {
        assert_eq!(seen.outcome, Outcome::Success, "{seen:?}");
        assert_eq!(seen.out, files("01234abcdefghijABCDEFGHIJ", "klmnopqrst"));
    }
}
