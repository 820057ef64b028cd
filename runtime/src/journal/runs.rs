//! The run journal: every `hermetic run` leaves `.hermetic/runs/<run-id>/` behind.
//!
//! ```text
//! .hermetic/runs/20261122-231047-123/
//!   events.jsonl        every event, one JSON object per line, with `t_us` (µs since start);
//!                       a succeeded step's `step_finished` line also lists its output `files`
//!   logs/<step>/stdout  the step's captured output (hard links, not copies)
//!   logs/<step>/stderr
//!   summary.json        written when the run ends: outcome, counts and metrics
//! ```
//!
//! The events are written out while the run goes: in whole 64 KiB chunks as they fill (see
//! `journal::chunks`: small writes cost the kernel several times as much), and the rest at most
//! [`FLUSH_AFTER`] after it was recorded. So a run killed with SIGKILL still leaves the record
//! of the steps that finished, but for the last [`FLUSH_AFTER`] of them, without its
//! `summary.json`; its last line may be cut short, and readers skip it. `hermetic run
//! --resume` reads that record: a step that succeeded in it keeps its result when its action
//! key is unchanged and its published outputs are still exactly the recorded files; every
//! other step runs. `hermetic runs` lists the runs, newest first.
//!
//! The newest [`KEEP_RUNS`] runs are kept; older ones are removed while a run's steps run
//! ([`prune_runs`]). The
//! journal is informational: a problem writing it is reported once, as a warning, and never
//! fails the run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hermetic_cache::{Digest, FileEntry};
use serde::{Deserialize, Serialize};

use super::chunks::{CHUNK, Chunked};
use crate::events::{Event, Reporter, RunStatus, StepStatus};
use crate::pool::metrics::RunMetrics;

/// The longest an event waits to be written out when the events after it do not fill a chunk:
/// what a run killed with SIGKILL can lose of its record (those steps run again on `--resume`),
/// and how far `events.jsonl` can lag behind a run in progress.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// How many runs are kept.
pub const KEEP_RUNS: usize = 20;
/// Version of `summary.json`.
pub const SUMMARY_VERSION: u32 = 1;

/// The journal of the run in progress.
#[derive(Debug)]
pub struct RunJournal {
    id: String,
    dir: PathBuf,
    /// `.hermetic/logs`, where steps' logs are written; linked into the run's `logs/`.
    logs: PathBuf,
    /// `events.jsonl`, with the lines not yet written out (see [`RunJournal::flush`]); `None`
    /// once writing it failed.
    events: Option<Chunked<File>>,
    /// When the lines not yet written last went from none to some, so no later than the
    /// oldest of them was recorded; `None` when there are none.
    waiting_since: Option<Instant>,
    /// Where each event is serialized before it is spliced into its line.
    scratch: Vec<u8>,
    /// For events reported without a time.
    start: Instant,
    /// The first problem writing the journal; later ones are dropped.
    problem: Option<String>,
}

/// What `summary.json` holds.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub version: u32,
    pub run_id: String,
    pub workflow: &'a str,
    pub status: RunStatus,
    /// When the run started, in UTC (RFC 3339).
    pub started_at: &'a str,
    pub duration_ms: u64,
    pub jobs: usize,
    pub seed: Option<u64>,
    pub keep_going: bool,
    /// The run whose successes this one kept (`--resume`).
    pub resumed_from: Option<&'a str>,
    pub counts: Counts,
    pub metrics: &'a RunMetrics,
}

/// How many steps ended how.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Succeeded steps served from the cache.
    pub cached: usize,
    /// Steps without a final state (the run was interrupted).
    pub unfinished: usize,
}

/// The part of a `summary.json` that `hermetic runs` shows.
#[derive(Debug, Clone, Deserialize)]
pub struct SummaryHead {
    pub version: u32,
    pub workflow: String,
    pub status: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub counts: Counts,
    #[serde(default)]
    pub resumed_from: Option<String>,
}

