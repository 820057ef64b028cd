//! One attempt of one step: stage its files, run its guest, collect its outputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hermetic_cache::{ActionEntry, Digest, FileEntry, tree_digest};

use crate::events::{Event, StepStatus, millis};
use crate::outputs::{OutputError, collect_and_publish, dependency_view, stage_files};
use crate::plan::{Plan, PlannedStep};
use crate::remote::{RemoteExec, RemoteStep};
use crate::sandbox::{
    CaptureTo, Heartbeat, HostCallSink, Invocation, Mount, Outcome, Sandbox, UnknownImports, clock,
};

use super::leftovers::Leftovers;
use super::scratch::{Scratch, ScratchPool};

/// The result of a step after all its attempts.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// Whether the last attempt succeeded.
    pub succeeded: bool,
    /// The outcome kind for events.
    pub outcome: &'static str,
    /// The guest's exit code, if it exited with one.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub message: Option<String>,
    /// How many attempts ran.
    pub attempts: u32,
    /// Fuel used by the last attempt.
    pub fuel_used: u64,
    /// Total host time of all attempts.
    pub duration: Duration,
    /// The end of stderr, for failures.
    pub stderr_tail: String,
    /// Whether the result was served from the cache.
    pub cached: bool,
    /// Whether the result was kept from the run `--resume` continues.
    pub resumed: bool,
    /// The published files with their digests, sorted by path.
    pub output_files: Vec<FileEntry>,
    /// Peak linear memory of the last attempt.
    pub peak_memory: u64,
    /// The last attempt's stdout and stderr, until they are stored in the cache.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr is in the step's logs directory.
    pub logs: bool,
    /// The step's action key, once known.
    pub key: Option<Digest>,
    /// Problems that did not fail the step, such as a cache that could not be written.
    pub warnings: Vec<String>,
}

