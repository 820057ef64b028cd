//! Chaos engineering: faults injected by the pool from a seed, so that a suite proves a
//! workflow survives them and every failure replays exactly from its seed.
//!
//! * [`plan`]: which step gets which fault, derived from a `u64` seed and the steps' names,
//!   printed in full before a run.
//! * [`suite`]: `hermetic chaos`, a reference run and one run per seed, checked against the
//!   invariants.
//! * [`html`]: the suite's report as one self-contained HTML page, beside the JSON one.
//!
//! The faults are injected at the pool's hook points (see `pool::worker`):
//!
//! | fault | where | what the guest or the pool sees |
//! |---|---|---|
//! | `memory` | the attempt's limits | a lowered memory limit: `memory.grow` fails |
//! | `fuel` | the attempt's limits | a lowered fuel budget: the guest runs out |
//! | `clock` | the attempt's wall clock | the virtual clock starts days or years away |
//! | `worker` | `Worker::execute` | the worker panics as it takes the step; the pool runs it again |
//! | `cache_bitflip`, `cache_truncate` | the stored outputs archive, after the run | a later run must not serve it, and re-runs the step |
//! | `disk_full` | the result store's writes | storing the step's result fails: a warning, never a failed run |
//! | `io`, `short_write`, `slow_io`, `trap` | the WASI boundary (`sandbox::faults`) | an errno, half a write, a delay, or a trap at a file operation |
//!
//! Losing a worker thread outright and killing the process are not injected yet.

mod cache;
pub mod html;
pub mod plan;
pub mod process;
pub mod suite;

pub use plan::{Fault, FaultKind, FaultPlan, GuestFault};
pub use suite::{SeedReport, SuiteConfig, SuiteReport, run_suite};

/// The chance that a step gets a fault in a run, when neither `--rate` nor the workflow says.
pub const DEFAULT_RATE: f64 = 0.3;
