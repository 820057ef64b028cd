//! Collecting a step's declared outputs from its `/out` and publishing them atomically.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use hermetic_cache::FileEntry;
use walkdir::WalkDir;

use super::fsx::{PathContext, PathError, copy_file_hashed, create_dir_all, remove_all};

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

/// Copies the `declared` outputs out of `out_dir` into `publish_root/<step>/`, replacing what
/// was there. The new directory is assembled beside the old one and renamed into place, so the
/// published directory is always complete: the old outputs or the new ones, never a mixture.
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
    create_dir_all(publish_root)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".tmp-{step}-"))
        .tempdir_in(publish_root)
        .at("cannot create a directory in", publish_root)?;
    let mut files = Vec::new();
    for output in declared {
        collect_one(
            out_dir,
            output.trim_end_matches('/'),
            staging.path(),
            &mut files,
        )?;
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);

    publish_staged(&staging.keep(), publish_root, step)?;
    Ok(files)
}

/// Renames the complete directory `staged` (inside `publish_root`) to `publish_root/<step>`,
/// replacing what was there: readers see the old outputs or the new ones, never a mixture.
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

fn collect_one(
    out_dir: &Path,
    output: &str,
    staging: &Path,
    files: &mut Vec<FileEntry>,
) -> Result<(), OutputError> {
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
        files.push(copy_out(&host, staging, &rel)?);
        return Ok(());
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
        } else if ft.is_dir() {
            create_dir_all(&staging.join(&sub))?;
        } else if ft.is_file() {
            files.push(copy_out(entry.path(), staging, &sub)?);
        } else {
            return Err(OutputError::NotRegular(slash(&sub)));
        }
    }
    Ok(())
}

fn copy_out(from: &Path, staging: &Path, rel: &Path) -> Result<FileEntry, OutputError> {
    let to = staging.join(rel);
    if let Some(parent) = to.parent() {
        create_dir_all(parent)?;
    }
    if fs::symlink_metadata(&to).is_ok() {
        // Declared twice (`a/` and `a/b.txt`): the first copy stands.
        fs::remove_file(&to).at("cannot replace", &to)?;
    }
    let (size, digest) = copy_file_hashed(from, &to)?;
    Ok(FileEntry {
        path: slash(rel),
        size,
        digest,
    })
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
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let publish = t.path().join("publish");
        fs::create_dir_all(out.join("dir/sub")).unwrap();
        fs::write(out.join("a.txt"), "A").unwrap();
        fs::write(out.join("dir/sub/b.txt"), "BB").unwrap();
        (t, out, publish)
    }

    #[test]
    fn publishes_declared_files_and_trees() {
        let (_t, out, publish) = setup();
        let files =
            collect_and_publish(&out, &["a.txt".into(), "dir/".into()], &publish, "s").unwrap();
        let names: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(names, [("a.txt", 1), ("dir/sub/b.txt", 2)]);
        assert_eq!(fs::read(publish.join("s/dir/sub/b.txt")).unwrap(), b"BB");
        // Re-publishing replaces the old outputs completely.
        fs::remove_file(out.join("a.txt")).unwrap();
        collect_and_publish(&out, &["dir".into()], &publish, "s").unwrap();
        assert!(!publish.join("s/a.txt").exists());
        let leftovers: Vec<_> = fs::read_dir(&publish)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["s"]);
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
