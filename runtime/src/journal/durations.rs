//! The recent run times of each step, `.hermetic/durations.json`, for adaptive timeouts.
//!
//! After each run, every step with an `adaptive_timeout` that ran and succeeded on its first
//! attempt adds its run time; the newest [`KEEP`] are kept. (Only those steps: recording every
//! step of a 20,000-step workflow rewrote a megabyte after each run, for nothing.) A step with `adaptive_timeout: {factor, cap}` and at least
//! [`MIN_SAMPLES`] recorded times gets the wall-time limit `p95 × factor`, at least
//! [`MIN_TIMEOUT`] and at most `cap`, and never more than its `timeout:` when it sets one.
//! With fewer samples the step keeps its usual limit. A missing or unreadable file is an empty
//! history: it only tunes limits.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workflow::AdaptiveTimeout;

/// How many run times are kept per step.
pub const KEEP: usize = 20;
/// How many run times a step needs before its limit adapts.
pub const MIN_SAMPLES: usize = 5;
/// The shortest adaptive limit: below it, scheduling noise alone could time a step out.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Version of the file.
const VERSION: u32 = 1;

/// Recent run times by step, in microseconds, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    version: u32,
    steps: BTreeMap<String, Vec<u64>>,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("durations.json")
}

impl Durations {
    /// The history of the project whose state is in `state_dir`.
    pub fn load(state_dir: &Path) -> Self {
        super::read_json::<Self>(&path(state_dir))
            .filter(|d| d.version == VERSION)
            .unwrap_or_default()
    }

    /// Adds a run time of `step`.
    pub fn record(&mut self, step: &str, run: Duration) {
        let times = self.steps.entry(step.to_string()).or_default();
        times.push(run.as_micros().min(u128::from(u64::MAX)) as u64);
        let excess = times.len().saturating_sub(KEEP);
        times.drain(..excess);
    }

    /// Writes the history.
    pub fn save(&mut self, state_dir: &Path) -> io::Result<()> {
        self.version = VERSION;
        super::write_json_atomic(&path(state_dir), self)
    }

    /// The 95th percentile of `step`'s recorded times, once there are enough.
    pub fn p95(&self, step: &str) -> Option<Duration> {
        let times = self.steps.get(step).filter(|t| t.len() >= MIN_SAMPLES)?;
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let rank = ((0.95 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(Duration::from_micros(sorted[rank - 1]))
    }
}

/// The limit `adaptive` gives a step whose p95 run time is `p95` and whose `timeout:` is
/// `explicit`; `None` keeps the usual limit.
pub fn adaptive_limit(
    adaptive: AdaptiveTimeout,
    p95: Option<Duration>,
    explicit: Option<Duration>,
) -> Option<Duration> {
    let scaled = p95?.mul_f64(adaptive.factor);
    let limit = scaled.clamp(MIN_TIMEOUT, adaptive.cap.max(MIN_TIMEOUT));
    Some(explicit.map_or(limit, |t| limit.min(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_limit_is_p95_times_the_factor_within_bounds() {
        let mut d = Durations::default();
        for ms in [100, 120, 110, 90] {
            d.record("t", ms * MS);
        }
        assert_eq!(d.p95("t"), None, "too few samples");
        d.record("t", 2000 * MS);
        assert_eq!(d.p95("t"), Some(2000 * MS));
        let a = AdaptiveTimeout {
            factor: 3.0,
            cap: Duration::from_secs(5),
        };
        assert_eq!(adaptive_limit(a, Some(1200 * MS), None), Some(3600 * MS));
        assert_eq!(
            adaptive_limit(a, Some(2000 * MS), None),
            Some(5000 * MS),
            "capped"
        );
        assert_eq!(
            adaptive_limit(a, Some(MS), None),
            Some(MIN_TIMEOUT),
            "floor"
        );
        assert_eq!(
            adaptive_limit(a, Some(1200 * MS), Some(2000 * MS)),
            Some(2000 * MS)
        );
        assert_eq!(adaptive_limit(a, None, Some(2000 * MS)), None);
    }

    #[test]
    fn only_the_newest_times_are_kept_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Durations::default();
        for ms in 0..30 {
            d.record("t", ms * MS);
        }
        assert_eq!(d.steps["t"].len(), KEEP);
        assert_eq!(d.steps["t"][0], 10_000);
        d.save(dir.path()).unwrap();
        assert_eq!(Durations::load(dir.path()), d);
        std::fs::write(path(dir.path()), b"{not json").unwrap();
        assert_eq!(Durations::load(dir.path()), Durations::default());
    }
}
