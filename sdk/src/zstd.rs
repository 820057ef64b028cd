//! zstd streams with `ruzstd` (pure Rust, so the task builds for wasm without a C compiler).
//!
//! `ruzstd`'s encoder panics on an I/O error of its source or drain; [`compress`] shields it
//! and returns the error instead. [`Decoder`] reads any number of concatenated frames (as the
//! `zstd` tool does), skips skippable frames, and checks each frame's content checksum.
//!
//! Enabled by the SDK's `zstd` feature.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use ruzstd::encoding::{CompressionLevel, FrameCompressor};

/// Which side of a stream failed.
#[derive(Debug)]
pub enum StreamError {
    Read(io::Error),
    Write(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Read(e) | StreamError::Write(e) => e.fmt(f),
        }
    }
}

/// Compresses all of `source` into `drain` as one zstd frame with a content checksum, at
/// `ruzstd`'s fastest level (about `zstd -1`; the only compressing level it implements).
pub fn compress(source: impl Read, drain: impl Write) -> Result<(), StreamError> {
    let mut source = Shield::new(source);
    let mut drain = Shield::new(drain);
    let mut encoder = FrameCompressor::new(CompressionLevel::Fastest);
    encoder.set_source(&mut source);
    encoder.set_drain(&mut drain);
    encoder.compress();
    drop(encoder);
    if let Some(e) = source.error {
        return Err(StreamError::Read(e));
    }
    if let Some(e) = drain.error {
        return Err(StreamError::Write(e));
    }
    drain.inner.flush().map_err(StreamError::Write)
}

/// Keeps the first I/O error of the stream it wraps, and from then on behaves as an exhausted
/// source or a bottomless drain, so that the encoder finishes instead of panicking.
struct Shield<T> {
    inner: T,
    error: Option<io::Error>,
}

impl<T> Shield<T> {
    fn new(inner: T) -> Self {
        Self { inner, error: None }
    }
}

impl<R: Read> Read for Shield<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

impl<W: Write> Write for Shield<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_none()
            && let Err(e) = self.inner.write_all(buf)
        {
            self.error = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses a zstd stream: every frame in turn, until the source ends.
///
/// Errors in the data are `InvalidData` I/O errors with a plain message.
pub struct Decoder<R> {
    source: R,
    frame: FrameDecoder,
    in_frame: bool,
    frames: u64,
}

impl<R> fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("in_frame", &self.in_frame)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Decoder<R> {
    /// A decoder of the zstd stream `source`.
    pub fn new(source: R) -> Self {
        Self {
            source,
            frame: FrameDecoder::new(),
            in_frame: false,
            frames: 0,
        }
    }

    /// Starts the next frame; `false` at the end of the source.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                if self.frames == 0 {
                    return Err(invalid("empty input, not zstd data".into()));
                }
                return Ok(false);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => {
                    self.frames += 1;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped != u64::from(length) {
                        return Err(invalid("truncated skippable frame".into()));
                    }
                    self.frames += 1;
                }
                Err(FrameDecoderError::ReadFrameHeaderError(
                    ReadFrameHeaderError::BadMagicNumber(_),
                )) if self.frames == 0 => {
                    return Err(invalid("not zstd data (bad magic number)".into()));
                }
                Err(FrameDecoderError::ReadFrameHeaderError(
                    ReadFrameHeaderError::BadMagicNumber(_),
                )) => {
                    return Err(invalid(format!(
                        "unexpected data after zstd frame {}",
                        self.frames
                    )));
                }
                Err(e) => return Err(invalid(format!("bad zstd frame header: {e}"))),
            }
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            if self.frame.can_collect() > 0 {
                return self.frame.read(buf);
            }
            if self.frame.is_finished() {
                let expected = self.frame.get_checksum_from_data();
                if expected.is_some() && expected != self.frame.get_calculated_checksum() {
                    return Err(invalid(format!(
                        "checksum mismatch in zstd frame {}: the data is corrupt",
                        self.frames
                    )));
                }
                self.in_frame = false;
                continue;
            }
            self.frame
                .decode_blocks(
                    &mut self.source,
                    BlockDecodingStrategy::UptoBytes(buf.len()),
                )
                .map_err(|e| {
                    if ends_early(&e) {
                        invalid("truncated zstd data".into())
                    } else {
                        invalid(format!("corrupt zstd data: {e}"))
                    }
                })?;
        }
    }
}

/// Whether decoding failed because the data ended too soon.
fn ends_early(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(data, &mut out).unwrap();
        out
    }

    fn unpacked(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("line {} of {}\n", i % 977, i / 3).into_bytes())
            .collect()
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        for data in [Vec::new(), b"x".to_vec(), sample()] {
            let once = packed(&data);
            assert_eq!(packed(&data), once);
            assert_eq!(unpacked(&once).unwrap(), data);
        }
        let data = sample();
        assert!(packed(&data).len() < data.len() / 2);
    }

    #[test]
    fn reads_concatenated_and_skippable_frames() {
        let mut stream = packed(b"hello, ");
        // A skippable frame: magic 0x184D2A50, length 3, three bytes.
        stream.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        stream.extend(packed(b"world"));
        assert_eq!(unpacked(&stream).unwrap(), b"hello, world");
    }

    #[test]
    fn bad_data_is_an_error() {
        let err = |data: &[u8]| unpacked(data).unwrap_err().to_string();
        assert_eq!(err(b""), "empty input, not zstd data");
        assert_eq!(err(b"plain text"), "not zstd data (bad magic number)");
        let good = packed(&sample());
        assert_eq!(err(&good[..good.len() - 10]), "truncated zstd data");
        let mut trailing = packed(b"x");
        trailing.extend_from_slice(b"junk");
        assert_eq!(err(&trailing), "unexpected data after zstd frame 1");
        // Flip one bit of the checksum.
        let mut corrupt = packed(b"some text");
        *corrupt.last_mut().unwrap() ^= 1;
        assert_eq!(
            err(&corrupt),
            "checksum mismatch in zstd frame 1: the data is corrupt"
        );
    }

    #[test]
    fn io_errors_are_returned_not_panicked() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        match compress(Failing, Vec::new()) {
            Err(StreamError::Read(e)) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
        match compress(&b"data"[..], Failing) {
            Err(StreamError::Write(e)) => assert_eq!(e.to_string(), "disk full"),
            other => panic!("{other:?}"),
        }
    }
}
