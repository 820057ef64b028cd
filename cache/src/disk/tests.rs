use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::action::tests::entry_for;

fn open(dir: &Path) -> DiskStore {
    DiskStore::open(dir).unwrap()
}

/// Puts the three blobs and the entry; returns the entry.
fn put_entry(
    store: &DiskStore,
    key: &Digest,
    archive: &[u8],
    out: &[u8],
    err: &[u8],
) -> ActionEntry {
    for blob in [archive, out, err] {
        store.store_blob(&Digest::of(blob), blob).unwrap();
    }
    let entry = entry_for(archive, out, err);
    store.store_action(key, &entry).unwrap();
    entry
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::open(path).unwrap().set_modified(time).unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

fn quarantined(store: &DiskStore) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store.root().join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn key(name: &str) -> Digest {
    Digest::of(name.as_bytes())
}

// ---- open, version, temporaries ----

#[test]
fn open_creates_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cache");
    let store = open(&root);
    assert_eq!(fs::read_to_string(root.join("VERSION")).unwrap(), "1\n");
    for dir in ["cas", "ac", "tmp", "quarantine"] {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    assert_eq!(store.root(), root);
    assert_eq!(
        store.describe(),
        format!("local cache at {}", root.display())
    );
    assert!(!store.is_read_only());
    assert!(store.temp_dir().starts_with(root.join("tmp")));
    // A second handle in the same process gets its own temporary directory.
    let again = open(&root);
    assert_ne!(again.temp_dir(), store.temp_dir());
    let dir = store.temp_dir().to_path_buf();
    drop(store);
    assert!(!dir.exists());
    assert!(again.temp_dir().is_dir());
}

#[test]
fn newer_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    fs::write(tmp.path().join("VERSION"), "2\n").unwrap();
    let err = DiskStore::open(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::NewerVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("format version 2") && msg.contains("upgrade hermetic"),
        "{msg}"
    );
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
}

#[test]
fn garbage_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("VERSION"), "banana").unwrap();
    let err = DiskStore::open(tmp.path()).unwrap_err();
    assert!(
        matches!(err, CacheError::BadVersion { ref content, .. } if content == "banana"),
        "{err:?}"
    );
}

#[test]
fn a_foreign_directory_is_not_turned_into_a_cache() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("thesis.tex"), "precious").unwrap();
    let err = DiskStore::open(tmp.path()).unwrap_err();
    assert!(matches!(err, CacheError::NotACache { .. }), "{err:?}");
    assert!(!tmp.path().join("VERSION").exists());
    assert!(!tmp.path().join("cas").exists());
}

#[test]
fn open_sweeps_dead_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let live = open(tmp.path());
    let tmp_root = tmp.path().join("tmp");
    // A dead process: directory with a partial file, lock file nobody holds.
    fs::create_dir(tmp_root.join("99999999-7")).unwrap();
    fs::write(tmp_root.join("99999999-7/13"), b"partial").unwrap();
    fs::write(tmp_root.join("99999999-7.lock"), b"").unwrap();

    let other = open(tmp.path());
    assert!(!tmp_root.join("99999999-7").exists());
    assert!(!tmp_root.join("99999999-7.lock").exists());
    // Live handles keep theirs.
    assert!(live.temp_dir().is_dir());
    assert!(other.temp_dir().is_dir());
}

// ---- blobs ----

#[tokio::test]
async fn blob_round_trip_and_find_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let bytes = b"some output".to_vec();
    let d = Digest::of(&bytes);
    let absent = Digest::of(b"absent");
    assert_eq!(store.get_blob(&d).await.unwrap(), None);
    assert_eq!(
        store.find_missing(&[d, absent]).await.unwrap(),
        vec![d, absent]
    );

    store.put_blob(&d, &bytes).await.unwrap();
    assert_eq!(store.get_blob(&d).await.unwrap(), Some(bytes.clone()));
    assert_eq!(fs::read(store.path_of(Area::Blobs, &d)).unwrap(), bytes);
    assert_eq!(
        store.find_missing(&[d, absent]).await.unwrap(),
        vec![absent]
    );
    // Putting again is a no-op; nothing is left in the temporary directory.
    store.put_blob(&d, &bytes).await.unwrap();
    assert_eq!(fs::read_dir(store.temp_dir()).unwrap().count(), 0);
    // The empty blob is a blob like any other.
    store.put_blob(&Digest::of(b""), b"").await.unwrap();
    assert_eq!(
        store.get_blob(&Digest::of(b"")).await.unwrap(),
        Some(vec![])
    );
}

