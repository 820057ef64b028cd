//! Each step's action key and what it was computed from, kept in `.hermetic/keys.json` so
//! that `hermetic why STEP` can say exactly what changed since the run before.
//!
//! The file holds, for every step of the workflow that has run, its last run and the run
//! before it, plus which steps the last run served from the cache. It is one file, not one
//! per step, because creating a file per step was a measurable part of a cold run; it is read
//! once and written once per run, atomically (temporary file and rename), and not written at
//! all when nothing in it changed (a fully cached run that hit the same keys as the run
//! before). Records of steps no longer in the workflow are dropped. An unreadable file is
//! treated as absent, since it only explains.
//!
//! A run reads only each step's last key and outcome: what the keys were computed from is
//! kept as raw JSON, copied from run to run, and parsed only by `hermetic why`. (A key is the
//! digest of its components, so the same key means the same components.) Parsing every
//! step's components was most of the cost of a run of thousands of no-op steps.
//!
//! Once the records are *settled* for a run (recording the same run again would change
//! nothing: its steps' last run and run before are both that run, or it hit the keys they
//! record), `.hermetic/keys.settled` names that run by a digest of the workflow's step names
//! and each step's key and outcome ([`run_digest`]), together with the length and
//! modification time of the `keys.json` it vouches for. A later run with the same digest has
//! nothing to record, and does not read `keys.json` at all; any other run reads it. A run that
//! changes `keys.json` removes `keys.settled` first, so that a crash in between leaves no
//! stale claim, and a `keys.json` changed by anything else no longer matches its length and
//! time.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use hermetic_cache::Digest;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{read_json, write_atomic, write_json_atomic};
use crate::plan::key::KeyHasher;
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

/// A step's last two runs, as `hermetic why` reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyHistory {
    pub last: KeyRun,
    pub before: Option<KeyRun>,
}

/// A step's last two runs as stored: each run's key and outcome in the clear, their
/// components as raw JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: Digest,
    cached: bool,
    succeeded: bool,
    components: Box<RawValue>,
    before: Option<StoredRun>,
}

/// The key and outcome of a stored [`KeyRun`], without its components.
#[derive(Debug, PartialEq)]
struct RunHead {
    key: Digest,
    cached: bool,
    succeeded: bool,
}

/// A stored `before`: a [`KeyRun`] with its components in JSON, left out when they are the
/// entry's own (the same key), which halves the file of a project that reruns unchanged
/// steps.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRun {
    key: Digest,
    cached: bool,
    succeeded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    components: Option<Box<RawValue>>,
}

impl StoredRun {
    fn head(&self) -> RunHead {
        RunHead {
            key: self.key,
            cached: self.cached,
            succeeded: self.succeeded,
        }
    }
}

/// Everything `.hermetic/keys.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyRecords {
    version: u32,
    /// Each step's history, by step name.
    steps: BTreeMap<String, Entry>,
    /// The steps the last run served from the cache, each with the key it hit.
    last_hits: BTreeMap<String, Digest>,
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

impl Entry {
    /// The last run's key and outcome.
    fn head(&self) -> RunHead {
        RunHead {
            key: self.key,
            cached: self.cached,
            succeeded: self.succeeded,
        }
    }

    /// The last run, to keep as the run before the next one, when that has the same key.
    fn run_without_components(&self) -> StoredRun {
        StoredRun {
            key: self.key,
            cached: self.cached,
            succeeded: self.succeeded,
            components: None,
        }
    }
}

fn components_json(components: &KeyComponents) -> io::Result<Box<RawValue>> {
    serde_json::value::to_raw_value(components).map_err(io::Error::other)
}

