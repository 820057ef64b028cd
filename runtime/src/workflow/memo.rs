//! A memo of the checked workflow, so that a run of an unchanged workflow skips parsing,
//! decoding and validating it.
//!
//! Turning the YAML into checked steps is most of what a run does before its first step:
//! about 5 µs per step, 50 ms for 10,000 steps. It is a pure function of the source text (the
//! file's path only appears in messages and in [`Workflow::dir`], which are rebuilt), so its
//! result can be kept and reused while the text and this build of hermetic are unchanged.
//! Planning, which reads the filesystem and the environment, runs every time.
//!
//! # Where, and why there
//!
//! The memo of a workflow is `CACHE/parsed/<blake3 of its absolute path>.memo`, in the user's
//! cache (`--cache-dir`, `HERMETIC_CACHE_DIR`, `$XDG_CACHE_HOME/hermetic` or
//! `~/.cache/hermetic`), one per workflow file, replaced when the file changes. It is never in
//! the project: a memo is not validated again, so it must not be a file a checkout can bring
//! (anyone who can commit could forge steps that validation would refuse). The cache root is
//! already trusted that much, since it holds the compiled modules that hermetic loads as code.
//! `defaults.cache_dir` cannot move it, since it is only known once the workflow is read.
//! The cache keeps the [`KEEP_MEMOS`] most recently written memos: without a bound, a machine
//! that checks out to a new path for every CI job would keep one memo per job.
//!
//! # Layout
//!
//! ```text
//! magic        8 bytes   "hrmmemo\0"
//! build       32 bytes   blake3 of FORMAT and HERMETIC_SOURCE_FINGERPRINT (build.rs: every
//!                        source file of this crate and Cargo.lock)
//! source      32 bytes   blake3 of the workflow text
//! payload     32 bytes   blake3 of the bytes that follow
//! workflow     …         postcard of `Header`: the workflow's fields that come from its
//!                        text, but its steps
//! count        …         postcard of the number of steps (u64)
//! lengths  4 × count     the length of each step's postcard, u32 little-endian
//! steps        …         postcard of each step
//! ```
//!
//! The lengths let a large memo be decoded on every core at once, each step straight into its
//! place: a decoded step is 440 bytes, and on a virtual machine the fresh pages they fill cost
//! more than decoding does, so one thread took 5 ms for 10,000 steps.
//!
//! A memo is used only when every digest matches and the payload decodes to the end; anything
//! else (missing, stale, truncated, corrupt, written by another build) counts as a miss, and
//! the workflow is parsed again. Only a workflow with no diagnostic at all is remembered, so
//! that a memo never has to replay warnings; one with warnings is parsed every time. A memo
//! is written through a temporary file and a rename, so a reader never sees half of one; a
//! memo that cannot be written (read-only cache, full disk) costs nothing but the next run's
//! parse, and is logged at debug level.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::chaos::ChaosSection;
use super::{CircuitBreaker, Diagnostics, Step, Workflow, dir_of};

const MAGIC: &[u8; 8] = b"hrmmemo\0";

/// Bump when the layout changes in a way the fingerprint would not see.
const FORMAT: u32 = 3;

const HEADER: usize = MAGIC.len() + 3 * blake3::OUT_LEN;

/// Largest memo read: a checked workflow takes a few times the bytes of its source.
const MAX_MEMO_BYTES: u64 = 16 * super::node::MAX_SOURCE_BYTES as u64;

/// The fields of [`Workflow`] that come from its text, but its steps, in this order.
type Header = (
    String,
    PathBuf,
    Option<PathBuf>,
    Option<CircuitBreaker>,
    Option<ChaosSection>,
);

/// [`Header`], borrowed from a workflow to be encoded.
type HeaderOf<'a> = (
    &'a String,
    &'a PathBuf,
    &'a Option<PathBuf>,
    &'a Option<CircuitBreaker>,
    &'a Option<ChaosSection>,
);

/// The fields of `workflow` that [`Header`] holds.
fn header_of(workflow: &Workflow) -> HeaderOf<'_> {
    (
        &workflow.name,
        &workflow.out_dir,
        &workflow.cache_dir,
        &workflow.circuit_breaker,
        &workflow.chaos,
    )
}

