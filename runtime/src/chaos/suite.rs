//! A chaos suite: one fault-free reference run, then one run per seed with the faults that seed
//! plans, each checked against the invariants.
//!
//! Every run is in-process, without the result cache, in lockstep mode (`--seed`), with
//! `--keep-going`, publishing into its own directory. The invariants, checked on every seed:
//!
//! 1. every step reaches a final state;
//! 2. every step that succeeds publishes exactly the bytes it published in the reference run (a
//!    fault must make a step fail, never make it lie);
//! 3. every step that fails has a fault planned for it, which is named as the cause (a step
//!    skipped because a dependency failed is fine);
//! 4. the run ends within a bound derived from the steps' limits;
//! 5. with cache faults (the run then uses a fresh result store), a second run from that store
//!    succeeds with the reference's bytes, and never serves a damaged entry or one whose
//!    write failed.
//!
//! The first seed also runs twice, and both runs must report the same trace of events
//! (compared by hash), so that a report's replay command reproduces what it reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hermetic_cache::{Digest, DiskStore, tree_digest};
use serde::Serialize;

use super::cache::FullDisk;
use super::plan::{Fault, FaultKind, FaultPlan};
use super::process::{ChildFaults, Children};
use crate::events::{Event, Reporter, RunStatus, StepStatus, millis};
use crate::plan::Plan;
use crate::pool::{CacheUse, Executor, RunSummary};
use crate::sandbox::Sandbox;

/// What a suite runs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// The kinds of fault drawn from, each with its own chance that a step gets it.
    pub rates: Vec<(FaultKind, f64)>,
    /// The steps that may get faults; `None` for every step.
    pub steps: Option<Vec<String>>,
    /// Keeps only these `(step, kind)` faults of each seed's plan (`--only`): how a shrunk
    /// list of faults is replayed.
    pub only: Option<Vec<(String, FaultKind)>>,
    pub jobs: usize,
    /// Where the runs with cache faults keep their result stores (one per seed, removed
    /// after it).
    pub scratch: std::path::PathBuf,
    /// The command line that runs this suite, without `--seeds` and `--only`: a seed's replay
    /// command is this plus `--seeds N`, and `--only` with the suite's or a shrunk list.
    pub command: String,
    /// What the suite expects beyond the invariants (the workflow's `chaos.expect`).
    pub expect: Expect,
    /// The most runs spent shrinking one failing seed.
    pub shrink_runs: usize,
}

/// What a `chaos:` section expects of every seed, beyond the invariants. A seed that misses
/// an expectation counts as a violation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Expect {
    /// Every seed's run succeeds: retries absorb every fault.
    pub succeeds: bool,
    /// No seed needs more than this many retries in all.
    pub max_retries: Option<usize>,
}

/// How one seed went.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub seed: u64,
    pub faults: Vec<Fault>,
    /// `succeeded`, `failed` or `hung`.
    pub outcome: String,
    /// Each failed step, its message, and the fault it is attributed to.
    pub failed: Vec<FailedStep>,
    /// Attempts that ran again (after a worker fault, or a retried failure).
    pub retries: usize,
    /// Steps whose stored archive was damaged, then re-run from a cache miss.
    pub damaged: Vec<String>,
    pub violations: Vec<String>,
    pub duration_ms: u64,
    /// blake3 of the run's events without their timing.
    pub trace: String,
    /// The command that replays this seed.
    pub replay: String,
    /// For a seed whose plan kills the process: whether the first process was killed (false:
    /// it ended before the fault's step finished) before `--resume` finished the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    /// For a seed with violations: the smallest list of its faults found that still violates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<Shrunk>,
}

/// A failing seed's faults, shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct Shrunk {
    /// The faults that are left: removing any one of them makes the violations go away (or the
    /// shrinking ran out of runs, see `minimal`).
    pub faults: Vec<Fault>,
    /// The violations with only these faults.
    pub violations: Vec<String>,
    /// Whether no single fault can be removed (false when the run budget ran out first).
    pub minimal: bool,
    /// The runs the shrinking took.
    pub runs: usize,
    /// The command that replays the seed with only these faults.
    pub replay: String,
}

/// A step that failed under faults.
#[derive(Debug, Clone, Serialize)]
pub struct FailedStep {
    pub step: String,
    pub message: String,
    /// The planned fault the failure is attributed to.
    pub fault: Option<String>,
}

