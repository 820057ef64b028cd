//! Running a [`Plan`]: steps start as soon as their dependencies finish, up to `jobs` at once.
//!
//! This is the simple, correct executor; the work-stealing pool replaces [`Executor`]'s
//! internals without changing its contract:
//!
//! * a step starts only after every dependency reached a final state, and only if its `when:`
//!   condition holds (by default: every dependency succeeded); otherwise it is skipped;
//! * ready steps start in order of priority, then longest critical path, then workflow order;
//! * a failed step never stops independent branches;
//! * an interrupt aborts running attempts (their per-attempt directories are removed) and
//!   publishes nothing more.

mod attempt;
mod cached;
mod commit;
mod scratch;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use hermetic_cache::Digest;

use commit::Committer;

use crate::events::{Event, Reporter, RunStatus, StepStatus, millis};
use crate::plan::{KeyComponents, Plan};
use crate::sandbox::Sandbox;
use crate::workflow::DepOutcome;

pub use attempt::{AttemptResult, run_attempt};
pub use cached::CacheUse;
pub use scratch::{Lease, Scratch, ScratchPool};

/// The final state of every step and of the run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// How the run ended.
    pub status: RunStatus,
    /// Each step's final status, in plan order.
    pub steps: Vec<Option<StepStatus>>,
    /// Each step that ran or was served from the cache: its key, what the key was computed
    /// from, and whether it was a hit. In plan order.
    pub keys: Vec<Option<StepKey>>,
}

/// A step's action key as used in one run.
#[derive(Debug, Clone)]
pub struct StepKey {
    /// The key.
    pub key: Digest,
    /// What it was computed from.
    pub components: KeyComponents,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// Whether the step succeeded.
    pub succeeded: bool,
    /// The published output files, as hashed when they were collected or restored.
    pub output_files: Vec<hermetic_cache::FileEntry>,
}

/// Runs the steps of a plan.
#[derive(Debug)]
pub struct Executor {
    /// The plan, shared with attempt tasks.
    plan: Arc<Plan>,
    /// The sandbox, shared with attempt tasks.
    sandbox: Arc<Sandbox>,
    /// How many attempts may run at once.
    jobs: usize,
    /// Where results are looked up and stored; `None` runs everything and stores nothing.
    cache: Option<CacheUse>,
}

/// An entry in the ready queue. Ordered so that the max-heap pops the most urgent step.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: u8,
    critical_path: u32,
    /// Reversed index: earlier steps in the file win ties.
    order: Reverse<usize>,
}

impl Executor {
    /// An executor for `plan` running up to `jobs` steps at once.
    pub fn new(plan: Arc<Plan>, sandbox: Arc<Sandbox>, jobs: usize) -> Self {
        Self {
            plan,
            sandbox,
            jobs: jobs.max(1),
            cache: None,
        }
    }