/// How many memos a cache keeps, the most recently written; writing one removes the oldest
/// beyond them. A memo that is removed costs its workflow one parse.
const KEEP_MEMOS: usize = 64;

/// Fewer bytes than any step takes in a memo, its length included: so a memo of `n` bytes
/// holds fewer than `n / MIN_STEP_BYTES` steps, which bounds what a damaged count can make a
/// reader allocate.
const MIN_STEP_BYTES: usize = 16;

/// The memo of the workflow file `workflow`, in the cache root `cache_root`; `None` when the
/// working directory, which makes the path absolute, cannot be read.
pub(crate) fn memo_path(cache_root: &Path, workflow: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(workflow).ok()?;
    let key = blake3::hash(absolute.as_os_str().as_encoded_bytes()).to_hex();
    Some(
        cache_root
            .join("parsed")
            .join(format!("{}.memo", &key[..32])),
    )
}

/// The workflow `path_for_messages` whose text is `source`, from the memo at `memo` if it
/// holds this text's checked workflow.
pub(crate) fn read(
    memo: &Path,
    path_for_messages: &Path,
    source: &Arc<str>,
) -> Result<Workflow, String> {
    let file = std::fs::File::open(memo).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_MEMO_BYTES {
        return Err(format!("{len} bytes is larger than any memo"));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MEMO_BYTES), &mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a memo".to_owned());
    }
    let (digests, payload) = bytes[MAGIC.len()..].split_at(HEADER - MAGIC.len());
    let field = |i: usize| &digests[i * blake3::OUT_LEN..(i + 1) * blake3::OUT_LEN];
    if field(0) != build_digest().as_bytes() {
        return Err("written by another build".to_owned());
    }
    if field(1) != blake3::hash(source.as_bytes()).as_bytes() {
        return Err("the workflow changed".to_owned());
    }
    if field(2) != blake3::hash(payload).as_bytes() {
        return Err("corrupt: the payload does not match its digest".to_owned());
    }
    let corrupt = |e: postcard::Error| format!("corrupt: {e}");
    let (header, rest): (Header, _) = postcard::take_from_bytes(payload).map_err(corrupt)?;
    let (count, rest): (u64, _) = postcard::take_from_bytes(rest).map_err(corrupt)?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > rest.len() / MIN_STEP_BYTES {
        return Err(format!("corrupt: {count} steps in {} bytes", rest.len()));
    }
    let (lengths, encoded) = rest.split_at(4 * count);
    let unequal = || "corrupt: the steps' lengths do not add up".to_owned();
    let mut spans = Vec::with_capacity(count);
    let mut at = 0usize;
    for length in lengths.chunks_exact(4) {
        let length = u32::from_le_bytes(length.try_into().unwrap_or_default()) as usize;
        let end = at.saturating_add(length);
        if end > encoded.len() {
            return Err(unequal());
        }
        spans.push((spans.len(), at..end));
        at = end;
    }
    if at != encoded.len() {
        return Err(unequal());
    }
    let decode =
        |span: std::ops::Range<usize>| match postcard::take_from_bytes::<Step>(&encoded[span]) {
            Ok((step, [])) => Ok(step),
            Ok(_) => Err("corrupt: bytes after a step".to_owned()),
            Err(e) => Err(corrupt(e)),
        };
    // Each step decoded straight into its place in one vector: collecting into a vector grown
    // from a guess would copy every step at each doubling, and a vector of `Result`s unwrapped
    // afterwards would move every step once more (4.4 MB for 10,000 steps). A step that does
    // not decode leaves an empty one in its place and its reason here; the first such step's
    // reason is the answer.
    let failed: Mutex<Option<(usize, String)>> = Mutex::new(None);
    let steps = crate::par::map_vec(spans, |(k, span)| match decode(span) {
        Ok(step) => step,
        Err(why) => {
            let mut failed = failed.lock().unwrap_or_else(PoisonError::into_inner);
            if failed.as_ref().is_none_or(|(first, _)| k < *first) {
                *failed = Some((k, why));
            }
            empty_step()
        }
    });
    if let Some((_, why)) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(why);
    }
    let (name, out_dir, cache_dir, circuit_breaker, chaos) = header;
    Ok(Workflow {
        path: path_for_messages.to_path_buf(),
        dir: dir_of(path_for_messages),
        name,
        out_dir,
        cache_dir,
        circuit_breaker,
        steps,
        chaos,
        source: Arc::clone(source),
        warnings: Diagnostics::default(),
    })
}

