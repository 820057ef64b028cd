//! What remote execution needs of a REAPI server's CAS, in the server's own digests: name
//! bytes, upload what is missing, fetch verified bytes. [`hermetic_cache::RemoteStore`] provides
//! it over the same connection as the remote cache.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use hermetic_cache::RemoteStore;

/// A CAS in the server's digest function.
#[async_trait::async_trait]
pub trait Cas: Send + Sync {
    /// The digest the server gives `bytes`.
    fn digest_of(&self, bytes: &[u8]) -> re::Digest;
    /// Stores `blobs`, skipping those the server has.
    async fn upload(&self, blobs: Vec<(re::Digest, Vec<u8>)>) -> Result<(), String>;
    /// The bytes of `digest`, checked against it; an error when they are missing or corrupt.
    async fn fetch(&self, digest: &re::Digest) -> Result<Vec<u8>, String>;
}

#[async_trait::async_trait]
impl Cas for RemoteStore {
    fn digest_of(&self, bytes: &[u8]) -> re::Digest {
        self.server_digest_of(bytes)
    }

    async fn upload(&self, blobs: Vec<(re::Digest, Vec<u8>)>) -> Result<(), String> {
        self.upload_server_blobs(blobs)
            .await
            .map_err(|e| e.to_string())
    }

    async fn fetch(&self, digest: &re::Digest) -> Result<Vec<u8>, String> {
        self.fetch_server_blob(digest)
            .await
            .map_err(|e| e.to_string())
    }
}

/// [`Cas::fetch`] for materialising trees.
pub(crate) struct CasFetch<'a>(pub &'a dyn Cas);

#[async_trait::async_trait]
impl super::tree::Fetch for CasFetch<'_> {
    async fn fetch(&self, digest: &re::Digest) -> Result<Vec<u8>, String> {
        self.0.fetch(digest).await
    }
}
