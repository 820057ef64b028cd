//! Where the pool's threads leave events for the reporter.
//!
//! Workers push events here without waking anyone; the executor drains the outbox on a short
//! timer and reports the events in the order they were pushed. Waking the executor for every
//! event cost two cross-thread wake-ups per step, more than the rest of the pool's work on a
//! no-op step; a terminal display does not need events sooner than every few milliseconds.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::events::Event;

/// How often the executor drains the outbox.
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(2);

/// Events waiting to be reported, in the order they were pushed.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    events: Mutex<Vec<Event>>,
}

impl Outbox {
    /// Leaves `event` for the reporter.
    pub fn send(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// Every event pushed so far, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
