//! Writing the journal's files in whole, aligned chunks.
//!
//! Small and unaligned buffered writes cost the kernel far more per byte than whole, aligned
//! ones: most likely because ext4 (on Linux 6.18 here) caches a file in large folios, which a
//! whole, aligned 64 KiB write fills at once, where writes of a few kilobytes each fill part of
//! one. Writing 4.5 MB (a 10,000-step run's `events.jsonl`) took 4.5 ms in writes of 6,000 bytes,
//! which is what one batch of events came to, 1.3 ms in writes of 64 KiB plus 150 bytes and
//! 0.85 ms in aligned writes of 64 KiB (medians of 20, on a 2-core virtual machine).
//!
//! So the journal's files are written [`CHUNK`] bytes at a time, each write ending on a
//! multiple of [`CHUNK`] from the start of the file, and what is left over waits for more
//! ([`whole`]); the end of a file is written when the file is complete, or, for
//! `events.jsonl`, once it has waited long enough (see `runs::RunJournal::flush`).

use std::io::{self, Write};

/// The size and alignment of a write.
pub(crate) const CHUNK: usize = 64 << 10;

/// How many of `pending` bytes to write now, after the `written` bytes already in the file:
/// as many as end on the last multiple of [`CHUNK`] they reach, possibly none.
pub(crate) fn whole(written: u64, pending: usize) -> usize {
    let end = written + pending as u64;
    let aligned = end - end % CHUNK as u64;
    aligned.saturating_sub(written) as usize
}

/// A [`Write`] that buffers what it is given and writes it to `out` in whole chunks, the
/// rest when it [`finish`](Chunked::finish)es. Like `BufWriter`, but a write never ends
/// between two multiples of [`CHUNK`] unless it is the last.
#[derive(Debug)]
pub(crate) struct Chunked<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Bytes written to `out` so far.
    written: u64,
}

impl<W: Write> Chunked<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(2 * CHUNK),
            written: 0,
        }
    }

    /// Writes the whole chunks in the buffer.
    fn write_whole(&mut self) -> io::Result<()> {
        let n = whole(self.written, self.buf.len());
        if n > 0 {
            self.out.write_all(&self.buf[..n])?;
            self.buf.drain(..n);
            self.written += n as u64;
        }
        Ok(())
    }

    /// Writes what is left and hands back `out`.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.write_whole()?;
        }
        Ok(bytes.len())
    }

    /// Writes the whole chunks only: the rest waits for [`Chunked::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.write_whole()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_writes_end_on_a_multiple_of_the_chunk() {
        assert_eq!(whole(0, 0), 0);
        assert_eq!(whole(0, CHUNK - 1), 0);
        assert_eq!(whole(0, CHUNK), CHUNK);
        assert_eq!(whole(0, 2 * CHUNK + 5), 2 * CHUNK);
        // After an unaligned write, the next one fills up to the boundary.
        assert_eq!(whole(100, CHUNK), CHUNK - 100);
        assert_eq!(whole(100, CHUNK - 101), 0);
        assert_eq!(whole(CHUNK as u64, CHUNK - 1), 0);
    }

    /// Records the length of each write it takes.
    #[derive(Default)]
    struct Writes(Vec<u8>, Vec<usize>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(bytes);
            self.1.push(bytes.len());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_same_bytes_arrive_in_whole_chunks_then_the_rest() {
        let mut out = Chunked::new(Writes::default());
        let mut expected = Vec::new();
        for i in 0..5_000u32 {
            let line = format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat(i as usize % 97)
            );
            out.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        out.flush().unwrap();
        let Writes(bytes, writes) = out.finish().unwrap();
        assert_eq!(bytes, expected);
        let (last, chunks) = writes.split_last().unwrap();
        assert!(chunks.iter().all(|&n| n == CHUNK), "{writes:?}");
        assert_eq!(chunks.len(), expected.len() / CHUNK);
        assert_eq!(*last, expected.len() % CHUNK);
    }
}
