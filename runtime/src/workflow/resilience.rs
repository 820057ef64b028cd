//! How failures are handled: `retry_on`, `backoff`, `adaptive_timeout`, `stuck_after` and
//! `defaults.circuit_breaker`, and the decoding of their values.
//!
//! ```yaml
//! defaults:
//!   retries: 2
//!   retry_on: [timeout, host_error, 75]   # the default is [timeout, host_error]
//!   backoff: 1s                           # doubles for each later retry
//!   stuck_after: 2m                       # or `off`
//!   circuit_breaker: {failures: 3, cool_down: 1m}
//! steps:
//!   test:
//!     task: tools/test.wasm
//!     adaptive_timeout: {factor: 3, cap: 10m}
//! ```
//!
//! This module only describes what the file asks for; the pool implements the behaviour.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::decode::{Decoder, Entry, Keys};
use super::node::{Node, Value};
use super::suggest::{did_you_mean, list};
use super::units;

/// `backoff` when neither the step nor `defaults` sets it.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// The longest `backoff`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);
/// `stuck_after` when neither the step nor `defaults` sets it.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(60);
/// `adaptive_timeout.factor` when the map does not set it.
pub const DEFAULT_ADAPTIVE_FACTOR: f64 = 3.0;
/// `circuit_breaker.failures` when the map does not set it, or `defaults` has no
/// `circuit_breaker`.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// `circuit_breaker.cool_down` when the map does not set it, or `defaults` has no
/// `circuit_breaker`.
pub const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);

/// Bounds of `adaptive_timeout.factor`.
const FACTOR_RANGE: std::ops::RangeInclusive<f64> = 1.0..=100.0;
/// Bounds of `circuit_breaker.failures`.
const FAILURES_RANGE: std::ops::RangeInclusive<i128> = 1..=1000;
/// Bounds of an exit code in `retry_on`.
const EXIT_CODE_RANGE: std::ops::RangeInclusive<i128> = 1..=255;

const ADAPTIVE_KEYS: &[&str] = &["factor", "cap"];
const BREAKER_KEYS: &[&str] = &["failures", "cool_down"];
const ADAPTIVE_EXAMPLE: &str = "`adaptive_timeout: {factor: 3, cap: 10m}`";
const BREAKER_EXAMPLE: &str = "`circuit_breaker: {failures: 5, cool_down: 30s}`";

/// A failed attempt's outcome kinds that `retry_on:` can name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum RetryOutcome {
    /// `timeout`: the attempt ran out of wall time.
    Timeout,
    /// `trap`: the guest trapped.
    Trap,
    /// `out_of_fuel`: the attempt used up its fuel.
    OutOfFuel,
    /// `memory_limit`: the guest tried to grow memory past its limit.
    MemoryLimit,
    /// `output_limit`: the guest wrote more than the output limit.
    OutputLimit,
    /// `host_error`: hermetic itself failed to run the attempt.
    HostError,
    /// `outputs`: the guest exited with 0 but its declared outputs were missing or invalid.
    Outputs,
    /// `exit`: the guest exited with any non-zero code.
    Exit,
}

impl RetryOutcome {
    /// Every outcome, in the order they are listed in messages.
    pub const ALL: [RetryOutcome; 8] = [
        Self::Timeout,
        Self::Trap,
        Self::OutOfFuel,
        Self::MemoryLimit,
        Self::OutputLimit,
        Self::HostError,
        Self::Outputs,
        Self::Exit,
    ];

    /// The name written in `retry_on:`, e.g. `out_of_fuel`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Trap => "trap",
            Self::OutOfFuel => "out_of_fuel",
            Self::MemoryLimit => "memory_limit",
            Self::OutputLimit => "output_limit",
            Self::HostError => "host_error",
            Self::Outputs => "outputs",
            Self::Exit => "exit",
        }
    }

    /// The outcome written `name` in `retry_on:`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The outcome for a sandbox outcome kind (`timed_out`, `trap`, …; the YAML name is
    /// also accepted). `None` for `success` and unknown kinds.
    fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "timed_out" => Some(Self::Timeout),
            _ => Self::from_name(kind),
        }
    }
}

impl fmt::Display for RetryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`RetryOutcome`]s, one bit each: every step holds one, and as a `BTreeSet` the
/// default set was an allocation per step, 10,000 of them for 10,000 steps before the first
/// could start. Iterates in the order of [`RetryOutcome::ALL`], as the `BTreeSet` did.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OutcomeSet(u8);

