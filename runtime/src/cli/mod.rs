//! The `hermetic` command line: one module per subcommand, each with its clap arguments and an
//! `exec` function, in the manner of cargo's `commands/*.rs`.

pub mod cache;
pub mod chaos;
pub mod check;
pub mod exec;
pub mod graph;
pub mod lock;
pub mod new;
pub mod project;
pub mod record;
pub mod remote;
pub mod run;
pub mod runs;
pub mod verify;
pub mod why;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a step or guest failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code after Ctrl-C, SIGINT or SIGTERM.
pub const EXIT_INTERRUPTED: u8 = 130;

/// hermetic: a WebAssembly-sandboxed hermetic task runner.
#[derive(Debug, Parser)]
#[command(name = "hermetic", version, about, long_about = None, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 success, 1 a step failed, 2 usage or configuration error, 130 interrupted."
)]
pub struct Cli {
    /// Where compiled modules and results are cached. Overrides the workflow's
    /// `defaults.cache_dir`. [default: $XDG_CACHE_HOME/hermetic or ~/.cache/hermetic]
    #[arg(long, global = true, env = "HERMETIC_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Log more (-v: debug, -vv: trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow's steps.
    Run(run::RunArgs),
    /// Validate a workflow without running it.
    Check(check::CheckArgs),
    /// Print a workflow's dependency graph (DOT or mermaid).
    Graph(graph::GraphArgs),
    /// Run one WASI program in the sandbox.
    Exec(exec::ExecArgs),
    /// Write hermetic.lock, pinning every module and input of a workflow.
    Lock(lock::LockArgs),
    /// Run a workflow under seeded faults, many times, and check its invariants.
    Chaos(chaos::ChaosArgs),
    /// List the recorded runs of a workflow, newest first.
    Runs(runs::RunsArgs),
    /// Explain why a step ran instead of coming from the cache in its last run.
    Why(why::WhyArgs),
    /// Run steps again, ignoring the cache, and compare their outputs with the cached ones.
    Verify(verify::VerifyArgs),
    /// Scaffold a task crate.
    #[command(subcommand)]
    New(new::NewCommand),
    /// Inspect and maintain the local result cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Serve a REAPI server's steps as one of its bots (for `hermetic run --remote-exec`).
    Worker(worker::WorkerArgs),
}

/// Entry point of the `hermetic` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    // A chaos suite's warnings (a quarantined cache entry, a lost worker) are the faults it
    // injects, which its own lines report: only errors are logged, unless -v.
    let quiet = matches!(cli.command, Command::Chaos(_));
    init_tracing(cli.verbose, quiet);
    let result = match cli.command {
        Command::Run(ref args) => run::exec(&cli, args),
        Command::Check(ref args) => check::exec(&cli, args),
        Command::Graph(ref args) => graph::exec(args),
        Command::Exec(ref args) => exec::exec(&cli, args),
        Command::Lock(ref args) => lock::exec(&cli, args),
        Command::Why(ref args) => why::exec(args),
        Command::Runs(ref args) => runs::exec(args),
        Command::Chaos(ref args) => chaos::exec(&cli, args),
        Command::New(ref command) => new::exec(command),
        Command::Verify(ref args) => verify::exec(&cli, args),
        Command::Cache(ref command) => cache::exec(&cli, command),
        Command::Worker(ref args) => worker::exec(&cli, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints an error and its causes, the way `anyhow`'s alternate form does, as `error: ...`.
pub fn report_error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

fn init_tracing(verbose: u8, quiet: bool) {
    let (level, others) = match verbose {
        0 if quiet => ("error", "error"),
        0 => ("warn", "warn"),
        1 => ("debug", "warn"),
        _ => ("trace", "warn"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERMETIC_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("hermetic_runtime={level},{others}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}

/// The cache root: the flag or env var, else the user's cache directory.
pub fn cache_root(cli: &Cli) -> Option<PathBuf> {
    cache_root_for(cli, None)
}

/// The cache root for a workflow: `--cache-dir` or `HERMETIC_CACHE_DIR`, else the workflow's
/// `defaults.cache_dir` (relative to the workflow file), else the user's cache directory
/// (`$XDG_CACHE_HOME/hermetic` or `~/.cache/hermetic`).
pub fn cache_root_for(cli: &Cli, workflow: Option<&crate::workflow::Workflow>) -> Option<PathBuf> {
    if let Some(dir) = &cli.cache_dir {
        return Some(dir.clone());
    }
    if let Some(wf) = workflow
        && let Some(dir) = &wf.cache_dir
    {
        return Some(wf.dir.join(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("hermetic"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/hermetic"))
}

/// A tokio runtime for running guests, with `threads` workers.
pub fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("hermetic-worker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
