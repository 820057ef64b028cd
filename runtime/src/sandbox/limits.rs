//! Resource limits of one guest invocation, and the store limiter that enforces memory.

use std::time::Duration;

/// Every hard limit a guest runs under. See [`Limits::default`] for the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for the whole invocation, enforced by epoch interruption while the guest
    /// computes and by a timer while it waits in a host call.
    pub timeout: Duration,
    /// Instruction budget (wasmtime fuel: about one unit per wasm operator). Deterministic: the
    /// same module and inputs run out at the same instruction on every machine.
    pub fuel: u64,
    /// Maximum size of each linear memory, in bytes.
    pub memory: u64,
    /// Bytes the guest may write to stdout; more is refused and the invocation fails.
    pub stdout: u64,
    /// Bytes the guest may write to stderr.
    pub stderr: u64,
    /// Total bytes of files the guest may leave in `/out`.
    pub output: u64,
}

impl Default for Limits {
    /// The defaults stop a runaway guest without getting in the way of real work:
    ///
    /// | limit | default |
    /// |---|---|
    /// | `timeout` | 10 minutes |
    /// | `fuel` | 100 G (about a minute of pure compute) |
    /// | `memory` | 1 GiB per linear memory |
    /// | `stdout`, `stderr` | 16 MiB each |
    /// | `output` | 4 GiB in `/out` |
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            fuel: 100_000_000_000,
            memory: 1 << 30,
            stdout: 16 << 20,
            stderr: 16 << 20,
            output: 4 << 30,
        }
    }
}

impl Limits {
    /// These limits with `timeout`, `fuel` and `memory` replaced where given: the step's or
    /// the command line's settings over the defaults.
    pub fn overridden(
        self,
        timeout: Option<Duration>,
        fuel: Option<u64>,
        memory: Option<u64>,
    ) -> Self {
        Self {
            timeout: timeout.unwrap_or(self.timeout),
            fuel: fuel.unwrap_or(self.fuel),
            memory: memory.unwrap_or(self.memory),
            ..self
        }
    }
}

/// Enforces [`Limits::memory`] and remembers a refusal, so that the trap a guest raises after a
/// failed `memory.grow` (Rust aborts with `unreachable`) is reported as what it is.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// Set when a grow was refused because of the limit.
    pub(crate) refused: bool,
    /// High-water mark of linear memory, for metrics.
    pub(crate) peak: u64,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            refused: false,
            peak: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired as u64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real program.
        Ok(desired <= 1_000_000)
    }
}