impl OutcomeSet {
    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self(0)
    }

    const fn bit(outcome: RetryOutcome) -> u8 {
        1 << outcome as u8
    }

    /// Whether `outcome` is in the set.
    #[must_use]
    pub const fn contains(self, outcome: RetryOutcome) -> bool {
        self.0 & Self::bit(outcome) != 0
    }

    /// Adds `outcome`; whether it was not in the set already.
    pub fn insert(&mut self, outcome: RetryOutcome) -> bool {
        let added = !self.contains(outcome);
        self.0 |= Self::bit(outcome);
        added
    }

    /// The outcomes in the set, in the order of [`RetryOutcome::ALL`].
    pub fn iter(self) -> impl Iterator<Item = RetryOutcome> {
        RetryOutcome::ALL
            .into_iter()
            .filter(move |&o| self.contains(o))
    }
}

impl fmt::Debug for OutcomeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<RetryOutcome> for OutcomeSet {
    fn from_iter<I: IntoIterator<Item = RetryOutcome>>(outcomes: I) -> Self {
        let mut set = Self::new();
        for o in outcomes {
            set.insert(o);
        }
        set
    }
}

impl<const N: usize> From<[RetryOutcome; N]> for OutcomeSet {
    fn from(outcomes: [RetryOutcome; N]) -> Self {
        outcomes.into_iter().collect()
    }
}

// One bit per outcome.
const _: () = assert!(RetryOutcome::ALL.len() <= u8::BITS as usize);

/// Which failed attempts are retried.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryOn {
    /// The outcome kinds that are retried.
    pub outcomes: OutcomeSet,
    /// Exit codes (1..=255) that are retried even without [`RetryOutcome::Exit`].
    pub exit_codes: BTreeSet<i32>,
}

impl RetryOn {
    /// The default: `[timeout, host_error]` — the only failures that are not deterministic
    /// in a hermetic sandbox.
    #[must_use]
    pub fn default_set() -> Self {
        Self {
            outcomes: OutcomeSet::from([RetryOutcome::Timeout, RetryOutcome::HostError]),
            exit_codes: BTreeSet::new(),
        }
    }

    /// Nothing is retried (`retry_on: []`).
    pub(crate) fn empty() -> Self {
        Self {
            outcomes: OutcomeSet::new(),
            exit_codes: BTreeSet::new(),
        }
    }

    /// Whether an attempt that ended with sandbox outcome kind `kind` and `exit_code` is
    /// retried.
    ///
    /// `kind` is one of `exit`, `trap`, `out_of_fuel`, `timed_out`, `memory_limit`,
    /// `output_limit`, `outputs` and `host_error` (the sandbox says `timed_out` where the
    /// file says `timeout`; both are accepted). An `exit` kind matches
    /// [`RetryOutcome::Exit`] (any non-zero code) or a listed exit code; exit code 0 and
    /// `success` never match.
    #[must_use]
    pub fn matches(&self, kind: &str, exit_code: Option<i32>) -> bool {
        let Some(outcome) = RetryOutcome::from_kind(kind) else {
            return false;
        };
        if outcome == RetryOutcome::Exit {
            return match exit_code {
                Some(0) => false,
                Some(code) => {
                    self.outcomes.contains(RetryOutcome::Exit) || self.exit_codes.contains(&code)
                }
                None => self.outcomes.contains(RetryOutcome::Exit),
            };
        }
        self.outcomes.contains(outcome)
    }
}

impl Default for RetryOn {
    fn default() -> Self {
        Self::default_set()
    }
}

impl fmt::Display for RetryOn {
    /// Renders like the YAML: `[timeout, host_error, 3, 75]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .outcomes
            .iter()
            .map(|o| o.to_string())
            .chain(self.exit_codes.iter().map(ToString::to_string))
            .collect();
        write!(f, "[{}]", items.join(", "))
    }
}

/// `adaptive_timeout:` — the wall-time limit comes from past runs: p95 × factor, at most
/// cap.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptiveTimeout {
    /// What the p95 of past successful run times is multiplied by, 1..=100 (default
    /// [`DEFAULT_ADAPTIVE_FACTOR`]).
    pub factor: f64,
    /// The largest limit this may give.
    pub cap: Duration,
}

/// `defaults.circuit_breaker:` — per task module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CircuitBreaker {
    /// How many consecutive failures of steps running the same module open the breaker,
    /// 1..=1000 (default [`DEFAULT_BREAKER_FAILURES`]).
    pub failures: u32,
    /// How long the breaker stays open before one step is tried again (default
    /// [`DEFAULT_BREAKER_COOL_DOWN`]).
    pub cool_down: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            failures: DEFAULT_BREAKER_FAILURES,
            cool_down: DEFAULT_BREAKER_COOL_DOWN,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Whether the value is the word `off`.
fn is_off(node: &Node) -> bool {
    matches!(&node.value, Value::Str(s) if s == "off")
}

/// After a type error, suggests `off` for a boolean `false`.
fn suggest_off(d: &mut Decoder<'_>, node: &Node) {
    if node.value == Value::Bool(false)
        && let Some(last) = d.diagnostics.last_mut()
    {
        last.help = Some("write `off`".to_owned());
    }
}

