//! Tests of [`ReadOnly`] and [`MultiLevel`] over real [`DiskStore`]s and a broken store.

use std::sync::Arc;

use crate::action::tests::entry_for;
use crate::{ActionEntry, CacheError, Digest, DiskStore, MultiLevel, ReadOnly, Store};

/// A store that can never answer.
#[derive(Debug)]
struct Broken;

fn down() -> CacheError {
    CacheError::Unavailable {
        store: "broken".into(),
        message: "connection refused".into(),
    }
}

#[async_trait::async_trait]
impl Store for Broken {
    async fn get_action(&self, _: &Digest) -> Result<Option<ActionEntry>, CacheError> {
        Err(down())
    }
    async fn put_action(&self, _: &Digest, _: &ActionEntry) -> Result<(), CacheError> {
        Err(down())
    }
    async fn get_blob(&self, _: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        Err(down())
    }
    async fn put_blob(&self, _: &Digest, _: &[u8]) -> Result<(), CacheError> {
        Err(down())
    }
    async fn find_missing(&self, _: &[Digest]) -> Result<Vec<Digest>, CacheError> {
        Err(down())
    }
    fn describe(&self) -> String {
        "broken".into()
    }
}

struct Fixture {
    _dirs: Vec<tempfile::TempDir>,
    stores: Vec<Arc<DiskStore>>,
}

fn disks(n: usize) -> Fixture {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores = dirs
        .iter()
        .map(|d| Arc::new(DiskStore::open(d.path()).unwrap()))
        .collect();
    Fixture {
        _dirs: dirs,
        stores,
    }
}

fn boxed<S: Store + 'static>(store: S) -> Box<dyn Store> {
    Box::new(store)
}

const KEY: &str = "action";

fn key() -> Digest {
    Digest::of(KEY.as_bytes())
}

/// Puts blobs and entry straight into `store`.
async fn seed(store: &dyn Store) -> ActionEntry {
    let entry = entry_for(b"archive", b"stdout", b"stderr");
    for blob in [&b"archive"[..], b"stdout", b"stderr"] {
        store.put_blob(&Digest::of(blob), blob).await.unwrap();
    }
    store.put_action(&key(), &entry).await.unwrap();
    entry
}

#[tokio::test]
async fn read_only_passes_gets_and_skips_puts() {
    let f = disks(1);
    let inner = &f.stores[0];
    let entry = seed(inner.as_ref()).await;
    let ro = ReadOnly(Arc::clone(inner));
    assert!(ro.is_read_only());
    assert!(ro.describe().ends_with("(read-only)"), "{}", ro.describe());
    assert_eq!(ro.get_action(&key()).await.unwrap(), Some(entry.clone()));
    assert_eq!(
        ro.get_blob(&Digest::of(b"stdout")).await.unwrap(),
        Some(b"stdout".to_vec())
    );

    let new = Digest::of(b"new blob");
    ro.put_blob(&new, b"new blob").await.unwrap();
    assert_eq!(inner.find_missing(&[new]).await.unwrap(), vec![new]);
    let other = Digest::of(b"other key");
    ro.put_action(&other, &entry).await.unwrap();
    assert_eq!(inner.get_action(&other).await.unwrap(), None);
}

#[tokio::test]
async fn a_lower_hit_is_backfilled_into_upper_writable_levels() {
    let f = disks(3);
    let entry = seed(f.stores[2].as_ref()).await;
    let ml = MultiLevel::new(vec![
        boxed(Arc::clone(&f.stores[0])),
        boxed(ReadOnly(Arc::clone(&f.stores[1]))),
        boxed(Arc::clone(&f.stores[2])),
    ]);
    assert_eq!(ml.get_action(&key()).await.unwrap(), Some(entry.clone()));
    // Level 0 now has the entry and its blobs; the read-only level 1 was left alone.
    assert_eq!(
        f.stores[0].load_action(&key()).unwrap(),
        Some(entry.clone())
    );
    for blob in entry.blobs() {
        assert!(f.stores[0].load_blob(&blob).unwrap().is_some());
    }
    assert_eq!(f.stores[1].load_action(&key()).unwrap(), None);
    assert_eq!(f.stores[1].missing_blobs(&entry.blobs()).unwrap().len(), 3);
}

