//! Shared helpers for the adversarial guests: each attempt is printed on one line as
//! `<what>: ok <detail>` or `<what>: error <message>`, and an attempt that must be denied but
//! succeeded is remembered, so that the guest's last line says whether it was contained.

use std::fmt::Display;
use std::io;

/// Collects the attempts of an adversarial guest.
#[derive(Debug, Default)]
pub struct Attempts {
    escaped: Vec<String>,
}

impl Attempts {
    /// An attempt that the sandbox must deny: success is an escape.
    pub fn deny<T: Display>(&mut self, what: &str, result: io::Result<T>) {
        if self.print(what, result) {
            self.escaped.push(what.to_owned());
        }
    }

    /// An attempt that the sandbox may allow or deny; only printed.
    pub fn note<T: Display>(&mut self, what: &str, result: io::Result<T>) -> bool {
        self.print(what, result)
    }

    fn print<T: Display>(&mut self, what: &str, result: io::Result<T>) -> bool {
        match result {
            Ok(detail) => {
                let detail = detail.to_string();
                if detail.is_empty() {
                    println!("{what}: ok");
                } else {
                    println!("{what}: ok {detail}");
                }
                true
            }
            Err(e) => {
                println!("{what}: error {e}");
                false
            }
        }
    }

    /// Prints the verdict and exits: 0 if every denied attempt was denied, 1 otherwise.
    pub fn finish(self) -> ! {
        if self.escaped.is_empty() {
            println!("contained");
            std::process::exit(0);
        }
        println!("ESCAPED: {}", self.escaped.join(", "));
        std::process::exit(1);
    }
}

/// Reads a file and describes its content (length and first line, never all of it).
pub fn read(path: &str) -> io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(describe(&bytes))
}

/// Lists a directory, sorted.
pub fn list(path: &str) -> io::Result<String> {
    let mut names = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(format!("[{}]", names.join(", ")))
}

/// Opens (creating or truncating as told) and writes `PWNED` into a file.
pub fn write(path: &str, options: &std::fs::OpenOptions) -> io::Result<String> {
    use std::io::Write;
    let mut file = options.open(path)?;
    file.write_all(b"PWNED")?;
    file.flush()?;
    Ok("(wrote PWNED)".to_owned())
}

/// `len bytes, first line "…"`.
pub fn describe(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or("");
    let first: String = first.chars().take(60).collect();
    format!("({} bytes, first line {first:?})", bytes.len())
}

/// `Ok(())` as a printable success.
pub fn done(result: io::Result<()>) -> io::Result<&'static str> {
    result.map(|()| "")
}

/// `symlink(2)` through wasi-libc (`std::os::wasi::fs::symlink_path` is unstable): creates `link`
/// pointing at `target`, which is stored as is and never resolved here.
pub fn symlink(target: &str, link: &str) -> io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        #[link_name = "symlink"]
        fn libc_symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let target = CString::new(target).map_err(io::Error::other)?;
    let link = CString::new(link).map_err(io::Error::other)?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    if unsafe { libc_symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
