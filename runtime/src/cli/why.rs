//! `hermetic why STEP [WORKFLOW]`: why a step ran instead of being served from the cache.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;
use crate::journal::keys;
use crate::workflow::Workflow;

/// Arguments of `hermetic why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The step.
    pub step: String,

    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,
}

/// Runs `hermetic why`.
pub fn exec(args: &WhyArgs) -> anyhow::Result<ExitCode> {
    let workflow = match Workflow::load(&args.workflow) {
        Ok(wf) => wf,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if !workflow.steps.iter().any(|s| s.name == args.step) {
        let names: Vec<&str> = workflow.steps.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::workflow::suggest::did_you_mean(&args.step, names.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        eprintln!(
            "error: `{}` has no step `{}`{hint}",
            workflow.path.display(),
            args.step
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let state_dir = workflow.dir.join(".hermetic");
    let records = keys::load(&state_dir);
    match records.history(&args.step) {
        Some(history) => {
            for line in keys::explain(&args.step, &history, records.last_hit(&args.step)) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("`{}` has not run yet in this project", args.step);
            Ok(ExitCode::SUCCESS)
        }
    }
}