#[tokio::test]
async fn a_lower_hit_with_an_unusable_blob_is_a_miss() {
    let f = disks(2);
    let entry = seed(f.stores[1].as_ref()).await;
    // Corrupt the archive blob in the lower level.
    let path = f.stores[1]
        .root()
        .join("cas")
        .join(&entry.outputs_archive.to_string()[..2])
        .join(entry.outputs_archive.to_string());
    std::fs::write(&path, b"Archive").unwrap();
    let ml = MultiLevel::new(vec![
        boxed(Arc::clone(&f.stores[0])),
        boxed(Arc::clone(&f.stores[1])),
    ]);
    assert_eq!(ml.get_action(&key()).await.unwrap(), None);
    assert_eq!(f.stores[0].load_action(&key()).unwrap(), None);
}

#[tokio::test]
async fn blob_hits_are_backfilled() {
    let f = disks(2);
    let d = Digest::of(b"blob");
    f.stores[1].store_blob(&d, b"blob").unwrap();
    let ml = MultiLevel::new(vec![
        boxed(Arc::clone(&f.stores[0])),
        boxed(Arc::clone(&f.stores[1])),
    ]);
    assert_eq!(ml.get_blob(&d).await.unwrap(), Some(b"blob".to_vec()));
    assert_eq!(f.stores[0].load_blob(&d).unwrap(), Some(b"blob".to_vec()));
    assert_eq!(ml.get_blob(&Digest::of(b"none")).await.unwrap(), None);
}

#[tokio::test]
async fn puts_go_to_every_writable_level() {
    let f = disks(3);
    let ml = MultiLevel::new(vec![
        boxed(Arc::clone(&f.stores[0])),
        boxed(Arc::clone(&f.stores[1])),
        boxed(ReadOnly(Arc::clone(&f.stores[2]))),
    ]);
    let entry = seed(&ml).await;
    for store in &f.stores[..2] {
        assert_eq!(store.load_action(&key()).unwrap(), Some(entry.clone()));
    }
    assert_eq!(f.stores[2].load_action(&key()).unwrap(), None);
    assert!(!ml.is_read_only());
    assert!(
        ml.describe()
            .starts_with("multi-level cache [local cache at ")
    );
}

#[tokio::test]
async fn level_zero_errors_are_returned_lower_ones_are_warnings() {
    let f = disks(1);
    let d = Digest::of(b"x");

    let broken_first = MultiLevel::new(vec![boxed(Broken), boxed(Arc::clone(&f.stores[0]))]);
    let err = broken_first.put_blob(&d, b"x").await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
    // ... but the other level was still written.
    assert_eq!(f.stores[0].load_blob(&d).unwrap(), Some(b"x".to_vec()));
    // A broken level does not hide a hit below it (and its failed backfill is a warning).
    let entry = seed(f.stores[0].as_ref()).await;
    assert_eq!(broken_first.get_action(&key()).await.unwrap(), Some(entry));
    // find_missing: level 0's error is the answer.
    assert!(broken_first.find_missing(&[d]).await.is_err());

    let broken_last = MultiLevel::new(vec![boxed(Arc::clone(&f.stores[0])), boxed(Broken)]);
    let y = Digest::of(b"y");
    broken_last.put_blob(&y, b"y").await.unwrap();
    assert_eq!(broken_last.find_missing(&[y]).await.unwrap(), vec![]);
    assert_eq!(
        broken_last.get_blob(&Digest::of(b"none")).await.unwrap(),
        None
    );

    // Only when no level could answer is a get an error.
    let all_broken = MultiLevel::new(vec![boxed(Broken)]);
    assert!(all_broken.get_action(&key()).await.is_err());
    assert!(all_broken.get_blob(&d).await.is_err());
}

#[tokio::test]
async fn find_missing_is_about_the_writable_levels() {
    let f = disks(2);
    let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
    f.stores[1].store_blob(&a, b"a").unwrap();
    let writable = MultiLevel::new(vec![
        boxed(Arc::clone(&f.stores[0])),
        boxed(Arc::clone(&f.stores[1])),
    ]);
    // Level 0 lacks `a`: it is worth putting.
    assert_eq!(writable.find_missing(&[a, b]).await.unwrap(), vec![a, b]);

    let read_only = MultiLevel::new(vec![
        boxed(ReadOnly(Arc::clone(&f.stores[0]))),
        boxed(ReadOnly(Arc::clone(&f.stores[1]))),
    ]);
    assert!(read_only.is_read_only());
    // Nothing writable: missing means no level has it.
    assert_eq!(read_only.find_missing(&[a, b]).await.unwrap(), vec![b]);
}
