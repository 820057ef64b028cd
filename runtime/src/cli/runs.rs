//! `hermetic runs [WORKFLOW] [--json]`: the runs recorded in the run journal, newest first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::journal::runs::{self, PastRun};

/// Arguments of `hermetic runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The workflow file, whose `.hermetic/runs/` is listed.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// Print one JSON object per run instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hermetic runs`.
pub fn exec(args: &RunsArgs) -> anyhow::Result<ExitCode> {
    let state_dir = crate::workflow::dir_of(&args.workflow).join(".hermetic");
    let past = runs::list(&state_dir)
        .with_context(|| format!("cannot list the runs in `{}`", state_dir.display()))?;
    if args.json {
        for run in &past {
            println!("{}", json(run));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if past.is_empty() {
        eprintln!(
            "No runs recorded in `{}` yet: `hermetic run` records each run there.",
            runs::runs_dir(&state_dir).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<21}  {:<20}  {:<11}  {:>8}  STEPS",
        "RUN", "STARTED", "STATUS", "TIME"
    );
    for (i, run) in past.iter().enumerate() {
        let line = match &run.summary {
            Some(s) => {
                let c = s.counts;
                let cached = if c.cached > 0 {
                    format!(" ({} cached)", c.cached)
                } else {
                    String::new()
                };
                let resumed = s
                    .resumed_from
                    .as_ref()
                    .map(|r| format!(", resumed {r}"))
                    .unwrap_or_default();
                format!(
                    "{:<20}  {:<11}  {:>8}  {} succeeded{cached}, {} failed, {} skipped{resumed}",
                    s.started_at,
                    s.status,
                    format_ms(s.duration_ms),
                    c.succeeded,
                    c.failed,
                    c.skipped
                )
            }
            None => {
                let hint = if i == 0 {
                    " (`hermetic run --resume` continues it)"
                } else {
                    ""
                };
                format!(
                    "{:<20}  {:<11}  {:>8}  {} finished{hint}",
                    "-", "unfinished", "-", run.finished_steps
                )
            }
        };
        println!("{:<21}  {line}", run.id);
    }
    Ok(ExitCode::SUCCESS)
}

fn json(run: &PastRun) -> serde_json::Value {
    match &run.summary {
        Some(s) => serde_json::json!({
            "run_id": run.id,
            "workflow": s.workflow,
            "status": s.status,
            "started_at": s.started_at,
            "duration_ms": s.duration_ms,
            "counts": s.counts,
            "resumed_from": s.resumed_from,
        }),
        None => serde_json::json!({
            "run_id": run.id,
            "status": "unfinished",
            "finished_steps": run.finished_steps,
        }),
    }
}

fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}
