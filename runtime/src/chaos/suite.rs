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
use crate::events::{Event, Reporter, RunStatus, StepStatus, millis};
use crate::plan::Plan;
use crate::pool::{CacheUse, Executor, RunSummary};
use crate::sandbox::Sandbox;

/// What a suite runs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    pub kinds: Vec<FaultKind>,
    pub rate: f64,
    pub jobs: usize,
    /// Where the runs with cache faults keep their result stores (one per seed, removed
    /// after it).
    pub scratch: std::path::PathBuf,
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
    /// Steps that ran again after a worker fault.
    pub retries: usize,
    /// Steps whose stored archive was damaged, then re-run from a cache miss.
    pub damaged: Vec<String>,
    pub violations: Vec<String>,
    pub duration_ms: u64,
    /// blake3 of the run's events without their timing.
    pub trace: String,
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
    pub rate: f64,
    pub seeds: Vec<SeedReport>,
    /// The first seed's trace, from its second run.
    pub replayed_trace: Option<String>,
    pub violations: usize,
}

/// Runs the suite. `progress` sees each seed's report as it is made.
///
/// # Errors
///
/// If the reference run does not succeed: faults are judged against it.
pub async fn run_suite(
    plan: Arc<Plan>,
    sandbox: Arc<Sandbox>,
    config: &SuiteConfig,
    mut progress: impl FnMut(&SeedReport),
) -> Result<SuiteReport, String> {
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
    let expected = output_trees(&reference);
    let keys: Vec<Option<Digest>> = reference
        .keys
        .iter()
        .map(|k| k.as_ref().map(|k| k.key))
        .collect();

    let mut seeds = Vec::with_capacity(config.seeds.len());
    let mut replayed_trace = None;
    for (n, &seed) in config.seeds.iter().enumerate() {
        let faults = FaultPlan::derive(seed, config.rate, &config.kinds, &names);
        let started = Instant::now();
        let store = if faults.faults.values().any(|f| f.kind.is_cache()) {
            Some(fresh_store(&config.scratch.join(format!("seed-{seed}")))?)
        } else {
            None
        };
        let mut run = executor(seed, Some(faults.clone()));
        if let Some(store) = &store {
            let full_for = faults
                .steps_with(FaultKind::DiskFull)
                .filter_map(|(i, _)| keys[i])
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
        let (summary, trace) = run_once(run, bound).await;
        let mut report = judge(&plan, &faults, &expected, &summary, &trace);
        if let Some(store) = store {
            let check = CacheCheck {
                plan: &plan,
                faults: &faults,
                expected: &expected,
                keys: &keys,
            };
            check
                .run(&store, executor(seed, None), bound, &mut report)
                .await;
            let _ = std::fs::remove_dir_all(store.root());
        }
        report.duration_ms = millis(started.elapsed());
        if n == 0 {
            let (_, again) = run_once(executor(seed, Some(faults)), bound).await;
            if again.hash != trace.hash {
                report.violations.push(format!(
                    "the same seed gave another trace of events on a second run ({} then {})",
                    trace.hash, again.hash
                ));
            }
            replayed_trace = Some(again.hash);
        }
        progress(&report);
        seeds.push(report);
    }
    let violations = seeds.iter().map(|s| s.violations.len()).sum();
    Ok(SuiteReport {
        workflow: plan.workflow.name.clone(),
        kinds: config.kinds.clone(),
        rate: config.rate,
        seeds,
        replayed_trace,
        violations,
    })
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

/// Checks one run against the invariants.
fn judge(
    plan: &Plan,
    faults: &FaultPlan,
    expected: &BTreeMap<usize, Digest>,
    summary: &RunSummary,
    trace: &Trace,
) -> SeedReport {
    let mut violations = Vec::new();
    let mut failed = Vec::new();
    if summary.status == RunStatus::Interrupted {
        violations.push("the run did not end within its bound".to_string());
    }
    let actual = output_trees(summary);
    for (i, step) in plan.steps.iter().enumerate() {
        match summary.steps[i] {
            None if summary.status != RunStatus::Interrupted => {
                violations.push(format!("step `{}` has no final state", step.name));
            }
            Some(StepStatus::Succeeded) if actual.get(&i) != expected.get(&i) => {
                violations.push(format!(
                    "step `{}` succeeded with outputs that differ from the fault-free run",
                    step.name
                ));
            }
            Some(StepStatus::Failed) => {
                let fault = faults
                    .faults
                    .get(&i)
                    .map(|f| format!("{}: {}", f.kind, f.detail));
                let message = trace.messages.get(&step.name).cloned().unwrap_or_default();
                if fault.is_none() {
                    violations.push(format!(
                        "step `{}` failed without a fault: {message}",
                        step.name
                    ));
                }
                failed.push(FailedStep {
                    step: step.name.clone(),
                    message,
                    fault,
                });
            }
            _ => {}
        }
    }
    SeedReport {
        seed: faults.seed,
        faults: faults.faults.values().cloned().collect(),
        outcome: match summary.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "hung",
        }
        .into(),
        failed,
        retries: trace.retries,
        damaged: Vec::new(),
        violations,
        duration_ms: 0,
        trace: trace.hash.clone(),
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
        let mut value = serde_json::to_value(event).unwrap_or_default();
        let Some(map) = value.as_object_mut() else {
            return;
        };
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
        match event {
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
