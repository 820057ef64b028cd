//! Comparing a pinned lockfile with the current state.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write as _};

use crate::{Lockfile, StepPin, TaskPin};

/// One difference between the pinned lockfile and the current state.
///
/// [`Display`] renders it as one line, with digests abbreviated; [`render_diff`] renders a list
/// of them in full.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drift {
    /// The format version differs.
    FormatVersion {
        /// The pinned format version.
        pinned: u32,
        /// The current format version.
        current: u32,
    },
    /// A task is built now that was not pinned.
    TaskAdded {
        /// The task's name.
        task: String,
    },
    /// A pinned task is no longer built.
    TaskRemoved {
        /// The task's name.
        task: String,
    },
    /// One field of a task differs.
    TaskChanged {
        /// The task's name.
        task: String,
        /// Which field.
        field: TaskField,
        /// The pinned value.
        pinned: String,
        /// The current value.
        current: String,
    },
    /// A prebuilt module was added or removed, or its digest differs.
    Module {
        /// The module's workflow-relative path.
        path: String,
        /// How its digest changed.
        change: Change,
    },
    /// A step exists now that was not pinned.
    StepAdded {
        /// The step's name.
        step: String,
    },
    /// A pinned step no longer exists.
    StepRemoved {
        /// The step's name.
        step: String,
    },
    /// The step's task, module, or key differs.
    StepChanged {
        /// The step's name.
        step: String,
        /// Which field.
        field: StepField,
        /// The pinned value.
        pinned: String,
        /// The current value.
        current: String,
    },
    /// The step's arguments differ. They are compared as a whole, since they are positional.
    StepArgs {
        /// The step's name.
        step: String,
        /// The pinned arguments.
        pinned: Vec<String>,
        /// The current arguments.
        current: Vec<String>,
    },
    /// An environment variable of the step was added or removed, or its value differs.
    StepEnv {
        /// The step's name.
        step: String,
        /// The variable's name.
        var: String,
        /// How its value changed.
        change: Change,
    },
    /// An input file of the step was added or removed, or its digest differs.
    StepInput {
        /// The step's name.
        step: String,
        /// The input's workflow-relative path.
        path: String,
        /// How its digest changed.
        change: Change,
    },
    /// The step depends on a step it did not depend on when pinned.
    StepDependencyAdded {
        /// The step's name.
        step: String,
        /// The step it now depends on.
        dependency: String,
    },
    /// The step no longer depends on a step it depended on when pinned.
    StepDependencyRemoved {
        /// The step's name.
        step: String,
        /// The step it no longer depends on.
        dependency: String,
    },
}

/// How a keyed value (a module's digest, an environment variable, an input's digest) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It is new, with this value.
    Added(String),
    /// It is gone; it had this value.
    Removed(String),
    /// Its value differs.
    Changed {
        /// The pinned value.
        pinned: String,
        /// The current value.
        current: String,
    },
}

/// A field of a [`TaskPin`] that can drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskField {
    /// [`TaskPin::source`].
    Source,
    /// [`TaskPin::module`].
    Module,
    /// [`TaskPin::toolchain`].
    Toolchain,
    /// [`TaskPin::target`].
    Target,
}

/// A scalar field of a [`StepPin`] that can drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepField {
    /// [`StepPin::task`].
    Task,
    /// [`StepPin::module`].
    Module,
    /// [`StepPin::key`].
    Key,
}

impl TaskField {
    /// The field's name in the lockfile.
    pub fn name(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Module => "module",
            Self::Toolchain => "toolchain",
            Self::Target => "target",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Self::Source | Self::Module => Kind::Digest,
            Self::Toolchain | Self::Target => Kind::Text,
        }
    }
}

impl StepField {
    /// The field's name in the lockfile.
    pub fn name(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Module => "module",
            Self::Key => "key",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Self::Task => Kind::Text,
            Self::Module | Self::Key => Kind::Digest,
        }
    }
}