/// A step that stands in for one that did not decode, in a memo that is then not used: no
/// field allocates.
fn empty_step() -> Step {
    let nowhere = super::Span {
        line: 0,
        column: 0,
        len: 0,
    };
    Step {
        name: String::new(),
        task: super::TaskRef::Crate(String::new()),
        args: Vec::new(),
        env: std::collections::BTreeMap::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        depends_on: Vec::new(),
        timeout: None,
        fuel: None,
        memory: None,
        retries: 0,
        retry_on: super::RetryOn::empty(),
        backoff: std::time::Duration::ZERO,
        adaptive_timeout: None,
        stuck_after: None,
        priority: 0,
        allow_failure: false,
        when: super::Condition::Success,
        span: nowhere,
        task_span: nowhere,
        output_spans: Vec::new(),
    }
}

/// Remembers `workflow` at `memo`, unless it has warnings (see the module doc).
pub(crate) fn write(memo: &Path, workflow: &Workflow) -> std::io::Result<()> {
    if !workflow.warnings.is_empty() {
        return Ok(());
    }
    let header = header_of(workflow);
    let mut bytes = Vec::with_capacity(HEADER + 64 * workflow.steps.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(build_digest().as_bytes());
    bytes.extend_from_slice(blake3::hash(workflow.source.as_bytes()).as_bytes());
    bytes.extend_from_slice(&[0; blake3::OUT_LEN]);
    let mut bytes = postcard::to_extend(&header, bytes).map_err(std::io::Error::other)?;
    bytes = postcard::to_extend(&(workflow.steps.len() as u64), bytes)
        .map_err(std::io::Error::other)?;
    let lengths = bytes.len();
    bytes.resize(lengths + 4 * workflow.steps.len(), 0);
    for (k, step) in workflow.steps.iter().enumerate() {
        let before = bytes.len();
        bytes = postcard::to_extend(step, bytes).map_err(std::io::Error::other)?;
        let length = u32::try_from(bytes.len() - before).map_err(std::io::Error::other)?;
        bytes[lengths + 4 * k..lengths + 4 * (k + 1)].copy_from_slice(&length.to_le_bytes());
    }
    let payload = blake3::hash(&bytes[HEADER..]);
    bytes[HEADER - blake3::OUT_LEN..HEADER].copy_from_slice(payload.as_bytes());
    let Some(dir) = memo.parent() else {
        return crate::journal::write_atomic(memo, &bytes);
    };
    std::fs::create_dir_all(dir)?;
    crate::journal::write_atomic(memo, &bytes)?;
    if let Err(e) = prune(dir, KEEP_MEMOS) {
        tracing::debug!(dir = %dir.display(), "workflow memos not pruned: {e}");
    }
    Ok(())
}

/// Removes the memos of `dir` but the `keep` most recently written.
fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let mut memos = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "memo") {
            let written = std::fs::symlink_metadata(&path)?.modified()?;
            memos.push((written, path));
        }
    }
    if memos.len() > keep {
        memos.sort();
        for (_, path) in &memos[..memos.len() - keep] {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// The digest that ties a memo to this build of hermetic.
fn build_digest() -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"hermetic workflow memo\0");
    h.update(&FORMAT.to_le_bytes());
    h.update(env!("HERMETIC_SOURCE_FINGERPRINT").as_bytes());
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "\
name: m
defaults: {circuit_breaker: {failures: 3, cool_down: 2s}}
steps:
  a: {task: a.wasm, args: [x], env: {K: v}, inputs: ['src/**'], outputs: [o.txt, d/]}
  b:
    task: lint
    depends_on: [a]
    when: a.failed || !a.skipped
    timeout: 5s
    fuel: 1000
    memory: 64MiB
    retries: 2
    retry_on: [trap, 3]
    adaptive_timeout: {factor: 2.5, cap: 1m}
    priority: 9
    allow_failure: true
chaos: {seeds: 1..3, faults: {memory: 0.5, worker: 0.25}, steps: [b]}
";

    fn parsed(source: &str) -> Workflow {
        Workflow::parse(Path::new("w/hermetic.yaml"), source).expect("parses")
    }

    /// Where the steps' lengths start in `workflow`'s memo.
    fn lengths_at(workflow: &Workflow) -> usize {
        HEADER
            + postcard::to_allocvec(&header_of(workflow))
                .expect("encodes")
                .len()
            + postcard::to_allocvec(&(workflow.steps.len() as u64))
                .expect("encodes")
                .len()
    }

    /// `bytes`, a damaged memo, with the digest of its damaged payload: so that the damage is
    /// found by decoding, not by the digest.
    fn redigested(mut bytes: Vec<u8>) -> Vec<u8> {
        let digest = blake3::hash(&bytes[HEADER..]);
        bytes[HEADER - blake3::OUT_LEN..HEADER].copy_from_slice(digest.as_bytes());
        bytes
    }

    /// Every field of `a` and `b`, as a string (`Workflow` has no `PartialEq`).
    fn same(a: &Workflow, b: &Workflow) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn a_memo_gives_back_the_workflow_it_remembers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = memo_path(dir.path(), Path::new("w/hermetic.yaml")).expect("absolute");
        assert!(memo.starts_with(dir.path().join("parsed")));
        let workflow = parsed(SOURCE);
        assert!(workflow.chaos.is_some() && workflow.circuit_breaker.is_some());
        write(&memo, &workflow).expect("written");
        let read = read(&memo, Path::new("w/hermetic.yaml"), &workflow.source).expect("a hit");
        same(&read, &workflow);
    }

    #[test]
    fn every_example_workflow_comes_back_the_same() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seen = 0;
        for entry in std::fs::read_dir(&examples).expect("examples/") {
            let path = entry.expect("entry").path().join("hermetic.yaml");
            let Ok(workflow) = Workflow::load(&path) else {
                continue;
            };
            let memo = dir.path().join(format!("{seen}.memo"));
            write(&memo, &workflow).expect("written");
            same(
                &read(&memo, &path, &workflow.source).expect("a hit"),
                &workflow,
            );
            seen += 1;
        }
        assert!(seen >= 3, "{seen} example workflows");
    }

    #[test]
    fn each_workflow_path_has_its_own_memo() {
        let root = Path::new("/cache");
        let a = memo_path(root, Path::new("a/hermetic.yaml"));
        assert_eq!(a, memo_path(root, Path::new("a/hermetic.yaml")));
        assert_ne!(a, memo_path(root, Path::new("b/hermetic.yaml")));
    }

    #[test]
    fn a_changed_source_misses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = dir.path().join("m.memo");
        write(&memo, &parsed(SOURCE)).expect("written");
        let other: Arc<str> = SOURCE.replace("[x]", "[y]").into();
        let path = Path::new("w/hermetic.yaml");
        assert_eq!(
            read(&memo, path, &other).map(|_| ()),
            Err("the workflow changed".to_owned())
        );
    }

    #[test]
    fn a_damaged_memo_misses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = dir.path().join("m.memo");
        let workflow = parsed(SOURCE);
        write(&memo, &workflow).expect("written");
        let good = std::fs::read(&memo).expect("memo");
        let miss = |bytes: &[u8]| {
            std::fs::write(&memo, bytes).expect("write");
            read(&memo, Path::new("w/hermetic.yaml"), &workflow.source).map(|_| ())
        };

        let mut flipped = good.clone();
        *flipped.last_mut().expect("bytes") ^= 1;
        assert_eq!(
            miss(&flipped),
            Err("corrupt: the payload does not match its digest".to_owned())
        );
        assert_eq!(miss(&good[..HEADER - 1]), Err("not a memo".to_owned()));
        let mut other_build = good.clone();
        other_build[MAGIC.len()] ^= 1;
        assert_eq!(
            miss(&other_build),
            Err("written by another build".to_owned())
        );

        // Damage with a digest that matches it: the payload must not decode.
        let truncated = redigested(good[..good.len() - 3].to_vec());
        assert!(miss(&truncated).is_err_and(|e| e.starts_with("corrupt: ")));

        // The first step's length one larger: the lengths no longer add up. One larger and the
        // second's one smaller: they do, but the first step's span ends past its encoding.
        let lengths = lengths_at(&workflow);
        let mut longer = good.clone();
        longer[lengths] += 1;
        assert_eq!(
            miss(&redigested(longer.clone())),
            Err("corrupt: the steps' lengths do not add up".to_owned())
        );
        longer[lengths + 4] -= 1;
        assert_eq!(
            miss(&redigested(longer)),
            Err("corrupt: bytes after a step".to_owned())
        );
    }

    #[test]
    fn a_large_memo_is_decoded_on_every_core_into_the_same_workflow() {
        let mut source = String::from("name: big\nsteps:\n");
        for i in 0..crate::par::PARALLEL_FROM + 100 {
            source.push_str(&format!("  s{i}: {{task: t.wasm, args: [\"{i}\"]"));
            if i > 0 {
                source.push_str(&format!(", depends_on: [s{}]", i - 1));
            }
            source.push_str("}\n");
        }
        let workflow = parsed(&source);
        assert_eq!(workflow.steps.len(), crate::par::PARALLEL_FROM + 100);
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = dir.path().join("big.memo");
        write(&memo, &workflow).expect("written");
        let read = read(&memo, Path::new("w/hermetic.yaml"), &workflow.source).expect("a hit");
        same(&read, &workflow);
    }

    #[test]
    fn a_large_memo_with_damaged_steps_misses_with_the_first_ones_reason() {
        let mut source = String::from("name: big\nsteps:\n");
        for i in 0..crate::par::PARALLEL_FROM + 100 {
            source.push_str(&format!("  s{i}: {{task: t.wasm}}\n"));
        }
        let workflow = parsed(&source);
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = dir.path().join("big.memo");
        write(&memo, &workflow).expect("written");
        let lengths = lengths_at(&workflow);
        // Two steps, far apart, each one byte longer and its successor one byte shorter: the
        // lengths add up, and each longer step is followed by a byte that is not its own.
        let mut damaged = std::fs::read(&memo).expect("memo");
        for k in [7, crate::par::PARALLEL_FROM + 50] {
            damaged[lengths + 4 * k] += 1;
            damaged[lengths + 4 * (k + 1)] -= 1;
        }
        std::fs::write(&memo, redigested(damaged)).expect("write");
        for _ in 0..5 {
            assert_eq!(
                read(&memo, Path::new("w/hermetic.yaml"), &workflow.source).map(|_| ()),
                Err("corrupt: bytes after a step".to_owned())
            );
        }
    }

    #[test]
    fn no_step_takes_fewer_bytes_than_the_bound_assumes() {
        let workflow = parsed("name: w\nsteps:\n  a: {task: b}\n");
        let bytes = postcard::to_allocvec(&workflow.steps[0]).expect("encodes");
        assert!(bytes.len() >= MIN_STEP_BYTES, "{} bytes", bytes.len());
    }

    #[test]
    fn only_the_most_recently_written_memos_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workflow = parsed(SOURCE);
        let epoch = std::time::SystemTime::UNIX_EPOCH;
        for (name, secs) in [("b", 30), ("a", 10), ("c", 20)] {
            let memo = dir.path().join(format!("{name}.memo"));
            write(&memo, &workflow).expect("written");
            let file = std::fs::File::options()
                .write(true)
                .open(&memo)
                .expect("open");
            file.set_modified(epoch + std::time::Duration::from_secs(secs))
                .expect("set mtime");
        }
        std::fs::write(dir.path().join("notes.txt"), "not a memo").expect("write");
        prune(dir.path(), 2).expect("pruned");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["b.memo", "c.memo", "notes.txt"]);
    }

    #[test]
    fn a_memo_that_cannot_be_written_only_costs_the_next_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workflow = dir.path().join("hermetic.yaml");
        std::fs::write(&workflow, SOURCE).expect("write");
        // `parsed` is a file, so no memo can be written under it.
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).expect("mkdir");
        std::fs::write(cache.join("parsed"), b"").expect("write");
        for _ in 0..2 {
            let loaded = Workflow::load_memoized(&workflow, &cache).expect("loads");
            same(&loaded, &Workflow::load(&workflow).expect("loads"));
        }
    }

    #[test]
    fn a_workflow_with_warnings_is_not_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memo = dir.path().join("m.memo");
        let workflow = parsed("name: w\nsteps:\n  a: {task: a.wasm, retry_on: [trap]}\n");
        assert!(
            !workflow.warnings.is_empty(),
            "retry_on without retries warns"
        );
        write(&memo, &workflow).expect("nothing to write");
        assert!(!memo.exists());
    }
}
