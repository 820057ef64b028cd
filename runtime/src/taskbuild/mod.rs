//! Building `task: NAME` into a wasm module.
//!
//! A step's `task: concat` names a crate `tasks/concat/` in the workflow file's directory or its
//! nearest ancestor that has one ([`TaskBuilder::locate`]). [`TaskBuilder::build`] compiles it
//! with
//!
//! ```text
//! cargo build --release --locked --target wasm32-wasip1 -p <name> --target-dir <state_dir>/target
//! ```
//!
//! run from the crate's workspace root, and reuses the result while its sources are unchanged.
//!
//! # Where files go
//!
//! All under the project's state directory `.hermetic/` (beside the workflow file):
//!
//! | path | what |
//! |---|---|
//! | `target/` | cargo's target dir for task builds (see below) |
//! | `tasks/<name>.json` | the build record: files the module depends on, with digests |
//! | `tasks/<name>.<digest prefix>.wasm` | the module, content-addressed, never rewritten in place |
//! | `tasks/<name>.lock` | serialises builds of one task between hermetic processes |
//!
//! The target dir is never the user's own: `cargo test` holds that one's lock while tests run,
//! and tests run hermetic.
//!
//! # Reproducibility
//!
//! The same sources give a byte-identical module wherever the checkout is and whatever the target
//! dir. The build's environment is controlled:
//!
//! * `CARGO_ENCODED_RUSTFLAGS` is set to exactly
//!   `--remap-path-prefix=<workspace root>=/hermetic/src`,
//!   `--remap-path-prefix=<target dir>=/hermetic/target` and
//!   `--remap-path-prefix=<cargo home>=/cargo` (cargo home as cargo computes it: `$CARGO_HOME`,
//!   else `~/.cargo`). Because that variable takes precedence over every other source of flags,
//!   **the user's `RUSTFLAGS`, `build.rustflags` and `target.*.rustflags` are not used** for task
//!   builds; those variables are also removed from cargo's environment.
//! * Other environment overrides of the build are removed: `CARGO_TARGET_DIR`,
//!   `CARGO_BUILD_*` target/dir/wrapper settings, `CARGO_PROFILE_*`,
//!   `CARGO_TARGET_WASM32_WASIP1_*`, `RUSTC_WRAPPER` and `RUSTC_WORKSPACE_WRAPPER`. The
//!   workspace's own `Cargo.toml` profiles and `.cargo/config.toml` still apply (they are part
//!   of the sources).
//! * `CARGO_INCREMENTAL=0` and a fixed `SOURCE_DATE_EPOCH`.
//!
//! `-C codegen-units=1` is not needed: rustc's partitioning is deterministic, and the unit test
//! `builds_reproducibly_reuses_and_rebuilds` checks byte-identity from two checkout paths and
//! two target dirs.
//!
//! # Reuse
//!
//! After a build, cargo's dep-info (`<target>/wasm32-wasip1/release/<name>.d`) lists every source
//! file the module depends on. Those, plus the crate's and each local package's `Cargo.toml`, the
//! workspace's `Cargo.toml`, `Cargo.lock`, `.cargo/config.toml` and `rust-toolchain(.toml)`, are
//! recorded with their blake3 digests, along with `rustc -vV`. The next build reuses the module
//! without running cargo if every recorded file still has the same contents (timestamps do not
//! matter), the toolchain is the same, and the module file still has its recorded digest.
//!
//! The source digest is blake3 over the sorted `(portable path, content digest)` list; paths are
//! relative to the workspace root (or `$CARGO_HOME/…`, `$TARGET/…`), never absolute, so it can
//! go in lockfiles and cache keys. Sources are hashed just after cargo returns: an edit made
//! *during* a build may be recorded against the module built before it.
//!
//! # Concurrency
//!
//! Two hermetic processes building the same task take turns on `tasks/<name>.lock`; the second
//! then finds the first one's record fresh and reuses its module. Cargo's own lock covers the
//! target dir. Records and modules are written to a temporary file and renamed into place.

