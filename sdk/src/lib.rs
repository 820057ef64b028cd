//! The guest side of hermetic: helpers for tasks that run in the WASI sandbox.
//!
//! A hermetic step is a WASI command (compiled for `wasm32-wasip1`). Inside the sandbox it sees
//! exactly four directories:
//!
//! | guest path | contents | access |
//! |---|---|---|
//! | [`IN`] (`/in`) | the step's declared inputs, at their paths relative to the workflow file | read-only |
//! | [`DEPS`] (`/deps/<name>`) | the declared outputs of dependency `<name>` | read-only |
//! | [`OUT`] (`/out`) | empty; the step's declared outputs are collected from here | read-write |
//! | [`TMP`] (`/tmp`) | empty scratch space, deleted afterwards | read-write |
//!
//! The free functions ([`input`], [`read_input`], [`write_output`], [`list_inputs`], …) work on
//! those sandbox paths. The same operations exist as methods on [`Mounts`], which can also be
//! rooted in an ordinary host directory ([`Mounts::rooted`]) so that a task's logic can be unit
//! tested natively, without a sandbox.
//!
//! Every I/O error is an [`Error`] whose message names the path involved, and [`main`] turns an
//! error into `error: …` on stderr and exit status 1.
//!
//! # Example
//!
//! A task that upper-cases every input into `/out`:
//!
//! ```no_run
//! // src/main.rs of the task crate, inside `fn main()`:
//! hermetic_sdk::main(|_args| {
//!     for rel in hermetic_sdk::list_inputs()? {
//!         let text = hermetic_sdk::read_input(&rel)?;
//!         hermetic_sdk::write_output(&rel, &text.to_ascii_uppercase())?;
//!     }
//!     Ok(())
//! });
//! ```
//!
//! The crate has no dependencies, so guest builds stay fast.

mod host;
#[cfg(feature = "params")]
mod params;
pub mod select;
#[cfg(feature = "zstd")]
pub mod zstd;

pub use host::{Level, heartbeat, log, progress};
#[cfg(feature = "params")]
pub use params::{PARAMS_ENV, main_with_params, params, params_from};

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Where the step's declared inputs are mounted (read-only).
pub const IN: &str = "/in";
/// Where the step's declared outputs must be written (read-write, empty at start).
pub const OUT: &str = "/out";
/// Where dependency `<name>`'s outputs are mounted, as `/deps/<name>` (read-only).
pub const DEPS: &str = "/deps";
/// Scratch space (read-write, empty at start, deleted after the step).
pub const TMP: &str = "/tmp";

/// A `Result` whose error is the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a task: an I/O failure that names its path, or a plain message.
///
/// ```
/// let err = hermetic_sdk::read("/definitely/not/here.txt").unwrap_err();
/// assert!(err.to_string().starts_with("cannot read /definitely/not/here.txt: "));
/// assert_eq!(err.path(), Some(std::path::Path::new("/definitely/not/here.txt")));
///
/// let err = hermetic_sdk::Error::msg("expected one argument");
/// assert_eq!(err.to_string(), "expected one argument");
/// ```
#[derive(Debug)]
pub struct Error {
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    Message(String),
}

impl Error {
    /// An error with a plain message, e.g. for bad arguments.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            repr: Repr::Message(message.to_string()),
        }
    }

    /// An I/O error while performing `op` (a verb such as `"read"`) on `path`.
    ///
    /// ```
    /// use std::io;
    /// let err = hermetic_sdk::Error::io("open", "/in/a.txt", io::Error::other("boom"));
    /// assert_eq!(err.to_string(), "cannot open /in/a.txt: boom");
    /// ```
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            repr: Repr::Io {
                op,
                path: path.into(),
                source,
            },
        }
    }

    /// The path the error is about, if it is an I/O error.
    pub fn path(&self) -> Option<&Path> {
        match &self.repr {
            Repr::Io { path, .. } => Some(path),
            Repr::Message(_) => None,
        }
    }

    /// The underlying I/O error kind, if it is an I/O error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match &self.repr {
            Repr::Io { source, .. } => Some(source.kind()),
            Repr::Message(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            Repr::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::Io { source, .. } => Some(source),
            Repr::Message(_) => None,
        }
    }
}