/// A past run, as `hermetic runs` lists it.
#[derive(Debug, Clone)]
pub struct PastRun {
    pub id: String,
    /// `None` when the run has no readable summary: it was killed, or is still running.
    pub summary: Option<SummaryHead>,
    /// Steps recorded as finished in its events.
    pub finished_steps: usize,
}

/// What `--resume` keeps from an earlier run: each step that succeeded in it.
#[derive(Debug, Clone, Default)]
pub struct Resumable {
    pub run_id: String,
    pub steps: HashMap<String, Kept>,
}

/// A step's success in an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub key: Digest,
    /// Its published output files, sorted by path.
    pub files: Vec<FileEntry>,
}

/// `.hermetic/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

impl RunJournal {
    /// Starts the journal of a new run. Then [`prune_runs`] removes the oldest runs beyond
    /// [`KEEP_RUNS`].
    pub fn create(state_dir: &Path) -> io::Result<Self> {
        let runs = runs_dir(state_dir);
        std::fs::create_dir_all(&runs).map_err(|e| at(&runs, e))?;
        let base = run_id(SystemTime::now());
        let mut id = base.clone();
        let mut n = 1;
        let dir = loop {
            let dir = runs.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                Err(e) => return Err(at(&dir, e)),
            }
        };
        let path = dir.join("events.jsonl");
        let events = File::create(&path).map_err(|e| at(&path, e))?;
        Ok(Self {
            id,
            dir,
            logs: state_dir.join("logs"),
            events: Some(Chunked::new(events)),
            waiting_since: None,
            scratch: Vec::new(),
            start: Instant::now(),
            problem: None,
        })
    }

    /// The run's id: its directory's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records `event`, which happened `at` after the start, and `files`, the outputs of a
    /// succeeded step.
    pub fn record(&mut self, at: Duration, event: &Event, files: &[FileEntry]) {
        if let Some(out) = &mut self.events {
            let pending = out.buffer();
            let before = pending.len();
            let t_us = crate::events::micros(at);
            let written = super::line::write(pending, &mut self.scratch, t_us, event, files);
            if written.is_err() {
                // No half line: the line is left out, and the problem reported.
                pending.truncate(before);
            }
            if before == 0 && !pending.is_empty() {
                self.waiting_since = Some(Instant::now());
            }
            let full = pending.len() >= CHUNK;
            if let Err(e) = written {
                let path = self.dir.join("events.jsonl");
                self.fail(at_path(&path, e));
            }
            if full {
                self.write_out(false);
            }
        }
        match event {
            Event::StepFinished {
                step, logs: true, ..
            } => self.link_logs(step),
            Event::RunFinished { .. } => self.flush_all(),
            _ => {}
        }
    }

    /// Writes out the whole chunks of the pending events, and the rest too once it has waited
    /// [`FLUSH_AFTER`]. The pool calls it every few milliseconds, through [`Reporter::flush`].
    pub fn flush(&mut self) {
        let all = self
            .waiting_since
            .is_some_and(|since| since.elapsed() >= FLUSH_AFTER);
        self.write_out(all);
    }

    /// Writes out every pending event now, however long it has waited.
    pub fn flush_all(&mut self) {
        self.write_out(true);
    }

    /// Writes out the pending events: `all` of them, or the whole chunks only.
    fn write_out(&mut self, all: bool) {
        let Some(out) = &mut self.events else {
            return;
        };
        let written = if all {
            out.write_rest()
        } else {
            out.write_whole()
        };
        if out.buffer().is_empty() {
            self.waiting_since = None;
        }
        if let Err(e) = written {
            let path = self.dir.join("events.jsonl");
            self.fail(at_path(&path, e));
            self.events = None;
            self.waiting_since = None;
        }
    }

    /// Links the step's logs into the run's directory.
    fn link_logs(&mut self, step: &str) {
        let logs = self.logs.join(step);
        for stream in ["stdout", "stderr"] {
            let from = logs.join(stream);
            if std::fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let dir = self.dir.join("logs").join(step);
            let to = dir.join(stream);
            let linked = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::hard_link(&from, &to))
                .or_else(|_| std::fs::copy(&from, &to).map(drop));
            if let Err(e) = linked {
                self.fail(at_path(&to, e));
            }
        }
    }

    fn fail(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// Writes `summary.json` and closes the journal. `Err` is the first problem the journal
    /// met, for a warning.
    pub fn finish(mut self, summary: &Summary<'_>) -> Result<(), String> {
        self.flush_all();
        let path = self.dir.join("summary.json");
        // Compact: it is read by programs (`jq .` shows it indented), and indenting made a
        // 20,000-step summary twice as large and twice as slow to write.
        if let Err(e) = super::summary_file::write(&path, summary) {
            self.fail(e.to_string());
        }
        self.problem.map_or(Ok(()), Err)
    }
}