impl Display for TaskField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Display for StepField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every difference between `pinned` and `current`, in a stable order: the format version, then
/// tasks by name, modules by path, and steps by name. Within a step: added or removed, then its
/// task, module, args, env vars by name, inputs by path, dependencies by name, and last its key.
///
/// Entries are matched by name (path for modules); both lockfiles are expected to have unique
/// names, as every parsed lockfile does.
pub fn diff(pinned: &Lockfile, current: &Lockfile) -> Vec<Drift> {
    let mut drifts = Vec::new();
    if pinned.version != current.version {
        drifts.push(Drift::FormatVersion {
            pinned: pinned.version,
            current: current.version,
        });
    }

    let tasks = pair_up(
        pinned.tasks.iter().map(|t| (t.name.as_str(), t)),
        current.tasks.iter().map(|t| (t.name.as_str(), t)),
    );
    for (name, pair) in tasks {
        match pair {
            (Some(_), None) => drifts.push(Drift::TaskRemoved { task: name.into() }),
            (None, Some(_)) => drifts.push(Drift::TaskAdded { task: name.into() }),
            (Some(pinned), Some(current)) => diff_task(pinned, current, &mut drifts),
            (None, None) => {}
        }
    }

    let modules = pair_up(
        pinned.modules.iter().map(|m| (m.path.as_str(), &m.digest)),
        current.modules.iter().map(|m| (m.path.as_str(), &m.digest)),
    );
    for (path, pair) in modules {
        if let Some(change) = Change::between(pair) {
            drifts.push(Drift::Module {
                path: path.into(),
                change,
            });
        }
    }

    let steps = pair_up(
        pinned.steps.iter().map(|s| (s.name.as_str(), s)),
        current.steps.iter().map(|s| (s.name.as_str(), s)),
    );
    for (name, pair) in steps {
        match pair {
            (Some(_), None) => drifts.push(Drift::StepRemoved { step: name.into() }),
            (None, Some(_)) => drifts.push(Drift::StepAdded { step: name.into() }),
            (Some(pinned), Some(current)) => diff_step(pinned, current, &mut drifts),
            (None, None) => {}
        }
    }
    drifts
}

fn diff_task(pinned: &TaskPin, current: &TaskPin, drifts: &mut Vec<Drift>) {
    let fields = [
        (TaskField::Source, &pinned.source, &current.source),
        (TaskField::Module, &pinned.module, &current.module),
        (TaskField::Toolchain, &pinned.toolchain, &current.toolchain),
        (TaskField::Target, &pinned.target, &current.target),
    ];
    for (field, was, now) in fields {
        if was != now {
            drifts.push(Drift::TaskChanged {
                task: current.name.clone(),
                field,
                pinned: was.clone(),
                current: now.clone(),
            });
        }
    }
}

fn diff_step(pinned: &StepPin, current: &StepPin, drifts: &mut Vec<Drift>) {
    let step = &current.name;
    let field = |drifts: &mut Vec<Drift>, field: StepField, was: &String, now: &String| {
        if was != now {
            drifts.push(Drift::StepChanged {
                step: step.clone(),
                field,
                pinned: was.clone(),
                current: now.clone(),
            });
        }
    };
    field(drifts, StepField::Task, &pinned.task, &current.task);
    field(drifts, StepField::Module, &pinned.module, &current.module);
    if pinned.args != current.args {
        drifts.push(Drift::StepArgs {
            step: step.clone(),
            pinned: pinned.args.clone(),
            current: current.args.clone(),
        });
    }
    for (var, pair) in pair_up(map_entries(&pinned.env), map_entries(&current.env)) {
        if let Some(change) = Change::between(pair) {
            drifts.push(Drift::StepEnv {
                step: step.clone(),
                var: var.into(),
                change,
            });
        }
    }
    for (path, pair) in pair_up(map_entries(&pinned.inputs), map_entries(&current.inputs)) {
        if let Some(change) = Change::between(pair) {
            drifts.push(Drift::StepInput {
                step: step.clone(),
                path: path.into(),
                change,
            });
        }
    }
    let dependencies = pair_up(
        pinned.depends_on.iter().map(|d| (d.as_str(), ())),
        current.depends_on.iter().map(|d| (d.as_str(), ())),
    );
    for (dependency, pair) in dependencies {
        let (step, dependency) = (step.clone(), dependency.to_owned());
        match pair {
            (Some(()), None) => drifts.push(Drift::StepDependencyRemoved { step, dependency }),
            (None, Some(())) => drifts.push(Drift::StepDependencyAdded { step, dependency }),
            _ => {}
        }
    }
    field(drifts, StepField::Key, &pinned.key, &current.key);
}

