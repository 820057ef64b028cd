//! Errors of the task builder. Each one says what to do about it, and every I/O error names
//! its path.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Why a `task: NAME` could not be turned into a `.wasm` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskBuildError {
    /// The name cannot be a crate directory under `tasks/`.
    #[error(
        "invalid task name {name:?}: a task is a crate directory under `tasks/`, and its name may \
         contain only ASCII letters, digits, `-` and `_`"
    )]
    InvalidName { name: String },

    /// No `tasks/<name>/Cargo.toml` in the workflow's directory or any ancestor.
    #[error("{}", not_found_message(name, searched, available, suggestion.as_deref()))]
    NotFound {
        name: String,
        /// The `tasks/` directories looked in, nearest first.
        searched: Vec<PathBuf>,
        /// Every task name found in those directories, sorted.
        available: Vec<String>,
        /// The closest available name, if any is close.
        suggestion: Option<String>,
    },

    /// The `wasm32-wasip1` standard library is not installed for the toolchain in use.
    #[error("the wasm32-wasip1 target is not installed; run: rustup target add wasm32-wasip1")]
    TargetMissing,

    /// `cargo` or `rustc` could not be started because it is not on `PATH`.
    #[error(
        "`{tool}` was not found on PATH; hermetic builds tasks with the Rust toolchain: install \
         it with rustup (https://rustup.rs) and make sure cargo's bin directory (usually \
         ~/.cargo/bin) is on PATH"
    )]
    ToolNotFound { tool: String },

    /// A toolchain command other than the build itself failed (e.g. `rustc -vV`).
    #[error("`{command}` failed ({status}){}", indent_block(stderr))]
    ToolFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },

    /// `cargo build` failed: the task does not compile. `stderr` is cargo's output, trimmed of
    /// progress lines.
    #[error(
        "task `{name}` failed to compile (cargo build in {}: {status}):\n{stderr}",
        workspace_root.display()
    )]
    Compile {
        name: String,
        workspace_root: PathBuf,
        status: ExitStatus,
        stderr: String,
    },

    /// The task's workspace has no `Cargo.lock`, and tasks are built with `--locked`.
    #[error(
        "no Cargo.lock in {}: hermetic builds task `{name}` with `cargo build --locked`; run \
         `cargo generate-lockfile` there and commit Cargo.lock",
        workspace_root.display()
    )]
    MissingLockfile {
        name: String,
        workspace_root: PathBuf,
    },

    /// `Cargo.lock` does not match the manifests, and tasks are built with `--locked`.
    #[error(
        "Cargo.lock in {} is out of date for task `{name}`, and hermetic builds tasks with \
         `cargo build --locked`; run `cargo update --workspace` there (or any cargo build \
         without --locked) and commit Cargo.lock:\n{stderr}",
        workspace_root.display()
    )]
    LockfileOutdated {
        name: String,
        workspace_root: PathBuf,
        stderr: String,
    },

    /// The crate under `tasks/` is not a member of the workspace that contains it.
    #[error(
        "task crate `{name}` ({}) is not a member of the cargo workspace at {}; add it to \
         `members` in that workspace's Cargo.toml (e.g. `members = [\"tasks/*\"]`)",
        manifest.display(),
        workspace_root.display()
    )]
    NotAMember {
        name: String,
        manifest: PathBuf,
        workspace_root: PathBuf,
    },

    /// Cargo succeeded but the expected `.wasm` is not there.
    #[error(
        "cargo built task `{name}` but there is no {}; the crate `{name}` must have a binary \
         target named `{name}` (package name = directory name, with `src/main.rs`)",
        path.display()
    )]
    MissingArtifact { name: String, path: PathBuf },

    /// A path that must be passed to rustc or recorded is not UTF-8.
    #[error(
        "path {} is not valid UTF-8; hermetic cannot pass it to rustc or record it",
        path.display()
    )]
    NonUtf8Path { path: PathBuf },

    /// Any I/O failure, with the path it concerns.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl TaskBuildError {
    /// An I/O error about `path`.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A closure for `map_err` that wraps an I/O error about `path`.
    pub(super) fn io_at<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::io(op, path, source)
    }
}

fn not_found_message(
    name: &str,
    searched: &[PathBuf],
    available: &[String],
    suggestion: Option<&str>,
) -> String {
    let mut out = format!("task `{name}` not found: there is no `tasks/{name}/Cargo.toml` in");
    out.push_str(" the workflow's directory or any directory above it\n  searched:");
    for dir in searched {
        let _ = write!(out, "\n    {}", dir.display());
    }
    if available.is_empty() {
        out.push_str("\n  no tasks exist in those directories");
    } else {
        let _ = write!(out, "\n  available tasks: {}", available.join(", "));
    }
    if let Some(suggestion) = suggestion {
        let _ = write!(out, "\n  did you mean `{suggestion}`?");
    }
    out
}

fn indent_block(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from(":");
    for line in text.lines() {
        let _ = write!(out, "\n  {line}");
    }
    out
}
