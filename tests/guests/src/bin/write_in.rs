//! Tries to create, truncate, append to, delete and rename files in the read-only `/in`.

use hermetic_test_guests::{Attempts, done, read, write};
use std::fs::OpenOptions;

fn main() {
    let mut a = Attempts::default();
    a.deny(
        "create /in/new.txt",
        write(
            "/in/new.txt",
            OpenOptions::new().write(true).create(true).truncate(true),
        ),
    );
    a.deny(
        "truncate /in/input.txt",
        write(
            "/in/input.txt",
            OpenOptions::new().write(true).truncate(true),
        ),
    );
    a.deny(
        "write /in/input.txt",
        write("/in/input.txt", OpenOptions::new().write(true)),
    );
    a.deny(
        "append /in/input.txt",
        write("/in/input.txt", OpenOptions::new().append(true)),
    );
    a.deny(
        "set_len /in/input.txt",
        std::fs::File::open("/in/input.txt")
            .and_then(|f| f.set_len(0))
            .map(|()| ""),
    );
    a.deny(
        "remove /in/input.txt",
        done(std::fs::remove_file("/in/input.txt")),
    );
    a.deny(
        "rename /in/input.txt /in/renamed.txt",
        done(std::fs::rename("/in/input.txt", "/in/renamed.txt")),
    );
    a.deny(
        "rename /in/input.txt /out/stolen.txt",
        done(std::fs::rename("/in/input.txt", "/out/stolen.txt")),
    );
    a.deny("mkdir /in/dir", done(std::fs::create_dir("/in/dir")));
    a.deny("remove /in/sub", done(std::fs::remove_dir_all("/in/sub")));
    a.note("read /in/input.txt", read("/in/input.txt"));
    a.finish();
}
