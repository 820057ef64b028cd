//! What earlier runs left on disk for each step: its logs, `.hermetic/logs/<step>/`, and its
//! published outputs, `<out_root>/<step>/`.
//!
//! A step that prints nothing must remove the logs an earlier run left, and a step that
//! declares no outputs, fails or is skipped must remove what an earlier run published under
//! its name. Looking for
//! them step by step cost a failed lookup each, per step, on every run; instead both
//! directories are listed once when the run starts, and a step looks only when its name was
//! there or it wrote one itself in this run (an earlier attempt). The project lock keeps other
//! `hermetic` processes from adding any in between.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::Plan;

/// Per step of the plan (by index), whether each directory may exist.
#[derive(Debug)]
pub struct Leftovers {
    logs: Vec<AtomicBool>,
    published: Vec<AtomicBool>,
}

impl Leftovers {
    /// Lists `.hermetic/logs/` and the plan's `out_root`. A directory that cannot be listed
    /// (other than a missing one) counts as holding every step's.
    pub fn list(plan: &Plan) -> Self {
        let flags = |dir: &Path| {
            let present = names(dir);
            plan.steps
                .iter()
                .map(|s| AtomicBool::new(present.as_ref().is_none_or(|p| p.contains(&s.name))))
                .collect()
        };
        Self {
            logs: flags(&plan.state_dir.join("logs")),
            published: flags(&plan.out_root),
        }
    }

    /// Whether step `i`'s logs directory may exist.
    pub fn logs(&self, i: usize) -> bool {
        self.logs[i].load(Ordering::Relaxed)
    }

    /// Step `i` wrote its logs directory.
    pub fn wrote_logs(&self, i: usize) {
        self.logs[i].store(true, Ordering::Relaxed);
    }

    /// Whether step `i`'s published outputs may exist.
    pub fn published(&self, i: usize) -> bool {
        self.published[i].load(Ordering::Relaxed)
    }

    /// Step `i` published its outputs.
    pub fn wrote_published(&self, i: usize) {
        self.published[i].store(true, Ordering::Relaxed);
    }
}

/// The names in `dir`: empty if it does not exist, `None` if it cannot be listed.
fn names(dir: &Path) -> Option<HashSet<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(HashSet::new()),
        Err(_) => return None,
    };
    let mut names = HashSet::new();
    for entry in entries {
        // A name that is not UTF-8 is no step's.
        if let Some(name) = entry.ok()?.file_name().to_str() {
            names.insert(name.to_owned());
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_a_directory_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("b"), "").unwrap();
        let listed = names(dir.path()).unwrap();
        assert_eq!(listed, HashSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(names(&dir.path().join("missing")), Some(HashSet::new()));
        // A file is not a directory to list: every step's may exist.
        assert_eq!(names(&dir.path().join("b")), None);
    }
}