/// The four mount points a task sees, either the real sandbox ones or rooted in a host
/// directory for native tests.
///
/// ```
/// use std::path::Path;
/// let sandbox = hermetic_sdk::Mounts::sandbox();
/// assert_eq!(sandbox.input("a/b.txt"), Path::new("/in/a/b.txt"));
///
/// let test = hermetic_sdk::Mounts::rooted("/tmp/fake");
/// assert_eq!(test.input("a/b.txt"), Path::new("/tmp/fake/in/a/b.txt"));
/// assert_eq!(test.resolve("/deps/lib/x.o"), Path::new("/tmp/fake/deps/lib/x.o"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounts {
    root: PathBuf,
}

impl Default for Mounts {
    fn default() -> Self {
        Self::sandbox()
    }
}

impl Mounts {
    /// The real mount points: `/in`, `/out`, `/deps`, `/tmp`.
    pub fn sandbox() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// Mount points under a host directory: `<root>/in`, `<root>/out`, `<root>/deps`,
    /// `<root>/tmp`. Use this to unit-test a task's logic natively.
    pub fn rooted(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The host directory that stands for `/` (which is `/` itself in the sandbox).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a guest path such as `/in/a.txt` or `/deps/x/y` to where it really is. In the
    /// sandbox this is the identity; under [`Mounts::rooted`] the path is re-rooted. A
    /// relative path is taken relative to `/in`.
    pub fn resolve(&self, guest_path: impl AsRef<Path>) -> PathBuf {
        let guest_path = guest_path.as_ref();
        if guest_path.is_absolute() {
            join_relative(&self.root, guest_path)
        } else {
            self.input(guest_path)
        }
    }

    /// The path of input `rel` (under `/in`). A leading `/` in `rel` is ignored.
    pub fn input(&self, rel: impl AsRef<Path>) -> PathBuf {
        join_relative(&self.root.join("in"), rel.as_ref())
    }

    /// The path of output `rel` (under `/out`). A leading `/` in `rel` is ignored.
    pub fn output(&self, rel: impl AsRef<Path>) -> PathBuf {
        join_relative(&self.root.join("out"), rel.as_ref())
    }

    /// The path of `rel` inside dependency `name`'s outputs (`/deps/<name>/<rel>`).
    pub fn dep(&self, name: &str, rel: impl AsRef<Path>) -> PathBuf {
        join_relative(
            &join_relative(&self.root.join("deps"), Path::new(name)),
            rel.as_ref(),
        )
    }

    /// The path of `rel` in the scratch directory (under `/tmp`).
    pub fn tmp(&self, rel: impl AsRef<Path>) -> PathBuf {
        join_relative(&self.root.join("tmp"), rel.as_ref())
    }

    /// Reads a file given by its guest path (see [`Mounts::resolve`]).
    pub fn read(&self, guest_path: impl AsRef<Path>) -> Result<Vec<u8>> {
        read(self.resolve(guest_path))
    }

    /// Reads input `rel` (a path relative to `/in`).
    pub fn read_input(&self, rel: impl AsRef<Path>) -> Result<Vec<u8>> {
        read(self.input(rel))
    }

    /// Writes output `rel` (relative to `/out`), creating its parent directories.
    pub fn write_output(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<()> {
        write_creating_parents(&self.output(rel), bytes.as_ref())
    }

    /// Every input file, as paths relative to `/in`, recursively, sorted (component-wise,
    /// so the order is the same on every run). See [`list_files`] for what counts as a file.
    pub fn list_inputs(&self) -> Result<Vec<PathBuf>> {
        list_files(self.root.join("in"))
    }

    /// Every file of every dependency, as paths relative to `/deps` (so they start with the
    /// dependency's name), recursively and sorted. An absent `/deps` gives an empty list.
    pub fn list_deps(&self) -> Result<Vec<PathBuf>> {
        let deps = self.root.join("deps");
        match fs::symlink_metadata(&deps) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("read", deps, e)),
            Ok(_) => list_files(deps),
        }
    }
}

/// Joins `rel` onto `base`, dropping any root or prefix of `rel` so that the result always
/// stays under `base` lexically (`..` components are kept; the sandbox confines them).
fn join_relative(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for component in rel.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => out.push(".."),
            Component::Normal(part) => out.push(part),
        }
    }
    out
}