#[tokio::test]
async fn put_blob_checks_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let claimed = Digest::of(b"one thing");
    let err = store.put_blob(&claimed, b"another").await.unwrap_err();
    assert!(
        matches!(err, CacheError::DigestMismatch { expected, actual } if expected == claimed && actual == Digest::of(b"another")),
        "{err:?}"
    );
    assert!(!store.path_of(Area::Blobs, &claimed).exists());
}

#[test]
fn put_blob_refreshes_an_existing_blob_and_repairs_a_truncated_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let d = Digest::of(b"payload");
    store.store_blob(&d, b"payload").unwrap();
    let path = store.path_of(Area::Blobs, &d);
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&path, old);
    store.store_blob(&d, b"payload").unwrap();
    assert!(mtime(&path) > old);

    fs::write(&path, b"pay").unwrap();
    store.store_blob(&d, b"payload").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"payload");
}

#[tokio::test]
async fn corrupt_blob_is_a_miss_and_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let bytes = vec![0x55u8; 1000];
    let d = Digest::of(&bytes);
    store.put_blob(&d, &bytes).await.unwrap();
    let path = store.path_of(Area::Blobs, &d);
    let mut flipped = bytes.clone();
    flipped[500] ^= 0x01;
    fs::write(&path, &flipped).unwrap();

    assert_eq!(store.get_blob(&d).await.unwrap(), None);
    assert!(!path.exists());
    let q = quarantined(&store);
    assert_eq!(q.len(), 1);
    assert!(
        q[0].starts_with(&format!("cas-{d}.")) && q[0].ends_with(".hash-mismatch"),
        "{q:?}"
    );
    // The quarantined copy is the corrupt content, and a fresh put heals the store.
    assert_eq!(
        fs::read(store.root().join("quarantine").join(&q[0])).unwrap(),
        flipped
    );
    store.put_blob(&d, &bytes).await.unwrap();
    assert_eq!(store.get_blob(&d).await.unwrap(), Some(bytes));
}

// ---- entries ----

#[tokio::test]
async fn action_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let k = key("step");
    assert_eq!(store.get_action(&k).await.unwrap(), None);
    let entry = put_entry(&store, &k, b"archive", b"out", b"err");
    assert_eq!(store.get_action(&k).await.unwrap(), Some(entry.clone()));

    let text = fs::read_to_string(store.path_of(Area::Entries, &k)).unwrap();
    let (header, json) = text.split_once('\n').unwrap();
    assert_eq!(
        header,
        format!("hermetic-action 1 {}", Digest::of(json.as_bytes()))
    );
    assert_eq!(serde_json::from_str::<ActionEntry>(json).unwrap(), entry);

    // Replacing an entry (a re-run) is allowed; the last writer wins.
    let mut newer = entry.clone();
    newer.duration_ms = 99;
    store.put_action(&k, &newer).await.unwrap();
    assert_eq!(store.get_action(&k).await.unwrap(), Some(newer));
    assert_eq!(fs::read_dir(store.temp_dir()).unwrap().count(), 0);
}

#[tokio::test]
async fn put_action_requires_its_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let entry = entry_for(b"archive", b"out", b"err");
    store.put_blob(&entry.stdout, b"out").await.unwrap();
    let err = store.put_action(&key("k"), &entry).await.unwrap_err();
    match &err {
        CacheError::MissingBlobs { missing, .. } => {
            assert_eq!(missing, &vec![entry.outputs_archive, entry.stderr]);
        }
        other => panic!("expected MissingBlobs, got {other:?}"),
    }
    assert!(err.to_string().contains("put the blobs first"), "{err}");
    assert!(!store.path_of(Area::Entries, &key("k")).exists());
}

