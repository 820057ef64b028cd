//! Faults at the WASI boundary, for `hermetic chaos`: a guest's file opens, reads and writes
//! return an error, write short, answer slowly, or trap, in core modules (`wasm32-wasip1`) and
//! in components (`wasm32-wasip2`) alike.
//!
//! Only a sandbox made with [`Sandbox::with_fault_hooks`](super::Sandbox::with_fault_hooks)
//! has these wrappers; every other run calls WASI directly. A wrapper does what the attempt's
//! [`WasiFault`] says, or calls wasmtime-wasi's own implementation, as wasmtime-wasi's linker
//! would. Only file operations count, never stdio, and they count in the order the guest makes
//! them, so the same guest meets the same fault at the same call on every run.
//!
//! # Where the faults are injected
//!
//! | | open | read | write |
//! |---|---|---|---|
//! | core module (`p1.rs`) | `path_open` | `fd_read`, `fd_pread` on a descriptor from 3 up | `fd_write`, `fd_pwrite` on a descriptor from 3 up |
//! | component (`p2.rs`) | `descriptor.open-at` | `descriptor.read` | `descriptor.write` |
//! | component's file streams (`streams.rs`) | | `read`, `blocking-read` of a stream from `read-via-stream` | `write`, `blocking-write-and-flush`, `write-zeroes` of a stream from `write-via-stream` or `append-via-stream` |
//!
//! A Rust or C guest built for `wasm32-wasip2` goes through wasi-libc, which (as traced with the
//! `file_ops` test guest, Rust 1.95) opens with one `open-at` per `open(2)`, reads with one
//! `blocking-read` per `read(2)`, writes with `check-write`, `write` and `blocking-flush` per
//! `write(2)`, and uses `descriptor.read` and `descriptor.write` for `pread(2)` and
//! `pwrite(2)`. So it meets each fault at the same call as the same guest built for
//! `wasm32-wasip1` (`tests/tests/wasi_faults.rs` runs both).
//!
//! # What the guest sees
//!
//! A core module sees each fault at the call itself: the call returns the errno, writes half
//! of its first buffer and says so, waits first, or traps. So does a component at `open-at`,
//! `descriptor.read` and `descriptor.write` (the errno as its `error-code`: EIO `io`, ENOSPC
//! `insufficient-space`, EACCES `access`). A component's file streams differ where WASI 0.2
//! streams do:
//!
//! * **Errno:** the stream call returns `last-operation-failed`, with an error whose
//!   `filesystem-error-code` is the fault's code, and the stream is closed from then on, as
//!   wasmtime-wasi's file stream is after a real failed write. wasi-libc reports any stream
//!   error as EIO, and a closed stream as EPIPE to a write and as the end of the file to a read.
//! * **Short write:** a stream's `write` returns no count, so the short write is in the write
//!   permit: the `check-write` before the write that is due to be short permits one byte, and
//!   wasi-libc's `write(2)` writes that byte and says so. Half of the guest's buffer is not
//!   possible: the permit is given before the guest picks its buffer. A guest that ignores the
//!   permit, or a `blocking-write-and-flush` (which has no partial result), writes everything;
//!   the write still counts.
//! * **Slow:** `blocking-read` and `blocking-write-and-flush` wait first. A non-blocking `read`
//!   or `write` returns at once, as the WASI contract says, and its delay is added to the
//!   stream's next wait (`blocking-flush`, a pollable, or dropping the stream), as with a slow
//!   disk; wasi-libc waits after every `write(2)`.
//! * **Trap:** the call traps.

mod p1;
mod p2;
mod streams;

use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use p1::add_to_linker as add_to_p1_linker;
pub(crate) use p2::add_to_linker as add_to_p2_linker;

/// A file operation a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiOp {
    Open,
    Read,
    Write,
}

/// What goes wrong at the WASI boundary in one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiFault {
    /// The `nth` call (from 1) of `op` returns `errno` (WASI numbering: 29 EIO, 51 ENOSPC,
    /// 2 EACCES).
    Errno { op: WasiOp, nth: u32, errno: i32 },
    /// The `nth` file write writes only half of its first buffer, and says so (on a component's
    /// stream, one byte: see the module documentation).
    ShortWrite { nth: u32 },
    /// Every file operation waits this long first.
    Slow { millis: u64 },
    /// The `nth` file operation of any kind traps.
    Trap { nth: u32 },
}

/// A store's fault and how many file operations it has seen.
#[derive(Debug, Default)]
pub(crate) struct WasiFaultState {
    fault: Option<WasiFault>,
    /// Calls by [`WasiOp`] index, then of every kind.
    counts: [u32; 4],
}

/// What a wrapper does with one call.
enum Action {
    Forward,
    Errno(i32),
    ShortWrite,
    Trap(u32),
}

