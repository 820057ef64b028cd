//! Section 4, the result cache: a workflow of copy steps run cold and fully cached, input hashing
//! against raw blake3, `hermetic run` against `make` on the same steps, and a check that a fully
//! cached run leaves published outputs alone.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hermetic_cache::{Digest, hash_file};

use crate::procs::{self, Finished};
use crate::report::{Figure, Table, bytes, count, mb_per_sec, per_sec, time};

/// The large-file hashing corpus: this many files of [`BIG_FILE`] bytes (64 MiB in all).
const BIG_FILES: usize = 256;
/// Size of each large file: above `hash_file`'s 64 KiB whole-file limit, so it streams.
const BIG_FILE: usize = 256 * 1024;
/// The small-file corpus: this many files of [`SMALL_FILE`] bytes (16 MiB in all), where the
/// cost of opening a file shows.
const SMALL_FILES: usize = 4096;
/// Size of each small file.
const SMALL_FILE: usize = 4 * 1024;

/// Every figure of the section, one value per round.
#[derive(Debug, Default)]
pub struct Figures {
    /// Wall time of a cold run of the N-step workflow (empty result store).
    cold: Figure,
    /// Wall time of the N-step workflow with `--no-cache`: every step runs, nothing is stored.
    uncached: Figure,
    /// Wall time of the second run on the same cache: every step a hit.
    cached: Figure,
    /// Wall time of a fully cached run of the 1-step workflow: the fixed cost of a run.
    cached_one: Figure,
    /// (cached − cached_one) / (N − 1).
    cached_step: Figure,
    /// (N − 1) / (cached − cached_one).
    hits_marginal: Figure,
    /// N / cached.
    hits_whole: Figure,
    /// `hash_file` over the large files, bytes per second.
    hash_big: Figure,
    /// `blake3::hash` over the same bytes in memory, bytes per second.
    raw_big: Figure,
    /// `hash_file` over the small files, bytes per second.
    hash_small: Figure,
    /// `hash_files` (the plan's input hashing) over the small files on every core, bytes per
    /// second.
    hash_small_parallel: Figure,
    /// `blake3::hash` over the same bytes in memory, bytes per second.
    raw_small: Figure,
    /// `make -jJ` with an empty `out/`.
    make_cold: Figure,
    /// `make -jJ` again, with nothing to do.
    make_done: Figure,
    /// `hermetic run --jobs J` on the equivalent workflow, empty result store and no outputs.
    run_cold: Figure,
    /// The same again, fully cached.
    run_cached: Figure,
    /// Published outputs compared before and after each fully cached run.
    untouched: Untouched,
}

/// The tally of the outputs-untouched check.
#[derive(Debug, Default)]
struct Untouched {
    /// Fully cached runs checked.
    runs: usize,
    /// Entries (files and directories) under the output directory, in the last check.
    entries: usize,
    /// Entries whose inode, mtime or ctime changed, or that appeared or vanished, over all runs.
    changed: usize,
}

/// Files to hash, on disk and in memory.
#[derive(Debug)]
struct Corpus {
    /// The files, in order.
    files: Vec<PathBuf>,
    /// Their contents, in the same order.
    contents: Vec<Vec<u8>>,
    /// Total bytes.
    total: u64,
}

impl Corpus {
    /// Writes `count` files of `size` pseudo-random bytes under `dir`.
    fn write(dir: &Path, count: usize, size: usize, seed: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let mut state = seed | 1;
        let mut files = Vec::with_capacity(count);
        let mut contents = Vec::with_capacity(count);
        for i in 0..count {
            let mut data = Vec::with_capacity(size);
            while data.len() < size {
                // xorshift64: cheap, and not compressible or all zeros.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                data.extend_from_slice(&state.to_le_bytes());
            }
            data.truncate(size);
            let path = dir.join(format!("f{i:05}.bin"));
            std::fs::write(&path, &data)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            files.push(path);
            contents.push(data);
        }
        Ok(Self {
            files,
            contents,
            total: (count * size) as u64,
        })
    }

