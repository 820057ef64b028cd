//! The circuit breaker of each task module (`defaults.circuit_breaker`).
//!
//! A module whose steps keep failing is most likely broken, and every further step that runs it
//! wastes a worker until its own failure. After `failures` consecutive failed steps of one
//! module the breaker *opens*: the module's remaining steps fail at once, without running, with
//! a reason that names the module. After `cool_down` it is *half-open*: the next step is tried
//! (the others still fail at once while it runs). If it succeeds the breaker *closes*; if it
//! fails the breaker opens again for another cool-down.
//!
//! Only steps that reached an end count: a cache hit is a success, a step refused by an open
//! breaker counts for nothing. Time comes from the pool's clock, which under `--seed` is
//! virtual, so that a replay opens and half-opens the breaker at the same steps.

use std::collections::HashMap;
use std::time::Duration;

use hermetic_cache::Digest;

use crate::events::{CircuitState, Event};
use crate::workflow::CircuitBreaker;

/// Every module's breaker in one run.
#[derive(Debug)]
pub(crate) struct Breakers {
    /// The workflow's settings; `None` turns breaking off.
    config: Option<CircuitBreaker>,
    /// Breakers by module digest: two steps that name the same `.wasm` differently share one.
    /// Only modules with a failure since their last success are here: a closed breaker with
    /// no failures behaves as no breaker, and leaving it out lets a run whose steps all
    /// succeed skip the lookups (see [`Breakers::quiet`]).
    by_module: HashMap<Digest, Breaker>,
}

#[derive(Debug, Default)]
struct Breaker {
    /// Failed steps since the last success.
    consecutive: u32,
    state: State,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Closed,
    /// Opened at this time on the pool's clock.
    Open { since: Duration },
    /// Step `trial` is trying the module.
    HalfOpen { trial: usize },
}

/// A step's module, for the breaker: its digest, and its name for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Module<'a> {
    pub digest: Digest,
    pub name: &'a str,
}

impl Breakers {
    pub fn new(config: Option<CircuitBreaker>) -> Self {
        Self {
            config,
            by_module: HashMap::new(),
        }
    }

    /// Whether no module has failed since its last success: then every step is admitted and
    /// a success changes nothing, and neither [`Breakers::admit`] nor a success's
    /// [`Breakers::record`] describes the step's module.
    pub fn quiet(&self) -> bool {
        self.by_module.is_empty()
    }

