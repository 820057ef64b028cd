//! What a run leaves behind for later commands to read.
//!
//! * [`keys`]: each step's action key and its components, for `hermetic why`.

pub mod keys;