/// The names and codes `retry_on` accepts, for help lines.
fn retry_on_help() -> String {
    let names: Vec<&str> = RetryOutcome::ALL.iter().map(|o| o.name()).collect();
    format!(
        "`retry_on` lists {} (any non-zero exit code), or exit codes from 1 to 255",
        list(&names, "or")
    )
}

/// `retry_on:` — a list of outcome names and exit codes (a single item may be written
/// without the list).
pub(crate) fn retry_on(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<RetryOn> {
    let items: &[Node] = match &e.value.value {
        Value::Null => &[],
        Value::Seq(items) => items,
        Value::Str(_) | Value::Int(_) => std::slice::from_ref(e.value),
        _ => {
            d.type_error(e, "a list of outcomes and exit codes");
            return None;
        }
    };
    let mut retry_on = RetryOn::empty();
    let mut seen: Vec<(String, &Node)> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        if repeated(d, item, &seen) {
            ok = false;
            continue;
        }
        ok &= match &item.value {
            Value::Str(name) => retry_on_name(d, item, name, &mut retry_on),
            Value::Int(code) => retry_on_code(d, item, *code, &mut retry_on),
            _ => {
                let diag = d
                    .error(
                        item.span,
                        format!(
                            "expected an outcome or exit code in `retry_on`, found {}",
                            item.describe()
                        ),
                    )
                    .with_help(retry_on_help());
                d.report(diag);
                false
            }
        };
        if let Some(text) = item.scalar_text() {
            seen.push((text, item));
        }
    }
    ok.then_some(retry_on)
}

/// Reports `item` if it repeats an earlier item of `retry_on`; returns whether it did.
fn repeated(d: &mut Decoder<'_>, item: &Node, seen: &[(String, &Node)]) -> bool {
    let Some(text) = item.scalar_text() else {
        return false;
    };
    let Some((_, first)) = seen.iter().find(|(t, _)| *t == text) else {
        return false;
    };
    let diag = d
        .error(item.span, format!("`{text}` is listed twice in `retry_on`"))
        .with_note(Some(first.span), "first listed here");
    d.report(diag);
    true
}

/// Adds the outcome called `name`; `false` if it is unknown (and reported).
fn retry_on_name(d: &mut Decoder<'_>, item: &Node, name: &str, into: &mut RetryOn) -> bool {
    if let Some(outcome) = RetryOutcome::from_name(name) {
        into.outcomes.insert(outcome);
        return true;
    }
    let names = RetryOutcome::ALL.iter().map(|o| o.name());
    let help = match did_you_mean(name, names) {
        Some(guess) => format!("did you mean `{guess}`? {}", retry_on_help()),
        None => retry_on_help(),
    };
    let diag = d
        .error(item.span, format!("unknown outcome `{name}` in `retry_on`"))
        .with_help(help);
    d.report(diag);
    false
}

/// Adds exit code `code`; `false` if it is out of range (and reported).
fn retry_on_code(d: &mut Decoder<'_>, item: &Node, code: i128, into: &mut RetryOn) -> bool {
    if EXIT_CODE_RANGE.contains(&code) {
        into.exit_codes.insert(code as i32);
        return true;
    }
    let help = if code == 0 {
        "exit code 0 is success, which is never retried; `exit` retries any non-zero code"
    } else {
        "a guest's exit code is from 1 to 255 when it fails; `exit` retries any of them"
    };
    let diag = d
        .error(
            item.span,
            format!(
                "an exit code in `retry_on` must be from 1 to 255, found `{}`",
                item.raw
            ),
        )
        .with_help(help);
    d.report(diag);
    false
}

