//! Running one guest invocation in a fresh `Store`, and classifying how it ended.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{FsPerms, I32Exit, ResourceTable, WasiCtxBuilder};

use super::capture::Capture;
use super::clock::{Jumps, Monotonic, VirtualClock, Wall};
use super::limits::{Limits, MemoryLimiter};
use super::outcome::Outcome;
use super::program::{Program, ProgramKind};
use super::random::SeededRng;
use super::state::{GuestState, P1State, P2State};
use super::{Sandbox, SandboxError};

/// A directory the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/in`.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
}

/// Where captured stdout or stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureTo {
    /// A file, created or truncated.
    File(PathBuf),
    /// Memory, returned in [`Report`].
    Memory,
}

/// Everything one invocation needs besides the program.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// The complete environment; nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub mounts: Vec<Mount>,
    /// Resource limits.
    pub limits: Limits,
    /// Seed of the guest's random number generators.
    pub seed: [u8; 32],
    /// What the wall clock reads at the start, as time since the Unix epoch.
    pub clock_epoch: Duration,
    /// A jump of the clocks to inject (`hermetic chaos`).
    pub clock_jump: Option<super::clock::ClockJump>,
    /// Where stdout goes.
    pub stdout: CaptureTo,
    /// Where stderr goes.
    pub stderr: CaptureTo,
    /// Beaten whenever the guest writes to stdout or stderr or calls the host, for stuck-step
    /// warnings.
    pub heartbeat: Option<Arc<super::Heartbeat>>,
    /// Where the guest's progress and log calls go (`hermetic_v1`); `None` drops them.
    pub host_calls: Option<Arc<dyn super::HostCallSink>>,
    /// A fault to inject at the WASI boundary; only a sandbox made with
    /// [`Sandbox::with_fault_hooks`] injects it (into core modules and components alike).
    pub wasi_fault: Option<super::faults::WasiFault>,
}

/// The result of an invocation.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// The largest linear memory reached, in bytes.
    pub peak_memory: u64,
    /// Host wall time of the invocation (informational only: never part of a result).
    pub duration: Duration,
    /// Captured stdout, for [`CaptureTo::Memory`].
    pub stdout: Vec<u8>,
    /// Captured stderr, for [`CaptureTo::Memory`].
    pub stderr: Vec<u8>,
    /// The writable mounts that held nothing once the guest had ended (measured anyway for
    /// [`Limits::output`]), so that their owner need not look again before reusing them.
    /// Possibly incomplete: a mount missing here may be empty too.
    pub empty_mounts: Vec<PathBuf>,
    /// Whether the guest was given its mounts. A program that cannot reach files
    /// ([`Program::reaches_files`]) is not, so its writable mounts hold exactly what they held
    /// before (and are not in `empty_mounts`, since nobody looked).
    pub mounted: bool,
}

impl Sandbox {
    /// Runs `program` once. Errors are host-side failures (a mount that cannot be opened, a
    /// capture file that cannot be created); everything the guest does is in the [`Report`].
    pub async fn run(&self, program: &Program, inv: &Invocation) -> Result<Report, SandboxError> {
        self.run_in_lane(0, program, inv).await
    }

