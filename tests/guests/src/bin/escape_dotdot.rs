//! Tries to leave the preopened directories with `..` components, absolute and relative.

use hermetic_test_guests::{Attempts, done, list, read, write};
use std::fs::OpenOptions;

fn main() {
    let mut a = Attempts::default();
    let deep = format!("/in/{}etc/passwd", "../".repeat(64));
    for path in [
        "/in/../../etc/passwd",
        "/in/../etc/passwd",
        "/in/./../../etc/passwd",
        "/out/../../etc/passwd",
        "/tmp/../../../etc/passwd",
        "../../../etc/passwd",
        "../etc/passwd",
        deep.as_str(),
    ] {
        a.deny(&format!("read {path}"), read(path));
    }
    for path in [
        "/in/..",
        "/in/../..",
        "/out/..",
        "/out/../..",
        "/tmp/../../..",
    ] {
        a.deny(&format!("list {path}"), list(path));
    }
    let create = {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        o
    };
    for path in [
        "/out/../escaped.txt",
        "/out/../../escaped.txt",
        "/tmp/../../escaped.txt",
    ] {
        a.deny(&format!("create {path}"), write(path, &create));
    }
    a.deny(
        "mkdir /out/../escaped-dir",
        done(std::fs::create_dir("/out/../escaped-dir")),
    );
    // A relative path after changing directory (wasi-libc emulates the working directory).
    a.note("chdir /out", done(std::env::set_current_dir("/out")));
    a.deny("read ../../etc/passwd from /out", read("../../etc/passwd"));
    a.deny("list ../.. from /out", list("../.."));
    a.finish();
}
