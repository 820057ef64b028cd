//! What the pool knows about the run's graph while it runs: each step's final state, its key,
//! its outputs' tree digest, how many dependencies it still waits for, the steps waiting to be
//! retried, the first failure (for fail-fast) and the modules' circuit breakers. One lock
//! guards it all, taken once when a step starts and once when it ends.

use std::time::Duration;

use hermetic_cache::Digest;

use super::StepKey;
use super::attempt::AttemptResult;
use super::breaker::{Breakers, Module};
use super::queue::Ready;
use super::retry::Retrying;
use crate::events::{Event, StepStatus};
use crate::plan::{Plan, PlannedStep};
use crate::workflow::{Condition, DepOutcome, TaskRef};

/// The run's progress through the graph.
#[derive(Debug)]
pub(crate) struct Graph {
    /// Each step's final state, once it has one.
    pub status: Vec<Option<StepStatus>>,
    /// Each step's key record, once it ran or was served from the cache.
    pub keys: Vec<Option<StepKey>>,
    /// The Merkle root of each finished step's outputs, for its dependents' keys (and, once
    /// the run has ended, for `RunSummary::key_components`).
    pub output_trees: Vec<Option<Digest>>,
    /// How many dependencies of each step have not reached a final state.
    waiting: Vec<usize>,
    /// Each step's place in the ready queues ([`ready_entry`]), side by side: a step that
    /// ends releases its dependents with these, without reading each dependent's
    /// `PlannedStep` and definition (a root of the bench's wide DAG has 99 dependents, whose
    /// plans no worker has read yet).
    entries: Vec<Ready>,
    /// Steps without a final state; the run is over at 0.
    unfinished: usize,
    /// The attempts so far of each step that failed and waits to be tried again (boxed: few
    /// steps ever retry, and every step's start looks here).
    retrying: Vec<Option<Box<Retrying>>>,
    /// Run every step that can run after a failure (`--keep-going`), rather than stop
    /// starting steps at the first one.
    keep_going: bool,
    /// The first step that failed and was not allowed to: fail-fast stops here.
    first_failure: Option<usize>,
    /// Each task module's circuit breaker.
    breakers: Breakers,
    /// Events about the graph (circuit breakers) for the caller to send; see
    /// [`Graph::take_events`].
    events: Vec<Event>,
}

/// What to do with a step taken from a queue.
#[derive(Debug)]
pub(crate) enum Start {
    /// Run it: its dependencies' output digests (see [`dep_trees`]), for its key, and its
    /// failed attempts so far if it is being retried.
    Run(Vec<Digest>, Option<Retrying>),
    /// It must not run, for this reason; it is marked skipped already.
    Skip(String, Released),
    /// It fails without running (its module's circuit breaker is open); it is marked failed.
    Refuse(String, Released),
}

/// What a step reaching its final state changed.
#[derive(Debug)]
pub(crate) struct Released {
    /// The steps that became ready.
    pub ready: Vec<Ready>,
    /// Steps still without a final state, this one counted as final.
    pub unfinished: usize,
}

impl Graph {
    pub fn new(plan: &Plan, keep_going: bool) -> Self {
        let n = plan.steps.len();
        Self {
            status: vec![None; n],
            keys: vec![None; n],
            output_trees: vec![None; n],
            waiting: plan.steps.iter().map(|s| s.deps.len()).collect(),
            entries: (0..n).map(|i| ready_entry(plan, i)).collect(),
            unfinished: n,
            retrying: vec![None; n],
            keep_going,
            first_failure: None,
            breakers: Breakers::new(plan.workflow.circuit_breaker),
            events: Vec::new(),
        }
    }

    /// Events the last calls produced, for the caller to send.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The steps ready at the start.
    pub fn roots(plan: &Plan) -> Vec<Ready> {
        plan.steps
            .iter()
            .filter(|s| s.deps.is_empty())
            .map(|s| ready_entry(plan, s.index))
            .collect()
    }

    /// Decides whether step `i`, whose dependencies all finished, runs. `now` is the pool's
    /// clock, for the circuit breaker.
    pub fn start(&mut self, plan: &Plan, i: usize, now: Duration) -> Start {
        let retrying = self.retrying[i].take().map(|r| *r);
        if retrying.is_none() {
            if let Some(reason) = self.skip_reason(plan, i) {
                let released = self.finish(plan, i, StepStatus::Skipped);
                return Start::Skip(reason, released);
            }
            let step = &plan.steps[i];
            match self
                .breakers
                .admit(|| module(plan, step), i, &step.name, now)
            {
                Ok(event) => self.events.extend(event),
                Err(reason) => {
                    self.note_failure(plan, i);
                    let released = self.finish(plan, i, StepStatus::Failed);
                    return Start::Refuse(reason, released);
                }
            }
        }
        Start::Run(dep_trees(plan, &self.output_trees, i), retrying)
    }

    /// Records that step `i` failed an attempt and will be tried again: it keeps its place,
    /// without a final state, until it is taken from a queue again.
    pub fn retry(&mut self, i: usize, retrying: Retrying) {
        self.retrying[i] = Some(Box::new(retrying));
    }

