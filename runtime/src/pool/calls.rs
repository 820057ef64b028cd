//! A step's host calls (`hermetic_v1`, see [`crate::sandbox::host_calls`]) as events.
//!
//! Progress is reported at most every [`PROGRESS_INTERVAL`] per step, and always when the
//! work is complete, so that a task reporting every item cannot flood the event stream. Log
//! lines are events too, up to [`MAX_LOG_EVENTS`] per attempt; past that one warning says the
//! rest were dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use crate::events::Event;
use crate::sandbox::{HostCallSink, LogLevel};

/// The shortest time between two progress events of one step.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// The most log events one attempt sends.
pub(crate) const MAX_LOG_EVENTS: usize = 1000;

/// Turns one attempt's host calls into events.
#[derive(Debug)]
pub(crate) struct StepCalls {
    step: String,
    events: Arc<Outbox>,
    /// When progress was last reported.
    last_progress: Mutex<Option<Instant>>,
    /// Log lines seen so far.
    logs: AtomicUsize,
}

impl StepCalls {
    pub fn new(step: &str, events: Arc<Outbox>) -> Self {
        Self {
            step: step.to_string(),
            events,
            last_progress: Mutex::new(None),
            logs: AtomicUsize::new(0),
        }
    }
}

impl HostCallSink for StepCalls {
    fn progress(&self, done: u64, total: Option<u64>) {
        let now = Instant::now();
        {
            let mut last = self
                .last_progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let complete = total.is_some_and(|t| done >= t);
            if last.is_some_and(|t| now - t < PROGRESS_INTERVAL) && !complete {
                return;
            }
            *last = Some(now);
        }
        self.events.send(Event::StepProgress {
            step: self.step.clone(),
            done,
            total,
        });
    }

    fn log(&self, level: LogLevel, message: &str) {
        let n = self.logs.fetch_add(1, Ordering::Relaxed);
        if n < MAX_LOG_EVENTS {
            self.events.send(Event::StepLog {
                step: self.step.clone(),
                level,
                message: message.to_string(),
            });
        } else if n == MAX_LOG_EVENTS {
            self.events.send(Event::Warning {
                step: Some(self.step.clone()),
                message: format!("more than {MAX_LOG_EVENTS} log lines; the rest are not reported"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_but_completion_always_reported() {
        let outbox = Arc::new(Outbox::new(Instant::now()));
        let calls = StepCalls::new("s", outbox.clone());
        for done in 0..=50 {
            calls.progress(done, Some(50));
        }
        let reported: Vec<u64> = outbox
            .drain()
            .into_iter()
            .map(|(_, e)| match e {
                Event::StepProgress { done, .. } => done,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reported.first(), Some(&0));
        assert_eq!(reported.last(), Some(&50));
        assert!(reported.len() < 10, "{reported:?}");
    }

    #[test]
    fn log_lines_are_capped_with_one_warning() {
        let outbox = Arc::new(Outbox::new(Instant::now()));
        let calls = StepCalls::new("s", outbox.clone());
        for _ in 0..MAX_LOG_EVENTS + 5 {
            calls.log(LogLevel::Info, "hi");
        }
        let events = outbox.drain();
        assert_eq!(events.len(), MAX_LOG_EVENTS + 1);
        assert!(matches!(events.last(), Some((_, Event::Warning { .. }))));
    }
}
