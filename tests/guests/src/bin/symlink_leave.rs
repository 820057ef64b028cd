//! Leaves `/out/result.txt` as a symlink to argv[1] (a path outside the sandbox). The workflow
//! declares `result.txt` as an output, so output collection must refuse it without following it.

use hermetic_test_guests::symlink;

fn main() {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../../../../../../../../etc/passwd".to_owned());
    match symlink(&target, "/out/result.txt") {
        Ok(()) => println!("left /out/result.txt as a symlink"),
        Err(e) => {
            println!("symlink /out/result.txt: error {e}");
            std::process::exit(1);
        }
    }
}
