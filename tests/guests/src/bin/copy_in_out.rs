//! Copies every file under `/in` (recursively, sorted) to `/out` at the same relative path, and
//! prints the list.

use std::fs;
use std::path::{Path, PathBuf};

fn walk(root: &Path, rel: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            walk(root, &rel, files)?;
        } else {
            files.push(rel);
        }
    }
    Ok(())
}

fn main() {
    let mut files = Vec::new();
    if let Err(e) = walk(Path::new("/in"), Path::new(""), &mut files) {
        eprintln!("copy_in_out: cannot list /in: {e}");
        std::process::exit(1);
    }
    for rel in &files {
        let dst = Path::new("/out").join(rel);
        if let Some(parent) = dst.parent()
            && let Err(e) = fs::create_dir_all(parent)
        {
            eprintln!("copy_in_out: cannot create {}: {e}", parent.display());
            std::process::exit(1);
        }
        match fs::copy(Path::new("/in").join(rel), &dst) {
            Ok(n) => println!("copied {} ({n} bytes)", rel.display()),
            Err(e) => {
                eprintln!("copy_in_out: cannot copy {}: {e}", rel.display());
                std::process::exit(1);
            }
        }
    }
    println!("{} files", files.len());
}
