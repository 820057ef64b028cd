//! What the pool knows about the run's graph while it runs: each step's final state, its key,
//! its outputs' tree digest, and how many dependencies it still waits for. One lock guards it
//! all, taken once when a step starts and once when it ends.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use hermetic_cache::Digest;

use super::StepKey;
use super::attempt::AttemptResult;
use super::queue::Ready;
use crate::events::StepStatus;
use crate::plan::Plan;
use crate::workflow::DepOutcome;

/// The run's progress through the graph.
#[derive(Debug)]
pub(crate) struct Graph {
    /// Each step's final state, once it has one.
    pub status: Vec<Option<StepStatus>>,
    /// Each step's key record, once it ran or was served from the cache.
    pub keys: Vec<Option<StepKey>>,
    /// The Merkle root of each finished step's outputs, for its dependents' keys.
    output_trees: Vec<Option<Digest>>,
    /// How many dependencies of each step have not reached a final state.
    waiting: Vec<usize>,
    /// Steps without a final state; the run is over at 0.
    unfinished: usize,
}

/// What to do with a step taken from a queue.
#[derive(Debug)]
pub(crate) enum Start {
    /// Run it; its dependencies' output digests by name, for its key.
    Run(BTreeMap<String, Digest>),
    /// It must not run, for this reason; it is marked skipped already.
    Skip(String, Released),
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
    pub fn new(plan: &Plan) -> Self {
        let n = plan.steps.len();
        Self {
            status: vec![None; n],
            keys: vec![None; n],
            output_trees: vec![None; n],
            waiting: plan.steps.iter().map(|s| s.deps.len()).collect(),
            unfinished: n,
        }
    }

    /// The steps ready at the start.
    pub fn roots(plan: &Plan) -> Vec<Ready> {
        plan.steps
            .iter()
            .filter(|s| s.deps.is_empty())
            .map(|s| ready_entry(plan, s.index))
            .collect()
    }

    /// Decides whether step `i`, whose dependencies all finished, runs.
    pub fn start(&mut self, plan: &Plan, i: usize) -> Start {
        if let Some(reason) = self.skip_reason(plan, i) {
            let released = self.finish(plan, i, StepStatus::Skipped);
            return Start::Skip(reason, released);
        }
        let deps = plan.steps[i]
            .deps
            .iter()
            .map(|&d| {
                let tree = self.output_trees[d].unwrap_or_else(|| hermetic_cache::tree_digest(&[]));
                (plan.steps[d].name.clone(), tree)
            })
            .collect();
        Start::Run(deps)
    }

    /// Records the end of step `i`.
    pub fn finished(&mut self, plan: &Plan, i: usize, result: &AttemptResult) -> Released {
        self.keys[i] = step_key(result);
        self.output_trees[i] = Some(result.output_tree());
        let status = if result.succeeded {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        self.finish(plan, i, status)
    }

    fn finish(&mut self, plan: &Plan, i: usize, status: StepStatus) -> Released {
        self.status[i] = Some(status);
        self.unfinished -= 1;
        let mut ready = Vec::new();
        for &d in &plan.steps[i].dependents {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                ready.push(ready_entry(plan, d));
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
        let deps: Vec<(&str, DepOutcome)> = step
            .deps
            .iter()
            .map(|&j| {
                let outcome = match self.status[j] {
                    Some(StepStatus::Succeeded) => DepOutcome::Succeeded,
                    Some(StepStatus::Failed) => DepOutcome::Failed,
                    _ => DepOutcome::Skipped,
                };
                (plan.steps[j].name.as_str(), outcome)
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

/// Step `i`'s place in the ready queues.
fn ready_entry(plan: &Plan, i: usize) -> Ready {
    let s = &plan.steps[i];
    Ready {
        priority: plan.step_def(s).priority,
        critical_path: s.critical_path,
        order: Reverse(i),
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
