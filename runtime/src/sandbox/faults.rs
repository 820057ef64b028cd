//! Faults at the WASI boundary, for `hermetic chaos`: a core module's `path_open`, `fd_read`
//! and `fd_write` on its files return an error, write short, answer slowly, or trap.
//!
//! Only a sandbox made with [`Sandbox::with_fault_hooks`](super::Sandbox::with_fault_hooks)
//! has these wrappers; every other run calls WASI directly. A wrapper does what the attempt's
//! [`WasiFault`] says, or calls wasmtime-wasi's own implementation of the function with the
//! guest's memory, as wasmtime-wasi's linker would. Reads and writes count only on files
//! (descriptors from 3 up), not on stdio.

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;

use super::state::P1State;

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
    /// The `nth` file write writes only half of its first buffer, and says so.
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
}

/// Runs `$call` (an expression using `ctx` and `mem`) with the store's WASI context and the
/// guest's memory, as wasmtime-wasi's own linker does.
macro_rules! with_memory {
    ($caller:expr, |$ctx:ident, $mem:ident| $call:expr) => {{
        let Some(Extern::Memory(memory)) = $caller.get_export("memory") else {
            return Err(wasmtime::Error::msg("missing required memory export"));
        };
        // As wasmtime-wasi's own glue does: the budget for what one call may copy.
        let fuel = wasmtime::AsContextMut::as_context_mut(&mut $caller).hostcall_fuel();
        let (bytes, state) = memory.data_and_store_mut(&mut $caller);
        let mut $mem = wiggle::GuestMemory::Unshared(bytes);
        let $ctx = &mut state.wasi;
        wasi::WasiSnapshotPreview1::set_hostcall_fuel($ctx, fuel);
        $call.await
    }};
}

/// Shadows `path_open`, `fd_read` and `fd_write` in `linker` with wrappers that inject the
/// store's [`WasiFault`].
pub(crate) fn add_to_linker(linker: &mut Linker<P1State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "path_open",
        |mut caller: Caller<'_, P1State>,
         (fd, dirflags, path, len, oflags, base, inheriting, fdflags, opened): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i64,
            i64,
            i32,
            i32,
        )| {
            Box::new(async move {
                let (action, delay) = caller.data_mut().faults.on_call(WasiOp::Open);
                pause(delay).await;
                match action {
                    Action::Errno(e) => Ok(e),
                    Action::Trap(n) => Err(trap(n)),
                    _ => with_memory!(caller, |ctx, mem| wasi::path_open(
                        ctx, &mut mem, fd, dirflags, path, len, oflags, base, inheriting, fdflags,
                        opened
                    )),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_read",
        |mut caller: Caller<'_, P1State>, (fd, iovs, iovs_len, done): (i32, i32, i32, i32)| {
            Box::new(async move {
                let (action, delay) = file_call(&mut caller, fd, WasiOp::Read);
                pause(delay).await;
                match action {
                    Action::Errno(e) => Ok(e),
                    Action::Trap(n) => Err(trap(n)),
                    _ => with_memory!(caller, |ctx, mem| wasi::fd_read(
                        ctx, &mut mem, fd, iovs, iovs_len, done
                    )),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut caller: Caller<'_, P1State>, (fd, iovs, iovs_len, done): (i32, i32, i32, i32)| {
            Box::new(async move {
                let (action, delay) = file_call(&mut caller, fd, WasiOp::Write);
                pause(delay).await;
                match action {
                    Action::Errno(e) => Ok(e),
                    Action::Trap(n) => Err(trap(n)),
                    Action::ShortWrite => short_write(&mut caller, fd, iovs, iovs_len, done).await,
                    Action::Forward => with_memory!(caller, |ctx, mem| wasi::fd_write(
                        ctx, &mut mem, fd, iovs, iovs_len, done
                    )),
                }
            })
        },
    )?;
    Ok(())
}

/// Counts a read or write on a file; stdio passes untouched.
fn file_call(caller: &mut Caller<'_, P1State>, fd: i32, op: WasiOp) -> (Action, u64) {
    if fd >= 3 {
        caller.data_mut().faults.on_call(op)
    } else {
        (Action::Forward, 0)
    }
}

async fn pause(millis: u64) {
    if millis > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

fn trap(nth: u32) -> wasmtime::Error {
    wasmtime::Error::msg(format!("trap injected at file operation {nth}"))
}

/// Writes only half of the first buffer: the guest sees a short count, as from a full pipe or
/// a signal, and must write the rest itself.
async fn short_write(
    caller: &mut Caller<'_, P1State>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    done: i32,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("missing required memory export"));
    };
    let at = iovs as u32 as usize + 4;
    let mut len = [0u8; 4];
    let full = if iovs_len >= 1 && memory.read(&*caller, at, &mut len).is_ok() {
        u32::from_le_bytes(len)
    } else {
        0
    };
    if full >= 2 {
        memory.write(&mut *caller, at, &(full / 2).to_le_bytes())?;
    }
    let iovs_len = if full >= 2 { 1 } else { iovs_len };
    let result = with_memory!(*caller, |ctx, mem| wasi::fd_write(
        ctx, &mut mem, fd, iovs, iovs_len, done
    ));
    if full >= 2 {
        memory.write(&mut *caller, at, &len)?;
    }
    result
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
}
