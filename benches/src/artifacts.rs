//! Building what the bench runs: the no-op, copy and burn guests, the `concat` task (a module of
//! real size) and the `hermetic` binary itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The outer-cargo variables a guest build must not inherit, shared with `tests/build.rs`.
mod guest_build_env {
    include!("../../tests/guest_build_env.rs");
}
use guest_build_env::clear_outer_build_env;

/// The guests' `.wasm` files.
#[derive(Debug, Clone)]
pub struct Guests {
    /// `benches/guests/noop`: does nothing (and imports nothing that reaches files).
    pub noop: PathBuf,
    /// `benches/guests/noop` too: does nothing, but links the file functions, so the sandbox
    /// mounts its directories.
    pub noop_files: PathBuf,
    /// `benches/guests/copy`: copies `/in` to `/out`.
    pub copy: PathBuf,
    /// `benches/guests/burn`: `burn N` does N rounds of integer work.
    pub burn: PathBuf,
    /// The `concat` task: a module of real size, for the compiled-module cache.
    pub concat: PathBuf,
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The repository root (the root workspace).
    pub root: PathBuf,
    /// Cargo's target directory, the one this binary was built in.
    pub target: PathBuf,
}

impl Layout {
    /// Finds the repository from this crate's manifest directory and the target directory from
    /// this executable's path (`<target>/<profile>/hermetic-bench`).
    pub fn discover() -> anyhow::Result<Self> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .context("the bench crate has no parent directory")?
            .to_path_buf();
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let target = exe
            .parent()
            .and_then(Path::parent)
            .context("this executable is not in <target>/<profile>/")?
            .to_path_buf();
        Ok(Self { root, target })
    }

    fn cargo() -> OsString {
        std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
    }

    /// Builds `target/release/hermetic` (a no-op when it is fresh) with the outer build's
    /// settings, so that it shares the outer build's artifacts.
    pub fn build_hermetic(&self) -> anyhow::Result<PathBuf> {
        eprintln!("bench: building the hermetic binary (release)");
        let status = Command::new(Self::cargo())
            .arg("build")
            .arg("--release")
            .args(["-p", "hermetic-runtime", "--bin", "hermetic"])
            .arg("--manifest-path")
            .arg(self.root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&self.target)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("building the hermetic binary failed ({status})");
        }
        let bin = self.target.join("release").join("hermetic");
        if !bin.is_file() {
            bail!("cargo did not produce `{}`", bin.display());
        }
        Ok(bin)
    }

    /// Builds the no-op, copy and burn guests (`benches/guests/{noop,copy,burn}`) and the
    /// `concat` task for `wasm32-wasip1` under `<target>/bench-guests`, and returns their `.wasm`
    /// paths.
    pub fn build_guests(&self) -> anyhow::Result<Guests> {
        let target_dir = self.target.join("bench-guests");
        eprintln!(
            "bench: building the no-op, copy and burn guests and the concat task for wasm32-wasip1"
        );
        for guest in ["noop", "copy", "burn"] {
            let manifest = self.root.join(format!("benches/guests/{guest}/Cargo.toml"));
            self.build_wasm(&manifest, None, &target_dir)?;
        }
        self.build_wasm(&self.root.join("Cargo.toml"), Some("concat"), &target_dir)?;
        let out = target_dir.join("wasm32-wasip1").join("release");
        Ok(Guests {
            noop: out.join("noop.wasm"),
            noop_files: out.join("noop-files.wasm"),
            copy: out.join("copy.wasm"),
            burn: out.join("burn.wasm"),
            concat: out.join("concat.wasm"),
        })
    }

    fn build_wasm(
        &self,
        manifest: &Path,
        package: Option<&str>,
        target_dir: &Path,
    ) -> anyhow::Result<()> {
        let mut cmd = Command::new(Self::cargo());
        cmd.args(["build", "--release", "--quiet", "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir);
        if let Some(p) = package {
            cmd.args(["-p", p]);
        }
        clear_outer_build_env(&mut cmd);
        let status = cmd.status().context("cannot run cargo")?;
        if !status.success() {
            bail!(
                "building `{}` for wasm32-wasip1 failed ({status}); is the target installed \
                 (`rustup target add wasm32-wasip1`)?",
                manifest.display()
            );
        }
        Ok(())
    }
}

/// `name` on `PATH`, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
