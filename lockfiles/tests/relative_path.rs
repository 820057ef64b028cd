//! Writing through a bare file name, whose `Path::parent` is empty. This changes the working
//! directory, so it is the only test in its process.

use std::env;
use std::fs;
use std::path::Path;

use hermetic_lockfile::{FILE_NAME, Lockfile};

#[test]
fn write_if_changed_accepts_a_bare_file_name() {
    let dir = tempfile::tempdir().unwrap();
    env::set_current_dir(dir.path()).unwrap();
    let file = Path::new(FILE_NAME);

    let lockfile = Lockfile::new();
    assert!(lockfile.write_if_changed(file).unwrap());
    assert!(!lockfile.write_if_changed(file).unwrap());
    assert_eq!(Lockfile::read(file).unwrap(), Some(lockfile.clone()));
    assert_eq!(
        fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
        lockfile.to_toml()
    );
}
