//! `--seed N`: the pool in lockstep rounds, so that a run replays exactly.
//!
//! Free-running workers race: which step a worker takes next depends on which step ended
//! first, which is timing. Under `--seed` the pool runs in rounds instead. The coordinator
//! (this module, on its own thread) takes up to one ready step per worker, the most urgent
//! first: priority, then critical path, then a tie-break drawn from the seed. It hands them to
//! the workers in an order drawn from the seed, reporting a `step_dispatched` event for each,
//! waits for the whole round, then settles the steps in dispatch order and queues what became
//! ready. Every choice is a function of the seed and of the steps' outcomes, never of timing,
//! so the same seed gives the same dispatch events, and a different seed explores another
//! order. The price is parallelism: a round lasts as long as its slowest step.
//!
//! The pool's clock is virtual here: one second per round (see [`Shared::rounds`]).

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use hermetic_cache::Digest;

use super::cached::StepEnd;
use super::graph::Graph;
use super::queue::Ready;
use super::retry::Retrying;
use super::rng::{Rng, splitmix64};
use super::worker::{Settled, Shared, Worker};

/// A ready step in a seeded run: ties of priority and critical path are broken by a value
/// drawn from the seed, not by the order of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seeded {
    ready: Ready,
    tie_break: u64,
}

impl Ord for Seeded {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (
            self.ready.priority,
            self.ready.critical_path,
            self.tie_break,
        )
            .cmp(&(
                other.ready.priority,
                other.ready.critical_path,
                other.tie_break,
            ))
            .then(self.ready.order.cmp(&other.ready.order))
    }
}

impl PartialOrd for Seeded {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// One step handed to a worker for a round.
struct Job {
    /// Its place in the round's dispatch order.
    slot: usize,
    step: usize,
    deps: BTreeMap<String, Digest>,
    retrying: Option<Retrying>,
}

/// Runs the whole plan in rounds on `workers` worker threads; returns when every step has a
/// final state or the run is cancelled.
pub(crate) fn run(shared: &Shared, workers: usize) {
    let seeded = |ready: Ready| Seeded {
        ready,
        tie_break: splitmix64(shared.seed ^ (ready.index() as u64).wrapping_mul(0xA24B_AED4)),
    };
    let mut heap: BinaryHeap<Seeded> = Graph::roots(&shared.plan).into_iter().map(seeded).collect();
    let mut rng = Rng::new(shared.seed);
    std::thread::scope(|scope| {
        let (ended_tx, ended) = mpsc::channel::<(usize, Option<StepEnd>)>();
        let mut to_worker = Vec::new();
        for me in 0..workers {
            let (tx, rx) = mpsc::channel::<Job>();
            let ended_tx = ended_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hermetic-worker-{me}"))
                .spawn_scoped(scope, move || {
                    let _span = tracing::debug_span!("worker", id = me).entered();
                    let mut worker = Worker::new(shared);
                    for job in rx {
                        let end = worker.execute(shared, job.step, job.deps, job.retrying);
                        if ended_tx.send((job.slot, end)).is_err() {
                            break;
                        }
                    }
                });
            if spawned.is_ok() {
                to_worker.push(tx);
            }
        }
        if to_worker.is_empty() {
            return;
        }
        let mut round = 0u64;
        while !heap.is_empty() && !shared.is_over() {
            if let Some(rounds) = &shared.rounds {
                rounds.store(round, Ordering::SeqCst);
            }
            round += 1;
            let _span = tracing::debug_span!("round", n = round).entered();
            // The round: up to one step per worker. Steps that must not run end here, and may
            // release others into this same round.
            let mut slots: Vec<usize> = (0..to_worker.len()).collect();
            rng.shuffle(&mut slots);
            let mut batch = Vec::new();
            while batch.len() < to_worker.len() {
                let Some(next) = heap.pop() else { break };
                let i = next.ready.index();
                let worker = slots[batch.len()];
                match shared.start(worker, i) {
                    Err(released) => {
                        shared.mark_ready(&released.ready);
                        heap.extend(released.ready.iter().copied().map(seeded));
                        shared.check_done(&released);
                    }
                    Ok((deps, retrying)) => batch.push((worker, i, deps, retrying)),
                }
            }
            let dispatched: Vec<usize> = batch.iter().map(|(_, i, ..)| *i).collect();
            for (slot, (worker, step, deps, retrying)) in batch.into_iter().enumerate() {
                let job = Job {
                    slot,
                    step,
                    deps,
                    retrying,
                };
                // A worker that died (it cannot: panics are caught) would leave its slot empty,
                // which ends the run below.
                let _ = to_worker[worker].send(job);
            }
            let mut ends: Vec<Option<StepEnd>> = dispatched.iter().map(|_| None).collect();
            for _ in 0..dispatched.len() {
                let Ok((slot, end)) = ended.recv() else { break };
                ends[slot] = end;
            }
            if ends.iter().any(Option::is_none) {
                // Interrupted: the running attempts were abandoned.
                break;
            }
            for (i, end) in dispatched.into_iter().zip(ends.into_iter().flatten()) {
                match shared.settle(i, end) {
                    Settled::Released(released) => {
                        shared.mark_ready(&released.ready);
                        heap.extend(released.ready.iter().copied().map(seeded));
                        shared.check_done(&released);
                    }
                    // The next attempt waits for its time on its worker, in a later round.
                    Settled::Retry(ready, _) => {
                        shared.mark_ready(&[ready]);
                        heap.push(seeded(ready));
                    }
                }
            }
        }
        // Closing the job channels ends the workers.
        drop(to_worker);
    });
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;

    use super::*;

    fn seeded(priority: u8, critical_path: u32, tie_break: u64, index: usize) -> Seeded {
        Seeded {
            ready: Ready {
                priority,
                critical_path,
                order: Reverse(index),
            },
            tie_break,
        }
    }

    #[test]
    fn priority_and_critical_path_come_before_the_seeded_tie_break() {
        let mut heap: BinaryHeap<Seeded> = [
            seeded(5, 1, 900, 0),
            seeded(9, 1, 1, 1),
            seeded(5, 3, 2, 2),
            seeded(5, 1, 950, 3),
        ]
        .into_iter()
        .collect();
        let order: Vec<usize> =
            std::iter::from_fn(|| heap.pop().map(|s| s.ready.index())).collect();
        assert_eq!(order, [1, 2, 3, 0]);
    }
}
