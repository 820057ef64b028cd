//! [`MultiLevel`]: several stores tried in order, with backfill.

use std::collections::{HashMap, HashSet};

use crate::{ActionEntry, CacheError, Digest, NewResult, Store};

/// Stores consulted in order, e.g. `[local disk, shared remote]`.
///
/// - **Gets** return the first level that hits. A level that errors is skipped with a warning;
///   the get is an error only if every level errored. On a hit from a lower level, the upper
///   writable levels are backfilled (blobs first, then the entry) so the next lookup hits
///   early; backfill failures are warnings. If the hitting level cannot produce a blob its
///   entry references, its hit is treated as a miss and the next level is tried.
/// - **Puts** go to every writable level, in order (callers put blobs before entries, so each
///   level sees blobs before the entry). An error from level 0 is returned, after the other
///   levels were tried; errors from lower levels are warnings.
/// - **`find_missing`** reports a digest as missing unless every writable level has it (so
///   the caller knows to put it); with no writable level, unless some level has it.
///
/// A level that cannot be reached ([`CacheError::Unavailable`], e.g. a remote cache whose
/// server went down) warns once itself, when it finds out; its errors are skipped quietly
/// here, so a run against a dead server prints one warning, not one per step.
#[derive(Debug)]
pub struct MultiLevel {
    levels: Vec<Box<dyn Store>>,
}

impl MultiLevel {
    /// Stores tried in the given order.
    pub fn new(levels: Vec<Box<dyn Store>>) -> Self {
        Self { levels }
    }

    /// Whether a warning about `error` should be left out: a level that is unreachable said so
    /// when it found out.
    fn quiet(&self, error: &CacheError) -> bool {
        matches!(error, CacheError::Unavailable { .. })
    }

    /// The levels, in lookup order.
    pub fn levels(&self) -> &[Box<dyn Store>] {
        &self.levels
    }

    /// Copies the entry that level `source` hit, and its blobs, to the writable levels above
    /// it. Returns false when the source lacks one of the entry's blobs (its hit is unusable).
    async fn backfill_action(&self, source: usize, key: &Digest, entry: &ActionEntry) -> bool {
        let src = &self.levels[source];
        let blobs = entry.blobs();
        // What each upper writable level lacks.
        let mut plans = Vec::new();
        for (index, level) in self.levels[..source].iter().enumerate() {
            if level.is_read_only() {
                continue;
            }
            match level.find_missing(&blobs).await {
                Ok(missing) => plans.push((index, missing)),
                Err(e) => backfill_warning(self, level.as_ref(), key, &e),
            }
        }
        let mut fetched: HashMap<Digest, Option<Vec<u8>>> = HashMap::new();
        for (_, missing) in &plans {
            for digest in missing {
                if fetched.contains_key(digest) {
                    continue;
                }
                let bytes = match src.get_blob(digest).await {
                    Ok(Some(bytes)) => Some(bytes),
                    Ok(None) => {
                        tracing::warn!(
                            store = %src.describe(),
                            key = %key,
                            blob = %digest,
                            "the cache hit is unusable: its blob is missing; treating it as a miss"
                        );
                        return false;
                    }
                    Err(e) => {
                        backfill_warning(self, src.as_ref(), key, &e);
                        None
                    }
                };
                fetched.insert(*digest, bytes);
            }
        }
        'levels: for (index, missing) in plans {
            let level = &self.levels[index];
            for digest in &missing {
                let Some(Some(bytes)) = fetched.get(digest) else {
                    continue 'levels;
                };
                if let Err(e) = level.put_blob(digest, bytes).await {
                    backfill_warning(self, level.as_ref(), key, &e);
                    continue 'levels;
                }
            }
            if let Err(e) = level.put_action(key, entry).await {
                backfill_warning(self, level.as_ref(), key, &e);
            }
        }
        true
    }

    /// Runs `put` on every writable level; returns level 0's error, warns about the others.
    async fn put_everywhere(&self, put: Put<'_>) -> Result<(), CacheError> {
        let mut first = Ok(());
        for (index, level) in self.levels.iter().enumerate() {
            if level.is_read_only() {
                continue;
            }
            let result = match put {
                Put::Action(key, entry) => level.put_action(key, entry).await,
                Put::Blob(digest, bytes) => level.put_blob(digest, bytes).await,
                Put::Results(results) => level.put_results(results).await,
                Put::Flush => level.flush().await,
            };
            if let Err(e) = result {
                if index == 0 {
                    first = Err(e);
                } else {
                    let what = match put {
                        Put::Action(..) => "an action entry",
                        Put::Blob(..) => "a blob",
                        Put::Results(..) => "results",
                        Put::Flush => "what was stored durably",
                    };
                    if !self.quiet(&e) {
                        tracing::warn!(store = %level.describe(), error = %e, "cannot store {what}");
                    }
                }
            }
        }
        first
    }
}

