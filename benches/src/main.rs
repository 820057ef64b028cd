//! `cargo run --release -p hermetic-bench [-- OPTIONS]`: hermetic's overheads, as ratios measured
//! in one run (the machine may be noisy; every figure is the median over `--rounds` rounds, and
//! the rounds interleave all the figures).
//!
//! 1. The per-step cost of the whole pipeline on no-op steps against a raw wasmtime
//!    instantiate-and-call loop with the same engine, with a breakdown in between.
//! 2. The same against one process per step (`true`, `hermetic exec`, `wasmtime run`).
//! 3. Compiling a module cold against loading it from the compiled-module cache.
//! 4. The result cache: a workflow run cold against fully cached, input hashing against raw
//!    blake3, and `hermetic run` against `make`.
//! 5. The pool: 10,000 no-op steps in a wide DAG (steps/s against the raw wasmtime loop, pickup
//!    latency), a 1,000-step chain, utilization on CPU-bound steps, a skewed workload with and
//!    without work stealing, and one process per step under `make -j2` and `xargs -P2` against
//!    `hermetic run --jobs 2`.
//!
//! 6. Remote, on a BuildGrid started on loopback: a remote cache hit against a local one,
//!    upload throughput against local writes, and a step on `hermetic worker` against a local
//!    one.
//!
//! 7. Opt-in (`--only idle`, since it sleeps between runs): `hermetic run` after the machine
//!    sat idle and back to back, with the shipped allocator options against transparent huge
//!    pages.
//!
//! `--only SECTION,…` measures some of them.

// The allocator of the `hermetic` binary, with its options, so that the in-process figures
// (the raw wasmtime baseline above all) are measured as `hermetic run` runs.
hermetic_runtime::global_allocator!();

mod artifacts;
mod idle;
mod inproc;
mod pool;
mod procs;
mod remote;
mod report;
mod result_cache;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use hermetic_runtime::sandbox::{CaptureTo, Invocation, Program, Sandbox, UnknownImports};

use artifacts::{Guests, Layout, on_path};
use report::{Figure, Table, bytes};

/// A section of the table, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// 1. The per-step cost of a no-op step, against raw wasmtime.
    Steps,
    /// 2. One process per step (also measures section 1's `hermetic run`, its baseline).
    Procs,
    /// 3. The compiled-module cache.
    Compile,
    /// 4. The result cache.
    Cache,
    /// 5. The work-stealing pool: throughput, pickup latency, utilization, stealing.
    Pool,
    /// 6. Remote cache and execution on BuildGrid (started on loopback).
    Remote,
    /// 7. Runs after idle and back to back, shipped allocator options against huge pages.
    ///    Only when named: it sleeps `--idle-secs` four times a round.
    Idle,
}

/// Measures hermetic's per-step overhead, process-per-step costs, compile caching and the
/// result cache.
#[derive(Debug, Parser)]
#[command(name = "hermetic-bench", max_term_width = 100)]
struct Args {
    /// No-op steps in the generated workflow. The pipeline's per-step cost is
    /// (time of N+1 steps − time of 1 step) / N, each time the best of 3 runs.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    steps: usize,

    /// Iterations of each in-process loop per round.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    iters: usize,

    /// Processes per round for `true`.
    #[arg(long, value_name = "N", default_value_t = 200)]
    procs: usize,

    /// Processes per round for `hermetic exec` and `wasmtime run`.
    #[arg(long, value_name = "N", default_value_t = 30)]
    exec_procs: usize,

    /// Rounds; each figure is the median over rounds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    rounds: usize,

    /// Use this `hermetic` binary instead of building `target/release/hermetic`.
    #[arg(long, value_name = "PATH")]
    hermetic: Option<PathBuf>,

    /// Measure only these sections (comma-separated or repeated); all but `idle` by default.
    #[arg(long, value_name = "SECTION", value_delimiter = ',')]
    only: Vec<Section>,

    /// Steps in the result-cache workflow, each copying a 64-byte input of its own.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    cache_steps: usize,

