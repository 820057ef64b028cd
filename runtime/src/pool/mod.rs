//! The work-stealing pool that runs a [`Plan`]: `jobs` worker threads, each with its own ready
//! queue, stealing from each other when idle.
//!
//! ```text
//!  Executor::run (async, on the CLI's runtime)      worker threads (one per job)
//!  ───────────────────────────────────────────      ─────────────────────────────
//!  inject the roots ─────────────────────────────▶  pop: own queue ∪ injector, else steal
//!  forward events to the reporter ◀──── events ───  run the step (cache, sandbox) on a
//!  interrupt → cancel ───────────────────────────▶    current-thread tokio runtime
//!  wait for the committer ◀──── fresh results ───  record the end in the Graph,
//!                                                   push released dependents to own queue
//! ```
//!
//! See [`queue`] for why the queues are priority heaps, [`worker`] for a worker's loop,
//! [`graph`] for the bookkeeping and [`commit`] for how results are stored. The contract:
//!
//! * a step starts only after every dependency reached a final state, and only if its `when:`
//!   condition holds (by default: every dependency succeeded); otherwise it is skipped;
//! * ready steps start in order of priority, then longest critical path, then workflow order;
//! * after a step fails, no step starts unless its `when:` asks to run after failures, and
//!   steps already running finish (fail-fast, as make, Bazel and Turborepo do);
//!   [`Executor::keep_going`] starts every step that can run instead;
//! * a failed attempt is retried, if the step allows it, after a backoff (see [`retry`]),
//!   waiting in the queues rather than on a worker;
//! * a task module that keeps failing trips its circuit breaker (see [`breaker`]);
//! * under `--seed`, the pool runs in lockstep rounds and replays exactly (see [`lockstep`]);
//! * an interrupt aborts running attempts (their per-attempt directories are removed) and
//!   publishes nothing more.

mod attempt;
mod breaker;
mod cached;
mod calls;
mod commit;
mod graph;
mod leftovers;
mod lockstep;
pub mod metrics;
mod outbox;
mod queue;
mod retry;
pub(crate) mod rng;
pub(crate) mod scratch;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use hermetic_cache::Digest;

use commit::Committer;
use graph::Graph;
use outbox::Outbox;
use queue::Queues;
use worker::Shared;

use crate::events::{Event, Reporter, RunStatus, StepStatus, millis};
use crate::plan::{KeyComponents, Plan};
use crate::sandbox::Sandbox;

pub use attempt::{AttemptResult, Observers, Runner, run_attempt};
pub use cached::CacheUse;
pub use leftovers::Leftovers;
pub use scratch::{Lease, Scratch, ScratchPool};

/// The final state of every step and of the run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// How the run ended.
    pub status: RunStatus,
    /// Each step's final status, in plan order.
    pub steps: Vec<Option<StepStatus>>,
    /// Each step that ran or was served from the cache: its key, and whether it was a hit. In
    /// plan order.
    pub keys: Vec<Option<StepKey>>,
    /// The Merkle root of each finished step's outputs, in plan order: with `engine`, what
    /// [`RunSummary::key_components`] rebuilds a key's components from.
    pub output_trees: Vec<Option<Digest>>,
    /// The sandbox's engine digest, one of every key's components.
    pub engine: String,
    /// What the run measured: latencies, utilization, the trace of dispatches.
    pub metrics: metrics::RunMetrics,
}

impl RunSummary {
    /// What step `i`'s key was computed from, rebuilt: a key is a function of the plan, the
    /// engine and the outputs of the step's dependencies, all final once the run has ended.
    /// (Keeping every step's components until then cost 300 bytes per step, and on a virtual
    /// machine a page fault, about 3 µs, for every 13 steps.)
    pub fn key_components(&self, plan: &Plan, i: usize) -> KeyComponents {
        let deps = graph::dep_trees(plan, &self.output_trees, i);
        plan.key_components(&plan.steps[i], &self.engine, &deps)
    }
}

