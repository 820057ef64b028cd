//! Writes 64 MiB files into /out until it has written argv[1] MiB (default 2048, i.e. 2 GiB):
//! must hit the total output cap. With argv[2] = `sparse`, each file is extended by seeking and
//! writing its last byte, so the logical size grows as fast without using the host's disk.

use std::io::{Seek, SeekFrom, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let total_mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let sparse = args.next().as_deref() == Some("sparse");
    let chunk = vec![b'o'; 1 << 20];
    let mut written = 0u64;
    for n in 0..total_mib.div_ceil(64) {
        let path = format!("/out/flood-{n:03}.bin");
        let result = std::fs::File::create(&path).and_then(|mut f| {
            if sparse {
                f.seek(SeekFrom::Start((64 << 20) - 1))?;
                f.write_all(b"o")?;
            } else {
                for _ in 0..64 {
                    f.write_all(&chunk)?;
                }
            }
            f.flush()
        });
        if let Err(e) = result {
            eprintln!("output_flood: {path}: {e} (after {written} MiB)");
            std::process::exit(1);
        }
        written += 64;
    }
    println!("wrote {written} MiB");
}