impl KeyRecords {
    /// The history of `step`, parsed in full; `None` if it has not run or its record cannot
    /// be read.
    pub fn history(&self, step: &str) -> Option<KeyHistory> {
        let entry = self.steps.get(step)?;
        let last = KeyRun {
            key: entry.key,
            cached: entry.cached,
            succeeded: entry.succeeded,
            components: serde_json::from_str(entry.components.get()).ok()?,
        };
        let before = match &entry.before {
            Some(run) => Some(KeyRun {
                key: run.key,
                cached: run.cached,
                succeeded: run.succeeded,
                components: match &run.components {
                    Some(raw) => serde_json::from_str(raw.get()).ok()?,
                    None if run.key == last.key => last.components.clone(),
                    None => return None,
                },
            }),
            None => None,
        };
        Some(KeyHistory { last, before })
    }

    /// The key `step` hit in the last run, if it was served from the cache then.
    pub fn last_hit(&self, step: &str) -> Option<&Digest> {
        self.last_hits.get(step)
    }
}

/// Where the records live.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("keys.json")
}

/// What a run needs, before its steps end, to record their keys afterwards.
#[derive(Debug)]
pub enum Before {
    /// The records as they are.
    Records(KeyRecords),
    /// The records are settled for a run with this [`run_digest`]; they are read only if
    /// this run differs.
    Settled(Digest),
}

/// Reads what [`record_run`] will need: the settled run's digest if `keys.settled` vouches for
/// `keys.json` as it is, otherwise the records.
pub fn load_before(state_dir: &Path) -> Before {
    match settled(state_dir) {
        Some(digest) => Before::Settled(digest),
        None => Before::Records(load(state_dir)),
    }
}

/// Records the keys of `summary`'s steps, as [`record_all`] does, unless the records are
/// settled for a run exactly like it.
pub fn record_run(before: Before, plan: &Plan, summary: &RunSummary) -> io::Result<()> {
    let (records, digest) = match before {
        Before::Settled(settled) => {
            let digest = run_digest(plan, summary);
            if settled == digest {
                return Ok(());
            }
            (load(&plan.state_dir), Some(digest))
        }
        Before::Records(records) => (records, None),
    };
    record_all(records, plan, summary, digest)
}

/// Names a run for `keys.settled`: the workflow's step names, and each planned step's name
/// and, if it computed a key, the key, whether it was a hit and whether it succeeded.
pub fn run_digest(plan: &Plan, summary: &RunSummary) -> Digest {
    // The bytes are gathered first and hashed in one call (as for an action key, with its
    // encoder), which hashes many chunks at once on the SIMD lanes: with 30,000 small
    // updates, 10,000 steps took 1.2 to 1.3 ms at the end of every run, and 0.6 to 0.9 ms
    // this way (with the gathering). Gathered or not, the bytes and so the digest are the
    // same.
    let mut h = KeyHasher(Vec::with_capacity(64 + plan.steps.len() * 80));
    h.0.extend_from_slice(b"hermetic settled keys\0");
    h.0.extend_from_slice(&RECORD_VERSION.to_le_bytes());
    h.u64(plan.workflow.steps.len() as u64);
    for step in &plan.workflow.steps {
        h.str(&step.name);
    }
    h.u64(plan.steps.len() as u64);
    for (step, key) in plan.steps.iter().zip(&summary.keys) {
        h.str(&step.name);
        match key {
            Some(k) => {
                h.0.extend_from_slice(&[1, u8::from(k.cached), u8::from(k.succeeded)]);
                h.digest(&k.key);
            }
            None => h.0.push(0),
        }
    }
    h.finish()
}

fn settled_path(state_dir: &Path) -> PathBuf {
    state_dir.join("keys.settled")
}

/// `keys.json`'s length and modification time, as `keys.settled` records them.
fn stamp(state_dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(path(state_dir)).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{} {}", meta.len(), mtime.as_nanos()))
}

/// The digest in `keys.settled`, if the file vouches for `keys.json` as it is now.
fn settled(state_dir: &Path) -> Option<Digest> {
    let text = std::fs::read_to_string(settled_path(state_dir)).ok()?;
    let (digest, stamped) = text.trim_end().split_once(' ')?;
    (Some(stamped) == stamp(state_dir).as_deref())
        .then(|| digest.parse().ok())
        .flatten()
}

