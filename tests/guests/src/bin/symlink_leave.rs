//! Leaves a symlink in `/out` pointing to argv[1] (a path outside the sandbox), at the path
//! argv[2] (default `result.txt`). The workflow declares it, or a path through it, as an output,
//! so output collection must refuse it without following it.

use hermetic_test_guests::symlink;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .unwrap_or_else(|| "../../../../../../../../etc/passwd".to_owned());
    let link = format!("/out/{}", args.next().as_deref().unwrap_or("result.txt"));
    match symlink(&target, &link) {
        Ok(()) => println!("left {link} as a symlink"),
        Err(e) => {
            println!("symlink {link}: error {e}");
            std::process::exit(1);
        }
    }
}