/// `backoff:` — a duration of at most [`MAX_BACKOFF`].
pub(crate) fn backoff(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<Duration> {
    let backoff = d.unit(e, "a duration", units::parse_duration)?;
    if backoff > MAX_BACKOFF {
        let diag = d
            .error(
                e.value.span,
                format!(
                    "`backoff` must be at most {}, found `{}`",
                    units::format_duration(MAX_BACKOFF),
                    e.value.raw
                ),
            )
            .with_help(
                "`backoff` is the delay before the first retry; it doubles for each later retry",
            );
        d.report(diag);
        return None;
    }
    Some(backoff)
}

/// `stuck_after:` — a duration, or `off` (`Some(None)`).
pub(crate) fn stuck_after(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<Option<Duration>> {
    if is_off(e.value) {
        return Some(None);
    }
    let stuck_after = d.unit(e, "a duration or `off`", units::parse_duration);
    if stuck_after.is_none() {
        suggest_off(d, e.value);
    }
    stuck_after.map(Some)
}

/// `adaptive_timeout:` — `{factor: 3, cap: 10m}`, or `off` (`Some(None)`).
pub(crate) fn adaptive_timeout(
    d: &mut Decoder<'_>,
    e: &Entry<'_>,
) -> Option<Option<AdaptiveTimeout>> {
    if is_off(e.value) {
        return Some(None);
    }
    let pairs = match &e.value.value {
        Value::Map(pairs) => pairs.as_slice(),
        Value::Null => &[],
        _ => {
            d.type_error(e, &format!("a map like {ADAPTIVE_EXAMPLE} or `off`"));
            suggest_off(d, e.value);
            return None;
        }
    };
    let keys = Keys {
        place: "in `adaptive_timeout`".to_owned(),
        allowed: ADAPTIVE_KEYS,
        elsewhere: &|_| None,
    };
    let entries = d.known_entries(pairs, &keys);
    let misspelt_cap = d.suggested.iter().any(|k| k == "cap");
    let mut factor = Some(DEFAULT_ADAPTIVE_FACTOR);
    let mut cap = None;
    for entry in &entries {
        match entry.key {
            "factor" => factor = adaptive_factor(d, entry),
            "cap" => cap = d.unit(entry, "a duration", units::parse_duration),
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    if !misspelt_cap && !entries.iter().any(|entry| entry.key == "cap") {
        let diag = d
            .error(e.key_node.span, "`adaptive_timeout` has no `cap`")
            .with_help(format!(
                "add the longest the adaptive limit may be, e.g. {ADAPTIVE_EXAMPLE}"
            ));
        d.report(diag);
    }
    Some(Some(AdaptiveTimeout {
        factor: factor?,
        cap: cap?,
    }))
}

/// `factor:` — a number from 1 to 100.
fn adaptive_factor(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<f64> {
    let factor = match e.value.value {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => {
            d.type_error(e, "a number from 1 to 100");
            return None;
        }
    };
    if FACTOR_RANGE.contains(&factor) {
        return Some(factor);
    }
    let diag = d
        .error(
            e.value.span,
            format!("`factor` must be from 1 to 100, found `{}`", e.value.raw),
        )
        .with_help("the limit is the p95 of past run times multiplied by `factor`, e.g. `3`");
    d.report(diag);
    None
}

/// `circuit_breaker:` — `{failures: 5, cool_down: 30s}` (both optional), or `off`
/// (`Some(None)`).
pub(crate) fn circuit_breaker(
    d: &mut Decoder<'_>,
    e: &Entry<'_>,
) -> Option<Option<CircuitBreaker>> {
    if is_off(e.value) {
        return Some(None);
    }
    let pairs = match &e.value.value {
        Value::Map(pairs) => pairs.as_slice(),
        Value::Null => &[],
        _ => {
            d.type_error(e, &format!("a map like {BREAKER_EXAMPLE} or `off`"));
            suggest_off(d, e.value);
            return None;
        }
    };
    let keys = Keys {
        place: "in `circuit_breaker`".to_owned(),
        allowed: BREAKER_KEYS,
        elsewhere: &|_| None,
    };
    let mut failures = Some(DEFAULT_BREAKER_FAILURES);
    let mut cool_down = Some(DEFAULT_BREAKER_COOL_DOWN);
    for entry in d.known_entries(pairs, &keys) {
        match entry.key {
            "failures" => failures = d.integer(&entry, FAILURES_RANGE).map(|n| n as u32),
            "cool_down" => cool_down = d.unit(&entry, "a duration", units::parse_duration),
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    Some(Some(CircuitBreaker {
        failures: failures?,
        cool_down: cool_down?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_set_holds_each_outcome_once_and_lists_them_in_order() {
        let mut set = OutcomeSet::new();
        assert_eq!(set.iter().count(), 0);
        assert!(set.insert(RetryOutcome::Exit));
        assert!(set.insert(RetryOutcome::Timeout));
        assert!(!set.insert(RetryOutcome::Exit), "already there");
        assert_eq!(set.iter().count(), 2);
        assert!(set.contains(RetryOutcome::Timeout) && !set.contains(RetryOutcome::Trap));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [RetryOutcome::Timeout, RetryOutcome::Exit]
        );
        let all: OutcomeSet = RetryOutcome::ALL.into_iter().collect();
        assert_eq!(all.iter().collect::<Vec<_>>(), RetryOutcome::ALL);
        assert_eq!(format!("{set:?}"), "{Timeout, Exit}");
        assert_eq!(
            RetryOn::default().to_string(),
            "[timeout, host_error]",
            "the default set, as the YAML says it"
        );
    }

    #[test]
    fn an_outcome_set_survives_the_memo_encoding() {
        let set = OutcomeSet::from([RetryOutcome::Trap, RetryOutcome::Outputs]);
        let bytes = postcard::to_allocvec(&set).expect("encodes");
        assert_eq!(bytes, [0b0100_0010], "one byte, a bit per outcome");
        let back: OutcomeSet = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, set);
    }
}
