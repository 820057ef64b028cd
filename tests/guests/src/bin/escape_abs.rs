//! Opens absolute host paths: system files and the canary file whose host path is argv[1].

use hermetic_test_guests::{Attempts, done, list, read, write};
use std::fs::OpenOptions;

fn main() {
    let canary = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/canary.txt".to_owned());
    let canary_dir = std::path::Path::new(&canary)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut a = Attempts::default();
    for path in [
        "/etc/passwd",
        "/proc/self/environ",
        "/proc/self/cmdline",
        "//etc/passwd",
    ] {
        a.deny(&format!("read {path}"), read(path));
    }
    for path in ["/", "/etc", "/proc/self/fd", canary_dir.as_str()] {
        a.deny(&format!("list {path}"), list(path));
    }
    a.deny("read canary", read(&canary));
    a.deny(
        "stat canary",
        std::fs::metadata(&canary).map(|m| format!("({} bytes)", m.len())),
    );
    a.deny(
        "truncate canary",
        write(&canary, OpenOptions::new().write(true).truncate(true)),
    );
    a.deny(
        "append canary",
        write(&canary, OpenOptions::new().append(true)),
    );
    a.deny("remove canary", done(std::fs::remove_file(&canary)));
    a.deny(
        "create beside canary",
        write(
            &format!("{canary}.new"),
            OpenOptions::new().write(true).create_new(true),
        ),
    );
    a.finish();
}
