//! End-to-end test support: a fluent builder that sets up a project in a fresh temporary
//! directory, runs the real `hermetic` binary in it with a cleared environment, and compares
//! complete outputs.
//!
//! ```no_run
//! use hermetic_tests::{Test, guests};
//!
//! let out = Test::new()
//!     .file("hermetic.yaml", "name: demo\nsteps:\n  greet:\n    task: hello.wasm\n")
//!     .guest("hello.wasm", guests::HELLO_P1)
//!     .args(["run", "--jobs", "2"])
//!     .expect_status(0)
//!     .expect_stderr_contains("Finished greet")
//!     .run();
//! assert_eq!(out.read(".hermetic/logs/greet/stdout"), "hello from wasm\narg[0]=greet\n");
//! ```
//!
//! # Which `hermetic` binary
//!
//! `env!("CARGO_BIN_EXE_hermetic")` exists only in the package that defines the binary, and cargo
//! never builds the binaries of a dependency. So [`hermetic_bin`] runs
//! `cargo build -p hermetic-runtime --bin hermetic` once per test process (a no-op when it is up
//! to date; the outer `cargo test` no longer holds the build lock while tests run), with the
//! profile and target directory of the running test executable, and uses
//! `<target-dir>/<profile>/hermetic`. Set `HERMETIC_BIN` to test another binary instead.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub mod buildgrid;

/// A small pipeline named `name`: `copy` (copies `src/*.txt` out), `list` (lists what `copy`
/// published, at `/deps`), and an independent `greet`.
pub fn copy_list_greet(name: &str) -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            format!(
                "\
name: {name}
steps:
  copy:
    task: copy.wasm
    inputs: [\"src/*.txt\"]
    outputs: [src/a.txt]
  list:
    task: ls.wasm
    args: [/deps]
    depends_on: [copy]
  greet:
    task: hello.wasm
"
            ),
        )
        .guest("copy.wasm", guests::COPY_IN_OUT_P1)
        .guest("ls.wasm", guests::LS_P1)
        .guest("hello.wasm", guests::HELLO_P1)
        .file("src/a.txt", "alpha\n")
}

/// Paths of the test guests built by `build.rs`: `HELLO_P1`, `HELLO_P2`, ….
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// How long a `hermetic` invocation may run before the test kills it and fails.
const DEFAULT_KILL_AFTER: Duration = Duration::from_secs(120);

/// The `hermetic` binary under test; see the crate documentation.
///
/// # Panics
///
/// If the binary cannot be built or found.
pub fn hermetic_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HERMETIC_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // <target-dir>/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable is not in <target-dir>/<profile>/deps");
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .expect("profile directory name");
        let target_dir = profile_dir.parent().expect("target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "hermetic-runtime",
                "--bin",
                "hermetic",
            ])
            .arg("--profile")
            .arg(if profile == "debug" { "dev" } else { profile })
            .arg("--target-dir")
            .arg(target_dir);
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(status.success(), "{cmd:?} failed: {status}");
        let bin = profile_dir.join(format!("hermetic{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "{} does not exist after {cmd:?}",
            bin.display()
        );
        bin
    })
}

/// `<target-dir>/<profile>/hermetic-tests-cache`: the `HERMETIC_CACHE_DIR` every invocation gets
/// unless the test sets another, so that tests share compiled modules without touching the user's
/// cache.
pub fn shared_cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target-dir>/<profile>");
        profile_dir.join("hermetic-tests-cache")
    })
}

/// A `hermetic` command run in `dir` with the environment every test gives it: nothing from
/// the test's own environment but `PATH` and `HOME`, stdin closed, and `cache` as
/// `HERMETIC_CACHE_DIR` (see [`Test::cache_dir`]: each project has its own result cache, so no
/// test sees another's results, while compiled modules are shared and never in the user's
/// cache). For tests that must spawn `hermetic` and act while it runs; others use [`Test`].
pub fn command(dir: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(hermetic_bin());
    cmd.current_dir(dir).env_clear().stdin(Stdio::null());
    for key in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.env("HERMETIC_CACHE_DIR", cache);
    cmd
}

