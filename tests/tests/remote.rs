//! Scaling out on BuildGrid, a real REAPI server started for each test: a cache shared by two
//! machines (separate local caches), corruption on the server never served, a dead server
//! costing one warning, a read-only remote that never uploads, and remote execution of the
//! example pipeline on two `hermetic worker` bots, byte-identical to a local run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hermetic_tests::buildgrid::{Mode, Server};
use hermetic_tests::{Test, guests, hermetic_bin};

/// A three-step project: a copy of the inputs, a listing of it, and a greeting.
fn project() -> Test {
    hermetic_tests::copy_list_greet("shared")
}

const RAN: &str = "   Running copy\n  Finished copy in [ELAPSED]\n   Running list\n  Finished list in [ELAPSED]\n   Running greet\n  Finished greet in [ELAPSED]\n      Done 3 succeeded, 0 failed, 0 skipped in [ELAPSED]\n";
const CACHED: &str = "    Cached copy\n    Cached list\n    Cached greet\n      Done 3 succeeded (3 cached), 0 failed, 0 skipped in [ELAPSED]\n";

#[test]
fn two_machines_share_their_hits_through_buildgrid() {
    let server = Server::start();
    // Machine A runs everything and shares it.
    let a = project()
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .expect_status(0)
        .expect_stderr(RAN)
        .run();
    assert!(server.cas_file_count() > 0, "A uploaded its results");
    // Machine B, with an empty local cache, runs nothing.
    let b = project()
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .expect_status(0)
        .expect_stderr(CACHED)
        .run();
    assert_eq!(b.tree(".hermetic/out"), a.tree(".hermetic/out"));
    assert_eq!(
        b.read(".hermetic/out/copy/src/a.txt"),
        a.read(".hermetic/out/copy/src/a.txt")
    );
    // B's local cache was filled on the way: without the server, it still hits.
    b.again()
        .args(["run", "--jobs", "1"])
        .expect_status(0)
        .expect_stderr(CACHED)
        .run();
}

#[test]
fn a_blob_corrupted_on_the_server_is_never_served() {
    let server = Server::start();
    let a = project()
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .expect_status(0)
        .run();
    // Flip a byte in the middle of every blob the server holds.
    for file in server.cas_files() {
        let mut bytes = std::fs::read(&file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&file, bytes).unwrap();
    }
    let b = project()
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .expect_status(0)
        .run();
    // Nothing came from the damaged server: every step ran, with the right bytes. (Whether
    // a lookup warns depends on which blob BuildGrid itself trips over first: with its stored
    // `Action` damaged it answers NOT_FOUND; `cache/tests/remote.rs` checks the warnings.)
    assert_eq!(steps(&b.stderr), RAN);
    assert_eq!(b.tree(".hermetic/out"), a.tree(".hermetic/out"));
    assert_eq!(b.read(".hermetic/out/copy/src/a.txt"), "alpha\n");
}

#[test]
fn with_the_server_down_the_run_goes_on_locally_with_one_warning() {
    let server = Server::start();
    let url = server.url.clone();
    server.stop();
    let out = project()
        .args(["run", "--jobs", "1", "--remote-cache", &url])
        .expect_status(0)
        .run();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Warning") || l.contains("WARN"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].starts_with("   Warning the remote cache is not used in this run: "),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains(&url), "{}", warnings[0]);
    assert_eq!(steps(&out.stderr), RAN);
}

#[test]
fn a_read_only_remote_cache_uploads_nothing() {
    let server = Server::start();
    let read_only = || {
        project().args([
            "run",
            "--jobs",
            "1",
            "--remote-cache",
            &server.url,
            "--remote-cache-readonly",
        ])
    };
    read_only().expect_status(0).expect_stderr(RAN).run();
    assert_eq!(server.cas_file_count(), 0, "nothing was uploaded");
    // It still reads: once a trusted run shared the results, a read-only run hits.
    project()
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .expect_status(0)
        .run();
    let shared = server.cas_file_count();
    read_only().expect_status(0).expect_stderr(CACHED).run();
    assert_eq!(server.cas_file_count(), shared);
}

