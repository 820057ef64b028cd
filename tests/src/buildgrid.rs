//! A real BuildGrid 0.4.4 for tests, started by `scripts/buildgrid/start cache|exec DIR` (which
//! installs BuildGrid into a virtualenv on first use, and PostgreSQL for `exec`) with its state
//! in a temporary directory, and stopped by `scripts/buildgrid/stop DIR` when the [`Server`]
//! drops.
//!
//! Used by the end-to-end tests (`tests/tests/remote.rs`) and, through `#[path]`, by the cache
//! crate's own remote-store tests, which is why it needs nothing but std and tempfile.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which services the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// CAS, ByteStream, action cache.
    Cache,
    /// Also execution and the bots' service (with PostgreSQL).
    Exec,
}

/// A running server.
#[derive(Debug)]
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
    /// Starts a cache-only server and waits until it answers; panics with the script's
    /// output if it cannot.
    pub fn start() -> Self {
        Self::start_mode(Mode::Cache)
    }

    /// Starts a server in `mode` and waits until it answers.
    pub fn start_mode(mode: Mode) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(script("start"))
            .arg(match mode {
                Mode::Cache => "cache",
                Mode::Exec => "exec",
            })
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
        self.objects().join(&hash[..2]).join(&hash[2..])
    }

    /// Every blob file of the disk CAS.
    pub fn cas_files(&self) -> Vec<PathBuf> {
        let Ok(dirs) = std::fs::read_dir(self.objects()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dirs
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// How many blobs the disk CAS holds.
    pub fn cas_file_count(&self) -> usize {
        self.cas_files().len()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn objects(&self) -> PathBuf {
        self.dir.path().join("cas/cas/objects")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script("stop")).arg(self.dir.path()).status();
    }
}
