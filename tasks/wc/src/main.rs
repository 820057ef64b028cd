//! `wc` — a hermetic task that counts lines, words and bytes.
//!
//! ```text
//! wc
//! ```
//!
//! For every file under `/in` and then under `/deps` (each recursively, in sorted order), writes
//! a line `LINES WORDS BYTES PATH` to `/out/wc.txt`, where `PATH` is the file's sandbox path
//! (`/in/a.txt`, `/deps/compile/x.o`), followed by a final `LINES WORDS BYTES total` line.
//!
//! Counting follows POSIX `wc` in the C locale: lines are newline bytes, words are maximal runs
//! of bytes that are not ASCII whitespace, and bytes are the file's size. The task takes no
//! arguments.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: stats
//!     task: wc
//!     inputs: ["src/**/*.rs"]
//!     outputs: [wc.txt]
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::ops::AddAssign;
use std::path::{Path, PathBuf};

use hermetic_sdk::{Error, Mounts, Result};

/// The output file, relative to `/out`.
const OUTPUT: &str = "wc.txt";

fn main() {
    hermetic_sdk::main(|args| {
        if !args.is_empty() {
            return Err(Error::msg(format!(
                "wc takes no arguments (got {}); it counts every file under /in and /deps",
                args.join(" ")
            )));
        }
        let report = report(&Mounts::sandbox())?;
        hermetic_sdk::write_output(OUTPUT, report)
    });
}

/// Line, word and byte counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.lines += other.lines;
        self.words += other.words;
        self.bytes += other.bytes;
    }
}

/// Counts incrementally, so that a word split across two reads is counted once.
#[derive(Debug, Default)]
struct Counter {
    counts: Counts,
    in_word: bool,
}

impl Counter {
    fn feed(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            if byte == b'\n' {
                self.counts.lines += 1;
            }
            // POSIX "C" locale whitespace: space, \t, \n, \v, \f, \r.
            let space = matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
            if !space && !self.in_word {
                self.counts.words += 1;
            }
            self.in_word = !space;
        }
        self.counts.bytes += chunk.len() as u64;
    }
}

fn count_file(path: &Path) -> Result<Counts> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut counter = Counter::default();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(counter.counts),
            Ok(n) => counter.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
}

/// Every file to count: `(sandbox path for the report, real path to read)`, inputs first.
fn files(mounts: &Mounts) -> Result<Vec<(PathBuf, PathBuf)>> {
    let inputs = mounts.list_inputs()?.into_iter().map(|rel| {
        (
            Path::new(hermetic_sdk::IN).join(&rel),
            mounts.resolve(Path::new(hermetic_sdk::IN).join(rel)),
        )
    });
    let deps = mounts.list_deps()?.into_iter().map(|rel| {
        (
            Path::new(hermetic_sdk::DEPS).join(&rel),
            mounts.resolve(Path::new(hermetic_sdk::DEPS).join(rel)),
        )
    });
    Ok(inputs.chain(deps).collect())
}

fn line(out: &mut String, c: Counts, label: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{} {} {} {label}", c.lines, c.words, c.bytes);
}

/// The whole `wc.txt` report.
fn report(mounts: &Mounts) -> Result<String> {
    let mut out = String::new();
    let mut total = Counts::default();
    for (shown, real) in files(mounts)? {
        let counts = count_file(&real)?;
        line(&mut out, counts, &shown.to_string_lossy());
        total += counts;
    }
    line(&mut out, total, "total");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn count_bytes(bytes: &[u8]) -> Counts {
        let mut counter = Counter::default();
        counter.feed(bytes);
        counter.counts
    }

    #[test]
    fn counts_like_posix_wc() {
        assert_eq!(count_bytes(b""), Counts::default());
        assert_eq!(
            count_bytes(b"hello world\n"),
            Counts {
                lines: 1,
                words: 2,
                bytes: 12
            }
        );
        assert_eq!(
            count_bytes(b"  a\tb\r\n\nc"),
            Counts {
                lines: 2,
                words: 3,
                bytes: 9
            }
        );
        // Non-ASCII bytes are part of words.
        assert_eq!(
            count_bytes("héllo wörld".as_bytes()),
            Counts {
                lines: 0,
                words: 2,
                bytes: 13
            }
        );
    }

    #[test]
    fn word_split_across_chunks_counts_once() {
        let mut counter = Counter::default();
        counter.feed(b"hel");
        counter.feed(b"lo wor");
        counter.feed(b"ld\n");
        assert_eq!(
            counter.counts,
            Counts {
                lines: 1,
                words: 2,
                bytes: 12
            }
        );
    }

    #[test]
    fn report_lists_inputs_then_deps_sorted_with_total() {
        let root = std::env::temp_dir().join(format!("hermetic-wc-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in/dir")).unwrap();
        fs::create_dir_all(root.join("deps/build")).unwrap();
        fs::write(root.join("in/b.txt"), "one two\nthree\n").unwrap();
        fs::write(root.join("in/dir/a.txt"), "x").unwrap();
        fs::write(root.join("deps/build/out.log"), "ok\n").unwrap();
        let report = report(&Mounts::rooted(&root)).unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            report,
            "2 3 14 /in/b.txt\n\
             0 1 1 /in/dir/a.txt\n\
             1 1 3 /deps/build/out.log\n\
             3 5 18 total\n"
        );
    }

    #[test]
    fn empty_sandbox_reports_zero_total_and_missing_in_is_an_error() {
        let root =
            std::env::temp_dir().join(format!("hermetic-wc-test-empty-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in")).unwrap();
        assert_eq!(report(&Mounts::rooted(&root)).unwrap(), "0 0 0 total\n");
        fs::remove_dir_all(root.join("in")).unwrap();
        let err = report(&Mounts::rooted(&root)).unwrap_err();
        assert_eq!(err.path(), Some(root.join("in").as_path()));
        fs::remove_dir_all(&root).unwrap();
    }
}