    /// Uses `cache` for the run's results.
    pub fn with_cache(mut self, cache: CacheUse) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Runs every step to a final state, or until `interrupt` resolves.
    pub async fn run(
        &self,
        reporter: &mut dyn Reporter,
        interrupt: impl Future<Output = ()>,
    ) -> RunSummary {
        let started = Instant::now();
        // Attempts report what happens inside them (a step starting after a cache miss) through
        // this channel; the loop below forwards it to the reporter in order.
        let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        // Shared by every attempt; if it cannot be created, each attempt reports the path when
        // it fails to mount it.
        let _ = self.plan.prepare_dirs();
        // Fresh successes are stored in the background; see `commit`.
        let (committer, commits) = match &self.cache {
            Some(c) if c.write && !c.store.is_read_only() => {
                let (committer, queue) = Committer::start(c.store.clone(), events_tx.clone());
                (Some(committer), Some(queue))
            }
            _ => (None, None),
        };
        let ctx = Arc::new(cached::StepContext {
            plan: self.plan.clone(),
            sandbox: self.sandbox.clone(),
            // Dropped at the end of the run, which removes every idle scratch directory.
            scratch: Arc::new(ScratchPool::new(self.plan.state_dir.join("tmp"))),
            cache: self.cache.clone(),
            engine: self.sandbox.engine_digest(),
            events: events_tx,
            commits,
        });
        let plan = &self.plan;
        let n = plan.steps.len();
        reporter.event(&Event::RunStarted {
            workflow: plan.workflow.name.clone(),
            steps: n,
            jobs: self.jobs,
        });

        let mut status: Vec<Option<StepStatus>> = vec![None; n];
        let mut keys: Vec<Option<StepKey>> = vec![None; n];
        // The Merkle root of each finished step's outputs, for its dependents' keys.
        let mut output_trees: Vec<Option<Digest>> = vec![None; n];
        let mut waiting: Vec<usize> = plan.steps.iter().map(|s| s.deps.len()).collect();
        let mut ready = BinaryHeap::new();
        for s in &plan.steps {
            if s.deps.is_empty() {
                ready.push(self.ready_entry(s.index));
            }
        }
        let mut running: JoinSet<(usize, AttemptResult)> = JoinSet::new();
        // Which step each task runs, to attribute a task that panicked.
        let mut tasks: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut interrupted = false;
        tokio::pin!(interrupt);

        loop {
            while running.len() < self.jobs {
                let Some(Ready { order, .. }) = ready.pop() else {
                    break;
                };
                let i = order.0;
                if let Some(reason) = self.skip_reason(i, &status) {
                    status[i] = Some(StepStatus::Skipped);
                    reporter.event(&skipped_event(&plan.steps[i].name, reason));
                    self.release_dependents(i, &mut waiting, &mut ready);
                    continue;
                }
                let ctx = ctx.clone();
                let deps: BTreeMap<String, Digest> = plan.steps[i]
                    .deps
                    .iter()
                    .map(|&d| {
                        let tree =
                            output_trees[d].unwrap_or_else(|| hermetic_cache::tree_digest(&[]));
                        (plan.steps[d].name.clone(), tree)
                    })
                    .collect();
                let task = running.spawn(async move {
                    let result = cached::run_step(&ctx, i, deps).await;
                    (i, result)
                });
                tasks.insert(task.id(), i);
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    running.abort_all();
                    // An attempt that finished before the abort took effect has published its
                    // outputs: report it as finished rather than lose it.
                    while let Some(joined) = running.join_next_with_id().await {
                        while let Ok(event) = events_rx.try_recv() {
                            reporter.event(&event);
                        }
                        if let Ok((_, (i, result))) = joined {
                            status[i] = Some(self.report(i, &result, reporter));
                            keys[i] = step_key(&result);
                        }
                    }
                    break;
                }
                // Before `joined`: a task sends its events before it finishes.
                Some(event) = events_rx.recv() => reporter.event(&event),
                joined = running.join_next_with_id() => {
                    let Some(joined) = joined else { continue };
                    while let Ok(event) = events_rx.try_recv() {
                        reporter.event(&event);
                    }
                    let (i, result) = match joined {
                        Ok((id, r)) => {
                            tasks.remove(&id);
                            r
                        }
                        Err(e) => {
                            // A panic in an attempt is a bug in hermetic. The step fails with it,
                            // so that it and its dependents still reach a final state.
                            let i = tasks[&e.id()];
                            (i, AttemptResult::host_error(format!("internal error: {e}")))
                        }
                    };
                    status[i] = Some(self.report(i, &result, reporter));
                    keys[i] = step_key(&result);
                    output_trees[i] = Some(result.output_tree());
                    self.release_dependents(i, &mut waiting, &mut ready);
                }
            }
        }

        // Every step has ended: store what is queued, and report what that warned about.
        if let Some(committer) = committer {
            committer.finish().await;
        }
        while let Ok(event) = events_rx.try_recv() {
            reporter.event(&event);
        }

