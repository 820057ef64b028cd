//! `hermetic exec MODULE.wasm [--dir HOST::GUEST[:ro]]… [--env K=V]… -- ARGS…`: run one WASI
//! program in the same sandbox as workflow steps, print its output, exit with its exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::Cli;
use crate::sandbox::{CaptureTo, Invocation, Limits, Mount, Sandbox, UnknownImports, clock};
use crate::workflow::units;

/// Arguments of `hermetic exec`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: the guest's own exit code; 134 if it trapped; 124 if it hit a \
limit (timeout, fuel, memory, output); 2 for a usage or load error."
)]
pub struct ExecArgs {
    /// The WASI program: a core module (wasm32-wasip1) or a component (wasm32-wasip2).
    pub module: PathBuf,

    /// Make a host directory visible to the guest, read-write unless `:ro` is given.
    /// `GUEST` may be `/`.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]", value_parser = parse_dir)]
    pub dirs: Vec<Mount>,

    /// Set an environment variable in the guest (nothing is inherited from the host).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Wall-clock limit, e.g. `30s` or `2m`. [default: 10m]
    #[arg(long, value_parser = units::parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// Instruction budget (wasmtime fuel), e.g. `5G`. [default: 100G]
    #[arg(long, value_parser = units::parse_fuel)]
    pub fuel: Option<u64>,

    /// Maximum linear memory, e.g. `512MiB`. [default: 1GiB]
    #[arg(long, value_parser = units::parse_size)]
    pub memory: Option<u64>,

    /// Maximum bytes captured from stdout (and, separately, stderr). [default: 16MiB]
    #[arg(long, value_parser = units::parse_size)]
    pub stdout_limit: Option<u64>,

    /// Link imports the sandbox does not provide to functions that trap when called, instead of
    /// refusing to load the program.
    #[arg(long)]
    pub unknown_imports_trap: bool,

    /// What the guest's wall clock reads at start, in seconds since the Unix epoch.
    #[arg(long, value_name = "SECONDS", default_value_t = clock::DEFAULT_EPOCH_SECS)]
    pub clock_epoch: u64,

    /// Arguments passed to the program (`argv[0]` is the module's file name).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Runs `hermetic exec`.
pub fn exec(cli: &Cli, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let module_name = args.module.display().to_string();
    let mut limits = Limits::default().overridden(args.timeout, args.fuel, args.memory);
    if let Some(s) = args.stdout_limit {
        limits.stdout = s;
        limits.stderr = s;
    }
    for m in &args.dirs {
        if !m.host.is_dir() {
            bail!("--dir `{}`: not a directory on the host", m.host.display());
        }
    }

    let cache = super::cache_root(cli);
    let sandbox = Sandbox::new(1, cache.as_deref())?;
    let unknown = if args.unknown_imports_trap {
        UnknownImports::Trap
    } else {
        UnknownImports::Reject
    };
    let program = match sandbox.load_file(&args.module, unknown) {
        Ok(p) => p,
        Err(e) => bail!("`{module_name}` {e}"),
    };

    let argv0 = args
        .module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| module_name.clone());
    let mut argv = vec![argv0];
    argv.extend(args.args.iter().cloned());
    let seed = *blake3::Hasher::new()
        .update(b"hermetic exec seed v1\0")
        // The hex form, as it always was: the seed, and so the guest's randomness, is unchanged.
        .update(program.digest.to_hex().as_bytes())
        .finalize()
        .as_bytes();
    let invocation = Invocation {
        args: argv,
        env: args.env.clone(),
        mounts: args.dirs.clone(),
        limits,
        seed,
        clock_epoch: std::time::Duration::from_secs(args.clock_epoch),
        clock_jump: None,
        stdout: CaptureTo::Memory,
        stderr: CaptureTo::Memory,
        heartbeat: None,
        host_calls: None,
        wasi_fault: None,
    };

    let rt = super::runtime(1)?;
    let report = rt.block_on(sandbox.run(&program, &invocation))?;
    let _ = std::io::stdout().write_all(&report.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&report.stderr);
    let code = report.outcome.exec_exit_code();
    if !matches!(
        report.outcome,
        crate::sandbox::Outcome::Success | crate::sandbox::Outcome::Exit(_)
    ) {
        eprintln!("error: `{module_name}` {}", report.outcome);
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Parses `HOST::GUEST[:ro|:rw]`.
fn parse_dir(s: &str) -> Result<Mount, String> {
    let Some((host, guest)) = s.split_once("::") else {
        return Err(format!(
            "expected HOST::GUEST[:ro], e.g. `./data::/data:ro`, got `{s}`"
        ));
    };
    let (guest, writable) = match guest.rsplit_once(':') {
        Some((g, "ro")) => (g, false),
        Some((g, "rw")) => (g, true),
        _ => (guest, true),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!(
            "expected HOST::GUEST[:ro], e.g. `./data::/data:ro`, got `{s}`"
        ));
    }
    Ok(Mount {
        host: PathBuf::from(host),
        guest: guest.to_string(),
        writable,
    })
}

/// Parses `K=V`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_specs() {
        let m = parse_dir("a/b::/data:ro").unwrap();
        assert_eq!(
            (m.host, m.guest.as_str(), m.writable),
            (PathBuf::from("a/b"), "/data", false)
        );
        let m = parse_dir(".::/").unwrap();
        assert_eq!((m.guest.as_str(), m.writable), ("/", true));
        assert!(parse_dir("nocolons").is_err());
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env("=x").is_err());
    }
}
