//! What a run leaves behind once its steps have ended: the journal's `summary.json`, the
//! step durations for adaptive timeouts, the keys for `hermetic why`, the `--trace` file and
//! the cache's hit statistics.
//!
//! For a workflow of thousands of small steps, these records cost as much as a fair part of
//! the run, so they stay off its critical path:
//!
//! * the files they add to (`keys.json`, `durations.json`) are read by a [`Preload`] thread
//!   while the steps run, after the project lock is taken, so no other run can change them
//!   in between; the same thread removes the oldest runs of the journal;
//! * the keys are written on a thread of their own while this one writes the rest, the
//!   journal's summary last. The summary had a thread of its own too, but this one had little
//!   else to do, and both helpers then shared the CPU that this thread was not on (each leaves
//!   its parent's CPU, see `crate::beside`) while this one waited: after the last of 10,000
//!   steps, the records took 2.3–3.3 ms that way and 1.5–2.7 ms with the summary written here
//!   (7 runs of each).
//!
//! What each record holds, and why a damaged one only explains, is in [`crate::journal`].

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::events::StepStatus;
use crate::journal::durations::Durations;
use crate::journal::keys;
use crate::journal::runs::{RunJournal, Summary};
use crate::journal::trace;
use crate::plan::Plan;
use crate::pool::RunSummary;

/// The records a run adds to, read on a thread of their own while the steps run.
#[derive(Debug)]
pub struct Preload {
    /// `None` when the thread could not be started: the records are read when needed.
    thread: Option<JoinHandle<Loaded>>,
    work: Work,
}

/// What a [`Preload`] does.
#[derive(Debug, Clone)]
pub struct Work {
    /// The project's `.hermetic/`.
    pub state_dir: PathBuf,
    /// Read `keys.json`.
    pub keys: bool,
    /// Read `durations.json`.
    pub durations: bool,
    /// Remove the journal's oldest runs ([`crate::journal::runs::prune_runs`]).
    pub prune: bool,
}

/// What [`Preload`] read.
#[derive(Debug, Default)]
struct Loaded {
    keys: Option<keys::Before>,
    durations: Option<Durations>,
    /// Why the oldest runs could not be removed.
    pruned: Option<io::Error>,
}

fn load(work: &Work) -> Loaded {
    let state_dir = &work.state_dir;
    Loaded {
        keys: work.keys.then(|| keys::load_before(state_dir)),
        durations: work.durations.then(|| Durations::load(state_dir)),
        pruned: work
            .prune
            .then(|| crate::journal::runs::prune_runs(state_dir).err())
            .flatten(),
    }
}

impl Preload {
    /// Starts `work`. Call it with the project lock held.
    pub fn start(work: Work) -> Self {
        let theirs = work.clone();
        let thread = (work.keys || work.durations || work.prune)
            .then(|| {
                std::thread::Builder::new()
                    .name("hermetic-preload".into())
                    .spawn(move || load(&theirs))
                    .ok()
            })
            .flatten();
        Self { thread, work }
    }

    fn finish(self) -> Loaded {
        match self.thread {
            Some(t) => t
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => load(&self.work),
        }
    }
}

/// What to record, beside the summary.
#[derive(Debug)]
pub struct Records<'a> {
    pub plan: &'a Plan,
    pub summary: &'a RunSummary,
    /// The journal and the summary to finish it with.
    pub journal: Option<(RunJournal, Summary<'a>)>,
    /// `--trace FILE`.
    pub trace: Option<&'a Path>,
    /// Where to count the run's hits and misses.
    pub cache_stats: Option<&'a hermetic_cache::DiskStore>,
}

impl Records<'_> {
    /// Writes every record: the keys on a thread of their own, the rest on this one. Returns
    /// a warning for each record that could not be written, in a fixed order.
    pub fn write(self, preload: Preload) -> Vec<String> {
        let Records {
            plan,
            summary,
            journal,
            trace,
            cache_stats,
        } = self;
        let loaded = preload.finish();
        std::thread::scope(|s| {
            let keys = loaded.keys.map(|before| {
                side_thread(s, "hermetic-keys", move || {
                    keys::record_run(before, plan, summary).map_err(|e| {
                        format!("cannot record the steps' keys for `hermetic why`: {e}")
                    })
                })
            });
            let mut here = Vec::new();
            if let Some(e) = loaded.pruned {
                here.push(format!("cannot remove the oldest runs of the journal: {e}"));
            }
            if let Some(history) = loaded.durations
                && let Err(e) = record_durations(history, plan, summary)
            {
                here.push(format!(
                    "cannot record step durations for adaptive timeouts: {e}"
                ));
            }
            if let Some(path) = trace
                && let Err(e) = trace::write(path, &plan.workflow.name, &summary.metrics)
            {
                here.push(e.to_string());
            }
            if let Some(store) = cache_stats {
                let hits = summary.keys.iter().flatten().filter(|k| k.cached).count() as u64;
                let misses = summary.keys.iter().flatten().filter(|k| !k.cached).count() as u64;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if let Err(e) = store.record_run(hits, misses, now) {
                    here.push(format!("cannot record cache statistics: {e}"));
                }
            }
            // Last, since it is the largest: the keys' thread writes beside it.
            let journal = journal.and_then(|(journal, summary_json)| {
                journal
                    .finish(&summary_json)
                    .map_err(|e| format!("the run journal is incomplete: {e}"))
                    .err()
            });
            let mut warnings: Vec<String> = journal.into_iter().collect();
            warnings.extend(here);
            warnings.extend(keys.and_then(|k| k.join().err()));
            warnings
        })
    }
}

/// A job run on a thread of its own within a scope, or on the caller's when no thread can be
/// started.
enum Side<'scope, T> {
    Thread(std::thread::ScopedJoinHandle<'scope, T>),
    Done(T),
}

impl<T> Side<'_, T> {
    /// The job's result; a panic on its thread goes on here.
    fn join(self) -> T {
        match self {
            Side::Thread(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Side::Done(value) => value,
        }
    }
}

/// Starts `job` on a thread named `name` within `scope`, or runs it now if the thread cannot
/// be started.
fn side_thread<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    job: impl FnOnce() -> T + Send + 'scope,
) -> Side<'scope, T> {
    // Taken by the thread, or back here when it cannot start (the closure given to the
    // thread is then dropped unrun).
    let slot = Arc::new(Mutex::new(Some(job)));
    let theirs = Arc::clone(&slot);
    let take = |slot: &Mutex<Option<_>>| {
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("the job runs once")
    };
    match crate::beside::spawn_scoped(
        scope,
        std::thread::Builder::new().name(name.to_owned()),
        move || take(&theirs)(),
    ) {
        Ok(thread) => Side::Thread(thread),
        Err(_) => Side::Done(take(&slot)()),
    }
}

/// Adds the run time of each step that ran and succeeded at its first attempt to `history`,
/// and saves it.
fn record_durations(mut history: Durations, plan: &Plan, summary: &RunSummary) -> io::Result<()> {
    let adaptive: HashSet<&str> = plan
        .steps
        .iter()
        .filter(|s| plan.step_def(s).adaptive_timeout.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let mut ran = summary
        .metrics
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded && s.attempts == 1 && !s.cached)
        .filter(|s| adaptive.contains(s.step.as_str()))
        .peekable();
    if ran.peek().is_none() {
        return Ok(());
    }
    for step in ran {
        history.record(&step.step, Duration::from_micros(step.run_us));
    }
    history.save(&plan.state_dir)
}
