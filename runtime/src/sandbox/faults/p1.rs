//! Core modules (WASI p1): wrappers shadowing `path_open`, `fd_read`, `fd_pread`, `fd_write`
//! and `fd_pwrite` in the p1 [`Linker`]. A wrapper does what the store's
//! [`WasiFault`](super::WasiFault) says, or calls wasmtime-wasi's own implementation of the
//! function with the guest's memory, as wasmtime-wasi's linker would. Reads and writes count
//! only on files (descriptors from 3 up), not on stdio.

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;

use super::{Action, WasiOp, pause, trap};
use crate::sandbox::state::P1State;

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
        let $ctx = state.wasi();
        wasi::WasiSnapshotPreview1::set_hostcall_fuel($ctx, fuel);
        $call.await
    }};
}

/// The import module.
const MODULE: &str = "wasi_snapshot_preview1";

/// Shadows `path_open`, `fd_read`, `fd_pread`, `fd_write` and `fd_pwrite` in `linker` with
/// wrappers that inject the store's [`WasiFault`](super::WasiFault).
pub(crate) fn add_to_linker(linker: &mut Linker<P1State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        "path_open",
        |caller: Caller<'_, P1State>, params| Box::new(path_open(caller, params)),
    )?;
    linker.func_wrap_async(MODULE, "fd_read", |caller: Caller<'_, P1State>, params| {
        Box::new(fd_read(caller, params))
    })?;
    linker.func_wrap_async(MODULE, "fd_pread", |caller: Caller<'_, P1State>, params| {
        Box::new(fd_pread(caller, params))
    })?;
    linker.func_wrap_async(MODULE, "fd_write", |caller: Caller<'_, P1State>, params| {
        Box::new(fd_write(caller, params))
    })?;
    linker.func_wrap_async(
        MODULE,
        "fd_pwrite",
        |caller: Caller<'_, P1State>, params| Box::new(fd_pwrite(caller, params)),
    )?;
    Ok(())
}

/// `path_open`: an open.
async fn path_open(
    mut caller: Caller<'_, P1State>,
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
    ),
) -> wasmtime::Result<i32> {
    let (action, delay) = caller.data_mut().faults.on_call(WasiOp::Open);
    pause(delay).await;
    match action {
        Action::Errno(e) => Ok(e),
        Action::Trap(n) => Err(trap(n)),
        _ => with_memory!(caller, |ctx, mem| wasi::path_open(
            ctx, &mut mem, fd, dirflags, path, len, oflags, base, inheriting, fdflags, opened
        )),
    }
}

/// `fd_read`: a read, on a file.
async fn fd_read(
    mut caller: Caller<'_, P1State>,
    (fd, iovs, iovs_len, done): (i32, i32, i32, i32),
) -> wasmtime::Result<i32> {
    let (action, delay) = file_call(&mut caller, fd, WasiOp::Read);
    pause(delay).await;
    match action {
        Action::Errno(e) => Ok(e),
        Action::Trap(n) => Err(trap(n)),
        _ => with_memory!(caller, |ctx, mem| wasi::fd_read(
            ctx, &mut mem, fd, iovs, iovs_len, done
        )),
    }
}

/// `fd_pread`: a read at an offset, on a file.
async fn fd_pread(
    mut caller: Caller<'_, P1State>,
    (fd, iovs, iovs_len, offset, done): (i32, i32, i32, i64, i32),
) -> wasmtime::Result<i32> {
    let (action, delay) = file_call(&mut caller, fd, WasiOp::Read);
    pause(delay).await;
    match action {
        Action::Errno(e) => Ok(e),
        Action::Trap(n) => Err(trap(n)),
        _ => with_memory!(caller, |ctx, mem| wasi::fd_pread(
            ctx, &mut mem, fd, iovs, iovs_len, offset, done
        )),
    }
}

