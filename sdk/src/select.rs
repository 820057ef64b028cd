//! Which files a task works on, and what they are called.
//!
//! A file is named by its path relative to its mount: `/in/src/a.txt` is `src/a.txt`, and
//! `/deps/build/dist/app.wasm` is `build/dist/app.wasm` (the dependency's name comes first, as in
//! [`Mounts::list_deps`]). A relative argument is taken relative to `/in`. `--strip N` removes
//! the first `N` components of every name.
//!
//! The standard tasks (`copy`, `hash`, `archive`, `compress`) name files this way.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Mounts, Result};

/// One file to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its guest path, for messages: `/in/src/a.txt`.
    pub guest: PathBuf,
    /// Where it really is (the guest path itself in the sandbox).
    pub path: PathBuf,
    /// Its name: the path relative to its mount, after `--strip`.
    pub name: PathBuf,
}

/// The name of guest path `arg` relative to its mount (`/in` or `/deps`), and its normalized
/// guest path. `/in` itself is the empty name.
pub fn mount_relative(arg: &str) -> Result<(PathBuf, PathBuf)> {
    let path = Path::new(arg);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::msg(format!("path {arg:?} must not contain `..`")));
            }
        }
    }
    if !path.is_absolute() {
        let name: PathBuf = parts.iter().collect();
        return Ok((Path::new("/in").join(&name), name));
    }
    match parts.first().and_then(|p| p.to_str()) {
        Some(mount @ ("in" | "deps")) => {
            let name: PathBuf = parts[1..].iter().collect();
            Ok((Path::new("/").join(mount).join(&name), name))
        }
        _ => Err(Error::msg(format!(
            "path {arg:?} is not under /in or /deps"
        ))),
    }
}

/// Every file that `args` name (every input when there are none), sorted by name. A directory
/// stands for every file under it (recursively; see [`crate::list_files`]).
///
/// Naming the same file twice is harmless; two different files with the same name (after
/// `strip`) are an error.
pub fn collect(mounts: &Mounts, args: &[String], strip: usize) -> Result<Vec<Source>> {
    let defaults = [String::from("/in")];
    let args = if args.is_empty() { &defaults[..] } else { args };
    let mut found: BTreeMap<PathBuf, Source> = BTreeMap::new();
    for arg in args {
        let (guest, name) = mount_relative(arg)?;
        let path = mounts.resolve(&guest);
        let meta = fs::metadata(&path).map_err(|e| Error::io("read", &path, e))?;
        let files = if meta.is_dir() {
            crate::list_files(&path)?
        } else {
            vec![PathBuf::new()]
        };
        for rel in files {
            let guest = join(&guest, &rel);
            let source = Source {
                name: strip_components(&join(&name, &rel), strip, &guest)?,
                path: join(&path, &rel),
                guest,
            };
            if let Some(other) = found.get(&source.name) {
                if other.guest != source.guest {
                    return Err(Error::msg(format!(
                        "two files would both be named {}: {} and {}",
                        source.name.display(),
                        other.guest.display(),
                        source.guest.display()
                    )));
                }
                continue;
            }
            found.insert(source.name.clone(), source);
        }
    }
    Ok(found.into_values().collect())
}

/// `base/rel`, or `base` itself when `rel` is empty.
fn join(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// `name` without its first `n` components; an error (naming `guest`) if nothing is left.
pub fn strip_components(name: &Path, n: usize, guest: &Path) -> Result<PathBuf> {
    let stripped: PathBuf = name.components().skip(n).collect();
    if stripped.as_os_str().is_empty() {
        return Err(Error::msg(format!(
            "--strip {n} leaves nothing of the name of {}",
            guest.display()
        )));
    }
    Ok(stripped)
}

/// A relative path under `/out` given to option `flag`: non-empty, without `..` or a root.
pub fn relative_path(flag: &str, value: &str) -> Result<PathBuf> {
    let path = Path::new(value);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Error::msg(format!(
            "{flag} {value:?} must be a relative path under /out, without `..`"
        )));
    }
    Ok(path.components().collect())
}

/// A relative path under `/out` given in parameter `field` (a leading `/out/` is allowed):
/// non-empty, without `..` or a root.
///
/// ```
/// use std::path::Path;
/// use hermetic_sdk::select::output_param;
/// assert_eq!(output_param("output", "/out/site/a.html")?, Path::new("site/a.html"));
/// assert_eq!(
///     output_param("output", "../a").unwrap_err().to_string(),
///     "params: output \"../a\" must be a relative path under /out, without `..`"
/// );
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn output_param(field: &str, value: &str) -> Result<PathBuf> {
    let rel = value.strip_prefix("/out/").unwrap_or(value);
    relative_path(field, rel).map_err(|_| {
        Error::msg(format!(
            "params: {field} {value:?} must be a relative path under /out, without `..`"
        ))
    })
}

/// How a sandbox path is shown in messages: a relative path is under `/in`.
///
/// ```
/// assert_eq!(hermetic_sdk::select::guest_path("a.txt"), "/in/a.txt");
/// assert_eq!(hermetic_sdk::select::guest_path("/deps/b/c"), "/deps/b/c");
/// ```
pub fn guest_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/in/{path}")
    }
}

