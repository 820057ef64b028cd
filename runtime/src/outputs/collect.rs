//! Collecting a step's declared outputs from its `/out` and publishing them atomically.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use hermetic_cache::FileEntry;
use walkdir::WalkDir;

use super::fsx::{PathContext, PathError, copy_file_nofollow, create_dir_all, remove_all};

/// Why a step's outputs could not be collected. Each is the step's fault except [`Io`].
///
/// [`Io`]: OutputError::Io
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A declared output is not in `/out`.
    #[error("did not produce declared output `{0}`")]
    Missing(String),
    /// A symlink inside `/out` on the way to, or inside, a declared output.
    #[error("left a symlink at `/out/{0}`; outputs must be regular files or directories")]
    Symlink(String),
    /// Something other than a file or directory (a fifo, a socket, ...).
    #[error("left `/out/{0}`, which is not a regular file or directory")]
    NotRegular(String),
    /// A host-side I/O error.
    #[error(transparent)]
    Io(#[from] PathError),
}

/// Publishes the `declared` outputs in `out_dir` as `publish_root/<step>/`, replacing what was
/// there, and returns their files with their digests, sorted by path.
///
/// Each declared output is checked where the guest left it (no symlink on the way or inside,
/// nothing but regular files and directories) and hashed in place. Everything else is removed
/// from `out_dir`, and then `out_dir` itself is renamed into place: no output is copied, and
/// no new file is created, which on a busy filesystem is most of what publishing would cost.
/// `out_dir` is gone afterwards (its owner makes a new one). When it is on another filesystem
/// than `publish_root`, its outputs are copied into a new directory instead. Either way the
/// published directory is always complete: the old outputs or the new ones, never a mixture.
///
/// Moving is safe because the guest is gone: nothing can change `out_dir` any more. A file
/// the guest hard-linked into `/out` keeps its other names, but every host-side writer of
/// those (staging, the scratch directories, publishing) creates new files and never writes
/// into an existing one.
pub fn collect_and_publish(
    out_dir: &Path,
    declared: &[String],
    publish_root: &Path,
    step: &str,
) -> Result<Vec<FileEntry>, OutputError> {
    if declared.is_empty() {
        // Nothing to publish; drop what an earlier run published under this name.
        remove_all(&publish_root.join(step))?;
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut roots = Vec::with_capacity(declared.len());
    for output in declared {
        roots.push(check_one(
            out_dir,
            output.trim_end_matches('/'),
            &mut files,
        )?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    prune(out_dir, Path::new(""), &roots)?;

    create_dir_all(publish_root)?;
    let same_filesystem = |a: &Path, b: &Path| -> Result<bool, PathError> {
        let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).at("cannot inspect", p);
        Ok(dev(a)? == dev(b)?)
    };
    if same_filesystem(out_dir, publish_root)? {
        publish_staged(out_dir, publish_root, step)?;
    } else {
        let staging = new_dir_in(publish_root, step)?;
        let copied = copy_tree(out_dir, &staging)
            .and_then(|()| publish_staged(&staging, publish_root, step));
        if copied.is_err() {
            let _ = remove_all(&staging);
        }
        copied?;
    }
    Ok(files)
}

/// A new directory `publish_root/.tmp-<step>-<pid>-<n>`, made with `mkdir`'s default mode,
/// like the directories a run or a cache hit publishes (a `tempfile` directory is private).
fn new_dir_in(publish_root: &Path, step: &str) -> Result<PathBuf, PathError> {
    for n in 0.. {
        let dir = publish_root.join(format!(".tmp-{step}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {}
            Err(e) => return Err(e).at("cannot create directory", &dir),
        }
    }
    unreachable!("the loop returns")
}

/// Renames the complete directory `staged` to `publish_root/<step>`, replacing what was there:
/// readers see the old outputs or the new ones, never a mixture. `staged` must be on the same
/// filesystem as `publish_root`.
pub fn publish_staged(staged: &Path, publish_root: &Path, step: &str) -> Result<(), PathError> {
    let target = publish_root.join(step);
    let old = publish_root.join(format!(".old-{step}-{}", std::process::id()));
    remove_all(&old)?;
    if fs::symlink_metadata(&target).is_ok() {
        fs::rename(&target, &old).at("cannot move aside", &target)?;
    }
    fs::rename(staged, &target).at("cannot publish", &target)?;
    remove_all(&old)
}

/// Checks the declared output `output` in `out_dir` and hashes its files into `files`;
/// returns its path relative to `out_dir`.
fn check_one(
    out_dir: &Path,
    output: &str,
    files: &mut Vec<FileEntry>,
) -> Result<PathBuf, OutputError> {
    // Walk the declared path one component at a time, so that a symlinked directory on the way
    // (`/out/a -> /etc`, declared output `a/passwd`) is caught before anything is opened.
    let mut host = out_dir.to_path_buf();
    let mut rel = PathBuf::new();
    let comps: Vec<_> = Path::new(output).components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let Component::Normal(name) = comp else {
            return Err(OutputError::Missing(output.to_string()));
        };
        host.push(name);
        rel.push(name);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutputError::Missing(output.to_string()));
            }
            Err(e) => {
                return Err(PathError {
                    action: "cannot inspect",
                    path: host,
                    source: e,
                }
                .into());
            }
        };
        let is_last = i + 1 == comps.len();
        if meta.file_type().is_symlink() {
            return Err(OutputError::Symlink(slash(&rel)));
        }
        if !is_last && !meta.is_dir() {
            return Err(OutputError::Missing(output.to_string()));
        }
    }
    let meta = fs::symlink_metadata(&host).at("cannot inspect", &host)?;
    if meta.is_file() {
        files.push(hashed(&host, &rel)?);
        return Ok(rel);
    }
    if !meta.is_dir() {
        return Err(OutputError::NotRegular(slash(&rel)));
    }
    for entry in WalkDir::new(&host).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&host).to_path_buf();
            PathError {
                action: "cannot read",
                path,
                source: e.into(),
            }
        })?;
        let sub = rel.join(entry.path().strip_prefix(&host).unwrap_or(entry.path()));
        let ft = entry.file_type();
        if ft.is_symlink() {
            return Err(OutputError::Symlink(slash(&sub)));
        } else if ft.is_file() {
            files.push(hashed(entry.path(), &sub)?);
        } else if !ft.is_dir() {
            return Err(OutputError::NotRegular(slash(&sub)));
        }
    }
    Ok(rel)
}