mod depinfo;
mod error;
mod record;

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

pub use error::TaskBuildError;
use record::{Expected, Record, Roots};

/// The target triple tasks are compiled for.
pub const TARGET_TRIPLE: &str = "wasm32-wasip1";

/// Fixed `SOURCE_DATE_EPOCH` for task builds (1980-01-01, the earliest time zip can store).
const SOURCE_DATE_EPOCH: &str = "315532800";

/// Describes how modules are built. Part of every record and source digest: changing the build
/// settings above must change this string, so that old modules are not reused.
const BUILD_SCHEME: &str = "hermetic-taskbuild-v1: cargo build --release --locked \
    --target wasm32-wasip1; remap workspace=/hermetic/src target=/hermetic/target \
    cargo-home=/cargo; CARGO_INCREMENTAL=0; SOURCE_DATE_EPOCH=315532800";

/// Builds task crates into wasm modules, keeping builds and records under a state directory.
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    state_dir: PathBuf,
    jobs: Option<usize>,
    cargo: OsString,
    rustc: OsString,
}

/// A task crate found by [`TaskBuilder::locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCrate {
    /// The task name, which is also the package and binary name.
    pub name: String,
    /// `.../tasks/<name>`.
    pub dir: PathBuf,
    /// `.../tasks/<name>/Cargo.toml`.
    pub manifest: PathBuf,
    /// The root of the cargo workspace the crate belongs to (the crate's own directory if it
    /// is not in a workspace).
    pub workspace_root: PathBuf,
}

/// The result of [`TaskBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTask {
    /// The module: `<state_dir>/tasks/<name>.<digest prefix>.wasm`.
    pub wasm: PathBuf,
    /// blake3 hex of the module's bytes.
    pub module_digest: String,
    /// blake3 hex over the sorted (relative path, content digest) list of the sources, plus
    /// the toolchain release and the build settings.
    pub source_digest: String,
    /// `true` if the module was reused without running cargo.
    pub reused: bool,
    /// The compiler that built it: the first line of `rustc -vV`.
    pub toolchain: String,
}

