//! `hermetic cache stats | gc | verify`: the local result store.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand};
use hermetic_cache::{DiskStore, GcOptions};

use super::{Cli, EXIT_FAILURE};
use crate::workflow::units::{format_size, parse_size};

/// The `hermetic cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, size, and the hit rate over recent runs.
    Stats,
    /// Remove least recently used results until the cache fits the limits. Safe while other
    /// hermetic processes use the cache.
    Gc(GcArgs),
    /// Check every entry and blob against its digest; exit 1 if anything is corrupt.
    Verify(VerifyArgs),
}

/// Arguments of `hermetic cache gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep at most this much, e.g. `10GiB`.
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub max_size: Option<u64>,
    /// Remove results not used for this long, e.g. `30d`.
    #[arg(long, value_name = "AGE", value_parser = age_arg)]
    pub max_age: Option<Duration>,
}

/// Arguments of `hermetic cache verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Quarantine corrupt entries and blobs, and drop entries whose blobs are missing.
    #[arg(long)]
    pub repair: bool,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// An age such as `30d`, `12h` or `2w`: a whole number and one unit (`s`, `m`, `h`, `d`, `w`).
/// Unlike step timeouts, ages have no upper bound.
fn age_arg(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not an age; write a whole number and a unit, e.g. `30d`"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{s}` has no known unit; use s, m, h, d or w, e.g. `30d`"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// Runs `hermetic cache ...`.
pub fn exec(cli: &Cli, command: &CacheCommand) -> anyhow::Result<ExitCode> {
    let root = super::cache_root(cli)
        .context("no cache directory: set --cache-dir or HERMETIC_CACHE_DIR")?
        .join("store");
    let store = DiskStore::open(&root)?;
    match command {
        CacheCommand::Stats => {
            let s = store.stats()?;
            println!("cache:       {}", store.root().display());
            println!("entries:     {}", s.entries);
            println!("blobs:       {}", s.blobs);
            println!("size:        {}", format_size(s.bytes));
            println!("quarantined: {}", s.quarantined);
            let total = s.recent_hits + s.recent_misses;
            if total == 0 {
                println!("hit rate:    no runs recorded yet");
            } else {
                println!(
                    "hit rate:    {:.1}% ({} hits, {} misses over the last {} runs)",
                    100.0 * s.recent_hits as f64 / total as f64,
                    s.recent_hits,
                    s.recent_misses,
                    s.recent_runs
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Gc(args) => {
            let report = store.gc(&GcOptions {
                max_size: args.max_size,
                max_age: args.max_age,
                now: SystemTime::now(),
                ..GcOptions::default()
            })?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Verify(args) => {
            let report = store.verify(args.repair)?;
            for p in &report.problems {
                println!("corrupt: {}: {}", p.path.display(), p.reason);
            }
            println!(
                "checked {} entries and {} blobs: {} problems{}",
                report.entries_checked,
                report.blobs_checked,
                report.problems.len(),
                if args.repair {
                    format!(", {} repaired", report.repaired)
                } else {
                    String::new()
                }
            );
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            })
        }
    }
}
