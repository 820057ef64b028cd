//! Lists each directory given as an argument (default `/`) recursively, sorted, with file sizes
//! and symlink targets, so that the host can assert exactly what the guest sees.

use std::fs;
use std::path::Path;

fn walk(path: &Path, depth: usize) {
    let mut entries = match fs::read_dir(path) {
        Ok(rd) => match rd.collect::<Result<Vec<_>, _>>() {
            Ok(entries) => entries,
            Err(e) => {
                println!("{}  <error: {e}>", "  ".repeat(depth));
                return;
            }
        },
        Err(e) => {
            println!(
                "{}<cannot list {}: {e}>",
                "  ".repeat(depth),
                path.display()
            );
            return;
        }
    };
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let child = path.join(entry.file_name());
        let indent = "  ".repeat(depth);
        match fs::symlink_metadata(&child) {
            Ok(meta) if meta.file_type().is_symlink() => match fs::read_link(&child) {
                Ok(target) => println!("{indent}{name} -> {}", target.display()),
                Err(e) => println!("{indent}{name} -> <error: {e}>"),
            },
            Ok(meta) if meta.is_dir() => {
                println!("{indent}{name}/");
                walk(&child, depth + 1);
            }
            Ok(meta) => println!("{indent}{name} ({} bytes)", meta.len()),
            Err(e) => println!("{indent}{name} <error: {e}>"),
        }
    }
}

fn main() {
    let mut dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        dirs.push("/".to_owned());
    }
    for dir in dirs {
        println!("{dir}");
        walk(Path::new(&dir), 1);
    }
}
