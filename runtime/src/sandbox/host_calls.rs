//! `hermetic_v1`: the calls a core-module guest can make to the host besides WASI.
//!
//! | import | signature | what it does |
//! |---|---|---|
//! | `hermetic_v1.api_version` | `() -> i32` | returns `1`, the version of this module |
//! | `hermetic_v1.progress` | `(done: i64, total: i64)` | reports progress; a negative `total` is unknown |
//! | `hermetic_v1.heartbeat` | `()` | a sign of life, for stuck-step warnings |
//! | `hermetic_v1.log` | `(level: i32, ptr: i32, len: i32)` | a log line of `len` UTF-8 bytes at `ptr`; level 0 error, 1 warn, 2 info, 3 debug |
//!
//! The calls only report: they return nothing the guest could compute with (but the version),
//! so a step's outputs cannot depend on them, and they are not part of any key. Bad arguments
//! (a range outside memory, invalid UTF-8, an unknown level) are clamped or replaced, never a
//! trap: reporting must not fail a step. A log line is cut at [`MAX_LOG_BYTES`].
//!
//! The SDK calls these when hermetic builds the task (it sets `HERMETIC_SDK_HOST_CALLS`), and
//! writes the same information as stderr lines otherwise, so that the task also runs under
//! plain `wasmtime run`. Version 2 would be a new module, `hermetic_v2`, beside this one.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use wasmtime::{Caller, Extern, Linker};

use super::Heartbeat;

/// The import module's name.
pub const MODULE: &str = "hermetic_v1";
/// What `api_version` returns.
pub const API_VERSION: i32 = 1;
/// The longest log line kept, in bytes.
pub const MAX_LOG_BYTES: usize = 4096;

/// How serious a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    /// The level of a `log` call's `level` argument; out of range is `Debug`.
    pub fn from_abi(level: i32) -> Self {
        match level {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            _ => Self::Debug,
        }
    }
}

/// Where a guest's host calls go: the pool turns them into events.
pub trait HostCallSink: Send + Sync + fmt::Debug {
    /// `done` of `total` (unknown when `None`) units of work are done.
    fn progress(&self, done: u64, total: Option<u64>);
    /// A log line.
    fn log(&self, level: LogLevel, message: &str);
}

/// What a guest's store holds for its host calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostCalls {
    pub sink: Option<Arc<dyn HostCallSink>>,
    pub heartbeat: Option<Arc<Heartbeat>>,
}

impl HostCalls {
    fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }
}

/// What the store's data must offer for [`add_to_linker`].
pub(crate) trait HostCallState: 'static {
    fn host_calls(&self) -> &HostCalls;
}

/// Defines the `hermetic_v1` functions in `linker`.
pub(crate) fn add_to_linker<T: HostCallState + Send>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "api_version", || API_VERSION)?;
    linker.func_wrap(
        MODULE,
        "progress",
        |caller: Caller<'_, T>, done: i64, total: i64| {
            let calls = caller.data().host_calls();
            calls.beat();
            if let Some(sink) = &calls.sink {
                let total = u64::try_from(total).ok();
                sink.progress(done.max(0) as u64, total);
            }
        },
    )?;
    linker.func_wrap(MODULE, "heartbeat", |caller: Caller<'_, T>| {
        caller.data().host_calls().beat();
    })?;
    linker.func_wrap(
        MODULE,
        "log",
        |mut caller: Caller<'_, T>, level: i32, ptr: i32, len: i32| {
            let message = match caller.get_export("memory") {
                Some(Extern::Memory(memory)) => {
                    let data = memory.data(&caller);
                    let start = (ptr as u32 as usize).min(data.len());
                    let len = (len.max(0) as usize).min(MAX_LOG_BYTES);
                    let end = start.saturating_add(len).min(data.len());
                    String::from_utf8_lossy(&data[start..end]).into_owned()
                }
                _ => String::new(),
            };
            let calls = caller.data().host_calls();
            calls.beat();
            if let Some(sink) = &calls.sink {
                sink.log(LogLevel::from_abi(level), &message);
            }
        },
    )?;
    Ok(())
}