    /// [`Sandbox::run`] in lane `lane` (see [`Sandbox::for_workers`]): a pool worker runs its
    /// steps in its own lane, so that it never waits for another worker's engine. A lane the
    /// sandbox does not have means lane 0.
    pub async fn run_in_lane(
        &self,
        lane: usize,
        program: &Program,
        inv: &Invocation,
    ) -> Result<Report, SandboxError> {
        let started = Instant::now();
        let (lane, linked) = self.linked(program, lane)?;
        let engine = &lane.engine;
        let stdout = capture(&inv.stdout, inv.limits.stdout)?.with_heartbeat(inv.heartbeat.clone());
        let stderr = capture(&inv.stderr, inv.limits.stderr)?.with_heartbeat(inv.heartbeat.clone());
        let clock = VirtualClock::default();
        let jumps = Jumps::new(inv.clock_jump);

        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&inv.args)
            .envs(&inv.env)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(Wall {
                epoch: inv.clock_epoch,
                clock: clock.clone(),
                jumps: jumps.clone(),
            })
            .monotonic_clock(Monotonic {
                clock: clock.clone(),
                jumps,
            })
            .secure_random(SeededRng::new(&inv.seed, "secure"))
            .insecure_random(SeededRng::new(&inv.seed, "insecure"))
            .insecure_random_seed(u128::from_le_bytes(
                inv.seed[..16].try_into().unwrap_or_default(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .allow_blocking_current_thread(true);
        let mounts: &[Mount] = if program.reaches_files {
            &inv.mounts
        } else {
            &[]
        };
        for m in mounts {
            let perms = if m.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| SandboxError::Mount {
                    host: m.host.clone(),
                    guest: m.guest.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        let limiter = MemoryLimiter::new(inv.limits.memory);

        // The writable mounts are measured every `OUTPUT_POLL` while the guest runs, so that a
        // flood is stopped within moments instead of filling the host's disk, and once more at
        // the end.
        let over_output = Arc::new(AtomicBool::new(false));
        let writable: Vec<PathBuf> = mounts
            .iter()
            .filter(|m| m.writable)
            .map(|m| m.host.clone())
            .collect();
        let watch = watch_output(writable.clone(), inv.limits.output, over_output.clone());

        let deadline = started + inv.limits.timeout;
        let grace = inv.limits.timeout + Duration::from_millis(250);
        let mut report = match linked {
            ProgramKind::Module(pre, start) => {
                let state = P1State {
                    wasi: Some(builder.build_p1()),
                    limiter,
                    clock,
                    epoch_nanos: inv.clock_epoch.as_nanos() as u64,
                    timed_out: false,
                    calls: super::host_calls::HostCalls {
                        sink: inv.host_calls.clone(),
                        heartbeat: inv.heartbeat.clone(),
                    },
                    faults: super::faults::WasiFaultState::new(inv.wasi_fault),
                };
                let mut store = store(engine, state, inv, deadline, over_output.clone(), |s| {
                    &mut s.limiter
                })?;
                // Boxed: wasmtime's futures make this one 2.5 KiB. Held inline, they made every
                // future that awaits it that much larger, and each of them (the attempt's, the
                // step's) was copied whole when it was made: 18 KiB per step, 4% of a worker's
                // time on no-op steps.
                let fut = Box::pin(async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance
                        .get_module_export(&mut store, start)
                        .and_then(wasmtime::Extern::into_func)
                        .ok_or_else(|| wasmtime::Error::msg("`_start` is not a function"))?
                        .typed::<(), ()>(&store)?;
                    start.call_async(&mut store, ()).await
                });
                let result = drive(fut, grace, watch).await;
                let report = finish(&mut store, result, &inv.limits);
                self.dispose(lane, store);
                report
            }
            ProgramKind::Component(pre) => {
                let state = P2State {
                    ctx: Some(builder.build()),
                    table: ResourceTable::new(),
                    limiter,
                    clock,
                    timed_out: false,
                    faults: super::faults::SharedFaults::new(inv.wasi_fault),
                };
                let mut store = store(engine, state, inv, deadline, over_output.clone(), |s| {
                    &mut s.limiter
                })?;
                // Boxed, as for a module.
                let fut = Box::pin(async {
                    let command = pre.instantiate_async(&mut store).await?;
                    match command.wasi_cli_run().call_run(&mut store).await? {
                        Ok(()) => Ok(()),
                        Err(()) => Err(wasmtime::Error::new(I32Exit(1))),
                    }
                });
                let result = drive(fut, grace, watch).await;
                let report = finish(&mut store, result, &inv.limits);
                self.dispose(lane, store);
                report
            }
        };

        let (size, empty) = measure(&writable);
        report.empty_mounts = empty;
        report.mounted = program.reaches_files;
        if over_output.load(Ordering::Relaxed) || size > inv.limits.output {
            report.outcome = Outcome::OutputLimit {
                stream: "output",
                limit: inv.limits.output,
            };
        }
        for (c, name, limit) in [
            (&stdout, "stdout", inv.limits.stdout),
            (&stderr, "stderr", inv.limits.stderr),
        ] {
            c.finish().map_err(|e| SandboxError::Capture(name, e))?;
            if c.overflowed() && !matches!(report.outcome, Outcome::TimedOut { .. }) {
                report.outcome = Outcome::OutputLimit {
                    stream: name,
                    limit,
                };
            }
        }
        report.stdout = stdout.contents();
        report.stderr = stderr.contents();
        report.duration = started.elapsed();
        Ok(report)
    }
}

/// A store in `engine` for one invocation, with its limits and its deadline.
fn store<T: GuestState>(
    engine: &wasmtime::Engine,
    state: T,
    inv: &Invocation,
    deadline: Instant,
    over_output: Arc<AtomicBool>,
    limiter: fn(&mut T) -> &mut MemoryLimiter,
) -> Result<Store<T>, SandboxError> {
    let mut store = Store::new(engine, state);
    store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
    store
        .set_fuel(inv.limits.fuel)
        .map_err(super::program::link_error)?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        if over_output.load(Ordering::Relaxed) {
            Ok(UpdateDeadline::Interrupt)
        } else if Instant::now() >= deadline {
            *ctx.data_mut().timed_out() = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(store)
}

fn capture(to: &CaptureTo, limit: u64) -> Result<Capture, SandboxError> {
    match to {
        CaptureTo::Memory => Ok(Capture::in_memory(limit)),
        CaptureTo::File(path) => {
            Capture::to_file(path, limit).map_err(|source| SandboxError::CaptureFile {
                path: path.clone(),
                source,
            })
        }
    }
}

/// Turns the result of `_start` / `run` into an [`Outcome`], checking the limits first: a guest
/// whose `memory.grow` was refused usually dies of an `unreachable` trap right after, and that
/// trap must be reported as the memory limit it really is.
fn finish<T: GuestState>(
    store: &mut Store<T>,
    result: Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
    limits: &Limits,
) -> Report {
    let fuel_left = store.get_fuel().unwrap_or(0);
    let fuel_used = limits.fuel.saturating_sub(fuel_left);
    let peak_memory = store.data_mut().limiter().peak;
    let refused = store.data_mut().limiter().refused;
    let timed_out = *store.data_mut().timed_out();

    let outcome = match result {
        Err(_elapsed) => Outcome::TimedOut {
            limit: limits.timeout,
        },
        Ok(Ok(())) => Outcome::Success,
        Ok(Err(e)) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                if exit.0 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Exit(exit.0)
                }
            } else if timed_out {
                Outcome::TimedOut {
                    limit: limits.timeout,
                }
            } else if refused {
                Outcome::MemoryLimit {
                    limit: limits.memory,
                }
            } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
                Outcome::OutOfFuel { limit: limits.fuel }
            } else {
                let backtrace = e
                    .downcast_ref::<WasmBacktrace>()
                    .map(format_backtrace)
                    .unwrap_or_default();
                let message = match e.downcast_ref::<Trap>() {
                    Some(trap) => trap
                        .to_string()
                        .trim_start_matches("wasm trap: ")
                        .to_string(),
                    None => format!("{e:#}"),
                };
                Outcome::Trap { message, backtrace }
            }
        }
    };
    Report {
        outcome,
        fuel_used,
        peak_memory,
        duration: Duration::ZERO,
        stdout: Vec::new(),
        stderr: Vec::new(),
        empty_mounts: Vec::new(),
        mounted: true,
    }
}

