//! Moving files across the sandbox boundary without ever following a symlink.
//!
//! * [`stage`]: copies a step's declared inputs and its dependencies' outputs into a fresh
//!   per-attempt directory, so no sandbox bug can touch a user's source files.
//! * [`collect`]: checks the declared outputs in `/out`, refusing symlinks anywhere on the
//!   way, and publishes them atomically to `.hermetic/out/<step>/` by moving them there.

pub mod collect;
pub mod fsx;
pub mod stage;

pub use collect::{OutputError, collect_and_publish, publish_staged};
pub use stage::{StageError, dependency_view, stage_files};
