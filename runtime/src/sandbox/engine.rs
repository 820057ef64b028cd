//! The one `wasmtime::Engine` a hermetic process uses, and the thread that drives its epochs.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The wasmtime release this engine is built on, recorded in every action key. A unit test
/// checks it against `Cargo.lock`, so it cannot go stale.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances. A guest past its deadline is interrupted within about this long.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine with hermetic's fixed settings:
///
/// * **fuel** metering and **epoch** interruption, for the CPU and wall-time limits;
/// * **NaN canonicalisation** and **deterministic relaxed SIMD**, so floating point gives the
///   same bits on every host;
/// * wasm **backtraces** for trap reports;
/// * the **pooling allocator**, sized for `concurrency` live instances (and, with `reaper`,
///   the finished stores that wait for the sandbox's reaper), because it instantiates an
///   order of magnitude faster than on-demand allocation. A freed slot is reset with
///   `memset` (only its dirty pages, found with `PAGEMAP_SCAN` on Linux 6.7+) up to 2 MiB of
///   memory and 64 KiB of table, instead of `madvise`: `madvise` takes the process's
///   address-space lock, so that two workers freeing instances at once waited for each other
///   (a no-op step cost 14 µs with it and under 4 µs without, and `-j2` ran slower than `-j1`).
pub fn build_engine(concurrency: u32, reaper: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        .parallel_compilation(true);

    // A component may hold a few core instances and memories; leave room for `concurrency`
    // components plus retries in flight, and, in a sandbox with a `reaper`, for the finished
    // stores that wait for it. Each slot costs the engine's start: every fiber stack gets a
    // guard page of its own (an `mprotect` each), and the slots' bookkeeping is fresh memory.
    let waiting = if reaper {
        2 * super::reaper::BATCH as u32
    } else {
        0
    };
    let slots = concurrency.max(1) * 4 + 8 + waiting;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(slots * 4)
        .total_component_instances(slots)
        .total_memories(slots * 2)
        .total_tables(slots * 4)
        .total_stacks(slots)
        .max_memories_per_module(1)
        .max_memories_per_component(4)
        .max_memory_size(4 << 30)
        .max_unused_warm_slots(slots)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A stable, printable digest of everything about `engine` that decides whether a compiled
/// artifact can be loaded: wasmtime's version, the target, and the compilation settings.
pub fn compatibility_digest(engine: &Engine) -> String {
    let mut h = StableHasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    let digest = h.0.finalize();
    digest.to_hex()[..16].to_string()
}

/// Feeds `Hash` into blake3, so the digest does not depend on std's hasher keys.
struct StableHasher(blake3::Hasher);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(b)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Advances the engines' epochs every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Ticks `first`, and each lane of `others` once it is made.
    pub(crate) fn start(first: &Engine, others: &Arc<[OnceLock<Option<super::Lane>>]>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let first = first.weak();
        let others = Arc::downgrade(others);
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hermetic-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Parked rather than slept, so that `drop` can wake it and not wait a tick.
                    std::thread::park_timeout(EPOCH_TICK);
                    let (Some(first), Some(others)) = (first.upgrade(), others.upgrade()) else {
                        break;
                    };
                    first.increment_epoch();
                    for lane in others.iter().filter_map(|l| l.get()).flatten() {
                        lane.engine.increment_epoch();
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock = include_str!("../../../Cargo.lock");
        let at = lock
            .find("name = \"wasmtime\"\nversion = \"")
            .expect("wasmtime in Cargo.lock");
        let rest = &lock[at + "name = \"wasmtime\"\nversion = \"".len()..];
        let version = &rest[..rest.find('"').unwrap()];
        assert_eq!(super::WASMTIME_VERSION, version);
    }
}
