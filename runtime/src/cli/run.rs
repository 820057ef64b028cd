//! `hermetic run [WORKFLOW] [--jobs N] [--step NAME…]`: run a workflow.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::project::{Execution, Lock, Project};
use super::remote;
use super::{Cli, EXIT_FAILURE, EXIT_INTERRUPTED};
use crate::chaos::process::ChildFaults;
use crate::events::RunStatus;
use crate::plan::PlanOptions;
use crate::pool::CacheUse;
use crate::remote::RemoteExec;
use crate::sandbox::UnknownImports;

/// Arguments of `hermetic run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// How many steps may run at once. [default: the number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Run only this step and what it depends on (repeatable).
    #[arg(long = "step", value_name = "NAME")]
    pub steps: Vec<String>,

    /// Write JSON-lines events to stdout instead of human progress.
    #[arg(long)]
    pub json: bool,

    /// Publish outputs under `DIR/<step>/` instead of the workflow's `out_dir`.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Link imports the sandbox does not provide to functions that trap when called.
    #[arg(long)]
    pub unknown_imports_trap: bool,

    /// Neither read nor write cached results: run every step.
    #[arg(long)]
    pub no_cache: bool,

    /// Refuse to run, and write nothing, if anything pinned in hermetic.lock has drifted.
    #[arg(long)]
    pub locked: bool,

    /// After a step fails, still run every step that does not depend on it. By default no
    /// step starts after a failure (steps already running finish).
    #[arg(short, long)]
    pub keep_going: bool,

    /// Schedule deterministically: steps are dispatched in lockstep rounds, and every choice
    /// (order among equal steps, which worker, retry jitter) comes from N, so the same seed
    /// replays the same dispatch events.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Continue the last run (one that was interrupted, even killed): steps that succeeded in
    /// it keep their results if their key and published outputs are unchanged; the others run.
    #[arg(long)]
    pub resume: bool,

    /// Write the run's trace to FILE as Chrome trace-event JSON (open it in Perfetto): one
    /// track per worker, a slice per step.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// A REAPI cache server (e.g. BuildGrid) shared with other machines, behind the local
    /// cache: `grpc://HOST:PORT` or `http://HOST:PORT`. When it cannot be reached, the run goes
    /// on with the local cache and one warning.
    #[arg(long, env = "HERMETIC_REMOTE_CACHE", value_name = "URL")]
    pub remote_cache: Option<String>,

    /// Read from the remote cache but never write to it (for untrusted runs, such as pull
    /// requests).
    #[arg(long)]
    pub remote_cache_readonly: bool,

    /// Run the steps on a REAPI execution server's bots (`hermetic worker`) instead of here.
    /// Cache lookups, output checks and publishing stay local.
    #[arg(long, env = "HERMETIC_REMOTE_EXEC", value_name = "URL")]
    pub remote_exec: Option<String>,

    /// The REAPI instance name of the remote cache and execution server.
    #[arg(
        long,
        env = "HERMETIC_REMOTE_INSTANCE",
        default_value = "",
        value_name = "NAME"
    )]
    pub remote_instance: String,

    /// Internal, for `hermetic chaos`: inject the faults described in FILE. The suite that
    /// passes it holds the project lock for this process.
    #[arg(long, value_name = "FILE", hide = true)]
    pub chaos_child: Option<PathBuf>,
}

/// Runs `hermetic run`.
pub fn exec(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::project::jobs(args.jobs);
    let options = PlanOptions {
        only: args.steps.clone(),
        out_dir: args.out_dir.clone(),
        unknown_imports: if args.unknown_imports_trap {
            UnknownImports::Trap
        } else {
            UnknownImports::Reject
        },
        fault_hooks: args.chaos_child.is_some(),
    };
    let chaos = match &args.chaos_child {
        Some(path) => Some(ChildFaults::read(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let lock = if chaos.is_some() {
        Lock::HeldByParent
    } else {
        Lock::Take
    };
    // With `--remote-exec`, the steps run on the server's bots.
    let runs_here = args.remote_exec.is_none();
    let project = match Project::load_with(cli, &args.workflow, &options, jobs, lock, runs_here)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if args.locked
        && let Err(code) = super::lock::check_locked(&project)
    {
        return Ok(code);
    }
    let local = if args.no_cache {
        None
    } else {
        project.open_store()
    };
    let remote_cache = match args.remote_cache.as_deref().filter(|_| !args.no_cache) {
        Some(url) => match remote::connect_now(cli, url, &args.remote_instance) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                eprintln!("   Warning the remote cache is not used in this run: {e}");
                None
            }
        },
        None => None,
    };
    let remote_exec = match args.remote_exec.as_deref() {
        Some(url) => {
            let same = remote_cache.as_ref().filter(|r| r.url() == url).cloned();
            let store = match same {
                Some(store) => store,
                None => match remote::connect_now(cli, url, &args.remote_instance) {
                    Ok(store) => Arc::new(store),
                    Err(e) => {
                        eprintln!("error: cannot use the execution server: {e}");
                        return Ok(ExitCode::from(super::EXIT_USAGE));
                    }
                },
            };
            Some(Arc::new(RemoteExec::new(store)))
        }
        None => None,
    };
    let store = remote::layered(local.clone(), remote_cache, args.remote_cache_readonly);
    let cache = store.map(|store| CacheUse {
        store,
        read: true,
        write: true,
    });
    let how = Execution {
        json: args.json,
        record_keys: true,
        keep_going: args.keep_going,
        seed: args.seed,
        journal: true,
        resume: args.resume,
        trace: args.trace.clone(),
        faults: chaos.as_ref().map(|c| {
            let names: Vec<&str> = project.plan.steps.iter().map(|s| s.name.as_str()).collect();
            c.plan(&names)
        }),
        kill_after: chaos.map(|c| c.kill_after).unwrap_or_default(),
        remote: remote_exec,
    };
    let summary = project.execute(cache, local.as_deref(), &how)?;
    let code = exit_code(summary.status);
    // The process ends now, and the OS takes back the plan, the engine and the run's records
    // at once; dropping them would free their allocations one by one (4 ms for 10,000 steps).
    // Neither does anything outside the process when dropped: the project lock is an `flock`,
    // released as the process exits, and the engine's epoch thread ends with it.
    std::mem::forget(project);
    std::mem::forget(summary);
    Ok(code)
}

/// The process exit code for a run that ended with `status`.
pub fn exit_code(status: RunStatus) -> ExitCode {
    ExitCode::from(match status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed => EXIT_FAILURE,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed now, not when the future
/// is first polled, so a signal that arrives while the run starts up is not the default action
/// (which would kill the process without cleaning up). Must be called inside the runtime.
pub fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Exclusive use of a project's `.hermetic/` directory for one `hermetic` process. Held while
/// the run lasts; the OS releases it if the process dies, so a killed run never blocks the next.
#[derive(Debug)]
pub struct ProjectLock {
    _file: std::fs::File,
}

impl ProjectLock {
    /// Takes the lock, waiting (and saying so) if another process holds it. Also sweeps
    /// per-attempt directories left behind by a process that was killed.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create `{}`", state_dir.display()))?;
        let path = state_dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        if file.try_lock().is_err() {
            eprintln!(
                "   Waiting for another hermetic process using `{}`",
                state_dir.display()
            );
            file.lock()
                .with_context(|| format!("cannot lock `{}`", path.display()))?;
        }
        let tmp = state_dir.join("tmp");
        crate::pool::scratch::sweep(&tmp)
            .with_context(|| format!("cannot clean up `{}`", tmp.display()))?;
        Ok(Self { _file: file })
    }
}
