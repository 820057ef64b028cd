//! `hash` — a hermetic task that writes a BLAKE3 manifest of files, in `b3sum` format.
//!
//! ```text
//! hash [--output NAME] [--deps] [--strip N] [PATH...]
//! ```
//!
//! Each `PATH` is a file or directory inside the sandbox, such as `/in/src` or `/deps/build`; a
//! relative path is taken relative to `/in`. A directory stands for every file under it. With
//! no `PATH`, every file under `/in` is hashed; `--deps` adds every file under `/deps`.
//!
//! The manifest is written to `/out/NAME` (default `/out/MANIFEST.b3`): one line per file,
//! sorted by path, exactly as `b3sum` prints them (so `b3sum --check` verifies it where the paths
//! resolve). For inputs
//! `README` (`hello\n`) and `src/main.rs` (`fn main() {}\n`):
//!
//! ```text
//! 8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99  README
//! 2d1ebfa706ba230165250f744796a92accba5e1b6fa357983b65319da33f8e93  src/main.rs
//! ```
//!
//! A file is named by its path relative to its mount: `/in/sub/b.txt` is `sub/b.txt`, and
//! `/deps/build/app.wasm` is `build/app.wasm`. `--strip N` removes the first `N` components of
//! every name (`--strip 1 /deps/build` lists `app.wasm`). Two different files with the same
//! name are an error. As in `b3sum`, a name containing a backslash or a newline is escaped
//! (`\\`, `\n`) and its line starts with a backslash.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   checksums:
//!     task: hash
//!     depends_on: [build]
//!     args: [--output, SHA.b3, --strip, 1, /deps/build]
//!     outputs: [SHA.b3]
//! ```

use hermetic_sdk::select::{self as paths, Opt};

use std::fs::File;
use std::path::{Path, PathBuf};

use hermetic_sdk::{Error, Mounts, Result};

/// The default manifest, relative to `/out`.
const DEFAULT_OUTPUT: &str = "MANIFEST.b3";

const USAGE: &str = "usage: hash [--output NAME] [--deps] [--strip N] [PATH...]";

fn main() {
    hermetic_sdk::main(|args| run(&Mounts::sandbox(), &args).map(|_| ()));
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// The manifest, relative to `/out`.
    output: PathBuf,
    /// Whether to add every file under `/deps`.
    deps: bool,
    /// How many leading components to remove from each name.
    strip: usize,
    /// Guest paths to hash; empty means every input.
    paths: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    const OPTS: &[Opt] = &[
        Opt {
            names: &["--output", "-o"],
            value: true,
        },
        Opt {
            names: &["--strip"],
            value: true,
        },
        Opt {
            names: &["--deps"],
            value: false,
        },
    ];
    let parsed = paths::parse_options(args, OPTS, USAGE, "")?;
    Ok(Options {
        output: match parsed.value("--output") {
            Some(value) => paths::relative_path("--output", value)?,
            None => PathBuf::from(DEFAULT_OUTPUT),
        },
        deps: parsed.switch("--deps"),
        strip: match parsed.value("--strip") {
            Some(value) => paths::number("--strip", value, USAGE)?,
            None => 0,
        },
        paths: parsed.paths,
    })
}

/// Hashes as the arguments say; returns the manifest's text.
fn run(mounts: &Mounts, args: &[String]) -> Result<String> {
    let options = parse_args(args)?;
    let mut paths = options.paths.clone();
    if options.deps {
        if paths.is_empty() {
            paths.push("/in".into());
        }
        // A step without dependencies may have no `/deps` at all: then there is nothing to add.
        if mounts.resolve("/deps").exists() {
            paths.push("/deps".into());
        }
    }
    let sources = paths::collect(mounts, &paths, options.strip)?;
    let total = sources.len() as u64;
    let mut manifest = String::new();
    for (done, source) in sources.iter().enumerate() {
        let hash = hash_file(&source.path)?;
        manifest.push_str(&manifest_line(&hash, &source.name, &source.guest)?);
        hermetic_sdk::progress(done as u64 + 1, Some(total));
    }
    mounts.write_output(&options.output, &manifest)?;
    hermetic_sdk::info!("hashed {total} files");
    Ok(manifest)
}