/// The entry of the output file `host`, at `rel` below `/out` (hashed without following a
/// symlink, as inputs are).
fn hashed(host: &Path, rel: &Path) -> Result<FileEntry, OutputError> {
    let (digest, size) = hermetic_cache::hash_file(host).at("cannot hash", host)?;
    Ok(FileEntry {
        path: slash(rel),
        size,
        digest,
    })
}

/// Removes every entry below `dir` (at `rel` below `/out`) that is neither one of the declared
/// outputs `roots`, nor inside one, nor a directory on the way to one. Never follows a
/// symlink: a directory entry's type is its own.
fn prune(dir: &Path, rel: &Path, roots: &[PathBuf]) -> Result<(), PathError> {
    for entry in fs::read_dir(dir).at("cannot read", dir)? {
        let entry = entry.at("cannot read", dir)?;
        let sub = rel.join(entry.file_name());
        if roots.iter().any(|r| sub.starts_with(r)) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().at("cannot inspect", &path)?.is_dir();
        if is_dir && roots.iter().any(|r| r.starts_with(&sub)) {
            prune(&path, &sub, roots)?;
        } else {
            remove_all(&path)?;
        }
    }
    Ok(())
}

/// Copies the checked tree `from` into the existing directory `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), PathError> {
    for entry in WalkDir::new(from).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| PathError {
            action: "cannot read",
            path: e.path().unwrap_or(from).to_path_buf(),
            source: e.into(),
        })?;
        let dest = to.join(entry.path().strip_prefix(from).unwrap_or(entry.path()));
        if entry.file_type().is_dir() {
            fs::create_dir(&dest).at("cannot create directory", &dest)?;
        } else {
            copy_file_nofollow(entry.path(), &dest)?;
        }
    }
    Ok(())
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let publish = t.path().join("publish");
        fs::create_dir_all(out.join("dir/sub")).unwrap();
        fs::write(out.join("a.txt"), "A").unwrap();
        fs::write(out.join("dir/sub/b.txt"), "BB").unwrap();
        (t, out, publish)
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn publishes_declared_files_and_trees_and_nothing_else() {
        let (_t, out, publish) = setup();
        fs::write(out.join("undeclared.txt"), "junk").unwrap();
        fs::create_dir_all(out.join("dir/other")).unwrap();
        fs::write(out.join("dir/sub/b.txt.tmp"), "junk").unwrap();
        let files = collect_and_publish(
            &out,
            &["a.txt".into(), "dir/sub/b.txt".into()],
            &publish,
            "s",
        )
        .unwrap();
        let entries: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(entries, [("a.txt", 1), ("dir/sub/b.txt", 2)]);
        assert_eq!(files[1].digest, hermetic_cache::Digest::of(b"BB"));
        assert_eq!(fs::read(publish.join("s/dir/sub/b.txt")).unwrap(), b"BB");
        assert_eq!(names(&publish.join("s")), ["a.txt", "dir"]);
        assert_eq!(names(&publish.join("s/dir")), ["sub"]);
        assert_eq!(names(&publish.join("s/dir/sub")), ["b.txt"]);
        assert!(!out.exists(), "the outputs were moved, not copied");

        // Re-publishing replaces the old outputs completely; a declared tree comes whole.
        fs::create_dir_all(out.join("dir/sub")).unwrap();
        fs::create_dir_all(out.join("dir/empty")).unwrap();
        fs::write(out.join("dir/sub/c.txt"), "C").unwrap();
        fs::write(out.join("a.txt"), "not declared this time").unwrap();
        collect_and_publish(&out, &["dir/".into()], &publish, "s").unwrap();
        assert_eq!(names(&publish.join("s")), ["dir"]);
        assert_eq!(names(&publish.join("s/dir")), ["empty", "sub"]);
        assert_eq!(names(&publish), ["s"], "nothing left beside it");
    }

    #[test]
    fn copies_when_the_outputs_are_on_another_filesystem() {
        // `/dev/shm` is a tmpfs on Linux, and the test's temporary directory is not.
        let shm = Path::new("/dev/shm");
        let t = tempfile::tempdir().unwrap();
        if !shm.is_dir()
            || fs::metadata(shm).unwrap().dev() == fs::metadata(t.path()).unwrap().dev()
        {
            eprintln!("skipped: no second filesystem at /dev/shm");
            return;
        }
        let other = tempfile::tempdir_in(shm).unwrap();
        let out = other.path().join("out");
        fs::create_dir_all(out.join("d")).unwrap();
        fs::write(out.join("d/x.txt"), "X").unwrap();
        fs::write(out.join("junk"), "junk").unwrap();
        let publish = t.path().join("publish");
        let files = collect_and_publish(&out, &["d".into()], &publish, "s").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(fs::read(publish.join("s/d/x.txt")).unwrap(), b"X");
        assert_eq!(names(&publish), ["s"]);
        assert_eq!(names(&publish.join("s")), ["d"]);
        // The directory has the mode of any other `mkdir`, as when it is moved.
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode();
        fs::create_dir(t.path().join("plain")).unwrap();
        assert_eq!(mode(&publish.join("s")), mode(&t.path().join("plain")));
    }

    #[test]
    fn refuses_symlinks_anywhere() {
        let (t, out, publish) = setup();
        let secret = t.path().join("secret");
        fs::write(&secret, "host secret").unwrap();
        symlink(&secret, out.join("leak.txt")).unwrap();
        symlink(t.path(), out.join("updir")).unwrap();
        symlink(&secret, out.join("dir/sub/inner")).unwrap();
        let err = |decl: &str| {
            collect_and_publish(&out, &[decl.to_string()], &publish, "s")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("leak.txt"),
            "left a symlink at `/out/leak.txt`; outputs must be regular files or directories"
        );
        assert_eq!(
            err("updir/secret"),
            "left a symlink at `/out/updir`; outputs must be regular files or directories"
        );
        assert_eq!(
            err("dir"),
            "left a symlink at `/out/dir/sub/inner`; outputs must be regular files or directories"
        );
        assert_eq!(
            err("nope.txt"),
            "did not produce declared output `nope.txt`"
        );
        assert!(!publish.join("s").exists());
    }
}
