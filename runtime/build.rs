//! Fingerprints the YAML parser for the parse memo (`src/workflow/memo.rs`): a memo written
//! by a build whose parser, tree codec or pinned dependencies (serde-saphyr among them)
//! differ must never be read as this build's parse.

use std::hash::Hasher as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Not a security hash: it only has to change when any of these files does.
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
    for file in ["src/workflow/node.rs", "src/workflow/tree_codec.rs"] {
        println!("cargo::rerun-if-changed={file}");
        let bytes = std::fs::read(manifest.join(file)).expect("the parser's sources");
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
        "cargo::rustc-env=HERMETIC_PARSER_FINGERPRINT={:016x}",
        hasher.finish()
    );
}
