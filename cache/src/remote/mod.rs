//! [`RemoteStore`]: a [`Store`] on a REAPI v2 (Bazel Remote Execution API) cache server,
//! such as BuildGrid, bazel-remote or Buildbarn. Behind the cargo feature `remote`.
//!
//! Only plaintext HTTP/2 is supported for now: `grpc://HOST:PORT` or `http://HOST:PORT`, for
//! loopback or a trusted network. `grpcs://` and `https://` (TLS) are refused with
//! [`CacheError::RemoteConfig`].
//!
//! # Digest functions
//!
//! [`RemoteStore::connect`] reads the server's capabilities and speaks BLAKE3 when the server
//! offers it (hermetic's digests are then the server's), else SHA-256. With SHA-256 the store
//! keeps a map from each blob's BLAKE3 to its SHA-256 and size, filled by `put_blob` (which
//! hashes the bytes both ways), by `get_action` (from the digests in the `ActionResult`),
//! and by verified downloads; with a map directory ([`RemoteOptions::map_dir`]) the verified
//! pairs are also appended to a file that later runs read. REAPI names a blob by hash *and
//! size*, so the map serves BLAKE3 servers too. A blob whose BLAKE3 is not in the map is
//! missing for this store. The map is untrusted: every blob fetched through it is checked
//! against both the server digest and the BLAKE3, so a wrong pair can only cause a miss.
//!
//! # How hermetic results map onto REAPI
//!
//! | hermetic | REAPI |
//! |---|---|
//! | a blob (outputs archive, stdout, stderr) | a CAS blob, `Digest { hash: hex of its SHA-256 (or BLAKE3), size_bytes }` |
//! | the action key `K` (BLAKE3) | the action digest: the digest of a deterministic `Action` whose `salt` is `"hermetic-action-v1\0"` followed by the 32 raw bytes of `K`, whose `command_digest` names a fixed `Command { arguments: ["hermetic"], output_paths: [the two paths below] }` and whose `input_root_digest` is the empty `Directory`; the `Action` and `Command` are uploaded to the CAS too (details in `action_key.rs`) |
//! | the [`ActionEntry`] under `K` | `ActionCache.UpdateActionResult(action digest, ActionResult)` with the `ActionResult` below |
//! | the entry itself | `output_files[0]`: path `hermetic/entry.json`, the CAS blob of the entry's JSON (the same JSON a [`DiskStore`](crate::DiskStore) entry holds, without its header) |
//! | `outputs_archive` | `output_files[1]`: path `hermetic/outputs.tar.zst` |
//! | `stdout`, `stderr` | `stdout_digest`, `stderr_digest` |
//! | `exit_code` | `exit_code` (and in the entry) |
//! | — | `execution_metadata.worker = "hermetic"` |
//!
//! Fuel, memory, duration and the list of output files live only in the entry JSON. Any
//! REAPI tool can list the result and download its blobs.
//!
//! | [`Store`] method | RPCs |
//! |---|---|
//! | `get_action` | `GetActionResult` (`NOT_FOUND` is a miss); the entry JSON by `BatchReadBlobs` or `ByteStream.Read`; `FindMissingBlobs` for the three blobs |
//! | `put_action` | `FindMissingBlobs` for the entry's blobs; `BatchUpdateBlobs` of the entry JSON, the `Action` and the `Command`; `UpdateActionResult` |
//! | `get_blob` | `BatchReadBlobs` when it fits the server's batch limit, else `ByteStream.Read` of `{instance}/blobs/{hash}/{size}` |
//! | `put_blob` | `FindMissingBlobs`, then `BatchUpdateBlobs` or `ByteStream.Write` to `{instance}/uploads/{uuid}/blobs/{hash}/{size}` |
//! | `put_results` | one `FindMissingBlobs` for the whole batch; uploads grouped into `BatchUpdateBlobs` requests under the limit, large blobs by `ByteStream.Write`; then one `UpdateActionResult` per result |
//! | `find_missing` | `FindMissingBlobs` (digests missing from the map are missing) |
//!
//! With the default instance name the resource names start at `blobs/` and `uploads/`; with
//! BLAKE3 they carry the function: `blobs/blake3/{hash}/{size}`. The batch limit is the
//! server's `max_batch_total_size_bytes` (4 MiB when it says 0). The empty blob is never
//! uploaded or downloaded: REAPI servers behave as if they always had it.
//!
//! # What a lookup answers
//!
//! A hit (`Ok(Some)`) means: the `ActionResult` has hermetic's layout, its entry JSON has the
//! digest the result names, parses and passes [`ActionEntry::check`], its exit code and blob
//! digests agree with the entry and with every pair this store has verified, and the server
//! has all three blobs. Anything else the server holds is a miss (`Ok(None)`) with a
//! `tracing::warn!` naming the key and the problem; a remote cannot be quarantined, so blobs
//! found corrupt are remembered in memory and never fetched again by this store. Every blob
//! returned hashes to its BLAKE3. Everything read from the server is untrusted: sizes are
//! capped ([`RemoteOptions::max_blob_bytes`], 64 MiB for entry JSON), digests are checked,
//! missing or malformed fields are misses.
//!
//! The action cache itself is trusted as much as a local cache directory is: whoever may
//! write to it can store any entry under any key.
//!
//! # Failures
//!
//! Each call has a deadline ([`RemoteOptions::timeout`], plus a second per MiB for blob
//! transfers) and is retried ([`RemoteOptions::retries`], with exponential backoff from
//! [`RemoteOptions::backoff`]) on `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`
//! and `ABORTED`. When the server proves unreachable (still `UNAVAILABLE` or out of time
//! after the retries) the store is **down**: that call and every later one return
//! [`CacheError::Unavailable`] at once, so a run against a dead server waits only once.
//! Other errors are [`CacheError::Remote`]; every message names the URL, the RPC and the
//! digest or action concerned.

