//! `cargo run --release -p hermetic-bench [-- OPTIONS]`: hermetic's overheads, as ratios measured
//! in one run (the machine may be noisy; every figure is the median over `--rounds` rounds, and
//! the rounds interleave all the figures).
//!
//! 1. The per-step cost of the whole pipeline on no-op steps against a raw wasmtime
//!    instantiate-and-call loop with the same engine, with a breakdown in between.
//! 2. The same against one process per step (`true`, `hermetic exec`, `wasmtime run`).
//! 3. Compiling a module cold against loading it from the compiled-module cache.

mod artifacts;
mod inproc;
mod procs;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context, ensure};
use clap::Parser;
use hermetic_runtime::sandbox::{CaptureTo, Sandbox, UnknownImports};

use artifacts::{Layout, on_path};
use report::{Figure, Table, bytes};

/// Measures hermetic's per-step overhead, process-per-step costs, and compile caching.
#[derive(Debug, Parser)]
#[command(name = "hermetic-bench", max_term_width = 100)]
struct Args {
    /// No-op steps in the generated workflow. The pipeline's per-step cost is
    /// (time of N+1 steps − time of 1 step) / N.
    #[arg(long, value_name = "N", default_value_t = 500)]
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
    sb_mounts: Figure,
    sb_mounts_ro: Figure,
    sb_files: Figure,
    attempt: Figure,
    executor_j1: Figure,
    executor_j2: Figure,
    executor_worker_j1: Figure,
    run_one_j1: Figure,
    run_j1: Figure,
    run_j2: Figure,
    proc_true: Figure,
    proc_exec: Figure,
    proc_wasmtime: Figure,
    attempt_dirs: Figure,
    blocking_hop: Figure,
    exec_new: Figure,
    exec_load: Figure,
    exec_run: Figure,
    exec_drop: Figure,
    cold_total: Figure,
    cold_load: Figure,
    cached_total: Figure,
    cached_load: Figure,
}

fn bench(args: &Args) -> anyhow::Result<()> {
    ensure!(
        args.steps >= 1 && args.iters >= 1 && args.rounds >= 1,
        "--steps, --iters and --rounds must be at least 1"
    );
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: built without --release; the in-process figures mean little");
    }
    let layout = Layout::discover()?;
    let (noop, concat) = layout.build_guests()?;
    let hermetic = match &args.hermetic {
        Some(p) => p.clone(),
        None => layout.build_hermetic()?,
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

    // Workflows: 1 step and N+1 steps for the binary, N steps for the in-process executor.
    let wf_one = procs::write_workflow(&work.join("one"), 1, &noop)?;
    let wf_many = procs::write_workflow(&work.join("many"), args.steps + 1, &noop)?;
    let wf_inproc = procs::write_workflow(&work.join("inproc"), args.steps, &noop)?;

    // In-process set-up (untimed).
    let raw = inproc::Raw::new(&noop)?;
    let sandbox1 = Arc::new(Sandbox::new(1, Some(&cache))?);
    let sandbox2 = Arc::new(Sandbox::new(2, Some(&cache))?);
    let program = sandbox1.load_file(&noop, UnknownImports::Reject)?;
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

    let mut f = Figures::default();
    let warmup = (args.iters / 10).max(1);
    eprintln!("bench: warming up");
    rt.block_on(raw.run_async(warmup))?;
    raw.run_sync(warmup)?;
    for inv in [&inv_bare, &inv_mounts, &inv_mounts_ro, &inv_files] {
        rt.block_on(inproc::sandbox_runs(&sandbox1, &program, inv, warmup))?;
    }
    rt.block_on(inproc::attempts(&plan1, &sandbox1))?;
    for wf in [&wf_one, &wf_many] {
        procs::hermetic_run(&hermetic, &cache, wf, 1)?;
    }
    let exec_cmd = || {
        let mut c = Command::new(&hermetic);
        c.arg("--cache-dir").arg(&cache).arg("exec").arg(&noop);
        c
    };
    procs::spawn_loop(1, exec_cmd)?;
    if let Some(w) = &wasmtime_cli {
        procs::spawn_loop(1, || wasmtime_run(w, &noop))?;
    }

    let n = args.steps;
    for round in 1..=args.rounds {
        eprintln!("bench: round {round}/{}", args.rounds);
        f.raw_async
            .push_per(rt.block_on(raw.run_async(args.iters))?, args.iters);
        f.raw_sync.push_per(raw.run_sync(args.iters)?, args.iters);
        for (fig, inv) in [
            (&mut f.sb_bare, &inv_bare),
            (&mut f.sb_mounts, &inv_mounts),
            (&mut f.sb_mounts_ro, &inv_mounts_ro),
            (&mut f.sb_files, &inv_files),
        ] {
            let t = rt.block_on(inproc::sandbox_runs(&sandbox1, &program, inv, args.iters))?;
            fig.push_per(t, args.iters);
        }
        let dirs = (args.iters / 4).max(1);
        f.attempt_dirs.push_per(
            inproc::attempt_dirs(&work.join("attempt-dirs"), dirs)?,
            dirs,
        );
        f.blocking_hop
            .push_per(rt.block_on(inproc::blocking_hops(args.iters))?, args.iters);
        f.attempt
            .push_per(rt.block_on(inproc::attempts(&plan1, &sandbox1))?, n);
        f.executor_j1
            .push_per(inproc::executor(&plan1, &sandbox1, 1)?, n);
        f.executor_worker_j1
            .push_per(inproc::executor_on_worker(&plan1, &sandbox1, 1)?, n);
        f.executor_j2
            .push_per(inproc::executor(&plan2, &sandbox2, 2)?, n);

        for (fig, jobs) in [(&mut f.run_j1, 1), (&mut f.run_j2, 2)] {
            let one = procs::hermetic_run(&hermetic, &cache, &wf_one, jobs)?;
            let many = procs::hermetic_run(&hermetic, &cache, &wf_many, jobs)?;
            if jobs == 1 {
                f.run_one_j1.push(one.as_secs_f64());
            }
            fig.push((many.as_secs_f64() - one.as_secs_f64()) / n as f64);
        }

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
                procs::spawn_loop(args.exec_procs, || wasmtime_run(w, &noop))?,
                args.exec_procs,
            );
        }
        const EXECS: u32 = 5;
        let mut sum = inproc::ExecSteps::default();
        for _ in 0..EXECS {
            let e = inproc::exec_steps(&cache, &noop)?;
            sum.new += e.new;
            sum.load += e.load;
            sum.run += e.run;
            sum.drop += e.drop;
        }
        f.exec_new.push(sum.new.as_secs_f64() / f64::from(EXECS));
        f.exec_load.push(sum.load.as_secs_f64() / f64::from(EXECS));
        f.exec_run.push(sum.run.as_secs_f64() / f64::from(EXECS));
        f.exec_drop.push(sum.drop.as_secs_f64() / f64::from(EXECS));

        let fresh = work.join(format!("cold-{round}"));
        let cold = inproc::load(&fresh, &concat)?;
        let cached = inproc::load(&fresh, &concat)?;
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

    let artifact = inproc::tree_size(&work.join("cold-1"));
    let concat_size = std::fs::metadata(&concat)?.len();
    let noop_size = std::fs::metadata(&noop)?.len();
    print_table(
        args,
        &f,
        wasmtime_cli.is_some(),
        noop_size,
        concat_size,
        artifact,
    );
    Ok(())
}