/// A step's action key as used in one run; [`RunSummary::key_components`] tells what it was
/// computed from.
#[derive(Debug, Clone)]
pub struct StepKey {
    /// The key.
    pub key: Digest,
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
    /// `--seed`: run in lockstep rounds whose every choice comes from it (see [`lockstep`]).
    seed: Option<u64>,
    /// `--keep-going`: after a failure, still start every step that can run.
    keep_going: bool,
    /// `--resume`: the successes of the run this one continues.
    resume: Option<Arc<crate::journal::runs::Resumable>>,
    /// Whether idle workers steal (always, but for the benchmark that measures stealing).
    stealing: bool,
    /// Faults to inject (`hermetic chaos`).
    faults: Option<Arc<crate::chaos::FaultPlan>>,
    /// `--remote-exec`: where attempts run instead of the local sandbox.
    remote: Option<Arc<crate::remote::RemoteExec>>,
}

impl Executor {
    /// An executor for `plan` running up to `jobs` steps at once.
    pub fn new(plan: Arc<Plan>, sandbox: Arc<Sandbox>, jobs: usize) -> Self {
        Self {
            plan,
            sandbox,
            jobs: jobs.max(1),
            cache: None,
            seed: None,
            keep_going: false,
            resume: None,
            stealing: true,
            faults: None,
            remote: None,
        }
    }

    /// Runs attempts on a REAPI server's bots instead of the local sandbox (`--remote-exec`).
    /// Cache lookups, output checks, publication and storing stay local.
    pub fn with_remote(mut self, remote: Option<Arc<crate::remote::RemoteExec>>) -> Self {
        self.remote = remote;
        self
    }

    /// Injects the faults of `plan` (see [`crate::chaos`]).
    pub fn with_faults(mut self, plan: Option<crate::chaos::FaultPlan>) -> Self {
        self.faults = plan.map(Arc::new);
        self
    }

    /// Turns work stealing off: the roots are dealt out to the workers round-robin, and each
    /// runs only what it was dealt and what that released (static partitioning). For the
    /// benchmark that measures what stealing is worth; a run never wants it.
    pub fn without_stealing(mut self) -> Self {
        self.stealing = false;
        self
    }

    /// Keeps the successes of an earlier run (`--resume`): a step whose key is unchanged and
    /// whose published outputs are still the recorded files does not run again.
    pub fn resuming(mut self, resume: Option<crate::journal::runs::Resumable>) -> Self {
        self.resume = resume.map(Arc::new);
        self
    }