mod action_key;
mod cas;
mod client;
mod digests;
mod map;
mod results;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use re::capabilities_client::CapabilitiesClient;

pub use self::digests::DigestFunction;

use self::cas::Fetched;
use self::client::{CallPolicy, Client, Rpc};
use self::digests::ServerDigest;
use self::map::DigestMap;
use crate::{ActionEntry, CacheError, Digest, NewResult, Store};

/// The batch limit assumed when the server sets none.
const DEFAULT_BATCH_LIMIT: u64 = 4 * 1024 * 1024;
/// The largest batch limit used, whatever the server offers.
const MAX_BATCH_LIMIT: u64 = 64 * 1024 * 1024;

/// How a [`RemoteStore`] talks to its server. Build it from [`RemoteOptions::default`] and
/// set the fields that differ.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// The REAPI instance name; empty (the default) for the server's default instance.
    pub instance_name: String,
    /// The deadline of one attempt of one call (default 10 s). Blob transfers get one more
    /// second per MiB.
    pub timeout: Duration,
    /// How many times a call is retried after a retryable failure (default 3).
    pub retries: u32,
    /// The wait before the first retry, doubled before each further one (default 100 ms).
    pub backoff: Duration,
    /// Where the BLAKE3 → server digest map is kept across runs (default: in memory only).
    /// The directory is created if needed; see the [module documentation](self).
    pub map_dir: Option<PathBuf>,
    /// The largest blob the store downloads (default 2 GiB); a larger one is a miss. Blobs
    /// are held in memory, so this bounds what a server can make the store allocate.
    pub max_blob_bytes: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            instance_name: String::new(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(100),
            map_dir: None,
            max_blob_bytes: 2 << 30,
        }
    }
}

/// A [`Store`] on a REAPI v2 remote cache; see the [module documentation](self) for the
/// mapping and the guarantees.
///
/// It may be called from any tokio runtime with timers enabled: the connection runs on a
/// one-thread runtime of its own. Its methods do a little blocking file I/O (appending to
/// the digest map), like [`DiskStore`](crate::DiskStore)'s do.
#[derive(Debug)]
pub struct RemoteStore {
    url: String,
    describe: String,
    instance: String,
    function: DigestFunction,
    batch_limit: u64,
    update_enabled: bool,
    max_blob: u64,
    client: Client,
    map: DigestMap,
    /// Server digests whose bytes were found corrupt: never served, re-uploaded on a put.
    bad: Mutex<HashSet<ServerDigest>>,
}

