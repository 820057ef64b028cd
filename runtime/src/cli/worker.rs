//! `hermetic worker --server URL`: serve a REAPI server's steps as one of its bots (see
//! [`crate::remote::worker`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::{Cli, EXIT_USAGE};
use crate::remote::worker::Bot;
use crate::sandbox::Sandbox;

/// Arguments of `hermetic worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The REAPI server whose steps to run, e.g. `grpc://127.0.0.1:50051`.
    #[arg(long, value_name = "URL")]
    pub server: String,

    /// The server's instance name.
    #[arg(long, default_value = "", value_name = "NAME")]
    pub instance: String,

    /// This bot's id, unique among the server's bots (by default `hermetic-<host>-<pid>`).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// How many steps this worker runs at once. [default: the number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Where actions are unpacked while they run. [default: a temporary directory]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// Runs `hermetic worker` until interrupted.
pub fn exec(cli: &Cli, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::project::jobs(args.jobs);
    // A guest runs on a runtime thread while it computes: one thread per lease, and one for
    // the session.
    let rt = super::runtime(jobs + 1)?;
    let store = match rt.block_on(super::remote::connect(cli, &args.server, &args.instance)) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let sandbox = Arc::new(Sandbox::new(
        jobs as u32,
        super::cache_root(cli).as_deref(),
    )?);
    let id = args.id.clone().unwrap_or_else(|| {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        format!("hermetic-{host}-{}", std::process::id())
    });
    let scratch;
    let work_dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir().context("cannot create a work directory")?;
            scratch.path().to_path_buf()
        }
    };
    eprintln!(
        "    Worker {id} serving {}, {jobs} step{} at a time",
        store.url(),
        if jobs == 1 { "" } else { "s" }
    );
    let bot = Arc::new(Bot::new(store, sandbox, id, work_dir, jobs));
    let stop = {
        let _guard = rt.enter();
        super::run::interrupted()?
    };
    rt.block_on(bot.serve(stop, |what| eprintln!("    Worker {what}")))
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