fn hash_file(path: &Path) -> Result<blake3::Hash> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(file)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(hasher.finalize())
}

/// One line of the manifest, as `b3sum` prints it (escaping `\` and newlines in the name).
fn manifest_line(hash: &blake3::Hash, name: &Path, guest: &Path) -> Result<String> {
    let Some(name) = name.to_str() else {
        return Err(Error::msg(format!(
            "the name of {} is not valid UTF-8",
            guest.display()
        )));
    };
    let escaped = name.contains(['\\', '\n']);
    let name = if escaped {
        name.replace('\\', "\\\\").replace('\n', "\\n")
    } else {
        name.to_string()
    };
    let prefix = if escaped { "\\" } else { "" };
    Ok(format!("{prefix}{}  {name}\n", hash.to_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("hermetic-hash-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            for (path, text) in [
                ("in/b.txt", "B"),
                ("in/a/x.txt", "AX"),
                ("deps/build/app.wasm", "APP"),
            ] {
                let path = dir.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            Self(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn line(contents: &str, name: &str) -> String {
        format!("{}  {name}\n", blake3::hash(contents.as_bytes()).to_hex())
    }

    #[test]
    fn parses_options() {
        assert_eq!(
            parse_args(&[]).unwrap(),
            Options {
                output: DEFAULT_OUTPUT.into(),
                deps: false,
                strip: 0,
                paths: vec![],
            }
        );
        assert_eq!(
            parse_args(&args(&["-o", "s/x.b3", "--deps", "--strip=1", "/in/a"])).unwrap(),
            Options {
                output: "s/x.b3".into(),
                deps: true,
                strip: 1,
                paths: args(&["/in/a"]),
            }
        );
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err().to_string();
        assert_eq!(
            err(&["--output"]),
            "--output needs a value; usage: hash [--output NAME] [--deps] [--strip N] [PATH...]"
        );
        assert!(err(&["--output", "/x"]).contains("relative path under /out"));
        assert!(err(&["--strip", "x"]).starts_with("--strip needs a non-negative integer"));
        assert!(err(&["--check"]).starts_with("unknown option --check; usage: hash"));
    }

    #[test]
    fn hashes_every_input_sorted() {
        let s = Scratch::new("inputs");
        let m = Mounts::rooted(&s.0);
        let manifest = run(&m, &[]).unwrap();
        assert_eq!(manifest, line("AX", "a/x.txt") + &line("B", "b.txt"));
        assert_eq!(
            fs::read_to_string(s.0.join("out/MANIFEST.b3")).unwrap(),
            manifest
        );
    }

    #[test]
    fn adds_dependencies() {
        let s = Scratch::new("deps");
        let m = Mounts::rooted(&s.0);
        let manifest = run(&m, &args(&["--deps", "--output", "all.b3"])).unwrap();
        assert_eq!(
            manifest,
            line("AX", "a/x.txt") + &line("B", "b.txt") + &line("APP", "build/app.wasm")
        );
        assert_eq!(
            fs::read_to_string(s.0.join("out/all.b3")).unwrap(),
            manifest
        );
        // Without a `/deps`, `--deps` adds nothing.
        fs::remove_dir_all(s.0.join("deps")).unwrap();
        assert_eq!(
            run(&m, &args(&["--deps", "b.txt"])).unwrap(),
            line("B", "b.txt")
        );
    }

    #[test]
    fn strips_names() {
        let s = Scratch::new("strip");
        let m = Mounts::rooted(&s.0);
        let manifest = run(&m, &args(&["--strip", "1", "/deps/build"])).unwrap();
        assert_eq!(manifest, line("APP", "app.wasm"));
    }

    #[test]
    fn escapes_names_like_b3sum() {
        let hash = blake3::hash(b"");
        let guest = Path::new("/in/x");
        assert_eq!(
            manifest_line(&hash, Path::new("a\\b\nc"), guest).unwrap(),
            format!("\\{}  a\\\\b\\nc\n", hash.to_hex())
        );
        assert_eq!(
            manifest_line(&hash, Path::new("plain name"), guest).unwrap(),
            format!("{}  plain name\n", hash.to_hex())
        );
    }
}