/// A whole suite.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub workflow: String,
    pub kinds: Vec<FaultKind>,
    /// Each kind's chance that a step gets it.
    pub rates: BTreeMap<FaultKind, f64>,
    pub expect: Expect,
    pub seeds: Vec<SeedReport>,
    /// The first seed's trace, from its second run.
    pub replayed_trace: Option<String>,
    pub violations: usize,
    pub duration_ms: u64,
}

/// What a suite tells its caller as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A seed's plan, before its run.
    Planned(&'a FaultPlan),
    /// A seed's report, once it is judged (and shrunk, if it failed).
    Judged(&'a SeedReport),
    /// A failing seed is being shrunk: a run with this many of its faults.
    Shrinking { seed: u64, faults: usize },
}

/// Runs the suite. `progress` sees each seed's plan and report as they are made.
///
/// # Errors
///
/// If the reference run does not succeed: faults are judged against it.
pub async fn run_suite(
    plan: Arc<Plan>,
    sandbox: Arc<Sandbox>,
    config: &SuiteConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<SuiteReport, String> {
    let suite_started = Instant::now();
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    let bound = plan
        .steps
        .iter()
        .map(|s| s.limits.timeout.saturating_mul(2))
        .sum::<Duration>()
        + Duration::from_secs(10);
    let first = config.seeds.first().copied().unwrap_or(0);
    let executor = |seed: u64, faults: Option<FaultPlan>| {
        Executor::new(plan.clone(), sandbox.clone(), config.jobs)
            .with_seed(Some(seed))
            .keep_going(true)
            .with_faults(faults)
    };

    let (reference, trace) = run_once(executor(first, None), bound).await;
    if reference.status != RunStatus::Succeeded {
        let failed: Vec<String> = names
            .iter()
            .zip(&reference.steps)
            .filter(|(_, s)| **s == Some(StepStatus::Failed))
            .map(|(n, _)| match trace.messages.get(*n) {
                Some(m) => format!("`{n}`: {m}"),
                None => format!("`{n}`"),
            })
            .collect();
        return Err(format!(
            "the workflow does not succeed without faults ({}); fix it before a chaos suite \
             judges it",
            failed.join("; ")
        ));
    }
    let suite = Suite {
        plan: &plan,
        config,
        expected: output_trees(&reference),
        keys: reference
            .keys
            .iter()
            .map(|k| k.as_ref().map(|k| k.key))
            .collect(),
        bound,
        executor: &executor,
    };

    let mut seeds = Vec::with_capacity(config.seeds.len());
    let mut replayed_trace = None;
    for (n, &seed) in config.seeds.iter().enumerate() {
        let faults = FaultPlan::for_suite(
            seed,
            &config.rates,
            &names,
            config.steps.as_deref(),
            config.only.as_deref(),
        );
        progress(Progress::Planned(&faults));
        let started = Instant::now();
        let (mut report, trace) = suite.run_seed(&faults).await;
        report.replay = suite.replay(seed, None);
        if n == 0 {
            let (_, again) = suite.run_seed(&faults).await;
            if again.hash != trace.hash {
                report.violations.push(format!(
                    "the same seed gave another trace of events on a second run ({} then {})",
                    trace.hash, again.hash
                ));
            }
            replayed_trace = Some(again.hash);
        }
        if !report.violations.is_empty() {
            report.shrunk = Some(suite.shrink(&faults, &report, &mut progress).await);
        }
        report.duration_ms = millis(started.elapsed());
        progress(Progress::Judged(&report));
        seeds.push(report);
    }
    let violations = seeds.iter().map(|s| s.violations.len()).sum();
    Ok(SuiteReport {
        workflow: plan.workflow.name.clone(),
        kinds: config.rates.iter().map(|(k, _)| *k).collect(),
        rates: config.rates.iter().copied().collect(),
        expect: config.expect.clone(),
        seeds,
        replayed_trace,
        violations,
        duration_ms: millis(suite_started.elapsed()),
    })
}

/// What every seed of a suite is judged against.
struct Suite<'a, E> {
    plan: &'a Arc<Plan>,
    config: &'a SuiteConfig,
    /// The reference run's outputs, by step.
    expected: BTreeMap<usize, Digest>,
    /// The reference run's action keys, by step.
    keys: Vec<Option<Digest>>,
    /// How long a run may take.
    bound: Duration,
    /// An executor for a seed and its faults.
    executor: &'a E,
}

impl<E: Fn(u64, Option<FaultPlan>) -> Executor> Suite<'_, E> {
    /// The command that replays `seed`, with only `faults` if given.
    /// (Without `faults`, the suite's own `--only`, if it had one.)
    fn replay(&self, seed: u64, faults: Option<&[Fault]>) -> String {
        let mut command = format!("{} --seeds {seed}", self.config.command);
        let only: Option<Vec<String>> = match faults {
            Some(faults) => Some(
                faults
                    .iter()
                    .map(|f| format!("{}:{}", f.step, f.kind))
                    .collect(),
            ),
            None => self.config.only.as_ref().map(|only| {
                only.iter()
                    .map(|(step, kind)| format!("{step}:{kind}"))
                    .collect()
            }),
        };
        if let Some(only) = only {
            command.push_str(" --only ");
            command.push_str(&if only.is_empty() {
                "none".to_string()
            } else {
                only.join(",")
            });
        }
        command
    }

    /// Runs one seed with `faults` and judges it.
    async fn run_seed(&self, faults: &FaultPlan) -> (SeedReport, Trace) {
        let seed = faults.seed;
        let kill_after: Vec<String> = faults
            .steps_with(FaultKind::ProcessKill)
            .map(|(_, f)| f.step.clone())
            .collect();
        if !kill_after.is_empty() {
            return self.run_killed(faults, kill_after);
        }
        let store = if faults.faults.values().any(|f| f.kind.is_cache()) {
            match fresh_store(&self.config.scratch.join(format!("seed-{seed}"))) {
                Ok(store) => Some(store),
                Err(e) => {
                    let mut report = SeedReport::new(faults);
                    report.violations.push(e);
                    return (report, Trace::default());
                }
            }
        } else {
            None
        };
        let mut run = (self.executor)(seed, Some(faults.clone()));
        if let Some(store) = &store {
            let full_for = faults
                .steps_with(FaultKind::DiskFull)
                .filter_map(|(i, _)| self.keys[i])
                .collect();
            let store = FullDisk {
                inner: store.clone(),
                full_for,
            };
            run = run.with_cache(CacheUse {
                store: Arc::new(store),
                read: true,
                write: true,
            });
        }
        let (summary, trace) = run_once(run, self.bound).await;
        let mut report = self.judge(faults, &Outcome::of(&summary, &trace));
        if let Some(store) = store {
            let check = CacheCheck {
                plan: self.plan,
                faults,
                expected: &self.expected,
                keys: &self.keys,
            };
            check
                .run(&store, (self.executor)(seed, None), self.bound, &mut report)
                .await;
            let _ = std::fs::remove_dir_all(store.root());
        }
        (report, trace)
    }

    /// Runs a seed whose plan kills the process, in two child processes (see [`super::process`]).
    fn run_killed(&self, faults: &FaultPlan, kill_after: Vec<String>) -> (SeedReport, Trace) {
        let children = Children {
            workflow: &self.plan.workflow.path,
            state_dir: &self.plan.state_dir,
            out_root: &self.plan.out_root,
            jobs: self.config.jobs,
        };
        // The children derive the plan again, kept to exactly this run's faults: a shrinking
        // trial has fewer than the seed plans, or than `--only` keeps.
        let only = faults
            .faults
            .values()
            .map(|f| (f.step.clone(), f.kind))
            .collect();
        let child_faults = ChildFaults {
            seed: faults.seed,
            rates: self.config.rates.clone(),
            steps: self.config.steps.clone(),
            only: Some(only),
            kill_after,
        };
        let dir = self.config.scratch.join(format!("seed-{}", faults.seed));
        let resumed = children.run(&child_faults, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let mut recorder = TraceRecorder::default();
        for line in &resumed.events {
            recorder.observe(line.clone(), None);
        }
        let mut trace = recorder.finish();
        trace.messages.clone_from(&resumed.messages);
        trace.retries = resumed.retries;
        let index = |name: &str| self.plan.steps.iter().position(|s| s.name == name);
        let outcome = Outcome {
            ended: resumed.problem.is_none(),
            status: if resumed.steps.values().any(|s| *s == StepStatus::Failed) {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            },
            steps: self
                .plan
                .steps
                .iter()
                .map(|s| resumed.steps.get(&s.name).copied())
                .collect(),
            outputs: resumed
                .outputs
                .iter()
                .filter_map(|(name, digest)| Some((index(name)?, *digest)))
                .collect(),
            trace: &trace,
        };
        let mut report = self.judge(faults, &outcome);
        if let Some(problem) = resumed.problem {
            report.violations.push(problem);
        } else if !resumed.killed {
            report.resumed = Some(false);
        } else {
            report.resumed = Some(true);
        }
        (report, trace)
    }

    /// Shrinks a failing seed's faults: removes one fault at a time, keeping each removal
    /// after which the run still violates something, until no single fault can go or the run
    /// budget is spent.
    async fn shrink(
        &self,
        faults: &FaultPlan,
        report: &SeedReport,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Shrunk {
        let mut kept = faults.clone();
        let mut violations = report.violations.clone();
        let mut runs = 0;
        let mut minimal = true;
        let mut i = 0;
        while i < kept.faults.len() {
            if runs == self.config.shrink_runs {
                minimal = false;
                break;
            }
            let drop_step = *kept.faults.keys().nth(i).unwrap_or(&usize::MAX);
            let mut fewer = kept.clone();
            fewer.faults.remove(&drop_step);
            progress(Progress::Shrinking {
                seed: faults.seed,
                faults: fewer.faults.len(),
            });
            runs += 1;
            let (trial, _) = self.run_seed(&fewer).await;
            if trial.violations.is_empty() {
                // This fault is needed.
                i += 1;
            } else {
                kept = fewer;
                violations = trial.violations;
            }
        }
        let faults: Vec<Fault> = kept.faults.into_values().collect();
        Shrunk {
            replay: self.replay(report.seed, Some(&faults)),
            faults,
            violations,
            minimal,
            runs,
        }
    }
}

/// An empty result store at `dir`.
fn fresh_store(dir: &std::path::Path) -> Result<Arc<DiskStore>, String> {
    let _ = std::fs::remove_dir_all(dir);
    DiskStore::open(dir)
        .map(Arc::new)
        .map_err(|e| format!("cannot create a result store for the cache faults: {e}"))
}

/// Invariant 5: what a run from a store that suffered cache faults does.
struct CacheCheck<'a> {
    plan: &'a Plan,
    faults: &'a FaultPlan,
    expected: &'a BTreeMap<usize, Digest>,
    keys: &'a [Option<Digest>],
}

impl CacheCheck<'_> {
    async fn run(
        &self,
        store: &Arc<DiskStore>,
        executor: Executor,
        bound: Duration,
        report: &mut SeedReport,
    ) {
        let mut damaged = Vec::new();
        for kind in [FaultKind::CacheBitflip, FaultKind::CacheTruncate] {
            for (i, fault) in self.faults.steps_with(kind) {
                let Some(key) = self.keys[i] else { continue };
                match super::cache::damage(store, &key, fault) {
                    Ok(true) => damaged.push(i),
                    Ok(false) => {}
                    Err(e) => report.violations.push(format!(
                        "cannot damage the stored result of `{}`: {e}",
                        fault.step
                    )),
                }
            }
        }
        // Without the published outputs, every hit is restored from its archive: a hit whose
        // outputs are already in place is served without reading the archive at all.
        let _ = std::fs::remove_dir_all(&self.plan.out_root);
        let executor = executor.with_cache(CacheUse {
            store: store.clone(),
            read: true,
            write: false,
        });
        let (summary, _) = run_once(executor, bound).await;
        let actual = output_trees(&summary);
        for (i, step) in self.plan.steps.iter().enumerate() {
            let name = &step.name;
            if summary.steps[i] != Some(StepStatus::Succeeded) {
                report.violations.push(format!(
                    "after the cache faults, step `{name}` did not succeed from the store"
                ));
            } else if actual.get(&i) != self.expected.get(&i) {
                report.violations.push(format!(
                    "after the cache faults, step `{name}` published outputs that differ from \
                     the fault-free run"
                ));
            }
            let cached = summary.keys[i].as_ref().is_some_and(|k| k.cached);
            if cached && damaged.contains(&i) {
                report.violations.push(format!(
                    "a damaged cache entry was served for step `{name}`"
                ));
            }
            let full = self
                .faults
                .steps_with(FaultKind::DiskFull)
                .any(|(j, _)| j == i);
            if cached && full {
                report.violations.push(format!(
                    "step `{name}` was served from the cache though its result could not be stored"
                ));
            }
        }
        report.damaged = damaged
            .iter()
            .map(|&i| self.plan.steps[i].name.clone())
            .collect();
    }
}