fn wasmtime_run(wasmtime: &Path, module: &Path) -> Command {
    let mut c = Command::new(wasmtime);
    c.arg("run").arg(module);
    c
}

fn print_table(
    args: &Args,
    f: &Figures,
    have_wasmtime: bool,
    noop_size: u64,
    concat_size: u64,
    artifact: u64,
) {
    let n = args.steps;
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    let mut t = Table::default();

    let raw = f.raw_async.median();
    let vs_raw = Some(raw);
    t.heading(format!(
        "1. Per-step cost of a no-op step (noop.wasm, {}); ratio = ÷ raw wasmtime",
        bytes(noop_size)
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
        "Sandbox::run, 4 mounts (2 writable), to memory",
        &f.sb_mounts,
        vs_raw,
    );
    t.time(
        "Sandbox::run, 4 mounts all read-only, to memory",
        &f.sb_mounts_ro,
        vs_raw,
    );
    t.time(
        "Sandbox::run, 4 mounts (2 writable), to 2 files",
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
        format!("Executor, {n} steps, -j1, in-process, on the worker"),
        &f.executor_worker_j1,
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
        "hermetic run, 1 step: the whole process",
        &f.run_one_j1,
        None,
    );
    t.note(format!(
        "`hermetic run` per step = (wall time of {} steps − of 1 step) / {n}; -j2 rows are wall \
         time per step with 2 at once ({cpus} CPUs).",
        n + 1
    ));
    let verdict = f.run_j1.median() / raw;
    t.note(format!(
        "target ≤ 2.00× raw: `hermetic run -j1` is {verdict:.2}× ({}).",
        if verdict <= 2.0 { "met" } else { "not met" }
    ));
    t.time(
        "pieces: attempt dir + out/ + tmp/, create+remove",
        &f.attempt_dirs,
        vs_raw,
    );
    t.time(
        "pieces: tokio spawn_blocking round trip",
        &f.blocking_hop,
        vs_raw,
    );

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

    t.heading(format!(
        "3. Compiled-module cache: concat.wasm, {} (compiled artifact {})",
        bytes(concat_size),
        bytes(artifact)
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

    t.print(args.rounds);
    println!(
        "\n(per round: {} in-process iterations, {} × `true`, {} × `hermetic exec`; \
         value = median over rounds)",
        args.iters, args.procs, args.exec_procs
    );
}
