//! `runs.jsonl`: one line per run, `{"unix_secs":…,"hits":…,"misses":…}`.
//!
//! Lines are appended with `O_APPEND` in a single `write`, so concurrent runs do not
//! interleave. Readers only look at the tail of the file and skip lines they cannot parse.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use crate::CacheError;
use crate::fsx::PathContext;

/// How many bytes from the end of `runs.jsonl` are read for recent runs.
const TAIL_BYTES: u64 = 64 * 1024;

/// The cache counters of one run.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunRecord {
    /// When the run ended, seconds since the Unix epoch.
    pub(crate) unix_secs: u64,
    /// Steps served from the cache.
    pub(crate) hits: u64,
    /// Steps executed.
    pub(crate) misses: u64,
}

pub(crate) fn append(layout: &Layout, record: &RunRecord) -> Result<(), CacheError> {
    let path = layout.runs();
    let mut line = serde_json::to_vec(record)
        .map_err(io::Error::other)
        .at("cannot encode a run for", &path)?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .at("cannot open", &path)?;
    file.write_all(&line).at("cannot append to", &path)?;
    Ok(())
}

/// The last `n` runs recorded, oldest first.
pub(crate) fn recent(layout: &Layout, n: usize) -> Result<Vec<RunRecord>, CacheError> {
    let path = layout.runs();
    let mut file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => Err(e).at("cannot open", &path)?,
    };
    let len = file.metadata().at("cannot read", &path)?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).at("cannot read", &path)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).at("cannot read", &path)?;
    let mut lines: Vec<&[u8]> = tail.split(|&b| b == b'\n').collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // Probably cut in the middle.
    }
    let mut runs: Vec<RunRecord> = lines
        .into_iter()
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    let skip = runs.len().saturating_sub(n);
    runs.drain(..skip);
    Ok(runs)
}

/// Rewrites `runs.jsonl` to its last `keep` runs once it is larger than `max_len` bytes.
/// Returns whether it did. A run appended concurrently with the rewrite may be lost (the file
/// only feeds statistics).
pub(crate) fn compact(
    layout: &Layout,
    scratch: &super::scratch::Scratch,
    max_len: u64,
    keep: usize,
) -> Result<bool, CacheError> {
    let path = layout.runs();
    let len = match fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => Err(e).at("cannot read", &path)?,
    };
    if len <= max_len {
        return Ok(false);
    }
    let mut bytes = Vec::new();
    for run in recent(layout, keep)? {
        serde_json::to_writer(&mut bytes, &run)
            .map_err(io::Error::other)
            .at("cannot encode a run for", &path)?;
        bytes.push(b'\n');
    }
    super::commit::publish(scratch, &path, &bytes)?;
    Ok(true)
}
