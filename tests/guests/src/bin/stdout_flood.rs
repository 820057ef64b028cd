//! Writes 1 GiB to stdout in 64 KiB chunks: must hit the stdout cap.

use std::io::Write;

fn main() {
    let chunk = vec![b'x'; 64 << 10];
    let mut out = std::io::stdout().lock();
    for i in 0..(1usize << 14) {
        if let Err(e) = out.write_all(&chunk) {
            eprintln!(
                "stdout_flood: write failed after {} bytes: {e}",
                i * chunk.len()
            );
            std::process::exit(1);
        }
    }
    eprintln!("stdout_flood: wrote 1 GiB");
}