/// An option of a task's command line: its names (messages use the first) and whether it
/// takes a value (`--into DIR`, `--into=DIR`) or is a switch (`--deps`).
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub names: &'static [&'static str],
    pub value: bool,
}

/// A parsed command line: the options given, by their first name, and the paths.
#[derive(Debug, Default)]
pub struct Options {
    values: BTreeMap<&'static str, String>,
    switches: Vec<&'static str>,
    /// The arguments that are not options, in order.
    pub paths: Vec<String>,
}

impl Options {
    /// The value of option `name` (its first name), if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether switch `name` (its first name) was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }
}

/// Parses `args` against `opts`: options, then paths, in any order; `--` ends the options and
/// `-` is a path. An unknown option, an option given twice, or one without its value is an
/// error ending in `; <usage>`; `context` (such as `" for pack"`) follows the unknown option.
///
/// ```
/// use hermetic_sdk::select::{Opt, parse_options};
/// const OPTS: &[Opt] = &[
///     Opt { names: &["--into"], value: true },
///     Opt { names: &["--deps"], value: false },
/// ];
/// let args: Vec<String> = ["a", "--into=x", "--deps", "--", "-b"].map(String::from).into();
/// let o = parse_options(&args, OPTS, "usage: t", "")?;
/// assert_eq!((o.value("--into"), o.switch("--deps")), (Some("x"), true));
/// assert_eq!(o.paths, ["a", "-b"]);
/// let twice: Vec<String> = ["--into", "a", "--into=b"].map(String::from).into();
/// assert_eq!(
///     parse_options(&twice, OPTS, "usage: t", "").unwrap_err().to_string(),
///     "--into given more than once; usage: t"
/// );
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn parse_options(args: &[String], opts: &[Opt], usage: &str, context: &str) -> Result<Options> {
    let mut parsed = Options::default();
    let mut args = args.iter();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        if only_paths || arg == "-" || !arg.starts_with('-') {
            parsed.paths.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_paths = true;
            continue;
        }
        if let Some(opt) = opts
            .iter()
            .find(|o| !o.value && o.names.contains(&arg.as_str()))
        {
            parsed.switches.push(opt.names[0]);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let Some(opt) = opts.iter().find(|o| o.value && o.names.contains(&flag)) else {
            return Err(Error::msg(format!(
                "unknown option {arg}{context}; {usage}"
            )));
        };
        let name = opt.names[0];
        if parsed.values.contains_key(name) {
            return Err(Error::msg(format!("{name} given more than once; {usage}")));
        }
        let Some(value) = inline.or_else(|| args.next().cloned()) else {
            return Err(Error::msg(format!("{name} needs a value; {usage}")));
        };
        parsed.values.insert(name, value);
    }
    Ok(parsed)
}

/// A non-negative integer given to option `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, value: &str, usage: &str) -> Result<T> {
    value.parse().map_err(|_| {
        Error::msg(format!(
            "{flag} needs a non-negative integer, not {value:?}; {usage}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_to_the_mount() {
        let named = |arg: &str| mount_relative(arg).unwrap();
        assert_eq!(
            named("/in/a/b.txt"),
            ("/in/a/b.txt".into(), "a/b.txt".into())
        );
        assert_eq!(named("a/./b.txt"), ("/in/a/b.txt".into(), "a/b.txt".into()));
        assert_eq!(
            named("/deps/build/x"),
            ("/deps/build/x".into(), "build/x".into())
        );
        assert_eq!(named("/in"), ("/in".into(), PathBuf::new()));
        assert_eq!(named("/deps/"), ("/deps".into(), PathBuf::new()));
        let err = |arg: &str| mount_relative(arg).unwrap_err().to_string();
        assert_eq!(err("/out/x"), "path \"/out/x\" is not under /in or /deps");
        assert_eq!(err("/"), "path \"/\" is not under /in or /deps");
        assert_eq!(
            err("/in/../etc"),
            "path \"/in/../etc\" must not contain `..`"
        );
    }

    #[test]
    fn strips_components() {
        let g = Path::new("/deps/b/x/y");
        assert_eq!(
            strip_components(Path::new("b/x/y"), 0, g).unwrap(),
            Path::new("b/x/y")
        );
        assert_eq!(
            strip_components(Path::new("b/x/y"), 2, g).unwrap(),
            Path::new("y")
        );
        assert_eq!(
            strip_components(Path::new("b/x/y"), 3, g)
                .unwrap_err()
                .to_string(),
            "--strip 3 leaves nothing of the name of /deps/b/x/y"
        );
    }

    #[test]
    fn relative_paths_stay_under_out() {
        assert_eq!(relative_path("--into", "a/./b").unwrap(), Path::new("a/b"));
        for bad in ["", ".", "/x", "../x", "a/../../x"] {
            assert_eq!(
                relative_path("--into", bad).unwrap_err().to_string(),
                format!("--into {bad:?} must be a relative path under /out, without `..`")
            );
        }
    }
}
