//! A worker thread of the pool: it takes the most urgent ready step it can find, runs it to
//! its end (cache lookup, attempts, storing), records the end in the graph, and keeps the
//! steps that became ready for itself, where idle workers can steal them.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, watch};

use super::attempt::AttemptResult;
use super::cached::{self, StepContext};
use super::graph::{Graph, Released, Start};
use super::queue::{Queues, StealOrder};
use crate::events::{Event, StepStatus};
use crate::plan::Plan;

/// What the workers of one run share. Every field is here because more than one thread needs
/// it.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The plan, for each step's definition.
    pub plan: Arc<Plan>,
    /// What running a step needs: the sandbox, the scratch directories, the cache, the event
    /// channel.
    pub ctx: Arc<StepContext>,
    /// The ready steps.
    pub queues: Queues,
    /// Final states and readiness; see [`Graph`].
    pub graph: Mutex<Graph>,
    /// Set once every step has a final state, so idle workers exit without taking the graph's
    /// lock.
    pub done: AtomicBool,
    /// Set by an interrupt: no step starts any more, and running ones are abandoned.
    pub cancelled: AtomicBool,
    /// Flipped to `true` with `cancelled`, to abandon a running step at its next await.
    pub cancel: watch::Sender<bool>,
    /// Workers still running.
    pub live: AtomicUsize,
    /// Notified by the last worker to exit.
    pub exited: Notify,
    /// The seed of the steal order.
    pub seed: u64,
}

impl Shared {
    /// The graph, locked. A panic inside a step never happens under this lock, so a poisoned
    /// lock is still consistent.
    pub fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the run: running steps are abandoned, idle workers wake up and exit.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.send_replace(true);
        self.queues.wake_all();
    }

    fn is_over(&self) -> bool {
        self.done.load(Ordering::SeqCst) || self.cancelled.load(Ordering::SeqCst)
    }

    /// After a step reached a final state: its released dependents go to `worker`'s queue;
    /// the last step wakes everyone to exit.
    fn released(&self, worker: usize, released: &Released) {
        self.queues.push_local(worker, &released.ready);
        if released.unfinished == 0 {
            self.done.store(true, Ordering::SeqCst);
            self.queues.wake_all();
        }
    }

    fn send(&self, event: Event) {
        self.ctx.events.send(event);
    }
}

/// The body of worker thread `me`.
pub(crate) fn run(shared: &Shared, me: usize, workers: usize) {
    // wasm runs here; tokio on this thread serves the step's timers and the cache's I/O.
    let mut runtime = new_runtime();
    let mut steal = StealOrder::new(shared.seed, me, workers);
    let mut cancel = shared.cancel.subscribe();
    while !shared.is_over() {
        let seen = shared.queues.generation();
        let Some(ready) = shared.queues.pop(me, steal.next_round()) else {
            if !shared.is_over() {
                shared.queues.sleep(seen);
            }
            continue;
        };
        let i = ready.index();
        let name = &shared.plan.steps[i].name;
        let start = shared.graph().start(&shared.plan, i);
        let deps = match start {
            Start::Skip(reason, released) => {
                shared.send(skipped_event(name, reason));
                shared.released(me, &released);
                continue;
            }
            Start::Run(deps) => deps,
        };
        let outcome = match &runtime {
            Ok(rt) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    tokio::select! {
                        biased;
                        result = cached::run_step(&shared.ctx, i, deps) => Some(result),
                        _ = cancel.wait_for(|c| *c) => None,
                    }
                })
            })),
            Err(e) => Ok(Some(AttemptResult::host_error(format!(
                "cannot start the worker's async runtime: {e}"
            )))),
        };
        let result = match outcome {
            Ok(Some(result)) => result,
            // Interrupted: the attempt was dropped, which removed its directories.
            Ok(None) => break,
            Err(panic) => {
                // A panic in a step is a bug in hermetic. The step fails with it, so that it
                // and its dependents still reach a final state; the runtime starts afresh.
                runtime = new_runtime();
                AttemptResult::host_error(format!("internal error: {}", panic_message(&*panic)))
            }
        };
        let released = shared.graph().finished(&shared.plan, i, &result);
        // Before the dependents are visible to other workers, so that a dependent's start is
        // never reported before this step's end.
        for event in finished_events(&shared.plan, i, &result) {
            shared.send(event);
        }
        shared.released(me, &released);
    }
    if shared.live.fetch_sub(1, Ordering::SeqCst) == 1 {
        shared.exited.notify_one();
    }
}

fn new_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// The events of a step's end: its warnings, its retries, and its final state.
fn finished_events(plan: &Plan, i: usize, result: &AttemptResult) -> Vec<Event> {
    let step = &plan.steps[i];
    let mut events: Vec<Event> = result
        .warnings
        .iter()
        .map(|message| Event::Warning {
            step: Some(step.name.clone()),
            message: message.clone(),
        })
        .collect();
    events.extend(
        result
            .retried
            .iter()
            .map(|(attempt, message)| Event::StepRetrying {
                step: step.name.clone(),
                attempt: *attempt,
                message: message.clone(),
            }),
    );
    let allow_failure = plan.step_def(step).allow_failure;
    events.push(result.finished_event(&step.name, allow_failure));
    events
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
