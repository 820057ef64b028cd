//! Leaves a file, a directory tree and a symlink pointing up and out in both `/out` and `/tmp`, besides the
//! declared output `/out/kept.txt`: a step that leaves its scratch directories dirty, so that
//! the host can check that the next step run in the same directories starts with them empty.

use hermetic_test_guests::symlink;
use std::fs;

fn main() {
    for root in ["/out", "/tmp"] {
        fs::create_dir_all(format!("{root}/d/e")).expect("mkdir");
        fs::write(format!("{root}/d/e/f.txt"), "litter\n").expect("write");
        fs::write(format!("{root}/junk.txt"), "litter\n").expect("write");
        symlink("../../../../../etc", &format!("{root}/up")).expect("symlink");
    }
    fs::write("/out/kept.txt", "kept\n").expect("write");
    println!("littered /out and /tmp");
}
