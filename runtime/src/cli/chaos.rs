//! `hermetic chaos [WORKFLOW] --seeds 1..200 [--faults LIST] [--rate R]`: run a workflow under
//! seeded faults and check the invariants on every run (see [`crate::chaos::suite`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::project::Project;
use super::{Cli, EXIT_FAILURE, EXIT_USAGE};
use crate::chaos::{FaultKind, SuiteConfig, run_suite};
use crate::plan::PlanOptions;

/// Arguments of `hermetic chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// The seeds: `N`, or `A..B` for every seed from A to B inclusive.
    #[arg(long, default_value = "1..20", value_name = "A..B")]
    pub seeds: String,

    /// The faults to inject, comma-separated: memory, fuel, clock, worker, cache_bitflip,
    /// cache_truncate, disk_full, io, short_write, slow_io, trap.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,fuel,clock,worker,cache_bitflip,cache_truncate,disk_full,io,short_write,slow_io,trap"
    )]
    pub faults: Vec<String>,

    /// The chance that a step gets a fault in a run, from 0 to 1.
    #[arg(long, default_value_t = 0.3, value_name = "R")]
    pub rate: f64,

    /// How many steps may run at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Where to write the JSON report. [default: .hermetic/chaos/report.json]
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs `hermetic chaos`.
pub fn exec(cli: &Cli, args: &ChaosArgs) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(EXIT_USAGE))
    };
    let seeds = match parse_seeds(&args.seeds) {
        Ok(seeds) => seeds,
        Err(e) => return usage(e),
    };
    let mut kinds = Vec::new();
    for name in &args.faults {
        match name.trim().parse::<FaultKind>() {
            Ok(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Ok(_) => {}
            Err(e) => return usage(e),
        }
    }
    if !(0.0..=1.0).contains(&args.rate) {
        return usage(format!("--rate must be from 0 to 1, not {}", args.rate));
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
    let config = SuiteConfig {
        seeds,
        kinds,
        rate: args.rate,
        jobs,
        scratch: state.join("chaos").join("stores"),
    };
    let names: Vec<&str> = config.kinds.iter().map(|k| k.name()).collect();
    let replay = |seed: u64| {
        format!(
            "hermetic chaos {} --seeds {seed} --faults {} --rate {}",
            args.workflow.display(),
            names.join(","),
            args.rate
        )
    };
    eprintln!(
        "     Chaos {} seeds of `{}`, faults {}, rate {}",
        config.seeds.len(),
        project.plan.workflow.name,
        names.join(","),
        args.rate
    );
    quiet_injected_panics();
    let rt = super::runtime(1)?;
    let result = rt.block_on(run_suite(
        project.plan.clone(),
        project.sandbox.clone(),
        &config,
        |seed| {
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
                eprintln!(
                    "           | {v}\n           | replay: {}",
                    replay(seed.seed)
                );
            }
        },
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
    let failed = report
        .seeds
        .iter()
        .filter(|s| s.outcome != "succeeded")
        .count();
    eprintln!(
        "      Done {} seeds: {} succeeded, {} failed with the failure attributed to a fault, {} \
         invariant violation{}; report in `{}`",
        report.seeds.len(),
        report.seeds.len() - failed,
        failed,
        report.violations,
        if report.violations == 1 { "" } else { "s" },
        path.display()
    );
    Ok(ExitCode::from(if report.violations == 0 {
        0
    } else {
        EXIT_FAILURE
    }))
}

/// `N` or `A..B` (inclusive).
fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds takes `N` or `A..B`, not `{text}`"))
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b.trim_start_matches('='))?);
            if a > b {
                return Err(format!("--seeds `{text}` is empty: {a} is after {b}"));
            }
            if b - a >= 100_000 {
                return Err(format!("--seeds `{text}` has more than 100,000 seeds"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![number(text)?]),
    }
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
    fn seeds_are_a_number_or_an_inclusive_range() {
        assert_eq!(parse_seeds("7"), Ok(vec![7]));
        assert_eq!(parse_seeds("1..3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("1..=3"), Ok(vec![1, 2, 3]));
        assert_eq!(
            parse_seeds("5..1"),
            Err("--seeds `5..1` is empty: 5 is after 1".into())
        );
        assert_eq!(
            parse_seeds("x"),
            Err("--seeds takes `N` or `A..B`, not `x`".into())
        );
    }
}