#[tokio::test]
async fn truncated_entry_is_a_miss_and_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let k = key("step");
    put_entry(&store, &k, b"archive", b"out", b"err");
    let path = store.path_of(Area::Entries, &k);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    assert_eq!(store.get_action(&k).await.unwrap(), None);
    assert!(!path.exists());
    let q = quarantined(&store);
    assert_eq!(q.len(), 1);
    assert!(
        q[0].starts_with(&format!("ac-{k}.")) && q[0].ends_with(".checksum-mismatch"),
        "{q:?}"
    );
}

#[tokio::test]
async fn garbage_entry_is_a_miss_and_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let k = key("step");
    let path = store.path_of(Area::Entries, &k);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"\x00\x01 not an entry").unwrap();
    assert_eq!(store.get_action(&k).await.unwrap(), None);
    assert!(quarantined(&store)[0].ends_with(".bad-header"));
}

#[tokio::test]
async fn entry_with_a_missing_blob_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let k = key("step");
    let entry = put_entry(&store, &k, b"archive", b"out", b"err");
    fs::remove_file(store.path_of(Area::Blobs, &entry.stderr)).unwrap();
    assert_eq!(store.get_action(&k).await.unwrap(), None);
    // Not corrupt: left in place (gc or verify --repair removes it).
    assert!(store.path_of(Area::Entries, &k).exists());
    assert!(quarantined(&store).is_empty());
    // Putting the blob back makes it a hit again.
    store.put_blob(&entry.stderr, b"err").await.unwrap();
    assert_eq!(store.get_action(&k).await.unwrap(), Some(entry));
}

#[tokio::test]
async fn a_hit_refreshes_the_entry_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let k = key("step");
    put_entry(&store, &k, b"archive", b"out", b"err");
    let path = store.path_of(Area::Entries, &k);
    let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    set_mtime(&path, old);
    store.get_action(&k).await.unwrap().unwrap();
    assert!(mtime(&path) > old + Duration::from_secs(9 * 24 * 3600));
}

// ---- runs and stats ----

