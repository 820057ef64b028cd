//! What a run leaves behind for later commands to read.
//!
//! * [`keys`]: each step's action key and its components, for `hermetic why`.
//! * [`runs`]: each run's events, logs and summary under `.hermetic/runs/<id>/`, for
//!   `hermetic runs` and `hermetic run --resume`.
//! * [`durations`]: the recent run times of each step, for adaptive timeouts.
//! * [`trace`]: a run's dispatches as Chrome trace-event JSON, for `--trace`.

mod chunks;
pub mod durations;
pub mod keys;
mod line;
pub mod runs;
mod summary_file;
pub mod trace;

use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;

/// The JSON file at `path`; `None` if it is missing, unreadable or not a `T`. What the
/// journal keeps only explains or speeds up later runs, so a damaged file counts as absent.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a reader (or a
/// killed writer) never sees half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |mut file| file.write_all(bytes))
}

/// Writes the JSON of `value` to `path` as [`write_atomic`] does, streamed to the file in whole
/// chunks ([`chunks`]) rather than built whole in memory first: a large record (10,000 steps'
/// metrics, or their keys) is megabytes, and each new page of a buffer that size costs a page
/// fault (about 3 µs on a virtual machine).
pub(crate) fn write_json_atomic<T: serde::Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> io::Result<()> {
    write_atomic_with(path, |file| {
        let mut out = chunks::Chunked::new(file);
        // `From` keeps the kind of an I/O error underneath (a full disk stays one).
        serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
        out.finish()?;
        Ok(())
    })
}

/// What [`write_atomic`] and [`write_json_atomic`] share: `write` fills the temporary file,
/// and the rename follows only if it succeeded.
fn write_atomic_with(path: &Path, write: impl FnOnce(File) -> io::Result<()>) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let context = |e: io::Error, p: &Path| {
        io::Error::new(e.kind(), format!("cannot write `{}`: {e}", p.display()))
    };
    let written = File::create(&tmp)
        .and_then(write)
        .map_err(|e| context(e, &tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| context(e, path)));
    if written.is_err() {
        // A full disk must not leave half a file behind, even under a temporary name.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn streamed_json_is_the_same_bytes_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let value: BTreeMap<String, Vec<u64>> = (0..20_000)
            .map(|i| (format!("step-{i:05}"), vec![i, i * 3]))
            .collect();
        write_json_atomic(&path, &value).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            serde_json::to_vec(&value).unwrap()
        );
        assert_eq!(names(dir.path()), ["summary.json"]);
    }

    #[test]
    fn json_that_fails_halfway_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, "old").unwrap();
        // JSON object keys must be strings: serialization fails at the first entry, after
        // the opening brace has been written to the temporary file.
        let bad: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        let err = write_json_atomic(&path, &bad).unwrap_err();
        assert!(err.to_string().starts_with("cannot write `"), "{err}");
        assert!(err.to_string().contains("key must be a string"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["keys.json"]);
    }
}
