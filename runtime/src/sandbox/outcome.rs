//! How a guest invocation ended.

use std::fmt;
use std::time::Duration;

use crate::workflow::units::{format_duration, format_size};

/// The end of one guest invocation. Each variant has one clear message (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `_start` returned, or the guest called `exit(0)`.
    Success,
    /// The guest called `exit(code)` with a non-zero code. (A `wasm32-wasip2` component can only
    /// report success or failure, so its failures arrive as code 1.)
    Exit(i32),
    /// The guest trapped: an `unreachable`, an out-of-bounds access, a stack overflow, ...
    Trap {
        /// The trap's message, e.g. ``wasm `unreachable` instruction executed``.
        message: String,
        /// The wasm backtrace, one frame per line, innermost first.
        backtrace: String,
    },
    /// The guest used up its fuel.
    OutOfFuel { limit: u64 },
    /// The guest ran past its wall-clock limit.
    TimedOut { limit: Duration },
    /// The guest tried to grow a linear memory past its limit.
    MemoryLimit { limit: u64 },
    /// The guest wrote more than its limit to stdout or stderr, or left too much in `/out`.
    OutputLimit { stream: &'static str, limit: u64 },
}

impl Outcome {
    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }

    /// A short, stable machine name for events and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Exit(_) => "exit",
            Self::Trap { .. } => "trap",
            Self::OutOfFuel { .. } => "out_of_fuel",
            Self::TimedOut { .. } => "timed_out",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::OutputLimit { .. } => "output_limit",
        }
    }

    /// The exit code `hermetic exec` uses for this outcome: the guest's own code, 134 for a trap
    /// (as `wasmtime run` does), 124 for any resource limit (as `timeout(1)` does).
    pub fn exec_exit_code(&self) -> i32 {
        match self {
            Self::Success => 0,
            Self::Exit(code) => *code,
            Self::Trap { .. } => 134,
            Self::OutOfFuel { .. }
            | Self::TimedOut { .. }
            | Self::MemoryLimit { .. }
            | Self::OutputLimit { .. } => 124,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => write!(f, "succeeded"),
            Self::Exit(code) => write!(f, "exited with code {code}"),
            Self::Trap { message, backtrace } => {
                write!(f, "trapped: {message}")?;
                if !backtrace.is_empty() {
                    write!(f, "\nwasm backtrace:\n{backtrace}")?;
                }
                Ok(())
            }
            Self::OutOfFuel { limit } => write!(f, "ran out of fuel (limit: {limit})"),
            Self::TimedOut { limit } => write!(f, "timed out after {}", format_duration(*limit)),
            Self::MemoryLimit { limit } => {
                write!(f, "exceeded its memory limit of {}", format_size(*limit))
            }
            Self::OutputLimit { stream, limit } => {
                write!(f, "exceeded its {stream} limit of {}", format_size(*limit))
            }
        }
    }
}
