//! A test harness for task authors: from a `#[test]`, build a task crate the way `hermetic run`
//! does and run it in the real sandbox with given inputs, parameters and limits, then assert on
//! its outputs and outcome.
//!
//! ```no_run
//! use hermetic_runtime::testing::TaskTest;
//!
//! #[test]
//! fn upper_cases_its_input() {
//!     let run = TaskTest::task("upper")
//!         .input("greeting.txt", "hello\n")
//!         .params(serde_json::json!({ "suffix": "!" }))
//!         .run();
//!     run.assert_success();
//!     assert_eq!(run.output_str("greeting.txt"), "HELLO!\n");
//! }
//! ```
//!
//! [`TaskTest::task`] finds `tasks/<name>/` from the current directory up (a crate's tests run
//! in its own directory), builds it for `wasm32-wasip1` with hermetic's own task builder (locked,
//! reproducible, with the SDK's host calls) into `<target dir>/hermetic-task-tests/`, and reuses
//! the module while its sources are unchanged. The guest sees exactly what a step sees: its
//! inputs in `/in` (read-only), its dependencies' outputs in `/deps/<name>` (read-only), an
//! empty `/out` and `/tmp`, its `params` as `HERMETIC_PARAMS`, the virtual clock and seeded
//! randomness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::sandbox::{
    CaptureTo, HostCallSink, Invocation, Limits, LogLevel, Mount, Outcome, Sandbox, UnknownImports,
    clock,
};
use crate::taskbuild::TaskBuilder;
use crate::workflow::PARAMS_ENV;

/// One run of a task, being set up.
#[derive(Debug, Clone)]
pub struct TaskTest {
    name: String,
    inputs: Vec<(String, Vec<u8>)>,
    deps: Vec<(String, String, Vec<u8>)>,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    limits: Limits,
}

/// How a run of a task ended, and what it left.
#[derive(Debug, Clone)]
pub struct TaskRun {
    /// How the guest ended.
    pub outcome: Outcome,
    /// Its stdout and stderr.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Every file it left in `/out`, by relative path (`/`-separated), sorted.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// Fuel it used.
    pub fuel_used: u64,
    /// Its progress reports, `(done, total)`, in order, unthrottled.
    pub progress: Vec<(u64, Option<u64>)>,
    /// Its log lines, in order.
    pub logs: Vec<(LogLevel, String)>,
}

impl TaskTest {
    /// A run of the task crate `tasks/<name>/`.
    pub fn task(name: &str) -> Self {
        Self {
            name: name.to_string(),
            inputs: Vec::new(),
            deps: Vec::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            limits: Limits::default(),
        }
    }

    /// Gives the task an input file at `path` (relative; it appears as `/in/<path>`).
    pub fn input(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.inputs
            .push((path.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// Gives the task an output of dependency `dep` (it appears as `/deps/<dep>/<path>`).
    pub fn dep_output(mut self, dep: &str, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.deps.push((
            dep.to_string(),
            path.to_string(),
            contents.as_ref().to_vec(),
        ));
        self
    }

    /// Adds arguments (after `argv[0]`, which is the task's name).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the task's parameters, as a step's `params:` would.
    pub fn params(mut self, params: serde_json::Value) -> Self {
        self.env.insert(PARAMS_ENV.to_string(), params.to_string());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Limits the instructions the task may execute.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.limits.fuel = fuel;
        self
    }

    /// Limits each linear memory of the task, in bytes.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.limits.memory = bytes;
        self
    }

    /// Limits the task's wall time.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Builds the task (or reuses its module) and runs it.
    ///
    /// # Panics
    ///
    /// If the task cannot be found or built, or the sandbox cannot run it: those are problems
    /// of the test, not outcomes of the task. How the task itself ended is in the result.
    pub fn run(self) -> TaskRun {
        let wasm = built(&self.name);
        let sandbox = sandbox();
        let program = sandbox
            .load_file(&wasm, UnknownImports::Reject)
            .unwrap_or_else(|e| panic!("task `{}`: `{}` {e}", self.name, wasm.display()));
        let dir = tempfile::Builder::new()
            .prefix("hermetic-task-test-")
            .tempdir()
            .expect("create a temporary directory");
        let sub = |name: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(&path).expect("create a mount directory");
            path
        };
        let (in_dir, deps_dir, out_dir, tmp_dir) = (sub("in"), sub("deps"), sub("out"), sub("tmp"));
        for (path, contents) in &self.inputs {
            write(&in_dir.join(path), contents);
        }
        for (dep, path, contents) in &self.deps {
            write(&deps_dir.join(dep).join(path), contents);
        }
        let calls = Arc::new(Recorded::default());
        let mount = |host: &Path, guest: &str, writable| Mount {
            host: host.to_path_buf(),
            guest: guest.into(),
            writable,
        };
        let mut args = vec![self.name.clone()];
        args.extend(self.args);
        let invocation = Invocation {
            args,
            env: self.env.into_iter().collect(),
            mounts: vec![
                mount(&in_dir, "/in", false),
                mount(&deps_dir, "/deps", false),
                mount(&out_dir, "/out", true),
                mount(&tmp_dir, "/tmp", true),
            ],
            limits: self.limits,
            seed: *blake3::hash(self.name.as_bytes()).as_bytes(),
            clock_epoch: Duration::from_secs(clock::DEFAULT_EPOCH_SECS),
            clock_jump: None,
            stdout: CaptureTo::Memory,
            stderr: CaptureTo::Memory,
            heartbeat: None,
            host_calls: Some(calls.clone()),
            wasi_fault: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("start a runtime");
        let report = runtime
            .block_on(sandbox.run(&program, &invocation))
            .unwrap_or_else(|e| panic!("task `{}`: {e}", self.name));
        let recorded = std::mem::take(&mut *calls.lock());
        TaskRun {
            outcome: report.outcome,
            stdout: report.stdout,
            stderr: report.stderr,
            outputs: read_tree(&out_dir),
            fuel_used: report.fuel_used,
            progress: recorded.progress,
            logs: recorded.logs,
        }
    }
}

impl TaskRun {
    /// Panics, showing stderr, unless the task succeeded.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.outcome.is_success(),
            "the task did not succeed: {}\n--- stderr ---\n{}",
            self.outcome,
            String::from_utf8_lossy(&self.stderr)
        );
        self
    }