/// The Merkle root of each succeeded step's outputs, by step name.
fn output_trees(summary: &RunSummary) -> BTreeMap<usize, Digest> {
    summary
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let k = k.as_ref().filter(|k| k.succeeded)?;
            Some((i, tree_digest(&k.output_files)))
        })
        .collect()
}

impl SeedReport {
    /// The report of a seed that has not run yet.
    fn new(faults: &FaultPlan) -> Self {
        Self {
            seed: faults.seed,
            faults: faults.faults.values().cloned().collect(),
            outcome: "failed".into(),
            failed: Vec::new(),
            retries: 0,
            damaged: Vec::new(),
            violations: Vec::new(),
            duration_ms: 0,
            trace: String::new(),
            replay: String::new(),
            shrunk: None,
            resumed: None,
        }
    }
}

/// For a step that failed without a fault of its own, after a dependency did not succeed (it
/// runs anyway, `when: always`, and misses that dependency's outputs): the fault of the
/// nearest dependency, direct or not, that failed with one.
fn upstream_fault(
    plan: &Plan,
    faults: &FaultPlan,
    steps: &[Option<StepStatus>],
    i: usize,
) -> Option<String> {
    let mut seen = vec![false; plan.steps.len()];
    let mut queue: std::collections::VecDeque<usize> = plan.steps[i].deps.iter().copied().collect();
    while let Some(d) = queue.pop_front() {
        if std::mem::replace(&mut seen[d], true) || steps[d] == Some(StepStatus::Succeeded) {
            continue;
        }
        if let Some(f) = faults
            .faults
            .get(&d)
            .filter(|_| steps[d] == Some(StepStatus::Failed))
        {
            return Some(format!(
                "{}: {}, on `{}`, which it depends on",
                f.kind, f.detail, f.step
            ));
        }
        queue.extend(plan.steps[d].deps.iter().copied());
    }
    None
}

