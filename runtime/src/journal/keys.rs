//! Each step's action key and what it was computed from, kept under `.hermetic/keys/<step>.json`
//! so that `hermetic why STEP` can say exactly what changed since the run before.
//!
//! A record keeps the step's last run and the run before it. Written atomically (temporary
//! file and rename); an unreadable record is treated as absent, since it only explains.

use std::io;
use std::path::{Path, PathBuf};

use hermetic_cache::Digest;
use serde::{Deserialize, Serialize};

use crate::plan::{KeyComponents, Plan};
use crate::pool::{RunSummary, StepKey};

/// Version of the record format; a record of another version is ignored.
const RECORD_VERSION: u32 = 1;

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
    pub version: u32,
    pub last: KeyRun,
    pub before: Option<KeyRun>,
}

/// Where the record of `step` lives.
pub fn path(state_dir: &Path, step: &str) -> PathBuf {
    state_dir.join("keys").join(format!("{step}.json"))
}

/// Reads the record of `step`; `None` if there is none or it cannot be read.
pub fn load(state_dir: &Path, step: &str) -> Option<KeyHistory> {
    let bytes = std::fs::read(path(state_dir, step)).ok()?;
    let history: KeyHistory = serde_json::from_slice(&bytes).ok()?;
    (history.version == RECORD_VERSION).then_some(history)
}

/// Records every step of `summary` that computed a key.
pub fn record_all(plan: &Plan, summary: &RunSummary) -> io::Result<()> {
    let dir = plan.state_dir.join("keys");
    std::fs::create_dir_all(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create `{}`: {e}", dir.display())))?;
    for (step, key) in plan.steps.iter().zip(&summary.keys) {
        if let Some(key) = key {
            record(&plan.state_dir, &step.name, key)?;
        }
    }
    Ok(())
}

fn record(state_dir: &Path, step: &str, key: &StepKey) -> io::Result<()> {
    let run = KeyRun {
        key: key.key,
        cached: key.cached,
        succeeded: key.succeeded,
        components: key.components.clone(),
    };
    let existing = load(state_dir, step);
    // A hit with the same key as last time changes nothing `why` would say: skip the write,
    // which is most of a fully cached run's filesystem work.
    if run.cached
        && let Some(old) = &existing
        && old.last == run
    {
        return Ok(());
    }
    let history = KeyHistory {
        version: RECORD_VERSION,
        before: existing.map(|h| h.last),
        last: run,
    };
    let path = path(state_dir, step);
    let json = serde_json::to_vec_pretty(&history).map_err(io::Error::other)?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let context = |e: io::Error, p: &Path| {
        io::Error::new(e.kind(), format!("cannot write `{}`: {e}", p.display()))
    };
    std::fs::write(&tmp, json).map_err(|e| context(e, &tmp))?;
    std::fs::rename(&tmp, &path).map_err(|e| context(e, &path))
}

/// What `hermetic why` says about a step's last run, one line per item.
pub fn explain(step: &str, history: &KeyHistory) -> Vec<String> {
    let last = &history.last;
    if last.cached {
        return vec![format!(
            "`{step}` was served from the cache in its last run (key {})",
            last.key.short()
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
