//! [`CacheError`]: why a store could not answer.

use std::path::PathBuf;

use crate::Digest;
use crate::fsx::PathError;

/// Why a [`Store`](crate::Store) operation failed. A store that *answers* "not there" or
/// "corrupt" reports a miss (`Ok(None)`), not an error; see the [`Store`](crate::Store)
/// documentation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A filesystem error other than "not found", with its path.
    #[error(transparent)]
    Io(#[from] PathError),
    /// `put_blob` was given bytes that do not hash to the digest.
    #[error("blob bytes hash to {actual}, not to the digest {expected} they were offered under")]
    DigestMismatch {
        /// The digest the caller claimed.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// `put_action` for an entry whose blobs the store lacks.
    #[error(
        "action entry {} references blobs the store lacks ({}); put the blobs first",
        key.short(),
        missing.iter().map(Digest::short).collect::<Vec<_>>().join(", ")
    )]
    MissingBlobs {
        /// The action key.
        key: Digest,
        /// The blobs that are not in the store.
        missing: Vec<Digest>,
    },
    /// The store's `VERSION` is newer than this build understands.
    #[error(
        "the cache at `{}` has format version {found}, but this hermetic understands up to version {supported}; upgrade hermetic or use another cache directory",
        path.display()
    )]
    NewerVersion {
        /// The store root.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The `VERSION` file does not hold a format version.
    #[error("`{}` is not a hermetic cache version file (it holds {content:?})", path.display())]
    BadVersion {
        /// The `VERSION` file.
        path: PathBuf,
        /// What it holds (truncated).
        content: String,
    },
    /// The directory has other files in it and no `VERSION`: it is not a cache.
    #[error(
        "`{}` is not a hermetic cache: it is not empty and has no VERSION file; point the cache at an empty or new directory",
        path.display()
    )]
    NotACache {
        /// The directory.
        path: PathBuf,
    },
    /// Another process holds the lock this operation needs (e.g. a concurrent `gc`).
    #[error("another process holds `{}` ({what} in progress); try again later", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// What the lock guards.
        what: &'static str,
    },
    /// An action entry could not be serialized.
    #[error("cannot encode the action entry for {key}: {source}")]
    Encode {
        /// The action key.
        key: Digest,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A remote store could not be reached or answered with an error.
    #[error("{store}: {message}")]
    Unavailable {
        /// The store's description.
        store: String,
        /// What went wrong.
        message: String,
    },
    /// A remote store's server was reached but an RPC failed: the server answered with an
    /// error status other than "not found", or with a response that does not fit the request.
    #[error("remote cache at {url}: {rpc} {message}")]
    Remote {
        /// The server's URL.
        url: String,
        /// The RPC, e.g. `ByteStream.Write`.
        rpc: &'static str,
        /// What failed, naming the digest or action concerned.
        message: String,
    },
    /// A remote store cannot be set up as configured (an unsupported URL scheme, an invalid
    /// instance name, a server that speaks no digest function hermetic knows).
    #[error("remote cache `{url}`: {message}")]
    RemoteConfig {
        /// The URL as given.
        url: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}
