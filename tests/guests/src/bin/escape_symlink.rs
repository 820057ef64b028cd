//! Creates symlinks in /out that point outside the sandbox (to `/`, to the canary's host path
//! given as argv[1], and upwards), then tries to read and write through them.

use hermetic_test_guests::{Attempts, list, read, symlink, write};
use std::fs::OpenOptions;

fn main() {
    let canary = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/canary.txt".to_owned());
    let deep = format!("{}{}", "../".repeat(32), canary.trim_start_matches('/'));
    let mut a = Attempts::default();
    for (target, link) in [
        ("/", "/out/root"),
        (canary.as_str(), "/out/host"),
        ("../../..", "/out/up"),
        (deep.as_str(), "/out/deep"),
    ] {
        let what = format!(
            "symlink {link} -> {}",
            if link == "/out/host" || link == "/out/deep" {
                "<canary>"
            } else {
                target
            }
        );
        a.note(&what, symlink(target, link).map(|()| ""));
    }
    a.deny("read /out/root/etc/passwd", read("/out/root/etc/passwd"));
    a.deny("list /out/root", list("/out/root"));
    a.deny("list /out/root/", list("/out/root/"));
    a.deny("read /out/up/etc/passwd", read("/out/up/etc/passwd"));
    a.deny("list /out/up", list("/out/up"));
    for link in ["/out/host", "/out/deep"] {
        a.deny(&format!("read {link}"), read(link));
        a.deny(
            &format!("truncate {link}"),
            write(link, OpenOptions::new().write(true).truncate(true)),
        );
        a.deny(
            &format!("append {link}"),
            write(link, OpenOptions::new().append(true)),
        );
    }
    a.deny(
        "create /out/root/escaped.txt",
        write(
            "/out/root/escaped.txt",
            OpenOptions::new().write(true).create(true).truncate(true),
        ),
    );
    a.deny(
        "create /out/up/escaped.txt",
        write(
            "/out/up/escaped.txt",
            OpenOptions::new().write(true).create(true).truncate(true),
        ),
    );
    a.finish();
}