/// Reports to a display and records in the journal.
pub struct Tee<'a> {
    pub display: &'a mut dyn Reporter,
    pub journal: &'a mut RunJournal,
}

impl std::fmt::Debug for Tee<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("journal", &self.journal)
            .finish()
    }
}

impl Reporter for Tee<'_> {
    fn event(&mut self, event: &Event) {
        let at = self.journal.start.elapsed();
        self.stamped(at, event);
    }

    fn stamped(&mut self, at: Duration, event: &Event) {
        let files: &[FileEntry] = match event {
            Event::StepFinished {
                status: StepStatus::Succeeded,
                files,
                ..
            } => files,
            _ => &[],
        };
        self.journal.record(at, event, files);
        self.display.stamped(at, event);
    }

    fn flush(&mut self) {
        self.journal.flush();
        self.display.flush();
    }

    fn flush_all(&mut self) {
        self.journal.flush_all();
        self.display.flush_all();
    }
}

/// The past runs, newest first.
pub fn list(state_dir: &Path) -> io::Result<Vec<PastRun>> {
    let runs = runs_dir(state_dir);
    let mut ids = run_ids(&runs)?;
    ids.reverse();
    Ok(ids
        .into_iter()
        .map(|id| {
            let dir = runs.join(&id);
            let summary = super::read_json::<SummaryHead>(&dir.join("summary.json"))
                .filter(|s| s.version == SUMMARY_VERSION);
            let finished_steps = read_events(&dir.join("events.jsonl"))
                .filter(|e| e["event"] == "step_finished")
                .count();
            PastRun {
                id,
                summary,
                finished_steps,
            }
        })
        .collect())
}

/// The newest run's successes, for `--resume`; `None` when there is no run.
pub fn resumable(state_dir: &Path) -> io::Result<Option<Resumable>> {
    let runs = runs_dir(state_dir);
    let Some(id) = run_ids(&runs)?.pop() else {
        return Ok(None);
    };
    let mut steps = HashMap::new();
    for event in read_events(&runs.join(&id).join("events.jsonl")) {
        if event["event"] != "step_finished" || event["status"] != "succeeded" {
            continue;
        }
        let (Some(step), Some(key)) = (event["step"].as_str(), event["key"].as_str()) else {
            continue;
        };
        let files = serde_json::from_value::<Vec<FileEntry>>(event["files"].clone());
        let (Ok(key), Ok(files)) = (
            key.parse::<Digest>(),
            files.or_else(|_| {
                // A step without outputs has no `files`.
                if event["files"].is_null() {
                    Ok(Vec::new())
                } else {
                    Err(())
                }
            }),
        ) else {
            continue;
        };
        steps.insert(step.to_string(), Kept { key, files });
    }
    Ok(Some(Resumable { run_id: id, steps }))
}

/// The events of an `events.jsonl`, skipping lines that do not parse (the last one of a killed
/// run may be cut short).
fn read_events(path: &Path) -> impl Iterator<Item = serde_json::Value> {
    let lines = File::open(path)
        .map(|f| io::BufReader::new(f).lines())
        .into_iter()
        .flatten();
    lines
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
}

