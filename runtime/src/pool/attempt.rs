//! One attempt of one step: stage its files, run its guest, collect its outputs.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::events::{Event, StepStatus, millis};
use crate::outputs::{OutputError, collect_and_publish, stage_files, stage_tree};
use crate::plan::{Plan, PlannedStep};
use crate::sandbox::{CaptureTo, Invocation, Mount, Outcome, Sandbox, clock};

/// The result of a step after all its attempts.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// Whether the last attempt succeeded.
    pub succeeded: bool,
    /// The outcome kind for events.
    pub outcome: String,
    /// The guest's exit code, if it exited with one.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub message: Option<String>,
    /// Failed attempts that were retried: `(attempt number, message)`.
    pub retried: Vec<(u32, String)>,
    /// How many attempts ran.
    pub attempts: u32,
    /// Fuel used by the last attempt.
    pub fuel_used: u64,
    /// Total host time of all attempts.
    pub duration: Duration,
    /// Published outputs.
    pub outputs: Vec<String>,
    /// The end of stderr, for failures.
    pub stderr_tail: String,
}

impl AttemptResult {
    pub(crate) fn host_error(message: String) -> Self {
        Self {
            succeeded: false,
            outcome: "host_error".into(),
            exit_code: None,
            message: Some(message),
            retried: Vec::new(),
            attempts: 1,
            fuel_used: 0,
            duration: Duration::ZERO,
            outputs: Vec::new(),
            stderr_tail: String::new(),
        }
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
            outcome: self.outcome.clone(),
            exit_code: self.exit_code,
            message: self.message.clone(),
            attempts: self.attempts,
            fuel_used: self.fuel_used,
            duration_ms: millis(self.duration),
            outputs: self.outputs.clone(),
            allowed_failure: allow_failure && !self.succeeded,
            stderr_tail: self.stderr_tail.clone(),
        }
    }
}

/// Runs step `i`, retrying up to its `retries`.
pub(crate) async fn run_with_retries(plan: &Plan, sandbox: &Sandbox, i: usize) -> AttemptResult {
    let step = &plan.steps[i];
    let retries = plan.step_def(step).retries;
    let mut retried = Vec::new();
    let mut total = Duration::ZERO;
    let mut attempt = 1;
    loop {
        let mut result = run_attempt(plan, sandbox, step).await;
        total += result.duration;
        if result.succeeded || attempt > retries {
            result.retried = retried;
            result.attempts = attempt;
            result.duration = total;
            return result;
        }
        retried.push((attempt, result.message.unwrap_or_default()));
        attempt += 1;
    }
}

/// Runs one attempt of `step` in a fresh per-attempt directory under `.hermetic/tmp/`. The
/// directories of [`Plan::prepare_dirs`] must exist.
pub async fn run_attempt(plan: &Plan, sandbox: &Sandbox, step: &PlannedStep) -> AttemptResult {
    let started = Instant::now();
    let mut result = match attempt_inner(plan, sandbox, step).await {
        Ok(r) => r,
        Err(message) => AttemptResult::host_error(message),
    };
    result.duration = started.elapsed();
    result
}

