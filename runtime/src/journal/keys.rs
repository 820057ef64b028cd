//! Each step's action key and what it was computed from, kept under `.hermetic/keys/<step>.json`
//! so that `hermetic why STEP` can say exactly what changed since the run before.
//!
//! A record keeps the step's last run and the run before it, and is rewritten only when one of
//! them changes: a hit under the key it already records changes nothing there. Which steps the
//! last run served from the cache is kept apart, in one file for the whole run,
//! `.hermetic/keys/.last-hits.json`, so that a fully cached run writes one file instead of one
//! per step. Files are written atomically (temporary file and rename); an unreadable one is
//! treated as absent, since it only explains.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use hermetic_cache::Digest;
use serde::{Deserialize, Serialize};

use super::write_atomic;
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

/// The steps the last run served from the cache, each with the key it hit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastHits {
    pub version: u32,
    pub hits: BTreeMap<String, Digest>,
}

/// Where the record of `step` lives.
pub fn path(state_dir: &Path, step: &str) -> PathBuf {
    state_dir.join("keys").join(format!("{step}.json"))
}

/// Where the [`LastHits`] live: a name no step record can have, since step names cannot start
/// with a dot.
fn hits_path(state_dir: &Path) -> PathBuf {
    state_dir.join("keys").join(".last-hits.json")
}

/// The hits of the last run; empty if unknown.
pub fn load_hits(state_dir: &Path) -> LastHits {
    std::fs::read(hits_path(state_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LastHits>(&bytes).ok())
        .filter(|h| h.version == RECORD_VERSION)
        .unwrap_or_default()
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
    let mut hits = LastHits {
        version: RECORD_VERSION,
        hits: BTreeMap::new(),
    };
    for (step, key) in plan.steps.iter().zip(&summary.keys) {
        if let Some(key) = key {
            record(&plan.state_dir, &step.name, key)?;
            if key.cached {
                hits.hits.insert(step.name.clone(), key.key);
            }
        }
    }
    let json = serde_json::to_vec(&hits).map_err(io::Error::other)?;
    write_atomic(&hits_path(&plan.state_dir), &json)
}

fn record(state_dir: &Path, step: &str, key: &StepKey) -> io::Result<()> {
    let run = KeyRun {
        key: key.key,
        cached: key.cached,
        succeeded: key.succeeded,
        components: key.components.clone(),
    };
    let existing = load(state_dir, step);
    // A hit under the key last recorded changes nothing here (that it was a hit goes to the
    // run's `LastHits`): skip the write, which would be most of a fully cached run's
    // filesystem work.
    if run.cached
        && let Some(old) = &existing
        && old.last.key == run.key
        && old.last.components == run.components
    {
        return Ok(());
    }
    let history = KeyHistory {
        version: RECORD_VERSION,
        before: existing.as_ref().map(|h| h.last.clone()),
        last: run,
    };
    // The same run again (an unchanged step run with `--no-cache`, say): nothing to write.
    if existing.as_ref() == Some(&history) {
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(&history).map_err(io::Error::other)?;
    write_atomic(&path(state_dir, step), &json)
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
