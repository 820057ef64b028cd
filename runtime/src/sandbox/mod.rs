//! The WASI sandbox: one shared engine, a compiled-module cache, and one fresh `Store` per
//! invocation.
//!
//! # What a guest gets
//!
//! Every capability is explicit. A guest invocation starts from nothing and is given:
//!
//! * **Arguments and environment:** exactly [`Invocation::args`] and [`Invocation::env`].
//!   Nothing is inherited from the host.
//! * **Files:** exactly the [`Invocation::mounts`], each read-only or read-write. For a workflow
//!   step these are `/in` and `/deps` (read-only copies), `/out` and `/tmp` (read-write).
//!   The guest's file operations run on the thread that runs the guest, without a hand-off to
//!   a blocking pool: the mounts are local directories, and the hand-offs made 200 small
//!   copying steps take 0.34 s instead of 0.21 s.
//!   A program that imports nothing able to reach a directory (see
//!   [`Program::reaches_files`]) gets no mounts at all: it could not tell, and opening four
//!   directories and checking two for emptiness was most of the cost of a step that only
//!   computes and prints.
//! * **stdin:** closed. **stdout/stderr:** captured with a size cap ([`Limits::stdout`]).
//! * **Clocks:** virtual (see [`clock`]): the wall clock starts at [`Invocation::clock_epoch`]
//!   (default 2000-01-01T00:00:00Z) and both clocks advance only as the guest reads them or
//!   sleeps. A sleep returns at once after advancing the clock.
//! * **Randomness:** a deterministic stream seeded by [`Invocation::seed`].
//! * **Network:** none. TCP, UDP and name lookup are disabled.
//! * **Limits:** memory (a store limiter), CPU (fuel), wall time (epochs plus a timer), output
//!   size. See [`Limits::default`] for the defaults.
//! * **Floating point:** NaNs are canonicalised and relaxed SIMD is deterministic.
//! * **Host calls** (core modules): the `hermetic_v1` import module, which only reports
//!   progress, heartbeats and log lines to the host (see [`host_calls`]).

pub mod capture;
pub mod clock;
pub mod engine;
pub mod faults;
pub mod heartbeat;
pub mod host_calls;
pub mod limits;
pub mod module_cache;
pub mod outcome;
mod poll;
pub mod program;
mod random;
mod reaper;
pub mod run;
mod sleep_p2;
mod state;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use wasmtime::{Engine, Linker, Store};

pub use heartbeat::Heartbeat;
pub use host_calls::{HostCallSink, LogLevel};
pub use limits::Limits;
pub use module_cache::ModuleCache;
pub use outcome::Outcome;
pub use program::{Program, UnknownImports};
pub use run::{CaptureTo, Invocation, Mount, Report};
use state::{P1State, P2State};

/// Why the host could not load or run a program. (How the *guest* ended is an [`Outcome`].)
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot be read: {0}")]
    Read(#[source] std::io::Error),
    #[error("is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error("is not a valid WebAssembly program: {0}")]
    Invalid(String),
    #[error(
        "imports {} that the sandbox does not provide: {}",
        if .0.len() == 1 { "something" } else { "things" },
        .0.join(", ")
    )]
    UnknownImports(Vec<String>),
    #[error(
        "has no entry point: a WASI command exports `_start` (core module) or `wasi:cli/run` (component)"
    )]
    NoEntryPoint,
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("cannot mount `{}` at `{guest}`: {message}", host.display())]
    Mount {
        host: PathBuf,
        guest: String,
        message: String,
    },
    #[error("cannot create capture file `{}`: {source}", path.display())]
    CaptureFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write captured {0}: {1}")]
    Capture(&'static str, #[source] std::io::Error),
    #[error("cannot create the engine: {0}")]
    Engine(String),
}

