//! `compress` — a hermetic task that zstd-compresses files, or decompresses them.
//!
//! ```text
//! compress [--level N] [--decompress] [--into DIR] [--strip N] [PATH...]
//! ```
//!
//! Each `PATH` is a file or directory inside the sandbox, such as `/in/data.csv` or
//! `/deps/build`; a relative path is taken relative to `/in`. A directory stands for every file
//! under it. With no `PATH`, every file under `/in` is processed.
//!
//! Each file is compressed to `/out/<name>.zst`, where its name is its path relative to its
//! mount: `/in/data/a.csv` becomes `/out/data/a.csv.zst`, and `/deps/build/app.wasm` becomes
//! `/out/build/app.wasm.zst`. `--strip N` removes the first `N` components of the name (so
//! `--strip 1 /deps/build` gives `/out/app.wasm.zst`), and `--into DIR` puts the outputs under
//! `/out/DIR`.
//!
//! With `--decompress` (or `-d`), each file must end in `.zst`; it is decompressed to its name
//! without `.zst`. Any zstd data is accepted (from this task, the `zstd` tool, or a library),
//! including several concatenated frames; every frame's checksum is verified.
//!
//! `--level N` takes zstd's levels, 1 to 22 (default 3), so that workflows can say what they
//! mean. The encoder is `ruzstd`, pure Rust so that the task needs no C compiler; it implements
//! one compressing level, about `zstd -1`, and every level currently uses it. The output is a
//! standard zstd frame with a content checksum, and is the same on every run.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   release-assets:
//!     task: compress
//!     depends_on: [build]
//!     args: [--strip, 1, /deps/build/app.wasm]
//!     outputs: [app.wasm.zst]
//! ```

use hermetic_sdk::select::{self as paths, Opt};
use hermetic_sdk::zstd;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use hermetic_sdk::{Error, Mounts, Result};

const USAGE: &str = "usage: compress [--level N] [--decompress] [--into DIR] [--strip N] [PATH...]";

/// zstd's default level, the one used when none is given.
const DEFAULT_LEVEL: u8 = 3;

fn main() {
    hermetic_sdk::main(|args| run(&Mounts::sandbox(), &args).map(|_| ()));
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// The zstd level asked for, 1 to 22.
    level: u8,
    /// Decompress instead of compressing.
    decompress: bool,
    /// The directory under `/out` to write into; empty for `/out` itself.
    into: PathBuf,
    /// How many leading components to remove from each name.
    strip: usize,
    /// Guest paths to process; empty means every input.
    paths: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    const OPTS: &[Opt] = &[
        Opt {
            names: &["--level"],
            value: true,
        },
        Opt {
            names: &["--into"],
            value: true,
        },
        Opt {
            names: &["--strip"],
            value: true,
        },
        Opt {
            names: &["--decompress", "-d"],
            value: false,
        },
    ];
    let parsed = paths::parse_options(args, OPTS, USAGE, "")?;
    let level = match parsed.value("--level") {
        None => DEFAULT_LEVEL,
        Some(value) => match value.parse::<u8>() {
            Ok(level @ 1..=22) => level,
            _ => {
                return Err(Error::msg(format!(
                    "--level must be a zstd level from 1 to 22, not {value:?}; {USAGE}"
                )));
            }
        },
    };
    Ok(Options {
        level,
        decompress: parsed.switch("--decompress"),
        into: match parsed.value("--into") {
            Some(value) => paths::relative_path("--into", value)?,
            None => PathBuf::new(),
        },
        strip: match parsed.value("--strip") {
            Some(value) => paths::number("--strip", value, USAGE)?,
            None => 0,
        },
        paths: parsed.paths,
    })
}

/// Compresses or decompresses as the arguments say; returns the outputs written, relative to
/// `/out`, in order.
fn run(mounts: &Mounts, args: &[String]) -> Result<Vec<PathBuf>> {
    let options = parse_args(args)?;
    let sources = paths::collect(mounts, &options.paths, options.strip)?;
    // Work out every output name first, so that a bad name fails before anything is written.
    let jobs = sources
        .iter()
        .map(|source| {
            let name = if options.decompress {
                without_zst(&source.name, &source.guest)?
            } else {
                with_zst(&source.name)
            };
            Ok((source, options.into.join(name)))
        })
        .collect::<Result<Vec<_>>>()?;
    if !options.decompress {
        hermetic_sdk::debug!(
            "level {} is encoded at ruzstd's fastest level (about zstd -1)",
            options.level
        );
    }
    let total = jobs.len() as u64;
    let mut written = Vec::with_capacity(jobs.len());
    for (done, (source, name)) in jobs.into_iter().enumerate() {
        let out = mounts.output(&name);
        if options.decompress {
            decompress_file(&source.path, &out)?;
        } else {
            compress_file(&source.path, &out)?;
        }
        written.push(name);
        hermetic_sdk::progress(done as u64 + 1, Some(total));
    }
    let verb = if options.decompress {
        "decompressed"
    } else {
        "compressed"
    };
    hermetic_sdk::info!("{verb} {total} files");
    Ok(written)
}

fn with_zst(name: &Path) -> PathBuf {
    let mut name = OsString::from(name);
    name.push(".zst");
    name.into()
}