async fn attempt_inner(
    plan: &Plan,
    sandbox: &Sandbox,
    step: &PlannedStep,
) -> Result<AttemptResult, String> {
    let tmp_root = plan.state_dir.join("tmp");
    let logs = plan.state_dir.join("logs").join(&step.name);
    // Steps without inputs or dependencies share one empty read-only directory, which saves
    // filesystem work on every such step.
    // (`Executor::run` creates it, and with it `tmp_root`, once per run.)
    let empty = plan.empty_dir();
    // Removed on drop, including when the attempt is aborted by an interrupt.
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", step.name))
        .tempdir_in(&tmp_root)
        .map_err(|e| format!("cannot create a directory in `{}`: {e}", tmp_root.display()))?;
    let in_dir = if step.inputs.is_empty() {
        empty.clone()
    } else {
        work.path().join("in")
    };
    let deps_dir = if step.deps.is_empty() {
        empty.clone()
    } else {
        work.path().join("deps")
    };
    let (out_dir, scratch) = (work.path().join("out"), work.path().join("tmp"));

    let staging = {
        let inputs = step.inputs.clone();
        let deps: Vec<(String, std::path::PathBuf)> = step
            .deps
            .iter()
            .map(|&d| {
                (
                    plan.steps[d].name.clone(),
                    plan.out_root.join(&plan.steps[d].name),
                )
            })
            .collect();
        let (in_dir, deps_dir, out_dir, scratch) = (
            in_dir.clone(),
            deps_dir.clone(),
            out_dir.clone(),
            scratch.clone(),
        );
        move || -> Result<(), String> {
            for d in [&out_dir, &scratch] {
                std::fs::create_dir(d)
                    .map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
            }
            if !inputs.is_empty() {
                stage_files(&inputs, &in_dir).map_err(|e| format!("cannot stage inputs: {e}"))?;
            }
            for (name, published) in deps {
                stage_tree(&published, &deps_dir.join(&name))
                    .map_err(|e| format!("cannot stage the outputs of `{name}`: {e}"))?;
            }
            Ok(())
        }
    };
    if step.inputs.is_empty() && step.deps.is_empty() {
        // Two mkdirs: cheaper inline than a hop to the blocking pool.
        staging()?;
    } else {
        tokio::task::spawn_blocking(staging)
            .await
            .map_err(|e| format!("staging panicked: {e}"))??;
    }

    let def = plan.step_def(step);
    let mut args = vec![step.name.clone()];
    args.extend(def.args.iter().cloned());
    let env: Vec<(String, String)> = def
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mount = |host: &Path, guest: &str, writable| Mount {
        host: host.to_path_buf(),
        guest: guest.into(),
        writable,
    };
    let invocation = Invocation {
        args,
        env,
        mounts: vec![
            mount(&in_dir, "/in", false),
            mount(&deps_dir, "/deps", false),
            mount(&out_dir, "/out", true),
            mount(&scratch, "/tmp", true),
        ],
        limits: step.limits,
        seed: step.seed,
        clock_epoch: Duration::from_secs(clock::DEFAULT_EPOCH_SECS),
        stdout: CaptureTo::Memory,
        stderr: CaptureTo::Memory,
    };
    let report = sandbox
        .run(&step.program, &invocation)
        .await
        .map_err(|e| e.to_string())?;
    save_log(&logs, "stdout", &report.stdout)?;
    save_log(&logs, "stderr", &report.stderr)?;
    let stderr_tail = tail(&report.stderr, 10);

    let mut result = AttemptResult {
        succeeded: false,
        outcome: report.outcome.kind().into(),
        exit_code: match report.outcome {
            Outcome::Exit(c) => Some(c),
            Outcome::Success => Some(0),
            _ => None,
        },
        message: None,
        retried: Vec::new(),
        attempts: 1,
        fuel_used: report.fuel_used,
        duration: Duration::ZERO,
        outputs: Vec::new(),
        stderr_tail: String::new(),
    };
    if !report.outcome.is_success() {
        result.message = Some(report.outcome.to_string());
        result.stderr_tail = stderr_tail;
        return Ok(result);
    }

    let declared = def.outputs.clone();
    let (out_root, name) = (plan.out_root.clone(), step.name.clone());
    let collect = move || collect_and_publish(&out_dir, &declared, &out_root, &name);
    let collected = if def.outputs.is_empty() {
        // Nothing to copy, one `lstat` to clear stale outputs: not worth the blocking pool.
        collect()
    } else {
        tokio::task::spawn_blocking(collect)
            .await
            .map_err(|e| format!("collecting outputs panicked: {e}"))?
    };
    match collected {
        Ok(files) => {
            result.succeeded = true;
            result.outputs = files.into_iter().map(|f| f.path).collect();
        }
        Err(OutputError::Io(e)) => return Err(e.to_string()),
        Err(e) => {
            result.outcome = "outputs".into();
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
    Ok(result)
}

/// Writes a captured stream to `logs/<name>`, or removes a stale log when the stream is empty
/// (most steps print nothing, and creating two empty files per step is measurable).
fn save_log(logs: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let path = logs.join(name);
    if bytes.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove `{}`: {e}", path.display()))
            }
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(logs)
        .map_err(|e| format!("cannot create `{}`: {e}", logs.display()))?;
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// The last `n` lines of captured output, lossily decoded.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