    /// Rounds with a cold run of the result-cache workflow (at most `--rounds`). A cold run costs
    /// seconds; later rounds reuse the last cold run's cache for the cached figures.
    #[arg(long, value_name = "N", default_value_t = 3)]
    cold_rounds: usize,

    /// Steps in the workflow and the Makefile of the comparison with `make`.
    #[arg(long, value_name = "N", default_value_t = 200)]
    make_steps: usize,

    /// `--jobs` of `hermetic run` and `-j` of `make` in the result-cache section.
    #[arg(long, value_name = "N", default_value_t = 2)]
    cache_jobs: usize,

    /// No-op steps in the pool section's wide DAG (100 roots, each with a fan-out).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pool_steps: usize,

    /// No-op steps in the pool section's chain.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    chain_steps: usize,

    /// Steps run as one process each (make, xargs) in the pool section.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pool_procs: usize,

    /// Seconds the idle section waits before each run it times after idle.
    #[arg(long, value_name = "SECS", default_value_t = 6)]
    idle_secs: u64,
}

impl Args {
    /// Whether `--only` selects `section` (every section but `idle` when it is not given).
    fn wants(&self, section: Section) -> bool {
        self.only.contains(&section) || (self.only.is_empty() && section != Section::Idle)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every figure, one value per round.
#[derive(Debug, Default)]
struct Figures {
    raw_async: Figure,
    raw_sync: Figure,
    sb_bare: Figure,
    sb_blind: Figure,
    sb_mounts: Figure,
    sb_mounts_ro: Figure,
    sb_files: Figure,
    attempt: Figure,
    executor_j1: Figure,
    executor_j2: Figure,
    run_one_j1: Figure,
    run_j1: Figure,
    run_j2: Figure,
    run_files_j1: Figure,
    proc_true: Figure,
    proc_exec: Figure,
    proc_wasmtime: Figure,
    attempt_dirs: Figure,
    scratch_cycle: Figure,
    blocking_hop: Figure,
    exec_new: Figure,
    exec_load: Figure,
    exec_run: Figure,
    exec_drop: Figure,
    cold_total: Figure,
    cold_load: Figure,
    cached_total: Figure,
    cached_load: Figure,
    result_cache: result_cache::Figures,
    pool: pool::Figures,
    idle: idle::Figures,
    remote: remote::Figures,
}

/// Section 1's in-process set-up: the raw baseline, sandboxes, invocations and plans.
struct InProcess {
    raw: inproc::Raw,
    sandbox1: Arc<Sandbox>,
    sandbox2: Arc<Sandbox>,
    program: Program,
    /// `noop-files.wasm`, which reaches files and so is given its mounts.
    program_files: Program,
    inv_bare: Invocation,
    inv_mounts: Invocation,
    inv_mounts_ro: Invocation,
    inv_files: Invocation,
    plan1: Arc<hermetic_runtime::plan::Plan>,
    plan2: Arc<hermetic_runtime::plan::Plan>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").finish_non_exhaustive()
    }
}

impl InProcess {
    /// Builds everything untimed: an N-step workflow for the in-process executor under `work`,
    /// sandboxes caching under `cache`, and the no-op guest loaded.
    fn new(args: &Args, work: &Path, cache: &Path, guests: &Guests) -> anyhow::Result<Self> {
        let noop = &guests.noop;
        let wf_inproc = procs::write_workflow(&work.join("inproc"), args.steps, noop)?;
        let raw = inproc::Raw::new(noop)?;
        // As `hermetic run --jobs 1` and `--jobs 2` make them: an engine per worker.
        let sandbox1 = Arc::new(Sandbox::for_workers(1, Some(cache), false)?);
        let sandbox2 = Arc::new(Sandbox::for_workers(2, Some(cache), false)?);
        let program = sandbox1.load_file(noop, UnknownImports::Reject)?;
        let program_files = sandbox1.load_file(&guests.noop_files, UnknownImports::Reject)?;
        ensure!(
            !program.reaches_files && program_files.reaches_files,
            "noop.wasm should reach no files and noop-files.wasm should"
        );
        let mounts = inproc::step_mounts(&work.join("mounts"))?;
        let inv_bare = inproc::invocation(Vec::new(), CaptureTo::Memory, CaptureTo::Memory);
        let inv_mounts = inproc::invocation(mounts.clone(), CaptureTo::Memory, CaptureTo::Memory);
        let read_only = mounts
            .iter()
            .map(|m| hermetic_runtime::sandbox::Mount {
                writable: false,
                ..m.clone()
            })
            .collect();
        let inv_mounts_ro = inproc::invocation(read_only, CaptureTo::Memory, CaptureTo::Memory);
        let inv_files = inproc::invocation(
            mounts,
            CaptureTo::File(work.join("mounts/stdout")),
            CaptureTo::File(work.join("mounts/stderr")),
        );
        let plan1 = Arc::new(inproc::plan(&wf_inproc, &sandbox1)?);
        let plan2 = Arc::new(inproc::plan(&wf_inproc, &sandbox2)?);
        let rt = hermetic_runtime::cli::runtime(1)?;
        Ok(Self {
            raw,
            sandbox1,
            sandbox2,
            program,
            program_files,
            inv_bare,
            inv_mounts,
            inv_mounts_ro,
            inv_files,
            plan1,
            plan2,
            rt,
        })
    }