/// `<project>/../cache`, created on first use, with `compiled/` linked to the shared
/// compiled-module cache.
fn project_cache_dir(root: &Path) -> PathBuf {
    let cache = root.with_file_name("cache");
    let compiled = cache.join("compiled");
    if std::fs::symlink_metadata(&compiled).is_err() {
        let shared = shared_cache_dir().join("compiled");
        std::fs::create_dir_all(&shared).expect("create the shared compiled-module cache");
        std::fs::create_dir_all(&cache).expect("create the project cache");
        std::os::unix::fs::symlink(&shared, &compiled).expect("link the compiled-module cache");
    }
    cache
}

/// One invocation of `hermetic` in a fresh project directory, with its expectations.
#[derive(Debug)]
pub struct Test {
    dir: Arc<tempfile::TempDir>,
    /// `dir`, canonicalized: what `$PROJECT` replaces in outputs (before the raw path).
    root: PathBuf,
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    /// Variables of the environment every test gives `hermetic` that this one takes away.
    env_removed: Vec<OsString>,
    current_dir: PathBuf,
    kill_after: Duration,
    status: Option<i32>,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    /// A fresh, empty project directory.
    ///
    /// # Panics
    ///
    /// If the temporary directory cannot be created.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hermetic-test-")
            .tempdir()
            .expect("create a temporary directory");
        // The project is `<tmp>/project`; its cache is `<tmp>/cache` (see `cache_dir`).
        let root = dir
            .path()
            .canonicalize()
            .expect("canonicalize the tempdir")
            .join("project");
        std::fs::create_dir(&root).expect("create the project directory");
        Self::in_dir(Arc::new(dir), root)
    }

    fn in_dir(dir: Arc<tempfile::TempDir>, root: PathBuf) -> Self {
        Self {
            dir,
            root,
            args: Vec::new(),
            env: BTreeMap::new(),
            env_removed: Vec::new(),
            current_dir: PathBuf::new(),
            kill_after: DEFAULT_KILL_AFTER,
            status: None,
            stdout: None,
            stderr: None,
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
        }
    }

    /// The project directory (canonical), e.g. to pass a host path to a guest.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The project's cache directory (`HERMETIC_CACHE_DIR` unless the test sets another): beside
    /// the project, kept across [`Output::again`], with its `compiled/` shared by every test.
    pub fn cache_dir(&self) -> PathBuf {
        project_cache_dir(&self.root)
    }

    /// `path` inside the project directory.
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.root.join(path)
    }

    /// Writes `contents` to `path` (relative to the project), creating parent directories.
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    #[must_use]
    pub fn file(self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Self {
        let path = self.root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Creates the directory `path` (relative to the project) and its parents.
    ///
    /// # Panics
    ///
    /// If the directory cannot be created.
    #[must_use]
    pub fn dir(self, path: impl AsRef<Path>) -> Self {
        std::fs::create_dir_all(self.root.join(path)).expect("create directory");
        self
    }

    /// Copies a built guest (a path from [`guests`]) to `path` inside the project.
    ///
    /// # Panics
    ///
    /// If the guest cannot be copied.
    #[must_use]
    pub fn guest(self, path: impl AsRef<Path>, guest: &str) -> Self {
        let bytes = std::fs::read(guest).unwrap_or_else(|e| panic!("read guest {guest}: {e}"));
        self.file(path, bytes)
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for `hermetic`. Its environment is otherwise cleared but for
    /// `PATH`, `HOME` and `HERMETIC_CACHE_DIR` (see [`shared_cache_dir`]), so the host's
    /// environment cannot leak into assertions.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    /// Takes `key` out of the environment every test gives `hermetic` (see [`command`]), such
    /// as `HERMETIC_CACHE_DIR`.
    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_removed.push(key.as_ref().to_owned());
        self
    }

    /// Runs `hermetic` in `dir` (relative to the project, created if needed) instead of the
    /// project root.
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = dir.as_ref().to_owned();
        self
    }

    /// Kills `hermetic` and fails the test if it runs longer than this (default 120s).
    #[must_use]
    pub fn kill_after(mut self, limit: Duration) -> Self {
        self.kill_after = limit;
        self
    }

    /// Expects this exit code.
    #[must_use]
    pub fn expect_status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    /// Expects exactly this stdout (after `$PROJECT` and `[ELAPSED]` substitution).
    #[must_use]
    pub fn expect_stdout(mut self, text: impl Into<String>) -> Self {
        self.stdout = Some(text.into());
        self
    }

    /// Expects exactly this stderr (after `$PROJECT` and `[ELAPSED]` substitution).
    #[must_use]
    pub fn expect_stderr(mut self, text: impl Into<String>) -> Self {
        self.stderr = Some(text.into());
        self
    }

    /// Expects stdout to contain this text.
    #[must_use]
    pub fn expect_stdout_contains(mut self, text: impl Into<String>) -> Self {
        self.stdout_contains.push(text.into());
        self
    }

    /// Expects stderr to contain this text.
    #[must_use]
    pub fn expect_stderr_contains(mut self, text: impl Into<String>) -> Self {
        self.stderr_contains.push(text.into());
        self
    }

    /// Runs `hermetic` and checks every expectation, printing the whole invocation and both
    /// outputs on a mismatch.
    ///
    /// # Panics
    ///
    /// If an expectation is not met, or `hermetic` cannot be run or outlives `kill_after`.
    pub fn run(self) -> Output {
        let bin = hermetic_bin();
        let cwd = self.root.join(&self.current_dir);
        std::fs::create_dir_all(&cwd).expect("create the working directory");
        let mut cmd = command(&cwd, &self.cache_dir());
        cmd.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(&self.env);
        for key in &self.env_removed {
            cmd.env_remove(key);
        }

        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stdout_reader = drain(child.stdout.take().expect("stdout pipe"));
        let stderr_reader = drain(child.stderr.take().expect("stderr pipe"));
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for hermetic") {
                break status;
            }
            if start.elapsed() > self.kill_after {
                // Only this child, which this test started.
                let _ = child.kill();
                let _ = child.wait();
                let stdout = stdout_reader.join().expect("stdout reader");
                let stderr = stderr_reader.join().expect("stderr reader");
                panic!(
                    "hermetic {:?} did not finish within {:?}; killed it.\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.args,
                    self.kill_after,
                    abbreviate(&String::from_utf8_lossy(&stdout)),
                    abbreviate(&String::from_utf8_lossy(&stderr)),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = start.elapsed();
        let raw_stdout = stdout_reader.join().expect("stdout reader");
        let raw_stderr = stderr_reader.join().expect("stderr reader");

        let output = Output {
            stdout: self.scrub(&raw_stdout),
            stderr: self.scrub(&raw_stderr),
            raw_stdout,
            raw_stderr,
            status,
            elapsed,
            root: self.root.clone(),
            dir: self.dir,
        };
        let mut failures = String::new();
        if let Some(code) = self.status
            && output.status.code() != Some(code)
        {
            let _ = writeln!(
                failures,
                "exit status: expected {code}, got {}",
                output.status
            );
        }
        for (name, expected, actual) in [
            ("stdout", &self.stdout, &output.stdout),
            ("stderr", &self.stderr, &output.stderr),
        ] {
            if let Some(expected) = expected
                && expected != actual
            {
                let _ = writeln!(
                    failures,
                    "{name} differs:\n--- expected {name} ---\n{}\n--- actual {name} ---\n{}\n--- {name} as a Rust string ---\n{:?}",
                    abbreviate(expected),
                    abbreviate(actual),
                    abbreviate(actual),
                );
            }
        }
        for (name, needles, actual) in [
            ("stdout", &self.stdout_contains, &output.stdout),
            ("stderr", &self.stderr_contains, &output.stderr),
        ] {
            for needle in needles {
                if !actual.contains(needle.as_str()) {
                    let _ = writeln!(failures, "{name} does not contain {needle:?}");
                }
            }
        }
        assert!(
            failures.is_empty(),
            "hermetic {args:?} (in $PROJECT/{cwd}):\n{failures}\n=== full stdout ===\n{stdout}\n=== full stderr ===\n{stderr}\n=== status: {status} ===",
            args = self.args,
            cwd = self.current_dir.display(),
            stdout = abbreviate(&output.stdout),
            stderr = abbreviate(&output.stderr),
            status = output.status,
        );
        output
    }

    /// Lossy UTF-8, with the project path replaced by `$PROJECT` and elapsed times by
    /// `[ELAPSED]`.
    fn scrub(&self, bytes: &[u8]) -> String {
        let text = scrub_path(&String::from_utf8_lossy(bytes), &self.root, self.dir.path());
        scrub_elapsed(&text)
    }
}

/// Replaces the wall-clock durations of progress lines (`in 9ms`, `in 1.25s`) by
/// `in [ELAPSED]`, so that complete outputs can be compared.
pub fn scrub_elapsed(text: &str) -> String {
    fn is_elapsed(token: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(ms) = token.strip_suffix("ms") {
            return digits(ms);
        }
        if let Some(secs) = token.strip_suffix('s')
            && let Some((whole, frac)) = secs.split_once('.')
        {
            return digits(whole) && digits(frac);
        }
        false
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("in ") {
        // `in` must be a word of its own: at the start, or after a space or parenthesis.
        let prev = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let word = prev.is_none_or(|c| c.is_whitespace() || c == '(');
        let (before, after) = rest.split_at(at + "in ".len());
        out.push_str(before);
        rest = after;
        let end = after
            .find(|c: char| c.is_whitespace() || c == ')' || c == ',')
            .unwrap_or(after.len());
        if word && is_elapsed(&after[..end]) {
            out.push_str("[ELAPSED]");
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

fn scrub_path(text: &str, canonical: &Path, raw: &Path) -> String {
    let mut text = text.replace(&*canonical.to_string_lossy(), "$PROJECT");
    if raw != canonical {
        text = text.replace(&*raw.to_string_lossy(), "$PROJECT");
    }
    text
}

/// At most 4000 characters of `text` (for failure messages: a guest may print a gigabyte).
fn abbreviate(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 4000;
    match text.char_indices().nth(MAX) {
        None => text.into(),
        Some((end, _)) => format!("{}… [{} more bytes]", &text[..end], text.len() - end).into(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// What a `hermetic` invocation did. Keeps the project directory alive until dropped.
#[derive(Debug)]
pub struct Output {
    /// Stdout, lossy UTF-8, with the project path replaced by `$PROJECT` and elapsed times by
    /// `[ELAPSED]` (see [`scrub_elapsed`]).
    pub stdout: String,
    /// Stderr, lossy UTF-8, with the project path replaced by `$PROJECT` and elapsed times by
    /// `[ELAPSED]` (see [`scrub_elapsed`]).
    pub stderr: String,
    /// Stdout exactly as written.
    pub raw_stdout: Vec<u8>,
    /// Stderr exactly as written.
    pub raw_stderr: Vec<u8>,
    /// The exit status.
    pub status: ExitStatus,
    /// How long `hermetic` ran.
    pub elapsed: Duration,
    root: PathBuf,
    dir: Arc<tempfile::TempDir>,
}

impl Output {
    /// The project directory (canonical).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `path` inside the project directory.
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.root.join(path)
    }

    /// The project's cache directory; see [`Test::cache_dir`].
    pub fn cache_dir(&self) -> PathBuf {
        project_cache_dir(&self.root)
    }

    /// A new invocation in the same project directory (with nothing else carried over), to run
    /// `hermetic` again on what this run left behind.
    pub fn again(&self) -> Test {
        Test::in_dir(Arc::clone(&self.dir), self.root.clone())
    }

    /// The exit code, or `None` if `hermetic` was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The file at `path` (relative to the project), as UTF-8.
    ///
    /// # Panics
    ///
    /// If it cannot be read or is not UTF-8.
    pub fn read(&self, path: impl AsRef<Path>) -> String {
        let path = self.root.join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The file at `path` (relative to the project).
    ///
    /// # Panics
    ///
    /// If it cannot be read.
    pub fn read_bytes(&self, path: impl AsRef<Path>) -> Vec<u8> {
        let path = self.root.join(path);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Whether anything (even a dangling symlink) exists at `path` (relative to the project).
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        self.root.join(path).symlink_metadata().is_ok()
    }

    /// The tree under `path` (relative to the project); see [`tree`].
    pub fn tree(&self, path: impl AsRef<Path>) -> String {
        tree(&self.root.join(path))
    }

    /// Each stdout line parsed as JSON (for `--json`).
    ///
    /// # Panics
    ///
    /// If a line is not JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }
}

/// A sorted listing of everything under `dir`, one entry per line, never following symlinks:
/// `name/` for a directory (its entries follow, indented), `name (N bytes)` for a file,
/// `name -> target` for a symlink. `<missing>` if `dir` does not exist.
pub fn tree(dir: &Path) -> String {
    fn walk(dir: &Path, depth: usize, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
            .map(|e| e.expect("read_dir entry"))
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let indent = "  ".repeat(depth);
            let meta = path.symlink_metadata().expect("symlink_metadata");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("read_link");
                let _ = writeln!(out, "{indent}{name} -> {}", target.display());
            } else if meta.is_dir() {
                let _ = writeln!(out, "{indent}{name}/");
                walk(&path, depth + 1, out);
            } else {
                let _ = writeln!(out, "{indent}{name} ({} bytes)", meta.len());
            }
        }
    }
    if dir.symlink_metadata().is_err() {
        return "<missing>\n".to_owned();
    }
    let mut out = String::new();
    walk(dir, 0, &mut out);
    out
}

/// Bytes of every file under `dir` (recursively, never following symlinks), keyed by relative
/// path; symlinks map to `-> target`. For byte-for-byte comparisons of whole output trees.
///
/// # Panics
///
/// If `dir` cannot be read.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        {
            let path = entry.expect("read_dir entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            let meta = path.symlink_metadata().expect("symlink_metadata");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("read_link");
                out.insert(rel, format!("-> {}", target.display()).into_bytes());
            } else if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `clock_random`'s stdout with its random values (`random: <32 hex>`, `hashmap seed hash:
/// <16 hex>`) replaced by `<random>`, after checking their form. The values are deterministic but
/// derive from the module's digest, so they change whenever the guest is rebuilt differently
/// (another compiler); tests compare them across runs instead of spelling them out.
///
/// # Panics
///
/// If a random value is malformed or all zeros.
pub fn mask_random(stdout: &str) -> String {
    let mut out = String::new();
    for line in stdout.lines() {
        let masked = [("random: ", 32), ("hashmap seed hash: ", 16)]
            .into_iter()
            .find_map(|(prefix, len)| {
                let value = line.strip_prefix(prefix)?;
                assert!(
                    value.len() == len
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                        && value.bytes().any(|b| b != b'0'),
                    "malformed random value in {line:?}"
                );
                Some(format!("{prefix}<random>"))
            });
        out.push_str(masked.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrub_elapsed;

    #[test]
    fn elapsed_times_are_scrubbed() {
        assert_eq!(
            scrub_elapsed("  Finished a in 9ms\n      Done 1 succeeded in 1.25s\nin 3ms in 5s"),
            "  Finished a in [ELAPSED]\n      Done 1 succeeded in [ELAPSED]\nin [ELAPSED] in 5s"
        );
        assert_eq!(scrub_elapsed("x (in 12ms)"), "x (in [ELAPSED])");
        assert_eq!(scrub_elapsed("sleep in 10ms2"), "sleep in 10ms2");
        assert_eq!(scrub_elapsed("begin 10ms"), "begin 10ms");
    }
}
