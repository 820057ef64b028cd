//! Action entries as REAPI `ActionResult`s: the [`Layout`] of the message, and the
//! `ActionCache` calls with the checks that make a remote hit trustworthy.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use re::action_cache_client::ActionCacheClient;
use tonic::Code;

use super::RemoteStore;
use super::action_key::{action_bytes, action_digest, command_bytes};
use super::cas::Fetched;
use super::client::Rpc;
use super::digests::ServerDigest;
use crate::{ActionEntry, CacheError, Digest};

/// The output file holding the [`ActionEntry`] as JSON.
pub(crate) const ENTRY_PATH: &str = "hermetic/entry.json";
/// The output file holding the outputs archive.
pub(crate) const ARCHIVE_PATH: &str = "hermetic/outputs.tar.zst";
/// The largest entry JSON the store reads.
pub(crate) const MAX_ENTRY: u64 = 64 * 1024 * 1024;
/// `ExecutedActionMetadata.worker` of the results hermetic stores.
const WORKER: &str = "hermetic";

/// The digests an `ActionResult` written by hermetic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The entry JSON ([`ENTRY_PATH`]).
    pub(crate) entry: ServerDigest,
    /// The outputs archive ([`ARCHIVE_PATH`]).
    pub(crate) archive: ServerDigest,
    /// The captured standard output.
    pub(crate) stdout: ServerDigest,
    /// The captured standard error.
    pub(crate) stderr: ServerDigest,
    /// The exit code.
    pub(crate) exit_code: i32,
}