    /// Runs every in-process loop `warmup` times, and every attempt once.
    fn warm_up(&self, warmup: usize) -> anyhow::Result<()> {
        self.rt.block_on(self.raw.run_async(warmup))?;
        self.raw.run_sync(warmup)?;
        for (program, inv) in self.sandbox_loops() {
            self.rt
                .block_on(inproc::sandbox_runs(&self.sandbox1, program, inv, warmup))?;
        }
        self.rt
            .block_on(inproc::attempts(&self.plan1, &self.sandbox1))?;
        Ok(())
    }

    /// The `Sandbox::run` loops, in the order of their rows: no mounts; a step's mounts for a
    /// guest that reaches no files (so not mounted); then the mounted variants, for a guest
    /// that reaches files.
    fn sandbox_loops(&self) -> [(&Program, &Invocation); 5] {
        [
            (&self.program, &self.inv_bare),
            (&self.program, &self.inv_mounts),
            (&self.program_files, &self.inv_mounts),
            (&self.program_files, &self.inv_mounts_ro),
            (&self.program_files, &self.inv_files),
        ]
    }

    /// One round of section 1's in-process figures.
    fn round(&self, args: &Args, work: &Path, f: &mut Figures) -> anyhow::Result<()> {
        let (rt, n) = (&self.rt, args.steps);
        f.raw_async
            .push_per(rt.block_on(self.raw.run_async(args.iters))?, args.iters);
        f.raw_sync
            .push_per(self.raw.run_sync(args.iters)?, args.iters);
        let figures = [
            &mut f.sb_bare,
            &mut f.sb_blind,
            &mut f.sb_mounts,
            &mut f.sb_mounts_ro,
            &mut f.sb_files,
        ];
        for (fig, (program, inv)) in figures.into_iter().zip(self.sandbox_loops()) {
            let t = rt.block_on(inproc::sandbox_runs(
                &self.sandbox1,
                program,
                inv,
                args.iters,
            ))?;
            fig.push_per(t, args.iters);
        }
        let dirs = (args.iters / 4).max(1);
        f.attempt_dirs.push_per(
            inproc::attempt_dirs(&work.join("attempt-dirs"), dirs)?,
            dirs,
        );
        f.scratch_cycle.push_per(
            inproc::scratch_cycles(&work.join("scratch"), args.iters)?,
            args.iters,
        );
        f.blocking_hop
            .push_per(rt.block_on(inproc::blocking_hops(args.iters))?, args.iters);
        f.attempt.push_per(
            rt.block_on(inproc::attempts(&self.plan1, &self.sandbox1))?,
            n,
        );
        f.executor_j1
            .push_per(inproc::executor(&self.plan1, &self.sandbox1, 1)?, n);
        f.executor_j2
            .push_per(inproc::executor(&self.plan2, &self.sandbox2, 2)?, n);
        Ok(())
    }
}

fn bench(args: &Args) -> anyhow::Result<()> {
    ensure!(
        args.steps >= 1 && args.iters >= 1 && args.rounds >= 1,
        "--steps, --iters and --rounds must be at least 1"
    );
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: built without --release; the in-process figures mean little");
    }
    let (steps, procs_, compile, results, pool_, remote_) = (
        args.wants(Section::Steps),
        args.wants(Section::Procs),
        args.wants(Section::Compile),
        args.wants(Section::Cache),
        args.wants(Section::Pool),
        args.wants(Section::Remote),
    );
    let idle_ = args.wants(Section::Idle);
    // Section 2's baseline is section 1's `hermetic run -j1`.
    let runs = steps || procs_;
    let layout = Layout::discover()?;
    let guests = layout.build_guests()?;
    let noop = &guests.noop;
    let hermetic = match &args.hermetic {
        Some(p) => p.clone(),
        None if runs || results || pool_ || remote_ || idle_ => layout.build_hermetic()?,
        None => PathBuf::new(),
    };
    let wasmtime_cli = on_path("wasmtime");