    /// `hash_file` over every file, checking each digest against the one of its contents.
    fn check(&self) -> anyhow::Result<()> {
        for (path, data) in self.files.iter().zip(&self.contents) {
            let (digest, len) = hash_file(path)?;
            ensure!(
                digest == Digest::of(data) && len == data.len() as u64,
                "hash_file(`{}`) disagrees with blake3 over its bytes",
                path.display()
            );
        }
        Ok(())
    }

    /// Throughput of `hash_file` over every file, in bytes per second.
    fn hash_files(&self) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut total = 0;
        for path in &self.files {
            let (digest, len) = hash_file(path)?;
            std::hint::black_box(digest);
            total += len;
        }
        let elapsed = started.elapsed();
        ensure!(
            total == self.total,
            "hash_file read {total} bytes, not {}",
            self.total
        );
        Ok(self.total as f64 / elapsed.as_secs_f64())
    }

    /// Throughput of `hash_files` on `threads` threads over every file, in bytes per second.
    fn hash_files_parallel(&self, threads: usize) -> anyhow::Result<f64> {
        let paths: Vec<&Path> = self.files.iter().map(|p| p.as_path()).collect();
        let started = Instant::now();
        let hashed = hermetic_cache::hash_files(&paths, threads);
        let elapsed = started.elapsed();
        let mut total = 0;
        for (result, data) in hashed.into_iter().zip(&self.contents) {
            let (digest, len) = result?;
            ensure!(
                digest == Digest::of(data),
                "hash_files disagrees with blake3"
            );
            total += len;
        }
        ensure!(
            total == self.total,
            "hash_files read {total} bytes, not {}",
            self.total
        );
        Ok(self.total as f64 / elapsed.as_secs_f64())
    }

    /// Throughput of `blake3::hash` over the same bytes, already in memory, in bytes per second.
    fn hash_raw(&self) -> f64 {
        let started = Instant::now();
        for data in &self.contents {
            std::hint::black_box(blake3::hash(std::hint::black_box(data)));
        }
        self.total as f64 / started.elapsed().as_secs_f64()
    }
}

/// Inode, mtime and ctime (seconds and nanoseconds) of every entry under the output directory,
/// by relative path.
type Snapshot = BTreeMap<PathBuf, (u64, i64, i64, i64, i64)>;

/// Takes a [`Snapshot`] of everything under `root` (not `root` itself), without following links.
fn snapshot(root: &Path) -> anyhow::Result<Snapshot> {
    let mut out = Snapshot::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let rel = entry.path().strip_prefix(root)?.to_path_buf();
            out.insert(
                rel,
                (
                    meta.ino(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.ctime(),
                    meta.ctime_nsec(),
                ),
            );
        }
    }
    Ok(out)
}

/// How many entries differ between two snapshots (changed, added or removed).
fn differences(before: &Snapshot, after: &Snapshot) -> usize {
    let changed = before
        .iter()
        .filter(|(path, stamp)| after.get(*path) != Some(stamp))
        .count();
    changed + after.keys().filter(|p| !before.contains_key(*p)).count()
}

/// Removes `path` and everything under it, if it exists.
fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// Copies the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create `{}`", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read `{}`", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The section's workflows, Makefile, corpora and state between rounds.
#[derive(Debug)]
pub struct Bench {
    /// The `hermetic` binary.
    hermetic: PathBuf,
    /// The section's work directory.
    work: PathBuf,
    /// Steps in the large workflow.
    steps: usize,
    /// Steps in the workflow and Makefile compared with `make`.
    make_steps: usize,
    /// `--jobs` for `hermetic run` and `-j` for `make`.
    jobs: usize,
    /// Rounds that include a cold run of the large workflow.
    cold_rounds: usize,
    /// The large workflow.
    many: PathBuf,
    /// A 1-step workflow of the same kind.
    one: PathBuf,
    /// The workflow compared with `make`.
    vs_make: PathBuf,
    /// `make` on `PATH`, and the directory of the generated Makefile.
    make: Option<(PathBuf, PathBuf)>,
    /// A cache directory whose `compiled/` holds the copy guest, to seed fresh caches with.
    template: PathBuf,
    /// The cache of the last cold run of the large workflow, which the cached runs use.
    cache: PathBuf,
    /// Large files to hash.
    big: Corpus,
    /// Small files to hash.
    small: Corpus,
}