#[test]
fn stats_count_items_and_recent_hit_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let empty = store.stats().unwrap();
    assert_eq!(empty, StoreStats::default());
    assert_eq!(empty.hit_rate(), None);

    put_entry(&store, &key("a"), b"archive-a", b"out", b"err");
    put_entry(&store, &key("b"), b"archive-b", b"out", b"err");
    // 25 runs: the first 5 all misses, the last 20 three hits and one miss each.
    for i in 0..5 {
        store.record_run(0, 10, 1000 + i).unwrap();
    }
    for i in 5..25 {
        store.record_run(3, 1, 1000 + i).unwrap();
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(stats.blobs, 4); // archive-a, archive-b, out, err
    assert_eq!(stats.blob_bytes, 9 + 9 + 3 + 3);
    let entry_bytes: u64 = [key("a"), key("b")]
        .iter()
        .map(|k| fs::metadata(store.path_of(Area::Entries, k)).unwrap().len())
        .sum();
    assert_eq!(stats.entry_bytes, entry_bytes);
    assert_eq!(stats.bytes, entry_bytes + 24);
    assert_eq!(stats.quarantined, 0);
    assert_eq!(stats.recent_runs, RECENT_RUNS as u64);
    assert_eq!((stats.recent_hits, stats.recent_misses), (60, 20));
    assert_eq!(stats.hit_rate(), Some(0.75));

    let lines = fs::read_to_string(store.root().join("runs.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 25);
    assert_eq!(
        lines.lines().next().unwrap(),
        r#"{"unix_secs":1000,"hits":0,"misses":10}"#
    );
}

#[test]
fn recent_runs_come_from_the_tail_of_a_long_log() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    // ~3000 lines: well past the 64 KiB tail that is read.
    for i in 0..3000 {
        store.record_run(i, 1, 1_700_000_000 + i).unwrap();
    }
    assert!(fs::metadata(store.root().join("runs.jsonl")).unwrap().len() > 64 * 1024);
    let stats = store.stats().unwrap();
    assert_eq!(stats.recent_runs, 20);
    assert_eq!(stats.recent_hits, (2980..3000).sum::<u64>());
    assert_eq!(stats.recent_misses, 20);

    // gc compacts the log once it passes 1 MiB; below that it is left alone.
    store.gc(&GcOptions::default()).unwrap();
    assert_eq!(
        fs::read_to_string(store.root().join("runs.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3000
    );
}

#[test]
fn gc_compacts_a_huge_run_log() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let line = "{\"unix_secs\":1,\"hits\":1,\"misses\":0}\n";
    fs::write(store.root().join("runs.jsonl"), line.repeat(30_000)).unwrap();
    store.record_run(7, 8, 9).unwrap();
    store.gc(&GcOptions::default()).unwrap();
    let log = fs::read_to_string(store.root().join("runs.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1000);
    assert_eq!(
        log.lines().last().unwrap(),
        r#"{"unix_secs":9,"hits":7,"misses":8}"#
    );
}

#[test]
fn gc_report_reads_well() {
    let report = GcReport {
        entries_removed: 2,
        blobs_removed: 1,
        bytes_freed: 1536,
        entries_kept: 1,
        blobs_kept: 3,
        bytes_kept: 900,
        ..GcReport::default()
    };
    assert_eq!(
        report.to_string(),
        "removed 2 entries and 1 blob (1.5 KiB); kept 1 entry and 3 blobs (900 B)"
    );
}

// ---- gc ----

fn at(now: SystemTime) -> GcOptions {
    GcOptions {
        now,
        ..GcOptions::default()
    }
}

/// Ages every blob and entry file to `when`.
fn age_everything(store: &DiskStore, when: SystemTime) {
    for area in [Area::Blobs, Area::Entries] {
        scan::scan(&store.layout, area, |found| {
            set_mtime(&found.path, when);
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn gc_by_age_removes_old_entries_and_their_unshared_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let now = SystemTime::now();
    let old = put_entry(
        &store,
        &key("old"),
        b"archive-old",
        b"shared-out",
        b"shared-err",
    );
    let new = put_entry(
        &store,
        &key("new"),
        b"archive-new",
        b"shared-out",
        b"shared-err",
    );
    age_everything(&store, now - Duration::from_secs(3600));
    set_mtime(
        &store.path_of(Area::Entries, &key("old")),
        now - Duration::from_secs(40 * 24 * 3600),
    );

    let report = store
        .gc(&GcOptions {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            ..at(now)
        })
        .unwrap();
    assert_eq!(report.entries_removed, 1);
    assert_eq!(report.blobs_removed, 1);
    assert_eq!(report.entries_kept, 1);
    assert_eq!(report.blobs_kept, 3);
    assert!(!store.path_of(Area::Entries, &key("old")).exists());
    assert!(!store.path_of(Area::Blobs, &old.outputs_archive).exists());
    assert!(report.bytes_freed > 11);
    assert_eq!(store.load_action(&key("new")).unwrap(), Some(new));
    assert_eq!(store.stats().unwrap().bytes, report.bytes_kept);
}

#[test]
fn gc_by_size_evicts_least_recently_used_first() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let now = SystemTime::now();
    let big = vec![1u8; 10_000];
    let mut entries = Vec::new();
    for (i, name) in ["first", "second", "third"].iter().enumerate() {
        let mut archive = big.clone();
        archive[0] = i as u8;
        let out = format!("out-{name}");
        let err = format!("err-{name}");
        entries.push(put_entry(
            &store,
            &key(name),
            &archive,
            out.as_bytes(),
            err.as_bytes(),
        ));
    }
    age_everything(&store, now - Duration::from_secs(3600));
    // Last use: "second" is the oldest, then "first", then "third" (used a minute ago).
    set_mtime(
        &store.path_of(Area::Entries, &key("second")),
        now - Duration::from_secs(3000),
    );
    set_mtime(
        &store.path_of(Area::Entries, &key("first")),
        now - Duration::from_secs(2000),
    );
    set_mtime(
        &store.path_of(Area::Entries, &key("third")),
        now - Duration::from_secs(60),
    );
    // Room for a bit more than one entry with its blobs.
    let report = store
        .gc(&GcOptions {
            max_size: Some(15_000),
            ..at(now)
        })
        .unwrap();
    assert_eq!(report.entries_removed, 2);
    assert_eq!(report.blobs_removed, 6);
    assert!(store.load_action(&key("third")).unwrap().is_some());
    assert!(store.load_action(&key("first")).unwrap().is_none());
    assert!(store.load_action(&key("second")).unwrap().is_none());
    for blob in entries[0].blobs().iter().chain(&entries[1].blobs()) {
        assert!(!store.path_of(Area::Blobs, blob).exists());
    }
    assert!(report.bytes_kept <= 15_000, "{report:?}");
    assert_eq!(store.stats().unwrap().bytes, report.bytes_kept);

    // Already within the limit: nothing more to do.
    let again = store
        .gc(&GcOptions {
            max_size: Some(15_000),
            ..at(now)
        })
        .unwrap();
    assert_eq!((again.entries_removed, again.blobs_removed), (0, 0));
}

#[test]
fn gc_keeps_fresh_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let now = SystemTime::now();
    // Blobs put by a process that has not written its entry yet.
    let fresh = Digest::of(b"fresh");
    store.store_blob(&fresh, b"fresh").unwrap();
    let stale = Digest::of(b"stale");
    store.store_blob(&stale, b"stale").unwrap();
    set_mtime(
        &store.path_of(Area::Blobs, &stale),
        now - Duration::from_secs(16 * 60),
    );
    set_mtime(
        &store.path_of(Area::Blobs, &fresh),
        now - Duration::from_secs(14 * 60),
    );

    let report = store.gc(&at(now)).unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert!(store.path_of(Area::Blobs, &fresh).exists());
    assert!(!store.path_of(Area::Blobs, &stale).exists());

    // Past the grace period it goes too.
    let later = store.gc(&at(now + Duration::from_secs(120))).unwrap();
    assert_eq!(later.blobs_removed, 1);
    assert!(!store.path_of(Area::Blobs, &fresh).exists());
}

#[test]
fn gc_removes_dangling_entries_and_quarantines_corrupt_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let now = SystemTime::now();
    let dangling = put_entry(&store, &key("dangling"), b"a1", b"o1", b"e1");
    fs::remove_file(store.path_of(Area::Blobs, &dangling.outputs_archive)).unwrap();
    put_entry(&store, &key("corrupt"), b"a2", b"o2", b"e2");
    let corrupt_path = store.path_of(Area::Entries, &key("corrupt"));
    fs::write(&corrupt_path, b"hermetic-action 1 00\n{").unwrap();

    let report = store.gc(&at(now + Duration::from_secs(3600))).unwrap();
    assert_eq!(report.entries_removed, 1);
    assert_eq!(report.quarantined, 1);
    assert_eq!(report.entries_kept, 0);
    assert_eq!(report.blobs_kept, 0);
    assert_eq!(store.stats().unwrap().entries, 0);
    assert_eq!(quarantined(&store).len(), 1);

    // Quarantined files go after a week.
    let report = store
        .gc(&at(now + Duration::from_secs(8 * 24 * 3600)))
        .unwrap();
    assert_eq!(report.quarantine_removed, 1);
    assert!(quarantined(&store).is_empty());
}

#[test]
fn gc_removal_keeps_a_file_touched_since_the_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    put_entry(&store, &key("k"), b"a", b"o", b"e");
    let path = store.path_of(Area::Entries, &key("k"));
    let scanned = mtime(&path);
    // A hit (or a rewrite) after the scan moves the mtime forward: the file stays.
    set_mtime(&path, scanned + Duration::from_secs(5));
    assert!(matches!(
        gc::remove_unless_touched(&path, scanned),
        Ok(gc::Removal::Changed)
    ));
    assert!(path.exists());
    let len = fs::metadata(&path).unwrap().len();
    assert!(matches!(
        gc::remove_unless_touched(&path, scanned + Duration::from_secs(5)),
        Ok(gc::Removal::Removed(n)) if n == len
    ));
    assert!(!path.exists());
    assert!(matches!(
        gc::remove_unless_touched(&path, scanned),
        Ok(gc::Removal::Gone)
    ));
}

#[test]
fn concurrent_gc_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let lock = fs::File::create(tmp.path().join("gc.lock")).unwrap();
    lock.lock().unwrap();
    let err = store.gc(&GcOptions::default()).unwrap_err();
    assert!(matches!(err, CacheError::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("gc.lock"), "{err}");
    drop(lock);
    store.gc(&GcOptions::default()).unwrap();
}

// ---- verify ----

#[test]
fn verify_finds_and_repairs_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let good = put_entry(&store, &key("good"), b"archive-good", b"out", b"err");
    let bad_blob = put_entry(&store, &key("bad-blob"), b"archive-flip", b"out", b"err");
    put_entry(&store, &key("truncated"), b"archive-trunc", b"out", b"err");
    let dangling = put_entry(&store, &key("dangling"), b"archive-gone", b"out", b"err");
    let clean = store.verify(false).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!((clean.blobs_checked, clean.entries_checked), (6, 4));

    let flip_path = store.path_of(Area::Blobs, &bad_blob.outputs_archive);
    let mut bytes = fs::read(&flip_path).unwrap();
    bytes[3] ^= 0x80;
    fs::write(&flip_path, &bytes).unwrap();
    let trunc_path = store.path_of(Area::Entries, &key("truncated"));
    let bytes = fs::read(&trunc_path).unwrap();
    fs::write(&trunc_path, &bytes[..bytes.len() / 2]).unwrap();
    fs::remove_file(store.path_of(Area::Blobs, &dangling.outputs_archive)).unwrap();
    let stray = store.root().join("cas/zz-stray");
    fs::write(&stray, b"?").unwrap();

    let report = store.verify(false).unwrap();
    assert!(!report.is_clean());
    let mut found: Vec<(PathBuf, &str)> = report
        .problems
        .iter()
        .map(|p| (p.path.clone(), p.reason.as_str()))
        .collect();
    found.sort();
    let mut expected = vec![
        (flip_path.clone(), "hashes to"),
        (stray.clone(), "not a blob"),
        (trunc_path.clone(), "does not match the header checksum"),
        (store.path_of(Area::Entries, &key("bad-blob")), "(corrupt)"),
        (store.path_of(Area::Entries, &key("dangling")), "(missing)"),
    ];
    expected.sort();
    assert_eq!(found.len(), expected.len(), "{:?}", report.problems);
    for ((path, reason), (want_path, want_reason)) in found.iter().zip(&expected) {
        assert_eq!(path, want_path);
        assert!(reason.contains(want_reason), "{path:?}: {reason}");
    }
    assert_eq!(report.repaired, 0);
    assert!(
        flip_path.exists(),
        "verify without repair must not change anything"
    );

    let repaired = store.verify(true).unwrap();
    assert_eq!(repaired.problems.len(), 5);
    assert_eq!(repaired.repaired, 5);
    assert_eq!(quarantined(&store).len(), 3); // the blob, the stray file, the entry
    let after = store.verify(false).unwrap();
    assert!(after.is_clean(), "{:?}", after.problems);
    assert_eq!(after.entries_checked, 1);
    assert_eq!(store.load_action(&key("good")).unwrap(), Some(good));
    assert_eq!(store.stats().unwrap().quarantined, 3);
}

#[test]
fn storing_over_a_bit_flipped_blob_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let bytes = b"the real content".to_vec();
    let digest = Digest::of(&bytes);
    store.store_blob(&digest, &bytes).unwrap();
    let path = store.layout.blob(&digest);
    let mut flipped = bytes.clone();
    flipped[3] ^= 0x01;
    fs::write(&path, &flipped).unwrap();

    store.store_blob(&digest, &bytes).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(store.load_blob(&digest).unwrap(), Some(bytes));
    assert_eq!(quarantined(&store).len(), 1);
}

// ---- batches ----

fn new_result(name: &str, archive: &[u8], out: &[u8], err: &[u8]) -> NewResult {
    NewResult {
        key: key(name),
        entry: entry_for(archive, out, err),
        blobs: [archive, out, err]
            .iter()
            .map(|b| (Digest::of(b), b.to_vec()))
            .collect(),
    }
}

fn files_under(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_batch_stores_every_result_and_shares_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    // Both results have the same (empty) stderr: one blob.
    let batch = [
        new_result("a", b"archive a", b"out a", b""),
        new_result("b", b"archive b", b"out b", b""),
    ];
    store.store_results(&batch).unwrap();
    for result in &batch {
        assert_eq!(
            store.load_action(&result.key).unwrap(),
            Some(result.entry.clone())
        );
        for (digest, bytes) in &result.blobs {
            assert_eq!(
                store.load_blob(digest).unwrap().as_deref(),
                Some(&bytes[..])
            );
        }
    }
    assert_eq!(files_under(&tmp.path().join("cas")), 5);
    assert_eq!(files_under(&tmp.path().join("ac")), 2);
    // Nothing is left behind in the handle's temporary directory.
    assert_eq!(files_under(store.temp_dir()), 0);

    // Storing the same batch again changes nothing and succeeds.
    store.store_results(&batch).unwrap();
    assert_eq!(files_under(&tmp.path().join("cas")), 5);
}

#[test]
fn a_batch_with_a_bad_result_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let good = new_result("good", b"archive", b"out", b"err");

    let mut lacking = new_result("lacking", b"other archive", b"o", b"e");
    lacking.blobs.remove(0);
    let err = store.store_results(&[good.clone(), lacking]).unwrap_err();
    assert!(matches!(err, CacheError::MissingBlobs { .. }), "{err}");

    let mut lying = new_result("lying", b"x", b"y", b"z");
    lying.blobs[1].1 = b"not y".to_vec();
    let err = store.store_results(&[good.clone(), lying]).unwrap_err();
    assert!(matches!(err, CacheError::DigestMismatch { .. }), "{err}");

    assert_eq!(files_under(&tmp.path().join("cas")), 0);
    assert_eq!(files_under(&tmp.path().join("ac")), 0);
    assert_eq!(store.load_action(&good.key).unwrap(), None);
}

