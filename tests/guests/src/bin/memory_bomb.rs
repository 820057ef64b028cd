//! Allocates and touches 64 MiB vectors forever, growing linear memory until a limit stops it.

use std::io::Write;

fn main() {
    const CHUNK: usize = 64 << 20;
    let mut hold: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut v = vec![0u8; CHUNK];
        for i in (0..CHUNK).step_by(4096) {
            v[i] = 1;
        }
        hold.push(std::hint::black_box(v));
        println!("allocated {} MiB", hold.len() * 64);
        let _ = std::io::stdout().flush();
    }
}