impl Bench {
    /// Generates the workflows, the Makefile and the corpora under `work`, runs everything once
    /// (untimed: the binaries, the copy guest's compiled module and the files are then warm),
    /// and checks `hash_file` against raw blake3.
    pub fn new(
        hermetic: &Path,
        copy: &Path,
        work: &Path,
        args: &crate::Args,
    ) -> anyhow::Result<Self> {
        ensure!(
            args.cache_steps >= 2 && args.make_steps >= 1 && args.cache_jobs >= 1,
            "--cache-steps must be at least 2, --make-steps and --cache-jobs at least 1"
        );
        let make = crate::artifacts::on_path("make").map(|m| (m, work.join("make")));
        let bench = Self {
            hermetic: hermetic.to_path_buf(),
            work: work.to_path_buf(),
            steps: args.cache_steps,
            make_steps: args.make_steps,
            jobs: args.cache_jobs,
            cold_rounds: args.cold_rounds.clamp(1, args.rounds),
            many: procs::write_copy_workflow(&work.join("many"), args.cache_steps, copy)?,
            one: procs::write_copy_workflow(&work.join("one"), 1, copy)?,
            vs_make: procs::write_copy_workflow(&work.join("vs-make"), args.make_steps, copy)?,
            make,
            template: work.join("cache-template"),
            cache: work.join("cache-template"),
            big: Corpus::write(&work.join("hash-big"), BIG_FILES, BIG_FILE, 0x5eed)?,
            small: Corpus::write(&work.join("hash-small"), SMALL_FILES, SMALL_FILE, 0xcafe)?,
        };
        let (_, done) = bench.run(&bench.template, &bench.one)?;
        ensure!(
            done.succeeded == 1,
            "the 1-step copy workflow did not succeed"
        );
        ensure!(
            bench.template.join("compiled").is_dir(),
            "`hermetic run` left no `compiled/` in its cache directory `{}`",
            bench.template.display()
        );
        bench.big.check()?;
        bench.small.check()?;
        if let Some((_, dir)) = &bench.make {
            procs::write_makefile(dir, bench.make_steps)?;
            bench.make_cold(dir)?;
        }
        Ok(bench)
    }

    /// `hermetic run --json` of `workflow` on `cache`.
    fn run(&self, cache: &Path, workflow: &Path) -> anyhow::Result<(Duration, Finished)> {
        procs::hermetic_run_json(&self.hermetic, cache, workflow, self.jobs)
    }

    /// A timed run that must serve all of `steps` steps from the cache.
    fn run_cached(&self, cache: &Path, workflow: &Path, steps: usize) -> anyhow::Result<f64> {
        let (t, done) = self.run(cache, workflow)?;
        ensure!(
            done.succeeded == steps && done.cached == steps,
            "`{}` on a warm cache: {} of {steps} steps succeeded, {} from the cache",
            workflow.display(),
            done.succeeded,
            done.cached
        );
        Ok(t.as_secs_f64())
    }

    /// A timed cold run of `workflow` (`steps` steps): a fresh cache directory `cache`, with
    /// only the compiled copy guest in it, and no published outputs.
    fn run_cold(&self, cache: &Path, workflow: &Path, steps: usize) -> anyhow::Result<f64> {
        remove(cache)?;
        copy_tree(&self.template.join("compiled"), &cache.join("compiled"))?;
        if let Some(dir) = workflow.parent() {
            remove(&dir.join(".hermetic"))?;
        }
        let (t, done) = self.run(cache, workflow)?;
        ensure!(
            done.succeeded == steps && done.cached == 0,
            "`{}` on a fresh cache: {} of {steps} steps succeeded, {} from the cache",
            workflow.display(),
            done.succeeded,
            done.cached
        );
        Ok(t.as_secs_f64())
    }