impl RemoteStore {
    /// Connects to the server at `url` (`grpc://HOST:PORT` or `http://HOST:PORT`) and reads
    /// its capabilities: the digest function (BLAKE3 if offered, else SHA-256), the batch
    /// size limit, and whether action-cache updates are allowed.
    ///
    /// Fails with [`CacheError::RemoteConfig`] for an unsupported URL (TLS included), a bad
    /// instance name or a server that is not a usable cache, with
    /// [`CacheError::Unavailable`] when the server cannot be reached (after the retries),
    /// and with [`CacheError::Io`] when the map directory cannot be used.
    pub async fn connect(url: &str, options: RemoteOptions) -> Result<Self, CacheError> {
        let config_error = |message: String| CacheError::RemoteConfig {
            url: url.to_string(),
            message,
        };
        let endpoint = endpoint_url(url).map_err(config_error)?;
        check_instance_name(&options.instance_name).map_err(config_error)?;
        let describe = if options.instance_name.is_empty() {
            format!("remote cache at {url}")
        } else {
            format!(
                "remote cache at {url} (instance {:?})",
                options.instance_name
            )
        };
        let policy = CallPolicy {
            timeout: options.timeout,
            retries: options.retries,
            backoff: options.backoff,
        };
        let client = Client::connect(&endpoint, describe.clone(), policy).map_err(config_error)?;
        let request = re::GetCapabilitiesRequest {
            instance_name: options.instance_name.clone(),
        };
        let capabilities = client
            .call(
                Rpc::GetCapabilities,
                "the server's capabilities",
                options.timeout,
                |ch| {
                    let request = request.clone();
                    async move { CapabilitiesClient::new(ch).get_capabilities(request).await }
                },
            )
            .await?
            .into_inner();
        let cache = capabilities.cache_capabilities.ok_or_else(|| {
            config_error("the server has no cache capabilities: it is not a REAPI cache".into())
        })?;
        let function = DigestFunction::negotiate(&cache.digest_functions).ok_or_else(|| {
            config_error(format!(
                "the server offers the digest functions {}, but hermetic speaks only BLAKE3 and SHA256",
                DigestFunction::names(&cache.digest_functions)
            ))
        })?;
        let batch_limit = match u64::try_from(cache.max_batch_total_size_bytes) {
            Ok(0) | Err(_) => DEFAULT_BATCH_LIMIT,
            Ok(limit) => limit.min(MAX_BATCH_LIMIT),
        };
        let update_enabled = cache
            .action_cache_update_capabilities
            .is_some_and(|c| c.update_enabled);
        let map = match &options.map_dir {
            Some(dir) => DigestMap::open(dir, function)?,
            None => DigestMap::in_memory(),
        };
        tracing::debug!(
            store = %describe,
            digest_function = %function,
            batch_limit,
            update_enabled,
            "connected to the remote cache"
        );
        Ok(Self {
            url: url.to_string(),
            describe,
            instance: options.instance_name,
            function,
            batch_limit,
            update_enabled,
            max_blob: options.max_blob_bytes,
            client,
            map,
            bad: Mutex::new(HashSet::new()),
        })
    }

    /// The digest function negotiated with the server.
    pub fn digest_function(&self) -> DigestFunction {
        self.function
    }

    /// The URL as given to [`connect`](Self::connect).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The REAPI instance name.
    pub fn instance_name(&self) -> &str {
        &self.instance
    }

    /// Whether the server allows action-cache updates (when it does not, the store is
    /// [read-only](Store::is_read_only) and `put_action` fails).
    pub fn updates_allowed(&self) -> bool {
        self.update_enabled
    }

    /// Whether the server was found unreachable; every call then fails at once.
    pub fn is_down(&self) -> bool {
        self.client.down_reason().is_some()
    }

    /// The gRPC channel to the server, for other REAPI services on the same connection
    /// (execution, the Remote Workers API). It lives as long as the store.
    pub fn channel(&self) -> tonic::transport::Channel {
        self.client.channel()
    }

