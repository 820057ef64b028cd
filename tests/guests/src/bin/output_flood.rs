//! Writes 64 MiB files into /out until it has written 2 GiB: must hit the total output cap.

use std::io::Write;

fn main() {
    let chunk = vec![b'o'; 1 << 20];
    for n in 0..32 {
        let path = format!("/out/flood-{n:02}.bin");
        let result = std::fs::File::create(&path).and_then(|mut f| {
            for _ in 0..64 {
                f.write_all(&chunk)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("output_flood: {path}: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
    eprintln!("output_flood: wrote 2 GiB");
}
