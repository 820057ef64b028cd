//! Virtual clocks: time inside the sandbox is a function of what the guest did, never of the host.
//!
//! * The monotonic clock starts at zero and advances by [`TICK`] on every read, so time never
//!   goes backwards and a guest that spins on the clock makes progress.
//! * A guest sleep (WASI p1 `poll_oneoff` on a clock) does not wait: it advances the virtual
//!   clock to the wake-up time and returns at once. Sleeping is deterministic and free.
//! * The wall clock is a fixed epoch plus the monotonic clock's reading.
//! * Under `hermetic chaos`, a [`ClockJump`] makes both clocks jump at one of the guest's
//!   reads: the wall clock by any amount, backwards too (an NTP step), the monotonic clock
//!   forward only (a suspended machine), as real clocks do.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
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

/// A jump of the clocks at the guest's `at_read`-th read of either of them (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockJump {
    /// Which read jumps.
    pub at_read: u32,
    /// How far the wall clock jumps, in seconds; negative goes back.
    pub wall_secs: i64,
    /// How far the monotonic clock jumps forward, in seconds.
    pub monotonic_secs: u64,
}

/// The clocks' shared count of reads and the wall clock's offset after a [`ClockJump`].
#[derive(Debug, Default)]
pub(crate) struct Jumps {
    jump: Option<ClockJump>,
    reads: AtomicU32,
    /// Nanoseconds added to the wall clock once it jumped.
    wall_offset: AtomicI64,
}

impl Jumps {
    pub(crate) fn new(jump: Option<ClockJump>) -> Arc<Self> {
        Arc::new(Self {
            jump,
            ..Self::default()
        })
    }

    /// Counts a read; on the jumping one, moves the clocks.
    fn on_read(&self, clock: &VirtualClock) {
        let Some(jump) = self.jump else { return };
        if self.reads.fetch_add(1, Ordering::Relaxed) + 1 == jump.at_read {
            clock.advance_to(
                clock
                    .peek()
                    .saturating_add(jump.monotonic_secs.saturating_mul(1_000_000_000)),
            );
            self.wall_offset.store(
                jump.wall_secs.saturating_mul(1_000_000_000),
                Ordering::Relaxed,
            );
        }
    }
}

/// The monotonic clock handed to WASI.
#[derive(Debug)]
pub(crate) struct Monotonic {
    pub(crate) clock: VirtualClock,
    pub(crate) jumps: Arc<Jumps>,
}

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        TICK
    }
    fn now(&self) -> u64 {
        self.jumps.on_read(&self.clock);
        self.clock.read()
    }
}

/// The wall clock handed to WASI: `epoch + monotonic`, plus a jump's offset.
#[derive(Debug)]
pub(crate) struct Wall {
    pub(crate) epoch: Duration,
    pub(crate) clock: VirtualClock,
    pub(crate) jumps: Arc<Jumps>,
}

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(TICK)
    }
    fn now(&self) -> Duration {
        self.jumps.on_read(&self.clock);
        let nanos = self.epoch.as_nanos() as i128
            + i128::from(self.clock.read())
            + i128::from(self.jumps.wall_offset.load(Ordering::Relaxed));
        Duration::from_nanos(nanos.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_moves_the_wall_clock_either_way_and_the_monotonic_clock_forward() {
        let clock = VirtualClock::default();
        let jumps = Jumps::new(Some(ClockJump {
            at_read: 3,
            wall_secs: -3600,
            monotonic_secs: 10,
        }));
        let epoch = Duration::from_secs(DEFAULT_EPOCH_SECS);
        let wall = Wall {
            epoch,
            clock: clock.clone(),
            jumps: jumps.clone(),
        };
        let mono = Monotonic { clock, jumps };
        let first = wall.now();
        let second = mono.now();
        assert!(first > epoch && second < 1_000_000);
        // The third read (of either clock) jumps.
        let third = wall.now();
        // An hour back, plus the monotonic leap of 10 s that the wall clock follows.
        assert_eq!((first - third).as_secs(), 3589, "{third:?} {first:?}");
        assert!(mono.now() > 10_000_000_000);
        // Once.
        let later = wall.now();
        assert!(later > third && later - third < Duration::from_millis(1));
    }
}