    /// The negotiated digest function as REAPI's `DigestFunction.Value`, for requests that
    /// name it.
    pub fn digest_function_value(&self) -> i32 {
        self.function.proto()
    }

    /// The REAPI digest of `bytes` in the server's digest function.
    pub fn server_digest_of(&self, bytes: &[u8]) -> re::Digest {
        ServerDigest::of(self.function, bytes).to_proto()
    }

    /// Uploads blobs named in the server's digests (from [`RemoteStore::server_digest_of`]),
    /// skipping those the server has. Each must match its bytes; a mismatch is refused
    /// before anything is sent.
    pub async fn upload_server_blobs(
        &self,
        blobs: Vec<(re::Digest, Vec<u8>)>,
    ) -> Result<(), CacheError> {
        let mut named = Vec::with_capacity(blobs.len());
        for (digest, bytes) in &blobs {
            let digest =
                ServerDigest::from_proto(digest).map_err(|message| CacheError::RemoteConfig {
                    url: self.url.clone(),
                    message,
                })?;
            if !digest.matches(self.function, bytes) {
                return Err(CacheError::RemoteConfig {
                    url: self.url.clone(),
                    message: format!("refusing to upload bytes under the wrong digest {digest}"),
                });
            }
            named.push(digest);
        }
        let missing = self.missing_on_server(&named).await?;
        let mut seen = HashSet::new();
        let upload: Vec<(ServerDigest, &[u8])> = named
            .into_iter()
            .zip(&blobs)
            .filter(|(d, _)| missing.contains(d) && seen.insert(*d))
            .map(|(d, (_, bytes))| (d, bytes.as_slice()))
            .collect();
        self.upload(&upload).await
    }

    /// Downloads the blob `digest` (in the server's digest function), verified: the bytes
    /// always have exactly that digest. A missing, corrupt or oversized blob is an error that
    /// says which.
    pub async fn fetch_server_blob(&self, digest: &re::Digest) -> Result<Vec<u8>, CacheError> {
        let named = ServerDigest::from_proto(digest).map_err(|message| CacheError::Remote {
            url: self.url.clone(),
            rpc: "download",
            message,
        })?;
        let problem = |message: String| CacheError::Remote {
            url: self.url.clone(),
            rpc: "download",
            message: format!("blob {named}: {message}"),
        };
        match self.download(named, self.max_blob).await? {
            Fetched::Bytes(bytes) => Ok(bytes),
            Fetched::Missing => Err(problem("the server does not have it".into())),
            Fetched::Corrupt(why) => Err(problem(why)),
            Fetched::TooLarge => Err(problem(format!(
                "larger than the {} bytes a blob may have",
                self.max_blob
            ))),
        }
    }

    /// The server digest of the blob `blake3`, when known (the empty blob always is).
    fn server_digest(&self, blake3: &Digest) -> Option<ServerDigest> {
        if *blake3 == empty_blake3() {
            return Some(ServerDigest::of(self.function, b""));
        }
        self.map.get(blake3).map(|m| m.server)
    }

    /// The server digest the store knows for sure for `blake3`, when it differs from
    /// `server`.
    fn known_conflict(&self, blake3: &Digest, server: &ServerDigest) -> Option<ServerDigest> {
        if *blake3 == empty_blake3() {
            let empty = ServerDigest::of(self.function, b"");
            return (*server != empty).then_some(empty);
        }
        self.map.conflict(blake3, server)
    }

    fn bad(&self) -> std::sync::MutexGuard<'_, HashSet<ServerDigest>> {
        self.bad.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_bad(&self, digest: &ServerDigest) -> bool {
        self.bad().contains(digest)
    }

    fn mark_bad(&self, digest: ServerDigest) {
        self.bad().insert(digest);
    }

    fn clear_bad(&self, digest: &ServerDigest) {
        self.bad().remove(digest);
    }

