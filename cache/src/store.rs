//! The [`Store`] trait: an action cache plus a content-addressed blob store.

use std::sync::Arc;

use crate::{ActionEntry, CacheError, Digest};

/// A fresh result to store: the entry, under its action key, and the bytes of every blob it
/// names ([`ActionEntry::blobs`]), each digest once.
#[derive(Debug, Clone)]
pub struct NewResult {
    /// The action key.
    pub key: Digest,
    /// What the key maps to.
    pub entry: ActionEntry,
    /// `(digest, bytes)` of the entry's blobs.
    pub blobs: Vec<(Digest, Vec<u8>)>,
}

/// A cache level: action entries keyed by action digest, and blobs keyed by their blake3.
///
/// The answers mean exactly this:
///
/// - `Ok(Some(_))` is a **hit**: the entry was verified (header checksum, JSON, internal
///   consistency) **and** every blob it references ([`ActionEntry::blobs`]) is present; a
///   blob is returned only if its bytes hash to its digest.
/// - `Ok(None)` is a **miss**: the item is absent, or it was corrupt, in which case the store
///   quarantined it (it is never served again) and logged a `tracing::warn`.
/// - `Err(_)` means the store **could not answer**: an I/O error other than "not found", an
///   unreachable remote. Callers treat it as a miss and warn; it never means "corrupt".
///
/// Writers commit blobs before the entry that references them, so a reader that sees an entry
/// finds its blobs (unless a garbage collection removed them meanwhile, which reads as a miss).
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Looks up the action entry for `key`: `Ok(Some)` = hit (entry verified AND every blob it
    /// references present), `Ok(None)` = miss (absent, or corrupt: quarantined, logged with
    /// `tracing::warn`, never served), `Err` = the store could not answer (I/O error other
    /// than not-found, unreachable remote); callers treat `Err` as a miss with a warning.
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError>;

    /// Records `entry` under `key`, replacing any previous entry. The blobs referenced by the
    /// entry must be committed first ([`MultiLevel`](crate::MultiLevel) and callers keep
    /// that order); a store may refuse an entry whose blobs it lacks
    /// ([`CacheError::MissingBlobs`]).
    async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError>;

    /// Fetches a blob. Verified: the bytes returned always hash to `digest`; a corrupt blob is
    /// quarantined and is a miss (`Ok(None)`).
    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores a blob. Checks that `bytes` hash to `digest` ([`CacheError::DigestMismatch`]
    /// otherwise); a no-op when the blob is already present.
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError>;

    /// Which of `digests` the store lacks, in the order given (the REAPI `FindMissingBlobs`
    /// analog).
    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError>;

    /// Stores a batch of fresh results: for each, its blobs, then its entry, with the
    /// guarantees of [`put_blob`](Store::put_blob) and [`put_action`](Store::put_action)
    /// called in that order. The default does exactly that, one result after another; a store
    /// may commit the batch together instead ([`DiskStore`](crate::DiskStore) pays for
    /// durability once per batch, not once per file). On an error, any part of the batch may
    /// have been stored, but never an entry without its blobs.
    async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        for result in results {
            for (digest, bytes) in &result.blobs {
                self.put_blob(digest, bytes).await?;
            }
            self.put_action(&result.key, &result.entry).await?;
        }
        Ok(())
    }

    /// Makes everything stored so far durable: it survives a power loss, not just a killed
    /// process. A store may defer part of that work from its puts to here
    /// ([`DiskStore`](crate::DiskStore) syncs the bytes of a batch before naming them, so
    /// a crash never leaves a partial or wrong item, but not the names); a run calls it once,
    /// before it ends. The default does nothing.
    async fn flush(&self) -> Result<(), CacheError> {
        Ok(())
    }

    /// A human-readable description, e.g. "local cache at /path".
    fn describe(&self) -> String;

    /// Whether puts are skipped ([`ReadOnly`]).
    fn is_read_only(&self) -> bool {
        false
    }
}

/// Implements [`Store`] for a smart pointer by forwarding every method, default ones included
/// (so that a store's own `put_results` is not replaced by the default), to the store inside.
macro_rules! forward_store {
    ($($pointer:ident),*) => {$(
        #[async_trait::async_trait]
        impl<S: Store + ?Sized> Store for $pointer<S> {
            async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
                (**self).get_action(key).await
            }
            async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
                (**self).put_action(key, entry).await
            }
            async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
                (**self).get_blob(digest).await
            }
            async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
                (**self).put_blob(digest, bytes).await
            }
            async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
                (**self).find_missing(digests).await
            }
            async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
                (**self).put_results(results).await
            }
            async fn flush(&self) -> Result<(), CacheError> {
                (**self).flush().await
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn is_read_only(&self) -> bool {
                (**self).is_read_only()
            }
        }
    )*};
}

forward_store!(Box, Arc);

/// A store used for reads only: gets pass through, puts are skipped.
///
/// Puts return `Ok(())` without doing anything rather than an error: a read-only level (a
/// shared team cache, a CI seed) is a configuration choice, not a failure, and callers that
/// care can ask [`Store::is_read_only`]. [`MultiLevel`](crate::MultiLevel) does not even
/// offer puts or backfills to read-only levels.
#[derive(Debug)]
pub struct ReadOnly<S>(pub S);

#[async_trait::async_trait]
impl<S: Store> Store for ReadOnly<S> {
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        self.0.get_action(key).await
    }
    async fn put_action(&self, _key: &Digest, _entry: &ActionEntry) -> Result<(), CacheError> {
        Ok(())
    }
    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.0.get_blob(digest).await
    }
    async fn put_blob(&self, _digest: &Digest, _bytes: &[u8]) -> Result<(), CacheError> {
        Ok(())
    }
    async fn put_results(&self, _results: &[NewResult]) -> Result<(), CacheError> {
        Ok(())
    }
    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        self.0.find_missing(digests).await
    }
    fn describe(&self) -> String {
        format!("{} (read-only)", self.0.describe())
    }
    fn is_read_only(&self) -> bool {
        true
    }
}