    let work_parent = layout.target.join("bench-work");
    std::fs::create_dir_all(&work_parent)
        .with_context(|| format!("cannot create `{}`", work_parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&work_parent)
        .context("cannot create the work directory")?;
    let work = work.path();
    let cache = work.join("cache");

    // Workflows: 1 step and N+1 steps for the binary (the in-process one is `InProcess`'s).
    let wf_one = procs::write_workflow(&work.join("one"), 1, noop)?;
    let wf_many = procs::write_workflow(&work.join("many"), args.steps + 1, noop)?;
    let wf_one_files = procs::write_workflow(&work.join("one-files"), 1, &guests.noop_files)?;
    let wf_many_files =
        procs::write_workflow(&work.join("many-files"), args.steps + 1, &guests.noop_files)?;

    // Set-up (untimed).
    let in_process = if steps {
        Some(InProcess::new(args, work, &cache, &guests)?)
    } else {
        None
    };

    let mut f = Figures::default();
    let warmup = (args.iters / 10).max(1);
    eprintln!("bench: warming up");
    if let Some(ip) = &in_process {
        ip.warm_up(warmup)?;
    }
    if runs {
        for wf in [&wf_one, &wf_many, &wf_one_files, &wf_many_files] {
            procs::hermetic_run(&hermetic, &cache, wf, 1)?;
        }
    }
    let exec_cmd = || {
        let mut c = Command::new(&hermetic);
        c.arg("--cache-dir").arg(&cache).arg("exec").arg(noop);
        c
    };
    if procs_ {
        procs::spawn_loop(1, exec_cmd)?;
        if let Some(w) = &wasmtime_cli {
            procs::spawn_loop(1, || wasmtime_run(w, noop))?;
        }
    }
    let mut result_bench = if results {
        Some(result_cache::Bench::new(
            &hermetic,
            &guests.copy,
            &work.join("result-cache"),
            args,
        )?)
    } else {
        None
    };

    let pool_bench = if pool_ {
        eprintln!("bench: pool: setting up (and running everything once)");
        Some(pool::Bench::new(
            &hermetic,
            &guests,
            &work.join("pool"),
            &cache,
            args,
        )?)
    } else {
        None
    };

    let idle_bench = if idle_ {
        eprintln!("bench: idle: setting up (and running everything once)");
        Some(idle::Bench::new(
            &hermetic,
            noop,
            &work.join("idle"),
            &cache,
            args.pool_steps,
            Duration::from_secs(args.idle_secs),
        )?)
    } else {
        None
    };

    let mut remote_bench = if remote_ {
        Some(remote::Bench::new(&hermetic, noop, &work.join("remote"))?)
    } else {
        None
    };

    let n = args.steps;
    for round in 1..=args.rounds {
        eprintln!("bench: round {round}/{}", args.rounds);
        if let Some(ip) = &in_process {
            ip.round(args, work, &mut f)?;
        }

        if runs {
            let rows = [
                (&mut f.run_j1, &wf_one, &wf_many, 1),
                (&mut f.run_j2, &wf_one, &wf_many, 2),
                (&mut f.run_files_j1, &wf_one_files, &wf_many_files, 1),
            ];
            // The best of a few runs: a process's start-up varies by milliseconds, as much as
            // hundreds of steps cost.
            let best_of = |wf: &Path, jobs: usize| -> anyhow::Result<Duration> {
                let mut best = Duration::MAX;
                for _ in 0..3 {
                    best = best.min(procs::hermetic_run(&hermetic, &cache, wf, jobs)?);
                }
                Ok(best)
            };
            for (fig, wf_one_step, wf_n_steps, jobs) in rows {
                let one = best_of(wf_one_step, jobs)?;
                let many = best_of(wf_n_steps, jobs)?;
                if jobs == 1 && wf_one_step == &wf_one {
                    f.run_one_j1.push(one.as_secs_f64());
                }
                fig.push((many.as_secs_f64() - one.as_secs_f64()) / n as f64);
            }
        }

        if procs_ {
            f.proc_true.push_per(
                procs::spawn_loop(args.procs, || Command::new("true"))?,
                args.procs,
            );
            f.proc_exec.push_per(
                procs::spawn_loop(args.exec_procs, exec_cmd)?,
                args.exec_procs,
            );
            if let Some(w) = &wasmtime_cli {
                f.proc_wasmtime.push_per(
                    procs::spawn_loop(args.exec_procs, || wasmtime_run(w, noop))?,
                    args.exec_procs,
                );
            }
            const EXECS: u32 = 5;
            let mut sum = inproc::ExecSteps::default();
            for _ in 0..EXECS {
                let e = inproc::exec_steps(&cache, noop)?;
                sum.new += e.new;
                sum.load += e.load;
                sum.run += e.run;
                sum.drop += e.drop;
            }
            f.exec_new.push(sum.new.as_secs_f64() / f64::from(EXECS));
            f.exec_load.push(sum.load.as_secs_f64() / f64::from(EXECS));
            f.exec_run.push(sum.run.as_secs_f64() / f64::from(EXECS));
            f.exec_drop.push(sum.drop.as_secs_f64() / f64::from(EXECS));
        }

        if compile {
            let fresh = work.join(format!("cold-{round}"));
            let cold = inproc::load(&fresh, &guests.concat)?;
            let cached = inproc::load(&fresh, &guests.concat)?;
            ensure!(
                !cold.cache_hit && cached.cache_hit,
                "the cold load hit the cache or the second load missed it"
            );
            f.cold_total.push((cold.new + cold.load).as_secs_f64());
            f.cold_load.push(cold.load.as_secs_f64());
            f.cached_total
                .push((cached.new + cached.load).as_secs_f64());
            f.cached_load.push(cached.load.as_secs_f64());
        }

        if let Some(rb) = &mut result_bench {
            rb.round(round, &mut f.result_cache)?;
        }

        if let Some(pb) = &pool_bench {
            pb.round(round, &mut f.pool)?;
        }

        if let Some(rb) = &mut remote_bench {
            rb.round(&mut f.remote)?;
        }

        // Last, so that its "after idle" runs follow the sleep and nothing else.
        if let Some(ib) = &idle_bench {
            ib.round(round, &mut f.idle)?;
        }
    }

    let sizes = Sizes {
        noop: std::fs::metadata(noop)?.len(),
        concat: std::fs::metadata(&guests.concat)?.len(),
        copy: std::fs::metadata(&guests.copy)?.len(),
        artifact: inproc::tree_size(&work.join("cold-1")),
    };
    print_table(
        args,
        &f,
        wasmtime_cli.is_some(),
        &sizes,
        &Benches {
            result: result_bench.as_ref(),
            pool: pool_bench.as_ref(),
            remote: remote_bench.as_ref(),
            idle: idle_bench.as_ref(),
        },
    );
    Ok(())
}

/// Sizes shown in the headings.
#[derive(Debug)]
struct Sizes {
    /// `noop.wasm`.
    noop: u64,
    /// `concat.wasm`.
    concat: u64,
    /// `copy.wasm`.
    copy: u64,
    /// `concat.wasm`'s compiled artifact.
    artifact: u64,
}

fn wasmtime_run(wasmtime: &Path, module: &Path) -> Command {
    let mut c = Command::new(wasmtime);
    c.arg("run").arg(module);
    c
}

/// The sections with set-up of their own, when `--only` selected them.
#[derive(Debug)]
struct Benches<'a> {
    result: Option<&'a result_cache::Bench>,
    pool: Option<&'a pool::Bench>,
    remote: Option<&'a remote::Bench>,
    idle: Option<&'a idle::Bench>,
}