        let count = |s: StepStatus| status.iter().filter(|x| **x == Some(s)).count();
        let failed_hard = plan
            .steps
            .iter()
            .zip(&status)
            .any(|(s, st)| *st == Some(StepStatus::Failed) && !plan.step_def(s).allow_failure);
        let run_status = if interrupted {
            RunStatus::Interrupted
        } else if failed_hard {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        reporter.event(&Event::RunFinished {
            status: run_status,
            succeeded: count(StepStatus::Succeeded),
            failed: count(StepStatus::Failed),
            skipped: count(StepStatus::Skipped),
            cached: keys.iter().flatten().filter(|k| k.cached).count(),
            duration_ms: millis(started.elapsed()),
        });
        RunSummary {
            status: run_status,
            steps: status,
            keys,
        }
    }

    /// Reports the retries and the end of step `i`; returns its final status.
    fn report(&self, i: usize, result: &AttemptResult, reporter: &mut dyn Reporter) -> StepStatus {
        let step = &self.plan.steps[i];
        for message in &result.warnings {
            reporter.event(&Event::Warning {
                step: Some(step.name.clone()),
                message: message.clone(),
            });
        }
        for (attempt, message) in &result.retried {
            reporter.event(&Event::StepRetrying {
                step: step.name.clone(),
                attempt: *attempt,
                message: message.clone(),
            });
        }
        let allow_failure = self.plan.step_def(step).allow_failure;
        reporter.event(&result.finished_event(&step.name, allow_failure));
        if result.succeeded {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        }
    }

    fn ready_entry(&self, i: usize) -> Ready {
        let s = &self.plan.steps[i];
        let def = self.plan.step_def(s);
        Ready {
            priority: def.priority,
            critical_path: s.critical_path,
            order: Reverse(i),
        }
    }

    fn release_dependents(&self, i: usize, waiting: &mut [usize], ready: &mut BinaryHeap<Ready>) {
        for &d in &self.plan.steps[i].dependents {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(self.ready_entry(d));
            }
        }
    }

    /// Why step `i` must not run, given its dependencies' final states, or `None` to run it.
    fn skip_reason(&self, i: usize, status: &[Option<StepStatus>]) -> Option<String> {
        let step = &self.plan.steps[i];
        let def = self.plan.step_def(step);
        let deps: Vec<(&str, DepOutcome)> = step
            .deps
            .iter()
            .map(|&j| {
                let outcome = match status[j] {
                    Some(StepStatus::Succeeded) => DepOutcome::Succeeded,
                    Some(StepStatus::Failed) => DepOutcome::Failed,
                    _ => DepOutcome::Skipped,
                };
                (self.plan.steps[j].name.as_str(), outcome)
            })
            .collect();
        let outcome_of = |name: &str| -> DepOutcome {
            deps.iter()
                .find(|(n, _)| *n == name)
                .map_or(DepOutcome::Skipped, |(_, o)| *o)
        };
        let all: Vec<DepOutcome> = deps.iter().map(|(_, o)| *o).collect();
        if def.when.eval(outcome_of, &all) {
            return None;
        }
        let not_ok: Vec<String> = deps
            .iter()
            .filter(|(_, o)| *o != DepOutcome::Succeeded)
            .map(|(d, o)| {
                let verb = if *o == DepOutcome::Failed {
                    "failed"
                } else {
                    "was skipped"
                };
                format!("`{d}` {verb}")
            })
            .collect();
        if not_ok.is_empty() {
            Some(format!("`when: {}` is false", def.when))
        } else {
            Some(format!("dependency {}", not_ok.join(", ")))
        }
    }
}

/// The key record of a finished step, if its key was computed.
fn step_key(result: &AttemptResult) -> Option<StepKey> {
    Some(StepKey {
        key: result.key?,
        components: result.components.clone()?,
        cached: result.cached,
        succeeded: result.succeeded,
        output_files: result.output_files.clone(),
    })
}

fn skipped_event(step: &str, reason: String) -> Event {
    Event::StepFinished {
        step: step.to_string(),
        status: StepStatus::Skipped,
        outcome: "skipped".into(),
        exit_code: None,
        message: Some(reason),
        attempts: 0,
        fuel_used: 0,
        duration_ms: 0,
        outputs: Vec::new(),
        allowed_failure: false,
        stderr_tail: String::new(),
        cached: false,
    }
}