impl Layout {
    /// The `ActionResult` message.
    pub(crate) fn to_action_result(self) -> re::ActionResult {
        let file = |path: &str, digest: ServerDigest| re::OutputFile {
            path: path.to_string(),
            digest: Some(digest.to_proto()),
            ..Default::default()
        };
        re::ActionResult {
            // Sorted by path, as REAPI asks.
            output_files: vec![
                file(ENTRY_PATH, self.entry),
                file(ARCHIVE_PATH, self.archive),
            ],
            exit_code: self.exit_code,
            stdout_digest: Some(self.stdout.to_proto()),
            stderr_digest: Some(self.stderr.to_proto()),
            execution_metadata: Some(re::ExecutedActionMetadata {
                worker: WORKER.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Reads an `ActionResult` from the server (untrusted): each of the two output files
    /// exactly once with a valid digest, and valid stdout and stderr digests. Other output
    /// files are ignored.
    pub(crate) fn from_action_result(result: &re::ActionResult) -> Result<Self, String> {
        let file = |path: &str| -> Result<ServerDigest, String> {
            let mut found = result.output_files.iter().filter(|f| f.path == path);
            let first = found
                .next()
                .ok_or_else(|| format!("it has no output file {path}"))?;
            if found.next().is_some() {
                return Err(format!("it lists the output file {path} twice"));
            }
            let digest = first
                .digest
                .as_ref()
                .ok_or_else(|| format!("its output file {path} has no digest"))?;
            ServerDigest::from_proto(digest).map_err(|why| format!("output file {path}: {why}"))
        };
        let stream = |name: &str, digest: &Option<re::Digest>| -> Result<ServerDigest, String> {
            let digest = digest
                .as_ref()
                .ok_or_else(|| format!("it has no {name} digest"))?;
            ServerDigest::from_proto(digest).map_err(|why| format!("{name} digest: {why}"))
        };
        Ok(Self {
            entry: file(ENTRY_PATH)?,
            archive: file(ARCHIVE_PATH)?,
            stdout: stream("stdout", &result.stdout_digest)?,
            stderr: stream("stderr", &result.stderr_digest)?,
            exit_code: result.exit_code,
        })
    }
}

/// An entry ready to be stored: its `ActionResult` layout, and the blobs to upload before
/// `UpdateActionResult` besides the entry's own (the entry JSON, the `Action`, the
/// `Command`).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) layout: Layout,
    /// The action digest.
    pub(crate) action: ServerDigest,
    command: ServerDigest,
    json: Vec<u8>,
    action_bytes: Vec<u8>,
    command_bytes: Vec<u8>,
}

impl Prepared {
    /// The blobs to upload before `UpdateActionResult`, besides the entry's own.
    pub(crate) fn blobs(&self) -> [(ServerDigest, &[u8]); 3] {
        [
            (self.layout.entry, &self.json),
            (self.action, &self.action_bytes),
            (self.command, &self.command_bytes),
        ]
    }
}

impl RemoteStore {
    fn action_cache(
        &self,
        channel: tonic::transport::Channel,
    ) -> ActionCacheClient<tonic::transport::Channel> {
        ActionCacheClient::new(channel).max_decoding_message_size(self.max_message())
    }

    /// The `ActionResult` stored under `action` (`None` when the server has none).
    async fn get_action_result(
        &self,
        key: &Digest,
        action: ServerDigest,
    ) -> Result<Option<re::ActionResult>, CacheError> {
        let request = re::GetActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(action.to_proto()),
            digest_function: self.function.proto(),
            ..Default::default()
        };
        let subject = format!("action {} (key {key})", action.hex());
        self.client
            .call(
                Rpc::GetActionResult,
                &subject,
                self.client.timeout(),
                |ch| {
                    let request = request.clone();
                    let mut client = self.action_cache(ch);
                    async move {
                        match client.get_action_result(request).await {
                            Ok(response) => Ok(Some(response.into_inner())),
                            Err(status) if status.code() == Code::NotFound => Ok(None),
                            Err(status) => Err(status),
                        }
                    }
                },
            )
            .await
    }

    /// Looks up the entry for `key`: a hit only when the `ActionResult` is consistent, its
    /// entry JSON verifies and parses and passes [`ActionEntry::check`], and the three blobs
    /// are on the server. Anything inconsistent is a miss with a warning.
    pub(crate) async fn lookup(&self, key: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        let action = action_digest(self.function, key);
        let Some(result) = self.get_action_result(key, action).await? else {
            return Ok(None);
        };
        match self.check_result(&result).await? {
            Ok(entry) => Ok(Some(entry)),
            Err(why) => {
                tracing::warn!(
                    store = %self.describe,
                    key = %key,
                    action = %action,
                    "ignoring the remote cache's result for this action (a miss): {why}"
                );
                Ok(None)
            }
        }
    }

    /// `Ok(Ok(entry))` for a usable result, `Ok(Err(why))` for an unusable one, `Err` when
    /// the server could not answer.
    async fn check_result(
        &self,
        result: &re::ActionResult,
    ) -> Result<Result<ActionEntry, String>, CacheError> {
        let layout = match Layout::from_action_result(result) {
            Ok(layout) => layout,
            Err(why) => return Ok(Err(format!("the ActionResult is not hermetic's: {why}"))),
        };
        for digest in [layout.entry, layout.archive, layout.stdout, layout.stderr] {
            if self.is_bad(&digest) {
                return Ok(Err(format!("the blob {digest} was found corrupt earlier")));
            }
        }
        // The entry, and whether the server has the three blobs, in one round trip's time.
        let referenced = [layout.archive, layout.stdout, layout.stderr];
        let (fetched, missing) = tokio::join!(
            self.download(layout.entry, MAX_ENTRY),
            self.missing_on_server(&referenced)
        );
        let bytes = match fetched? {
            Fetched::Bytes(bytes) => bytes,
            Fetched::Missing => {
                return Ok(Err(format!("its entry blob {} is missing", layout.entry)));
            }
            Fetched::TooLarge => {
                return Ok(Err(format!(
                    "its entry blob {} is larger than {MAX_ENTRY} bytes",
                    layout.entry
                )));
            }
            Fetched::Corrupt(why) => {
                self.mark_bad(layout.entry);
                return Ok(Err(format!(
                    "its entry blob {} is corrupt: {why}",
                    layout.entry
                )));
            }
        };
        let entry: ActionEntry = match serde_json::from_slice(&bytes) {
            Ok(entry) => entry,
            Err(e) => {
                self.mark_bad(layout.entry);
                return Ok(Err(format!(
                    "its entry blob {} is not an entry: {e}",
                    layout.entry
                )));
            }
        };
        if let Err(why) = entry.check() {
            self.mark_bad(layout.entry);
            return Ok(Err(format!("its entry is inconsistent: {why}")));
        }
        if entry.exit_code != layout.exit_code {
            return Ok(Err(format!(
                "the ActionResult's exit code {} differs from the entry's {}",
                layout.exit_code, entry.exit_code
            )));
        }
        let pairs = [
            ("outputs archive", entry.outputs_archive, layout.archive),
            ("stdout", entry.stdout, layout.stdout),
            ("stderr", entry.stderr, layout.stderr),
        ];
        for (name, blake3, server) in pairs {
            if let Some(known) = self.known_conflict(&blake3, &server) {
                return Ok(Err(format!(
                    "its {name} {} is {server} on the server, but those bytes were seen as {known}",
                    blake3.short()
                )));
            }
            if server.size > self.max_blob {
                return Ok(Err(format!(
                    "its {name} {server} is larger than the limit of {} bytes",
                    self.max_blob
                )));
            }
        }
        for (i, (name, blake3, server)) in pairs.iter().enumerate() {
            if let Some((other, _, other_server)) = pairs[..i]
                .iter()
                .find(|(_, b, _)| b == blake3)
                .filter(|(_, _, s)| s != server)
            {
                return Ok(Err(format!(
                    "its {other} and {name} are the same bytes ({}) but have different digests ({other_server}, {server})",
                    blake3.short()
                )));
            }
        }
        let missing = missing?;
        if let Some((name, _, server)) = pairs.iter().find(|p| missing.contains(&p.2)) {
            return Ok(Err(format!(
                "its {name} blob {server} is missing on the server"
            )));
        }
        for (_, blake3, server) in pairs {
            // Checked above: no verified mapping disagrees.
            let _ = self.map.record_claimed(blake3, server);
        }
        Ok(Ok(entry))
    }

    /// Stores `entry` under `key`: its blobs must be mapped and on the server
    /// ([`CacheError::MissingBlobs`] otherwise); uploads the entry JSON and the `Action`
    /// and `Command` messages, then calls `UpdateActionResult`.
    pub(crate) async fn publish(
        &self,
        key: &Digest,
        entry: &ActionEntry,
    ) -> Result<(), CacheError> {
        self.check_updates()?;
        let blobs = entry.blobs();
        let mut servers = Vec::new();
        let mut missing = Vec::new();
        for blake3 in blobs {
            match self.server_digest(&blake3) {
                Some(server) if !self.is_bad(&server) => servers.push((blake3, server)),
                _ => missing.push(blake3),
            }
        }
        let on_server: Vec<ServerDigest> = servers.iter().map(|s| s.1).collect();
        let lacking = self.missing_on_server(&on_server).await?;
        missing.extend(
            servers
                .iter()
                .filter(|s| lacking.contains(&s.1))
                .map(|s| s.0),
        );
        if !missing.is_empty() {
            let mut unique = Vec::new();
            for digest in missing {
                if !unique.contains(&digest) {
                    unique.push(digest);
                }
            }
            return Err(CacheError::MissingBlobs {
                key: *key,
                missing: unique,
            });
        }
        let prepared = self.prepare(key, entry)?;
        self.upload(&prepared.blobs()).await?;
        self.update_action_result(key, prepared.action, prepared.layout)
            .await
    }

    /// What storing `entry` under `key` takes. The entry's blobs must be mapped.
    pub(crate) fn prepare(
        &self,
        key: &Digest,
        entry: &ActionEntry,
    ) -> Result<Prepared, CacheError> {
        let json =
            serde_json::to_vec(entry).map_err(|source| CacheError::Encode { key: *key, source })?;
        let (Some(archive), Some(stdout), Some(stderr)) = (
            self.server_digest(&entry.outputs_archive),
            self.server_digest(&entry.stdout),
            self.server_digest(&entry.stderr),
        ) else {
            let missing = entry
                .blobs()
                .into_iter()
                .filter(|d| self.server_digest(d).is_none())
                .collect();
            return Err(CacheError::MissingBlobs { key: *key, missing });
        };
        let layout = Layout {
            entry: ServerDigest::of(self.function, &json),
            archive,
            stdout,
            stderr,
            exit_code: entry.exit_code,
        };
        let action_bytes = action_bytes(self.function, key);
        let command_bytes = command_bytes();
        Ok(Prepared {
            layout,
            action: ServerDigest::of(self.function, &action_bytes),
            command: ServerDigest::of(self.function, &command_bytes),
            json,
            action_bytes,
            command_bytes,
        })
    }

    /// `UpdateActionResult` for `key`, whose blobs and entry JSON are on the server.
    pub(crate) async fn update_action_result(
        &self,
        key: &Digest,
        action: ServerDigest,
        layout: Layout,
    ) -> Result<(), CacheError> {
        self.store_action_result(key, action, layout.to_action_result())
            .await
    }

    /// `UpdateActionResult` of `result` under `action`, the action digest of `key`.
    pub(crate) async fn store_action_result(
        &self,
        key: &Digest,
        action: ServerDigest,
        result: re::ActionResult,
    ) -> Result<(), CacheError> {
        let request = re::UpdateActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(action.to_proto()),
            action_result: Some(result),
            results_cache_policy: None,
            digest_function: self.function.proto(),
        };
        let subject = format!("action {} (key {key})", action.hex());
        self.client
            .call(
                Rpc::UpdateActionResult,
                &subject,
                self.client.timeout(),
                |ch| {
                    let request = request.clone();
                    let mut client = self.action_cache(ch);
                    async move { client.update_action_result(request).await }
                },
            )
            .await?;
        Ok(())
    }

    /// Fails when the server refuses action-cache updates.
    pub(crate) fn check_updates(&self) -> Result<(), CacheError> {
        if self.update_enabled {
            Ok(())
        } else {
            Err(self.client.remote(
                Rpc::UpdateActionResult,
                "not attempted: the server does not allow action-cache updates (its capabilities say update_enabled = false); use the remote cache read-only".to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::DigestFunction;

    fn sha(bytes: &[u8]) -> ServerDigest {
        ServerDigest::of(DigestFunction::Sha256, bytes)
    }

    fn layout() -> Layout {
        Layout {
            entry: sha(b"entry"),
            archive: sha(b"archive"),
            stdout: sha(b"out"),
            stderr: sha(b""),
            exit_code: 3,
        }
    }

    #[test]
    fn the_layout_round_trips() {
        let result = layout().to_action_result();
        assert_eq!(result.output_files[0].path, ENTRY_PATH);
        assert_eq!(result.output_files[1].path, ARCHIVE_PATH);
        assert_eq!(Layout::from_action_result(&result), Ok(layout()));
    }

    #[test]
    fn foreign_or_broken_results_are_refused() {
        let mut result = layout().to_action_result();
        result.output_files.remove(0);
        assert!(
            Layout::from_action_result(&result)
                .unwrap_err()
                .contains(ENTRY_PATH)
        );

        let mut result = layout().to_action_result();
        let twice = result.output_files[1].clone();
        result.output_files.push(twice);
        assert!(
            Layout::from_action_result(&result)
                .unwrap_err()
                .contains("twice")
        );

        let mut result = layout().to_action_result();
        result.stdout_digest = None;
        assert!(
            Layout::from_action_result(&result)
                .unwrap_err()
                .contains("stdout")
        );

        let mut result = layout().to_action_result();
        result.output_files[1].digest = Some(re::Digest {
            hash: "zz".into(),
            size_bytes: 2,
        });
        assert!(
            Layout::from_action_result(&result)
                .unwrap_err()
                .contains(ARCHIVE_PATH)
        );

        let mut result = layout().to_action_result();
        result.stderr_digest.as_mut().unwrap().size_bytes = -5;
        assert!(
            Layout::from_action_result(&result)
                .unwrap_err()
                .contains("negative")
        );

        // Extra output files are ignored.
        let mut result = layout().to_action_result();
        result.output_files.push(re::OutputFile {
            path: "other".into(),
            ..Default::default()
        });
        assert_eq!(Layout::from_action_result(&result), Ok(layout()));
    }
}