/// Prints the sections `--only` selected.
fn print_table(
    args: &Args,
    f: &Figures,
    have_wasmtime: bool,
    sizes: &Sizes,
    benches: &Benches<'_>,
) {
    let mut t = Table::default();
    if args.wants(Section::Steps) {
        per_step_section(&mut t, args, f, sizes);
    }
    if args.wants(Section::Procs) {
        procs_section(&mut t, f, have_wasmtime);
    }
    if args.wants(Section::Compile) {
        compile_section(&mut t, f, sizes);
    }
    if let Some(rb) = benches.result {
        rb.print(&mut t, &f.result_cache, sizes.copy);
    }
    if let Some(pb) = benches.pool {
        pb.print(&mut t, &f.pool);
    }
    if let Some(rb) = benches.remote {
        rb.print(&mut t, &f.remote);
    }
    if let Some(ib) = benches.idle {
        ib.print(&mut t, &f.idle);
    }

    t.print(args.rounds);
    if args.wants(Section::Steps) || args.wants(Section::Procs) {
        println!(
            "\n(per round: {} in-process iterations, {} × `true`, {} × `hermetic exec`; \
             value = median over rounds)",
            args.iters, args.procs, args.exec_procs
        );
    } else {
        println!("\n(value = median over rounds)");
    }
}

