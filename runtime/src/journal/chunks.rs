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
/// rest when told to ([`Chunked::write_rest`], [`Chunked::finish`]). Like `BufWriter`, but a
/// write ends between two multiples of [`CHUNK`] only when it writes the rest.
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

    /// The bytes not written yet, to append to in place (a caller that builds its lines in a
    /// `Vec<u8>` needs no copy of its own).
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Writes the whole chunks in the buffer.
    pub(crate) fn write_whole(&mut self) -> io::Result<()> {
        self.write_first(whole(self.written, self.buf.len()))
    }

    /// Writes all of the buffer, the end of the last chunk included; the next whole chunk
    /// ends on a multiple of [`CHUNK`] again.
    pub(crate) fn write_rest(&mut self) -> io::Result<()> {
        self.write_first(self.buf.len())
    }

    /// Writes the first `n` bytes of the buffer.
    fn write_first(&mut self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.out.write_all(&self.buf[..n])?;
            self.buf.drain(..n);
            self.written += n as u64;
        }
        Ok(())
    }

    /// Writes what is left and hands back `out`.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.write_rest()?;
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

    #[test]
    fn after_the_rest_is_written_whole_chunks_end_on_multiples_again() {
        let mut out = Chunked::new(Writes::default());
        out.write_all(&[1; 100]).unwrap();
        out.write_rest().unwrap();
        assert!(out.buffer().is_empty());
        out.write_all(&vec![2; CHUNK]).unwrap();
        let Writes(bytes, writes) = out.finish().unwrap();
        assert_eq!(writes, [100, CHUNK - 100, 100]);
        assert_eq!(bytes[..100], [1; 100]);
        assert!(bytes[100..].iter().all(|&b| b == 2));
        assert_eq!(bytes.len(), CHUNK + 100);
    }
}
