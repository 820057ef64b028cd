//! Each step's action key and what it was computed from, kept in `.hermetic/keys.json` so
//! that `hermetic why STEP` can say exactly what changed since the run before.
//!
//! The file holds, for every step of the workflow that has run, its last run and the run
//! before it, plus which steps the last run served from the cache ([`KeyRecords::last_hits`]).
//! It is one file, not one per step, because creating a file per step was a measurable part
//! of a cold run; it is read once and written once per run, atomically (temporary file and
//! rename), and not written at all when nothing in it changed (a fully cached run that hit
//! the same keys as the run before). Records of steps no longer in the workflow are dropped.
//! An unreadable file is treated as absent, since it only explains.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use hermetic_cache::Digest;
use serde::{Deserialize, Serialize};

use super::write_atomic;
use crate::plan::{KeyComponents, Plan};
use crate::pool::{RunSummary, StepKey};

/// Version of the file's format; a file of another version is ignored. Version 1 was one
/// file per step under `.hermetic/keys/`.
const RECORD_VERSION: u32 = 2;

/// One run of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRun {
    pub key: Digest,
    /// Served from the cache (the module did not run).
    pub cached: bool,
    pub succeeded: bool,
    pub components: KeyComponents,
}

/// A step's last two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyHistory {
    pub last: KeyRun,
    pub before: Option<KeyRun>,
}

/// Everything `.hermetic/keys.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecords {
    pub version: u32,
    /// Each step's history, by step name.
    pub steps: BTreeMap<String, KeyHistory>,
    /// The steps the last run served from the cache, each with the key it hit.
    pub last_hits: BTreeMap<String, Digest>,
}

impl Default for KeyRecords {
    fn default() -> Self {
        Self {
            version: RECORD_VERSION,
            steps: BTreeMap::new(),
            last_hits: BTreeMap::new(),
        }
    }
}

/// Where the records live.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("keys.json")
}

/// Reads the records; empty if there are none or they cannot be read.
pub fn load(state_dir: &Path) -> KeyRecords {
    std::fs::read(path(state_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<KeyRecords>(&bytes).ok())
        .filter(|r| r.version == RECORD_VERSION)
        .unwrap_or_default()
}

/// Records every step of `summary` that computed a key.
pub fn record_all(plan: &Plan, summary: &RunSummary) -> io::Result<()> {
    let old = load(&plan.state_dir);
    let mut new = old.clone();
    new.last_hits.clear();
    for (step, key) in plan.steps.iter().zip(&summary.keys) {
        if let Some(key) = key {
            record(&mut new.steps, &step.name, key);
            if key.cached {
                new.last_hits.insert(step.name.clone(), key.key);
            }
        }
    }
    let defined: HashSet<&str> = plan
        .workflow
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    new.steps.retain(|name, _| defined.contains(name.as_str()));
    if new == old {
        return Ok(());
    }
    let json = serde_json::to_vec(&new).map_err(io::Error::other)?;
    write_atomic(&path(&plan.state_dir), &json)?;
    // The records of version 1, one file per step, are replaced by this file.
    let _ = std::fs::remove_dir_all(plan.state_dir.join("keys"));
    Ok(())
}

/// Records one run of `step` in `steps`.
fn record(steps: &mut BTreeMap<String, KeyHistory>, step: &str, key: &StepKey) {
    let run = KeyRun {
        key: key.key,
        cached: key.cached,
        succeeded: key.succeeded,
        components: key.components.clone(),
    };
    let existing = steps.get(step);
    // A hit under the key last recorded changes nothing here (that it was a hit goes to
    // `last_hits`).
    if run.cached
        && let Some(old) = existing
        && old.last.key == run.key
        && old.last.components == run.components
    {
        return;
    }
    let history = KeyHistory {
        before: existing.map(|h| h.last.clone()),
        last: run,
    };
    // The same run again (an unchanged step run with `--no-cache`, say): keep the history.
    if existing == Some(&history) {
        return;
    }
    steps.insert(step.to_string(), history);
}

/// What `hermetic why` says about a step's last run, one line per item. `hit` is the key the
/// step hit in the last run, if it was served from the cache then.
pub fn explain(step: &str, history: &KeyHistory, hit: Option<&Digest>) -> Vec<String> {
    let last = &history.last;
    if let Some(key) = hit.or(last.cached.then_some(&last.key)) {
        return vec![format!(
            "`{step}` was served from the cache in its last run (key {})",
            key.short()
        )];
    }
    let Some(before) = &history.before else {
        return vec![format!(
            "`{step}` ran in its last run because no earlier run of it was recorded (key {})",
            last.key.short()
        )];
    };
    if before.key == last.key {
        let was = if before.succeeded {
            "the result was not in the cache: it was evicted, removed as corrupt, or the run \
             before used --no-cache"
        } else {
            "the run before failed, and failures are never cached"
        };
        return vec![format!(
            "`{step}` ran with the same key as the run before ({}); {was}",
            last.key.short()
        )];
    }
    let mut lines = vec![format!(
        "`{step}` ran because its key changed ({} → {}):",
        before.key.short(),
        last.key.short()
    )];
    lines.extend(
        last.components
            .changes_since(&before.components)
            .into_iter()
            .map(|c| format!("  - {c}")),
    );
    lines
}