    /// After a failure, still start every step that can run, instead of stopping at the first
    /// failure (the default, as in make, Bazel and Turborepo).
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Uses `cache` for the run's results.
    pub fn with_cache(mut self, cache: CacheUse) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Runs in lockstep rounds, every choice drawn from `seed`, so that the run replays
    /// exactly: the same dispatch events in the same order.
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Runs every step to a final state, or until `interrupt` resolves.
    ///
    /// The steps run on `jobs` worker threads (see [`worker`]); this future forwards their
    /// events to `reporter`, in the order they were sent, and must be polled for them to be
    /// reported.
    pub async fn run(
        &self,
        reporter: &mut dyn Reporter,
        interrupt: impl Future<Output = ()>,
    ) -> RunSummary {
        let started = Instant::now();
        tracing::debug!(
            workflow = %self.plan.workflow.name,
            steps = self.plan.steps.len(),
            jobs = self.jobs,
            seed = ?self.seed,
            keep_going = self.keep_going,
            "run starts"
        );
        // Workers and the committer leave their events here; the loop below reports them.
        let outbox = Arc::new(Outbox::new(started));
        // Shared by every attempt; if it cannot be created, each attempt reports the path when
        // it fails to mount it.
        let _ = self.plan.prepare_dirs();
        // Fresh successes are stored in the background; see `commit`.
        let (committer, commits) = match &self.cache {
            Some(c) if c.write && !c.store.is_read_only() => {
                let (committer, queue) = Committer::start(c.store.clone(), outbox.clone());
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
            events: outbox.clone(),
            commits,
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            resume: self.resume.clone(),
            faults: self.faults.clone(),
            remote: self.remote.clone(),
            leftovers: Leftovers::list(&self.plan),
        });
        let plan = &self.plan;
        reporter.stamped(
            outbox.now(),
            &Event::RunStarted {
                workflow: plan.workflow.name.clone(),
                steps: plan.steps.len(),
                jobs: self.jobs,
                seed: self.seed,
            },
        );

        let workers = worker_count(self.jobs, plan.steps.len());
        let shared = Arc::new(Shared {
            plan: plan.clone(),
            ctx,
            queues: Queues::with_stealing(workers, self.stealing),
            graph: Mutex::new(Graph::new(plan, self.keep_going)),
            ready_at: plan.steps.iter().map(|_| AtomicU64::new(0)).collect(),
            done: AtomicBool::new(plan.steps.is_empty()),
            cancelled: AtomicBool::new(false),
            cancel: tokio::sync::watch::Sender::new(false),
            // One coordinator thread in a seeded run, which owns its workers.
            live: AtomicUsize::new(if self.seed.is_some() { 1 } else { workers }),
            exited: Notify::new(),
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            rounds: self.seed.map(|_| AtomicU64::new(0)),
        });
        let mut threads = Vec::with_capacity(workers);
        let mut spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
            match std::thread::Builder::new().name(name.clone()).spawn(body) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Fewer workers: the others take its share. Without any, the run ends
                    // with its steps unfinished.
                    reporter.event(&Event::Warning {
                        step: None,
                        message: format!("cannot start thread `{name}`: {e}"),
                    });
                    shared.exit();
                }
            }
        };
        if self.seed.is_some() {
            let s = shared.clone();
            spawn(
                "hermetic-lockstep".into(),
                Box::new(move || {
                    lockstep::run(&s, workers);
                    s.exit();
                }),
            );
        } else {
            let roots = Graph::roots(plan);
            shared.mark_ready(&roots);
            shared.queues.start(roots);
            for me in 0..workers {
                let s = shared.clone();
                spawn(
                    format!("hermetic-worker-{me}"),
                    Box::new(move || worker::run(&s, me, workers)),
                );
            }
        }

        let mut interrupted = false;
        tokio::pin!(interrupt);
        let exited = shared.exited.notified();
        tokio::pin!(exited);
        let mut drain = tokio::time::interval(outbox::DRAIN_INTERVAL);
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut recorder = metrics::Recorder::for_steps(self.plan.steps.len(), self.jobs);
        // Handed back and forth with the outbox, so that neither side reallocates; see
        // `Outbox::drain_into`.
        let mut events = Vec::with_capacity(outbox::BUFFER);
        let mut report = |reporter: &mut dyn Reporter| {
            outbox.drain_into(&mut events);
            for (at, event) in events.drain(..) {
                recorder.observe(at, &event);
                reporter.stamped(at, &event);
            }
            // Even with no new events: the journal writes what has waited long enough.
            reporter.flush();
        };
        loop {
            tokio::select! {
                biased;
                () = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    shared.cancel();
                }
                () = &mut exited => break,
                _ = drain.tick() => report(reporter),
            }
        }
        for t in threads {
            let _ = t.join();
        }
        report(reporter);
        // Every step has ended: store what is queued, and report what that warned about.
        if let Some(committer) = committer {
            committer.finish().await;
        }
        report(reporter);

        let metrics = recorder.finish(started.elapsed(), workers);
        // Every worker has exited: the graph is ours to empty.
        let mut graph = shared.graph();
        let status = std::mem::take(&mut graph.status);
        let keys = std::mem::take(&mut graph.keys);
        let output_trees = std::mem::take(&mut graph.output_trees);
        drop(graph);
        let count = |s: StepStatus| status.iter().filter(|x| **x == Some(s)).count();
        let failed_hard = plan
            .steps
            .iter()
            .zip(&status)
            .any(|(s, st)| *st == Some(StepStatus::Failed) && !plan.step_def(s).allow_failure);
        let run_status = if interrupted {
            RunStatus::Interrupted
        } else if failed_hard || status.iter().any(Option::is_none) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        reporter.stamped(
            outbox.now(),
            &Event::RunFinished {
                status: run_status,
                succeeded: count(StepStatus::Succeeded),
                failed: count(StepStatus::Failed),
                skipped: count(StepStatus::Skipped),
                cached: keys.iter().flatten().filter(|k| k.cached).count(),
                duration_ms: millis(started.elapsed()),
            },
        );
        RunSummary {
            status: run_status,
            steps: status,
            keys,
            output_trees,
            engine: shared.ctx.engine.clone(),
            metrics,
        }
    }
}

/// How many worker threads a run of `steps` steps at `--jobs jobs` has: no more than it has
/// steps, and at least one.
pub fn worker_count(jobs: usize, steps: usize) -> usize {
    jobs.min(steps).max(1)
}

/// The seed of the steal order when the run has none.
const DEFAULT_SEED: u64 = 0x6865_726d_6574_6963; // "hermetic"
