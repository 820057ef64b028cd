//! Components (WASI p2): wrappers shadowing six methods of `wasi:filesystem/types`'
//! `descriptor` in the component [`Linker`], which already holds wasmtime-wasi's own.
//!
//! * `open-at`, `read` and `write` count as an open, a read and a write: a wrapper does what the
//!   store's [`WasiFault`](super::WasiFault) says, or calls wasmtime-wasi's
//!   [`HostDescriptor`] implementation with the store's
//!   [`WasiFilesystemCtxView`](wasmtime_wasi::filesystem::WasiFilesystemCtxView), as
//!   wasmtime-wasi's linker does.
//! * `read-via-stream`, `write-via-stream` and `append-via-stream` count nothing: they call
//!   wasmtime-wasi's and wrap the stream it returns (see [`super::streams`]), whose reads and
//!   writes then count. Streams that are not a file's (stdio) are never wrapped.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, Filesize, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsResult};

use super::streams::{FaultyInput, FaultyOutput};
use super::{Action, WasiOp};
use crate::sandbox::state::P2State;

/// The interface wasmtime-wasi 48 defines; guests importing any 0.2.x version link to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// What a wrapped method returns to the guest: its result or error code, or a trap.
type Returns<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// Shadows the `descriptor` methods that open files and move their bytes in `linker`, which
/// must already hold WASI p2, with wrappers that inject the store's fault.
pub(crate) fn add_to_linker(linker: &mut Linker<P2State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |store: StoreContextMut<'_, P2State>, params| Box::new(open_at(store, params)),
    )?;
    types.func_wrap_async(
        "[method]descriptor.read",
        |store: StoreContextMut<'_, P2State>, params| Box::new(read(store, params)),
    )?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |store: StoreContextMut<'_, P2State>, params| Box::new(write(store, params)),
    )?;
    types.func_wrap("[method]descriptor.read-via-stream", read_via_stream)?;
    types.func_wrap("[method]descriptor.write-via-stream", write_via_stream)?;
    types.func_wrap("[method]descriptor.append-via-stream", append_via_stream)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `[method]descriptor.open-at`: an open.
async fn open_at(
    mut store: StoreContextMut<'_, P2State>,
    (fd, path_flags, path, open_flags, flags): (
        Resource<Descriptor>,
        PathFlags,
        String,
        OpenFlags,
        DescriptorFlags,
    ),
) -> Returns<Resource<Descriptor>> {
    if let Action::Errno(errno) = store.data().faults.enter(WasiOp::Open).await? {
        return Ok((Err(error_code(errno)),));
    }
    let mut view = store.data_mut().filesystem();
    let result = HostDescriptor::open_at(&mut view, fd, path_flags, path, open_flags, flags).await;
    returns(result)
}

/// `[method]descriptor.read` (`pread`): a read.
async fn read(
    mut store: StoreContextMut<'_, P2State>,
    (fd, len, offset): (Resource<Descriptor>, Filesize, Filesize),
) -> Returns<(Vec<u8>, bool)> {
    if let Action::Errno(errno) = store.data().faults.enter(WasiOp::Read).await? {
        return Ok((Err(error_code(errno)),));
    }
    let mut view = store.data_mut().filesystem();
    returns(HostDescriptor::read(&mut view, fd, len, offset).await)
}

/// `[method]descriptor.write` (`pwrite`): a write, which returns how many bytes it wrote, so
/// a short write writes half of the buffer and says so, as on a core module.
async fn write(
    mut store: StoreContextMut<'_, P2State>,
    (fd, mut buf, offset): (Resource<Descriptor>, Vec<u8>, Filesize),
) -> Returns<Filesize> {
    match store.data().faults.enter(WasiOp::Write).await? {
        Action::Errno(errno) => return Ok((Err(error_code(errno)),)),
        Action::ShortWrite if buf.len() >= 2 => buf.truncate(buf.len() / 2),
        _ => {}
    }
    let mut view = store.data_mut().filesystem();
    returns(HostDescriptor::write(&mut view, fd, buf, offset).await)
}

/// `[method]descriptor.read-via-stream`: the file's input stream, wrapped.
fn read_via_stream(
    mut store: StoreContextMut<'_, P2State>,
    (fd, offset): (Resource<Descriptor>, Filesize),
) -> Returns<Resource<DynInputStream>> {
    let faults = store.data().faults.clone();
    let mut view = store.data_mut().filesystem();
    let result = HostDescriptor::read_via_stream(&mut view, fd, offset);
    wrap(view.table, result, |inner| {
        Box::new(FaultyInput::new(inner, faults))
    })
}

/// `[method]descriptor.write-via-stream`: the file's output stream, wrapped.
fn write_via_stream(
    mut store: StoreContextMut<'_, P2State>,
    (fd, offset): (Resource<Descriptor>, Filesize),
) -> Returns<Resource<DynOutputStream>> {
    let faults = store.data().faults.clone();
    let mut view = store.data_mut().filesystem();
    let result = HostDescriptor::write_via_stream(&mut view, fd, offset);
    wrap(view.table, result, |inner| {
        Box::new(FaultyOutput::new(inner, faults))
    })
}

/// `[method]descriptor.append-via-stream`: the file's appending stream, wrapped.
fn append_via_stream(
    mut store: StoreContextMut<'_, P2State>,
    (fd,): (Resource<Descriptor>,),
) -> Returns<Resource<DynOutputStream>> {
    let faults = store.data().faults.clone();
    let mut view = store.data_mut().filesystem();
    let result = HostDescriptor::append_via_stream(&mut view, fd);
    wrap(view.table, result, |inner| {
        Box::new(FaultyOutput::new(inner, faults))
    })
}

/// Replaces the stream that wasmtime-wasi put in `table` with `wrapper(stream)`, and returns
/// it as the method's result (an error code passes through).
fn wrap<S: 'static + Send>(
    table: &mut ResourceTable,
    result: FsResult<Resource<S>>,
    wrapper: impl FnOnce(S) -> S,
) -> Returns<Resource<S>> {
    let stream = match result {
        Ok(stream) => stream,
        Err(e) => return Ok((Err(e.downcast()?),)),
    };
    let inner = table.delete(stream)?;
    Ok((Ok(table.push(wrapper(inner))?),))
}

/// A wasmtime-wasi result as the guest receives it: an error code, or a trap for an error that
/// is not one (as wasmtime-wasi's own `convert_error_code` does).
fn returns<T>(result: FsResult<T>) -> Returns<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

/// The `error-code` for a WASI p1 errno: 51 (ENOSPC) `insufficient-space`, 2 (EACCES)
/// `access`, anything else `io`.
pub(super) fn error_code(errno: i32) -> ErrorCode {
    match errno {
        51 => ErrorCode::InsufficientSpace,
        2 => ErrorCode::Access,
        _ => ErrorCode::Io,
    }
}

/// The host's errno for a WASI p1 errno, which wasmtime-wasi's `filesystem-error-code` maps
/// back to the same [`error_code`].
pub(super) fn host_errno(errno: i32) -> i32 {
    match errno {
        51 => libc::ENOSPC,
        2 => libc::EACCES,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_the_same_code_both_ways() {
        for (errno, code) in [
            (29, ErrorCode::Io),
            (51, ErrorCode::InsufficientSpace),
            (2, ErrorCode::Access),
            (63, ErrorCode::Io),
        ] {
            assert_eq!(error_code(errno), code);
            // What wasmtime-wasi's `filesystem-error-code` makes of a stream's host error.
            let host = std::io::Error::from_raw_os_error(host_errno(errno));
            assert_eq!(ErrorCode::from(&host), code);
        }
    }
}
