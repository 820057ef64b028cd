//! Virtual clocks: time inside the sandbox is a function of what the guest did, never of the host.
//!
//! * The monotonic clock starts at zero and advances by [`TICK`] on every read, so time never
//!   goes backwards and a guest that spins on the clock makes progress.
//! * A guest sleep (WASI p1 `poll_oneoff` on a clock) does not wait: it advances the virtual
//!   clock to the wake-up time and returns at once. Sleeping is deterministic and free.
//! * The wall clock is a fixed epoch plus the monotonic clock's reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// How far the monotonic clock advances on each read: one microsecond.
pub const TICK: u64 = 1_000;

/// The default wall-clock epoch: 2000-01-01T00:00:00Z, in the spirit of `SOURCE_DATE_EPOCH`.
pub const DEFAULT_EPOCH_SECS: u64 = 946_684_800;

/// A shared, deterministic nanosecond counter. Cloning shares the counter.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    nanos: Arc<AtomicU64>,
}

impl VirtualClock {
    /// Reads the clock, advancing it by [`TICK`].
    pub fn read(&self) -> u64 {
        self.nanos.fetch_add(TICK, Ordering::Relaxed) + TICK
    }

    /// The current reading without advancing it.
    pub fn peek(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }

    /// Moves the clock forward to `t` if it is behind it (a sleep until `t`).
    pub fn advance_to(&self, t: u64) {
        self.nanos.fetch_max(t, Ordering::Relaxed);
    }
}

/// The monotonic clock handed to WASI.
#[derive(Debug)]
pub(crate) struct Monotonic(pub(crate) VirtualClock);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        TICK
    }
    fn now(&self) -> u64 {
        self.0.read()
    }
}

/// The wall clock handed to WASI: `epoch + monotonic`.
#[derive(Debug)]
pub(crate) struct Wall {
    pub(crate) epoch: Duration,
    pub(crate) clock: VirtualClock,
}

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(TICK)
    }
    fn now(&self) -> Duration {
        self.epoch + Duration::from_nanos(self.clock.read())
    }
}
