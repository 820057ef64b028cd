//! Reading and parsing lockfiles.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::{FORMAT_VERSION, Lockfile, LockfileError};

impl Lockfile {
    /// Parses the text of a lockfile; `path` is used only in errors.
    ///
    /// The format version is checked before anything else, so that a lockfile from a newer
    /// hermetic is reported as such ([`LockfileError::NewerVersion`]) rather than as a list of
    /// unknown fields. The result is [normalized](Lockfile::normalize).
    pub fn parse(text: &str, path: &Path) -> Result<Lockfile, LockfileError> {
        check_version(text, path)?;
        let mut lockfile: Lockfile =
            toml::from_str(text).map_err(|error| toml_error(text, path, &error))?;
        check_unique(text, path)?;
        lockfile.normalize();
        Ok(lockfile)
    }

    /// Reads and parses the lockfile at `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Lockfile>, LockfileError> {
        match read_text(path)? {
            Some(text) => Lockfile::parse(&text, path).map(Some),
            None => Ok(None),
        }
    }
}

/// Reads `path` as UTF-8 text; `Ok(None)` when it does not exist.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, LockfileError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockfileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    String::from_utf8(bytes).map(Some).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        parse_error(
            error.as_bytes(),
            offset,
            path,
            "the file is not valid UTF-8".to_owned(),
        )
    })
}

/// Just enough of any format version's structure to find out which version it is.
#[derive(Deserialize)]
struct VersionProbe {
    version: Spanned<i64>,
}

fn check_version(text: &str, path: &Path) -> Result<(), LockfileError> {
    let probe: VersionProbe =
        toml::from_str(text).map_err(|error| toml_error(text, path, &error))?;
    let found = *probe.version.get_ref();
    if found > i64::from(FORMAT_VERSION) {
        return Err(LockfileError::NewerVersion {
            path: path.to_owned(),
            found: found.unsigned_abs(),
            supported: FORMAT_VERSION,
        });
    }
    if found < 1 {
        return Err(parse_error(
            text.as_bytes(),
            probe.version.span().start,
            path,
            format!("invalid format version {found}; this hermetic reads format {FORMAT_VERSION}"),
        ));
    }
    Ok(())
}

/// The identifying fields of a lockfile's entries, with their locations.
#[derive(Deserialize)]
struct Identities {
    #[serde(default)]
    task: Vec<Named>,
    #[serde(default)]
    module: Vec<Pathed>,
    #[serde(default)]
    step: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    name: Spanned<String>,
}

#[derive(Deserialize)]
struct Pathed {
    path: Spanned<String>,
}

/// Rejects two tasks, modules, or steps with the same identity, pointing at the second one.
fn check_unique(text: &str, path: &Path) -> Result<(), LockfileError> {
    let identities: Identities =
        toml::from_str(text).map_err(|error| toml_error(text, path, &error))?;
    let tasks = identities.task.iter().map(|task| ("task", &task.name));
    let modules = identities
        .module
        .iter()
        .map(|module| ("module", &module.path));
    let steps = identities.step.iter().map(|step| ("step", &step.name));
    let mut seen = BTreeSet::new();
    for (kind, id) in tasks.chain(modules).chain(steps) {
        if !seen.insert((kind, id.get_ref())) {
            return Err(parse_error(
                text.as_bytes(),
                id.span().start,
                path,
                format!("duplicate {kind} `{}`", id.get_ref()),
            ));
        }
    }
    Ok(())
}

fn toml_error(text: &str, path: &Path, error: &toml::de::Error) -> LockfileError {
    // toml reports nearly every error with a span; fall back to the start of the file.
    let offset = error.span().map_or(0, |span| span.start);
    parse_error(text.as_bytes(), offset, path, error.message().to_owned())
}

/// A [`LockfileError::Parse`] at byte `offset` of `text`, located as a 1-based line and a 1-based
/// column counted in characters.
fn parse_error(text: &[u8], offset: usize, path: &Path, message: String) -> LockfileError {
    let before = &text[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    let line = 1 + before.iter().filter(|&&byte| byte == b'\n').count();
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&byte| byte & 0xC0 != 0x80)
        .count();
    LockfileError::Parse {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}