fn map_entries(map: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &String)> {
    map.iter().map(|(key, value)| (key.as_str(), value))
}

/// Pairs up the pinned and current entries with the same key, in key order.
fn pair_up<'a, V>(
    pinned: impl Iterator<Item = (&'a str, V)>,
    current: impl Iterator<Item = (&'a str, V)>,
) -> BTreeMap<&'a str, (Option<V>, Option<V>)> {
    let mut pairs: BTreeMap<&str, (Option<V>, Option<V>)> = BTreeMap::new();
    for (key, value) in pinned {
        pairs.entry(key).or_default().0 = Some(value);
    }
    for (key, value) in current {
        pairs.entry(key).or_default().1 = Some(value);
    }
    pairs
}

impl Change {
    /// The change from `pinned` to `current`, if there is one.
    fn between((pinned, current): (Option<&String>, Option<&String>)) -> Option<Change> {
        match (pinned, current) {
            (None, Some(current)) => Some(Change::Added(current.clone())),
            (Some(pinned), None) => Some(Change::Removed(pinned.clone())),
            (Some(pinned), Some(current)) if pinned != current => Some(Change::Changed {
                pinned: pinned.clone(),
                current: current.clone(),
            }),
            _ => None,
        }
    }
}

/// How a value is shown: digests bare (and abbreviated on one line), anything else quoted.
#[derive(Clone, Copy)]
enum Kind {
    Digest,
    Text,
}

/// Hex digits of a digest kept in one-line descriptions: 48 bits, plenty to tell two apart.
const SHORT_DIGEST_HEX: usize = 12;

impl Kind {
    /// The value for a one-line description.
    fn short(self, value: &str) -> String {
        match self {
            Kind::Digest => match value.split_once(':') {
                Some((algorithm, hex)) if hex.len() > SHORT_DIGEST_HEX && hex.is_ascii() => {
                    format!("{algorithm}:{}", &hex[..SHORT_DIGEST_HEX])
                }
                _ => value.to_owned(),
            },
            Kind::Text => format!("{value:?}"),
        }
    }

    /// The value in full, for [`render_diff`].
    fn full(self, value: &str) -> String {
        match self {
            Kind::Digest => value.to_owned(),
            Kind::Text => format!("{value:?}"),
        }
    }
}

impl Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::FormatVersion { pinned, current } => {
                write!(f, "format version changed ({pinned} → {current})")
            }
            Drift::TaskAdded { task } => write!(f, "task `{task}` added"),
            Drift::TaskRemoved { task } => write!(f, "task `{task}` removed"),
            Drift::TaskChanged {
                task,
                field,
                pinned,
                current,
            } => write!(
                f,
                "task `{task}`: {field} changed ({} → {})",
                field.kind().short(pinned),
                field.kind().short(current),
            ),
            Drift::Module { path, change } => {
                write!(f, "module `{path}` ")?;
                change.fmt_short(f, Kind::Digest)
            }
            Drift::StepAdded { step } => write!(f, "step `{step}` added"),
            Drift::StepRemoved { step } => write!(f, "step `{step}` removed"),
            Drift::StepChanged {
                step,
                field,
                pinned,
                current,
            } => write!(
                f,
                "step `{step}`: {field} changed ({} → {})",
                field.kind().short(pinned),
                field.kind().short(current),
            ),
            Drift::StepArgs {
                step,
                pinned,
                current,
            } => write!(f, "step `{step}`: args changed ({pinned:?} → {current:?})"),
            Drift::StepEnv { step, var, change } => {
                write!(f, "step `{step}`: env `{var}` ")?;
                change.fmt_short(f, Kind::Text)
            }
            Drift::StepInput { step, path, change } => {
                write!(f, "step `{step}`: input `{path}` ")?;
                change.fmt_short(f, Kind::Digest)
            }
            Drift::StepDependencyAdded { step, dependency } => {
                write!(f, "step `{step}`: dependency `{dependency}` added")
            }
            Drift::StepDependencyRemoved { step, dependency } => {
                write!(f, "step `{step}`: dependency `{dependency}` removed")
            }
        }
    }
}