/// How a run ended, whether it ran in this process or in children.
struct Outcome<'a> {
    /// Whether it ended within its bound (and, for children, ran at all).
    ended: bool,
    status: RunStatus,
    /// Each step's final state, in plan order.
    steps: Vec<Option<StepStatus>>,
    /// The Merkle root of each succeeded step's outputs.
    outputs: BTreeMap<usize, Digest>,
    trace: &'a Trace,
}

impl<'a> Outcome<'a> {
    fn of(summary: &RunSummary, trace: &'a Trace) -> Self {
        Self {
            ended: summary.status != RunStatus::Interrupted,
            status: summary.status,
            steps: summary.steps.clone(),
            outputs: output_trees(summary),
            trace,
        }
    }
}

impl<E> Suite<'_, E> {
    /// Checks one run against the invariants and the suite's expectations.
    fn judge(&self, faults: &FaultPlan, outcome: &Outcome<'_>) -> SeedReport {
        let plan = self.plan;
        let trace = outcome.trace;
        let mut report = SeedReport::new(faults);
        let violations = &mut report.violations;
        if !outcome.ended {
            violations.push("the run did not end within its bound".to_string());
        }
        let actual = &outcome.outputs;
        for (i, step) in plan.steps.iter().enumerate() {
            match outcome.steps[i] {
                None if outcome.ended => {
                    violations.push(format!("step `{}` has no final state", step.name));
                }
                Some(StepStatus::Succeeded) if actual.get(&i) != self.expected.get(&i) => {
                    violations.push(format!(
                        "step `{}` succeeded with outputs that differ from the fault-free run",
                        step.name
                    ));
                }
                Some(StepStatus::Failed) => {
                    let fault = faults
                        .faults
                        .get(&i)
                        .map(|f| format!("{}: {}", f.kind, f.detail))
                        .or_else(|| upstream_fault(plan, faults, &outcome.steps, i));
                    let message = trace.messages.get(&step.name).cloned().unwrap_or_default();
                    if fault.is_none() {
                        violations.push(format!(
                            "step `{}` failed without a fault: {message}",
                            step.name
                        ));
                    } else if self.config.expect.succeeds {
                        violations.push(format!(
                            "step `{}` failed, but the suite expects every run to succeed: \
                             {message}",
                            step.name
                        ));
                    }
                    report.failed.push(FailedStep {
                        step: step.name.clone(),
                        message,
                        fault,
                    });
                }
                _ => {}
            }
        }
        if let Some(max) = self.config.expect.max_retries
            && trace.retries > max
        {
            violations.push(format!(
                "the run took {} retries, but the suite expects at most {max}",
                trace.retries
            ));
        }
        report.outcome = match (outcome.ended, outcome.status) {
            (false, _) | (_, RunStatus::Interrupted) => "hung",
            (true, RunStatus::Succeeded) => "succeeded",
            (true, RunStatus::Failed) => "failed",
        }
        .into();
        report.retries = trace.retries;
        report.trace = trace.hash.clone();
        report
    }
}