/// The ids of the runs in `runs`, oldest first.
fn run_ids(runs: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(runs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(runs, e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_run_id(name))
        .collect();
    // Ids sort by time; a `-N` suffix (two runs in one millisecond) sorts after its base.
    ids.sort_by_key(|id| (id[..RUN_ID_LEN].to_string(), id.len(), id.clone()));
    Ok(ids)
}

/// Removes the oldest runs so that at most `keep` remain.
/// Removes the oldest runs of `state_dir` beyond the newest [`KEEP_RUNS`], the run in progress
/// among them. Removing a large run's events takes milliseconds, so `hermetic run` does it
/// while the steps run; a run killed meanwhile leaves old runs for the next one to remove.
pub fn prune_runs(state_dir: &Path) -> io::Result<()> {
    let runs = runs_dir(state_dir);
    let ids = run_ids(&runs)?;
    for id in &ids[..ids.len().saturating_sub(KEEP_RUNS)] {
        let dir = runs.join(id);
        std::fs::remove_dir_all(&dir).map_err(|e| at(&dir, e))?;
    }
    Ok(())
}

/// Length of a run id without a suffix: `YYYYMMDD-HHMMSS-mmm`.
const RUN_ID_LEN: usize = 19;

fn is_run_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= RUN_ID_LEN
        && b[..RUN_ID_LEN].iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 15) {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && (b.len() == RUN_ID_LEN || b[RUN_ID_LEN] == b'-')
}

/// A run id for a run started at `t`: its UTC time to the millisecond, which sorts by time.
pub fn run_id(t: SystemTime) -> String {
    let (date, time, millis) = utc(t);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{millis:03}",
        date.0, date.1, date.2, time.0, time.1, time.2
    )
}

/// `t` in RFC 3339, UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let (date, time, _) = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        date.0, date.1, date.2, time.0, time.1, time.2
    )
}

/// `(year, month, day), (hour, minute, second), milliseconds` of `t` in UTC.
fn utc(t: SystemTime) -> ((i64, u32, u32), (u64, u64, u64), u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    (
        civil_from_days(days),
        (rem / 3600, rem / 60 % 60, rem % 60),
        since.subsec_millis(),
    )
}

/// The proleptic Gregorian date of day `z` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), at_path(path, e))
}