    /// A timed `make` with an empty `out/`.
    fn make_cold(&self, dir: &Path) -> anyhow::Result<Duration> {
        let Some((make, _)) = &self.make else {
            return Ok(Duration::ZERO);
        };
        let out = dir.join("out");
        remove(&out)?;
        std::fs::create_dir(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
        procs::make_run(make, dir, self.jobs)
    }

    /// One round of every figure of the section. Rounds up to `--cold-rounds` start with a cold
    /// run of the large workflow on a fresh cache; later rounds reuse the last one's cache.
    pub fn round(&mut self, round: usize, f: &mut Figures) -> anyhow::Result<()> {
        let n = self.steps;
        if round <= self.cold_rounds {
            remove(&self.many.with_file_name(".hermetic"))?;
            let uncached =
                procs::hermetic_run(&self.hermetic, &self.template, &self.many, self.jobs)?;
            f.uncached.push(uncached.as_secs_f64());
            let fresh = self.work.join(format!("cache-{round}"));
            f.cold.push(self.run_cold(&fresh, &self.many, n)?);
            // The 1-step workflow's first run on this cache, untimed.
            self.run(&fresh, &self.one)?;
            if self.cache != self.template {
                remove(&self.cache)?;
            }
            self.cache = fresh;
        }
        let published = self.many.with_file_name(".hermetic").join("out");
        let before = snapshot(&published)?;
        let cached = self.run_cached(&self.cache, &self.many, n)?;
        let after = snapshot(&published)?;
        f.untouched.runs += 1;
        f.untouched.entries = after.len();
        f.untouched.changed += differences(&before, &after);
        let one = self.run_cached(&self.cache, &self.one, 1)?;
        f.cached.push(cached);
        f.cached_one.push(one);
        f.cached_step.push((cached - one) / (n - 1) as f64);
        f.hits_marginal.push((n - 1) as f64 / (cached - one));
        f.hits_whole.push(n as f64 / cached);

        f.hash_big.push(self.big.hash_files()?);
        f.raw_big.push(self.big.hash_raw());
        f.hash_small.push(self.small.hash_files()?);
        f.hash_small_parallel
            .push(self.small.hash_files_parallel(threads())?);
        f.raw_small.push(self.small.hash_raw());

        if let Some((make, dir)) = &self.make {
            f.make_cold.push(self.make_cold(dir)?.as_secs_f64());
            f.make_done
                .push(procs::make_run(make, dir, self.jobs)?.as_secs_f64());
            let m = self.make_steps;
            let cache = self.work.join("cache-vs-make");
            f.run_cold.push(self.run_cold(&cache, &self.vs_make, m)?);
            f.run_cached
                .push(self.run_cached(&cache, &self.vs_make, m)?);
        }
        Ok(())
    }

    /// Adds the section to the table.
    pub fn print(&self, t: &mut Table, f: &Figures, copy_size: u64) {
        let (n, j) = (self.steps, self.jobs);
        t.heading(format!(
            "4. The result cache: copy.wasm ({}), a 64-byte input and one output per step, -j{j}",
            bytes(copy_size)
        ));
        t.time(
            format!("no result cache: {} steps, --no-cache", count(n)),
            &f.uncached,
            None,
        );
        t.time(
            format!("cold: {} steps, fresh cache", count(n)),
            &f.cold,
            Some(f.uncached.median()),
        );
        let faster = f.cold.median() / f.cached.median();
        t.time_with(
            format!("fully cached: {} steps, second run", count(n)),
            &f.cached,
            format!("{faster:.1}× faster"),
        );
        t.time(
            "fully cached: 1 step, the whole process",
            &f.cached_one,
            None,
        );
        t.time(
            format!(
                "fully cached, per step: ({} − 1 step) / {}",
                count(n),
                count(n - 1)
            ),
            &f.cached_step,
            None,
        );
        t.note(format!(
            "no-cache and cold rows: the first {} rounds only, no published outputs before; cold \
             = a fresh cache directory holding only the copy guest's compiled module, so an \
             empty result store (ratio = ÷ --no-cache: the cost of storing results).",
            f.cold.rounds.len()
        ));
        let cached = f.cached.median();
        t.note(format!(
            "target: fully cached {} steps ≤ 1 s: {} ({}).",
            count(n),
            time(cached),
            if cached <= 1.0 { "met" } else { "not met" }
        ));
        t.value_with(
            "cache hits per second, marginal",
            &f.hits_marginal,
            per_sec,
            String::new(),
        );
        t.value_with(
            "cache hits per second, whole run",
            &f.hits_whole,
            per_sec,
            String::new(),
        );
        t.note(format!(
            "marginal = {} / (fully cached {} steps − fully cached 1 step), without the \
             process's fixed cost; whole run = {} / fully cached wall time.",
            count(n - 1),
            count(n),
            count(n)
        ));
        let ratio = |fig: &Figure, raw: &Figure| format!("{:.2}×", fig.median() / raw.median());
        t.value_with(
            format!(
                "hash_file: {BIG_FILES} files × {} ({})",
                bytes(BIG_FILE as u64),
                bytes(self.big.total)
            ),
            &f.hash_big,
            mb_per_sec,
            ratio(&f.hash_big, &f.raw_big),
        );
        t.value_with(
            "raw blake3::hash, the same bytes in memory",
            &f.raw_big,
            mb_per_sec,
            ratio(&f.raw_big, &f.raw_big),
        );
        t.value_with(
            format!(
                "hash_file: {SMALL_FILES} files × {} ({})",
                bytes(SMALL_FILE as u64),
                bytes(self.small.total)
            ),
            &f.hash_small,
            mb_per_sec,
            ratio(&f.hash_small, &f.raw_small),
        );
        t.value_with(
            "raw blake3::hash, the same bytes in memory",
            &f.raw_small,
            mb_per_sec,
            ratio(&f.raw_small, &f.raw_small),
        );
        t.value_with(
            format!(
                "hash_files on {} threads (the plan's input hashing), the same files",
                threads()
            ),
            &f.hash_small_parallel,
            mb_per_sec,
            ratio(&f.hash_small_parallel, &f.raw_small),
        );
        let big = f.hash_big.median() / f.raw_big.median();
        let small = f.hash_small.median() / f.raw_small.median();
        t.note(format!(
            "single-threaded unless the row says otherwise, page cache hot; ratio = ÷ raw \
             blake3 (one thread) on the same files. target: hashing ≥ 50% of raw blake3: {:.0}% \
             on {} files ({}), {:.0}% on {} files ({}) with `hash_file` on one thread.",
            big * 100.0,
            bytes(BIG_FILE as u64),
            if big >= 0.5 { "met" } else { "not met" },
            small * 100.0,
            bytes(SMALL_FILE as u64),
            if small >= 0.5 { "met" } else { "not met" },
        ));
        let m = self.make_steps;
        if self.make.is_some() {
            t.time(
                format!("make -j{j}: {m} `cp` steps, cold"),
                &f.make_cold,
                None,
            );
            t.time(format!("make -j{j}: up to date"), &f.make_done, None);
            t.time(
                format!("hermetic run -j{j}: {m} copy steps, cold"),
                &f.run_cold,
                Some(f.make_cold.median()),
            );
            t.time(
                format!("hermetic run -j{j}: fully cached"),
                &f.run_cached,
                Some(f.make_done.median()),
            );
            let cold = f.run_cold.median() / f.make_cold.median();
            let done = f.run_cached.median() / f.make_done.median();
            t.note(format!(
                "same inputs; cold = make with an empty out/, hermetic with an empty result store \
                 (compiled module kept) and no outputs; ratio = ÷ the make row above it. targets: \
                 cold ≤ 1.00× make cold: {cold:.2}× ({}); fully cached ≤ 2.00× make up to date: \
                 {done:.2}× ({}).",
                if cold <= 1.0 { "met" } else { "not met" },
                if done <= 2.0 { "met" } else { "not met" },
            ));
        } else {
            t.note("hermetic against make: skipped, no `make` on PATH.");
        }
        let u = &f.untouched;
        t.note(format!(
            "outputs untouched: {} ({} files and directories under .hermetic/out, inode, mtime \
             and ctime compared across {} fully cached runs{}).",
            if u.changed == 0 { "yes" } else { "no" },
            u.entries,
            u.runs,
            if u.changed == 0 {
                String::new()
            } else {
                format!("; {} changed", u.changed)
            }
        ));
    }
}

/// The threads `hash_files` gets in a plan: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
