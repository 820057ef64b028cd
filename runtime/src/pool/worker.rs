//! A worker thread of the pool: it takes the most urgent ready step it can find, runs it to
//! the end of one dispatch (cache lookup or attempt), records the end in the graph, and keeps
//! the steps that became ready for itself, where idle workers can steal them.
//!
//! Every step goes through the same three points, in both scheduling modes (free-running here,
//! lockstep rounds in [`super::lockstep`]): [`Shared::start`] before it runs, [`Worker::execute`]
//! on a worker, [`Shared::settle`] after it. These are the pool's hook points: dispatch events,
//! metrics, retries and the circuit breaker all live there, and so will fault injection.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hermetic_cache::Digest;
use tokio::sync::{Notify, watch};
use tracing::Instrument as _;

use super::attempt::AttemptResult;
use super::cached::{self, StepContext, StepEnd};
use super::graph::{Finished, Graph, Released, Start, ready_entry};
use super::queue::{Queues, Ready, StealOrder};
use super::retry::Retrying;
use crate::events::{Event, StepStatus, micros};
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
    /// When each step last became ready, in microseconds since the run started, so that its
    /// dispatch can report how long it waited (pickup latency).
    pub ready_at: Vec<AtomicU64>,
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
    /// The seed of the steal order, and under `--seed` of every scheduling choice.
    pub seed: u64,
    /// Under `--seed`, the number of lockstep rounds so far: the circuit breaker's clock, one
    /// second per round, so that a replay opens and closes breakers at the same steps.
    /// `None` in a free-running run, whose clock is the time since the run started.
    pub rounds: Option<AtomicU64>,
}

/// How one dispatch changed the run.
#[derive(Debug)]
pub(crate) enum Settled {
    /// The step reached its final state.
    Released(Released),
    /// The step waits for another attempt, not before the given time.
    Retry(Ready, Instant),
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

    pub fn is_over(&self) -> bool {
        self.done.load(Ordering::SeqCst) || self.cancelled.load(Ordering::SeqCst)
    }

    /// The pool's clock for the circuit breaker, given the run's time `at`: under `--seed`,
    /// the round instead.
    fn breaker_time(&self, at: Duration) -> Duration {
        match &self.rounds {
            Some(rounds) => Duration::from_secs(rounds.load(Ordering::SeqCst)),
            None => at,
        }
    }

    /// Records that the steps of `ready` became ready now.
    pub fn mark_ready(&self, ready: &[Ready]) {
        if ready.is_empty() {
            return;
        }
        let now = micros(self.ctx.events.now());
        for r in ready {
            self.ready_at[r.index()].store(now, Ordering::Relaxed);
        }
    }

    /// Before step `i` runs on `worker`: decides whether it runs, and if so reports its
    /// dispatch. A step that must not run is finished here (skipped, or failed by its open
    /// circuit breaker) and comes back as `Err`.
    pub fn start(
        &self,
        worker: usize,
        i: usize,
    ) -> Result<(Vec<Digest>, Option<Retrying>), Released> {
        // One read of the clock for the whole dispatch: the step's start and its events.
        let at = self.ctx.events.now();
        let mut graph = self.graph();
        let start = graph.start(&self.plan, i, self.breaker_time(at));
        let graph_events = graph.take_events();
        drop(graph);
        let events = &self.ctx.events;
        for event in graph_events {
            tracing::debug!(?event, "circuit breaker");
            events.send_at(at, event);
        }
        let name = &self.plan.steps[i].name;
        match start {
            Start::Skip(reason, released) => {
                self.unpublish(i);
                let event = not_run_event(name, StepStatus::Skipped, "skipped", reason, false);
                events.send_at(at, event);
                Err(released)
            }
            Start::Refuse(reason, released) => {
                self.unpublish(i);
                let allowed = self.plan.step_def(&self.plan.steps[i]).allow_failure;
                let event =
                    not_run_event(name, StepStatus::Failed, "circuit_open", reason, allowed);
                events.send_at(at, event);
                Err(released)
            }
            Start::Run(deps, retrying) => {
                let waited = micros(at).saturating_sub(self.ready_at[i].load(Ordering::Relaxed));
                events.send_at(
                    at,
                    Event::StepDispatched {
                        step: name.clone(),
                        worker,
                        attempt: retrying.as_ref().map_or(1, |r| r.attempt),
                        queue_wait_us: waited,
                    },
                );
                Ok((deps, retrying))
            }
        }
    }