/// Section 1: the per-step cost of a no-op step against raw wasmtime.
fn per_step_section(t: &mut Table, args: &Args, f: &Figures, sizes: &Sizes) {
    let n = args.steps;
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    let raw = f.raw_async.median();
    let vs_raw = Some(raw);
    t.heading(format!(
        "1. Per-step cost of a no-op step (noop.wasm, {}); ratio = ÷ raw wasmtime",
        bytes(sizes.noop)
    ));
    t.time(
        "raw wasmtime: Store + instantiate_async + _start",
        &f.raw_async,
        vs_raw,
    );
    t.time("raw wasmtime, sync (no async fiber)", &f.raw_sync, vs_raw);
    t.time(
        "Sandbox::run, no mounts, output to memory",
        &f.sb_bare,
        vs_raw,
    );
    t.time(
        "Sandbox::run, a step's 4 mounts (not mounted: reaches no files)",
        &f.sb_blind,
        vs_raw,
    );
    t.time(
        "noop-files: Sandbox::run, 4 mounts (2 writable), to memory",
        &f.sb_mounts,
        vs_raw,
    );
    t.time(
        "noop-files: Sandbox::run, 4 mounts all read-only",
        &f.sb_mounts_ro,
        vs_raw,
    );
    t.time(
        "noop-files: Sandbox::run, 4 mounts (2 writable), to 2 files",
        &f.sb_files,
        vs_raw,
    );
    t.time(
        "run_attempt, in-process (a step's whole attempt)",
        &f.attempt,
        vs_raw,
    );
    t.time(
        format!("Executor, {n} steps, -j1, in-process"),
        &f.executor_j1,
        vs_raw,
    );
    t.time(
        format!("Executor, {n} steps, -j2, in-process"),
        &f.executor_j2,
        vs_raw,
    );
    t.time(
        format!("hermetic run, {n} no-op steps, -j1"),
        &f.run_j1,
        vs_raw,
    );
    t.time(
        format!("hermetic run, {n} no-op steps, -j2"),
        &f.run_j2,
        vs_raw,
    );
    t.time(
        format!("noop-files: hermetic run, {n} steps, -j1"),
        &f.run_files_j1,
        vs_raw,
    );
    t.time(
        "hermetic run, 1 step: the whole process",
        &f.run_one_j1,
        None,
    );
    t.note(format!(
        "`hermetic run` per step = (wall time of {} steps − of 1 step) / {n}, each the best of 3 \
         runs; -j2 rows are wall time per step with 2 at once ({cpus} CPUs).",
        n + 1
    ));
    t.note(
        "noop.wasm imports nothing that reaches files, so its steps run without mounts; \
         noop-files.wasm is the same no-op linked with the file functions, so it is mounted.",
    );
    let verdict = f.run_j1.median() / raw;
    let verdict_files = f.run_files_j1.median() / raw;
    let met = |v: f64| if v <= 2.0 { "met" } else { "not met" };
    t.note(format!(
        "target ≤ 2.00× raw: `hermetic run -j1` is {verdict:.2}× ({}); with noop-files \
         {verdict_files:.2}× ({}).",
        met(verdict),
        met(verdict_files)
    ));
    t.time(
        "pieces: fresh attempt dir + out/ + tmp/, create+remove",
        &f.attempt_dirs,
        vs_raw,
    );
    t.time(
        "pieces: scratch dirs leased and recycled (what runs use)",
        &f.scratch_cycle,
        vs_raw,
    );
    t.time(
        "pieces: tokio spawn_blocking round trip",
        &f.blocking_hop,
        vs_raw,
    );
}

