//! Progress, heartbeats and log lines for the host.
//!
//! When hermetic builds the task (it sets `HERMETIC_SDK_HOST_CALLS=1`, which `build.rs` turns
//! into the `hermetic_host_calls` cfg for `wasm32-wasip1`), these call the host's `hermetic_v1`
//! import module: the run's live display shows the progress, `--json` reports it as
//! `step_progress` and `step_log` events, and a heartbeat keeps a long step from being reported
//! as stuck. Built any other way (natively for tests, for `wasm32-wasip2`, or for plain
//! `wasmtime run`), they write the same information to stderr as lines, and the task needs
//! nothing from its host but WASI:
//!
//! ```text
//! progress: 3/10
//! warn: skipping empty.txt
//! ```
//!
//! # The `hermetic_v1` import module
//!
//! | import | signature | what it does |
//! |---|---|---|
//! | `api_version` | `() -> i32` | returns `1` |
//! | `progress` | `(done: i64, total: i64)` | reports progress; a negative `total` is unknown |
//! | `heartbeat` | `()` | a sign of life |
//! | `log` | `(level: i32, ptr: i32, len: i32)` | a UTF-8 line; level 0 error, 1 warn, 2 info, 3 debug |
//!
//! A task in another language can import the same functions. They only report: nothing they
//! return can change what the task computes.

use std::fmt;

/// How serious a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        })
    }
}

/// Reports that `done` of `total` units of work are done (`total` unknown when `None`). The
/// host shows at most a few updates a second, and always the last.
///
/// ```
/// for (i, file) in ["a.txt", "b.txt"].iter().enumerate() {
///     // ... work on `file` ...
///     hermetic_sdk::progress(i as u64 + 1, Some(2));
/// }
/// ```
pub fn progress(done: u64, total: Option<u64>) {
    imp::progress(done, total);
}

/// Tells the host the task is alive, when it works for a long time without output or progress.
pub fn heartbeat() {
    imp::heartbeat();
}

/// Logs a line at `level`. Prefer [`error!`](crate::error), [`warn!`](crate::warn),
/// [`info!`](crate::info) and [`debug!`](crate::debug), which format their arguments.
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}

/// Logs a formatted line at the error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &format!($($arg)*)) };
}

/// Logs a formatted line at the warning level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &format!($($arg)*)) };
}

/// Logs a formatted line at the info level.
///
/// ```
/// hermetic_sdk::info!("packed {} files", 3);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &format!($($arg)*)) };
}

/// Logs a formatted line at the debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &format!($($arg)*)) };
}

/// The stderr line for progress, when there is no host to call.
#[cfg_attr(hermetic_host_calls, allow(dead_code))]
fn progress_line(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("progress: {done}/{total}"),
        None => format!("progress: {done}"),
    }
}

#[cfg(hermetic_host_calls)]
mod imp {
    use super::Level;

    #[allow(unsafe_code)] // reason: the host's import module is only reachable through FFI.
    mod ffi {
        #[link(wasm_import_module = "hermetic_v1")]
        unsafe extern "C" {
            pub fn progress(done: i64, total: i64);
            pub fn heartbeat();
            pub fn log(level: i32, ptr: *const u8, len: i32);
        }
    }

    pub fn progress(done: u64, total: Option<u64>) {
        let total = total.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX));
        let done = i64::try_from(done).unwrap_or(i64::MAX);
        // SAFETY: `hermetic_v1.progress` takes two integers and touches no memory.
        #[allow(unsafe_code)]
        unsafe {
            ffi::progress(done, total);
        }
    }

    pub fn heartbeat() {
        // SAFETY: `hermetic_v1.heartbeat` takes nothing and touches no memory.
        #[allow(unsafe_code)]
        unsafe {
            ffi::heartbeat();
        }
    }

    pub fn log(level: Level, message: &str) {
        let len = i32::try_from(message.len()).unwrap_or(i32::MAX);
        // SAFETY: the host reads `len` bytes at `ptr`, which `message` owns for the call, and
        // keeps no reference to them.
        #[allow(unsafe_code)]
        unsafe {
            ffi::log(level as i32, message.as_ptr(), len);
        }
    }
}

#[cfg(not(hermetic_host_calls))]
mod imp {
    use super::Level;

    pub fn progress(done: u64, total: Option<u64>) {
        eprintln!("{}", super::progress_line(done, total));
    }

    pub fn heartbeat() {}

    pub fn log(level: Level, message: &str) {
        eprintln!("{level}: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_lines_are_readable() {
        assert_eq!(progress_line(3, Some(10)), "progress: 3/10");
        assert_eq!(progress_line(7, None), "progress: 7");
        assert_eq!(Level::Warn.to_string(), "warn");
        assert_eq!(Level::Error as i32, 0);
        assert_eq!(Level::Debug as i32, 3);
    }
}
