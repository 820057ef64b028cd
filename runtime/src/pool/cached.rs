//! A step through the cache: look its action key up, restore a hit without instantiating the
//! module, and store a fresh success.
//!
//! A hit is served only when everything checks out: the entry and every blob it names verify
//! against their blake3 digests, the archive unpacks within its limits to exactly the files the
//! entry lists, and the recorded fuel and peak memory fit within the step's current limits
//! (a re-run under a tighter limit would fail, so serving the success would be wrong). Anything
//! else is a miss and the step runs. A cache that cannot be read or written never fails a step:
//! the problem is reported as a warning and the run goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hermetic_cache::archive::{ArchiveLimits, pack_dir, unpack};
use hermetic_cache::{ActionEntry, Digest, FileEntry, NewResult, Store, hash_file, tree_digest};
use walkdir::WalkDir;

use super::attempt::{AttemptResult, Observers, Runner, run_attempt, save_logs};
use super::calls::StepCalls;
use super::commit::CommitQueue;
use super::leftovers::Leftovers;
use super::outbox::Outbox;
use super::retry::{self, Retrying};
use super::scratch::ScratchPool;
use crate::events::Event;
use crate::journal::runs::Resumable;
use crate::outputs::publish_staged;
use crate::plan::{Plan, PlannedStep};
use crate::sandbox::{Heartbeat, HostCallSink, Sandbox};

/// How a run uses the cache.
#[derive(Debug, Clone)]
pub struct CacheUse {
    /// The store: the local cache, possibly in front of a remote one.
    pub store: Arc<dyn Store>,
    /// Serve hits. Off for `hermetic verify`, which must re-run.
    pub read: bool,
    /// Store successes.
    pub write: bool,
}

/// What the executor needs to run one step.
#[derive(Debug)]
pub(crate) struct StepContext {
    pub plan: Arc<Plan>,
    pub sandbox: Arc<Sandbox>,
    pub scratch: Arc<ScratchPool>,
    pub cache: Option<CacheUse>,
    /// The engine digest, computed once per run for the keys.
    pub engine: String,
    /// Events from inside a step, forwarded to the reporter by the executor.
    pub events: Arc<Outbox>,
    /// Where fresh successes go to be stored; `None` when the run stores nothing.
    pub commits: Option<CommitQueue>,
    /// The run's seed, for the retries' jitter.
    pub seed: u64,
    /// `--resume`: the successes of the run this one continues.
    pub resume: Option<Arc<Resumable>>,
    /// Faults to inject (`hermetic chaos`).
    pub faults: Option<Arc<crate::chaos::FaultPlan>>,
    /// `--remote-exec`: attempts run on a REAPI server's bots.
    pub remote: Option<Arc<crate::remote::RemoteExec>>,
    /// What earlier runs left of each step's logs and published outputs.
    pub leftovers: Leftovers,
}

/// How one dispatch of a step ended.
#[derive(Debug)]
pub(crate) enum StepEnd {
    /// The step reached its final state.
    Done(Box<AttemptResult>),
    /// The attempt failed and the step is tried again after a delay; the event says so.
    Retry(Box<(Retrying, Event)>),
}