fn write_creating_parents(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    fs::write(path, bytes).map_err(|e| Error::io("write", path, e))
}

/// The path of input `rel` in the sandbox: `/in/<rel>`.
///
/// ```
/// assert_eq!(hermetic_sdk::input("src/a.txt"), std::path::Path::new("/in/src/a.txt"));
/// ```
pub fn input(rel: impl AsRef<Path>) -> PathBuf {
    Mounts::sandbox().input(rel)
}

/// The path of output `rel` in the sandbox: `/out/<rel>`.
///
/// ```
/// assert_eq!(hermetic_sdk::output("report.txt"), std::path::Path::new("/out/report.txt"));
/// ```
pub fn output(rel: impl AsRef<Path>) -> PathBuf {
    Mounts::sandbox().output(rel)
}

/// The path of `rel` in dependency `name`'s outputs: `/deps/<name>/<rel>`.
///
/// ```
/// let path = hermetic_sdk::dep("build", "app.wasm");
/// assert_eq!(path, std::path::Path::new("/deps/build/app.wasm"));
/// ```
pub fn dep(name: &str, rel: impl AsRef<Path>) -> PathBuf {
    Mounts::sandbox().dep(name, rel)
}

/// Reads any file; an error names the path.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// Reads input `rel` from `/in`.
///
/// ```no_run
/// let bytes = hermetic_sdk::read_input("config.json")?; // reads /in/config.json
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn read_input(rel: impl AsRef<Path>) -> Result<Vec<u8>> {
    Mounts::sandbox().read_input(rel)
}

/// Writes `bytes` to `/out/<rel>`, creating parent directories.
///
/// ```no_run
/// hermetic_sdk::write_output("reports/summary.txt", "ok\n")?;
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn write_output(rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<()> {
    Mounts::sandbox().write_output(rel, bytes)
}

/// Every file under `/in`, relative to `/in`, recursively and sorted.
pub fn list_inputs() -> Result<Vec<PathBuf>> {
    Mounts::sandbox().list_inputs()
}

/// Every file under `/deps`, relative to `/deps`, recursively and sorted.
pub fn list_deps() -> Result<Vec<PathBuf>> {
    Mounts::sandbox().list_deps()
}

/// Lists the files under `dir` recursively, as paths relative to `dir`, sorted component-wise
/// (`a/b` sorts before `a.txt`, and the order never depends on the file system).
///
/// Regular files are listed, and symbolic links that point to regular files. Directories are
/// descended into; symbolic links to directories are not followed (so there are no cycles).
///
/// ```no_run
/// for rel in hermetic_sdk::list_files("/deps/compile")? {
///     println!("{}", rel.display());
/// }
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn list_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let entries = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", &dir, e))?;
        let rel = rel.join(entry.file_name());
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("inspect", &path, e))?;
        if file_type.is_dir() {
            walk(root, &rel, out)?;
        } else if file_type.is_file() {
            out.push(rel);
        } else if file_type.is_symlink() {
            // Follow the link only to decide whether it is a file; never descend through it.
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                out.push(rel);
            }
        }
    }
    Ok(())
}

/// Copies everything `input` yields to `output`, in 64 KiB chunks; returns the bytes copied.
/// Errors name their side: `read_op` (a verb such as `"read"` or `"decompress"`) on `from`, or
/// `write` on `to`. `output` is not flushed.
///
/// ```
/// let mut out = Vec::new();
/// let n = hermetic_sdk::pump(&b"abc"[..], "/in/a", "read", &mut out, "/out/a")?;
/// assert_eq!((n, out.as_slice()), (3, &b"abc"[..]));
/// # Ok::<(), hermetic_sdk::Error>(())
/// ```
pub fn pump(
    mut input: impl io::Read,
    from: impl AsRef<Path>,
    read_op: &'static str,
    mut output: impl io::Write,
    to: impl AsRef<Path>,
) -> Result<u64> {
    let mut buf = vec![0; 64 * 1024];
    let mut copied = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(read_op, from.as_ref(), e)),
        };
        output
            .write_all(&buf[..n])
            .map_err(|e| Error::io("write", to.as_ref(), e))?;
        copied += n as u64;
    }
}