    /// After one dispatch of step `i` ended: records it in the graph and reports it. The
    /// caller queues what became ready.
    pub fn settle(&self, i: usize, end: StepEnd) -> Settled {
        match end {
            StepEnd::Retry(retry) => {
                let (retrying, event) = *retry;
                tracing::debug!(step = %self.plan.steps[i].name, ?event, "retrying");
                let not_before = retrying.not_before;
                self.graph().retry(i, retrying);
                self.send(event);
                Settled::Retry(ready_entry(&self.plan, i), not_before)
            }
            StepEnd::Done(mut result) => {
                if !result.succeeded {
                    self.unpublish(i);
                }
                let finished = Finished::take(&mut result);
                let at = self.ctx.events.now();
                let mut graph = self.graph();
                let released = graph.finished(&self.plan, i, finished, self.breaker_time(at));
                let graph_events = graph.take_events();
                drop(graph);
                // Before the dependents are visible to other workers, so that a dependent's
                // start is never reported before this step's end.
                for event in finished_events(&self.plan, i, &result).chain(graph_events) {
                    self.ctx.events.send_at(at, event);
                }
                Settled::Released(released)
            }
        }
    }

    /// Removes what an earlier run published for step `i`, which did not succeed in this one:
    /// a dependent that runs anyway (`when: always`) must find no outputs at `/deps/<name>`,
    /// as its key says, rather than stale ones.
    fn unpublish(&self, i: usize) {
        if !self.ctx.leftovers.published(i) {
            return;
        }
        let dir = self.plan.out_root.join(&self.plan.steps[i].name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                path = %dir.display(),
                error = %e,
                "cannot remove the outputs an earlier run published"
            ),
        }
    }

    /// Marks the run done once no step is unfinished, waking every worker to exit.
    pub fn check_done(&self, released: &Released) {
        if released.unfinished == 0 {
            self.done.store(true, Ordering::SeqCst);
            self.queues.wake_all();
        }
    }

    pub fn send(&self, event: Event) {
        self.ctx.events.send(event);
    }

    /// Counts a worker out; the last one wakes the executor.
    pub fn exit(&self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.exited.notify_one();
        }
    }
}

/// What a worker thread owns: the runtime its steps run on, and its lane of the sandbox.
pub(crate) struct Worker {
    /// The sandbox lane its guests run in: its own engine (see `Sandbox::for_workers`).
    lane: usize,
    /// wasm runs on this thread; this tokio runtime serves the step's timers and the cache's
    /// I/O, without another thread.
    runtime: std::io::Result<tokio::runtime::Runtime>,
    /// Becomes `true` when the run is interrupted.
    cancel: watch::Receiver<bool>,
}

impl Worker {
    /// The worker `me` of the pool.
    pub fn new(shared: &Shared, me: usize) -> Self {
        Self {
            lane: me,
            runtime: new_runtime(),
            cancel: shared.cancel.subscribe(),
        }
    }

    /// Runs one dispatch of step `i`; `None` if the run was interrupted meanwhile (the attempt
    /// was dropped, which removed its directories).
    pub fn execute(
        &mut self,
        shared: &Shared,
        i: usize,
        deps: Vec<Digest>,
        retrying: Option<Retrying>,
    ) -> Option<StepEnd> {
        match &self.runtime {
            Ok(rt) => rt.block_on(dispatch(
                shared,
                self.lane,
                &mut self.cancel,
                i,
                deps,
                retrying,
            )),
            Err(e) => Some(no_runtime(e)),
        }
    }
}

