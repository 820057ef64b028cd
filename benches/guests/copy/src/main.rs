//! Copies every file under `/in` to the same relative path under `/out`: the smallest step that
//! reads a real input and writes a real output. No `/in` (a step without inputs) copies nothing.

use std::fs;
use std::io;
use std::path::Path;

fn main() -> io::Result<()> {
    let inputs = Path::new("/in");
    if !inputs.is_dir() {
        return Ok(());
    }
    copy_tree(inputs, Path::new("/out"))
}

/// Copies the regular files under `from` to `to`, creating directories as needed.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::write(&target, fs::read(entry.path())?)?;
        }
    }
    Ok(())
}
