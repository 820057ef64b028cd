//! The `hermetic.yaml` workflow file: parsing, decoding and validation.
//!
//! ```yaml
//! name: ci
//! defaults:
//!   timeout: 5m
//!   memory: 512MiB
//! steps:
//!   build:
//!     task: rust-build            # a crate under tasks/, or a path ending in .wasm
//!     inputs: ["src/**", "Cargo.toml"]
//!     outputs: [dist/]
//!   test:
//!     task: tools/test.wasm
//!     depends_on: [build]
//!     when: success || build.failed
//! ```
//!
//! [`Workflow::load`] and [`Workflow::parse`] report *every* problem at once, as rustc-style
//! [`Diagnostics`] with `file:line:col`, the offending line and a suggestion. The pipeline:
//!
//! 1. `node` parses the YAML with `serde-saphyr` into a tree of located nodes (with limits
//!    against hostile documents);
//! 2. `schema` decodes that tree by hand into steps, collecting problems as it goes
//!    (helpers in `decode`, string checks in `paths`, units in [`units`], `when:` in
//!    `condition`, retries, timeouts and the circuit breaker in `resilience`);
//! 3. `validate` checks the steps against each other (unknown or repeated dependencies,
//!    `when` references, cycles).
//!
//! Problems that need the filesystem or the module (missing `.wasm`, missing outputs) are
//! reported by later stages; [`Step::task_span`], [`Step::output_spans`] and
//! [`Workflow::diagnostic`] let them point into this file.

pub mod chaos;
mod condition;
mod decode;
mod diagnostic;
mod memo;
mod node;
mod params;
mod paths;
mod resilience;
mod schema;
pub mod suggest;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use condition::{Condition, ConditionError, DepOutcome};
pub use diagnostic::{Diagnostic, Diagnostics, Severity, Span};
pub use params::PARAMS_ENV;
pub use resilience::{
    AdaptiveTimeout, CircuitBreaker, DEFAULT_ADAPTIVE_FACTOR, DEFAULT_BACKOFF,
    DEFAULT_BREAKER_COOL_DOWN, DEFAULT_BREAKER_FAILURES, DEFAULT_STUCK_AFTER, MAX_BACKOFF,
    OutcomeSet, RetryOn, RetryOutcome,
};
pub use schema::{DEFAULT_OUT_DIR, DEFAULT_PRIORITY, MAX_RETRIES};

/// A parsed and validated workflow.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// The workflow file, exactly as given (not canonicalised, for deterministic messages).
    pub path: PathBuf,
    /// The directory holding the workflow file (`.` for a bare file name). Inputs, `.wasm`
    /// task paths and `out_dir` are relative to it.
    pub dir: PathBuf,
    /// `name:`.
    pub name: String,
    /// Where step outputs are published, relative to `dir` (`defaults.out_dir`, by default
    /// [`DEFAULT_OUT_DIR`]).
    pub out_dir: PathBuf,
    /// `defaults.cache_dir`: where the cache lives, relative to `dir` unless absolute.
    /// `--cache-dir` and `HERMETIC_CACHE_DIR` take precedence.
    pub cache_dir: Option<PathBuf>,
    /// `defaults.circuit_breaker`, per task module; `None` when it is `off`. By default
    /// [`DEFAULT_BREAKER_FAILURES`] failures and [`DEFAULT_BREAKER_COOL_DOWN`].
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The steps, in file order.
    pub steps: Vec<Step>,
    /// `chaos:`, the suite `hermetic chaos` runs by default.
    pub chaos: Option<chaos::ChaosSection>,
    /// The text that was parsed, so that later stages can show the offending line.
    pub source: Arc<str>,
    /// Warnings found while parsing (e.g. a `retry_on` on a step that is never retried),
    /// for the caller to show; they do not stop the workflow from running.
    pub warnings: Diagnostics,
}

/// One step of a workflow, with `defaults` already applied.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// The step's name: `[A-Za-z0-9_][A-Za-z0-9_.-]*`, unique in the workflow.
    pub name: String,
    /// The module to run.
    pub task: TaskRef,
    /// Command-line arguments (argv\[0\] is the step name and is not included).
    pub args: Vec<String>,
    /// Environment variables: `defaults.env` overridden by the step's `env`.
    pub env: BTreeMap<String, String>,
    /// Input globs, relative to the workflow's directory, as written.
    pub inputs: Vec<String>,
    /// Output paths inside the step's output directory, as written (a trailing `/` marks
    /// a directory).
    pub outputs: Vec<String>,
    /// Names of the steps this one depends on, as written (all exist, no cycles).
    pub depends_on: Vec<String>,
    /// Wall-clock limit per attempt.
    pub timeout: Option<Duration>,
    /// Fuel limit per attempt.
    pub fuel: Option<u64>,
    /// Linear-memory limit in bytes.
    pub memory: Option<u64>,
    /// How many times to retry after a failure (0..=10).
    pub retries: u32,
    /// Which failed attempts are retried (default `[timeout, host_error]`).
    pub retry_on: RetryOn,
    /// The delay before the first retry, doubled for each later one (default
    /// [`DEFAULT_BACKOFF`], at most [`MAX_BACKOFF`]).
    pub backoff: Duration,
    /// A wall-time limit derived from past runs (opt-in); `timeout` stays the hard maximum.
    pub adaptive_timeout: Option<AdaptiveTimeout>,
    /// How long a step may show no output or heartbeat before a warning event (default
    /// [`DEFAULT_STUCK_AFTER`]); `None` when it is `off`.
    pub stuck_after: Option<Duration>,
    /// Scheduling priority, 1..=10 (higher runs first); default [`DEFAULT_PRIORITY`].
    pub priority: u8,
    /// Whether a failure of this step still lets the run succeed.
    pub allow_failure: bool,
    /// When the step runs, given its dependencies' outcomes (default `success`).
    pub when: Condition,
    /// Where the step is named (its key in the map form, its `name:` value in the list
    /// form).
    pub span: Span,
    /// Where the `task:` value is.
    pub task_span: Span,
    /// Where each entry of `outputs` is (same order as `outputs`).
    pub output_spans: Vec<Span>,
}