    /// Checks that `bytes` are the blob `digest`, and records their server digest.
    fn map_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<ServerDigest, CacheError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(CacheError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        let server = ServerDigest::of_verified(self.function, bytes, digest);
        if *digest != empty_blake3() {
            self.map.record_verified(*digest, server);
        }
        Ok(server)
    }
}

#[async_trait::async_trait]
impl Store for RemoteStore {
    async fn get_action(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        self.lookup(key).await
    }

    async fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        self.publish(key, entry).await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        if *digest == empty_blake3() {
            return Ok(Some(Vec::new()));
        }
        self.client.check_up(Rpc::BatchReadBlobs)?;
        let Some(server) = self.server_digest(digest) else {
            return Ok(None);
        };
        if self.is_bad(&server) {
            return Ok(None);
        }
        let warn = |why: &str| {
            tracing::warn!(
                store = %self.describe,
                blob = %digest,
                server_digest = %server,
                "ignoring a remote blob (a miss): {why}"
            );
        };
        match self.download(server, self.max_blob).await? {
            Fetched::Bytes(bytes) => {
                // With BLAKE3 the server digest already was the BLAKE3.
                if self.function == DigestFunction::Sha256 && Digest::of(&bytes) != *digest {
                    // The server's blob is sound; the pair that led to it is wrong.
                    self.map.forget(digest);
                    warn("the blob the digest map names has another BLAKE3; the pair is forgotten");
                    return Ok(None);
                }
                self.map.record_verified(*digest, server);
                Ok(Some(bytes))
            }
            Fetched::Missing => Ok(None),
            Fetched::TooLarge => {
                warn(&format!(
                    "it is larger than the limit of {} bytes",
                    self.max_blob
                ));
                Ok(None)
            }
            Fetched::Corrupt(why) => {
                self.mark_bad(server);
                warn(&format!("it is corrupt on the server: {why}"));
                Ok(None)
            }
        }
    }

    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        let server = self.map_blob(digest, bytes)?;
        if server.size == 0 {
            return Ok(());
        }
        self.client.check_up(Rpc::FindMissingBlobs)?;
        if !self.is_bad(&server) && self.missing_on_server(&[server]).await?.is_empty() {
            return Ok(());
        }
        self.upload(&[(server, bytes)]).await
    }

    async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        self.client.check_up(Rpc::FindMissingBlobs)?;
        let servers: Vec<Option<ServerDigest>> = digests
            .iter()
            .map(|d| self.server_digest(d).filter(|s| !self.is_bad(s)))
            .collect();
        let asked: Vec<ServerDigest> = servers.iter().flatten().copied().collect();
        let missing = self.missing_on_server(&asked).await?;
        Ok(digests
            .iter()
            .zip(&servers)
            .filter(|(_, server)| server.is_none_or(|s| missing.contains(&s)))
            .map(|(d, _)| *d)
            .collect())
    }

    async fn put_results(&self, results: &[NewResult]) -> Result<(), CacheError> {
        if results.is_empty() {
            return Ok(());
        }
        self.check_updates()?;
        self.client.check_up(Rpc::FindMissingBlobs)?;
        // Every blob of the batch, checked and mapped, once.
        let mut blobs: Vec<(ServerDigest, &[u8])> = Vec::new();
        let mut seen = HashSet::new();
        for result in results {
            for (digest, bytes) in &result.blobs {
                let server = self.map_blob(digest, bytes)?;
                if seen.insert(server) {
                    blobs.push((server, bytes));
                }
            }
        }
        // The entries: their JSON, Action and Command are blobs too.
        let mut first_error = None;
        let mut entries = Vec::new();
        for result in results {
            match self.prepare(&result.key, &result.entry) {
                Ok(prepared) => entries.push((result, prepared)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for (_, prepared) in &entries {
            for (server, bytes) in prepared.blobs() {
                if seen.insert(server) {
                    blobs.push((server, bytes));
                }
            }
        }
        // One FindMissingBlobs for everything the entries reference.
        let mut asked: Vec<ServerDigest> = blobs.iter().map(|b| b.0).collect();
        for (_, prepared) in &entries {
            let layout = &prepared.layout;
            asked.extend([layout.archive, layout.stdout, layout.stderr]);
        }
        let missing = self.missing_on_server(&asked).await?;
        let uploads: Vec<(ServerDigest, &[u8])> = blobs
            .iter()
            .filter(|(d, _)| missing.contains(d) || self.is_bad(d))
            .copied()
            .collect();
        self.upload(&uploads).await?;
        // Entries last, each only with all its blobs on the server: those of the batch were
        // just uploaded; any other must be there and not known corrupt.
        for (result, prepared) in &entries {
            let mut lacking: Vec<Digest> = Vec::new();
            for digest in result.entry.blobs() {
                let unusable = self.server_digest(&digest).is_some_and(|s| {
                    !seen.contains(&s) && (missing.contains(&s) || self.is_bad(&s))
                });
                if unusable && !lacking.contains(&digest) {
                    lacking.push(digest);
                }
            }
            let outcome = if lacking.is_empty() {
                self.update_action_result(&result.key, prepared.action, prepared.layout)
                    .await
            } else {
                Err(CacheError::MissingBlobs {
                    key: result.key,
                    missing: lacking,
                })
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn is_read_only(&self) -> bool {
        !self.update_enabled
    }
}

/// The BLAKE3 of no bytes.
fn empty_blake3() -> Digest {
    Digest::of(b"")
}

/// The `http://` URL tonic connects to, for a `grpc://` or `http://` URL.
fn endpoint_url(url: &str) -> Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(
            "expected a URL like grpc://HOST:PORT or http://HOST:PORT (no scheme given)".into(),
        );
    };
    match scheme {
        "grpc" | "http" => {}
        "grpcs" | "https" => {
            return Err(format!(
                "TLS ({scheme}://) is not supported yet; use grpc:// or http:// on loopback or a trusted network"
            ));
        }
        _ => {
            return Err(format!(
                "the scheme {scheme}:// is not supported; use grpc://HOST:PORT or http://HOST:PORT"
            ));
        }
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(
            "expected only HOST:PORT after the scheme (set the instance name in the options, not in the URL)"
                .into(),
        );
    }
    Ok(format!("http://{authority}"))
}

/// Checks that `name` can stand before `/blobs/...` in resource names.
fn check_instance_name(name: &str) -> Result<(), String> {
    const RESERVED: [&str; 7] = [
        "blobs",
        "uploads",
        "actions",
        "actionResults",
        "operations",
        "capabilities",
        "compressed-blobs",
    ];
    if name.is_empty() {
        return Ok(());
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Err(format!(
                "the instance name {name:?} has an empty path segment"
            ));
        }
        if RESERVED.contains(&segment) {
            return Err(format!(
                "the instance name {name:?} contains the reserved segment {segment:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            endpoint_url("grpc://127.0.0.1:8980").unwrap(),
            "http://127.0.0.1:8980"
        );
        assert_eq!(
            endpoint_url("http://localhost:1/").unwrap(),
            "http://localhost:1"
        );
        assert!(endpoint_url("grpcs://h:1").unwrap_err().contains("TLS"));
        assert!(endpoint_url("https://h:1").unwrap_err().contains("TLS"));
        assert!(endpoint_url("ftp://h:1").unwrap_err().contains("ftp"));
        assert!(endpoint_url("h:1").unwrap_err().contains("no scheme"));
        assert!(
            endpoint_url("grpc://h:1/main")
                .unwrap_err()
                .contains("instance")
        );
        assert!(endpoint_url("grpc://").is_err());
    }

    #[test]
    fn instance_names_are_checked() {
        assert!(check_instance_name("").is_ok());
        assert!(check_instance_name("main/linux").is_ok());
        assert!(check_instance_name("/main").is_err());
        assert!(check_instance_name("main/").is_err());
        assert!(
            check_instance_name("a/blobs")
                .unwrap_err()
                .contains("blobs")
        );
    }

    #[tokio::test]
    async fn tls_is_refused_before_any_connection() {
        let err = RemoteStore::connect("grpcs://127.0.0.1:1", RemoteOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::RemoteConfig { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("grpcs://127.0.0.1:1") && text.contains("TLS"),
            "{text}"
        );
    }
}