/// What a run's events say, without their timing.
#[derive(Debug, Default)]
struct Trace {
    hash: String,
    messages: BTreeMap<String, String>,
    retries: usize,
}

/// Runs `executor` to its end or `bound`, whichever is first.
async fn run_once(executor: Executor, bound: Duration) -> (RunSummary, Trace) {
    let mut recorder = TraceRecorder::default();
    let summary = executor.run(&mut recorder, tokio::time::sleep(bound)).await;
    (summary, recorder.finish())
}

/// Hashes a run's events but for their timing, and keeps failure messages.
///
/// Under `--seed` the pool decides in a fixed order (dispatches, ends, retries, breakers), but
/// two workers of one round still report what happens inside their steps (`step_started`,
/// `step_log`) concurrently. So the trace is the ordered list of the pool's decisions, then,
/// step by step in plan order, each step's own events in the order it reported them.
#[derive(Debug, Default)]
struct TraceRecorder {
    decisions: Vec<String>,
    by_step: BTreeMap<String, Vec<String>>,
    messages: BTreeMap<String, String>,
    retries: usize,
}

impl TraceRecorder {
    fn finish(self) -> Trace {
        let mut hasher = blake3::Hasher::new();
        for line in &self.decisions {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        for (step, lines) in &self.by_step {
            hasher.update(step.as_bytes());
            hasher.update(b":\n");
            for line in lines {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
            }
        }
        Trace {
            hash: hasher.finalize().to_hex().to_string(),
            messages: self.messages,
            retries: self.retries,
        }
    }
}

impl Reporter for TraceRecorder {
    fn event(&mut self, event: &Event) {
        let value = serde_json::to_value(event).unwrap_or_default();
        self.observe(value, Some(event));
    }
}

impl TraceRecorder {
    /// Records one event, given as its JSON (from this process, or from a child's journal).
    fn observe(&mut self, mut value: serde_json::Value, event: Option<&Event>) {
        let Some(map) = value.as_object_mut() else {
            return;
        };
        // A journal line's time, and the files it records, are not in the event itself.
        for extra in ["t_us", "files"] {
            map.remove(extra);
        }
        for timing in ["duration_ms", "queue_wait_us", "silent_ms", "delay_ms"] {
            map.remove(timing);
        }
        let kind = map
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        // Progress is throttled by time, and a stuck warning is about time: how many of them
        // arrive is timing too.
        // Cache warnings come from the background committer, in batches that timing decides.
        if matches!(kind, "step_progress" | "step_stuck" | "warning") {
            return;
        }
        let decision = matches!(
            kind,
            "run_started"
                | "run_finished"
                | "step_dispatched"
                | "step_finished"
                | "step_retrying"
                | "circuit"
        );
        let step = map.get("step").and_then(|s| s.as_str()).map(str::to_string);
        let line = value.to_string();
        match step {
            Some(step) if !decision => self.by_step.entry(step).or_default().push(line),
            _ => self.decisions.push(line),
        }
        match event.unwrap_or(&Event::Warning {
            step: None,
            message: String::new(),
        }) {
            Event::StepFinished {
                step,
                status: StepStatus::Failed,
                message,
                ..
            } => {
                self.messages
                    .insert(step.clone(), message.clone().unwrap_or_default());
            }
            Event::StepRetrying { .. } => self.retries += 1,
            _ => {}
        }
    }
}