    /// Panics unless the task failed with exit code `code`.
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert!(
            matches!(self.outcome, Outcome::Exit(c) if c == code),
            "expected exit code {code}, got: {}\n--- stderr ---\n{}",
            self.outcome,
            String::from_utf8_lossy(&self.stderr)
        );
        self
    }

    /// The output file at `path`.
    ///
    /// # Panics
    ///
    /// If the task left no such file; the message lists what it left.
    pub fn output(&self, path: &str) -> &[u8] {
        self.outputs.get(path).unwrap_or_else(|| {
            panic!(
                "no output `{path}`; the task left: {:?}",
                self.outputs.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The output file at `path`, as UTF-8.
    pub fn output_str(&self, path: &str) -> &str {
        std::str::from_utf8(self.output(path))
            .unwrap_or_else(|e| panic!("output `{path}` is not UTF-8: {e}"))
    }

    /// Stderr, lossily decoded.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The progress and log calls of one run, unthrottled.
#[derive(Debug, Default)]
struct Recorded {
    inner: Mutex<Calls>,
}

#[derive(Debug, Default)]
struct Calls {
    progress: Vec<(u64, Option<u64>)>,
    logs: Vec<(LogLevel, String)>,
}

impl Recorded {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HostCallSink for Recorded {
    fn progress(&self, done: u64, total: Option<u64>) {
        self.lock().progress.push((done, total));
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.lock().logs.push((level, message.to_string()));
    }
}

/// The sandbox every test of the process shares.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(8, Some(&state_dir().join("compiled")))
            .unwrap_or_else(|e| panic!("cannot create the sandbox: {e}"))
    })
}

/// Where task test builds go: `<target dir>/hermetic-task-tests`, beside the test binary.
fn state_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary is in <target>/<profile>/deps");
    target.join("hermetic-task-tests")
}

/// The module of task `name`, built once per process.
fn built(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let cache = BUILT.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(wasm) = cache.get(name) {
        return wasm.clone();
    }
    let builder = TaskBuilder::new(&state_dir());
    let here = std::env::current_dir().expect("the current directory");
    let krate = builder
        .locate(&here, name)
        .unwrap_or_else(|e| panic!("task `{name}`: {e}"));
    let built = builder
        .build(&krate)
        .unwrap_or_else(|e| panic!("task `{name}` does not build: {e}"));
    cache.insert(name.to_string(), built.wasm.clone());
    built.wasm
}

fn write(path: &Path, contents: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", parent.display()));
    }
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write `{}`: {e}", path.display()));
}

/// Every regular file under `dir`, by `/`-separated relative path. Symlinks are not followed.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap_or(e.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("cannot read `{}`: {err}", e.path().display()));
            (rel, bytes)
        })
        .collect()
}