/// The engines, linkers and module cache shared by every invocation in a process.
pub struct Sandbox {
    /// Lane 0: the engine, with its linkers, that serves every invocation that names no lane,
    /// and that programs are compiled with.
    pub(crate) first: Lane,
    /// Lanes 1 and up of a pool's sandbox ([`Sandbox::for_workers`]): one engine per worker,
    /// each made by the first invocation in it, on its worker's thread (a lane costs about
    /// 0.2 ms, which a run of a few steps on many cores would otherwise pay for nothing).
    /// `None` when the engine could not be made: that worker then uses lane 0.
    ///
    /// Why not one engine for all: the instances of an engine come from its pooling allocator's
    /// slot index and share its type registry, and two threads instantiating at once on one
    /// engine contend on both. A raw instantiate-and-call loop on two threads ran no faster than
    /// on one with a shared engine (240 k/s either way); with an engine each it ran 420 k/s.
    others: Arc<[OnceLock<Option<Lane>>]>,
    /// `(module, name)` of every import the p1 linker defines, for clear unknown-import errors.
    pub(crate) p1_provided: HashSet<(String, String)>,
    pub(crate) modules: ModuleCache,
    /// Where finished stores are dropped in a pool's sandbox (see [`reaper`]); `None` drops
    /// them on the thread that ran the guest.
    reaper: Option<reaper::Reaper>,
    _ticker: engine::EpochTicker,
}

/// An engine and the linkers that define the sandbox's imports in it.
pub(crate) struct Lane {
    pub(crate) engine: Engine,
    pub(crate) p1_linker: Linker<P1State>,
    /// Made for the lane's first component ([`Lane::p2_linker`]): linking every WASI 0.2
    /// interface made each lane about 0.2 ms slower to make, for workflows of core modules
    /// that never use it (a one-step run took 7.44 ms rather than 7.16, medians of 40 runs).
    p2_linker: OnceLock<Result<wasmtime::component::Linker<P2State>, String>>,
    /// Whether the linkers wrap the WASI calls to inject faults; the same in every lane of a
    /// sandbox.
    fault_hooks: bool,
    /// Finished stores of this engine waiting for the sandbox's reaper (see [`reaper`]).
    finished: reaper::Batch,
}

impl Lane {
    /// An engine sized for `concurrency` live instances (and the stores waiting for the
    /// sandbox's `reaper`, if it has one), with the sandbox's imports linked (and the fault
    /// wrappers over them, with `fault_hooks`).
    fn new(concurrency: u32, fault_hooks: bool, reaper: bool) -> Result<Self, SandboxError> {
        let err = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        let engine = engine::build_engine(concurrency, reaper).map_err(err)?;

        let mut p1_linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, P1State::wasi).map_err(err)?;
        poll::add_to_linker(&mut p1_linker).map_err(err)?;
        host_calls::add_to_linker(&mut p1_linker).map_err(err)?;
        if fault_hooks {
            faults::add_to_p1_linker(&mut p1_linker).map_err(err)?;
        }

        Ok(Self {
            engine,
            p1_linker,
            p2_linker: OnceLock::new(),
            fault_hooks,
            finished: reaper::Batch::default(),
        })
    }

    /// The linker of components in this lane, made the first time it is needed.
    pub(crate) fn p2_linker(&self) -> Result<&wasmtime::component::Linker<P2State>, SandboxError> {
        self.p2_linker
            .get_or_init(|| {
                component_linker(&self.engine, self.fault_hooks).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| SandboxError::Engine(e.clone()))
    }
}