impl AttemptResult {
    /// A result with nothing in it yet.
    fn blank(outcome: &'static str) -> Self {
        Self {
            succeeded: false,
            outcome,
            exit_code: None,
            message: None,
            attempts: 1,
            fuel_used: 0,
            duration: Duration::ZERO,
            stderr_tail: String::new(),
            cached: false,
            resumed: false,
            output_files: Vec::new(),
            peak_memory: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            logs: false,
            key: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn host_error(message: String) -> Self {
        Self {
            message: Some(message),
            ..Self::blank("host_error")
        }
    }

    /// The result a cache hit stands for: the recorded success, run zero times.
    pub(crate) fn cached(entry: &ActionEntry) -> Self {
        Self {
            succeeded: true,
            exit_code: Some(entry.exit_code),
            attempts: 0,
            fuel_used: entry.fuel_used,
            peak_memory: entry.peak_memory,
            output_files: entry.output_files.clone(),
            cached: true,
            ..Self::blank("success")
        }
    }

    /// The result kept from the run `--resume` continues: its recorded success, run zero
    /// times.
    pub(crate) fn resumed(files: Vec<FileEntry>) -> Self {
        Self {
            succeeded: true,
            exit_code: Some(0),
            attempts: 0,
            output_files: files,
            resumed: true,
            ..Self::blank("success")
        }
    }

    /// The Merkle root of the published outputs, which dependents' keys include.
    pub fn output_tree(&self) -> Digest {
        tree_digest(&self.output_files)
    }

    /// The `step_finished` event for this result.
    pub fn finished_event(&self, step: &str, allow_failure: bool) -> Event {
        Event::StepFinished {
            step: step.to_string(),
            status: if self.succeeded {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            },
            outcome: self.outcome,
            exit_code: self.exit_code,
            message: self.message.clone(),
            attempts: self.attempts,
            fuel_used: self.fuel_used,
            peak_memory: self.peak_memory,
            duration_ms: millis(self.duration),
            outputs: self.output_files.iter().map(|f| f.path.clone()).collect(),
            allowed_failure: allow_failure && !self.succeeded,
            stderr_tail: self.stderr_tail.clone(),
            cached: self.cached,
            resumed: self.resumed,
            key: self.key,
            files: if self.succeeded {
                self.output_files.clone()
            } else {
                Vec::new()
            },
            logs: self.logs,
        }
    }
}

/// What watches a guest while it runs.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    /// Beaten by the guest's output and host calls, for stuck-step warnings.
    pub heartbeat: Option<Arc<Heartbeat>>,
    /// Receives the guest's progress and log calls.
    pub host_calls: Option<Arc<dyn HostCallSink>>,
    /// A fault injected into this attempt (`hermetic chaos`).
    pub fault: Option<crate::chaos::GuestFault>,
}

/// Where an attempt's guest runs.
#[derive(Debug, Clone, Copy)]
pub enum Runner<'a> {
    /// In this process's sandbox, in the given lane: the worker's own (see
    /// [`Sandbox::for_workers`]).
    Local(&'a Sandbox, usize),
    /// On a REAPI server's bots (`--remote-exec`), in the same sandbox there.
    Remote(&'a RemoteExec),
}

/// Runs one attempt of `step` in scratch directories leased from `scratch`. The directories of
/// [`Plan::prepare_dirs`] must exist, and `leftovers` must have been listed after earlier
/// runs ended. `observers` watch the guest while it runs, wherever `runner` runs it.
pub async fn run_attempt(
    plan: &Plan,
    runner: Runner<'_>,
    scratch: &ScratchPool,
    leftovers: &Leftovers,
    step: &PlannedStep,
    observers: Observers,
) -> AttemptResult {
    let started = Instant::now();
    let staged = staged(step, &runner);
    // A guest that reaches no files, with no outputs to collect and none published before to
    // remove, touches no directory: its attempt leases none.
    let mut result = if !staged && !publishes(plan, leftovers, step) {
        match attempt_inner(plan, runner, None, leftovers, step, observers).await {
            Ok((r, _)) => r,
            Err(message) => AttemptResult::host_error(message),
        }
    } else {
        match scratch.lease(&step.name) {
            Ok(lease) => {
                let work = Some(lease.get());
                match attempt_inner(plan, runner, work, leftovers, step, observers).await {
                    Ok((r, known_empty)) => {
                        lease.recycle(&known_empty);
                        r
                    }
                    // The lease is dropped, which removes its directories.
                    Err(message) => AttemptResult::host_error(message),
                }
            }
            Err(e) => AttemptResult::host_error(e.to_string()),
        }
    };
    result.duration = started.elapsed();
    result
}

/// Whether `step`'s guest gets its mounts, staged: a program that cannot reach files runs
/// without them (see `Program::reaches_files`). A remote worker decides that for itself, from
/// the same module; the action it runs names the mounts.
fn staged(step: &PlannedStep, runner: &Runner<'_>) -> bool {
    step.program.reaches_files || matches!(runner, Runner::Remote(_))
}

/// Whether an attempt of `step` publishes from its `/out`: its declared outputs, or, with none
/// declared, an empty directory in place of what an earlier run published under its name.
fn publishes(plan: &Plan, leftovers: &Leftovers, step: &PlannedStep) -> bool {
    !plan.step_def(step).outputs.is_empty() || leftovers.published(step.index)
}

/// One attempt in the leased directories `work`, if it needs any (see `run_attempt`); also
/// returns those of them known to be empty afterwards, which the lease need not look at again.
async fn attempt_inner(
    plan: &Plan,
    runner: Runner<'_>,
    work: Option<&Scratch>,
    leftovers: &Leftovers,
    step: &PlannedStep,
    observers: Observers,
) -> Result<(AttemptResult, Vec<PathBuf>), String> {
    let staged = staged(step, &runner);
    let mounts = match work {
        Some(work) if staged => stage(plan, work, step)?,
        _ => Vec::new(),
    };
    let def = plan.step_def(step);
    let mut limits = step.limits;
    let mut clock_epoch = Duration::from_secs(clock::DEFAULT_EPOCH_SECS);
    if let Some(fault) = observers.fault {
        if let Some(memory) = fault.memory {
            limits.memory = limits.memory.min(memory);
        }
        if let Some(fuel) = fault.fuel {
            limits.fuel = limits.fuel.min(fuel);
        }
        if let Some(skew) = fault.clock_skew {
            let epoch = clock_epoch.as_secs() as i64 + skew;
            clock_epoch = Duration::from_secs(epoch.max(0) as u64);
        }
    }
    let invocation = Invocation {
        args: plan.argv(step),
        env: def
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        mounts,
        limits,
        seed: plan.seed(step),
        clock_epoch,
        stdout: CaptureTo::Memory,
        stderr: CaptureTo::Memory,
        heartbeat: observers.heartbeat,
        host_calls: observers.host_calls,
        wasi_fault: observers.fault.and_then(|f| f.wasi),
        clock_jump: observers.fault.and_then(|f| f.clock_jump),
    };
    let report = match runner {
        Runner::Local(sandbox, lane) => sandbox
            .run_in_lane(lane, &step.program, &invocation)
            .await
            .map_err(|e| e.to_string())?,
        Runner::Remote(remote) => {
            let remote_step = RemoteStep {
                step: &step.name,
                module: &step.module,
                module_digest: step.program.digest,
                unknown_imports_trap: plan.unknown_imports == UnknownImports::Trap,
                invocation: &invocation,
            };
            // Boxed: the remote call's future is 1.7 KiB, which every local attempt's future
            // would otherwise carry and copy (see `Sandbox::run_in_lane`).
            Box::pin(remote.run(&remote_step)).await?
        }
    };
    let logs = save_logs(
        &plan.state_dir,
        &step.name,
        &report.stdout,
        &report.stderr,
        leftovers.logs(step.index),
    )?;
    if logs {
        leftovers.wrote_logs(step.index);
    }
    // Seen empty after the guest ended, or leased empty and never given to a guest that could
    // reach files; collecting the outputs below changes only a `/out` that holds something.
    // `in/` is untouched when nothing was staged.
    let mut known_empty = Vec::new();
    if let Some(work) = work {
        known_empty = if report.mounted {
            report.empty_mounts
        } else {
            vec![work.out.clone(), work.tmp.clone()]
        };
        if !staged || step.inputs.is_none() {
            known_empty.push(work.inputs.clone());
        }
    }

    let mut result = AttemptResult {
        exit_code: match report.outcome {
            Outcome::Exit(c) => Some(c),
            Outcome::Success => Some(0),
            _ => None,
        },
        fuel_used: report.fuel_used,
        peak_memory: report.peak_memory,
        logs,
        ..AttemptResult::blank(report.outcome.kind())
    };
    if !report.outcome.is_success() {
        result.message = Some(report.outcome.to_string());
        result.stderr_tail = tail(&report.stderr, 10);
        return Ok((result, known_empty));
    }

    let published = if !publishes(plan, leftovers, step) {
        Ok(Vec::new())
    } else if let Some(work) = work {
        collect_and_publish(&work.out, &def.outputs, &plan.out_root, &step.name)
    } else {
        return Err("internal error: outputs to publish, but no `/out` was leased".to_owned());
    };
    match published {
        Ok(files) => {
            if !def.outputs.is_empty() {
                leftovers.wrote_published(step.index);
            }
            result.succeeded = true;
            result.output_files = files;
            result.stdout = report.stdout;
            result.stderr = report.stderr;
        }
        Err(OutputError::Io(e)) => return Err(e.to_string()),
        Err(e) => {
            result.outcome = "outputs";
            let at = match &e {
                OutputError::Missing(o) => def
                    .outputs
                    .iter()
                    .position(|x| x.trim_end_matches('/') == o)
                    .and_then(|k| def.output_spans.get(k))
                    .map(|s| format!(" (declared at {}:{s})", plan.workflow.path.display())),
                _ => None,
            };
            result.message = Some(format!("{e}{}", at.unwrap_or_default()));
        }
    }
    Ok((result, known_empty))
}

/// Stages `step`'s inputs into `work`, and lists the mounts its guest gets: `/in` and `/deps`
/// read-only, `/out` and `/tmp` read-write, and each dependency's published outputs at
/// `/deps/<name>`.
fn stage(plan: &Plan, work: &Scratch, step: &PlannedStep) -> Result<Vec<Mount>, String> {
    // Steps without inputs or dependencies share one empty read-only directory, which saves
    // filesystem work on every such step.
    // (`Executor::run` creates it once per run.)
    let empty = plan.empty_dir();
    let in_dir = if let Some(inputs) = &step.inputs {
        let expected: Vec<Digest> = inputs.files.iter().map(|f| f.digest).collect();
        // On the pool's worker thread: blocking here is fine.
        stage_files(&inputs.paths, &expected, &work.inputs)
            .map_err(|e| format!("cannot stage inputs: {e}"))?;
        work.inputs.clone()
    } else {
        empty.clone()
    };
    // Dependencies' published outputs are mounted read-only where they are, over a shared
    // view that lists them: no copies (see `dependency_view`).
    let mut dep_mounts = Vec::with_capacity(step.deps.len());
    let deps_dir = if step.deps.is_empty() {
        empty
    } else {
        let names: Vec<&str> = step
            .deps
            .iter()
            .map(|&d| plan.steps[d].name.as_str())
            .collect();
        for name in &names {
            let published = plan.out_root.join(name);
            if published.is_dir() {
                dep_mounts.push((published, format!("/deps/{name}")));
            }
        }
        dependency_view(&plan.state_dir.join("views"), &names)
            .map_err(|e| format!("cannot prepare `/deps`: {e}"))?
    };
    let mount = |host: PathBuf, guest: String, writable| Mount {
        host,
        guest,
        writable,
    };
    Ok([
        mount(in_dir, "/in".into(), false),
        mount(deps_dir, "/deps".into(), false),
        mount(work.out.clone(), "/out".into(), true),
        mount(work.tmp.clone(), "/tmp".into(), true),
    ]
    .into_iter()
    .chain(
        dep_mounts
            .into_iter()
            .map(|(host, guest)| mount(host, guest, false)),
    )
    .collect())
}

/// Writes the captured streams of step `step` to `logs/<step>/stdout` and `…/stderr` under
/// `state_dir` as new files; a stream that is empty has no file (most steps print nothing, and
/// creating two empty files per step is measurable), so a stale one is removed. `may_exist`
/// says whether the step's logs directory may exist already (see [`Leftovers`]). Returns
/// whether a log file exists now.
pub(crate) fn save_logs(
    state_dir: &Path,
    step: &str,
    stdout: &[u8],
    stderr: &[u8],
    may_exist: bool,
) -> Result<bool, String> {
    let printed = !stdout.is_empty() || !stderr.is_empty();
    // Most steps print nothing and never did: nothing to remove, without even a look (or a
    // path to build).
    if !printed && !may_exist {
        return Ok(false);
    }
    let logs = &state_dir.join("logs").join(step);
    if !printed && std::fs::symlink_metadata(logs).is_err() {
        return Ok(false);
    }
    for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
        let path = logs.join(name);
        if !bytes.is_empty() {
            std::fs::create_dir_all(logs)
                .map_err(|e| format!("cannot create `{}`: {e}", logs.display()))?;
        }
        // A new file, not the old one truncated: the run journal may hold a hard link to it.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove `{}`: {e}", path.display()));
            }
            _ => {}
        }
        if !bytes.is_empty() {
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        }
    }
    Ok(printed)
}

/// The last `n` lines of captured output, lossily decoded.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