/// A `hermetic worker` process, killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(url: &str, id: &str, jobs: usize, dir: &Path) -> Self {
        let log = dir.join(format!("{id}.log"));
        let child = Command::new(hermetic_bin())
            .args(["-v", "worker", "--server", url, "--id", id, "--jobs"])
            .arg(jobs.to_string())
            .env("HERMETIC_CACHE_DIR", dir.join(format!("{id}-cache")))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// The steps this worker ran (its debug log names each step as it starts).
    fn ran(&self) -> usize {
        self.lines(|l| l.contains("running"))
    }

    /// The leases it reported completed, on its status lines.
    fn completed(&self) -> usize {
        self.lines(|l| l.starts_with("    Worker lease ") && l.ends_with(" completed"))
    }

    fn lines(&self, wanted: impl Fn(&str) -> bool) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| wanted(l))
            .count()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_example_pipeline_runs_remotely_on_two_workers_with_the_same_bytes() {
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/pipeline/hermetic.yaml")
        .canonicalize()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let run = |out: &str, extra: &[&str]| {
        let output =
            hermetic_tests::command(scratch.path(), &scratch.path().join(out).join("cache"))
                .arg("run")
                .arg(&pipeline)
                .arg("--out-dir")
                .arg(scratch.path().join(out).join("out"))
                .args(extra)
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    run("local", &[]);
    let server = Server::start_mode(Mode::Exec);
    let same_bytes = |out: &str| {
        let remote = scratch.path().join(out).join("out");
        let local = scratch.path().join("local/out");
        assert_eq!(hermetic_tests::tree(&remote), hermetic_tests::tree(&local));
        for file in walk(&local) {
            let rel = file.strip_prefix(&local).unwrap();
            assert_eq!(
                std::fs::read(remote.join(rel)).unwrap(),
                std::fs::read(&file).unwrap(),
                "{}",
                rel.display()
            );
        }
    };
    // Two workers of one step each: the pipeline's parallel steps spread over both.
    let workers = [
        Worker::start(&server.url, "bot-a", 1, scratch.path()),
        Worker::start(&server.url, "bot-b", 1, scratch.path()),
    ];
    let stderr = run("remote", &["--remote-exec", &server.url, "--jobs", "2"]);
    assert!(
        stderr.contains("Done 7 succeeded, 0 failed, 0 skipped"),
        "{stderr}"
    );
    same_bytes("remote");
    let ran: Vec<usize> = workers.iter().map(Worker::ran).collect();
    assert_eq!(
        ran.iter().sum::<usize>(),
        7,
        "every step ran on a worker: {ran:?}"
    );
    assert!(
        ran.iter().all(|&n| n > 0),
        "both workers took steps: {ran:?}"
    );
    let completed: Vec<usize> = workers.iter().map(Worker::completed).collect();
    assert_eq!(completed, ran, "each worker says so on its status lines");
    drop(workers);
    // One worker taking two steps at once.
    let worker = Worker::start(&server.url, "bot-c", 2, scratch.path());
    run("remote-2", &["--remote-exec", &server.url, "--jobs", "2"]);
    same_bytes("remote-2");
    assert_eq!(worker.ran(), 7);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Stderr without the warnings: the steps' lines.
fn steps(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.contains("WARN") && !l.contains("Warning"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A server that dies during the run: the step being stored when it goes is the one that
/// notices, with one warning; every later lookup and upload is skipped at once, quietly, and
/// the run succeeds from the local cache and the sandbox.
#[test]
fn a_server_that_dies_mid_run_costs_one_warning() {
    let server = Server::start();
    let project = Test::new()
        .file(
            "hermetic.yaml",
            "name: dying\nsteps:\n  slow:\n    task: spin.wasm\n    args: [\"3000000000\"]\n  \
             after:\n    task: hello.wasm\n    depends_on: [slow]\n  last:\n    task: hello.wasm\n    \
             args: [again]\n    depends_on: [after]\n",
        )
        .guest("spin.wasm", guests::SPIN_P1)
        .guest("hello.wasm", guests::HELLO_P1);
    let child = hermetic_tests::command(project.path(), &project.cache_dir())
        .args(["run", "--jobs", "1", "--remote-cache", &server.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once `slow` runs (its lookup asked the server), the server goes.
    let runs = project.path().join(".hermetic/runs");
    let started = std::time::Instant::now();
    loop {
        let journal = std::fs::read_dir(&runs)
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("events.jsonl")).ok())
            .collect::<String>();
        if journal.contains("\"step_started\"") {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "slow never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0]
            .contains("the remote cache is unreachable; it will not be asked again in this run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Done 3 succeeded, 0 failed, 0 skipped"),
        "{stderr}"
    );
}

/// With no worker running, a remote step waits in BuildGrid's queue; it does not count as alive
/// there, so the usual stuck warning says it has been silent.
#[test]
fn a_remote_step_no_worker_takes_is_reported_stuck() {
    use std::io::{BufRead, BufReader};

    let server = Server::start_mode(Mode::Exec);
    let project = Test::new()
        .file(
            "hermetic.yaml",
            "name: queued\nsteps:\n  greet:\n    task: hello.wasm\n    stuck_after: 1s\n",
        )
        .guest("hello.wasm", guests::HELLO_P1);
    let mut child = hermetic_tests::command(project.path(), &project.cache_dir())
        .args(["run", "--remote-exec", &server.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let stuck = line.contains("greet has shown no output or heartbeat for");
        seen.push(line);
        if stuck {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.last()
            .is_some_and(|l| l.starts_with("   Warning greet has shown no output")),
        "{seen:#?}"
    );
    // Once a worker is there, the step runs.
    let _worker = Worker::start(&server.url, "late", 1, project.path());
    let out = project
        .args(["run", "--remote-exec", &server.url])
        .expect_status(0)
        .run();
    assert!(out.stderr.contains("Finished greet"), "{}", out.stderr);
}