#[test]
fn a_batch_may_name_blobs_already_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let first = new_result("first", b"archive", b"out", b"err");
    store.store_results(std::slice::from_ref(&first)).unwrap();
    // Same outputs under another key, offered without its blobs: they are in the store.
    let again = NewResult {
        key: key("again"),
        blobs: Vec::new(),
        ..first.clone()
    };
    store.store_results(std::slice::from_ref(&again)).unwrap();
    assert_eq!(store.load_action(&again.key).unwrap(), Some(first.entry));
}

#[test]
fn a_flush_syncs_what_batches_renamed_since_the_last_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let unflushed = |s: &DiskStore| s.unflushed.lock().unwrap().len();
    store.flush_results().unwrap();
    assert_eq!(unflushed(&store), 0, "nothing stored, nothing to sync");

    let result = new_result("a", b"archive", b"out", b"err");
    store.store_results(std::slice::from_ref(&result)).unwrap();
    // The batch is readable at once; only the durability of its names waits for the flush.
    assert_eq!(
        store.load_action(&result.key).unwrap(),
        Some(result.entry.clone())
    );
    let dirs = unflushed(&store);
    assert!(
        dirs >= 2,
        "the blobs' and the entry's shard directories: {dirs}"
    );
    store.flush_results().unwrap();
    assert_eq!(unflushed(&store), 0);

    // After a power loss that kept the entry's rename but lost a blob's, the entry is a miss.
    let (digest, _) = &result.blobs[0];
    fs::remove_file(store.blob_path(digest)).unwrap();
    assert_eq!(store.load_action(&result.key).unwrap(), None);
}
