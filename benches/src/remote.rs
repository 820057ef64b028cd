//! Section 6, remote (issue 7), against a real BuildGrid on loopback started by
//! `scripts/buildgrid`: a cache hit from the remote store against one from the local store,
//! upload throughput against writing the local store, and the overhead of running a step on a
//! `hermetic worker` through BuildGrid's scheduler against running it here.
//!
//! The hits are the full lookup a step does: the action entry (verified) and its outputs
//! archive (verified), through a store opened afresh each round, as a new CI machine would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use hermetic_cache::{
    ActionEntry, Digest, DiskStore, NewResult, RemoteOptions, RemoteStore, Store, tree_digest,
};

use crate::procs;
use crate::report::{Figure, Table, mb_per_sec, time};

#[path = "../../tests/src/buildgrid.rs"]
mod buildgrid;

/// Results looked up per round.
const HITS: usize = 100;
/// Bytes of each result's outputs archive.
const ARCHIVE: usize = 16 * 1024;
/// Blobs and their size uploaded per round.
const UPLOADS: usize = 32;
const UPLOAD: usize = 1024 * 1024;
/// No-op steps run remotely per round, on two workers.
const EXEC_STEPS: usize = 20;

/// Every figure of the section, one value per round.
#[derive(Debug, Default)]
pub struct Figures {
    local_hit: Figure,
    remote_hit: Figure,
    local_put: Figure,
    remote_put: Figure,
    local_step: Figure,
    remote_step: Figure,
}

/// What the section keeps between rounds: the servers, the workers, the stored results.
pub struct Bench {
    rt: tokio::runtime::Runtime,
    cache_server: buildgrid::Server,
    exec_server: buildgrid::Server,
    workers: Vec<Child>,
    local_dir: PathBuf,
    keys: Vec<(Digest, Digest)>,
    hermetic: PathBuf,
    workflow: PathBuf,
    cache: PathBuf,
    round: u64,
}

impl std::fmt::Debug for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench").finish_non_exhaustive()
    }
}