impl TaskBuilder {
    /// A builder keeping its files under `state_dir`, the project's `.hermetic/` directory
    /// (beside the workflow file). Nothing is created until [`TaskBuilder::build`].
    pub fn new(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_path_buf(),
            jobs: None,
            cargo: OsString::from("cargo"),
            rustc: env::var_os("RUSTC")
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| OsString::from("rustc")),
        }
    }

    /// Limits cargo to `jobs` parallel rustc processes (`cargo build -j`); `None` is cargo's
    /// default.
    pub fn with_jobs(mut self, jobs: Option<usize>) -> Self {
        self.jobs = jobs;
        self
    }

    /// Uses `cargo` instead of the `cargo` found on `PATH`.
    pub fn with_cargo(mut self, cargo: impl Into<OsString>) -> Self {
        self.cargo = cargo.into();
        self
    }

    /// The state directory given to [`TaskBuilder::new`].
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Cargo's target dir for task builds: `<state_dir>/target`.
    pub fn target_dir(&self) -> PathBuf {
        self.state_dir.join("target")
    }

    /// Where records and modules go: `<state_dir>/tasks`.
    pub fn records_dir(&self) -> PathBuf {
        self.state_dir.join("tasks")
    }

    /// Finds `tasks/<name>/Cargo.toml` in `workflow_dir` or its nearest ancestor that has it,
    /// and the root of the cargo workspace it belongs to.
    pub fn locate(&self, workflow_dir: &Path, name: &str) -> Result<TaskCrate, TaskBuildError> {
        validate_name(name)?;
        let start = fs::canonicalize(workflow_dir)
            .map_err(TaskBuildError::io_at("resolve", workflow_dir))?;
        let mut searched = Vec::new();
        for dir in start.ancestors() {
            let tasks = dir.join("tasks");
            let crate_dir = tasks.join(name);
            let manifest = crate_dir.join("Cargo.toml");
            if manifest.is_file() {
                let workspace_root = workspace_root(&crate_dir, &manifest)?;
                return Ok(TaskCrate {
                    name: name.to_owned(),
                    dir: crate_dir,
                    manifest,
                    workspace_root,
                });
            }
            searched.push(tasks);
        }
        let available = available_tasks(&searched);
        let suggestion = suggest(name, &available);
        Err(TaskBuildError::NotFound {
            name: name.to_owned(),
            searched,
            available,
            suggestion,
        })
    }

    /// Builds the module, or reuses the previous build if its sources are unchanged.
    pub fn build(&self, krate: &TaskCrate) -> Result<BuiltTask, TaskBuildError> {
        let name = krate.name.as_str();
        validate_name(name)?;
        let records_dir = prepare_dir(&self.records_dir())?;
        let target_dir = prepare_dir(&self.target_dir())?;
        let _lock = lock_task(&records_dir, name)?;

        let roots = Roots {
            workspace: krate.workspace_root.clone(),
            target: target_dir,
            cargo_home: cargo_home_paths(),
        };
        let rustc = self.rustc_version(&krate.workspace_root)?;
        let manifest_key = roots.key(&krate.manifest)?;
        let record_path = records_dir.join(format!("{name}.json"));
        let expected = Expected {
            name,
            scheme: BUILD_SCHEME,
            rustc: &rustc,
            manifest_key: &manifest_key,
        };
        match record::load(&record_path)? {
            Some(old) => match record::check_fresh(&old, &expected, &roots, &records_dir) {
                Ok(()) => {
                    tracing::info!(
                        task = name,
                        module_digest = %old.module_digest,
                        "reusing task module: sources unchanged"
                    );
                    return Ok(BuiltTask {
                        wasm: records_dir.join(&old.wasm),
                        module_digest: old.module_digest,
                        source_digest: old.source_digest,
                        reused: true,
                        toolchain: toolchain_line(&rustc),
                    });
                }
                Err(reason) => {
                    tracing::info!(task = name, %reason, "rebuilding task module");
                }
            },
            None => tracing::info!(task = name, "building task module"),
        }

        let started = Instant::now();
        let (built, dep_info) = self.run_cargo(krate, &roots)?;
        let dep_text =
            fs::read_to_string(&dep_info).map_err(TaskBuildError::io_at("read", &dep_info))?;
        let deps = depinfo::parse(&dep_text);
        let fixed = record::fixed_files(&krate.manifest, &krate.workspace_root);
        let files = record::collect_entries(&deps, &fixed, &roots)?;

        let bytes = fs::read(&built).map_err(TaskBuildError::io_at("read", &built))?;
        let module_digest = blake3::hash(&bytes).to_hex().to_string();
        let wasm_name = format!("{name}.{}.wasm", &module_digest[..16]);
        let wasm = records_dir.join(&wasm_name);
        if record::digest_path(&wasm)?.as_deref() != Some(module_digest.as_str()) {
            write_atomic(&wasm, &bytes)?;
        }
        let source_digest = record::source_digest(name, BUILD_SCHEME, &rustc, &files);
        let toolchain = toolchain_line(&rustc);
        let new_record = Record {
            version: record::RECORD_VERSION,
            name: name.to_owned(),
            scheme: BUILD_SCHEME.to_owned(),
            rustc,
            source_digest: source_digest.clone(),
            module_digest: module_digest.clone(),
            wasm: wasm_name.clone(),
            files,
        };
        let json = serde_json::to_vec_pretty(&new_record)
            .map_err(|e| TaskBuildError::io("serialise", &record_path, io::Error::other(e)))?;
        write_atomic(&record_path, &json)?;
        prune_old_modules(&records_dir, name, &wasm_name);
        tracing::info!(
            task = name,
            %module_digest,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built task module"
        );
        Ok(BuiltTask {
            wasm,
            module_digest,
            source_digest,
            reused: false,
            toolchain,
        })
    }

    /// `rustc -vV`, run in the workspace root so that rustup picks the workspace's toolchain.
    fn rustc_version(&self, workspace_root: &Path) -> Result<String, TaskBuildError> {
        let output = build_command(&self.rustc, workspace_root)
            .arg("-vV")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| spawn_error(&self.rustc, e))?;
        if !output.status.success() {
            return Err(TaskBuildError::ToolFailed {
                command: format!("{} -vV", self.rustc.to_string_lossy()),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs cargo; returns the built `.wasm` and its dep-info file.
    fn run_cargo(
        &self,
        krate: &TaskCrate,
        roots: &Roots,
    ) -> Result<(PathBuf, PathBuf), TaskBuildError> {
        let name = krate.name.as_str();
        let ws = &krate.workspace_root;
        if !ws.join("Cargo.lock").is_file() {
            return Err(TaskBuildError::MissingLockfile {
                name: name.to_owned(),
                workspace_root: ws.clone(),
            });
        }
        let mut cmd = build_command(&self.cargo, ws);
        cmd.args(["build", "--release", "--locked", "--target", TARGET_TRIPLE])
            .args(["-p", name])
            .arg("--target-dir")
            .arg(&roots.target)
            .args(["--color", "never"]);
        if let Some(jobs) = self.jobs {
            cmd.arg("-j").arg(jobs.to_string());
        }
        cmd.env("CARGO_ENCODED_RUSTFLAGS", encoded_rustflags(roots)?)
            .env("CARGO_INCREMENTAL", "0")
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
            // The SDK then reports progress and logs through the `hermetic_v1` host calls.
            .env("HERMETIC_SDK_HOST_CALLS", "1")
            // A configured `build.build-dir` would share intermediate artifacts (and their
            // lock) with the user's builds; keep everything in our target dir.
            .env("CARGO_BUILD_BUILD_DIR", &roots.target)
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_TERM_PROGRESS_WHEN", "never")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // A build takes seconds to minutes: say so, in the style of the run's status lines.
        eprintln!("{:>10} task `{name}` ({TARGET_TRIPLE})", "Building");
        tracing::debug!(task = name, command = ?cmd, "running cargo");
        let output = cmd.output().map_err(|e| spawn_error(&self.cargo, e))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(classify_failure(krate, output.status, &stderr));
        }
        tracing::debug!(task = name, stderr = %stderr.trim(), "cargo finished");
        let release = roots.target.join(TARGET_TRIPLE).join("release");
        let wasm = release.join(format!("{name}.wasm"));
        if !wasm.is_file() {
            return Err(TaskBuildError::MissingArtifact {
                name: name.to_owned(),
                path: wasm,
            });
        }
        Ok((wasm, release.join(format!("{name}.d"))))
    }
}

/// Task names are crate directory names: ASCII letters, digits, `-`, `_`.
fn validate_name(name: &str) -> Result<(), TaskBuildError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(TaskBuildError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn available_tasks(searched: &[PathBuf]) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for tasks in searched {
        let Ok(entries) = fs::read_dir(tasks) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if validate_name(&name).is_ok() && entry.path().join("Cargo.toml").is_file() {
                names.insert(name);
            }
        }
    }
    names.into_iter().collect()
}