/// One dispatch of step `i` in sandbox lane `lane`, on a worker's runtime; `None` if `cancel`
/// turned `true` meanwhile (the attempt was dropped, which removed its directories).
///
/// A panic in the step is caught here, inside the runtime, which goes on serving the worker's
/// next steps. A panic is a bug in hermetic: the step fails with it, so that it and its
/// dependents still reach a final state. A panic injected by `hermetic chaos` stands for a
/// worker that lost the step, which runs again.
async fn dispatch(
    shared: &Shared,
    lane: usize,
    cancel: &mut watch::Receiver<bool>,
    i: usize,
    deps: Vec<Digest>,
    retrying: Option<Retrying>,
) -> Option<StepEnd> {
    let attempt = retrying.as_ref().map_or(1, |r| r.attempt);
    let span = tracing::debug_span!("step", step = %shared.plan.steps[i].name, attempt);
    let earlier = retrying.clone();
    let injected = shared
        .ctx
        .faults
        .as_ref()
        .is_some_and(|f| f.worker_panics(i, attempt));
    // Pinned in place: the step's future is about 3 KiB (it boxes the attempt's).
    let step = std::pin::pin!(
        async move {
            if injected {
                panic!("{INJECTED_PANIC}");
            }
            cached::run_step(&shared.ctx, lane, i, deps, retrying).await
        }
        .instrument(span)
    );
    let ended = tokio::select! {
        biased;
        ended = CatchUnwind(step) => ended,
        _ = cancel.wait_for(|c| *c) => return None,
    };
    Some(match ended {
        Ok(end) => end,
        Err(panic) if injected => run_again(shared, i, earlier, panic_message(&*panic)),
        Err(panic) => StepEnd::Done(Box::new(AttemptResult::host_error(format!(
            "internal error: {}",
            panic_message(&*panic)
        )))),
    })
}

/// The end of every step of a worker whose runtime could not be made.
fn no_runtime(e: &std::io::Error) -> StepEnd {
    StepEnd::Done(Box::new(AttemptResult::host_error(format!(
        "cannot start the worker's async runtime: {e}"
    ))))
}

/// A future's output, or the payload of a panic in one of its polls.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The body of free-running worker thread `me` of `workers`. Its steps run inside one
/// `block_on` of its runtime rather than one each, which entered and left the runtime around
/// every step: 10,000 no-op steps at `--jobs 2` took 87.2 ms instead of 90.7 (median of 20
/// interleaved runs).
pub(crate) fn run(shared: &Shared, me: usize, workers: usize) {
    let _span = tracing::debug_span!("worker", id = me).entered();
    let Worker {
        lane,
        runtime,
        mut cancel,
    } = Worker::new(shared, me);
    let mut steal = StealOrder::new(shared.seed, me, workers);
    match &runtime {
        Ok(rt) => rt.block_on(take_steps(shared, me, &mut steal, lane, &mut cancel, None)),
        // Never pending: no dispatch awaits anything, and waiting for work blocks the thread.
        Err(e) => {
            let steps = std::pin::pin!(take_steps(
                shared,
                me,
                &mut steal,
                lane,
                &mut cancel,
                Some(e)
            ));
            let _ = steps.poll(&mut Context::from_waker(std::task::Waker::noop()));
        }
    }
    shared.exit();
}