/// Runs step `i` through the cache: a first dispatch looks its key up, and runs one attempt on
/// a miss; a retry (`retrying` holds the failed attempts) runs the next attempt. `deps` holds
/// the Merkle roots of its dependencies' outputs (see `graph::dep_trees`).
pub(crate) async fn run_step(
    ctx: &StepContext,
    lane: usize,
    i: usize,
    deps: Vec<Digest>,
    retrying: Option<Retrying>,
) -> StepEnd {
    let step = &ctx.plan.steps[i];
    // Hashed from the plan, not from `KeyComponents`: the key's record rebuilds those only
    // if it needs them (see `RunSummary::key_components`).
    let key = ctx.plan.action_key(step, &ctx.engine, &deps);
    let mut warnings = Vec::new();

    // `--resume`: a step that succeeded in the run being continued keeps its result, if its
    // key is the same and its published outputs are still exactly what it left.
    if retrying.is_none()
        && let Some(kept) = ctx.resume.as_ref().and_then(|r| r.steps.get(&step.name))
        && kept.key == key
        && matches_on_disk(&published_dir(&ctx.plan, step), &kept.files)
    {
        let mut result = AttemptResult::resumed(kept.files.clone());
        // The logs it left, if any, are still in place.
        result.logs = ctx.leftovers.logs(i);
        result.key = Some(key);
        return StepEnd::Done(Box::new(result));
    }

    if retrying.is_none()
        && let Some(cache) = ctx.cache.as_ref().filter(|c| c.read)
    {
        // On the pool's worker thread: blocking here is fine.
        // Boxed, like every future a no-op step does not await (see `Sandbox::run_in_lane`).
        let lookup = Box::pin(lookup_and_restore(
            &*cache.store,
            &ctx.plan,
            &ctx.leftovers,
            step,
            &key,
        ));
        match lookup.await {
            Ok(Some(mut hit)) => {
                hit.key = Some(key);
                return StepEnd::Done(Box::new(hit));
            }
            Ok(None) => {}
            Err(warning) => warnings.push(warning),
        }
    }

    let attempt = retrying.as_ref().map_or(1, |r| r.attempt);
    if let Some(r) = &retrying {
        // Due already when a worker took it from the queues; under `--seed` the step is
        // dispatched in the next round and waits here.
        tokio::time::sleep_until(r.not_before.into()).await;
    }
    ctx.events.send(Event::StepStarted {
        step: step.name.clone(),
        attempt,
    });
    let def = ctx.plan.step_def(step);
    let observers = Observers {
        heartbeat: def.stuck_after.map(|_| Arc::new(Heartbeat::new())),
        host_calls: step.program.calls_host.then(|| {
            Arc::new(StepCalls::new(&step.name, ctx.events.clone())) as Arc<dyn HostCallSink>
        }),
        fault: ctx.faults.as_ref().and_then(|f| f.guest_fault(i, attempt)),
    };
    let runner = match &ctx.remote {
        Some(remote) => Runner::Remote(remote),
        None => Runner::Local(&ctx.sandbox, lane),
    };
    // Boxed: the attempt's future is 2 KiB, and held inline it made this one larger, copied
    // whole each time it moved (into the `select!`, into the worker's runtime).
    let running = Box::pin(run_attempt(
        &ctx.plan,
        runner,
        &ctx.scratch,
        &ctx.leftovers,
        step,
        observers.clone(),
    ));
    let mut result = match (def.stuck_after, &observers.heartbeat) {
        (Some(after), Some(heartbeat)) => tokio::select! {
            // The attempt first: a step that ends in its first poll never starts the watch
            // (nor registers its timer).
            biased;
            result = running => result,
            never = watch_for_silence(heartbeat, after, &ctx.events, &step.name) => match never {},
        },
        _ => running.await,
    };
    let (mut failed, earlier) =
        retrying.map_or((Vec::new(), Duration::ZERO), |r| (r.failed, r.duration));
    if let Some(delay) = retry::decide(def, &mut result, attempt, ctx.seed, i) {
        let message = result.message.clone().unwrap_or_default();
        failed.push((attempt, message.clone()));
        let event = Event::StepRetrying {
            step: step.name.clone(),
            attempt,
            message,
            delay_ms: crate::events::millis(delay),
        };
        let retrying = Retrying {
            attempt: attempt + 1,
            failed,
            duration: earlier + result.duration,
            not_before: Instant::now() + delay,
        };
        return StepEnd::Retry(Box::new((retrying, event)));
    }
    result.attempts = attempt;
    result.duration += earlier;
    if result.succeeded
        && let Some(commits) = &ctx.commits
    {
        let plan = &ctx.plan;
        let saved = Saved {
            files: result.output_files.clone(),
            stdout: std::mem::take(&mut result.stdout),
            stderr: std::mem::take(&mut result.stderr),
            fuel_used: result.fuel_used,
            peak_memory: result.peak_memory,
            exit_code: result.exit_code.unwrap_or(0),
            duration_ms: result.duration.as_millis() as u64,
        };
        let published = published_dir(plan, step);
        match pack(&published, &plan.empty_dir(), key, saved) {
            Ok(new) => commits.submit(&step.name, new),
            Err(w) => warnings.push(w),
        }
    }
    result.key = Some(key);
    result.warnings.extend(warnings);
    StepEnd::Done(Box::new(result))
}

