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
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use hermetic_cache::Digest;

use super::cached::StepEnd;
use super::graph::Graph;
use super::queue::Ready;
use super::retry::Retrying;
use super::rng::{Rng, splitmix64};
use super::worker::{Settled, Shared, Worker, run_again};

/// A ready step in a seeded run: ties of priority and critical path are broken by a value
/// drawn from the seed, not by the order of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seeded {
    ready: Ready,
    tie_break: u64,
}

impl Ord for Seeded {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.ready.urgency(), self.tie_break)
            .cmp(&(other.ready.urgency(), other.tie_break))
            .then(self.ready.cmp(&other.ready))
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
    deps: Vec<Digest>,
    retrying: Option<Retrying>,
}

/// How often the coordinator, waiting for a round, checks that the workers holding its steps
/// are still alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(20);

/// One worker thread, as the coordinator sees it.
struct WorkerThread<'scope> {
    /// Hands it a job.
    jobs: mpsc::Sender<Job>,
    /// Finished only when the thread ended: it was lost, if it held a job.
    thread: std::thread::ScopedJoinHandle<'scope, ()>,
}

/// Starts worker thread `me`, which runs jobs until its channel closes, sending each end to
/// `ended`.
fn spawn_worker<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    shared: &'scope Shared,
    me: usize,
    ended: mpsc::Sender<(usize, Option<StepEnd>)>,
) -> std::io::Result<WorkerThread<'scope>> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name(format!("hermetic-worker-{me}"))
        .spawn_scoped(scope, move || {
            let _span = tracing::debug_span!("worker", id = me).entered();
            let mut worker = Worker::new(shared, me);
            for job in rx {
                let attempt = job.retrying.as_ref().map_or(1, |r| r.attempt);
                let lost = shared
                    .ctx
                    .faults
                    .as_ref()
                    .is_some_and(|f| f.worker_lost(job.step, attempt));
                let end = worker.execute(shared, job.step, job.deps, job.retrying);
                if lost {
                    // An injected fault: the thread ends with the step's end unreported, as
                    // a thread killed mid-step would. The coordinator must notice.
                    return;
                }
                if ended.send((job.slot, end)).is_err() {
                    break;
                }
            }
        })?;
    Ok(WorkerThread { jobs, thread })
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
        let mut threads: Vec<WorkerThread<'_>> = (0..workers)
            .filter_map(|me| spawn_worker(scope, shared, me, ended_tx.clone()).ok())
            .collect();
        if threads.is_empty() {
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
            let mut slots: Vec<usize> = (0..threads.len()).collect();
            rng.shuffle(&mut slots);
            let mut batch = Vec::new();
            while batch.len() < threads.len() {
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
            // Each dispatched step: its worker, and how it was retried, in case it is lost.
            let dispatched: Vec<(usize, usize, Option<Retrying>)> = batch
                .iter()
                .map(|(worker, i, _, retrying)| (*worker, *i, retrying.clone()))
                .collect();
            for (slot, (worker, step, deps, retrying)) in batch.into_iter().enumerate() {
                let job = Job {
                    slot,
                    step,
                    deps,
                    retrying,
                };
                // A worker that is gone leaves its slot without an end, which the wait below
                // notices.
                let _ = threads[worker].jobs.send(job);
            }
            let mut ends: Vec<Option<StepEnd>> = dispatched.iter().map(|_| None).collect();
            let mut waiting = dispatched.len();
            while waiting > 0 {
                match ended.recv_timeout(LIVENESS_CHECK) {
                    Ok((slot, end)) => {
                        ends[slot] = end;
                        waiting -= 1;
                        if ends[slot].is_none() {
                            // Interrupted: the running attempts were abandoned.
                            break;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // A thread that ended while it held a step lost that step: the step
                        // runs again, on a new thread in the lost one's place.
                        for (slot, (worker, i, retrying)) in dispatched.iter().enumerate() {
                            if ends[slot].is_some() || !threads[*worker].thread.is_finished() {
                                continue;
                            }
                            ends[slot] = Some(lost_step(shared, *worker, *i, retrying.clone()));
                            waiting -= 1;
                            match spawn_worker(scope, shared, *worker, ended_tx.clone()) {
                                Ok(thread) => threads[*worker] = thread,
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot replace a lost worker");
                                }
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            if ends.iter().any(Option::is_none) {
                // Interrupted: the running attempts were abandoned.
                break;
            }
            for ((_, i, _), end) in dispatched.into_iter().zip(ends.into_iter().flatten()) {
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
        drop(threads);
    });
}

/// The end of step `i`, lost with worker `worker`.
fn lost_step(shared: &Shared, worker: usize, i: usize, retrying: Option<Retrying>) -> StepEnd {
    tracing::warn!(step = %shared.plan.steps[i].name, worker, "a worker thread was lost");
    let message = format!("worker {worker} was lost mid-step; the step runs again on a new worker");
    run_again(shared, i, retrying, message)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn seeded(priority: u8, critical_path: u32, tie_break: u64, index: usize) -> Seeded {
        Seeded {
            ready: Ready::new(priority, critical_path, index),
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
