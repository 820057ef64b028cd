//! The hermetic engine: workflow → plan → pool → sandbox → outputs.
//!
//! See `ARCHITECTURE.md` at the repository root for the flow. The `hermetic` binary is a
//! thin wrapper over [`cli::main`].

pub mod allocator;
mod beside;
pub mod chaos;
pub mod cli;
pub mod events;
pub mod journal;
pub mod outputs;
mod par;
pub mod pins;
pub mod plan;
pub mod pool;
mod prefetch;
pub mod remote;
pub mod sandbox;
pub mod taskbuild;
pub mod testing;
pub mod workflow;