/// Takes ready steps and dispatches each in sandbox lane `lane` until the run is over or
/// `cancel` turns `true`; with `no_runtime`, the error that kept the worker from making its
/// runtime, each fails with it.
async fn take_steps(
    shared: &Shared,
    me: usize,
    steal: &mut StealOrder,
    lane: usize,
    cancel: &mut watch::Receiver<bool>,
    no_runtime: Option<&std::io::Error>,
) {
    while !shared.is_over() {
        let seen = shared.queues.generation();
        let Some(ready) = shared.queues.pop(me, steal.next_round()) else {
            if !shared.is_over() {
                shared.queues.sleep(seen);
            }
            continue;
        };
        let i = ready.index();
        // The step after this one is read while this one runs (see `crate::prefetch`).
        if let Some(next) = shared.queues.next_own(me) {
            shared.plan.prefetch(next);
        }
        let released = match shared.start(me, i) {
            Err(released) => released,
            Ok((deps, retrying)) => {
                let end = match no_runtime {
                    None => dispatch(shared, lane, cancel, i, deps, retrying).await,
                    Some(e) => Some(self::no_runtime(e)),
                };
                let Some(end) = end else {
                    break;
                };
                match shared.settle(i, end) {
                    Settled::Released(released) => released,
                    Settled::Retry(ready, not_before) => {
                        shared.queues.delay(ready, not_before);
                        continue;
                    }
                }
            }
        };
        shared.mark_ready(&released.ready);
        shared.queues.push_local(me, &released.ready);
        shared.check_done(&released);
    }
}

/// The end of a dispatch of step `i` that a worker lost (an injected fault): the step runs
/// again at once, as if the attempt had never started.
pub(crate) fn run_again(
    shared: &Shared,
    i: usize,
    retrying: Option<Retrying>,
    message: String,
) -> StepEnd {
    let attempt = retrying.as_ref().map_or(1, |r| r.attempt);
    let mut failed = retrying.map(|r| r.failed).unwrap_or_default();
    failed.push((attempt, message.clone()));
    let event = Event::StepRetrying {
        step: shared.plan.steps[i].name.clone(),
        attempt,
        message,
        delay_ms: 0,
    };
    let retrying = Retrying {
        attempt: attempt + 1,
        failed,
        duration: Duration::ZERO,
        not_before: Instant::now(),
    };
    StepEnd::Retry(Box::new((retrying, event)))
}

/// The message of a worker panic injected by `hermetic chaos`.
const INJECTED_PANIC: &str = "the worker panicked (an injected fault); the step runs again";

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

/// The events of a step's end: its warnings, then its final state.
fn finished_events(plan: &Plan, i: usize, result: &AttemptResult) -> impl Iterator<Item = Event> {
    let step = &plan.steps[i];
    let warnings = result.warnings.iter().map(|message| Event::Warning {
        step: Some(step.name.clone()),
        message: message.clone(),
    });
    let allow_failure = plan.step_def(step).allow_failure;
    let finished = result.finished_event(&step.name, allow_failure);
    warnings
        .collect::<Vec<_>>()
        .into_iter()
        .chain(std::iter::once(finished))
}

/// The final event of a step that did not run.
fn not_run_event(
    step: &str,
    status: StepStatus,
    outcome: &'static str,
    reason: String,
    allowed_failure: bool,
) -> Event {
    Event::StepFinished {
        step: step.to_string(),
        status,
        outcome,
        exit_code: None,
        message: Some(reason),
        attempts: 0,
        fuel_used: 0,
        peak_memory: 0,
        duration_ms: 0,
        outputs: Vec::new(),
        allowed_failure,
        stderr_tail: String::new(),
        cached: false,
        resumed: false,
        key: None,
        files: Vec::new(),
        logs: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_unwind_gives_the_output_or_the_panic_and_passes_pending_through() {
        let rt = new_runtime().unwrap();
        let ok = rt.block_on(CatchUnwind(Box::pin(async {
            tokio::task::yield_now().await;
            7
        })));
        assert_eq!(ok.unwrap(), 7);
        let panicked = rt.block_on(CatchUnwind(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("{}", "step broke");
        })));
        let panic = panicked.unwrap_err();
        assert_eq!(panic_message(&*panic), "step broke");
        // The runtime goes on serving futures after the panic.
        assert_eq!(rt.block_on(CatchUnwind(Box::pin(async { 1 }))).unwrap(), 1);
    }
}