/// How often the writable mounts are measured against [`Limits::output`].
const OUTPUT_POLL: Duration = Duration::from_millis(50);

/// Runs the guest future to its end, or until `grace` passes, while `watch` measures output.
async fn drive(
    guest: impl Future<Output = wasmtime::Result<()>>,
    grace: Duration,
    watch: impl Future<Output = ()>,
) -> Result<wasmtime::Result<()>, tokio::time::error::Elapsed> {
    tokio::select! {
        biased;
        result = tokio::time::timeout(grace, guest) => result,
        () = watch => unreachable!("watch_output never completes"),
    }
}

/// Never completes. Sets `over` once the files under `dirs` add up to more than `limit`; the
/// epoch callback then interrupts the guest. Nothing is measured before the first
/// `OUTPUT_POLL`, so short guests pay only for a timer.
async fn watch_output(dirs: Vec<PathBuf>, limit: u64, over: Arc<AtomicBool>) {
    if !dirs.is_empty() {
        loop {
            tokio::time::sleep(OUTPUT_POLL).await;
            let measured = dirs.clone();
            let size = tokio::task::spawn_blocking(move || total_size(&measured));
            if size.await.unwrap_or(0) > limit {
                over.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    std::future::pending().await
}

/// [`total_size`] of `dirs`, and which of them hold no entry at all (the common case, checked
/// first with one `readdir`).
fn measure(dirs: &[PathBuf]) -> (u64, Vec<PathBuf>) {
    let mut size = 0;
    let mut empty = Vec::new();
    for dir in dirs {
        let is_empty = crate::outputs::fsx::is_empty_dir(dir).unwrap_or(false);
        if is_empty {
            empty.push(dir.clone());
        } else {
            size += total_size(std::slice::from_ref(dir));
        }
    }
    (size, empty)
}

/// Apparent size of the regular files under `dirs`, never following symlinks. (A guest cannot
/// make an entry unreadable to the host, so entries that cannot be read count as zero.)
fn total_size(dirs: &[PathBuf]) -> u64 {
    dirs.iter()
        .flat_map(|dir| walkdir::WalkDir::new(dir).follow_links(false))
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// One frame per line, innermost first, with Rust names demangled and runs of the same function
/// (deep recursion) folded into one line: `  3: name` or `  3..=520: name (repeated 518 times)`.
fn format_backtrace(bt: &WasmBacktrace) -> String {
    let names: Vec<String> = bt
        .frames()
        .iter()
        .map(|f| match f.func_name() {
            Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
            None => format!("<wasm function {}>", f.func_index()),
        })
        .collect();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let mut j = i;
        while j + 1 < names.len() && names[j + 1] == names[i] {
            j += 1;
        }
        if j == i {
            lines.push(format!("  {i:>3}: {}", names[i]));
        } else {
            lines.push(format!(
                "  {i:>3}..={j}: {} (repeated {} times)",
                names[i],
                j - i + 1
            ));
        }
        i = j + 1;
        if lines.len() == 32 && i < names.len() {
            lines.push(format!("  ... {} more frames", names.len() - i));
            break;
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_size_counts_regular_files_and_not_symlink_targets() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("sub/x"), [0; 300]).unwrap();
        std::fs::write(b.join("y"), [0; 20]).unwrap();
        let big = t.path().join("big");
        std::fs::write(&big, vec![0; 10_000]).unwrap();
        std::os::unix::fs::symlink(&big, b.join("link")).unwrap();
        assert_eq!(total_size(&[a, b]), 320);
        assert_eq!(total_size(&[]), 0);
    }
}
