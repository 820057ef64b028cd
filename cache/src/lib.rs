//! Content-addressed storage for hermetic: blake3 [`Digest`]s, Merkle [`tree_digest`]s,
//! deterministic output [`archive`]s, and the action cache behind the [`Store`] trait
//! ([`DiskStore`] locally, [`ReadOnly`] and [`MultiLevel`] to combine stores).
//!
//! With the cargo feature `remote`, `RemoteStore` (in the module `remote`) is a [`Store`] on
//! a REAPI v2 remote cache server (BuildGrid, bazel-remote, Buildbarn, ...) over plaintext
//! gRPC; its module documentation describes how results map onto REAPI messages. A typical
//! set-up is `MultiLevel([DiskStore, RemoteStore])`, or `ReadOnly(RemoteStore)` as the
//! lower level for a cache that is only read.
//!
//! # What a lookup answers
//!
//! Every [`Store`] answers in one of three ways, and callers rely on exactly this:
//!
//! | answer | meaning |
//! |---|---|
//! | `Ok(Some(_))` | **hit**: the entry was verified **and** every blob it references is present; blobs returned hash to their digest |
//! | `Ok(None)` | **miss**: absent, or corrupt (then quarantined, logged with `tracing::warn`, never served) |
//! | `Err(_)` | the store **could not answer** (I/O error other than not-found, unreachable remote); callers treat it as a miss and warn |
//!
//! A corrupt cache therefore costs a re-execution, never a wrong result.
//!
//! # On-disk layout of a [`DiskStore`]
//!
//! ```text
//! <root>/
//!   VERSION                   format version, "1\n"; a newer version is refused
//!   cas/<2 hex>/<64 hex>      blobs: raw bytes, named by their blake3
//!   ac/<2 hex>/<64 hex>       action entries, named by the action key:
//!                               hermetic-action 1 <blake3 hex of the rest>\n
//!                               <JSON of ActionEntry>
//!   tmp/<pid>-<n>/            temporaries of one live store handle
//!   tmp/<pid>-<n>.lock        held with an exclusive flock for the handle's life
//!   quarantine/               corrupt files, renamed <area>-<name>.<secs>-<pid>-<n>.<reason>;
//!                             never read again, removed by gc after a week
//!   runs.jsonl                one {"unix_secs":…,"hits":…,"misses":…} line per run (O_APPEND)
//!   gc.lock                   flock held by a running gc
//! ```
//!
//! Blob and entry files are written whole and never modified in place; their mtime records
//! the last use (an entry's mtime is refreshed on every hit, a blob's when it is put again).
//!
//! # Guarantees
//!
//! - **Crash safety.** A file is written into the handle's `tmp/` directory, fsynced, renamed
//!   into place (atomic on POSIX filesystems), and the containing directory is fsynced. After a
//!   crash a path holds either nothing, its old content, or its complete new content; leftover
//!   temporaries belong to a dead process (its lock is free) and are swept by the next open.
//!   A batch of results ([`DiskStore::store_results`]) shares one sync: all temporaries are
//!   written, one `syncfs` makes their bytes durable, and then the blobs and after them the
//!   entries are renamed into place. The renames become durable with the kernel's writeback
//!   or at [`Store::flush`], which a run calls once before it ends; a power loss before that
//!   can lose entries (misses), never corrupt one.
//! - **Ordering.** Blobs are renamed into place before the entry that references them, so a
//!   reader that sees an entry finds its blobs; after a power loss the renames may have
//!   reached the disk in any order, so a lookup also checks that the blobs exist.
//! - **Verified reads.** Every blob read is re-hashed; every entry read checks the header
//!   checksum, the JSON, and that `output_tree` matches `output_files`. Failures quarantine
//!   the file and read as a miss.
//! - **Sharing.** Any number of processes may use one store at once without a global lock:
//!   every publication is an atomic rename of identical (blobs) or equally valid (entries;
//!   last writer wins) content. `gc` takes `gc.lock` and is safe alongside readers and writers
//!   (see [`DiskStore::gc`]); at worst a concurrent reader sees a miss.
//! - **Versioning.** `VERSION` is checked on open; unknown JSON fields in entries are ignored,
//!   so additive changes need no version bump.
//!
//! Archives stored as blobs are described in [`archive`]; the tree digest encoding in
//! [`tree_digest`].

mod action;
pub mod archive;
mod digest;
mod disk;
mod error;
mod fsx;
mod multi_level;
#[cfg(feature = "remote")]
pub mod remote;
mod store;
mod tree;

pub use action::ActionEntry;
pub use archive::{ArchiveError, ArchiveLimits, pack_dir, unpack};
pub use digest::{Digest, ParseDigestError, hash_file, hash_files};
pub use disk::{
    DiskStore, FORMAT_VERSION, GcOptions, GcReport, Problem, RECENT_RUNS, StoreStats, VerifyReport,
};
pub use error::CacheError;
pub use fsx::PathError;
pub use multi_level::MultiLevel;
#[cfg(feature = "remote")]
pub use remote::{DigestFunction, RemoteOptions, RemoteStore};
pub use store::{NewResult, ReadOnly, Store};
pub use tree::{FileEntry, TreeChange, check_relative_path, diff_trees, tree_digest};

#[cfg(test)]
mod store_tests;