/// Reports a `step_stuck` event once the guest has been silent for `after`, then waits for
/// the attempt to end (it never returns; the attempt wins the race).
async fn watch_for_silence(
    heartbeat: &Heartbeat,
    after: Duration,
    events: &Outbox,
    step: &str,
) -> std::convert::Infallible {
    loop {
        let silent = heartbeat.silent_for();
        if silent >= after {
            events.send(Event::StepStuck {
                step: step.to_string(),
                silent_ms: crate::events::millis(silent),
            });
            return std::future::pending().await;
        }
        tokio::time::sleep(after - silent).await;
    }
}

/// Where a step's outputs are published.
fn published_dir(plan: &Plan, step: &PlannedStep) -> PathBuf {
    plan.out_root.join(&step.name)
}

/// Looks `key` up and, on a hit, puts the outputs and logs in place. `Ok(None)` is a miss;
/// `Err` is a miss with a warning (the store could not answer).
async fn lookup_and_restore(
    store: &dyn Store,
    plan: &Plan,
    leftovers: &Leftovers,
    step: &PlannedStep,
    key: &Digest,
) -> Result<Option<AttemptResult>, String> {
    let entry = match store.get_action(key).await {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cache lookup failed: {e}")),
    };
    if entry.fuel_used > step.limits.fuel || entry.peak_memory > step.limits.memory {
        tracing::info!(step = %step.name, "cached result exceeds the step's current limits; re-running");
        return Ok(None);
    }
    // DiskStore checks this on read; any other store's entry is checked here, because what
    // follows relies on it (sorted, relative paths; a tree digest that matches the list).
    if let Err(defect) = entry.check() {
        return Err(format!(
            "cached entry {} is inconsistent: {defect}; re-running",
            key.short()
        ));
    }
    let published = published_dir(plan, step);
    if !matches_on_disk(&published, &entry.output_files) {
        let Some(archive) = fetch(store, &entry.outputs_archive).await? else {
            return Ok(None);
        };
        let staging = plan
            .out_root
            .join(format!(".restore-{}-{}", step.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&plan.out_root)
            .map_err(|e| format!("cannot create `{}`: {e}", plan.out_root.display()))?;
        match unpack(
            &archive,
            &staging,
            &restore_limits(&entry, step.limits.output),
        ) {
            Ok(files) if files == entry.output_files => {}
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(format!(
                    "cached outputs (archive {}) do not match their entry; re-running",
                    entry.outputs_archive.short()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "cached outputs (archive {}) rejected: {e}; re-running",
                    entry.outputs_archive.short()
                ));
            }
        }
        if let Err(e) = publish_staged(&staging, &plan.out_root, &step.name) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!(
                "cannot restore the outputs of `{}`: {e}",
                step.name
            ));
        }
        leftovers.wrote_published(step.index);
    }
    let mut streams = [Vec::new(), Vec::new()];
    for (bytes, digest) in streams.iter_mut().zip([entry.stdout, entry.stderr]) {
        if digest != Digest::of(b"") {
            match fetch(store, &digest).await? {
                Some(b) => *bytes = b,
                None => return Ok(None),
            }
        }
    }
    let [stdout, stderr] = &streams;
    let logs = save_logs(
        &plan.state_dir,
        &step.name,
        stdout,
        stderr,
        leftovers.logs(step.index),
    )?;
    if logs {
        leftovers.wrote_logs(step.index);
    }
    Ok(Some(AttemptResult {
        logs,
        ..AttemptResult::cached(&entry)
    }))
}