/// One write offered to every level.
#[derive(Clone, Copy)]
enum Put<'a> {
    Action(&'a Digest, &'a ActionEntry),
    Blob(&'a Digest, &'a [u8]),
    Results(&'a [NewResult]),
    /// [`Store::flush`].
    Flush,
}

fn backfill_warning(multi: &MultiLevel, store: &dyn Store, key: &Digest, error: &CacheError) {
    if multi.quiet(error) {
        return;
    }
    tracing::warn!(
        store = %store.describe(),
        key = %key,
        error = %error,
        "cannot backfill a cache hit"
    );
}

#[async_trait::async_trait]
impl Store for MultiLevel {
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        let mut first_error = None;
        let mut answered = false;
        for (index, level) in self.levels.iter().enumerate() {
            match level.get_action(key).await {
                Ok(Some(entry)) => {
                    if index == 0 || self.backfill_action(index, key, &entry).await {
                        return Ok(Some(entry));
                    }
                    answered = true;
                }
                Ok(None) => answered = true,
                Err(e) => {
                    if !self.quiet(&e) {
                        tracing::warn!(store = %level.describe(), key = %key, error = %e, "cache lookup failed");
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !answered => Err(e),
            _ => Ok(None),
        }
    }

    async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        self.put_everywhere(Put::Action(key, entry)).await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let mut first_error = None;
        let mut answered = false;
        for (index, level) in self.levels.iter().enumerate() {
            match level.get_blob(digest).await {
                Ok(Some(bytes)) => {
                    for upper in self.levels[..index].iter().filter(|l| !l.is_read_only()) {
                        if let Err(e) = upper.put_blob(digest, &bytes).await
                            && !self.quiet(&e)
                        {
                            tracing::warn!(store = %upper.describe(), blob = %digest, error = %e, "cannot backfill a blob");
                        }
                    }
                    return Ok(Some(bytes));
                }
                Ok(None) => answered = true,
                Err(e) => {
                    if !self.quiet(&e) {
                        tracing::warn!(store = %level.describe(), blob = %digest, error = %e, "blob lookup failed");
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !answered => Err(e),
            _ => Ok(None),
        }
    }

    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        self.put_everywhere(Put::Blob(digest, bytes)).await
    }

    async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        self.put_everywhere(Put::Results(results)).await
    }

    async fn flush(&self) -> Result<(), CacheError> {
        self.put_everywhere(Put::Flush).await
    }

    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        let any_writable = self.levels.iter().any(|l| !l.is_read_only());
        // Per digest: lacked by some writable level / had by some level.
        let mut lacked = vec![false; digests.len()];
        let mut had = vec![false; digests.len()];
        for (index, level) in self.levels.iter().enumerate() {
            let missing: HashSet<Digest> = match level.find_missing(digests).await {
                Ok(missing) => missing.into_iter().collect(),
                Err(e) if index == 0 => return Err(e),
                Err(e) => {
                    if !self.quiet(&e) {
                        tracing::warn!(store = %level.describe(), error = %e, "cannot check for blobs");
                    }
                    continue;
                }
            };
            for (i, digest) in digests.iter().enumerate() {
                if missing.contains(digest) {
                    lacked[i] |= !level.is_read_only();
                } else {
                    had[i] = true;
                }
            }
        }
        Ok(digests
            .iter()
            .enumerate()
            .filter(|&(i, _)| if any_writable { lacked[i] } else { !had[i] })
            .map(|(_, d)| *d)
            .collect())
    }

    fn describe(&self) -> String {
        let levels: Vec<String> = self.levels.iter().map(|l| l.describe()).collect();
        format!("multi-level cache [{}]", levels.join(", "))
    }

    fn is_read_only(&self) -> bool {
        self.levels.iter().all(|l| l.is_read_only())
    }
}
