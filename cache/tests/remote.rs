//! [`RemoteStore`] against a real BuildGrid 0.4.4 server, one per test (see
//! `tests/src/buildgrid.rs` of the end-to-end test crate).
//!
//! Run with `cargo test -p hermetic-cache --features remote --test remote`.

#![cfg(feature = "remote")]

use std::time::{Duration, Instant};

use hermetic_cache::{
    ActionEntry, CacheError, Digest, DigestFunction, DiskStore, FileEntry, MultiLevel, NewResult,
    ReadOnly, RemoteOptions, RemoteStore, Store, tree_digest,
};
use sha2::Digest as _;

#[path = "../../tests/src/buildgrid.rs"]
mod buildgrid;

use buildgrid::Server;

/// A store on `server` with its own digest map directory `map`.
async fn store(server: &Server, map: &tempfile::TempDir) -> RemoteStore {
    let mut options = RemoteOptions::default();
    options.map_dir = Some(map.path().to_path_buf());
    RemoteStore::connect(&server.url, options).await.unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `len` bytes that do not repeat in any short period.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&seed.to_le_bytes());
        hasher.update(&counter.to_le_bytes());
        out.extend_from_slice(hasher.finalize().as_bytes());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// A result for `key` whose blobs are `archive`, `stdout`, `stderr`.
fn result(key: &str, archive: Vec<u8>, stdout: &[u8], stderr: &[u8]) -> NewResult {
    let output_files = vec![FileEntry {
        path: "out/data.bin".into(),
        digest: Digest::of(b"data"),
        size: 4,
    }];
    let entry = ActionEntry {
        outputs_archive: Digest::of(&archive),
        output_tree: tree_digest(&output_files),
        output_files,
        stdout: Digest::of(stdout),
        stderr: Digest::of(stderr),
        exit_code: 0,
        fuel_used: 42,
        peak_memory: 65536,
        duration_ms: 7,
    };
    let mut blobs = vec![(Digest::of(&archive), archive)];
    for blob in [stdout, stderr] {
        if !blobs.iter().any(|(d, _)| *d == Digest::of(blob)) {
            blobs.push((Digest::of(blob), blob.to_vec()));
        }
    }
    NewResult {
        key: Digest::of(key.as_bytes()),
        entry,
        blobs,
    }
}

/// Larger than BuildGrid's 4 MiB batch limit: goes through ByteStream.
const LARGE: usize = 5 * 1024 * 1024 + 123;

