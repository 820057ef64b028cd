//! `copy` — a hermetic task that copies inputs or dependency outputs into `/out`.
//!
//! ```text
//! copy [--into DIR] [--strip N] [PATH...]
//! ```
//!
//! Each `PATH` is a file or directory inside the sandbox, such as `/in/assets` or
//! `/deps/build/dist`; a relative path is taken relative to `/in`. A directory stands for every
//! file under it. With no `PATH`, every file under `/in` is copied.
//!
//! A file keeps its path relative to its mount: `/in/assets/logo.png` is copied to
//! `/out/assets/logo.png`, and `/deps/build/dist/app.js` to `/out/build/dist/app.js` (the
//! dependency's name comes first). `--strip N` removes the first `N` components of that path
//! (so `--strip 2 /deps/build/dist` copies the contents of `dist`), and `--into DIR` puts
//! everything under `/out/DIR`. Two different files that would land on the same path are an
//! error, as is a file whose path `--strip` would leave empty.
//!
//! Only contents are copied: outputs get the sandbox's fixed permissions and no timestamps
//! worth keeping, so the result depends on nothing but the files' bytes.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   site:
//!     task: copy
//!     depends_on: [build]
//!     inputs: ["static/**"]
//!     args: [--into, public, --strip, 1, /in/static, /deps/build/dist]
//!     outputs: [public/]
//! ```

use hermetic_sdk::select::{self as paths, Opt};

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use hermetic_sdk::{Error, Mounts, Result};

const USAGE: &str = "usage: copy [--into DIR] [--strip N] [PATH...]";

fn main() {
    hermetic_sdk::main(|args| run(&Mounts::sandbox(), &args).map(|_| ()));
}

/// What the arguments ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    /// The directory under `/out` to copy into; empty for `/out` itself.
    into: PathBuf,
    /// How many leading components to remove from each file's path.
    strip: usize,
    /// Guest paths to copy; empty means every input.
    paths: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    const OPTS: &[Opt] = &[
        Opt {
            names: &["--into"],
            value: true,
        },
        Opt {
            names: &["--strip"],
            value: true,
        },
    ];
    let parsed = paths::parse_options(args, OPTS, USAGE, "")?;
    let mut options = Options {
        paths: parsed.paths.clone(),
        ..Options::default()
    };
    if let Some(into) = parsed.value("--into") {
        options.into = paths::relative_path("--into", into)?;
    }
    if let Some(strip) = parsed.value("--strip") {
        options.strip = paths::number("--strip", strip, USAGE)?;
    }
    Ok(options)
}

/// Copies as the arguments say; returns the paths written, relative to `/out`, sorted.
fn run(mounts: &Mounts, args: &[String]) -> Result<Vec<PathBuf>> {
    let options = parse_args(args)?;
    let sources = paths::collect(mounts, &options.paths, options.strip)?;
    let total = sources.len() as u64;
    let mut written = Vec::with_capacity(sources.len());
    for (done, source) in sources.iter().enumerate() {
        let rel = options.into.join(&source.name);
        copy_file(&source.path, &mounts.output(&rel))?;
        written.push(rel);
        hermetic_sdk::progress(done as u64 + 1, Some(total));
    }
    hermetic_sdk::info!("copied {total} files");
    Ok(written)
}

