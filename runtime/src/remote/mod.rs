//! Scaling out on an existing engine: remote execution through the Bazel Remote Execution API
//! (REAPI v2), with BuildGrid as the server. The remote cache is
//! [`hermetic_cache::RemoteStore`]; this module runs steps remotely.
//!
//! ```text
//!  hermetic run --remote-exec URL            BuildGrid                hermetic worker --server URL
//!  ─────────────────────────────             ─────────                ────────────────────────────
//!  an attempt: stage inputs and /deps
//!  upload the input root, Command, Action ─▶ CAS
//!  Execute(action) ────────────────────────▶ scheduler ── lease ────▶ materialise the input root
//!                                                                     run it in the same sandbox
//!                                            CAS ◀─────────────────── upload out/, report.json
//!  ExecuteResponse ◀──────────────────────── ◀── lease COMPLETED ──── stdout, stderr
//!  download out/ into the attempt's /out,
//!  then collect, publish and cache as usual
//! ```
//!
//! An attempt is one action. Its input root:
//!
//! ```text
//! module.wasm          the step's module (its blake3 is in step.json)
//! step.json            the invocation (spec::StepSpec): argv, env, limits, seed, clock, mounts
//! mounts/in/…          /in: the step's staged inputs
//! mounts/deps/<name>/… /deps/<name>: each dependency's published outputs
//! out/                 /out, empty
//! ```
//!
//! The command (`hermetic worker --run step.json`) names what the worker does with it; the
//! outputs are `out/…`, one output file per file the guest left, and `report.json`
//! ([`spec::RemoteReport`]: outcome, fuel, peak memory); stdout and stderr are the action
//! result's. Actions are `do_not_cache`: hermetic's own verified action cache (local, and
//! remote through [`hermetic_cache::RemoteStore`]) is the one cache.
//!
//! What stays on the worker: the guest's `hermetic_v1` progress and log calls are not streamed
//! back (its stdout and stderr are, when it ends), and a remote step counts as stuck when the
//! server has said nothing about it for `stuck_after`.
//!
//! * [`exec`]: the client side, in place of the local sandbox.
//! * [`worker`]: the bot.
//! * [`bots`]: the Remote Workers API, by hand.
//! * [`tree`]: input roots as REAPI Merkle trees, built and materialised.
//! * [`spec`]: `step.json` and `report.json`.
//! * [`cas`]: what both sides need of the CAS.

pub mod bots;
pub mod cas;
pub mod exec;
pub mod spec;
pub mod tree;
pub mod worker;

pub use exec::{RemoteExec, RemoteStep};
