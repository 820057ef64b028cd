//! Measurements inside this process: the raw wasmtime baseline, `Sandbox::run` with and without
//! mounts, one attempt of a step, the executor, and the sandbox's own set-up costs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use hermetic_runtime::events::{Event, Reporter, RunStatus};
use hermetic_runtime::plan::{Plan, PlanOptions};
use hermetic_runtime::pool::{Executor, Leftovers, Observers, Runner, ScratchPool, run_attempt};
use hermetic_runtime::sandbox::engine::build_engine;
use hermetic_runtime::sandbox::{
    CaptureTo, Invocation, Limits, Mount, Program, Sandbox, UnknownImports, clock,
};
use hermetic_runtime::workflow::Workflow;
use wasmtime::{Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// Far enough in the future that the raw loop (which has no epoch ticker) never reaches it.
const EPOCH_DEADLINE: u64 = 1 << 40;

/// The baseline: the same engine configuration as the sandbox, the stock WASI p1
/// implementation with an empty context, and nothing else.
pub struct Raw {
    engine: Engine,
    pre_async: InstancePre<WasiP1Ctx>,
    pre_sync: InstancePre<WasiP1Ctx>,
    fuel: u64,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw").finish_non_exhaustive()
    }
}

impl Raw {
    /// Compiles `wasm` and links it twice: against the async and the sync WASI p1 linker.
    pub fn new(wasm: &Path) -> anyhow::Result<Self> {
        // As a worker's lane on a machine with no core to spare for a reaper.
        let engine = build_engine(1, false)?;
        let module = Module::from_file(&engine, wasm)?;
        let mut async_linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut async_linker, |s| s)?;
        let mut sync_linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut sync_linker, |s| s)?;
        Ok(Self {
            pre_async: async_linker.instantiate_pre(&module)?,
            pre_sync: sync_linker.instantiate_pre(&module)?,
            engine,
            fuel: Limits::default().fuel,
        })
    }

    fn store(&self) -> anyhow::Result<Store<WasiP1Ctx>> {
        let mut store = Store::new(&self.engine, WasiCtxBuilder::new().build_p1());
        store.set_fuel(self.fuel)?;
        store.set_epoch_deadline(EPOCH_DEADLINE);
        Ok(store)
    }

    /// `iters` × (new `Store`, `instantiate_async`, `_start` with `call_async`). Run it inside a
    /// tokio runtime.
    pub async fn run_async(&self, iters: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        for _ in 0..iters {
            let mut store = self.store()?;
            let instance = self.pre_async.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            exited_ok(start.call_async(&mut store, ()).await)?;
        }
        Ok(started.elapsed())
    }

    /// The same without async: `instantiate` and `call` on the calling thread, no fiber. Run it
    /// outside any tokio runtime.
    pub fn run_sync(&self, iters: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        for _ in 0..iters {
            let mut store = self.store()?;
            let instance = self.pre_sync.instantiate(&mut store)?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            exited_ok(start.call(&mut store, ()))?;
        }
        Ok(started.elapsed())
    }
}

fn exited_ok(result: wasmtime::Result<()>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.downcast_ref::<I32Exit>().is_some_and(|x| x.0 == 0) => Ok(()),
        Err(e) => Err(anyhow!("the no-op guest failed: {e:#}")),
    }
}

/// An invocation of the no-op guest like a step's, with the given mounts and captures.
pub fn invocation(mounts: Vec<Mount>, stdout: CaptureTo, stderr: CaptureTo) -> Invocation {
    Invocation {
        args: vec!["noop".into()],
        env: Vec::new(),
        mounts,
        limits: Limits::default(),
        seed: [7; 32],
        clock_epoch: Duration::from_secs(clock::DEFAULT_EPOCH_SECS),
        clock_jump: None,
        stdout,
        stderr,
        heartbeat: None,
        host_calls: None,
        wasi_fault: None,
    }
}

/// The four mounts a step gets (`/in`, `/deps` read-only, `/out`, `/tmp` read-write), as
/// directories under `dir`.
pub fn step_mounts(dir: &Path) -> anyhow::Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for (name, writable) in [("in", false), ("deps", false), ("out", true), ("tmp", true)] {
        let host = dir.join(name);
        std::fs::create_dir_all(&host)
            .with_context(|| format!("cannot create `{}`", host.display()))?;
        mounts.push(Mount {
            host,
            guest: format!("/{name}"),
            writable,
        });
    }
    Ok(mounts)
}

/// `iters` × `Sandbox::run`.
pub async fn sandbox_runs(
    sandbox: &Sandbox,
    program: &Program,
    inv: &Invocation,
    iters: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for _ in 0..iters {
        let report = sandbox.run(program, inv).await?;
        ensure!(
            report.outcome.is_success(),
            "the no-op guest failed: {}",
            report.outcome
        );
    }
    Ok(started.elapsed())
}

/// Loads a workflow and plans it against `sandbox`.
pub fn plan(workflow: &Path, sandbox: &Sandbox) -> anyhow::Result<Plan> {
    let wf = Workflow::load(workflow).map_err(|d| anyhow!("{d}"))?;
    Plan::new(wf, sandbox, &PlanOptions::default()).map_err(|d| anyhow!("{d}"))
}