/// Section 2: one process per step, against `hermetic run`'s per-step cost.
fn procs_section(t: &mut Table, f: &Figures, have_wasmtime: bool) {
    let pipeline = Some(f.run_j1.median());
    t.heading("2. One process per step; ratio = ÷ `hermetic run` per step (-j1)");
    t.time("`true` (fork + exec + wait)", &f.proc_true, pipeline);
    t.time("`hermetic exec noop.wasm`", &f.proc_exec, pipeline);
    if have_wasmtime {
        t.time("`wasmtime run noop.wasm`", &f.proc_wasmtime, pipeline);
    } else {
        t.note("`wasmtime run noop.wasm`: skipped, no `wasmtime` on PATH.");
    }
    t.time("exec in-process: Sandbox::new", &f.exec_new, None);
    t.time("exec in-process: load_file (cached)", &f.exec_load, None);
    t.time("exec in-process: runtime + Sandbox::run", &f.exec_run, None);
    t.time(
        "exec in-process: drop Sandbox (joins epoch thread)",
        &f.exec_drop,
        None,
    );
}

/// Section 3: compiling a module cold against loading it from the compiled-module cache.
fn compile_section(t: &mut Table, f: &Figures, sizes: &Sizes) {
    t.heading(format!(
        "3. Compiled-module cache: concat.wasm, {} (compiled artifact {})",
        bytes(sizes.concat),
        bytes(sizes.artifact)
    ));
    t.time(
        "cold: Sandbox::new + load_file (compiles)",
        &f.cold_total,
        None,
    );
    let faster = f.cold_total.median() / f.cached_total.median();
    t.time_with(
        "cached: Sandbox::new + load_file (deserializes)",
        &f.cached_total,
        format!("{faster:.0}× faster"),
    );
    t.time("cold load_file alone", &f.cold_load, None);
    let faster = f.cold_load.median() / f.cached_load.median();
    t.time_with(
        "cached load_file alone",
        &f.cached_load,
        format!("{faster:.0}× faster"),
    );
}