/// Runs a task's body: passes it the arguments (without `argv[0]`, which is the step name),
/// and on error prints `error: <message>` to stderr and exits with status 1.
///
/// An argument that is not valid UTF-8 is itself reported as an error.
///
/// ```no_run
/// // inside the task's `fn main()`:
/// hermetic_sdk::main(|args| {
///     let [name] = args.as_slice() else {
///         return Err(hermetic_sdk::Error::msg("usage: greet NAME"));
///     };
///     hermetic_sdk::write_output("greeting.txt", format!("hello, {name}\n"))
/// });
/// ```
pub fn main<F>(body: F)
where
    F: FnOnce(Vec<String>) -> Result<()>,
{
    let result = args_from(std::env::args_os().skip(1)).and_then(body);
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn args_from(args: impl Iterator<Item = OsString>) -> Result<Vec<String>> {
    args.enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                Error::msg(format!(
                    "argument {} is not valid UTF-8: {}",
                    i + 1,
                    arg.to_string_lossy()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hermetic-sdk-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sandbox_paths() {
        assert_eq!(input("a.txt"), Path::new("/in/a.txt"));
        assert_eq!(input("/a.txt"), Path::new("/in/a.txt"));
        assert_eq!(output("x/y.txt"), Path::new("/out/x/y.txt"));
        assert_eq!(dep("lib", "a/b"), Path::new("/deps/lib/a/b"));
        assert_eq!(Mounts::sandbox().tmp("t"), Path::new("/tmp/t"));
        assert_eq!(
            Mounts::sandbox().resolve("/deps/x/y"),
            Path::new("/deps/x/y")
        );
        assert_eq!(
            Mounts::sandbox().resolve("rel.txt"),
            Path::new("/in/rel.txt")
        );
    }

    #[test]
    fn write_read_and_list_sorted() {
        let root = scratch("list");
        let m = Mounts::rooted(&root);
        fs::create_dir_all(root.join("in/a")).unwrap();
        fs::write(root.join("in/b.txt"), "b").unwrap();
        fs::write(root.join("in/a.txt"), "a").unwrap();
        fs::write(root.join("in/a/z.txt"), "z").unwrap();
        fs::write(root.join("in/a/c.txt"), "c").unwrap();
        assert_eq!(
            m.list_inputs().unwrap(),
            ["a/c.txt", "a/z.txt", "a.txt", "b.txt"]
                .map(PathBuf::from)
                .to_vec()
        );
        assert_eq!(m.read_input("a/z.txt").unwrap(), b"z");
        assert_eq!(m.read("/in/b.txt").unwrap(), b"b");

        m.write_output("deep/er/file.bin", [1u8, 2, 3]).unwrap();
        assert_eq!(
            fs::read(root.join("out/deep/er/file.bin")).unwrap(),
            [1, 2, 3]
        );

        // No /deps at all is an empty list, not an error.
        assert!(m.list_deps().unwrap().is_empty());
        fs::create_dir_all(root.join("deps/x/sub")).unwrap();
        fs::write(root.join("deps/x/sub/f"), "f").unwrap();
        assert_eq!(m.list_deps().unwrap(), vec![PathBuf::from("x/sub/f")]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_directories_are_not_followed() {
        let root = scratch("symlink");
        fs::create_dir_all(root.join("in/d")).unwrap();
        fs::write(root.join("in/d/f"), "f").unwrap();
        std::os::unix::fs::symlink(root.join("in"), root.join("in/d/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("in/d/f"), root.join("in/link")).unwrap();
        assert_eq!(
            list_files(root.join("in")).unwrap(),
            vec![PathBuf::from("d/f"), PathBuf::from("link")]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let root = scratch("errors");
        let m = Mounts::rooted(&root);
        let err = m.read_input("missing.txt").unwrap_err();
        let missing = root.join("in/missing.txt");
        assert_eq!(err.path(), Some(missing.as_path()));
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{err}"
        );
        let err = m.list_inputs().unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read directory "),
            "{err}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("ok"), OsString::from_vec(vec![b'a', 0xff])];
        let err = args_from(args.into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "argument 2 is not valid UTF-8: a\u{fffd}");
        assert_eq!(
            args_from([OsString::from("x")].into_iter()).unwrap(),
            vec!["x".to_string()]
        );
    }
}
