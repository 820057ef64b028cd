//! A BuildGrid 0.4.4 cache server for tests, started by `scripts/buildgrid/start cache DIR`
//! (which installs BuildGrid into a virtualenv on first use) with its state in a temporary
//! directory, and stopped by `scripts/buildgrid/stop DIR` when the [`Server`] drops.
//!
//! Shared by `tests/remote.rs` and the crate's own tests (`src/remote/live_tests.rs`),
//! which use different parts of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server.
pub struct Server {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/buildgrid")
        .join(name)
}

impl Server {
    /// Starts a server and waits until it answers; panics with the script's output if it
    /// cannot.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(script("start"))
            .arg("cache")
            .arg(dir.path())
            .output()
            .expect("cannot run scripts/buildgrid/start");
        assert!(
            output.status.success(),
            "scripts/buildgrid/start failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let url = std::fs::read_to_string(dir.path().join("url")).unwrap();
        Self {
            dir,
            url: url.trim().to_string(),
        }
    }

    /// Stops the server (idempotent).
    pub fn stop(&self) {
        let status = Command::new(script("stop"))
            .arg(self.dir.path())
            .status()
            .expect("cannot run scripts/buildgrid/stop");
        assert!(status.success(), "scripts/buildgrid/stop failed: {status}");
    }

    /// The disk CAS file of the blob with SHA-256 `hash` (hex).
    pub fn cas_file(&self, hash: &str) -> PathBuf {
        self.dir
            .path()
            .join("cas/cas/objects")
            .join(&hash[..2])
            .join(&hash[2..])
    }

    /// How many blobs the disk CAS holds.
    pub fn cas_file_count(&self) -> usize {
        let objects = self.dir.path().join("cas/cas/objects");
        let Ok(dirs) = std::fs::read_dir(&objects) else {
            return 0;
        };
        dirs.map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script("stop")).arg(self.dir.path()).status();
    }
}
