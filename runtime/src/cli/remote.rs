//! What `run` and `worker` share about a REAPI server: connecting, and the local cache in front
//! of a remote one.

use std::sync::Arc;

use hermetic_cache::{DiskStore, MultiLevel, ReadOnly, RemoteOptions, RemoteStore, Store};

use super::Cli;

/// Connects to the REAPI server at `url`. Verified digest pairs are kept beside the local
/// cache (`remote-map/`), so a later run knows which server blobs are which.
pub async fn connect(cli: &Cli, url: &str, instance: &str) -> Result<RemoteStore, String> {
    let mut options = RemoteOptions::default();
    options.instance_name = instance.to_string();
    options.map_dir = super::cache_root(cli).map(|root| root.join("remote-map"));
    RemoteStore::connect(url, options)
        .await
        .map_err(|e| e.to_string())
}

/// [`connect`] from synchronous code, on a runtime made for the call (the store's connection
/// lives on a runtime of its own, so this one may end with the call). Only a run that names a
/// server pays for it.
pub fn connect_now(cli: &Cli, url: &str, instance: &str) -> Result<RemoteStore, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to connect to {url}: {e}"))?
        .block_on(connect(cli, url, instance))
}

/// The result store of a run: the local cache, in front of the remote one if there is one
/// (read-only with `--remote-cache-readonly`, for untrusted runs such as pull requests).
pub fn layered(
    local: Option<Arc<DiskStore>>,
    remote: Option<Arc<RemoteStore>>,
    read_only: bool,
) -> Option<Arc<dyn Store>> {
    let remote: Option<Box<dyn Store>> = remote.map(|r| -> Box<dyn Store> {
        if read_only {
            Box::new(ReadOnly(r))
        } else {
            Box::new(r)
        }
    });
    match (local, remote) {
        (Some(local), Some(remote)) => {
            Some(Arc::new(MultiLevel::new(vec![Box::new(local), remote])))
        }
        (Some(local), None) => Some(local),
        (None, Some(remote)) => Some(Arc::from(remote)),
        (None, None) => None,
    }
}