    /// Whether step `step` (called `name`) may run its module at `now`; `module` describes the
    /// module, called only when some module has failed (see [`Breakers::quiet`]), since the
    /// pool calls this for every step. `Err` is the reason it fails without running;
    /// `Ok(Some(event))` reports that the breaker half-opened for it.
    pub fn admit<'m>(
        &mut self,
        module: impl FnOnce() -> Module<'m>,
        step: usize,
        name: &str,
        now: Duration,
    ) -> Result<Option<Event>, String> {
        let Some(config) = self.config else {
            return Ok(None);
        };
        if self.quiet() {
            return Ok(None);
        }
        let module = module();
        let Some(breaker) = self.by_module.get_mut(&module.digest) else {
            return Ok(None);
        };
        match breaker.state {
            State::Closed => Ok(None),
            State::HalfOpen { trial } if trial == step => Ok(None),
            State::HalfOpen { trial: _ } => Err(format!(
                "not run: the circuit breaker of `{}` is half-open and another step is trying it",
                module.name
            )),
            State::Open { since } => {
                let open_for = now.saturating_sub(since);
                if open_for >= config.cool_down {
                    breaker.state = State::HalfOpen { trial: step };
                    Ok(Some(Event::Circuit {
                        module: module.name.to_string(),
                        state: CircuitState::HalfOpen,
                        message: format!("cool-down over: `{name}` tries the module"),
                    }))
                } else {
                    Err(format!(
                        "not run: the circuit breaker of `{}` is open after {} consecutive \
                         failures; one step tries it again in {}",
                        module.name,
                        breaker.consecutive,
                        crate::workflow::units::format_duration(config.cool_down - open_for)
                    ))
                }
            }
        }
    }

    /// Records the end of a step that ran the module `module` describes (or was served from
    /// the cache), and reports the breaker's change of state, if any. A success while
    /// [`Breakers::quiet`] changes nothing and does not call `module`.
    pub fn record<'m>(
        &mut self,
        module: impl FnOnce() -> Module<'m>,
        name: &str,
        succeeded: bool,
        now: Duration,
    ) -> Option<Event> {
        let config = self.config?;
        if succeeded && self.quiet() {
            return None;
        }
        let module = module();
        let event = |state, message| {
            Some(Event::Circuit {
                module: module.name.to_string(),
                state,
                message,
            })
        };
        if succeeded {
            // A module without failures since its last success has no entry, and keeps none.
            let breaker = self.by_module.get_mut(&module.digest)?;
            if breaker.state == State::Closed {
                self.by_module.remove(&module.digest);
                return None;
            }
            breaker.consecutive = 0;
            breaker.state = State::Closed;
            return event(CircuitState::Closed, format!("`{name}` succeeded"));
        }
        let breaker = self.by_module.entry(module.digest).or_default();
        breaker.consecutive += 1;
        let cool_down = crate::workflow::units::format_duration(config.cool_down);
        match breaker.state {
            State::HalfOpen { .. } => {
                breaker.state = State::Open { since: now };
                event(
                    CircuitState::Open,
                    format!(
                        "`{name}` failed again; its other steps fail without running for {cool_down}"
                    ),
                )
            }
            State::Closed if breaker.consecutive >= config.failures => {
                breaker.state = State::Open { since: now };
                event(
                    CircuitState::Open,
                    format!(
                        "{} consecutive failures, the last `{name}`; its other steps fail without \
                         running for {cool_down}",
                        breaker.consecutive
                    ),
                )
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn module() -> Module<'static> {
        Module {
            digest: Digest::of(b"module"),
            name: "flaky.wasm",
        }
    }

    fn breakers() -> Breakers {
        Breakers::new(Some(CircuitBreaker {
            failures: 2,
            cool_down: 10 * SECOND,
        }))
    }

    fn state(event: Option<Event>) -> Option<CircuitState> {
        match event {
            Some(Event::Circuit { state, .. }) => Some(state),
            _ => None,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_refuses_until_the_cool_down() {
        let mut b = breakers();
        assert_eq!(b.admit(module, 0, "a", SECOND), Ok(None));
        assert_eq!(state(b.record(module, "a", false, SECOND)), None);
        assert_eq!(
            state(b.record(module, "b", false, 2 * SECOND)),
            Some(CircuitState::Open)
        );
        assert_eq!(
            b.admit(module, 2, "c", 3 * SECOND),
            Err(
                "not run: the circuit breaker of `flaky.wasm` is open after 2 consecutive \
                 failures; one step tries it again in 9s"
                    .into()
            )
        );
        // Another module is not affected.
        let other = Module {
            digest: Digest::of(b"other"),
            name: "other.wasm",
        };
        assert_eq!(b.admit(|| other, 3, "d", 3 * SECOND), Ok(None));
    }

    #[test]
    fn half_opens_for_one_trial_then_closes_on_success() {
        let mut b = breakers();
        b.record(module, "a", false, SECOND);
        b.record(module, "b", false, SECOND);
        assert_eq!(
            state(b.admit(module, 5, "e", 11 * SECOND).unwrap()),
            Some(CircuitState::HalfOpen)
        );
        // Only the trial runs.
        assert!(b.admit(module, 6, "f", 11 * SECOND).is_err());
        assert_eq!(b.admit(module, 5, "e", 11 * SECOND), Ok(None));
        assert_eq!(
            state(b.record(module, "e", true, 12 * SECOND)),
            Some(CircuitState::Closed)
        );
        assert_eq!(b.admit(module, 6, "f", 12 * SECOND), Ok(None));
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let mut b = breakers();
        b.record(module, "a", false, SECOND);
        b.record(module, "b", false, SECOND);
        b.admit(module, 5, "e", 11 * SECOND).unwrap();
        assert_eq!(
            state(b.record(module, "e", false, 12 * SECOND)),
            Some(CircuitState::Open)
        );
        assert!(b.admit(module, 6, "f", 13 * SECOND).is_err());
        assert!(b.admit(module, 6, "f", 22 * SECOND).is_ok());
    }

    #[test]
    fn a_quiet_run_never_describes_a_module() {
        let mut b = breakers();
        let unused = || -> Module<'static> { panic!("described while quiet") };
        assert_eq!(b.admit(unused, 0, "a", SECOND), Ok(None));
        assert_eq!(b.record(unused, "a", true, SECOND), None);
        assert!(b.quiet());
    }

    #[test]
    fn a_success_resets_the_count_and_off_never_opens() {
        let mut b = breakers();
        assert!(b.quiet());
        b.record(module, "a", false, SECOND);
        assert!(!b.quiet());
        let other = || Module {
            digest: Digest::of(b"other"),
            name: "other.wasm",
        };
        assert_eq!(b.record(other, "o", true, SECOND), None);
        assert_eq!(
            b.by_module.len(),
            1,
            "another module's success adds no breaker"
        );
        b.record(module, "b", true, SECOND);
        assert!(b.quiet(), "a success forgets the module's failures");
        assert_eq!(state(b.record(module, "c", false, SECOND)), None);
        let mut off = Breakers::new(None);
        for _ in 0..10 {
            assert_eq!(off.record(module, "a", false, SECOND), None);
        }
        assert_eq!(off.admit(module, 0, "a", SECOND), Ok(None));
    }
}