impl WasiFaultState {
    /// The state of a store that injects `fault`.
    pub(crate) fn new(fault: Option<WasiFault>) -> Self {
        Self {
            fault,
            counts: [0; 4],
        }
    }

    /// Counts one call of `op`: what to do with it, and how many milliseconds to wait first.
    fn on_call(&mut self, op: WasiOp) -> (Action, u64) {
        let i = op as usize;
        self.counts[i] += 1;
        self.counts[3] += 1;
        match self.fault {
            Some(WasiFault::Errno { op: o, nth, errno }) if o == op && self.counts[i] == nth => {
                (Action::Errno(errno), 0)
            }
            Some(WasiFault::ShortWrite { nth }) if op == WasiOp::Write && self.counts[i] == nth => {
                (Action::ShortWrite, 0)
            }
            Some(WasiFault::Trap { nth }) if self.counts[3] == nth => (Action::Trap(nth), 0),
            Some(WasiFault::Slow { millis }) => (Action::Forward, millis),
            _ => (Action::Forward, 0),
        }
    }

    /// Whether the next file write is the one a [`WasiFault::ShortWrite`] cuts short (counts
    /// nothing).
    fn next_write_is_short(&self) -> bool {
        matches!(self.fault, Some(WasiFault::ShortWrite { nth })
            if self.counts[WasiOp::Write as usize] + 1 == nth)
    }
}

/// A component's [`WasiFaultState`], shared by its store and the file streams the store hands
/// out (which live in the resource table, out of reach of the store's data).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedFaults(Arc<Mutex<WasiFaultState>>);

impl SharedFaults {
    /// The state of a store that injects `fault`.
    pub(crate) fn new(fault: Option<WasiFault>) -> Self {
        Self(Arc::new(Mutex::new(WasiFaultState::new(fault))))
    }

    /// [`WasiFaultState::on_call`] (the lock is never held across an `await`).
    fn on_call(&self, op: WasiOp) -> (Action, u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_call(op)
    }

    /// [`WasiFaultState::next_write_is_short`].
    fn next_write_is_short(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_write_is_short()
    }

    /// Counts one call of `op` and waits as a [`WasiFault::Slow`] says: the call then forwards,
    /// fails or writes short as the action says, or traps with the `Err`.
    async fn enter(&self, op: WasiOp) -> wasmtime::Result<Action> {
        let (action, delay) = self.on_call(op);
        pause(delay).await;
        match action {
            Action::Trap(nth) => Err(trap(nth)),
            action => Ok(action),
        }
    }
}

/// Waits `millis` milliseconds (none: returns at once).
async fn pause(millis: u64) {
    if millis > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// The error that traps the guest at its `nth` file operation.
fn trap(nth: u32) -> wasmtime::Error {
    wasmtime::Error::msg(format!("trap injected at file operation {nth}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(fault: WasiFault, ops: &[WasiOp]) -> Vec<&'static str> {
        let mut state = WasiFaultState::new(Some(fault));
        ops.iter()
            .map(|op| match state.on_call(*op) {
                (Action::Forward, 0) => "forward",
                (Action::Forward, _) => "slow",
                (Action::Errno(_), _) => "errno",
                (Action::ShortWrite, _) => "short",
                (Action::Trap(_), _) => "trap",
            })
            .collect()
    }

    #[test]
    fn faults_hit_the_nth_call_of_their_kind() {
        use WasiOp::*;
        let ops = [Open, Write, Read, Write, Open];
        let errno = WasiFault::Errno {
            op: Write,
            nth: 2,
            errno: 29,
        };
        assert_eq!(
            actions(errno, &ops),
            ["forward", "forward", "forward", "errno", "forward"]
        );
        assert_eq!(
            actions(WasiFault::ShortWrite { nth: 1 }, &ops),
            ["forward", "short", "forward", "forward", "forward"]
        );
        // A trap counts every file operation.
        assert_eq!(
            actions(WasiFault::Trap { nth: 3 }, &ops),
            ["forward", "forward", "trap", "forward", "forward"]
        );
        assert_eq!(
            actions(WasiFault::Slow { millis: 5 }, &ops[..2]),
            ["slow", "slow"]
        );
    }

    #[test]
    fn the_write_before_a_short_one_is_known_without_counting() {
        let mut state = WasiFaultState::new(Some(WasiFault::ShortWrite { nth: 2 }));
        assert!(!state.next_write_is_short());
        state.on_call(WasiOp::Open);
        state.on_call(WasiOp::Write);
        assert!(state.next_write_is_short());
        assert!(state.next_write_is_short(), "peeking counts nothing");
        assert!(matches!(
            state.on_call(WasiOp::Write),
            (Action::ShortWrite, 0)
        ));
        assert!(!state.next_write_is_short());
        assert!(!WasiFaultState::new(None).next_write_is_short());
    }
}
