//! A component's file streams, wrapped so that their reads and writes meet the store's fault.
//!
//! [`super::p2`] wraps the stream of every `read-via-stream`, `write-via-stream` and
//! `append-via-stream` in a [`FaultyInput`] or [`FaultyOutput`], which sits in the resource
//! table in place of wasmtime-wasi's own stream and forwards to it. The wasi:io methods
//! (wasmtime-wasi's `HostInputStream` and `HostOutputStream` for the resource table) then call
//! the wrapper, so stdio streams, never wrapped, are never counted.
//!
//! * A read (`read`, `blocking-read`) or a write (`write`, `blocking-write-and-flush`,
//!   `write-zeroes`) counts; `check-write`, `flush`, `skip`, `subscribe` and drops do not.
//! * An injected error is `last-operation-failed`, carrying the host `io::Error` whose
//!   `filesystem-error-code` is the fault's code, and the stream is closed from then on, as
//!   wasmtime-wasi's file stream is after a failed write.
//! * A short write cuts the permit of the `check-write` before it to one byte.
//! * A slow non-blocking call returns at once and leaves its delay for the next wait on the
//!   stream (`ready`, so `blocking-flush`, a pollable, or a drop), as a slow disk would.

use bytes::Bytes;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::{Action, SharedFaults, WasiOp, pause, trap};

/// The permit `check-write` gives before a short write.
const SHORT_PERMIT: usize = 1;

/// What a wrapped stream keeps besides the stream it wraps.
#[derive(Debug)]
struct Hooks {
    faults: SharedFaults,
    /// Milliseconds that slow non-blocking calls left for the next wait.
    delay: u64,
    /// An injected error closed the stream.
    closed: bool,
}

impl Hooks {
    fn new(faults: SharedFaults) -> Self {
        Self {
            faults,
            delay: 0,
            closed: false,
        }
    }

    /// `Closed` once an injected error closed the stream.
    fn open(&self) -> StreamResult<()> {
        if self.closed {
            Err(StreamError::Closed)
        } else {
            Ok(())
        }
    }

    /// Counts a non-blocking call of `op`: a slow fault's delay is left for the next wait,
    /// added to what earlier calls left (a slow disk takes its time for every queued write).
    fn count(&mut self, op: WasiOp) -> StreamResult<Action> {
        self.open()?;
        let (action, delay) = self.faults.on_call(op);
        self.delay = self.delay.saturating_add(delay);
        self.act(action)
    }

    /// Counts a blocking call of `op`, and waits first if the fault is slow.
    async fn count_and_wait(&mut self, op: WasiOp) -> StreamResult<Action> {
        self.open()?;
        let (action, delay) = self.faults.on_call(op);
        pause(delay).await;
        self.act(action)
    }

    /// Turns an injected error or trap into the stream's error.
    fn act(&mut self, action: Action) -> StreamResult<Action> {
        match action {
            Action::Trap(nth) => Err(StreamError::Trap(trap(nth))),
            Action::Errno(errno) => {
                self.closed = true;
                let host = std::io::Error::from_raw_os_error(super::p2::host_errno(errno));
                Err(StreamError::LastOperationFailed(host.into()))
            }
            action => Ok(action),
        }
    }

    /// Waits out the delay a slow non-blocking call left.
    async fn wait(&mut self) {
        pause(std::mem::take(&mut self.delay)).await;
    }
}

/// A file's input stream.
pub(super) struct FaultyInput {
    inner: DynInputStream,
    hooks: Hooks,
}

