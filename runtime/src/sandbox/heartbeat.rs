//! When a running guest last showed a sign of life, for stuck-step warnings.
//!
//! Output on stdout or stderr counts, the way CI services judge a silent job; the SDK's
//! heartbeat and progress calls will count too. Fuel does not: a guest spinning in a loop
//! burns fuel without making progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running guest's last sign of life. Shared between the guest's output streams, which
/// [`Heartbeat::beat`], and a watchdog, which reads [`Heartbeat::silent_for`].
#[derive(Debug)]
pub struct Heartbeat {
    /// When the attempt started.
    start: Instant,
    /// The last beat, in microseconds after `start`.
    last_us: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that last beat now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            last_us: AtomicU64::new(0),
        }
    }

    /// Records a sign of life.
    pub fn beat(&self) {
        let now = self.start.elapsed().as_micros() as u64;
        self.last_us.fetch_max(now, Ordering::Relaxed);
    }

    /// How long since the last sign of life.
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_micros(self.last_us.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_resets_the_silence() {
        let h = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(20));
        assert!(h.silent_for() >= Duration::from_millis(20));
        h.beat();
        assert!(h.silent_for() < Duration::from_millis(20));
    }
}
