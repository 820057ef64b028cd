//! Where the pool's threads leave events for the reporter.
//!
//! Workers push events here without waking anyone; the executor drains the outbox on a short
//! timer and reports the events in the order they were pushed. Waking the executor for every
//! event cost two cross-thread wake-ups per step, more than the rest of the pool's work on a
//! no-op step; a terminal display does not need events sooner than every few milliseconds.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::events::Event;

/// How often the executor drains the outbox.
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(2);

/// Room for events in each of the outbox's two buffers (the one the workers fill, the one the
/// executor reports from), reserved up front so that neither grows while a run is under way:
/// about 8,000 events, more than the pool's workers push between two drains of a no-op
/// workflow. Reserved address space costs nothing until it is written, while growing a buffer
/// copies it into fresh pages each time, and each fresh page costs a page fault (about 1.8 µs
/// on the virtual machines this was measured on).
pub(crate) const BUFFER: usize = 8192;

/// Events waiting to be reported, in the order they were pushed, each with the time it was
/// pushed.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// When the run started: events are timed from here.
    start: Instant,
    events: Mutex<Vec<(Duration, Event)>>,
}

impl Outbox {
    /// An outbox for a run that started at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            events: Mutex::new(Vec::with_capacity(BUFFER)),
        }
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Leaves `event` for the reporter.
    pub fn send(&self, event: Event) {
        self.send_at(self.now(), event);
    }

    /// Leaves `event` for the reporter, timed `at` (from [`Outbox::now`]): for a caller that
    /// has just read the clock, since a read costs as much as the push.
    pub fn send_at(&self, at: Duration, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, event));
    }

    /// Every event pushed so far, oldest first.
    #[cfg(test)]
    pub fn drain(&self) -> Vec<(Duration, Event)> {
        let mut events = Vec::new();
        self.drain_into(&mut events);
        events
    }

    /// Moves every event pushed so far, oldest first, into `into`, which must be empty; the
    /// outbox keeps `into`'s allocation for the next ones. Draining into the same buffer each
    /// time (emptied, not dropped) keeps both allocations: a fresh `Vec` after each drain made
    /// the workers regrow the outbox, thousands of events long while the reporting thread was
    /// busy, from nothing; at `--jobs 2` that was a fifth of a worker's time.
    pub fn drain_into(&self, into: &mut Vec<(Duration, Event)>) {
        debug_assert!(into.is_empty(), "drain_into an empty buffer");
        std::mem::swap(
            &mut *self.events.lock().unwrap_or_else(PoisonError::into_inner),
            into,
        );
    }
}
