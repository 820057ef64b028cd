//! What a run reports while it goes: typed [`Event`]s, rendered by a [`Reporter`] as a live
//! display on a terminal, plain lines otherwise, and JSON lines with `--json`.

mod human;
mod json;

use std::time::Duration;

use serde::Serialize;

pub use human::HumanReporter;
pub use json::JsonReporter;

/// How a step ended, from the run's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins.
    RunStarted {
        workflow: String,
        steps: usize,
        jobs: usize,
        /// `--seed`: the run dispatches in lockstep rounds and replays exactly from it.
        #[serde(skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// A worker took a ready step: it looks the step up in the cache, then runs it. Every
    /// step that is not skipped is dispatched once per attempt.
    StepDispatched {
        step: String,
        /// The pool worker (0-based) that runs it.
        worker: usize,
        /// Which attempt this is (1 for the first).
        attempt: u32,
        /// How long the step waited in the ready queues (pickup latency), in microseconds.
        queue_wait_us: u64,
    },
    /// An attempt of a step starts: the cache had no result for it.
    StepStarted { step: String, attempt: u32 },
    /// An attempt failed, and the step will be tried again after `delay_ms`.
    StepRetrying {
        step: String,
        /// The attempt that failed.
        attempt: u32,
        message: String,
        /// The backoff before the next attempt: doubling per attempt, with seeded jitter.
        delay_ms: u64,
    },
    /// A running step reported its progress (through the SDK): `done` of `total` units.
    StepProgress {
        step: String,
        done: u64,
        /// Unknown when the task does not say.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A running step logged a line (through the SDK).
    StepLog {
        step: String,
        level: crate::sandbox::LogLevel,
        message: String,
    },
    /// A running step has shown no output or heartbeat for `silent_ms`. It keeps running until
    /// it ends or its timeout stops it.
    StepStuck { step: String, silent_ms: u64 },
    /// The circuit breaker of a task module changed state.
    Circuit {
        /// The task, as the workflow names it.
        module: String,
        state: CircuitState,
        message: String,
    },
    /// A step reached its final state.
    StepFinished {
        step: String,
        status: StepStatus,
        /// The sandbox outcome kind (`success`, `exit`, `trap`, `out_of_fuel`, `timed_out`,
        /// `memory_limit`, `output_limit`), or `outputs`/`host_error`, or `skipped`.
        outcome: &'static str,
        /// The guest's exit code, when it exited.
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// One-line explanation for a failure or a skip.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        attempts: u32,
        fuel_used: u64,
        /// Peak linear memory of the last attempt, in bytes.
        peak_memory: u64,
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
        /// Whether the result was kept from the run that `--resume` continues: the module did
        /// not run.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        /// The step's action key, once it was computed.
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<hermetic_cache::Digest>,
        /// The published output files with their digests (in the run journal, not in
        /// `--json`, which lists `outputs`).
        #[serde(skip)]
        files: Vec<hermetic_cache::FileEntry>,
        /// Whether the step's stdout or stderr is in `.hermetic/logs/<step>/` (the run journal
        /// links them; not in `--json`).
        #[serde(skip)]
        logs: bool,
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

/// The state of a task module's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Too many consecutive failures: steps using the module fail without running.
    Open,
    /// The cool-down passed: one step is tried.
    HalfOpen,
    /// A step using the module succeeded: steps run normally again.
    Closed,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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

    /// Handles one event that happened `at` after the run started. The pool calls this one;
    /// reporters that keep time (the run journal) override it.
    fn stamped(&mut self, at: Duration, event: &Event) {
        let _ = at;
        self.event(event);
    }

    /// Called every few milliseconds while the run goes, after the batch of events since the
    /// last call if there was one: a reporter that buffers writes out here what is due.
    fn flush(&mut self) {}

    /// Writes out everything buffered, due or not: before the process ends without unwinding
    /// (the chaos suite's `process_kill`).
    fn flush_all(&mut self) {
        self.flush();
    }
}

/// Microseconds, for events and metrics.
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// Milliseconds, for events.
pub fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