/// How much an archive may unpack to: what its (verified) entry says it holds, plus the tar
/// framing, never more than the step's output limit. A zstd or tar bomb stops at once instead
/// of at the generic limits.
fn restore_limits(entry: &ActionEntry, output_limit: u64) -> ArchiveLimits {
    let content: u64 = entry.output_files.iter().map(|f| f.size).sum();
    // At most one directory entry per path component, plus the files themselves.
    let entries: u64 = entry
        .output_files
        .iter()
        .map(|f| f.path.split('/').count() as u64)
        .sum();
    // Each entry: a header, a possible long-name record (header + name), padding to 512.
    let framing = (entries + 2) * 3 * 512
        + entry
            .output_files
            .iter()
            .map(|f| f.path.len() as u64)
            .sum::<u64>()
        + 10_240;
    ArchiveLimits {
        max_bytes: (content + framing).min(output_limit.max(framing)),
        max_entries: entries.max(1),
    }
}

/// A verified blob, `None` when the store lacks it.
async fn fetch(store: &dyn Store, digest: &Digest) -> Result<Option<Vec<u8>>, String> {
    store
        .get_blob(digest)
        .await
        .map_err(|e| format!("cache read failed: {e}"))
}

/// Whether `dir` holds exactly `files` (no more, no fewer, same content), so a hit need not
/// rewrite them. Symlinks or unreadable entries mean no.
fn matches_on_disk(dir: &Path, files: &[FileEntry]) -> bool {
    if std::fs::symlink_metadata(dir).is_err() {
        return files.is_empty();
    }
    let mut found = 0;
    for entry in WalkDir::new(dir).follow_links(false).min_depth(1) {
        let Ok(entry) = entry else { return false };
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if !ft.is_file() {
            return false;
        }
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            return false;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let Ok(i) = files.binary_search_by(|f| f.path.as_str().cmp(&rel)) else {
            return false;
        };
        match hash_file(entry.path()) {
            Ok((digest, size)) if digest == files[i].digest && size == files[i].size => found += 1,
            _ => return false,
        }
    }
    found == files.len()
}

/// What a fresh success leaves for the cache.
struct Saved {
    files: Vec<FileEntry>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    fuel_used: u64,
    peak_memory: u64,
    exit_code: i32,
    duration_ms: u64,
}

/// Packs the published outputs into the result to store under `key`. The committer stores
/// its blobs before the entry that names them, so no reader ever finds an entry whose blobs
/// were not yet written.
fn pack(published: &Path, empty: &Path, key: Digest, saved: Saved) -> Result<NewResult, String> {
    let root = if std::fs::symlink_metadata(published).is_ok() {
        published
    } else {
        empty
    };
    let (archive, files) =
        pack_dir(root).map_err(|e| format!("cannot archive `{}`: {e}", root.display()))?;
    if files != saved.files {
        // Something changed the published files since they were collected. Store nothing
        // rather than pair this key with outputs the step did not produce.
        return Err(format!(
            "`{}` changed while it was being cached; not cached",
            published.display()
        ));
    }
    let entry = ActionEntry {
        outputs_archive: Digest::of(&archive),
        output_tree: tree_digest(&files),
        output_files: files,
        stdout: Digest::of(&saved.stdout),
        stderr: Digest::of(&saved.stderr),
        exit_code: saved.exit_code,
        fuel_used: saved.fuel_used,
        peak_memory: saved.peak_memory,
        duration_ms: saved.duration_ms,
    };
    let mut blobs = vec![(entry.outputs_archive, archive)];
    for (digest, bytes) in [(entry.stdout, saved.stdout), (entry.stderr, saved.stderr)] {
        if !blobs.iter().any(|(d, _)| *d == digest) {
            blobs.push((digest, bytes));
        }
    }
    Ok(NewResult { key, entry, blobs })
}
