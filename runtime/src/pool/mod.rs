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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::events::{Event, Reporter, RunStatus, StepStatus, millis};
use crate::plan::Plan;
use crate::sandbox::Sandbox;
use crate::workflow::DepOutcome;

pub use attempt::{AttemptResult, run_attempt};

/// The final state of every step and of the run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// How the run ended.
    pub status: RunStatus,
    /// Each step's final status, in plan order.
    pub steps: Vec<Option<StepStatus>>,
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
        }
    }

    /// Runs every step to a final state, or until `interrupt` resolves.
    pub async fn run(
        &self,
        reporter: &mut dyn Reporter,
        interrupt: impl Future<Output = ()>,
    ) -> RunSummary {
        let started = Instant::now();
        // Shared by every attempt; if it cannot be created, each attempt reports the path when
        // it fails to mount it.
        let _ = self.plan.prepare_dirs();
        let plan = &self.plan;
        let n = plan.steps.len();
        reporter.event(&Event::RunStarted {
            workflow: plan.workflow.name.clone(),
            steps: n,
            jobs: self.jobs,
        });

        let mut status: Vec<Option<StepStatus>> = vec![None; n];
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
                let plan = self.plan.clone();
                let sandbox = self.sandbox.clone();
                reporter.event(&Event::StepStarted {
                    step: plan.steps[i].name.clone(),
                    attempt: 1,
                });
                let task = running.spawn(async move {
                    let result = attempt::run_with_retries(&plan, &sandbox, i).await;
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
                        if let Ok((_, (i, result))) = joined {
                            status[i] = Some(self.report(i, &result, reporter));
                        }
                    }
                    break;
                }
                joined = running.join_next_with_id() => {
                    let Some(joined) = joined else { continue };
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
                    self.release_dependents(i, &mut waiting, &mut ready);
                }
            }
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
            duration_ms: millis(started.elapsed()),
        });
        RunSummary {
            status: run_status,
            steps: status,
        }
    }

    /// Reports the retries and the end of step `i`; returns its final status.
    fn report(&self, i: usize, result: &AttemptResult, reporter: &mut dyn Reporter) -> StepStatus {
        let step = &self.plan.steps[i];
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
    }
}
