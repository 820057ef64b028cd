//! What `run`, `lock`, `verify` and `why` share: a workflow loaded and planned under the
//! project lock, its cache, and one execution of its plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use hermetic_cache::DiskStore;

use super::run::{ProjectLock, interrupted};
use super::{Cli, EXIT_USAGE};
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};
use crate::journal::keys;
use crate::plan::{Plan, PlanOptions};
use crate::pool::{CacheUse, Executor, RunSummary};
use crate::sandbox::Sandbox;
use crate::workflow::Workflow;

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
    _lock: ProjectLock,
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
    /// Loads and plans `workflow`. A workflow with problems prints them and comes back as
    /// `Err(exit code 2)`.
    pub fn load(
        cli: &Cli,
        workflow: &Path,
        options: &PlanOptions,
        jobs: usize,
    ) -> anyhow::Result<Result<Project, ExitCode>> {
        let workflow = match Workflow::load(workflow) {
            Ok(wf) => wf,
            Err(diags) => {
                eprintln!("{diags}");
                return Ok(Err(ExitCode::from(EXIT_USAGE)));
            }
        };
        let state_dir = workflow.dir.join(".hermetic");
        let lock = ProjectLock::acquire(&state_dir)?;
        let cache_root = super::cache_root_for(cli, Some(&workflow));
        let sandbox = Sandbox::new(jobs as u32, cache_root.as_deref())?;
        let plan = match Plan::new(workflow, &sandbox, options) {
            Ok(plan) => plan,
            Err(diags) => {
                eprintln!("{diags}");
                return Ok(Err(ExitCode::from(EXIT_USAGE)));
            }
        };
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
        json: bool,
        record_keys: bool,
    ) -> anyhow::Result<RunSummary> {
        let mut reporter: Box<dyn Reporter> = if json {
            Box::new(JsonReporter)
        } else {
            Box::new(HumanReporter::new())
        };
        let mut executor = Executor::new(self.plan.clone(), self.sandbox.clone(), self.jobs);
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
        let (summary, mut reporter) = rt.block_on(async move {
            let summary = executor.run(reporter.as_mut(), interrupt).await;
            (summary, reporter)
        });
        if record_keys && let Err(e) = keys::record_all(&self.plan, &summary) {
            reporter.event(&Event::Warning {
                step: None,
                message: format!("cannot record the steps' keys for `hermetic why`: {e}"),
            });
        }
        if let Some(local) = local.filter(|_| cache.as_ref().is_some_and(|c| c.read)) {
            let hits = summary.keys.iter().flatten().filter(|k| k.cached).count() as u64;
            let misses = summary.keys.iter().flatten().filter(|k| !k.cached).count() as u64;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Err(e) = local.record_run(hits, misses, now) {
                reporter.event(&Event::Warning {
                    step: None,
                    message: format!("cannot record cache statistics: {e}"),
                });
            }
        }
        Ok(summary)
    }
}