/// Reads the records; empty if there are none or they cannot be read.
pub fn load(state_dir: &Path) -> KeyRecords {
    read_json::<KeyRecords>(&path(state_dir))
        .filter(|r| r.version == RECORD_VERSION)
        .unwrap_or_default()
}

/// Records every step of `summary` that computed a key in `records` (as [`load`]ed before the
/// run), and writes them if that changed anything. `digest` is the run's [`run_digest`] if the
/// caller computed it already.
pub fn record_all(
    mut records: KeyRecords,
    plan: &Plan,
    summary: &RunSummary,
    digest: Option<Digest>,
) -> io::Result<()> {
    let state_dir = &plan.state_dir;
    let mut changed = false;
    let mut hits = BTreeMap::new();
    for (i, (step, key)) in plan.steps.iter().zip(&summary.keys).enumerate() {
        if let Some(key) = key {
            let components = || summary.key_components(plan, i);
            changed |= record(&mut records.steps, &step.name, key, components)?;
            if key.cached {
                hits.insert(step.name.clone(), key.key);
            }
        }
    }
    let defined: HashSet<&str> = plan
        .workflow
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let count = records.steps.len();
    records
        .steps
        .retain(|name, _| defined.contains(name.as_str()));
    changed |= records.steps.len() != count || hits != records.last_hits;
    if changed {
        // No claim about the records may outlive them.
        crate::outputs::fsx::remove_all(&settled_path(state_dir)).map_err(io::Error::other)?;
        records.last_hits = hits;
        write_json_atomic(&path(state_dir), &records)?;
        // The records of version 1, one file per step, are replaced by this file.
        let _ = std::fs::remove_dir_all(state_dir.join("keys"));
    }
    let settles = plan.steps.iter().zip(&summary.keys).all(|(step, key)| {
        key.as_ref()
            .is_none_or(|run| unchanged(records.steps.get(step.name.as_str()), run))
    });
    if settles {
        let digest = digest.unwrap_or_else(|| run_digest(plan, summary));
        if settled(state_dir) != Some(digest)
            && let Some(stamp) = stamp(state_dir)
        {
            write_atomic(
                &settled_path(state_dir),
                format!("{digest} {stamp}\n").as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Whether recording `run` over `old` would change nothing.
fn unchanged(old: Option<&Entry>, run: &StepKey) -> bool {
    let Some(old) = old else {
        return false;
    };
    let head = RunHead {
        key: run.key,
        cached: run.cached,
        succeeded: run.succeeded,
    };
    // A hit under the key last recorded changes nothing here (that it was a hit goes to
    // `last_hits`); nor does the same run again after the same run before (an unchanged
    // step run with `--no-cache`, say).
    (run.cached && old.key == run.key)
        || (old.head() == head && old.before.as_ref().map(StoredRun::head) == Some(head))
}

/// Records one run of `step` in `steps`; whether that changed anything. `components` gives
/// what the run's key was computed from, asked for only when they are not recorded yet.
fn record(
    steps: &mut BTreeMap<String, Entry>,
    step: &str,
    run: &StepKey,
    components: impl FnOnce() -> KeyComponents,
) -> io::Result<bool> {
    if unchanged(steps.get(step), run) {
        return Ok(false);
    }
    let components = || {
        let rebuilt = components();
        debug_assert_eq!(rebuilt.key(), run.key, "`{step}`'s rebuilt components");
        rebuilt
    };
    let old = steps.remove(step);
    let (components, before) = match old {
        // The same key: the same components, already in JSON, and the run before needs no
        // copy of them.
        Some(old) if old.key == run.key => {
            let before = old.run_without_components();
            (old.components, Some(before))
        }
        Some(old) => {
            let components = components_json(&components())?;
            let before = StoredRun {
                key: old.key,
                cached: old.cached,
                succeeded: old.succeeded,
                components: Some(old.components),
            };
            (components, Some(before))
        }
        None => (components_json(&components())?, None),
    };
    steps.insert(
        step.to_string(),
        Entry {
            key: run.key,
            cached: run.cached,
            succeeded: run.succeeded,
            components,
            before,
        },
    );
    Ok(true)
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