fn without_zst(name: &Path, guest: &Path) -> Result<PathBuf> {
    let stripped = name
        .to_str()
        .and_then(|n| n.strip_suffix(".zst"))
        .filter(|n| !n.is_empty() && !n.ends_with('/'));
    match stripped {
        Some(n) => Ok(PathBuf::from(n)),
        None => Err(Error::msg(format!(
            "cannot decompress {}: its name does not end in `.zst`",
            guest.display()
        ))),
    }
}

/// Opens `from` for reading and creates `to` (and its directories) for writing.
fn open_pair(from: &Path, to: &Path) -> Result<(BufReader<File>, BufWriter<File>)> {
    let input = File::open(from).map_err(|e| Error::io("open", from, e))?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let output = File::create(to).map_err(|e| Error::io("create", to, e))?;
    Ok((
        BufReader::with_capacity(64 * 1024, input),
        BufWriter::with_capacity(64 * 1024, output),
    ))
}

fn compress_file(from: &Path, to: &Path) -> Result<()> {
    let (input, output) = open_pair(from, to)?;
    zstd::compress(input, output).map_err(|e| match e {
        zstd::StreamError::Read(e) => Error::io("read", from, e),
        zstd::StreamError::Write(e) => Error::io("write", to, e),
    })
}

fn decompress_file(from: &Path, to: &Path) -> Result<()> {
    let (input, mut output) = open_pair(from, to)?;
    hermetic_sdk::pump(
        zstd::Decoder::new(input),
        from,
        "decompress",
        &mut output,
        to,
    )?;
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
            let dir = std::env::temp_dir().join(format!(
                "hermetic-compress-test-{}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in")).unwrap();
            Self(dir)
        }
        fn put(&self, path: &str, bytes: &[u8]) {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        fn read(&self, path: &str) -> Vec<u8> {
            fs::read(self.0.join(path)).unwrap()
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("row {i},{}\n", i % 13).into_bytes())
            .collect()
    }

    #[test]
    fn parses_options() {
        assert_eq!(
            parse_args(&[]).unwrap(),
            Options {
                level: 3,
                decompress: false,
                into: PathBuf::new(),
                strip: 0,
                paths: vec![]
            }
        );
        assert_eq!(
            parse_args(&args(&[
                "-d",
                "--level=19",
                "x",
                "--strip",
                "1",
                "--into",
                "z"
            ]))
            .unwrap(),
            Options {
                level: 19,
                decompress: true,
                into: "z".into(),
                strip: 1,
                paths: args(&["x"])
            }
        );
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err().to_string();
        for bad in ["0", "23", "-1", "fast"] {
            assert_eq!(
                err(&["--level", bad]),
                format!("--level must be a zstd level from 1 to 22, not {bad:?}; {USAGE}")
            );
        }
        assert!(err(&["--level"]).starts_with("--level needs a value; usage: compress"));
        assert!(err(&["-x"]).starts_with("unknown option -x; usage: compress"));
    }

    #[test]
    fn compresses_then_decompresses_every_input() {
        let s = Scratch::new("round");
        s.put("in/a.csv", &text(5000));
        s.put("in/sub/empty", b"");
        let m = Mounts::rooted(&s.0);
        let written = run(&m, &[]).unwrap();
        assert_eq!(
            written,
            [PathBuf::from("a.csv.zst"), "sub/empty.zst".into()]
        );
        let packed = s.read("out/a.csv.zst");
        assert!(packed.len() < text(5000).len() / 2);

        // Decompress the outputs of the first run, as a dependency would see them.
        let t = Scratch::new("round2");
        t.put("deps/zip/a.csv.zst", &packed);
        t.put("deps/zip/sub/empty.zst", &s.read("out/sub/empty.zst"));
        let written = run(
            &Mounts::rooted(&t.0),
            &args(&["-d", "--strip=1", "/deps/zip"]),
        )
        .unwrap();
        assert_eq!(written, [PathBuf::from("a.csv"), "sub/empty".into()]);
        assert_eq!(t.read("out/a.csv"), text(5000));
        assert_eq!(t.read("out/sub/empty"), b"");
    }

    #[test]
    fn output_is_deterministic_and_standard() {
        let s = Scratch::new("standard");
        s.put("in/data", &text(3000));
        run(&Mounts::rooted(&s.0), &[]).unwrap();
        let first = s.read("out/data.zst");
        run(&Mounts::rooted(&s.0), &args(&["--level", "19"])).unwrap();
        assert_eq!(s.read("out/data.zst"), first);
        // The reference implementation reads it, and ours reads the reference's output.
        assert_eq!(::zstd::decode_all(&first[..]).unwrap(), text(3000));
        let reference = ::zstd::encode_all(&text(3000)[..], 19).unwrap();
        s.put("in/ref.zst", &reference);
        run(&Mounts::rooted(&s.0), &args(&["-d", "ref.zst"])).unwrap();
        assert_eq!(s.read("out/ref"), text(3000));
    }

    #[test]
    fn decompressing_needs_zst_names_and_zstd_data() {
        let s = Scratch::new("bad");
        s.put("in/plain.txt", b"hello");
        s.put("in/fake.zst", b"hello");
        let m = Mounts::rooted(&s.0);
        let err = run(&m, &args(&["-d"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot decompress {}: its name does not end in `.zst`",
                Path::new("/in/plain.txt").display()
            )
        );
        assert!(!s.0.join("out").exists(), "nothing is written");
        let err = run(&m, &args(&["-d", "fake.zst"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot decompress {}: not zstd data (bad magic number)",
                s.0.join("in/fake.zst").display()
            )
        );
    }
}
