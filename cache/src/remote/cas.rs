//! Blob transfers in the server's digests: `FindMissingBlobs`, uploads (`BatchUpdateBlobs`
//! for small blobs, `ByteStream.Write` for large ones) and verified downloads
//! (`BatchReadBlobs` or `ByteStream.Read`).

use std::collections::HashSet;
use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream as bs;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use tonic::Code;

use super::RemoteStore;
use super::client::Rpc;
use super::digests::ServerDigest;
use crate::CacheError;

/// Digests per `FindMissingBlobs` request.
const FIND_MISSING_CHUNK: usize = 2048;
/// Blobs per `BatchUpdateBlobs` request.
const MAX_BATCH_COUNT: usize = 500;
/// Bytes a batch request spends on one blob besides its data (digest, framing), counted
/// generously.
const PER_BLOB_OVERHEAD: u64 = 256;
/// Bytes a batch request spends besides its blobs, counted generously.
const REQUEST_OVERHEAD: u64 = 1024;
/// Bytes of data per `ByteStream.Write` message.
const WRITE_CHUNK: usize = 1024 * 1024;
/// The most bytes reserved up front for a download, whatever size the digest claims.
const MAX_RESERVE: u64 = 16 * 1024 * 1024;

/// What a download found.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The bytes, verified against the server digest.
    Bytes(Vec<u8>),
    /// The server does not have the blob.
    Missing,
    /// The server sent bytes that are not the blob; why.
    Corrupt(String),
    /// The digest claims more bytes than the store accepts.
    TooLarge,
}

impl RemoteStore {
    /// Whether a blob of `size` bytes goes in a batch request (else through ByteStream).
    fn fits_batch(&self, size: u64) -> bool {
        size + PER_BLOB_OVERHEAD + REQUEST_OVERHEAD <= self.batch_limit
    }

    /// The largest message the clients accept: a full batch with margin.
    pub(crate) fn max_message(&self) -> usize {
        (self.batch_limit.max(4 << 20) + (1 << 20)) as usize
    }

    fn cas(
        &self,
        channel: tonic::transport::Channel,
    ) -> ContentAddressableStorageClient<tonic::transport::Channel> {
        ContentAddressableStorageClient::new(channel).max_decoding_message_size(self.max_message())
    }

    fn byte_stream(
        &self,
        channel: tonic::transport::Channel,
    ) -> bs::byte_stream_client::ByteStreamClient<tonic::transport::Channel> {
        bs::byte_stream_client::ByteStreamClient::new(channel)
            .max_decoding_message_size(self.max_message())
    }

