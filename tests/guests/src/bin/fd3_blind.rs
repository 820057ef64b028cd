//! Writes a byte to descriptor 3 (the first preopened directory, when there is one) and prints
//! the errno. It imports nothing that reaches files, so the sandbox does not mount its
//! directories; it must not be able to tell, so the answer is the same either way (`EBADF`).

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI preview 1 `fd_write(fd, iovs, iovs_len, nwritten) -> errno`.
    fn fd_write(fd: u32, iovs: *const Ciovec, iovs_len: usize, nwritten: *mut usize) -> u16;
}

#[repr(C)]
struct Ciovec {
    buf: *const u8,
    len: usize,
}

pub fn main() {
    let byte = [b'x'];
    let iov = Ciovec {
        buf: byte.as_ptr(),
        len: 1,
    };
    let mut written = 0;
    // SAFETY: `iov` points at one readable byte and `written` is a valid place to store the
    // count, for the duration of the call.
    let errno = unsafe { fd_write(3, &iov, 1, &mut written) };
    println!("fd_write(3): errno {errno}, {written} written");
}
