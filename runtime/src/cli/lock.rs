//! `hermetic lock [WORKFLOW]`: write `hermetic.lock`; and the `--locked` check of `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hermetic_lockfile::{FILE_NAME, Lockfile, diff, render_diff};

use super::project::{self, Project};
use super::{Cli, EXIT_USAGE};
use crate::plan::PlanOptions;

/// Arguments of `hermetic lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,
}

/// Runs `hermetic lock`.
pub fn exec(cli: &Cli, args: &LockArgs) -> anyhow::Result<ExitCode> {
    let project = match Project::load(
        cli,
        &args.workflow,
        &PlanOptions::default(),
        project::jobs(None),
    )? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let path = project.plan.workflow.dir.join(FILE_NAME);
    let current = crate::pins::lockfile(&project.plan, &project.sandbox.engine_digest());
    match current.write_if_changed(&path) {
        Ok(true) => eprintln!(
            "     Locked {} steps in {}",
            current.steps.len(),
            path.display()
        ),
        Ok(false) => eprintln!("   Unchanged {}", path.display()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For `run --locked`: succeeds only if `hermetic.lock` exists, reads, and pins exactly what
/// the plan would run. Otherwise prints why, with the diff and the command that fixes it, and
/// returns exit code 2. Never writes.
pub fn check_locked(project: &Project) -> Result<(), ExitCode> {
    let path = project.plan.workflow.dir.join(FILE_NAME);
    let fail = |msg: String| {
        eprintln!("{msg}");
        Err(ExitCode::from(EXIT_USAGE))
    };
    let pinned = match Lockfile::read(&path) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return fail(format!(
                "error: --locked was given but `{}` does not exist\n  help: run `hermetic lock` to create it, and commit it",
                path.display()
            ));
        }
        Err(e) => return fail(format!("error: {e}")),
    };
    let current = crate::pins::lockfile(&project.plan, &project.sandbox.engine_digest());
    let drift = diff(&pinned, &current);
    if drift.is_empty() {
        return Ok(());
    }
    fail(format!(
        "error: `{}` is out of date and --locked was given; nothing was run\n\n{}\n  help: run `hermetic lock` to accept these changes",
        path.display(),
        render_diff(&drift).trim_end()
    ))
}