impl FaultyInput {
    /// Wraps `inner`, a file's stream, for the store whose faults these are.
    pub(super) fn new(inner: DynInputStream, faults: SharedFaults) -> Self {
        Self {
            inner,
            hooks: Hooks::new(faults),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for FaultyInput {
    async fn ready(&mut self) {
        self.hooks.wait().await;
        self.inner.ready().await;
    }
}

#[async_trait::async_trait]
impl InputStream for FaultyInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.hooks.count(WasiOp::Read)?;
        self.inner.read(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.hooks.count_and_wait(WasiOp::Read).await?;
        self.inner.blocking_read(size).await
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.hooks.open()?;
        self.inner.skip(size)
    }

    async fn blocking_skip(&mut self, size: usize) -> StreamResult<usize> {
        self.hooks.open()?;
        self.inner.blocking_skip(size).await
    }

    async fn cancel(&mut self) {
        self.hooks.wait().await;
        self.inner.cancel().await;
    }
}

/// A file's output stream (writing at an offset or appending).
pub(super) struct FaultyOutput {
    inner: DynOutputStream,
    hooks: Hooks,
}

impl FaultyOutput {
    /// Wraps `inner`, a file's stream, for the store whose faults these are.
    pub(super) fn new(inner: DynOutputStream, faults: SharedFaults) -> Self {
        Self {
            inner,
            hooks: Hooks::new(faults),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for FaultyOutput {
    async fn ready(&mut self) {
        self.hooks.wait().await;
        self.inner.ready().await;
    }
}

#[async_trait::async_trait]
impl OutputStream for FaultyOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.hooks.count(WasiOp::Write)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.hooks.open()?;
        self.inner.flush()
    }

    /// The stream's permit, cut to [`SHORT_PERMIT`] when the next write is to be short.
    fn check_write(&mut self) -> StreamResult<usize> {
        self.hooks.open()?;
        let permit = self.inner.check_write()?;
        if permit > SHORT_PERMIT && self.hooks.faults.next_write_is_short() {
            Ok(SHORT_PERMIT)
        } else {
            Ok(permit)
        }
    }

    /// Has no partial result, so a short write writes everything.
    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.hooks.count_and_wait(WasiOp::Write).await?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, len: usize) -> StreamResult<()> {
        self.hooks.count(WasiOp::Write)?;
        self.inner.write_zeroes(len)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        self.hooks.open()?;
        self.hooks.wait().await;
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.hooks.wait().await;
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

    use super::super::WasiFault;
    use super::*;

    /// A wrapped in-memory output stream injecting `fault`, and the memory it writes to.
    fn output(fault: WasiFault) -> (FaultyOutput, MemoryOutputPipe) {
        let pipe = MemoryOutputPipe::new(1024);
        let stream = FaultyOutput::new(Box::new(pipe.clone()), SharedFaults::new(Some(fault)));
        (stream, pipe)
    }

    fn bytes(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    /// The host errno a `last-operation-failed` carries.
    fn host_errno(error: StreamError) -> Option<i32> {
        match error {
            StreamError::LastOperationFailed(e) => {
                e.downcast_ref::<std::io::Error>()?.raw_os_error()
            }
            _ => None,
        }
    }

    #[test]
    fn an_injected_error_fails_the_write_and_closes_the_stream() {
        let (mut stream, pipe) = output(WasiFault::Errno {
            op: WasiOp::Write,
            nth: 2,
            errno: 51,
        });
        stream.write(bytes("ab")).unwrap();
        let error = stream.write(bytes("cd")).unwrap_err();
        assert_eq!(host_errno(error), Some(libc::ENOSPC));
        assert!(matches!(stream.check_write(), Err(StreamError::Closed)));
        assert!(matches!(
            stream.write(bytes("ef")),
            Err(StreamError::Closed)
        ));
        assert!(matches!(stream.flush(), Err(StreamError::Closed)));
        assert_eq!(pipe.contents(), "ab");
    }

    #[test]
    fn the_permit_before_a_short_write_is_one_byte() {
        let (mut stream, pipe) = output(WasiFault::ShortWrite { nth: 2 });
        assert_eq!(stream.check_write().unwrap(), 1024);
        stream.write(bytes("ab")).unwrap();
        assert_eq!(stream.check_write().unwrap(), SHORT_PERMIT);
        stream.write(bytes("c")).unwrap();
        assert_eq!(stream.check_write().unwrap(), 1021);
        assert_eq!(pipe.contents(), "abc");
    }

    #[tokio::test]
    async fn a_blocking_write_counts_but_is_never_cut_short() {
        let (mut stream, pipe) = output(WasiFault::ShortWrite { nth: 1 });
        stream
            .blocking_write_and_flush(bytes("abcd"))
            .await
            .unwrap();
        assert_eq!(pipe.contents(), "abcd");
        // The short write was that one: the next permit is whole.
        assert_eq!(stream.check_write().unwrap(), 1020);
    }

    #[tokio::test]
    async fn a_trap_fails_the_call_with_the_trap() {
        let (mut stream, pipe) = output(WasiFault::Trap { nth: 2 });
        stream.write_zeroes(2).unwrap();
        let Err(StreamError::Trap(e)) = stream.blocking_write_and_flush(bytes("ab")).await else {
            panic!("no trap");
        };
        assert_eq!(e.to_string(), "trap injected at file operation 2");
        assert_eq!(pipe.contents(), &[0, 0][..]);
    }

    #[tokio::test]
    async fn slow_writes_leave_their_delays_for_the_next_wait() {
        let (mut stream, _) = output(WasiFault::Slow { millis: 30 });
        let started = Instant::now();
        stream.write(bytes("a")).unwrap();
        stream.write(bytes("b")).unwrap();
        stream.ready().await;
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(stream.hooks.delay, 0, "the wait took the delays");
    }

    #[tokio::test]
    async fn reads_count_and_an_injected_error_ends_the_stream() {
        let faults = SharedFaults::new(Some(WasiFault::Errno {
            op: WasiOp::Read,
            nth: 2,
            errno: 2,
        }));
        let mut stream = FaultyInput::new(Box::new(MemoryInputPipe::new("abcdef")), faults);
        assert_eq!(stream.blocking_read(2).await.unwrap(), "ab");
        let error = stream.read(2).unwrap_err();
        assert_eq!(host_errno(error), Some(libc::EACCES));
        assert!(matches!(
            stream.blocking_read(2).await,
            Err(StreamError::Closed)
        ));
    }
}