impl Bench {
    /// Starts the servers and the workers, and stores [`HITS`] results in both stores.
    pub fn new(hermetic: &Path, noop: &Path, work: &Path) -> anyhow::Result<Self> {
        eprintln!("bench: remote: starting BuildGrid (cache, and exec with PostgreSQL)");
        let cache_server = buildgrid::Server::start_mode(buildgrid::Mode::Cache);
        let exec_server = buildgrid::Server::start_mode(buildgrid::Mode::Exec);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let local_dir = work.join("local-store");
        let local = DiskStore::open(&local_dir)?;
        let remote = rt.block_on(connect(&cache_server.url))?;
        let mut results = Vec::with_capacity(HITS);
        let mut keys = Vec::with_capacity(HITS);
        for i in 0..HITS {
            let (result, archive) = result(i as u64, ARCHIVE);
            keys.push((result.key, archive));
            results.push(result);
        }
        rt.block_on(async {
            local.put_results(&results).await?;
            remote.put_results(&results).await
        })?;
        let cache = work.join("exec-cache");
        let workflow = procs::write_workflow(&work.join("exec"), EXEC_STEPS, noop)?;
        let mut workers = Vec::new();
        for id in ["bench-a", "bench-b"] {
            workers.push(
                Command::new(hermetic)
                    .arg("--cache-dir")
                    .arg(&cache)
                    .args([
                        "worker",
                        "--server",
                        &exec_server.url,
                        "--id",
                        id,
                        "--jobs",
                        "1",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("cannot start a worker")?,
            );
        }
        let bench = Self {
            rt,
            cache_server,
            exec_server,
            workers,
            local_dir,
            keys,
            hermetic: hermetic.to_path_buf(),
            workflow,
            cache,
            round: 0,
        };
        // Untimed: compile the module, and let the workers register.
        bench.run_remote()?;
        Ok(bench)
    }

    /// One round of every figure.
    pub fn round(&mut self, f: &mut Figures) -> anyhow::Result<()> {
        self.round += 1;
        let local = DiskStore::open(&self.local_dir)?;
        f.local_hit
            .push_per(self.rt.block_on(hits(&local, &self.keys))?, HITS);
        let remote = self.rt.block_on(connect(&self.cache_server.url))?;
        f.remote_hit
            .push_per(self.rt.block_on(hits(&remote, &self.keys))?, HITS);

        // Fresh bytes every round, so that nothing is deduplicated.
        let uploads: Vec<NewResult> = (0..UPLOADS as u64)
            .map(|i| result(self.round << 32 | i, UPLOAD).0)
            .collect();
        let total = (UPLOADS * UPLOAD) as f64;
        let scratch = tempfile::tempdir()?;
        let fresh = DiskStore::open(scratch.path())?;
        let started = Instant::now();
        self.rt.block_on(fresh.put_results(&uploads))?;
        f.local_put.push(total / started.elapsed().as_secs_f64());
        let started = Instant::now();
        self.rt.block_on(remote.put_results(&uploads))?;
        f.remote_put.push(total / started.elapsed().as_secs_f64());

        let local_run = procs::hermetic_run(&self.hermetic, &self.cache, &self.workflow, 2)?;
        f.local_step.push_per(local_run, EXEC_STEPS);
        f.remote_step.push_per(self.run_remote()?, EXEC_STEPS);
        Ok(())
    }

    fn run_remote(&self) -> anyhow::Result<Duration> {
        let mut cmd = Command::new(&self.hermetic);
        cmd.arg("--cache-dir")
            .arg(&self.cache)
            .arg("run")
            .arg(&self.workflow)
            .args([
                "--jobs",
                "2",
                "--no-cache",
                "--remote-exec",
                &self.exec_server.url,
            ]);
        procs::run_quiet(cmd)
    }

    /// Adds the section to the table.
    pub fn print(&self, t: &mut Table, f: &Figures) {
        t.heading(format!(
            "6. Remote (BuildGrid 0.4.4 on loopback): {HITS} hits of a {} KiB archive, \
             {UPLOADS} × {} MiB uploaded, {EXEC_STEPS} no-op steps on 2 workers",
            ARCHIVE / 1024,
            UPLOAD >> 20
        ));
        t.time(
            "local cache hit (entry + archive, verified)",
            &f.local_hit,
            None,
        );
        t.time(
            "remote cache hit, SHA-256 ↔ BLAKE3 checked",
            &f.remote_hit,
            Some(f.local_hit.median()),
        );
        t.value_with(
            "local store writes",
            &f.local_put,
            mb_per_sec,
            String::new(),
        );
        t.value_with(
            "remote uploads",
            &f.remote_put,
            mb_per_sec,
            format!("{:.2}× local", f.remote_put.median() / f.local_put.median()),
        );
        t.time("a no-op step, `hermetic run -j2`", &f.local_step, None);
        t.time(
            "a no-op step, `--remote-exec` on 2 workers",
            &f.remote_step,
            Some(f.local_step.median()),
        );
        t.note(format!(
            "remote execution costs {} per step over a local run",
            time(f.remote_step.median() - f.local_step.median())
        ));
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<RemoteStore> {
    RemoteStore::connect(url, RemoteOptions::default())
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// The full lookup of every key: the entry, then the archive's bytes.
async fn hits(store: &dyn Store, keys: &[(Digest, Digest)]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for (key, archive) in keys {
        let entry = store
            .get_action(key)
            .await?
            .context("a stored result missed")?;
        anyhow::ensure!(entry.outputs_archive == *archive);
        store
            .get_blob(archive)
            .await?
            .context("an archive missed")?;
    }
    Ok(started.elapsed())
}

/// A result whose archive is `size` bytes derived from `seed`, and that archive's digest.
fn result(seed: u64, size: usize) -> (NewResult, Digest) {
    let mut archive = Vec::with_capacity(size);
    let mut state = blake3::Hasher::new();
    state.update(&seed.to_le_bytes());
    let mut reader = state.finalize_xof();
    archive.resize(size, 0);
    reader.fill(&mut archive);
    let stdout = format!("stdout {seed}\n").into_bytes();
    let stderr = Vec::new();
    let entry = ActionEntry {
        outputs_archive: Digest::of(&archive),
        output_files: Vec::new(),
        output_tree: tree_digest(&[]),
        stdout: Digest::of(&stdout),
        stderr: Digest::of(&stderr),
        exit_code: 0,
        fuel_used: 0,
        peak_memory: 0,
        duration_ms: 0,
    };
    let key = Digest::of(format!("bench key {seed}").as_bytes());
    let archive_digest = entry.outputs_archive;
    let blobs = vec![
        (entry.outputs_archive, archive),
        (entry.stdout, stdout),
        (entry.stderr, stderr),
    ];
    (NewResult { key, entry, blobs }, archive_digest)
}
