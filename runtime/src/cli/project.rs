//! What `run`, `lock`, `verify` and `why` share: a workflow loaded and planned under the
//! project lock, its cache, and one execution of its plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use hermetic_cache::DiskStore;

use super::record::{Preload, Records, Work};
use super::run::{ProjectLock, interrupted};
use super::{Cli, EXIT_USAGE};
use crate::chaos::process::KillAfter;
use crate::events::StepStatus;
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};
use crate::journal::durations::{self, Durations};
use crate::journal::runs::{self, Counts, RunJournal, Summary, Tee};
use crate::plan::{Plan, PlanOptions};
use crate::pool::{CacheUse, Executor, RunSummary};
use crate::sandbox::Sandbox;
use crate::workflow::Workflow;

/// How [`Project::execute`] runs the plan.
#[derive(Debug, Default, Clone)]
pub struct Execution {
    /// Report JSON lines on stdout instead of human progress on stderr.
    pub json: bool,
    /// Record each step's key for `hermetic why`, and the run's hits for `cache stats`.
    pub record_keys: bool,
    /// `--keep-going`.
    pub keep_going: bool,
    /// `--seed`.
    pub seed: Option<u64>,
    /// Write the run journal, `.hermetic/runs/<id>/`, and the step durations for adaptive
    /// timeouts.
    pub journal: bool,
    /// `--resume`: keep the successes of the last run.
    pub resume: bool,
    /// `--trace FILE`.
    pub trace: Option<PathBuf>,
    /// Faults to inject (a child of `hermetic chaos`).
    pub faults: Option<crate::chaos::FaultPlan>,
    /// Kill the process once one of these steps has finished (a child of `hermetic chaos`).
    pub kill_after: Vec<String>,
    /// `--remote-exec`: run the attempts on a REAPI server's bots.
    pub remote: Option<Arc<crate::remote::RemoteExec>>,
}

/// Whether [`Project::load_with`] takes the project lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Take it, waiting for another process that holds it.
    Take,
    /// The parent process (`hermetic chaos`) holds it for this one.
    HeldByParent,
}

/// A planned workflow, with the project's `.hermetic/` locked for this process.
#[derive(Debug)]
pub struct Project {
    pub plan: Arc<Plan>,
    pub sandbox: Arc<Sandbox>,
    /// The cache root: compiled modules in `compiled/`, results in `store/`. `None` when no
    /// cache directory can be determined (no HOME), which disables caching.
    pub cache_root: Option<PathBuf>,
    pub jobs: usize,
    /// Held until the project is dropped.
    _lock: Option<ProjectLock>,
}

/// `--jobs`, or the number of CPUs.
pub fn jobs(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1)
}

impl Project {
    /// Loads and plans `workflow`, for a command that runs no step in this process. A workflow
    /// with problems prints them and comes back as `Err(exit code 2)`.
    pub fn load(
        cli: &Cli,
        workflow: &Path,
        options: &PlanOptions,
        jobs: usize,
    ) -> anyhow::Result<Result<Project, ExitCode>> {
        Self::load_with(cli, workflow, options, jobs, Lock::Take, false)
    }