    /// `<instance>/` or nothing for the default instance.
    fn instance_prefix(&self) -> String {
        if self.instance.is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance)
        }
    }

    /// Which of `digests` the server lacks. Empty blobs are never missing (REAPI servers
    /// must behave as if they always have the empty blob).
    pub(crate) async fn missing_on_server(
        &self,
        digests: &[ServerDigest],
    ) -> Result<HashSet<ServerDigest>, CacheError> {
        let mut asked: Vec<ServerDigest> = Vec::new();
        let mut seen = HashSet::new();
        for d in digests {
            if d.size > 0 && seen.insert(*d) {
                asked.push(*d);
            }
        }
        let mut missing = HashSet::new();
        for chunk in asked.chunks(FIND_MISSING_CHUNK) {
            let request = re::FindMissingBlobsRequest {
                instance_name: self.instance.clone(),
                blob_digests: chunk.iter().map(|d| d.to_proto()).collect(),
                digest_function: self.function.proto(),
            };
            let subject = match chunk {
                [one] => format!("blob {one}"),
                many => format!("{} blobs", many.len()),
            };
            let response = self
                .client
                .call(
                    Rpc::FindMissingBlobs,
                    &subject,
                    self.client.timeout(),
                    |ch| {
                        let request = request.clone();
                        let mut cas = self.cas(ch);
                        async move { cas.find_missing_blobs(request).await }
                    },
                )
                .await?
                .into_inner();
            for d in &response.missing_blob_digests {
                match ServerDigest::from_proto(d) {
                    // Only what was asked about counts; anything else is noise.
                    Ok(d) if seen.contains(&d) => {
                        missing.insert(d);
                    }
                    Ok(_) => {}
                    Err(why) => {
                        return Err(self.client.remote(
                            Rpc::FindMissingBlobs,
                            format!("{subject}: the server answered with a bad digest: {why}"),
                        ));
                    }
                }
            }
        }
        Ok(missing)
    }

    /// Uploads `blobs` (each the bytes of its digest, already checked by the caller): small
    /// ones in `BatchUpdateBlobs` requests under the server's size limit, large ones with
    /// `ByteStream.Write`. Empty blobs are skipped. Succeeds only if every blob was stored.
    pub(crate) async fn upload(&self, blobs: &[(ServerDigest, &[u8])]) -> Result<(), CacheError> {
        let mut batch: Vec<(ServerDigest, &[u8])> = Vec::new();
        let mut batch_bytes = REQUEST_OVERHEAD;
        for &(digest, bytes) in blobs {
            if digest.size == 0 {
                continue;
            }
            if !self.fits_batch(digest.size) {
                self.write_stream(digest, bytes).await?;
                continue;
            }
            let cost = digest.size + PER_BLOB_OVERHEAD;
            if batch.len() == MAX_BATCH_COUNT || batch_bytes + cost > self.batch_limit {
                self.batch_update(&batch).await?;
                batch.clear();
                batch_bytes = REQUEST_OVERHEAD;
            }
            batch.push((digest, bytes));
            batch_bytes += cost;
        }
        if !batch.is_empty() {
            self.batch_update(&batch).await?;
        }
        for (digest, _) in blobs {
            self.clear_bad(digest);
        }
        Ok(())
    }

    async fn batch_update(&self, blobs: &[(ServerDigest, &[u8])]) -> Result<(), CacheError> {
        let request = re::BatchUpdateBlobsRequest {
            instance_name: self.instance.clone(),
            requests: blobs
                .iter()
                .map(|(d, bytes)| re::batch_update_blobs_request::Request {
                    digest: Some(d.to_proto()),
                    data: bytes.to_vec(),
                    compressor: re::compressor::Value::Identity as i32,
                })
                .collect(),
            digest_function: self.function.proto(),
        };
        let subject = match blobs {
            [(one, _)] => format!("blob {one}"),
            many => format!("{} blobs", many.len()),
        };
        let bytes: u64 = blobs.iter().map(|(d, _)| d.size).sum();
        let response = self
            .client
            .call(
                Rpc::BatchUpdateBlobs,
                &subject,
                self.client.stream_deadline(bytes),
                |ch| {
                    let request = request.clone();
                    let mut cas = self.cas(ch);
                    async move { cas.batch_update_blobs(request).await }
                },
            )
            .await?
            .into_inner();
        // What the server says about each blob; a blob it does not mention was not stored.
        let mut statuses = std::collections::HashMap::new();
        for r in &response.responses {
            if let Some(Ok(digest)) = r.digest.as_ref().map(ServerDigest::from_proto) {
                statuses.insert(digest, r.status.as_ref());
            }
        }
        let mut failures = Vec::new();
        for (digest, _) in blobs {
            match statuses.get(digest) {
                None => failures.push(format!(
                    "blob {digest}: the server did not report it stored"
                )),
                Some(Some(status)) if status.code != Code::Ok as i32 => failures.push(format!(
                    "blob {digest}: {:?}: {}",
                    Code::from_i32(status.code),
                    status.message
                )),
                Some(_) => {}
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(self
                .client
                .remote(Rpc::BatchUpdateBlobs, failures.join("; ")))
        }
    }

    /// Uploads one blob with `ByteStream.Write`, in [`WRITE_CHUNK`] messages, under a fresh
    /// upload id per attempt (an interrupted write is started again, not resumed).
    async fn write_stream(&self, digest: ServerDigest, bytes: &[u8]) -> Result<(), CacheError> {
        let data: Arc<[u8]> = Arc::from(bytes);
        let subject = format!("blob {digest}");
        let prefix = self.instance_prefix();
        let segment = self.function.resource_segment();
        let response = self
            .client
            .call(
                Rpc::ByteStreamWrite,
                &subject,
                self.client.stream_deadline(digest.size),
                |ch| {
                    let resource =
                        format!("{prefix}uploads/{}/blobs/{segment}{digest}", upload_id());
                    let requests = write_requests(resource, Arc::clone(&data));
                    let mut client = self.byte_stream(ch);
                    async move { client.write(tokio_stream::iter(requests)).await }
                },
            )
            .await?
            .into_inner();
        // A server that already had the blob may end the write early; it still reports the
        // full size as committed.
        if u64::try_from(response.committed_size).ok() != Some(digest.size) {
            return Err(self.client.remote(
                Rpc::ByteStreamWrite,
                format!(
                    "{subject}: the server committed {} bytes, not {}",
                    response.committed_size, digest.size
                ),
            ));
        }
        Ok(())
    }

    /// Downloads the blob `digest` and verifies it: the bytes returned always have exactly
    /// that digest. `what` names the blob in errors.
    pub(crate) async fn download(
        &self,
        digest: ServerDigest,
        limit: u64,
    ) -> Result<Fetched, CacheError> {
        if digest.size > limit {
            return Ok(Fetched::TooLarge);
        }
        let fetched = if digest.size == 0 {
            Fetched::Bytes(Vec::new())
        } else if self.fits_batch(digest.size) {
            self.batch_read(digest).await?
        } else {
            self.read_stream(digest).await?
        };
        Ok(match fetched {
            Fetched::Bytes(bytes) if !digest.matches(self.function, &bytes) => {
                Fetched::Corrupt(format!(
                    "the server sent {} bytes with {} {}, not the blob {digest}",
                    bytes.len(),
                    self.function,
                    ServerDigest::of(self.function, &bytes).hex()
                ))
            }
            other => other,
        })
    }

    async fn batch_read(&self, digest: ServerDigest) -> Result<Fetched, CacheError> {
        let request = re::BatchReadBlobsRequest {
            instance_name: self.instance.clone(),
            digests: vec![digest.to_proto()],
            acceptable_compressors: Vec::new(),
            digest_function: self.function.proto(),
        };
        let subject = format!("blob {digest}");
        let response = self
            .client
            .call(
                Rpc::BatchReadBlobs,
                &subject,
                self.client.stream_deadline(digest.size),
                |ch| {
                    let request = request.clone();
                    let mut cas = self.cas(ch);
                    async move { cas.batch_read_blobs(request).await }
                },
            )
            .await?
            .into_inner();
        let Some(answer) = response
            .responses
            .into_iter()
            .find(|r| r.digest.as_ref().map(ServerDigest::from_proto) == Some(Ok(digest)))
        else {
            return Err(self.client.remote(
                Rpc::BatchReadBlobs,
                format!("{subject}: the server's answer does not mention the blob"),
            ));
        };
        let code = answer.status.as_ref().map_or(Code::Ok as i32, |s| s.code);
        if code == Code::NotFound as i32 {
            return Ok(Fetched::Missing);
        }
        if code != Code::Ok as i32 {
            let message = answer.status.map(|s| s.message).unwrap_or_default();
            return Err(self.client.remote(
                Rpc::BatchReadBlobs,
                format!("{subject}: {:?}: {message}", Code::from_i32(code)),
            ));
        }
        if answer.compressor != re::compressor::Value::Identity as i32 {
            return Ok(Fetched::Corrupt(format!(
                "the server sent it compressed ({}) though no compression was accepted",
                answer.compressor
            )));
        }
        Ok(Fetched::Bytes(answer.data))
    }

    async fn read_stream(&self, digest: ServerDigest) -> Result<Fetched, CacheError> {
        let resource = format!(
            "{}blobs/{}{digest}",
            self.instance_prefix(),
            self.function.resource_segment()
        );
        let subject = format!("blob {digest}");
        self.client
            .call(
                Rpc::ByteStreamRead,
                &subject,
                self.client.stream_deadline(digest.size),
                |ch| {
                    let request = bs::ReadRequest {
                        resource_name: resource.clone(),
                        read_offset: 0,
                        read_limit: 0,
                    };
                    let mut client = self.byte_stream(ch);
                    async move {
                        let mut stream = match client.read(request).await {
                            Ok(response) => response.into_inner(),
                            Err(status) if status.code() == Code::NotFound => {
                                return Ok(Fetched::Missing);
                            }
                            Err(status) => return Err(status),
                        };
                        // Reserve no more than a bound, whatever the size claims; the data
                        // has to arrive before memory is spent on it.
                        let mut bytes = Vec::with_capacity(digest.size.min(MAX_RESERVE) as usize);
                        loop {
                            match stream.message().await {
                                Ok(Some(message)) => {
                                    if (bytes.len() + message.data.len()) as u64 > digest.size {
                                        return Ok(Fetched::Corrupt(format!(
                                            "the server sent more than {} bytes",
                                            digest.size
                                        )));
                                    }
                                    bytes.extend_from_slice(&message.data);
                                }
                                Ok(None) => return Ok(Fetched::Bytes(bytes)),
                                Err(status) if status.code() == Code::NotFound => {
                                    return Ok(Fetched::Missing);
                                }
                                Err(status) => return Err(status),
                            }
                        }
                    }
                },
            )
            .await
    }
}

