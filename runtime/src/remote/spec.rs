//! What travels between `hermetic run --remote-exec` and `hermetic worker` besides the files:
//! the invocation ([`StepSpec`], `step.json` in the input root) and how it ended
//! ([`RemoteReport`], the output file `report.json`). Both are JSON with a `version`; a worker
//! refuses a version it does not know, so an old worker never half-runs a new step.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sandbox::{Limits, Outcome};

/// The version of [`StepSpec`] and [`RemoteReport`] this build writes and reads.
pub const SPEC_VERSION: u32 = 1;

/// One attempt of a step, as the worker needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub version: u32,
    /// The step's name, for the worker's logs.
    pub step: String,
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    pub limits: SpecLimits,
    /// The seed of the guest's random generators, hex.
    pub seed: String,
    /// The wall clock's epoch, in seconds since 1970.
    pub clock_epoch_secs: u64,
    /// blake3 of `module.wasm`, hex: the worker checks it before loading.
    pub module_digest: String,
    /// Link unknown imports to trapping functions instead of refusing the module.
    pub unknown_imports_trap: bool,
    /// The directories the guest sees, in order.
    pub mounts: Vec<SpecMount>,
}

/// [`Limits`], in plain units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLimits {
    pub timeout_ms: u64,
    pub fuel: u64,
    pub memory: u64,
    pub stdout: u64,
    pub stderr: u64,
    pub output: u64,
}

impl From<Limits> for SpecLimits {
    fn from(l: Limits) -> Self {
        Self {
            timeout_ms: u64::try_from(l.timeout.as_millis()).unwrap_or(u64::MAX),
            fuel: l.fuel,
            memory: l.memory,
            stdout: l.stdout,
            stderr: l.stderr,
            output: l.output,
        }
    }
}

impl From<SpecLimits> for Limits {
    fn from(l: SpecLimits) -> Self {
        Self {
            timeout: Duration::from_millis(l.timeout_ms),
            fuel: l.fuel,
            memory: l.memory,
            stdout: l.stdout,
            stderr: l.stderr,
            output: l.output,
        }
    }
}

/// A directory the guest sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecMount {
    /// Where the guest sees it, e.g. `/in`.
    pub guest: String,
    /// Where it is in the input root, relative; `None` for an empty scratch directory that the
    /// worker makes (`/tmp`).
    pub path: Option<String>,
    /// Whether the guest may write in it. The one writable mount with a `path` is the output
    /// directory, `out`, which the worker sends back.
    pub writable: bool,
}

/// How a remote attempt ended: the sandbox's report, but for the captured streams (which travel
/// as the action result's stdout and stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteReport {
    pub version: u32,
    pub outcome: OutcomeRecord,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub duration_ms: u64,
}

/// [`Outcome`], serializable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeRecord {
    Success,
    Exit { code: i32 },
    Trap { message: String, backtrace: String },
    OutOfFuel { limit: u64 },
    TimedOut { limit_ms: u64 },
    MemoryLimit { limit: u64 },
    OutputLimit { stream: String, limit: u64 },
}

impl From<&Outcome> for OutcomeRecord {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::Success => Self::Success,
            Outcome::Exit(code) => Self::Exit { code: *code },
            Outcome::Trap { message, backtrace } => Self::Trap {
                message: message.clone(),
                backtrace: backtrace.clone(),
            },
            Outcome::OutOfFuel { limit } => Self::OutOfFuel { limit: *limit },
            Outcome::TimedOut { limit } => Self::TimedOut {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            Outcome::MemoryLimit { limit } => Self::MemoryLimit { limit: *limit },
            Outcome::OutputLimit { stream, limit } => Self::OutputLimit {
                stream: (*stream).to_string(),
                limit: *limit,
            },
        }
    }
}

impl OutcomeRecord {
    /// The outcome; `None` for an output stream name this build does not know.
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            Self::Success => Outcome::Success,
            Self::Exit { code } => Outcome::Exit(*code),
            Self::Trap { message, backtrace } => Outcome::Trap {
                message: message.clone(),
                backtrace: backtrace.clone(),
            },
            Self::OutOfFuel { limit } => Outcome::OutOfFuel { limit: *limit },
            Self::TimedOut { limit_ms } => Outcome::TimedOut {
                limit: Duration::from_millis(*limit_ms),
            },
            Self::MemoryLimit { limit } => Outcome::MemoryLimit { limit: *limit },
            Self::OutputLimit { stream, limit } => Outcome::OutputLimit {
                stream: match stream.as_str() {
                    "stdout" => "stdout",
                    "stderr" => "stderr",
                    "output" => "output",
                    _ => return None,
                },
                limit: *limit,
            },
        })
    }
}

/// Checks that `path` is a plain relative path inside the input root: no leading `/`, no empty,
/// `.` or `..` component. Everything a worker reads from a spec is checked with it.
pub fn check_relative(path: &str) -> Result<(), String> {
    hermetic_cache::check_relative_path(path).map_err(|why| format!("`{path}`: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_survives_the_trip() {
        let outcomes = [
            Outcome::Success,
            Outcome::Exit(3),
            Outcome::Trap {
                message: "unreachable".into(),
                backtrace: "0: f".into(),
            },
            Outcome::OutOfFuel { limit: 9 },
            Outcome::TimedOut {
                limit: Duration::from_millis(1500),
            },
            Outcome::MemoryLimit { limit: 65536 },
            Outcome::OutputLimit {
                stream: "stderr",
                limit: 10,
            },
        ];
        for outcome in outcomes {
            let json = serde_json::to_string(&OutcomeRecord::from(&outcome)).unwrap();
            let back: OutcomeRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(back.outcome(), Some(outcome), "{json}");
        }
        let odd = OutcomeRecord::OutputLimit {
            stream: "elsewhere".into(),
            limit: 1,
        };
        assert_eq!(odd.outcome(), None);
    }
}
