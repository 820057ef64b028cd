//! Tries to create, truncate, append to, delete and rename files in a read-only mount: argv[1]
//! (default `/in`), which holds `input.txt` and `sub/`.

use hermetic_test_guests::{Attempts, done, read, write};
use std::fs::OpenOptions;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/in".to_owned());
    let input = format!("{dir}/input.txt");
    let mut a = Attempts::default();
    a.deny(
        &format!("create {dir}/new.txt"),
        write(
            &format!("{dir}/new.txt"),
            OpenOptions::new().write(true).create(true).truncate(true),
        ),
    );
    a.deny(
        &format!("truncate {input}"),
        write(&input, OpenOptions::new().write(true).truncate(true)),
    );
    a.deny(
        &format!("write {input}"),
        write(&input, OpenOptions::new().write(true)),
    );
    a.deny(
        &format!("append {input}"),
        write(&input, OpenOptions::new().append(true)),
    );
    a.deny(
        &format!("set_len {input}"),
        std::fs::File::open(&input)
            .and_then(|f| f.set_len(0))
            .map(|()| ""),
    );
    a.deny(
        &format!("remove {input}"),
        done(std::fs::remove_file(&input)),
    );
    a.deny(
        &format!("rename {input} {dir}/renamed.txt"),
        done(std::fs::rename(&input, format!("{dir}/renamed.txt"))),
    );
    a.deny(
        &format!("rename {input} /out/stolen.txt"),
        done(std::fs::rename(&input, "/out/stolen.txt")),
    );
    a.deny(
        &format!("mkdir {dir}/dir"),
        done(std::fs::create_dir(format!("{dir}/dir"))),
    );
    a.deny(
        &format!("remove {dir}/sub"),
        done(std::fs::remove_dir_all(format!("{dir}/sub"))),
    );
    a.note(&format!("read {input}"), read(&input));
    a.finish();
}