    /// [`Project::load`], taking the project lock or not. With `runs_here`, for a command
    /// that runs the plan's steps in this process on `jobs` workers, the sandbox's worker
    /// lanes are made while the workflow is planned, on a core the planning leaves idle,
    /// instead of by each worker at its first step: 10,000 no-op steps at `--jobs 2` took
    /// 0.9 ms less (median of two batches of 40 interleaved runs, 64.0 against 65.0 ms and
    /// 61.0 against 61.9 ms).
    pub fn load_with(
        cli: &Cli,
        workflow: &Path,
        options: &PlanOptions,
        jobs: usize,
        lock: Lock,
        runs_here: bool,
    ) -> anyhow::Result<Result<Project, ExitCode>> {
        let state_dir = crate::workflow::dir_of(workflow).join(".hermetic");
        let cli_root = super::cache_root(cli);
        let make_sandbox =
            |root: Option<&Path>| Sandbox::for_workers(jobs as u32, root, options.fault_hooks);
        // The sandbox is made on another thread while the workflow loads, in the cache root
        // the command line gives; only a workflow that names its own (`defaults.cache_dir`)
        // has to wait for another one.
        let (loaded, early_sandbox) = std::thread::scope(|scope| {
            let sandbox = crate::beside::spawn_scoped(
                scope,
                std::thread::Builder::new().name("hermetic-sandbox".into()),
                || make_sandbox(cli_root.as_deref()),
            );
            let loaded = match &cli_root {
                Some(root) => Workflow::load_memoized(workflow, root),
                None => Workflow::load(workflow),
            };
            let sandbox = sandbox.ok().and_then(|thread| thread.join().ok());
            (loaded, sandbox)
        });
        let workflow = match loaded {
            Ok(wf) => wf,
            Err(diags) => {
                eprintln!("{diags}");
                return Ok(Err(ExitCode::from(EXIT_USAGE)));
            }
        };
        if !workflow.warnings.is_empty() {
            eprintln!("{}", workflow.warnings);
        }
        let lock = match lock {
            Lock::Take => Some(ProjectLock::acquire(&state_dir)?),
            Lock::HeldByParent => None,
        };
        let cache_root = super::cache_root_for(cli, Some(&workflow));
        let sandbox = match early_sandbox {
            Some(sandbox) if cache_root == cli_root => sandbox?,
            _ => make_sandbox(cache_root.as_deref())?,
        };
        // A `--step` selection that runs fewer workers than this leaves a lane unused.
        let lanes = if runs_here {
            crate::pool::worker_count(jobs, workflow.steps.len())
        } else {
            0
        };
        let planned = std::thread::scope(|scope| {
            if lanes > 1 {
                // If the thread cannot start, each worker makes its lane, as without it.
                let _ = crate::beside::spawn_scoped(
                    scope,
                    std::thread::Builder::new().name("hermetic-lanes".into()),
                    || sandbox.make_lanes(lanes),
                );
            }
            Plan::new(workflow, &sandbox, options)
        });
        let mut plan = match planned {
            Ok(plan) => plan,
            Err(diags) => {
                eprintln!("{diags}");
                return Ok(Err(ExitCode::from(EXIT_USAGE)));
            }
        };
        adapt_timeouts(&mut plan);
        Ok(Ok(Project {
            plan: Arc::new(plan),
            sandbox: Arc::new(sandbox),
            cache_root,
            jobs,
            _lock: lock,
        }))
    }

