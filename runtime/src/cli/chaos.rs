//! `hermetic chaos [WORKFLOW] --seeds 1..200 [--faults LIST] [--rate R]`: run a workflow under
//! seeded faults and check the invariants on every run (see [`crate::chaos::suite`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::project::Project;
use super::{Cli, EXIT_FAILURE, EXIT_USAGE};
use crate::chaos::plan::{even_rates, parse_seeds};
use crate::chaos::suite::Progress;
use crate::chaos::{DEFAULT_RATE, FaultKind, SuiteConfig, run_suite};
use crate::plan::PlanOptions;

/// Arguments of `hermetic chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// The seeds: `N`, or `A..B` for every seed from A to B inclusive. [default: the
    /// workflow's `chaos.seeds`, else 1..20]
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,

    /// The faults to inject, comma-separated: memory, fuel, clock, clock_jump, worker,
    /// worker_lost, cache_bitflip, cache_truncate, disk_full, io, short_write, slow_io, trap,
    /// process_kill. [default: the workflow's `chaos.faults`, else every kind]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub faults: Option<Vec<String>>,

    /// The chance that a step gets a fault in a run, from 0 to 1, shared evenly by the
    /// faults. [default: the workflow's `chaos.rate`, else 0.3]
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Keeps only these faults of each seed's plan, as `STEP:KIND,…` (or `none`): replays a
    /// shrunk failing seed.
    #[arg(long, value_name = "STEP:KIND,…")]
    pub only: Option<String>,

    /// How many steps may run at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Where to write the JSON report; the HTML report is written beside it, with the
    /// extension `.html` (so FILE must not end in `.html`). [default:
    /// .hermetic/chaos/report.json]
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// The most runs spent shrinking one failing seed to a minimal list of faults (0: do not
    /// shrink).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub shrink_runs: usize,
}

