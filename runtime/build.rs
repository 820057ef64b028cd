//! Fingerprints this build for the workflow memo (`src/workflow/memo.rs`): a memo written by
//! a build whose sources or pinned dependencies (serde-saphyr, postcard) differ in any way
//! must never be read as this build's checked workflow.

use std::hash::Hasher as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Not a security hash: it only has to change when any of these files does.
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
    println!("cargo::rerun-if-changed=src");
    let mut files = Vec::new();
    sources(&manifest.join("src"), &mut files);
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).expect("a source file");
        hasher.write(
            file.strip_prefix(&manifest)
                .unwrap_or(&file)
                .as_os_str()
                .as_encoded_bytes(),
        );
        hasher.write(&bytes);
    }
    // The lockfile beside a packaged crate, or the workspace's.
    for lock in [manifest.join("Cargo.lock"), manifest.join("../Cargo.lock")] {
        if let Ok(bytes) = std::fs::read(&lock) {
            println!("cargo::rerun-if-changed={}", lock.display());
            hasher.write(&bytes);
            break;
        }
    }
    println!(
        "cargo::rustc-env=HERMETIC_SOURCE_FINGERPRINT={:016x}",
        hasher.finish()
    );
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the crate's sources") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}
