//! `concat` — a hermetic task that concatenates files into one output.
//!
//! ```text
//! concat [--output FILE] [PATH...]
//! ```
//!
//! Each `PATH` is a path inside the sandbox, such as `/in/a.txt` or `/deps/compile/x.o`; a
//! relative path is taken relative to `/in`. The files are concatenated in the order given.
//! With no `PATH`, every file under `/in` is concatenated, in sorted order (recursively, sorted
//! component-wise, so the result never depends on the file system).
//!
//! The result is written to `/out/FILE` (default `/out/concat.txt`); `FILE` must be a relative
//! path without `..`, and may contain directories, which are created.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: bundle
//!     task: concat
//!     inputs: [header.txt, body.txt]
//!     args: [--output, bundle.txt, /in/header.txt, /in/body.txt]
//!     outputs: [bundle.txt]
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use hermetic_sdk::{Error, Mounts, Result};

/// The default output file, relative to `/out`.
const DEFAULT_OUTPUT: &str = "concat.txt";

const USAGE: &str = "usage: concat [--output FILE] [PATH...]";

fn main() {
    hermetic_sdk::main(|args| run(&Mounts::sandbox(), &args).map(|_| ()));
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// The output file, relative to `/out`.
    output: PathBuf,
    /// Guest paths to concatenate, in order; empty means "every input, sorted".
    files: Vec<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut output = None;
    let mut files = Vec::new();
    let mut args = args.iter();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        if only_paths {
            files.push(PathBuf::from(arg));
        } else if arg == "--" {
            only_paths = true;
        } else if arg == "--output" || arg == "-o" {
            let Some(value) = args.next() else {
                return Err(Error::msg(format!("{arg} needs a file name; {USAGE}")));
            };
            set_output(&mut output, value)?;
        } else if let Some(value) = arg.strip_prefix("--output=") {
            set_output(&mut output, value)?;
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(Error::msg(format!("unknown option {arg}; {USAGE}")));
        } else {
            files.push(PathBuf::from(arg));
        }
    }
    Ok(Options {
        output: output.unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT)),
        files,
    })
}

fn set_output(slot: &mut Option<PathBuf>, value: &str) -> Result<()> {
    if slot.is_some() {
        return Err(Error::msg(format!(
            "--output given more than once; {USAGE}"
        )));
    }
    let path = Path::new(value);
    let plain = !value.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Error::msg(format!(
            "--output {value:?} must be a relative file name under /out, without `..`"
        )));
    }
    *slot = Some(path.to_path_buf());
    Ok(())
}

/// Concatenates as the arguments say; returns the host path written and its size.
fn run(mounts: &Mounts, args: &[String]) -> Result<(PathBuf, u64)> {
    let options = parse_args(args)?;
    let sources: Vec<PathBuf> = if options.files.is_empty() {
        mounts
            .list_inputs()?
            .into_iter()
            .map(|rel| mounts.input(rel))
            .collect()
    } else {
        options.files.iter().map(|p| mounts.resolve(p)).collect()
    };

    let out_path = mounts.output(&options.output);
    if let Some(parent) = out_path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let file = File::create(&out_path).map_err(|e| Error::io("create", &out_path, e))?;
    let mut out = BufWriter::new(file);
    let mut total = 0;
    for source in &sources {
        total += append(source, &mut out, &out_path)?;
    }
    out.flush().map_err(|e| Error::io("write", &out_path, e))?;
    Ok((out_path, total))
}

/// Copies one file onto the output, naming whichever side failed.
fn append(source: &Path, out: &mut impl Write, out_path: &Path) -> Result<u64> {
    let input = File::open(source).map_err(|e| Error::io("open", source, e))?;
    hermetic_sdk::pump(input, source, "read", out, out_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "hermetic-concat-test-{}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in/sub")).unwrap();
            fs::create_dir_all(dir.join("deps/lib")).unwrap();
            fs::write(dir.join("in/b.txt"), "B\n").unwrap();
            fs::write(dir.join("in/a.txt"), "A\n").unwrap();
            fs::write(dir.join("in/sub/c.txt"), "C\n").unwrap();
            fs::write(dir.join("deps/lib/x"), "X\n").unwrap();
            Self(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_options() {
        assert_eq!(
            parse_args(&args(&[])).unwrap(),
            Options {
                output: "concat.txt".into(),
                files: vec![]
            }
        );
        assert_eq!(
            parse_args(&args(&["/in/a", "--output", "o/x.txt", "/deps/d/y"])).unwrap(),
            Options {
                output: "o/x.txt".into(),
                files: vec!["/in/a".into(), "/deps/d/y".into()]
            }
        );
        assert_eq!(
            parse_args(&args(&["--output=x", "--", "--output"])).unwrap(),
            Options {
                output: "x".into(),
                files: vec!["--output".into()]
            }
        );
    }

    #[test]
    fn rejects_bad_options() {
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err().to_string();
        assert_eq!(
            err(&["--output"]),
            "--output needs a file name; usage: concat [--output FILE] [PATH...]"
        );
        assert!(err(&["--output", "../x"]).contains("without `..`"));
        assert!(err(&["--output", "/etc/x"]).contains("relative file name"));
        assert!(err(&["--output", "."]).contains("relative file name"));
        assert!(err(&["-o", "a", "-o", "b"]).contains("more than once"));
        assert!(err(&["--verbose"]).starts_with("unknown option --verbose"));
    }

    #[test]
    fn concatenates_named_files_in_order() {
        let s = Scratch::new("named");
        let m = Mounts::rooted(&s.0);
        let (path, size) = run(&m, &args(&["/deps/lib/x", "/in/b.txt", "a.txt"])).unwrap();
        assert_eq!(path, s.0.join("out/concat.txt"));
        assert_eq!(fs::read(&path).unwrap(), b"X\nB\nA\n");
        assert_eq!(size, 6);
    }

    #[test]
    fn concatenates_all_inputs_sorted_when_no_paths() {
        let s = Scratch::new("all");
        let m = Mounts::rooted(&s.0);
        let (path, _) = run(&m, &args(&["--output", "nested/all.txt"])).unwrap();
        assert_eq!(path, s.0.join("out/nested/all.txt"));
        // Sorted component-wise: "a.txt" < "b.txt" < "sub/c.txt".
        assert_eq!(fs::read(&path).unwrap(), b"A\nB\nC\n");
    }

    #[test]
    fn missing_file_error_names_it() {
        let s = Scratch::new("missing");
        let m = Mounts::rooted(&s.0);
        let err = run(&m, &args(&["/in/nope.txt"])).unwrap_err();
        assert_eq!(err.path(), Some(s.0.join("in/nope.txt").as_path()));
        assert!(err.to_string().starts_with("cannot open "), "{err}");
    }
}