/// Runs `hermetic chaos`.
pub fn exec(cli: &Cli, args: &ChaosArgs) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(EXIT_USAGE))
    };
    if let Some(rate) = args.rate
        && !(0.0..=1.0).contains(&rate)
    {
        return usage(format!("--rate must be from 0 to 1, not {rate}"));
    }
    if let Some(report) = &args.report
        && report.extension().is_some_and(|e| e == "html")
    {
        return usage(format!(
            "--report names the JSON report, and the HTML one is written beside it with the \
             extension `.html`: `{}` would be both",
            report.display()
        ));
    }
    let jobs = super::project::jobs(args.jobs);
    // Chaos runs publish apart from the workflow's own outputs.
    let state = crate::workflow::dir_of(&args.workflow).join(".hermetic");
    let options = PlanOptions {
        out_dir: Some(state.join("chaos").join("out")),
        fault_hooks: true,
        ..PlanOptions::default()
    };
    let project = match Project::load(cli, &args.workflow, &options, jobs)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let section = project.plan.workflow.chaos.clone().unwrap_or_default();
    let seeds = match &args.seeds {
        Some(text) => match parse_seeds(text) {
            Ok(seeds) => seeds,
            Err(e) => return usage(e),
        },
        None => section.seeds.clone().unwrap_or_else(|| (1..=20).collect()),
    };
    let rates = match (&args.faults, args.rate, &section.rates) {
        (Some(names), rate, _) => {
            let mut kinds = Vec::new();
            for name in names {
                match name.trim().parse::<FaultKind>() {
                    Ok(kind) if !kinds.contains(&kind) => kinds.push(kind),
                    Ok(_) => {}
                    Err(e) => return usage(e),
                }
            }
            let rate = rate.or(section.rate).unwrap_or(DEFAULT_RATE);
            even_rates(rate, &kinds)
        }
        (None, Some(rate), Some(rates)) => {
            even_rates(rate, &rates.iter().map(|(k, _)| *k).collect::<Vec<_>>())
        }
        (None, None, Some(rates)) => rates.clone(),
        (None, rate, None) => even_rates(
            rate.or(section.rate).unwrap_or(DEFAULT_RATE),
            &FaultKind::ALL,
        ),
    };
    let only = match args.only.as_deref().map(parse_only).transpose() {
        Ok(only) => only,
        Err(e) => return usage(e),
    };
    // The replay command names everything that decides a seed's faults.
    let kinds: Vec<&str> = rates.iter().map(|(k, _)| k.name()).collect();
    let mut command = format!("hermetic chaos {}", args.workflow.display());
    if args.faults.is_some() || args.rate.is_some() || section.rates.is_none() {
        let rate: f64 = rates.iter().map(|(_, r)| r).sum();
        command.push_str(&format!(
            " --faults {} --rate {}",
            kinds.join(","),
            round(rate)
        ));
    }
    let config = SuiteConfig {
        seeds,
        rates,
        steps: section.steps.clone(),
        only,
        jobs,
        scratch: state.join("chaos").join("stores"),
        command,
        expect: section.expect.clone(),
        shrink_runs: args.shrink_runs,
    };
    let total: f64 = config.rates.iter().map(|(_, r)| r).sum();
    eprintln!(
        "     Chaos {} seeds of `{}`, faults {}, rate {}",
        config.seeds.len(),
        project.plan.workflow.name,
        kinds.join(","),
        round(total)
    );
    quiet_injected_panics();
    let rt = super::runtime(1)?;
    let result = rt.block_on(run_suite(
        project.plan.clone(),
        project.sandbox.clone(),
        &config,
        show_progress,
    ));
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    let path = args
        .report
        .clone()
        .unwrap_or_else(|| state.join("chaos").join("report.json"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    let json = serde_json::to_vec_pretty(&report).context("cannot encode the report")?;
    crate::journal::write_atomic(&path, &json)?;
    let html_path = path.with_extension("html");
    crate::journal::write_atomic(&html_path, crate::chaos::html::render(&report).as_bytes())?;
    let failed = report
        .seeds
        .iter()
        .filter(|s| s.outcome != "succeeded")
        .count();
    eprintln!(
        "      Done {} seeds: {} succeeded, {} failed with the failure attributed to a fault, {} \
         invariant violation{}; report in `{}` and `{}`",
        report.seeds.len(),
        report.seeds.len() - failed,
        failed,
        report.violations,
        if report.violations == 1 { "" } else { "s" },
        path.display(),
        html_path.display()
    );
    Ok(ExitCode::from(if report.violations == 0 {
        0
    } else {
        EXIT_FAILURE
    }))
}

/// Prints a seed's plan before its run, and its outcome after.
fn show_progress(progress: Progress<'_>) {
    match progress {
        Progress::Planned(plan) => {
            let mut lines = plan.to_string();
            lines = lines.replace("\n  ", "\n           · ");
            eprintln!("      Plan {lines}");
        }
        Progress::Shrinking { seed, faults } => {
            eprintln!(" Shrinking seed {seed}: a run with {faults} of its faults");
        }
        Progress::Judged(seed) => {
            let faults = if seed.faults.is_empty() {
                "no faults".to_string()
            } else {
                seed.faults
                    .iter()
                    .map(|f| format!("{} {}", f.step, f.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let verb = if seed.violations.is_empty() {
                "Seed"
            } else {
                "VIOLATION"
            };
            eprintln!("{verb:>10} {}: {} ({faults})", seed.seed, seed.outcome);
            for v in &seed.violations {
                eprintln!("           | {v}");
            }
            if !seed.violations.is_empty() {
                eprintln!("           | replay: {}", seed.replay);
            }
            if let Some(shrunk) = &seed.shrunk {
                let faults: Vec<String> = shrunk
                    .faults
                    .iter()
                    .map(|f| format!("{} {}", f.step, f.kind))
                    .collect();
                eprintln!(
                    "           | shrunk to {} fault{} ({}){}: {}",
                    faults.len(),
                    if faults.len() == 1 { "" } else { "s" },
                    if faults.is_empty() {
                        "none".to_string()
                    } else {
                        faults.join(", ")
                    },
                    if shrunk.minimal { "" } else { ", not minimal" },
                    shrunk.replay
                );
            }
        }
    }
}

/// A rate as written in a command: at most 6 decimals, no trailing zeros.
fn round(rate: f64) -> String {
    let text = format!("{rate:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `--only STEP:KIND,…`, or `none`.
fn parse_only(text: &str) -> Result<Vec<(String, FaultKind)>, String> {
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let (step, kind) = item.trim().rsplit_once(':').ok_or_else(|| {
                format!("--only takes `STEP:KIND,…` (e.g. `build:io`), not `{item}`")
            })?;
            Ok((step.to_string(), kind.parse::<FaultKind>()?))
        })
        .collect()
}

/// Injected worker panics are expected: they do not print a panic message.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("an injected fault"));
        if !injected {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_steps_and_kinds() {
        assert_eq!(
            parse_only("build:io, test:worker"),
            Ok(vec![
                ("build".to_string(), FaultKind::Io),
                ("test".to_string(), FaultKind::Worker)
            ])
        );
        assert_eq!(parse_only("none"), Ok(Vec::new()));
        assert_eq!(
            parse_only("build"),
            Err("--only takes `STEP:KIND,…` (e.g. `build:io`), not `build`".into())
        );
        assert_eq!(round(0.30000000000000004), "0.3");
        assert_eq!(round(1.0), "1");
    }
}