#[tokio::test]
async fn a_result_put_by_one_store_is_a_verified_hit_for_another() {
    let server = Server::start();
    let (map_a, map_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = store(&server, &map_a).await;
    let batch = result("action one", noise(LARGE, 1), b"hello stdout\n", b"");
    a.put_results(std::slice::from_ref(&batch)).await.unwrap();
    // The blobs really are on the server, under their SHA-256.
    let archive = &batch.blobs[0].1;
    assert_eq!(
        std::fs::read(server.cas_file(&sha256_hex(archive))).unwrap(),
        *archive
    );

    // A fresh store knows nothing but what the server holds.
    let b = store(&server, &map_b).await;
    assert_eq!(b.find_missing(&batch.entry.blobs()).await.unwrap().len(), 2);
    assert_eq!(
        b.get_blob(&batch.entry.outputs_archive).await.unwrap(),
        None
    );
    assert_eq!(
        b.get_action(&batch.key).await.unwrap(),
        Some(batch.entry.clone())
    );
    for (digest, bytes) in &batch.blobs {
        assert_eq!(b.get_blob(digest).await.unwrap().as_ref(), Some(bytes));
    }
    assert_eq!(b.find_missing(&batch.entry.blobs()).await.unwrap(), vec![]);
    assert_eq!(
        b.get_action(&Digest::of(b"another action")).await.unwrap(),
        None
    );

    // What b verified was written to its map: a third store on the same map directory
    // fetches the blobs without a lookup first.
    drop(b);
    let b2 = store(&server, &map_b).await;
    assert_eq!(
        b2.get_blob(&batch.entry.outputs_archive)
            .await
            .unwrap()
            .as_ref(),
        Some(archive)
    );

    // The blob-by-blob path: put_blob then put_action.
    let single = result("action two", noise(1000, 2), b"two\n", b"warning\n");
    let err = a.put_action(&single.key, &single.entry).await.unwrap_err();
    assert!(matches!(err, CacheError::MissingBlobs { .. }), "{err}");
    for (digest, bytes) in &single.blobs {
        a.put_blob(digest, bytes).await.unwrap();
    }
    let wrong = a.put_blob(&Digest::of(b"x"), b"y").await.unwrap_err();
    assert!(
        matches!(wrong, CacheError::DigestMismatch { .. }),
        "{wrong}"
    );
    a.put_action(&single.key, &single.entry).await.unwrap();
    assert_eq!(
        b2.get_action(&single.key).await.unwrap(),
        Some(single.entry.clone())
    );
    for (digest, bytes) in &single.blobs {
        assert_eq!(b2.get_blob(digest).await.unwrap().as_ref(), Some(bytes));
    }
}

#[tokio::test]
async fn corrupt_blobs_on_the_server_are_misses_never_wrong_bytes() {
    let server = Server::start();
    let (map_a, map_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = store(&server, &map_a).await;
    let good = result("good", noise(LARGE, 3), b"small stdout", b"small stderr");
    let bad_entry = result("bad entry", noise(100, 4), b"x", b"y");
    a.put_results(&[good.clone(), bad_entry.clone()])
        .await
        .unwrap();

    let flip = |bytes: &[u8]| {
        let path = server.cas_file(&sha256_hex(bytes));
        let mut content = std::fs::read(&path).unwrap();
        assert_eq!(content, bytes);
        let middle = content.len() / 2;
        content[middle] ^= 0x01;
        std::fs::write(&path, content).unwrap();
    };
    // The large archive (ByteStream.Read) and the small stdout (BatchReadBlobs) of `good`.
    flip(&good.blobs[0].1);
    flip(&good.blobs[1].1);
    // The entry JSON of `bad_entry`.
    flip(&serde_json::to_vec(&bad_entry.entry).unwrap());

    let b = store(&server, &map_b).await;
    // The entry itself is sound: a hit (a lookup checks presence, not every byte) ...
    assert_eq!(
        b.get_action(&good.key).await.unwrap(),
        Some(good.entry.clone())
    );
    // ... but the corrupt blobs are misses, never wrong bytes, and stay misses.
    for _ in 0..2 {
        assert_eq!(b.get_blob(&good.entry.outputs_archive).await.unwrap(), None);
        assert_eq!(b.get_blob(&good.entry.stdout).await.unwrap(), None);
    }
    assert_eq!(
        b.get_blob(&good.entry.stderr).await.unwrap(),
        Some(b"small stderr".to_vec())
    );
    assert_eq!(
        b.find_missing(&good.entry.blobs()).await.unwrap(),
        vec![good.entry.outputs_archive, good.entry.stdout]
    );
    // Now that they are known corrupt, the entry is a miss too.
    assert_eq!(b.get_action(&good.key).await.unwrap(), None);
    // A corrupt entry JSON is a miss.
    assert_eq!(b.get_action(&bad_entry.key).await.unwrap(), None);

    // Through a MultiLevel, the corrupt archive turns the remote hit into a miss and
    // nothing reaches the local level.
    let local_dir = tempfile::tempdir().unwrap();
    let local = DiskStore::open(local_dir.path()).unwrap();
    let map_c = tempfile::tempdir().unwrap();
    let ml = MultiLevel::new(vec![
        Box::new(local),
        Box::new(store(&server, &map_c).await),
    ]);
    assert_eq!(ml.get_action(&good.key).await.unwrap(), None);
    let local = DiskStore::open(local_dir.path()).unwrap();
    assert_eq!(local.get_action(&good.key).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_and_once() {
    // A port nobody listens on: the connection is refused, every retry too.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("grpc://127.0.0.1:{closed}");
    let started = Instant::now();
    let err = RemoteStore::connect(&url, RemoteOptions::default())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("GetCapabilities"),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // A server that goes away after the connection.
    let server = Server::start();
    let map = tempfile::tempdir().unwrap();
    let remote = store(&server, &map).await;
    let batch = result("before", noise(10, 5), b"o", b"e");
    remote
        .put_results(std::slice::from_ref(&batch))
        .await
        .unwrap();
    server.stop();
    assert!(!remote.is_down());

    let started = Instant::now();
    let err = remote.get_action(&batch.key).await.unwrap_err();
    let first = started.elapsed();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains(&server.url), "{err}");
    assert!(err.to_string().contains("GetActionResult"), "{err}");
    assert!(first < Duration::from_secs(15), "{first:?}");
    assert!(remote.is_down());

    // Every later call fails at once.
    let started = Instant::now();
    assert!(remote.get_action(&batch.key).await.is_err());
    assert!(remote.get_blob(&batch.entry.stdout).await.is_err());
    assert!(remote.find_missing(&batch.entry.blobs()).await.is_err());
    assert!(remote.put_blob(&Digest::of(b"z"), b"z").await.is_err());
    assert!(
        remote
            .put_results(std::slice::from_ref(&batch))
            .await
            .is_err()
    );
    let later = started.elapsed();
    assert!(later < Duration::from_secs(1), "{later:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_costs_the_deadline_and_the_retries_only() {
    // Accepts connections (the kernel completes the handshake) but never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut options = RemoteOptions::default();
    options.timeout = Duration::from_millis(300);
    options.retries = 1;
    options.backoff = Duration::from_millis(10);
    let started = Instant::now();
    let err = RemoteStore::connect(&url, options).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("after 2 attempts"), "{err}");
    // Two deadlines and one backoff, with room for a slow machine.
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(listener);
}

#[tokio::test]
async fn a_read_only_remote_level_is_never_written() {
    let server = Server::start();
    let map = tempfile::tempdir().unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let ml = MultiLevel::new(vec![
        Box::new(DiskStore::open(local_dir.path()).unwrap()),
        Box::new(ReadOnly(store(&server, &map).await)),
    ]);
    let batch = result("local only", noise(LARGE, 6), b"out", b"err");
    assert_eq!(ml.get_action(&batch.key).await.unwrap(), None);
    ml.put_results(std::slice::from_ref(&batch)).await.unwrap();
    let single = result("also local", noise(50, 7), b"o2", b"e2");
    for (digest, bytes) in &single.blobs {
        ml.put_blob(digest, bytes).await.unwrap();
    }
    ml.put_action(&single.key, &single.entry).await.unwrap();
    assert_eq!(
        ml.get_action(&batch.key).await.unwrap(),
        Some(batch.entry.clone())
    );

    // The server has nothing: no blob in its CAS, no entry for a third store.
    assert_eq!(server.cas_file_count(), 0);
    let other_map = tempfile::tempdir().unwrap();
    let third = store(&server, &other_map).await;
    assert_eq!(third.get_action(&batch.key).await.unwrap(), None);
    assert_eq!(third.get_action(&single.key).await.unwrap(), None);
}

#[tokio::test]
async fn buildgrid_negotiates_sha256() {
    let server = Server::start();
    let map = tempfile::tempdir().unwrap();
    let remote = store(&server, &map).await;
    assert_eq!(remote.digest_function(), DigestFunction::Sha256);
    assert_eq!(remote.digest_function().name(), "SHA256");
    assert!(remote.updates_allowed());
    assert!(!remote.is_read_only());
    assert_eq!(remote.describe(), format!("remote cache at {}", server.url));
    assert_eq!(remote.url(), server.url);
    // The map file is the SHA-256 one.
    let blob = b"mapped";
    remote.put_blob(&Digest::of(blob), blob).await.unwrap();
    let text = std::fs::read_to_string(map.path().join("digest-map-sha256.v1")).unwrap();
    assert!(
        text.starts_with(&format!("{} {} 6 ", Digest::of(blob), sha256_hex(blob))),
        "{text}"
    );
}
