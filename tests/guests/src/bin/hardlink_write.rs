//! Hard-links the read-only input `/in/input.txt` into `/out` and `/tmp`, then writes through the
//! links; the host checks that the user's input file is unchanged.

use hermetic_test_guests::{Attempts, done, read, write};
use std::fs::OpenOptions;

fn main() {
    let mut a = Attempts::default();
    a.note("read /in/input.txt", read("/in/input.txt"));
    for link in ["/out/link.txt", "/tmp/link.txt"] {
        if a.note(
            &format!("hard_link /in/input.txt {link}"),
            done(std::fs::hard_link("/in/input.txt", link)),
        ) {
            a.note(
                &format!("write {link}"),
                write(link, OpenOptions::new().write(true)),
            );
        }
    }
    // Writing through a link must never change what the read-only mount shows.
    match std::fs::read("/in/input.txt") {
        Ok(bytes) if bytes.starts_with(b"PWNED") => {
            a.deny("/in/input.txt changed", Ok("to PWNED"));
        }
        other => {
            a.note(
                "read /in/input.txt again",
                other.map(|b| hermetic_test_guests::describe(&b)),
            );
        }
    }
    a.finish();
}