/// The messages of one `ByteStream.Write` of `data` to `resource`: the resource name in the
/// first, `finish_write` on the last (a single message for empty data).
fn write_requests(
    resource: String,
    data: Arc<[u8]>,
) -> impl Iterator<Item = bs::WriteRequest> + Send + 'static {
    let chunks = data.len().div_ceil(WRITE_CHUNK).max(1);
    (0..chunks).map(move |i| {
        let start = i * WRITE_CHUNK;
        let end = (start + WRITE_CHUNK).min(data.len());
        bs::WriteRequest {
            resource_name: if i == 0 {
                resource.clone()
            } else {
                String::new()
            },
            write_offset: start as i64,
            finish_write: i + 1 == chunks,
            data: data[start..end].to_vec(),
        }
    })
}

/// A fresh upload id in the UUID text form REAPI asks for (random enough to be unique:
/// BLAKE3 of the process id, the time and a counter).
fn upload_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(&now.as_nanos().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_uuids_and_unique() {
        let a = upload_id();
        let b = upload_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
    }

    #[test]
    fn writes_are_chunked_with_the_name_first_and_finish_last() {
        let data: Arc<[u8]> = (0..(2 * WRITE_CHUNK + 5)).map(|i| i as u8).collect();
        let requests: Vec<_> = write_requests("r".into(), Arc::clone(&data)).collect();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].resource_name, "r");
        assert!(requests[1..].iter().all(|r| r.resource_name.is_empty()));
        assert_eq!(
            requests.iter().map(|r| r.write_offset).collect::<Vec<_>>(),
            [0, WRITE_CHUNK as i64, 2 * WRITE_CHUNK as i64]
        );
        assert_eq!(
            requests.iter().map(|r| r.finish_write).collect::<Vec<_>>(),
            [false, false, true]
        );
        let joined: Vec<u8> = requests.iter().flat_map(|r| r.data.clone()).collect();
        assert_eq!(&joined[..], &data[..]);
    }
}
