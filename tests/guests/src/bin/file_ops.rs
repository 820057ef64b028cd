//! Makes a fixed sequence of file operations and prints what each one returned, going on after
//! errors, so that a test of the WASI-boundary faults (`hermetic chaos`: `io`, `short_write`,
//! `slow_io`, `trap`) sees exactly which call failed and how:
//!
//! 1. open `/in/a.txt` (open 1), read it with two single reads into a 64-byte buffer (reads 1
//!    and 2: its 16 bytes, then the end);
//! 2. create `/out/b.txt` (open 2) and make three single writes of 10 bytes each (writes 1 to
//!    3), printing how many bytes each one took;
//! 3. create `/out/c.txt` (open 3) and write 10 bytes to it to the end, as `write_all` does
//!    (write 4, and one more after a short write).
//!
//! Reads and writes go through `std::fs::File` (`read(2)` and `write(2)`), or with the argument
//! `positioned` through `pread(2)` and `pwrite(2)` at the file's running offset. Each line is
//! `<what>: ok <detail>` or `<what>: error <message>`. Exits 1 if any operation failed, 0
//! otherwise.

use std::fs::File;
use std::io::{self, Read, Write};

/// Prints one result and remembers a failure.
#[derive(Debug, Default)]
struct Report {
    failed: bool,
}

impl Report {
    /// Prints `<what>: ok <detail>` or `<what>: error <message>`; the value, if any.
    fn line<T>(
        &mut self,
        what: &str,
        result: io::Result<T>,
        detail: impl Fn(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let detail = detail(&value);
                if detail.is_empty() {
                    println!("{what}: ok");
                } else {
                    println!("{what}: ok {detail}");
                }
                Some(value)
            }
            Err(e) => {
                println!("{what}: error {e}");
                self.failed = true;
                None
            }
        }
    }
}

/// An open file, read and written at its running offset.
struct Cursor {
    file: File,
    offset: u64,
    positioned: bool,
}

impl Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.positioned {
            libc::pread(&self.file, buf, self.offset)?
        } else {
            self.file.read(buf)?
        };
        self.offset += n as u64;
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = if self.positioned {
            libc::pwrite(&self.file, buf, self.offset)?
        } else {
            self.file.write(buf)?
        };
        self.offset += n as u64;
        Ok(n)
    }

    /// Writes all of `buf`, after short writes too.
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// `pread(2)` and `pwrite(2)` through wasi-libc (`std::os::wasi::fs::FileExt` is unstable).
mod libc {
    use std::ffi::{c_int, c_void};
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    unsafe extern "C" {
        #[link_name = "pread"]
        fn libc_pread(fd: c_int, buf: *mut c_void, len: usize, offset: i64) -> isize;
        #[link_name = "pwrite"]
        fn libc_pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize;
    }

    fn result(n: isize) -> io::Result<usize> {
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    pub fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call.
        result(unsafe {
            libc_pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                offset as i64,
            )
        })
    }

    pub fn pwrite(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call.
        result(unsafe {
            libc_pwrite(
                file.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                offset as i64,
            )
        })
    }
}

fn main() {
    let positioned = std::env::args().nth(1).as_deref() == Some("positioned");
    let cursor = |file| Cursor {
        file,
        offset: 0,
        positioned,
    };
    let mut report = Report::default();
    let none = |_: &Cursor| String::new();
    let input = File::open("/in/a.txt").map(cursor);
    if let Some(mut input) = report.line("open /in/a.txt", input, none) {
        let mut buf = [0u8; 64];
        for i in 1..=2 {
            let n = input.read(&mut buf);
            report.line(&format!("read {i}"), n, |n| format!("{n} bytes"));
        }
    }
    let output = File::create("/out/b.txt").map(cursor);
    if let Some(mut output) = report.line("create /out/b.txt", output, none) {
        for (i, chunk) in [b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"]
            .iter()
            .enumerate()
        {
            let n = output.write(*chunk);
            report.line(&format!("write {}", i + 1), n, |n| {
                format!("{n} of 10 bytes")
            });
        }
    }
    let all = File::create("/out/c.txt").map(cursor);
    if let Some(mut all) = report.line("create /out/c.txt", all, none) {
        let done = all.write_all(b"klmnopqrst");
        report.line("write_all", done, |()| "10 bytes".to_owned());
    }
    std::process::exit(i32::from(report.failed));
}
