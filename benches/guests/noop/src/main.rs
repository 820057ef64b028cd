//! Does nothing: the per-step cost of running it is pure overhead.

fn main() {}