/// One attempt of every step of `plan`, one after the other (what a worker does per step,
/// without the scheduling and the events).
pub async fn attempts(plan: &Plan, sandbox: &Sandbox) -> anyhow::Result<Duration> {
    plan.prepare_dirs()?;
    let scratch = ScratchPool::new(plan.state_dir.join("tmp"));
    let leftovers = Leftovers::list(plan);
    let started = Instant::now();
    for step in &plan.steps {
        let result = run_attempt(
            plan,
            Runner::Local(sandbox, 0),
            &scratch,
            &leftovers,
            step,
            Observers::default(),
        )
        .await;
        ensure!(
            result.succeeded,
            "step `{}` failed: {}",
            step.name,
            result.message.unwrap_or_default()
        );
    }
    Ok(started.elapsed())
}

/// Drops every event.
#[derive(Debug)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn event(&mut self, _event: &Event) {}
}

/// The whole executor in this process, with `jobs` workers and no event output. As in
/// `hermetic run`, the steps run on the pool's threads; the runtime only hosts the executor.
pub fn executor(plan: &Arc<Plan>, sandbox: &Arc<Sandbox>, jobs: usize) -> anyhow::Result<Duration> {
    let rt = hermetic_runtime::cli::runtime(1)?;
    let executor = Executor::new(plan.clone(), sandbox.clone(), jobs);
    let started = Instant::now();
    let summary = rt.block_on(executor.run(&mut NullReporter, std::future::pending()));
    let elapsed = started.elapsed();
    ensure!(
        summary.status == RunStatus::Succeeded,
        "the in-process run did not succeed: {:?}",
        summary.status
    );
    Ok(elapsed)
}

/// Times of creating a sandbox and loading a module into it.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// `Sandbox::new(1, Some(cache))`: engine, pooling allocator, linkers, epoch thread.
    pub new: Duration,
    /// `load_file`: read, digest, compile or deserialize, link.
    pub load: Duration,
    /// Whether the compiled module came from the cache.
    pub cache_hit: bool,
}

/// Creates a sandbox caching under `cache` and loads `wasm` (dropping them is not timed).
pub fn load(cache: &Path, wasm: &Path) -> anyhow::Result<Load> {
    let t = Instant::now();
    let sandbox = Sandbox::new(1, Some(cache))?;
    let new = t.elapsed();
    let t = Instant::now();
    let program = sandbox
        .load_file(wasm, UnknownImports::Reject)
        .with_context(|| format!("cannot load `{}`", wasm.display()))?;
    let load = t.elapsed();
    Ok(Load {
        new,
        load,
        cache_hit: program.cache_hit,
    })
}

/// Times of the steps of `hermetic exec`, done in this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecSteps {
    /// `Sandbox::new`.
    pub new: Duration,
    /// `load_file` (from the compiled-module cache).
    pub load: Duration,
    /// Creating the tokio runtime, `Sandbox::run`, dropping the runtime.
    pub run: Duration,
    /// Dropping the program and the sandbox, which joins the epoch thread.
    pub drop: Duration,
}

/// What `hermetic exec` does after parsing its arguments, step by step.
pub fn exec_steps(cache: &Path, wasm: &Path) -> anyhow::Result<ExecSteps> {
    let t = Instant::now();
    let sandbox = Sandbox::new(1, Some(cache))?;
    let new = t.elapsed();
    let t = Instant::now();
    let program = sandbox.load_file(wasm, UnknownImports::Reject)?;
    let load = t.elapsed();
    ensure!(
        program.cache_hit,
        "`{}` was not in the cache",
        wasm.display()
    );
    let t = Instant::now();
    let rt = hermetic_runtime::cli::runtime(1)?;
    let inv = invocation(Vec::new(), CaptureTo::Memory, CaptureTo::Memory);
    let report = rt.block_on(sandbox.run(&program, &inv))?;
    ensure!(report.outcome.is_success(), "{}", report.outcome);
    drop(rt);
    let run = t.elapsed();
    let t = Instant::now();
    drop(program);
    drop(sandbox);
    let drop = t.elapsed();
    Ok(ExecSteps {
        new,
        load,
        run,
        drop,
    })
}

/// `iters` × (a per-attempt directory with `out/` and `tmp/` in it, created under `root` and
/// removed): the filesystem work of one attempt's directory, alone.
pub fn attempt_dirs(root: &Path, iters: usize) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(root)?;
    let started = Instant::now();
    for i in 0..iters {
        let work = tempfile::Builder::new()
            .prefix(&format!("s{i:05}-"))
            .tempdir_in(root)?;
        std::fs::create_dir(work.path().join("out"))?;
        std::fs::create_dir(work.path().join("tmp"))?;
        work.close()?;
    }
    Ok(started.elapsed())
}

/// `iters` × leasing a scratch directory from a [`ScratchPool`] and recycling it unused, with
/// each of its directories checked (no directory passed as known to be empty): what an
/// attempt whose guest wrote something pays for its directories since they are reused.
pub fn scratch_cycles(root: &Path, iters: usize) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(root)?;
    let pool = ScratchPool::new(root.to_path_buf());
    pool.lease("warm")?.recycle(&[]);
    let started = Instant::now();
    for _ in 0..iters {
        pool.lease("s")?.recycle(&[]);
    }
    Ok(started.elapsed())
}

/// `iters` × a round trip of an empty closure through tokio's blocking pool.
pub async fn blocking_hops(iters: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for _ in 0..iters {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    Ok(started.elapsed())
}

/// Total size of the files under `dir`.
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}