/// A linker of components in `engine` with the sandbox's imports (and the fault wrappers over
/// them, with `fault_hooks`).
fn component_linker(
    engine: &Engine,
    fault_hooks: bool,
) -> wasmtime::Result<wasmtime::component::Linker<P2State>> {
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    sleep_p2::add_to_linker(&mut linker)?;
    if fault_hooks {
        faults::add_to_p2_linker(&mut linker)?;
    }
    Ok(linker)
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("modules", &self.modules)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox for up to `concurrency` simultaneous invocations, caching compiled modules
    /// under `cache_root` (or not at all).
    pub fn new(concurrency: u32, cache_root: Option<&Path>) -> Result<Self, SandboxError> {
        Self::build(concurrency, 1, cache_root, false, false)
    }

    /// A sandbox for a pool of `workers` workers, each running one invocation at a time in
    /// its own lane (see [`Sandbox::run_in_lane`]), plus `fault_hooks` as in
    /// [`Sandbox::with_fault_hooks`]. Lane 0 also serves up to `workers` invocations that name
    /// no lane. When the machine has a core to spare beyond the workers, finished stores are
    /// dropped on a reaper thread (see [`reaper`]).
    pub fn for_workers(
        workers: u32,
        cache_root: Option<&Path>,
        fault_hooks: bool,
    ) -> Result<Self, SandboxError> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let reaper = reaper::pays_off(workers, cores);
        Self::build(workers, workers, cache_root, fault_hooks, reaper)
    }

    /// A sandbox that can inject [`faults::WasiFault`]s (for `hermetic chaos`): a guest's WASI
    /// file calls (a core module's or a component's) go through wrappers, which cost a little
    /// on every call.
    pub fn with_fault_hooks(
        concurrency: u32,
        cache_root: Option<&Path>,
    ) -> Result<Self, SandboxError> {
        Self::build(concurrency, 1, cache_root, true, false)
    }

    fn build(
        concurrency: u32,
        lanes: u32,
        cache_root: Option<&Path>,
        fault_hooks: bool,
        reaper: bool,
    ) -> Result<Self, SandboxError> {
        let first = Lane::new(concurrency, fault_hooks, reaper)?;
        let p1_provided = {
            let mut store = Store::new(&first.engine, scratch_p1_state());
            first
                .p1_linker
                .iter(&mut store)
                .map(|(module, name, _)| (module.to_string(), name.to_string()))
                .collect()
        };
        let modules = ModuleCache::new(cache_root, &first.engine);
        let others: Arc<[OnceLock<Option<Lane>>]> = (1..lanes).map(|_| OnceLock::new()).collect();
        let ticker = engine::EpochTicker::start(&first.engine, &others);
        Ok(Self {
            first,
            others,
            p1_provided,
            modules,
            reaper: reaper.then(reaper::Reaper::start).flatten(),
            _ticker: ticker,
        })
    }

    /// Lane 0's engine: the one programs are compiled with and cached for.
    pub(crate) fn engine(&self) -> &Engine {
        &self.first.engine
    }

    /// How many lanes the sandbox has.
    pub(crate) fn lane_count(&self) -> usize {
        1 + self.others.len()
    }

    /// Lane `lane`, made now if this is its first use, and its number: 0 when the sandbox has
    /// no such lane or its engine could not be made.
    pub(crate) fn lane(&self, lane: usize) -> (usize, &Lane) {
        let Some(slot) = other_lane(&self.others, lane) else {
            return (0, &self.first);
        };
        let made = slot.get_or_init(|| {
            match Lane::new(1, self.first.fault_hooks, self.reaper.is_some()) {
                Ok(made) => Some(made),
                Err(e) => {
                    tracing::warn!("worker lane {lane} shares lane 0: {e}");
                    None
                }
            }
        });
        match made {
            Some(made) => (lane, made),
            None => (0, &self.first),
        }
    }

    /// Makes lanes 1 to `count - 1` now, if they are not made yet, rather than when a worker
    /// first runs a step in each.
    pub fn make_lanes(&self, count: usize) {
        for lane in 1..count {
            self.lane(lane);
        }
    }

    /// The engines' compatibility digest (part of every cache key); every lane's engine has the
    /// same settings.
    pub fn engine_digest(&self) -> String {
        engine::compatibility_digest(self.engine())
    }
}

/// The slot of lane `lane` among what is kept for lanes 1 and up (a sandbox's engines, a
/// program's linked forms): lane `k` at `k - 1`. `None` for lane 0 and for lanes past the end.
fn other_lane<T>(others: &[T], lane: usize) -> Option<&T> {
    lane.checked_sub(1).and_then(|k| others.get(k))
}

impl Sandbox {
    /// Drops a store whose guest has ended: its WASI context here, the rest on the reaper
    /// thread if there is one and the guest's memory stayed small.
    fn dispose<T: state::GuestState>(&self, lane: &Lane, mut store: Store<T>) {
        store.data_mut().end_wasi();
        let peak = store.data_mut().limiter().peak;
        match &self.reaper {
            Some(reaper) if peak <= reaper::MAX_MEMORY => {
                reaper.dispose(&lane.finished, Box::new(store));
            }
            _ => drop(store),
        }
    }
}

fn scratch_p1_state() -> P1State {
    P1State {
        wasi: None,
        limiter: limits::MemoryLimiter::new(0),
        clock: clock::VirtualClock::default(),
        epoch_nanos: 0,
        timed_out: false,
        calls: host_calls::HostCalls::default(),
        faults: faults::WasiFaultState::default(),
    }
}
