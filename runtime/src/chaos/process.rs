//! The `process_kill` fault: a seed whose plan kills the process runs in two child `hermetic
//! run` processes instead of in the suite's own. The first is killed with SIGKILL, by itself,
//! as soon as its journal holds the end of the fault's step; the second continues it with
//! `--resume`. The suite then judges what the second left: every step's final state in its
//! journal, and the outputs it published.
//!
//! A child learns its faults from a [`ChildFaults`] file (`hermetic run --chaos-child FILE`, a
//! hidden option): the seed and the suite's settings, from which it derives the same plan as
//! the suite. It runs without the result cache and without taking the project lock, which the
//! suite holds for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hermetic_cache::{Digest, FileEntry, tree_digest};
use serde::{Deserialize, Serialize};

use super::plan::{FaultKind, FaultPlan};
use crate::events::{Event, Reporter, StepStatus};

/// What a child run injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildFaults {
    pub seed: u64,
    pub rates: Vec<(FaultKind, f64)>,
    pub steps: Option<Vec<String>>,
    pub only: Option<Vec<(String, FaultKind)>>,
    /// Kill the process once one of these steps has finished (and its end is journaled).
    pub kill_after: Vec<String>,
}

impl ChildFaults {
    /// The plan the child injects: the suite's, for the same seed.
    pub fn plan(&self, names: &[&str]) -> FaultPlan {
        FaultPlan::for_suite(
            self.seed,
            &self.rates,
            names,
            self.steps.as_deref(),
            self.only.as_deref(),
        )
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("`{}` is not a fault list: {e}", path.display()))
    }
}

/// A reporter that kills the whole process (SIGKILL: no destructor, no flush but the one it
/// does itself) right after it has passed on the end of one of `steps`.
pub(crate) struct KillAfter<'a> {
    pub inner: &'a mut dyn Reporter,
    pub steps: Vec<String>,
}

impl Reporter for KillAfter<'_> {
    fn event(&mut self, event: &Event) {
        self.inner.event(event);
        self.kill_if_due(event);
    }

    fn stamped(&mut self, at: std::time::Duration, event: &Event) {
        self.inner.stamped(at, event);
        self.kill_if_due(event);
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn flush_all(&mut self) {
        self.inner.flush_all();
    }
}

impl KillAfter<'_> {
    fn kill_if_due(&mut self, event: &Event) {
        if let Event::StepFinished { step, .. } = event
            && self.steps.contains(step)
        {
            // The journal is buffered: all it holds must be on disk before the process dies.
            self.inner.flush_all();
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        }
    }
}

/// How the two children of a killed seed ended.
#[derive(Debug, Default)]
pub(crate) struct Resumed {
    /// Whether the first child died by SIGKILL.
    pub killed: bool,
    /// Each step's final state, from the second child's journal.
    pub steps: BTreeMap<String, StepStatus>,
    /// Failure messages, by step.
    pub messages: BTreeMap<String, String>,
    /// The Merkle root of each succeeded step's outputs, as found on disk.
    pub outputs: BTreeMap<String, Digest>,
    /// Both children's journal lines, in order, for the trace.
    pub events: Vec<serde_json::Value>,
    /// Attempts that ran again, in either child.
    pub retries: usize,
    /// What went wrong running the children, if anything.
    pub problem: Option<String>,
}

/// What the two children need.
pub(crate) struct Children<'a> {
    pub workflow: &'a Path,
    pub state_dir: &'a Path,
    pub out_root: &'a Path,
    pub jobs: usize,
}

impl Children<'_> {
    /// Runs the killed child, then the resuming one, and reads what they left.
    pub(crate) fn run(&self, faults: &ChildFaults, dir: &Path) -> Resumed {
        let mut resumed = Resumed::default();
        let _ = std::fs::remove_dir_all(self.out_root);
        if let Err(e) = std::fs::create_dir_all(dir) {
            resumed.problem = Some(format!("cannot create `{}`: {e}", dir.display()));
            return resumed;
        }
        let first = dir.join("faults-killed.json");
        let second = dir.join("faults-resumed.json");
        let resume_faults = ChildFaults {
            kill_after: Vec::new(),
            ..faults.clone()
        };
        for (path, f) in [(&first, faults), (&second, &resume_faults)] {
            let json = serde_json::to_vec(f).unwrap_or_default();
            if let Err(e) = std::fs::write(path, json) {
                resumed.problem = Some(format!("cannot write `{}`: {e}", path.display()));
                return resumed;
            }
        }
        let before = newest_run(self.state_dir);
        match self.child(faults.seed, &first, false) {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                resumed.killed = status.signal() == Some(libc::SIGKILL);
            }
            Err(e) => {
                resumed.problem = Some(e);
                return resumed;
            }
        }
        let killed_run = newest_run(self.state_dir).filter(|r| Some(r) != before.as_ref());
        if let Err(e) = self.child(faults.seed, &second, true) {
            resumed.problem = Some(e);
            return resumed;
        }
        let resumed_run = newest_run(self.state_dir).filter(|r| Some(r) != killed_run.as_ref());
        if let Some(run) = &killed_run {
            resumed.events = read_events(&run.join("events.jsonl"));
        }
        let Some(run) = resumed_run else {
            resumed.problem = Some("the resumed run left no journal".into());
            return resumed;
        };
        let second = read_events(&run.join("events.jsonl"));
        for line in &second {
            if line["event"] != "step_finished" {
                continue;
            }
            let step = line["step"].as_str().unwrap_or_default().to_string();
            let status: Option<StepStatus> = serde_json::from_value(line["status"].clone()).ok();
            if let Some(status) = status {
                resumed.steps.insert(step.clone(), status);
            }
            if status == Some(StepStatus::Failed) {
                let message = line["message"].as_str().unwrap_or_default();
                resumed.messages.insert(step.clone(), message.to_string());
            }
            if status == Some(StepStatus::Succeeded) {
                let files: Vec<FileEntry> =
                    serde_json::from_value(line["files"].clone()).unwrap_or_default();
                if on_disk(&self.out_root.join(&step), &files) {
                    resumed.outputs.insert(step, tree_digest(&files));
                }
            }
        }
        resumed.events.extend(second);
        resumed.retries = resumed
            .events
            .iter()
            .filter(|l| l["event"] == "step_retrying")
            .count();
        resumed
    }

    fn child(
        &self,
        seed: u64,
        faults: &Path,
        resume: bool,
    ) -> Result<std::process::ExitStatus, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find hermetic's own executable: {e}"))?;
        let mut command = Command::new(exe);
        command
            .arg("run")
            .arg(self.workflow)
            .args(["--keep-going", "--no-cache", "--json", "--seed"])
            .arg(seed.to_string())
            .arg("--jobs")
            .arg(self.jobs.to_string())
            .arg("--out-dir")
            .arg(self.out_root)
            .arg("--chaos-child")
            .arg(faults)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if resume {
            command.arg("--resume");
        }
        command
            .status()
            .map_err(|e| format!("cannot run a child `hermetic run`: {e}"))
    }
}

/// The newest run directory in the project's journal.
fn newest_run(state_dir: &Path) -> Option<PathBuf> {
    let runs = crate::journal::runs::runs_dir(state_dir);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// The lines of a journal's `events.jsonl`; a torn last line (the process was killed) is left
/// out.
fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether `dir` holds exactly `files`, byte for byte.
fn on_disk(dir: &Path, files: &[FileEntry]) -> bool {
    files
        .iter()
        .all(|f| std::fs::read(dir.join(&f.path)).is_ok_and(|bytes| Digest::of(&bytes) == f.digest))
}
