//! `hermetic check [WORKFLOW]`: validate a workflow, build its tasks and load its modules,
//! without running anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Cli, EXIT_USAGE};
use crate::plan::{Plan, PlanOptions};
use crate::sandbox::{Sandbox, UnknownImports};
use crate::workflow::Workflow;

/// Arguments of `hermetic check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// Accept modules with imports the sandbox does not provide (they trap when called).
    #[arg(long)]
    pub unknown_imports_trap: bool,
}

/// Runs `hermetic check`.
pub fn exec(cli: &Cli, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let workflow = match Workflow::load(&args.workflow) {
        Ok(wf) => wf,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if !workflow.warnings.is_empty() {
        eprintln!("{}", workflow.warnings);
    }
    let name = workflow.name.clone();
    let _lock = super::run::ProjectLock::acquire(&workflow.dir.join(".hermetic"))?;
    let cache = super::cache_root(cli);
    let sandbox = Sandbox::new(1, cache.as_deref())?;
    let options = PlanOptions {
        unknown_imports: if args.unknown_imports_trap {
            UnknownImports::Trap
        } else {
            UnknownImports::Reject
        },
        ..PlanOptions::default()
    };
    match Plan::new(workflow, &sandbox, &options) {
        Ok(plan) => {
            let n = plan.steps.len();
            eprintln!(
                "ok: workflow `{name}` ({n} step{})",
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprintln!("{diags}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}