// A memo hit decodes one `Step` per step before the first can start, into fresh pages that each
// cost a page fault (about 1.8 µs on the virtual machines this runs on): a field that makes it
// larger should earn its bytes. Session 25 made `retry_on`'s outcomes a bit set, 440 → 424
// bytes.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Step>() <= 424);

/// What a step runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TaskRef {
    /// A crate under `tasks/`, built for wasm by `taskbuild`.
    Crate(String),
    /// A `.wasm` file, relative to the workflow's directory (as written, may use `..`).
    Wasm(PathBuf),
}

impl Workflow {
    /// Reads and parses the workflow file at `path`.
    ///
    /// I/O problems are reported as
    /// ``error: cannot read workflow `x/hermetic.yaml`: No such file or directory (os error 2)``.
    pub fn load(path: &Path) -> Result<Workflow, Diagnostics> {
        Self::load_inner(path, None)
    }

    /// [`Workflow::load`], remembering the checked workflow in the cache root `cache_root`,
    /// so that the next load of the same text skips parsing, decoding and validation. The
    /// result is the same as [`Workflow::load`]'s; see the `memo` module.
    pub fn load_memoized(path: &Path, cache_root: &Path) -> Result<Workflow, Diagnostics> {
        Self::load_inner(path, memo::memo_path(cache_root, path).as_deref())
    }

    fn load_inner(path: &Path, memo: Option<&Path>) -> Result<Workflow, Diagnostics> {
        let cannot_read = |detail: String| {
            Diagnostics::file_error(
                path,
                format!("cannot read workflow `{}`: {detail}", path.display()),
            )
        };
        let metadata = std::fs::metadata(path).map_err(|e| cannot_read(e.to_string()))?;
        if metadata.is_dir() {
            let diagnostic = Diagnostic::error(
                path,
                None,
                format!(
                    "cannot read workflow `{}`: it is a directory",
                    path.display()
                ),
            )
            .with_help(format!(
                "pass the workflow file itself, e.g. `{}`",
                path.join("hermetic.yaml").display()
            ));
            return Err(diagnostic.into());
        }
        if metadata.len() > node::MAX_SOURCE_BYTES as u64 {
            return Err(cannot_read(format!(
                "it is too large ({}; the limit is {})",
                units::format_size(metadata.len()),
                units::format_size(node::MAX_SOURCE_BYTES as u64)
            )));
        }
        let source: Arc<str> = std::fs::read_to_string(path)
            .map_err(|e| cannot_read(e.to_string()))?
            .into();
        if let Some(memo) = memo {
            match memo::read(memo, path, &source) {
                Ok(workflow) => {
                    tracing::debug!(memo = %memo.display(), "workflow: memo hit");
                    return Ok(workflow);
                }
                Err(why) => tracing::debug!(memo = %memo.display(), "workflow: memo miss ({why})"),
            }
        }
        let workflow = Self::from_tree(path, Arc::clone(&source), node::parse(&source))?;
        if let Some(memo) = memo
            && let Err(e) = memo::write(memo, &workflow)
        {
            tracing::debug!(memo = %memo.display(), "workflow: memo not written: {e}");
        }
        Ok(workflow)
    }

    /// Parses `source` as the workflow file at `path_for_messages` (which is used as given
    /// in messages and to derive [`Workflow::dir`]; it is not read).
    pub fn parse(path_for_messages: &Path, source: &str) -> Result<Workflow, Diagnostics> {
        Self::from_tree(path_for_messages, Arc::from(source), node::parse(source))
    }

    /// Decodes and validates `tree`, the YAML parse of `text`.
    fn from_tree(
        path_for_messages: &Path,
        text: Arc<str>,
        tree: Result<node::Node, node::YamlError>,
    ) -> Result<Workflow, Diagnostics> {
        let mut decoder = decode::Decoder::new(path_for_messages, Arc::clone(&text));
        match tree {
            Ok(root) => {
                let draft = schema::decode(&mut decoder, &root);
                validate::validate(&mut decoder, &draft.steps);
                let mut diagnostics = Diagnostics(decoder.diagnostics);
                diagnostics.sort();
                if diagnostics.has_errors() {
                    return Err(diagnostics);
                }
                Ok(Workflow {
                    path: path_for_messages.to_path_buf(),
                    dir: dir_of(path_for_messages),
                    name: draft.name,
                    out_dir: PathBuf::from(draft.out_dir),
                    cache_dir: draft.cache_dir.map(PathBuf::from),
                    circuit_breaker: draft.circuit_breaker,
                    steps: draft.steps.into_iter().map(|s| s.step).collect(),
                    chaos: draft.chaos,
                    source: text,
                    warnings: diagnostics,
                })
            }
            Err(e) => {
                let mut diagnostic = Diagnostic::error(path_for_messages, e.span, e.message);
                diagnostic.help = e.help;
                Err(diagnostic.with_source(text).into())
            }
        }
    }

    /// The step called `name`.
    #[must_use]
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// An error about this workflow file, located at `span` if given (e.g.
    /// [`Step::task_span`]), showing the offending line like every other workflow
    /// diagnostic.
    #[must_use]
    pub fn diagnostic(&self, span: Option<Span>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, span, message).with_source(Arc::clone(&self.source))
    }
}

/// The directory of `path`, `.` when it has none.
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
