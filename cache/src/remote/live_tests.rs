//! Tests against a real BuildGrid server that need the store's internals: results that a
//! hermetic client would never write, stored under a real action digest, must read as
//! misses.

#[path = "../../../tests/src/buildgrid.rs"]
mod buildgrid;

use std::sync::{Arc, Mutex};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use super::digests::ServerDigest;
use super::results::{ARCHIVE_PATH, Layout};
use super::{RemoteOptions, RemoteStore};
use crate::action::tests::entry_for;
use crate::{Digest, NewResult, Store};
use buildgrid::Server;

/// Collects what `tracing` logs on this thread, for checking warnings.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// Installs the collector for the current thread until the guard drops.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let log = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || log.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// What was logged since the last call.
    fn take(&self) -> String {
        let mut bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the log collector is per thread.
#[tokio::test(flavor = "current_thread")]
async fn results_hermetic_would_not_write_are_misses() {
    let log = Log::default();
    let _guard = log.install();
    let server = Server::start();
    let store = RemoteStore::connect(&server.url, RemoteOptions::default())
        .await
        .unwrap();
    let sha = |bytes: &[u8]| ServerDigest::of(store.digest_function(), bytes);
    let key = Digest::of(b"tampered action");
    let entry = entry_for(b"archive", b"stdout", b"stderr");
    let blobs = [&b"archive"[..], b"stdout", b"stderr"]
        .iter()
        .map(|b| (Digest::of(b), b.to_vec()))
        .collect();
    let good = NewResult {
        key,
        entry: entry.clone(),
        blobs,
    };
    store
        .put_results(std::slice::from_ref(&good))
        .await
        .unwrap();
    assert_eq!(store.get_action(&key).await.unwrap(), Some(entry.clone()));
    let prepared = store.prepare(&key, &entry).unwrap();
    let (action, layout) = (prepared.action, prepared.layout);

    // Blobs the tampered results point at, uploaded so that only the inconsistency counts.
    let not_json = b"this is not JSON".to_vec();
    let mut inconsistent = entry.clone();
    inconsistent.output_tree = Digest::of(b"not the tree");
    let inconsistent = serde_json::to_vec(&inconsistent).unwrap();
    let mut other_exit = entry.clone();
    other_exit.exit_code = 9;
    let other_exit = serde_json::to_vec(&other_exit).unwrap();
    let never_uploaded = sha(b"never uploaded");
    store
        .upload(&[
            (sha(&not_json), &not_json),
            (sha(&inconsistent), &inconsistent),
            (sha(&other_exit), &other_exit),
        ])
        .await
        .unwrap();

    let foreign = re::ActionResult {
        output_files: vec![re::OutputFile {
            path: "a.out".into(),
            digest: Some(sha(b"stdout").to_proto()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut no_stderr = layout.to_action_result();
    no_stderr.stderr_digest = None;
    let mut entry_twice = layout.to_action_result();
    entry_twice
        .output_files
        .push(entry_twice.output_files[0].clone());
    let mut wrong_path = layout.to_action_result();
    wrong_path.output_files[1].path = format!("{ARCHIVE_PATH}.old");
    // What each result is, and the warning it must cause (`None`: BuildGrid itself answers
    // NOT_FOUND, as it checks that the output blobs exist).
    let cases: Vec<(&str, Option<&str>, re::ActionResult)> = vec![
        (
            "a foreign result",
            Some("it has no output file hermetic/entry.json"),
            foreign,
        ),
        (
            "no stderr digest",
            Some("it has no stderr digest"),
            no_stderr,
        ),
        (
            "the entry listed twice",
            Some("lists the output file hermetic/entry.json twice"),
            entry_twice,
        ),
        (
            "no archive output",
            Some("it has no output file hermetic/outputs.tar.zst"),
            wrong_path,
        ),
        (
            "another exit code",
            Some("exit code 9 differs from the entry's 0"),
            Layout {
                exit_code: 9,
                ..layout
            }
            .to_action_result(),
        ),
        (
            "an entry JSON with another exit code",
            Some("exit code 0 differs from the entry's 9"),
            Layout {
                entry: sha(&other_exit),
                ..layout
            }
            .to_action_result(),
        ),
        (
            "stdout swapped with stderr",
            Some("but those bytes were seen as"),
            Layout {
                stdout: layout.stderr,
                stderr: layout.stdout,
                ..layout
            }
            .to_action_result(),
        ),
        (
            "an archive the server lacks",
            None,
            Layout {
                archive: never_uploaded,
                ..layout
            }
            .to_action_result(),
        ),
        (
            "an entry blob the server lacks",
            None,
            Layout {
                entry: never_uploaded,
                ..layout
            }
            .to_action_result(),
        ),
        (
            "an entry blob that is not JSON",
            Some("is not an entry"),
            Layout {
                entry: sha(&not_json),
                ..layout
            }
            .to_action_result(),
        ),
        (
            "an inconsistent entry",
            Some("its entry is inconsistent: output_tree"),
            Layout {
                entry: sha(&inconsistent),
                ..layout
            }
            .to_action_result(),
        ),
    ];
    log.take();
    for (what, warning, result) in cases {
        store
            .store_action_result(&key, action, result)
            .await
            .unwrap();
        assert_eq!(store.get_action(&key).await.unwrap(), None, "{what}");
        let logged = log.take();
        if let Some(warning) = warning {
            assert!(logged.contains(warning), "{what}: {logged}");
            // The warning names the key.
            assert!(logged.contains(&key.to_string()), "{what}: {logged}");
        }
    }

    // The sound result reads as a hit again: the misses were the tampering, not the store.
    store
        .update_action_result(&key, action, layout)
        .await
        .unwrap();
    assert_eq!(store.get_action(&key).await.unwrap(), Some(entry));
    assert!(!store.is_down());
}