fn at_path(path: &Path, e: io::Error) -> String {
    format!("cannot write `{}`: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_utc_times_that_sort() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_389_047_123);
        assert_eq!(run_id(t), "20261122-231047-123");
        assert_eq!(rfc3339(t), "2026-11-22T23:10:47Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        assert!(is_run_id("20261122-232407-123"));
        assert!(is_run_id("20261122-232407-123-2"));
        assert!(!is_run_id("20261122-232407"));
        assert!(!is_run_id("notes"));
    }

    #[test]
    fn old_runs_are_pruned_and_the_newest_is_resumable() {
        let state = tempfile::tempdir().unwrap();
        let runs = runs_dir(state.path());
        for i in 0..KEEP_RUNS + 3 {
            std::fs::create_dir_all(runs.join(format!("20260101-0000{:02}-000", i))).unwrap();
        }
        let mut journal = RunJournal::create(state.path()).unwrap();
        prune_runs(state.path()).unwrap();
        let files = vec![FileEntry {
            path: "a.txt".into(),
            digest: Digest::of(b"a"),
            size: 1,
        }];
        let finished = |step: &str, status| Event::StepFinished {
            step: step.into(),
            status,
            outcome: "success",
            exit_code: Some(0),
            message: None,
            attempts: 1,
            fuel_used: 1,
            peak_memory: 0,
            duration_ms: 0,
            outputs: vec!["a.txt".into()],
            allowed_failure: false,
            stderr_tail: String::new(),
            cached: false,
            resumed: false,
            key: Some(Digest::of(b"key")),
            files: files.clone(),
            logs: false,
        };
        let mut display = crate::events::JsonReporter;
        let mut tee = Tee {
            display: &mut display,
            journal: &mut journal,
        };
        tee.stamped(
            Duration::from_micros(5),
            &finished("a", StepStatus::Succeeded),
        );
        tee.stamped(Duration::from_micros(9), &finished("b", StepStatus::Failed));
        let id = journal.id().to_string();
        // Killed here: no summary, but the events are written out once they have waited.
        std::thread::sleep(FLUSH_AFTER);
        journal.flush();
        assert_eq!(run_ids(&runs).unwrap().len(), KEEP_RUNS);
        let resumable = resumable(state.path()).unwrap().unwrap();
        assert_eq!(resumable.run_id, id);
        assert_eq!(
            resumable.steps.into_iter().collect::<Vec<_>>(),
            [(
                "a".to_string(),
                Kept {
                    key: Digest::of(b"key"),
                    files
                }
            )]
        );
        let past = list(state.path()).unwrap();
        assert_eq!(past[0].id, id);
        assert!(past[0].summary.is_none());
        assert_eq!(past[0].finished_steps, 2);
    }

    #[test]
    fn a_line_is_the_time_then_the_event_then_its_files() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = RunJournal::create(state.path()).unwrap();
        let started = Event::StepStarted {
            step: "a".into(),
            attempt: 2,
        };
        journal.record(Duration::from_micros(7), &started, &[]);
        let files = [FileEntry {
            path: "o.txt".into(),
            digest: Digest::from_bytes([0; 32]),
            size: 3,
        }];
        journal.record(Duration::from_micros(1_234), &started, &files);
        journal.flush_all();
        let zeros = "0".repeat(64);
        assert_eq!(
            std::fs::read_to_string(journal.dir.join("events.jsonl")).unwrap(),
            format!(
                "{{\"t_us\":7,\"event\":\"step_started\",\"step\":\"a\",\"attempt\":2}}\n\
                 {{\"t_us\":1234,\"event\":\"step_started\",\"step\":\"a\",\"attempt\":2,\
                 \"files\":[{{\"path\":\"o.txt\",\"digest\":\"{zeros}\",\"size\":3}}]}}\n"
            )
        );
    }

    #[test]
    fn events_are_written_in_whole_chunks_and_the_rest_once_it_has_waited() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = RunJournal::create(state.path()).unwrap();
        let path = journal.dir.join("events.jsonl");
        let written = || std::fs::read(&path).unwrap();
        let started = |i: u32| Event::StepStarted {
            step: format!("step-{i}"),
            attempt: 1,
        };
        let mut expected = Vec::new();
        let mut scratch = Vec::new();
        for i in 0..3_000 {
            let at = Duration::from_micros(u64::from(i));
            journal.record(at, &started(i), &[]);
            super::super::line::write(&mut expected, &mut scratch, i.into(), &started(i), &[])
                .unwrap();
        }
        assert!(expected.len() > 2 * CHUNK, "{} bytes", expected.len());
        // Whole chunks as they fill, aligned to the start of the file.
        let whole = expected.len() / CHUNK * CHUNK;
        journal.flush();
        let early = written();
        assert!(early.len() == whole || early.len() == expected.len());
        assert_eq!(early, expected[..early.len()]);
        // The rest once it has waited.
        std::thread::sleep(FLUSH_AFTER);
        journal.flush();
        assert_eq!(written(), expected);
        // The end of the run writes everything at once.
        let finished = Event::RunFinished {
            status: RunStatus::Succeeded,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            cached: 0,
            duration_ms: 0,
        };
        journal.record(Duration::from_secs(1), &finished, &[]);
        super::super::line::write(&mut expected, &mut scratch, 1_000_000, &finished, &[]).unwrap();
        assert_eq!(written(), expected);
    }
}
