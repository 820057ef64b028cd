//! Capturing a guest's stdout or stderr into a host file, with a size cap.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A capture target shared between the WASI context and the host, which reads
/// [`Capture::overflowed`] once the guest is done.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<CaptureInner>>,
    /// Beaten on every write.
    heartbeat: Option<Arc<super::Heartbeat>>,
}

#[derive(Debug)]
struct CaptureInner {
    sink: Sink,
    written: u64,
    limit: u64,
    overflowed: bool,
}

#[derive(Debug)]
enum Sink {
    File(File),
    Memory(Vec<u8>),
}

impl Capture {
    /// Captures into a new file at `path` (truncated if it exists).
    pub(crate) fn to_file(path: &Path, limit: u64) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self::new(Sink::File(file), limit))
    }

    /// Captures into memory; read it back with [`Capture::contents`].
    pub(crate) fn in_memory(limit: u64) -> Self {
        Self::new(Sink::Memory(Vec::new()), limit)
    }

    fn new(sink: Sink, limit: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(CaptureInner {
                sink,
                written: 0,
                limit,
                overflowed: false,
            })),
            heartbeat: None,
        }
    }

    /// Beats `heartbeat` on every write.
    pub(crate) fn with_heartbeat(mut self, heartbeat: Option<Arc<super::Heartbeat>>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Whether the guest tried to write past the limit.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// The bytes captured in memory (empty for a file capture).
    pub(crate) fn contents(&self) -> Vec<u8> {
        match &self.lock().sink {
            Sink::Memory(v) => v.clone(),
            Sink::File(_) => Vec::new(),
        }
    }

    /// Flushes a file capture to disk.
    pub(crate) fn finish(&self) -> io::Result<()> {
        match &mut self.lock().sink {
            Sink::File(f) => f.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureInner> {
        // A poisoned lock only means another writer panicked mid-write; the bytes are still ours.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_capped(&self, buf: &[u8]) -> io::Result<usize> {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
        let mut inner = self.lock();
        let room = inner.limit.saturating_sub(inner.written);
        if room == 0 && !buf.is_empty() {
            inner.overflowed = true;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "output limit reached",
            ));
        }
        let n = buf.len().min(room as usize);
        match &mut inner.sink {
            Sink::File(f) => f.write_all(&buf[..n])?,
            Sink::Memory(v) => v.extend_from_slice(&buf[..n]),
        }
        inner.written += n as u64;
        Ok(n)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_capped(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_records_overflow() {
        let c = Capture::in_memory(5);
        assert_eq!(c.write_capped(b"abc").unwrap(), 3);
        assert_eq!(c.write_capped(b"defg").unwrap(), 2);
        assert!(!c.overflowed());
        assert!(c.write_capped(b"h").is_err());
        assert!(c.overflowed());
        assert_eq!(c.contents(), b"abcde");
    }
}