impl Change {
    fn fmt_short(&self, f: &mut fmt::Formatter<'_>, kind: Kind) -> fmt::Result {
        match self {
            Change::Added(value) => write!(f, "added ({})", kind.short(value)),
            Change::Removed(_) => f.write_str("removed"),
            Change::Changed { pinned, current } => write!(
                f,
                "changed ({} → {})",
                kind.short(pinned),
                kind.short(current)
            ),
        }
    }
}

/// Renders drifts as a multi-line, diff-style report for `hermetic run --locked` failures: `-`
/// for what the lockfile pins, `+` for what the workflow has now, values in full.
///
/// Changes to a task's or step's fields are grouped under a `task `name`:` or `step `name`:`
/// header (consecutive drifts of the same task or step share it, as they do in [`diff`]'s
/// output); whole entries added or removed, modules, and the format version are one or two
/// unindented lines. Every line ends with a newline; no drifts render as the empty string.
pub fn render_diff(drifts: &[Drift]) -> String {
    let mut out = String::new();
    let mut group: Option<(&str, &str)> = None;
    for drift in drifts {
        let (subject, lines) = drift.lines();
        match subject {
            Some(subject) => {
                if group != Some(subject) {
                    let (kind, name) = subject;
                    let _ = writeln!(out, "{kind} `{name}`:");
                    group = Some(subject);
                }
                for (sign, line) in lines {
                    let _ = writeln!(out, "  {sign} {line}");
                }
            }
            None => {
                group = None;
                for (sign, line) in lines {
                    let _ = writeln!(out, "{sign} {line}");
                }
            }
        }
    }
    out
}

/// The `-` sign for pinned values, `+` for current ones.
type Line = (char, String);

impl Drift {
    /// The task or step this drift is grouped under in [`render_diff`], if any, and its lines.
    fn lines(&self) -> (Option<(&'static str, &str)>, Vec<Line>) {
        let both = |label: &str, kind: Kind, pinned: &str, current: &str| {
            vec![
                ('-', format!("{label} = {}", kind.full(pinned))),
                ('+', format!("{label} = {}", kind.full(current))),
            ]
        };
        let keyed = |label: String, kind: Kind, change: &Change| match change {
            Change::Added(value) => vec![('+', format!("{label} = {}", kind.full(value)))],
            Change::Removed(value) => vec![('-', format!("{label} = {}", kind.full(value)))],
            Change::Changed { pinned, current } => both(&label, kind, pinned, current),
        };
        match self {
            Drift::FormatVersion { pinned, current } => (
                None,
                vec![
                    ('-', format!("version = {pinned}")),
                    ('+', format!("version = {current}")),
                ],
            ),
            Drift::TaskAdded { task } => (None, vec![('+', format!("task `{task}`"))]),
            Drift::TaskRemoved { task } => (None, vec![('-', format!("task `{task}`"))]),
            Drift::TaskChanged {
                task,
                field,
                pinned,
                current,
            } => (
                Some(("task", task)),
                both(field.name(), field.kind(), pinned, current),
            ),
            Drift::Module { path, change } => (
                None,
                keyed(format!("module `{path}`"), Kind::Digest, change),
            ),
            Drift::StepAdded { step } => (None, vec![('+', format!("step `{step}`"))]),
            Drift::StepRemoved { step } => (None, vec![('-', format!("step `{step}`"))]),
            Drift::StepChanged {
                step,
                field,
                pinned,
                current,
            } => (
                Some(("step", step)),
                both(field.name(), field.kind(), pinned, current),
            ),
            Drift::StepArgs {
                step,
                pinned,
                current,
            } => (
                Some(("step", step)),
                vec![
                    ('-', format!("args = {pinned:?}")),
                    ('+', format!("args = {current:?}")),
                ],
            ),
            Drift::StepEnv { step, var, change } => (
                Some(("step", step)),
                keyed(format!("env `{var}`"), Kind::Text, change),
            ),
            Drift::StepInput { step, path, change } => (
                Some(("step", step)),
                keyed(format!("input `{path}`"), Kind::Digest, change),
            ),
            Drift::StepDependencyAdded { step, dependency } => (
                Some(("step", step)),
                vec![('+', format!("dependency `{dependency}`"))],
            ),
            Drift::StepDependencyRemoved { step, dependency } => (
                Some(("step", step)),
                vec![('-', format!("dependency `{dependency}`"))],
            ),
        }
    }
}
