//! `hermetic verify [WORKFLOW] [--step NAME…]`: reproducibility check. Runs the steps again,
//! ignoring the cache, and compares each step's outputs bit for bit with the cached result of
//! the same action key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hermetic_cache::{Store, diff_trees};

use super::project::{self, Lock, Project};
use super::{Cli, EXIT_FAILURE, EXIT_USAGE};
use crate::events::RunStatus;
use crate::plan::PlanOptions;
use crate::pool::CacheUse;

/// Arguments of `hermetic verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// Verify only this step and what it depends on (repeatable).
    #[arg(long = "step", value_name = "NAME")]
    pub steps: Vec<String>,

    /// How many steps may run at once. [default: the number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// Runs `hermetic verify`.
pub fn exec(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    // The re-run publishes under `.hermetic/verify/`, never over the real outputs.
    let wf_dir = crate::workflow::dir_of(&args.workflow);
    let options = PlanOptions {
        only: args.steps.clone(),
        out_dir: Some(wf_dir.join(".hermetic").join("verify")),
        ..PlanOptions::default()
    };
    let jobs = project::jobs(args.jobs);
    let project = match Project::load_with(cli, &args.workflow, &options, jobs, Lock::Take, true)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some(store) = project.open_store() else {
        eprintln!("error: verify needs the local cache, and it cannot be opened");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let cache = CacheUse {
        store: store.clone() as std::sync::Arc<dyn Store>,
        read: false,
        write: false,
    };
    // Every step is compared, so one that differs does not stop the others.
    let how = project::Execution {
        keep_going: true,
        ..Default::default()
    };
    let summary = project.execute(Some(cache), None, &how)?;
    if summary.status == RunStatus::Interrupted {
        return Ok(super::run::exit_code(summary.status));
    }

    let (mut same, mut differ, mut unknown) = (0, 0, 0);
    for (step, key) in project.plan.steps.iter().zip(&summary.keys) {
        let Some(key) = key.as_ref().filter(|k| k.succeeded) else {
            continue;
        };
        let cached = match store.load_action(&key.key) {
            Ok(Some(entry)) => entry,
            _ => {
                unknown += 1;
                eprintln!(
                    "   Unknown {}: no cached result to compare with (key {})",
                    step.name,
                    key.key.short()
                );
                continue;
            }
        };
        let changes = diff_trees(&cached.output_files, &key.output_files);
        if changes.is_empty() {
            same += 1;
            eprintln!("        Ok {}", step.name);
        } else {
            differ += 1;
            eprintln!("  Mismatch {}: not reproducible", step.name);
            for c in changes {
                eprintln!(
                    "            {} `{}`",
                    match c {
                        hermetic_cache::TreeChange::Added(_) => "only in the re-run:",
                        hermetic_cache::TreeChange::Removed(_) => "only in the cache:",
                        hermetic_cache::TreeChange::Modified(_) => "differs:",
                    },
                    c.path()
                );
            }
        }
    }
    eprintln!(
        "{:>10} {same} reproducible, {differ} not reproducible, {unknown} not cached",
        if differ == 0 { "Verified" } else { "Failed" }
    );
    Ok(if differ > 0 || summary.status == RunStatus::Failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