    /// Records the end of step `i`.
    pub fn finished(&mut self, plan: &Plan, i: usize, result: Finished, now: Duration) -> Released {
        self.keys[i] = result.key;
        self.output_trees[i] = Some(result.output_tree);
        let step = &plan.steps[i];
        let event = self
            .breakers
            .record(|| module(plan, step), &step.name, result.succeeded, now);
        self.events.extend(event);
        let status = if result.succeeded {
            StepStatus::Succeeded
        } else {
            self.note_failure(plan, i);
            StepStatus::Failed
        };
        self.finish(plan, i, status)
    }

    /// Remembers the first failure that fails the run, which stops fail-fast runs.
    fn note_failure(&mut self, plan: &Plan, i: usize) {
        if !plan.step_def(&plan.steps[i]).allow_failure {
            self.first_failure.get_or_insert(i);
        }
    }

    fn finish(&mut self, plan: &Plan, i: usize, status: StepStatus) -> Released {
        self.status[i] = Some(status);
        self.unfinished -= 1;
        let mut ready = Vec::new();
        for &d in &plan.steps[i].dependents {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                ready.push(self.entries[d]);
            }
        }
        Released {
            ready,
            unfinished: self.unfinished,
        }
    }

    /// Why step `i` must not run, given its dependencies' final states, or `None` to run it.
    fn skip_reason(&self, plan: &Plan, i: usize) -> Option<String> {
        let step = &plan.steps[i];
        let def = plan.step_def(step);
        let named = |&j: &usize| (plan.steps[j].name.as_str(), self.outcome(j));
        // The default `when:` needs only whether every dependency succeeded, which every
        // start asks and which takes no allocation; any other condition looks its
        // dependencies' outcomes up by name.
        let holds = if def.when == Condition::Success {
            step.deps
                .iter()
                .all(|&j| self.outcome(j) == DepOutcome::Succeeded)
        } else {
            let deps: Vec<(&str, DepOutcome)> = step.deps.iter().map(named).collect();
            let outcome_of = |name: &str| -> DepOutcome {
                deps.iter()
                    .find(|(n, _)| *n == name)
                    .map_or(DepOutcome::Skipped, |(_, o)| *o)
            };
            let all: Vec<DepOutcome> = deps.iter().map(|(_, o)| *o).collect();
            def.when.eval(outcome_of, &all)
        };
        if holds {
            // Fail-fast: after a failure, only steps whose `when:` asks to run after failures
            // (anything but the default `success`) still start.
            return match self.first_failure {
                Some(f) if !self.keep_going && def.when == Condition::Success => Some(format!(
                    "not started: `{}` failed, and the run stops at the first failure \
                     (--keep-going runs every step that can run)",
                    plan.steps[f].name
                )),
                _ => None,
            };
        }
        let not_ok: Vec<String> = step
            .deps
            .iter()
            .map(named)
            .filter(|(_, o)| *o != DepOutcome::Succeeded)
            .map(|(d, o)| {
                let verb = if o == DepOutcome::Failed {
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

    /// How dependency `j` ended, as `when:` sees it: a step without a final state counts as
    /// skipped.
    fn outcome(&self, j: usize) -> DepOutcome {
        match self.status[j] {
            Some(StepStatus::Succeeded) => DepOutcome::Succeeded,
            Some(StepStatus::Failed) => DepOutcome::Failed,
            _ => DepOutcome::Skipped,
        }
    }
}

/// Step `i`'s place in the ready queues.
pub(crate) fn ready_entry(plan: &Plan, i: usize) -> Ready {
    let s = &plan.steps[i];
    Ready::new(s.priority, s.critical_path, i)
}

/// Step `step`'s module, for its circuit breaker.
fn module<'a>(plan: &'a Plan, step: &PlannedStep) -> Module<'a> {
    let name = match &plan.step_def(step).task {
        TaskRef::Crate(name) => name.as_str(),
        TaskRef::Wasm(path) => path.to_str().unwrap_or("the module"),
    };
    Module {
        digest: step.program.digest,
        name,
    }
}

/// What the graph keeps of a finished step, taken from its result before the graph is locked
/// (so that the lock is not held while its output tree is hashed).
#[derive(Debug)]
pub(crate) struct Finished {
    pub succeeded: bool,
    /// Its key record, if its key was computed.
    pub key: Option<StepKey>,
    /// The Merkle root of its outputs, for its dependents' keys.
    pub output_tree: Digest,
}

/// The Merkle roots of the outputs of step `i`'s dependencies, in the order of its
/// [`PlannedStep::deps`](crate::plan::PlannedStep::deps), as [`Plan::action_key`] takes them.
/// `output_trees` holds each step's root; `None` (a step that published nothing, such as a
/// skipped one) counts as no files.
pub(crate) fn dep_trees(plan: &Plan, output_trees: &[Option<Digest>], i: usize) -> Vec<Digest> {
    plan.steps[i]
        .deps
        .iter()
        .map(|&d| output_trees[d].unwrap_or_else(|| hermetic_cache::tree_digest(&[])))
        .collect()
}

impl Finished {
    /// What the graph keeps of `result`.
    pub fn take(result: &mut AttemptResult) -> Self {
        let key = result.key.map(|key| StepKey {
            key,
            cached: result.cached,
            succeeded: result.succeeded,
            output_files: result.output_files.clone(),
        });
        Self {
            succeeded: result.succeeded,
            key,
            output_tree: result.output_tree(),
        }
    }
}
