//! What a run reports while it goes: typed [`Event`]s, rendered by a [`Reporter`] as a live
//! display on a terminal, plain lines otherwise, and JSON lines with `--json`.

mod human;
mod json;

use std::time::Duration;

use serde::Serialize;

pub use human::HumanReporter;
pub use json::JsonReporter;

/// How a step ended, from the run's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The guest succeeded and its outputs were published.
    Succeeded,
    /// The guest failed, or its outputs could not be collected.
    Failed,
    /// The step did not run: a dependency failed or its `when:` was false.
    Skipped,
}

/// One thing that happened during a run. Serialized as one JSON object per line, tagged by
/// `event`. Durations are informational and never part of any result.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins.
    RunStarted {
        workflow: String,
        steps: usize,
        jobs: usize,
    },
    /// An attempt of a step starts.
    StepStarted { step: String, attempt: u32 },
    /// An attempt failed and will be retried.
    StepRetrying {
        step: String,
        attempt: u32,
        message: String,
    },
    /// A step reached its final state.
    StepFinished {
        step: String,
        status: StepStatus,
        /// The sandbox outcome kind (`success`, `exit`, `trap`, `out_of_fuel`, `timed_out`,
        /// `memory_limit`, `output_limit`), or `outputs`/`host_error`, or `skipped`.
        outcome: String,
        /// The guest's exit code, when it exited.
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// One-line explanation for a failure or a skip.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        attempts: u32,
        fuel_used: u64,
        duration_ms: u64,
        /// Published output files, relative to the step's output directory.
        outputs: Vec<String>,
        /// Whether the failure was allowed (`allow_failure: true`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        allowed_failure: bool,
        /// Last lines of stderr, for failures.
        #[serde(skip)]
        stderr_tail: String,
        /// Whether the result was served from the cache: the module did not run.
        cached: bool,
    },
    /// Something went wrong that does not fail the run, such as a cache that cannot be written.
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        message: String,
    },
    /// The run ended.
    RunFinished {
        status: RunStatus,
        succeeded: usize,
        failed: usize,
        skipped: usize,
        /// How many of the succeeded steps were served from the cache.
        cached: usize,
        duration_ms: u64,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step succeeded or was allowed to fail.
    Succeeded,
    /// A step failed.
    Failed,
    /// Ctrl-C, SIGINT or SIGTERM.
    Interrupted,
}

/// Receives a run's events. Implementations must be cheap: they run on the scheduler.
pub trait Reporter: Send {
    /// Handles one event.
    fn event(&mut self, event: &Event);
}

/// Milliseconds, for events.
pub fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
