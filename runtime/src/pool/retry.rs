//! Retries: which failed attempts are tried again, and after how long.
//!
//! A guest in the sandbox is deterministic: the same module on the same inputs fails the same
//! way every time, so by default only the failures that are not (a wall-clock timeout, a host
//! error) are retried; `retry_on:` chooses others. The delay before attempt `n + 1` is
//! `backoff × 2^(n-1)`, at most [`MAX_DELAY`], with "equal jitter": half of it fixed, the other
//! half drawn from the run's seed, the step and the attempt. Steps that fail together therefore
//! do not retry in lockstep, and a run with the same seed waits exactly as long.
//!
//! A step waiting for its next attempt does not hold a worker: it waits in the ready queues
//! (see [`super::queue::Queues::delay`]) and is dispatched again when its time comes.

use std::time::{Duration, Instant};

use super::attempt::AttemptResult;
use super::rng::splitmix64;
use crate::workflow::Step;

/// The longest delay between two attempts: the largest `backoff:` a workflow may set.
pub(crate) const MAX_DELAY: Duration = crate::workflow::MAX_BACKOFF;

/// A step's failed attempts so far, kept while it waits to be tried again.
#[derive(Debug, Clone)]
pub(crate) struct Retrying {
    /// The number of the next attempt (2 for the first retry).
    pub attempt: u32,
    /// Each failed attempt: its number and its failure.
    pub failed: Vec<(u32, String)>,
    /// The host time of the attempts so far.
    pub duration: Duration,
    /// When the next attempt may start.
    pub not_before: Instant,
}

/// What to do after attempt `attempt` of step `def` ended with `result`: `Some(delay)` retries
/// after `delay`. `result.message` gains the reason a failure is not retried when `retries`
/// would have allowed it.
pub(crate) fn decide(
    def: &Step,
    result: &mut AttemptResult,
    attempt: u32,
    seed: u64,
    step: usize,
) -> Option<Duration> {
    if result.succeeded || attempt > def.retries {
        return None;
    }
    if !def.retry_on.matches(result.outcome, result.exit_code) {
        let kind = match (result.outcome, result.exit_code) {
            ("exit", Some(code)) => format!("exit code {code}"),
            ("timed_out", _) => "timeout".to_string(),
            (kind, _) => kind.to_string(),
        };
        let message = result.message.get_or_insert_with(String::new);
        message.push_str(&format!(
            " (not retried: {kind} is not in `retry_on: {}`)",
            def.retry_on
        ));
        return None;
    }
    Some(delay(def.backoff, attempt, seed, step))
}

/// The delay after failed attempt `attempt` (1-based) of step number `step`.
pub(crate) fn delay(backoff: Duration, attempt: u32, seed: u64, step: usize) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let full = backoff.saturating_mul(1 << doublings).min(MAX_DELAY);
    let half = full / 2;
    let draw = splitmix64(seed ^ (step as u64).rotate_left(32) ^ u64::from(attempt));
    let jitter_nanos = (half.as_nanos() as u64)
        .checked_add(1)
        .map_or(0, |n| draw % n);
    half + Duration::from_nanos(jitter_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_with_half_of_each_drawn_from_the_seed() {
        for attempt in 1..=4u32 {
            let full = 100 * MS * (1 << (attempt - 1));
            let d = delay(100 * MS, attempt, 7, 3);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            // The same seed, step and attempt: the same delay.
            assert_eq!(d, delay(100 * MS, attempt, 7, 3));
        }
        let draws: std::collections::BTreeSet<Duration> =
            (0..16).map(|seed| delay(100 * MS, 1, seed, 3)).collect();
        assert!(
            draws.len() > 8,
            "the jitter varies with the seed: {draws:?}"
        );
        // Two steps failing together wait different times.
        assert_ne!(delay(100 * MS, 1, 7, 3), delay(100 * MS, 1, 7, 4));
    }

    #[test]
    fn delays_are_capped() {
        assert!(delay(Duration::from_secs(10), 20, 1, 1) <= MAX_DELAY);
        assert!(delay(Duration::from_secs(10), 20, 1, 1) >= MAX_DELAY / 2);
        assert!(delay(MAX_DELAY, 1, 1, 1) >= MAX_DELAY / 2);
        assert_eq!(delay(Duration::ZERO, 3, 1, 1), Duration::ZERO);
    }
}