    /// The local result store, or `None` with a warning when it cannot be opened: a broken
    /// cache never stops a run.
    pub fn open_store(&self) -> Option<Arc<DiskStore>> {
        let root = self.cache_root.as_ref()?.join("store");
        match DiskStore::open(&root) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                eprintln!("   Warning cache disabled for this run: {e}");
                None
            }
        }
    }

    /// Runs the plan to its end, reporting as `--json` or for humans, then records each step's
    /// key for `hermetic why` and the run's hits and misses for `hermetic cache stats`.
    pub fn execute(
        &self,
        cache: Option<CacheUse>,
        local: Option<&DiskStore>,
        how: &Execution,
    ) -> anyhow::Result<RunSummary> {
        let mut reporter: Box<dyn Reporter> = if how.json {
            Box::new(JsonReporter)
        } else {
            Box::new(HumanReporter::new())
        };
        let state_dir = &self.plan.state_dir;
        let resume = if how.resume {
            match runs::resumable(state_dir) {
                Ok(Some(r)) => Some(r),
                Ok(None) => {
                    reporter.event(&Event::Warning {
                        step: None,
                        message: "nothing to resume: no earlier run is recorded; running every \
                                  step"
                            .into(),
                    });
                    None
                }
                Err(e) => anyhow::bail!("cannot read the run to resume: {e}"),
            }
        } else {
            None
        };
        let resumed_from = resume.as_ref().map(|r| r.run_id.clone());
        let mut journal = if how.journal {
            match RunJournal::create(state_dir) {
                Ok(j) => Some(j),
                Err(e) => {
                    reporter.event(&Event::Warning {
                        step: None,
                        message: format!("this run is not journaled: {e}"),
                    });
                    None
                }
            }
        } else {
            None
        };
        // Read while the steps run, since they are only needed once the steps have ended.
        let preload = Preload::start(Work {
            state_dir: state_dir.clone(),
            keys: how.record_keys,
            durations: how.journal && self.plan.uses_adaptive_timeouts(),
            prune: journal.is_some(),
        });
        let started_at = runs::rfc3339(std::time::SystemTime::now());
        let mut executor = Executor::new(self.plan.clone(), self.sandbox.clone(), self.jobs)
            .keep_going(how.keep_going)
            .with_seed(how.seed)
            .resuming(resume)
            .with_faults(how.faults.clone())
            .with_remote(how.remote.clone());
        if let Some(cache) = &cache {
            executor = executor.with_cache(cache.clone());
        }
        // Steps run on the pool's own threads; this runtime only forwards their events,
        // stores results and waits for an interrupt.
        let rt = super::runtime(1)?;
        let interrupt = {
            let _runtime = rt.enter();
            interrupted()?
        };
        let kill_after = how.kill_after.clone();
        let (summary, mut reporter, journal) = rt.block_on(async move {
            let summary = match &mut journal {
                Some(journal) => {
                    let mut tee = Tee {
                        display: reporter.as_mut(),
                        journal,
                    };
                    if kill_after.is_empty() {
                        executor.run(&mut tee, interrupt).await
                    } else {
                        let mut killing = KillAfter {
                            inner: &mut tee,
                            steps: kill_after,
                        };
                        executor.run(&mut killing, interrupt).await
                    }
                }
                None => executor.run(reporter.as_mut(), interrupt).await,
            };
            (summary, reporter, journal)
        });
        let cache_stats = local.filter(|_| cache.as_ref().is_some_and(|c| c.read));
        let records = Records {
            plan: &self.plan,
            summary: &summary,
            journal: journal.map(|journal| {
                let summary_json = Summary {
                    version: runs::SUMMARY_VERSION,
                    run_id: journal.id().to_string(),
                    workflow: &self.plan.workflow.name,
                    status: summary.status,
                    started_at: &started_at,
                    duration_ms: summary.metrics.wall_us / 1000,
                    jobs: self.jobs,
                    seed: how.seed,
                    keep_going: how.keep_going,
                    resumed_from: resumed_from.as_deref(),
                    counts: counts(&summary),
                    metrics: &summary.metrics,
                };
                (journal, summary_json)
            }),
            trace: how.trace.as_deref(),
            cache_stats,
        };
        for message in records.write(preload) {
            reporter.event(&Event::Warning {
                step: None,
                message,
            });
        }
        Ok(summary)
    }
}

/// How many steps of `summary` ended how.
fn counts(summary: &RunSummary) -> Counts {
    let count = |s: StepStatus| summary.steps.iter().filter(|x| **x == Some(s)).count();
    Counts {
        succeeded: count(StepStatus::Succeeded),
        failed: count(StepStatus::Failed),
        skipped: count(StepStatus::Skipped),
        cached: summary.keys.iter().flatten().filter(|k| k.cached).count(),
        unfinished: summary.steps.iter().filter(|x| x.is_none()).count(),
    }
}

/// Gives each step with `adaptive_timeout` its limit from the history of its run times.
fn adapt_timeouts(plan: &mut Plan) {
    if !plan.uses_adaptive_timeouts() {
        return;
    }
    let history = Durations::load(&plan.state_dir);
    for step in &mut plan.steps {
        let def = &plan.workflow.steps[step.workflow_index];
        let Some(adaptive) = def.adaptive_timeout else {
            continue;
        };
        if let Some(limit) =
            durations::adaptive_limit(adaptive, history.p95(&step.name), def.timeout)
        {
            tracing::debug!(step = %step.name, ?limit, "adaptive timeout");
            step.limits.timeout = limit;
        }
    }
}
