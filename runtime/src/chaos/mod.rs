//! Chaos engineering: faults injected by the pool from a seed, so that a suite proves a
//! workflow survives them and every failure replays exactly from its seed.
//!
//! * [`plan`]: which step gets which fault, derived from a `u64` seed and the steps' names,
//!   printed in full before a run.
//! * [`suite`]: `hermetic chaos`, a reference run and one run per seed, checked against the
//!   invariants and the workflow's `chaos.expect`; failing seeds are shrunk.
//! * [`process`]: the seeds that kill the process, run in two child `hermetic run`s.
//! * [`html`]: the suite's report as one self-contained HTML page, beside the JSON one.
//!
//! The faults are injected at the pool's hook points (see `pool::worker`):
//!
//! | fault | where | what the guest or the pool sees |
//! |---|---|---|
//! | `memory` | the attempt's limits | a lowered memory limit: `memory.grow` fails |
//! | `fuel` | the attempt's limits | a lowered fuel budget: the guest runs out |
//! | `clock` | the attempt's wall clock | the virtual clock starts days or years away |
//! | `clock_jump` | the attempt's clocks (`sandbox::clock`) | at the k-th read, the wall clock jumps either way, the monotonic clock forward |
//! | `worker` | `Worker::execute` | the worker panics as it takes the step; the pool runs it again |
//! | `worker_lost` | a lockstep worker thread | the thread ends without reporting the step's end; the coordinator sees it gone, replaces it and runs the step again |
//! | `cache_bitflip`, `cache_truncate` | the stored outputs archive, after the run | a later run must not serve it, and re-runs the step |
//! | `disk_full` | the result store's writes | storing the step's result fails: a warning, never a failed run |
//! | `io`, `short_write`, `slow_io`, `trap` | the WASI boundary (`sandbox::faults`), in core modules and components alike | an errno, a short write (half the buffer; one byte on a component's stream), a delay, or a trap at a file operation |
//! | `process_kill` | the run's reporter, in a child process | SIGKILL once the step's end is journaled; `--resume` in a second child finishes |

mod cache;
pub mod html;
pub mod plan;
pub mod process;
pub mod suite;

pub use plan::{Fault, FaultKind, FaultPlan, GuestFault};
pub use suite::{SeedReport, SuiteConfig, SuiteReport, run_suite};

/// The chance that a step gets a fault in a run, when neither `--rate` nor the workflow says.
pub const DEFAULT_RATE: f64 = 0.3;
