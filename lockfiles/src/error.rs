//! Errors from reading and writing lockfiles.

use std::io;
use std::path::PathBuf;

/// An error reading, parsing, or writing a lockfile. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockfileError {
    /// The file exists but could not be read.
    #[error("failed to read `{}`: {source}", path.display())]
    Read {
        /// The lockfile.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The lockfile could not be written (creating, writing, or syncing the temporary file,
    /// renaming it over the lockfile, or syncing the directory).
    #[error("failed to write `{}`: {source}", path.display())]
    Write {
        /// The lockfile.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The file is not a valid lockfile: bad TOML, a missing or unknown field, a value of the
    /// wrong type, a duplicate entry, or not UTF-8.
    #[error(
        "{}:{line}:{column}: {message}\n\
         hint: hermetic never overwrites a lockfile it cannot read; fix or delete it, \
         then run `hermetic lock` to regenerate it",
        path.display()
    )]
    Parse {
        /// The lockfile.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },

    /// The lockfile to be written would not read back: two entries share a name, or its
    /// version is not [`crate::FORMAT_VERSION`]. This is a bug in the caller.
    #[error("refusing to write `{}`: {message}", path.display())]
    Invalid {
        /// The lockfile.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The lockfile was written by a newer hermetic, in a format this one cannot read.
    #[error(
        "{}: written by a newer hermetic (format {found}); this hermetic reads format \
         {supported} — upgrade hermetic",
        path.display()
    )]
    NewerVersion {
        /// The lockfile.
        path: PathBuf,
        /// The format version in the file.
        found: u64,
        /// The newest format version this hermetic reads ([`crate::FORMAT_VERSION`]).
        supported: u32,
    },
}