/// The available name closest to `name`, if it is plausibly a typo of it.
fn suggest(name: &str, available: &[String]) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    available
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate.clone())
}

/// The crate's workspace root, found the way cargo does: `package.workspace` if set, else the
/// nearest directory (the crate's own included) whose `Cargo.toml` has a `[workspace]` table,
/// else the crate's own directory.
fn workspace_root(crate_dir: &Path, manifest: &Path) -> Result<PathBuf, TaskBuildError> {
    let text = fs::read_to_string(manifest).map_err(TaskBuildError::io_at("read", manifest))?;
    if has_workspace_table(&text) {
        return Ok(crate_dir.to_path_buf());
    }
    if let Some(rel) = package_workspace_key(&text) {
        let root = crate_dir.join(rel);
        return fs::canonicalize(&root).map_err(TaskBuildError::io_at("resolve", &root));
    }
    for dir in crate_dir.ancestors().skip(1) {
        let candidate = dir.join("Cargo.toml");
        if candidate.is_file() {
            let text = fs::read_to_string(&candidate)
                .map_err(TaskBuildError::io_at("read", &candidate))?;
            if has_workspace_table(&text) {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Ok(crate_dir.to_path_buf())
}

/// Table headers of a TOML document, e.g. `package`, `workspace.dependencies`.
fn table_header(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.starts_with("[[") {
        return line.strip_prefix("[[")?.split("]]").next().map(str::trim);
    }
    line.strip_prefix('[')?.split(']').next().map(str::trim)
}

fn has_workspace_table(manifest: &str) -> bool {
    manifest
        .lines()
        .filter_map(table_header)
        .any(|header| header == "workspace" || header.starts_with("workspace."))
}

/// `workspace = "..."` in the `[package]` table.
fn package_workspace_key(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        if let Some(header) = table_header(line) {
            in_package = header == "package";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "workspace" {
            let value = value.split('#').next().unwrap_or("").trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            return Some(value.to_owned());
        }
    }
    None
}

fn prepare_dir(dir: &Path) -> Result<PathBuf, TaskBuildError> {
    fs::create_dir_all(dir).map_err(TaskBuildError::io_at("create directory", dir))?;
    fs::canonicalize(dir).map_err(TaskBuildError::io_at("resolve", dir))
}

/// Takes `tasks/<name>.lock`; released when the returned file is dropped.
fn lock_task(records_dir: &Path, name: &str) -> Result<File, TaskBuildError> {
    let path = records_dir.join(format!("{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(TaskBuildError::io_at("open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(
                task = name,
                "waiting for another hermetic process building this task"
            );
            file.lock().map_err(TaskBuildError::io_at("lock", &path))?;
        }
        Err(TryLockError::Error(e)) => return Err(TaskBuildError::io("lock", path, e)),
    }
    Ok(file)
}

/// Cargo's home, as cargo computes it (`$CARGO_HOME`, else `~/.cargo`), plus its canonical
/// form if different (a symlinked home may appear either way in paths).
fn cargo_home_paths() -> Vec<PathBuf> {
    let home = match env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => std::path::absolute(home).ok(),
        _ => env::home_dir().map(|home| home.join(".cargo")),
    };
    let Some(home) = home else {
        return Vec::new();
    };
    match fs::canonicalize(&home) {
        Ok(canonical) if canonical != home => vec![home, canonical],
        _ => vec![home],
    }
}

/// The `--remap-path-prefix` flags, most specific prefix last (rustc applies the last match).
fn encoded_rustflags(roots: &Roots) -> Result<String, TaskBuildError> {
    let mut maps: Vec<(&Path, &str)> = vec![
        (&roots.workspace, "/hermetic/src"),
        (&roots.target, "/hermetic/target"),
    ];
    maps.extend(roots.cargo_home.iter().map(|h| (h.as_path(), "/cargo")));
    maps.sort_by_key(|(path, _)| path.components().count());
    let flags = maps
        .into_iter()
        .map(|(path, to)| {
            let from = path.to_str().ok_or_else(|| TaskBuildError::NonUtf8Path {
                path: path.to_path_buf(),
            })?;
            Ok(format!("--remap-path-prefix={from}={to}"))
        })
        .collect::<Result<Vec<_>, TaskBuildError>>()?;
    Ok(flags.join("\x1f"))
}

/// Environment variables that would change how a task is built; removed from the toolchain's
/// environment (see the module docs).
fn is_build_override(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_INCREMENTAL",
        "CARGO_BUILD_INCREMENTAL",
        "CARGO_BUILD_DEP_INFO_BASEDIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    ];
    EXACT.contains(&key)
        || key.starts_with("CARGO_PROFILE_")
        || key.starts_with("CARGO_TARGET_WASM32_WASIP1_")
        || (key.starts_with("CARGO_TARGET_") && key.ends_with("_RUSTFLAGS"))
}

fn build_command(program: &OsStr, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd).stdin(Stdio::null());
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(is_build_override) {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn spawn_error(program: &OsStr, e: io::Error) -> TaskBuildError {
    if e.kind() == io::ErrorKind::NotFound {
        TaskBuildError::ToolNotFound {
            tool: program.to_string_lossy().into_owned(),
        }
    } else {
        TaskBuildError::io("run", program, e)
    }
}

/// Turns a failed cargo run into the most specific error.
fn classify_failure(krate: &TaskCrate, status: ExitStatus, stderr: &str) -> TaskBuildError {
    let name = krate.name.clone();
    if stderr.contains("can't find crate for `std`")
        || stderr.contains("can't find crate for `core`")
        || stderr.contains("target may not be installed")
    {
        return TaskBuildError::TargetMissing;
    }
    if stderr.contains("--locked was passed") || stderr.contains("cannot update the lock file") {
        return TaskBuildError::LockfileOutdated {
            name,
            workspace_root: krate.workspace_root.clone(),
            stderr: trim_cargo_output(stderr),
        };
    }
    if stderr.contains("not found in workspace") || stderr.contains("did not match any packages") {
        return TaskBuildError::NotAMember {
            name,
            manifest: krate.manifest.clone(),
            workspace_root: krate.workspace_root.clone(),
        };
    }
    TaskBuildError::Compile {
        name,
        workspace_root: krate.workspace_root.clone(),
        status,
        stderr: trim_cargo_output(stderr),
    }
}

/// Cargo's stderr without its progress lines (`   Compiling x v0.1.0`), keeping at most the
/// last 400 lines, trimmed.
fn trim_cargo_output(stderr: &str) -> String {
    const MAX_LINES: usize = 400;
    const PROGRESS: &[&str] = &[
        "Compiling ",
        "Checking ",
        "Blocking ",
        "Downloading ",
        "Downloaded ",
        "Updating ",
        "Locking ",
        "Adding ",
        "Fresh ",
        "Finished ",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            !(line.starts_with(' ') && PROGRESS.iter().any(|p| trimmed.starts_with(p)))
        })
        .collect();
    let skipped = lines.len().saturating_sub(MAX_LINES);
    let mut out = String::new();
    if skipped > 0 {
        out.push_str(&format!("[{skipped} earlier lines omitted]\n"));
    }
    out.push_str(&lines[skipped..].join("\n"));
    out.trim().to_owned()
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TaskBuildError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(TaskBuildError::io_at("create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(|e| TaskBuildError::io("write", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| TaskBuildError::io("rename into place", path, e.error))?;
    Ok(())
}

/// Removes this task's older modules (`<name>.<16 hex>.wasm` other than `keep`); best effort.
fn prune_old_modules(records_dir: &Path, name: &str, keep: &str) {
    let Ok(entries) = fs::read_dir(records_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let is_ours = file_name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".wasm"))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_ours
            && file_name != keep
            && let Err(e) = fs::remove_file(entry.path())
        {
            tracing::debug!(
                path = %entry.path().display(),
                error = %e,
                "cannot remove old task module"
            );
        }
    }
}

#[cfg(test)]
mod tests;

/// The first line of `rustc -vV`: `rustc 1.95.0 (59807616e 2026-04-14)`.
fn toolchain_line(rustc_vv: &str) -> String {
    rustc_vv
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}