/// Copies one file's contents, creating the destination's directories.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let input = File::open(from).map_err(|e| Error::io("open", from, e))?;
    let mut output = File::create(to).map_err(|e| Error::io("create", to, e))?;
    hermetic_sdk::pump(input, from, "read", &mut output, to)?;
    output.flush().map_err(|e| Error::io("write", to, e))
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
            let dir = std::env::temp_dir()
                .join(format!("hermetic-copy-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            for (path, text) in [
                ("in/b.txt", "B"),
                ("in/a/x.txt", "AX"),
                ("deps/build/dist/app.js", "APP"),
                ("deps/build/dist/css/site.css", "CSS"),
                ("deps/build/log.txt", "LOG"),
            ] {
                let path = dir.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            Self(dir)
        }
        fn out(&self) -> Vec<(String, String)> {
            let out = self.0.join("out");
            hermetic_sdk::list_files(&out)
                .unwrap()
                .into_iter()
                .map(|rel| {
                    let text = fs::read_to_string(out.join(&rel)).unwrap();
                    (rel.display().to_string(), text)
                })
                .collect()
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_options() {
        assert_eq!(parse_args(&[]).unwrap(), Options::default());
        assert_eq!(
            parse_args(&args(&[
                "--into=pub/x",
                "/deps/b",
                "--strip",
                "2",
                "--",
                "--x"
            ]))
            .unwrap(),
            Options {
                into: "pub/x".into(),
                strip: 2,
                paths: args(&["/deps/b", "--x"]),
            }
        );
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err().to_string();
        assert_eq!(
            err(&["--strip"]),
            "--strip needs a value; usage: copy [--into DIR] [--strip N] [PATH...]"
        );
        assert_eq!(
            err(&["--strip", "-1"]),
            "--strip needs a non-negative integer, not \"-1\"; \
             usage: copy [--into DIR] [--strip N] [PATH...]"
        );
        assert!(err(&["--into", "../x"]).contains("without `..`"));
        assert!(err(&["--into", "a", "--into=b"]).starts_with("--into given more than once"));
        assert!(err(&["-v"]).starts_with("unknown option -v; usage: copy"));
    }

    #[test]
    fn copies_every_input_by_default() {
        let s = Scratch::new("all");
        let written = run(&Mounts::rooted(&s.0), &[]).unwrap();
        assert_eq!(written, [PathBuf::from("a/x.txt"), "b.txt".into()]);
        assert_eq!(s.out(), pairs(&[("a/x.txt", "AX"), ("b.txt", "B")]));
    }

    #[test]
    fn copies_dependency_outputs_stripped_into_a_directory() {
        let s = Scratch::new("deps");
        let m = Mounts::rooted(&s.0);
        // `b.txt` has only one component: nothing is left after `--strip 2`, and nothing is
        // written.
        let err = run(&m, &args(&["--strip", "2", "/deps/build/dist", "b.txt"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("--strip 2 leaves nothing of the name of /in/b.txt")
        );
        assert!(!s.0.join("out").exists());
        run(
            &m,
            &args(&["--into", "pub", "--strip", "2", "/deps/build/dist"]),
        )
        .unwrap();
        assert_eq!(
            s.out(),
            pairs(&[("pub/app.js", "APP"), ("pub/css/site.css", "CSS")])
        );
    }

    #[test]
    fn keeps_the_dependency_name_without_strip() {
        let s = Scratch::new("keep");
        run(&Mounts::rooted(&s.0), &args(&["/deps", "/in/a"])).unwrap();
        assert_eq!(
            s.out(),
            pairs(&[
                ("a/x.txt", "AX"),
                ("build/dist/app.js", "APP"),
                ("build/dist/css/site.css", "CSS"),
                ("build/log.txt", "LOG"),
            ])
        );
    }

    #[test]
    fn colliding_names_are_an_error() {
        let s = Scratch::new("collide");
        fs::write(s.0.join("deps/build/x.txt"), "other").unwrap();
        let err = run(
            &Mounts::rooted(&s.0),
            &args(&["--strip", "1", "/in/a", "/deps/build"]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "two files would both be named x.txt: /in/a/x.txt and /deps/build/x.txt"
        );
    }

    #[test]
    fn missing_path_error_names_it() {
        let s = Scratch::new("missing");
        let err = run(&Mounts::rooted(&s.0), &args(&["/deps/nope"])).unwrap_err();
        assert_eq!(err.path(), Some(s.0.join("deps/nope").as_path()));
    }
}