/// `fd_write`: a write, on a file.
async fn fd_write(
    mut caller: Caller<'_, P1State>,
    (fd, iovs, iovs_len, done): (i32, i32, i32, i32),
) -> wasmtime::Result<i32> {
    let (action, delay) = file_call(&mut caller, fd, WasiOp::Write);
    pause(delay).await;
    let iovs_len = match action {
        Action::Errno(e) => return Ok(e),
        Action::Trap(n) => return Err(trap(n)),
        Action::ShortWrite => match halve_first_buffer(&mut caller, iovs, iovs_len)? {
            Some(full) => {
                let result = with_memory!(caller, |ctx, mem| wasi::fd_write(
                    ctx, &mut mem, fd, iovs, 1, done
                ));
                return restore_first_buffer(&mut caller, iovs, full).and(result);
            }
            None => iovs_len,
        },
        Action::Forward => iovs_len,
    };
    with_memory!(caller, |ctx, mem| wasi::fd_write(
        ctx, &mut mem, fd, iovs, iovs_len, done
    ))
}

/// `fd_pwrite`: a write at an offset, on a file.
async fn fd_pwrite(
    mut caller: Caller<'_, P1State>,
    (fd, iovs, iovs_len, offset, done): (i32, i32, i32, i64, i32),
) -> wasmtime::Result<i32> {
    let (action, delay) = file_call(&mut caller, fd, WasiOp::Write);
    pause(delay).await;
    let iovs_len = match action {
        Action::Errno(e) => return Ok(e),
        Action::Trap(n) => return Err(trap(n)),
        Action::ShortWrite => match halve_first_buffer(&mut caller, iovs, iovs_len)? {
            Some(full) => {
                let result = with_memory!(caller, |ctx, mem| wasi::fd_pwrite(
                    ctx, &mut mem, fd, iovs, 1, offset, done
                ));
                return restore_first_buffer(&mut caller, iovs, full).and(result);
            }
            None => iovs_len,
        },
        Action::Forward => iovs_len,
    };
    with_memory!(caller, |ctx, mem| wasi::fd_pwrite(
        ctx, &mut mem, fd, iovs, iovs_len, offset, done
    ))
}

/// Counts a read or write on a file; stdio passes untouched.
fn file_call(caller: &mut Caller<'_, P1State>, fd: i32, op: WasiOp) -> (Action, u64) {
    if fd >= 3 {
        caller.data_mut().faults.on_call(op)
    } else {
        (Action::Forward, 0)
    }
}

/// For a short write: halves the length of the first buffer of the guest's `iovs`, in its
/// memory, so that a write of that one buffer writes half of it. The guest then sees a short
/// count, as from a full pipe or a signal, and must write the rest itself. Returns the full
/// length to restore, or `None` when the first buffer is shorter than two bytes (the write
/// then goes ahead whole).
fn halve_first_buffer(
    caller: &mut Caller<'_, P1State>,
    iovs: i32,
    iovs_len: i32,
) -> wasmtime::Result<Option<u32>> {
    let memory = memory(caller)?;
    let at = iovs as u32 as usize + 4;
    let mut len = [0u8; 4];
    if iovs_len < 1 || memory.read(&*caller, at, &mut len).is_err() {
        return Ok(None);
    }
    let full = u32::from_le_bytes(len);
    if full < 2 {
        return Ok(None);
    }
    memory.write(&mut *caller, at, &(full / 2).to_le_bytes())?;
    Ok(Some(full))
}

/// Puts back the length [`halve_first_buffer`] halved.
fn restore_first_buffer(
    caller: &mut Caller<'_, P1State>,
    iovs: i32,
    full: u32,
) -> wasmtime::Result<()> {
    let at = iovs as u32 as usize + 4;
    memory(caller)?.write(&mut *caller, at, &full.to_le_bytes())?;
    Ok(())
}

/// The guest's exported memory.
fn memory(caller: &mut Caller<'_, P1State>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::Error::msg("missing required memory export")),
    }
}
