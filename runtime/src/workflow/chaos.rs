//! The `chaos:` section: the staging suite that `hermetic chaos` runs by default.
//!
//! ```yaml
//! chaos:
//!   seeds: 1..200           # or one seed; `--seeds` overrides
//!   faults: [io, worker]    # or each with its own rate: {io: 0.2, worker: 0.1}
//!   rate: 0.3               # shared by the listed faults (not with the map form)
//!   steps: [build, test]    # the steps that get faults; by default every step
//!   expect:
//!     succeeds: true        # every run must succeed: retries absorb every fault
//!     max_retries: 3        # and no run needs more than 3 retries
//! ```
//!
//! Everything is optional; the command line overrides each setting it is given.

use super::decode::{Decoder, Entry, Keys};
use super::node::Value;
use super::suggest::did_you_mean;
use crate::chaos::plan::{FaultKind, parse_seeds};
use crate::chaos::suite::Expect;

/// Keys of `chaos`.
const CHAOS_KEYS: &[&str] = &["seeds", "faults", "rate", "steps", "expect"];
/// Keys of `chaos.expect`.
const EXPECT_KEYS: &[&str] = &["succeeds", "max_retries"];
/// The most retries `max_retries` may allow.
const MAX_EXPECTED_RETRIES: i128 = 10_000;

/// The decoded `chaos:` section.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChaosSection {
    /// `seeds`, expanded.
    pub seeds: Option<Vec<u64>>,
    /// `faults` and `rate`: each kind with its chance; `None` when `faults` is not set.
    pub rates: Option<Vec<(FaultKind, f64)>>,
    /// `rate` when `faults` is not set: the command line's faults share it.
    pub rate: Option<f64>,
    /// `steps`; `None` for every step.
    pub steps: Option<Vec<String>>,
    /// `expect`.
    pub expect: Expect,
}

/// Decodes `chaos:`; `steps` are the workflow's step names, which `chaos.steps` must name.
pub(crate) fn decode(d: &mut Decoder<'_>, entry: &Entry<'_>, steps: &[&str]) -> ChaosSection {
    let mut section = ChaosSection::default();
    let Some(pairs) = d.map(entry) else {
        return section;
    };
    let keys = Keys {
        place: "in `chaos`".to_owned(),
        allowed: CHAOS_KEYS,
        elsewhere: &|_| None,
    };
    let entries = d.known_entries(pairs, &keys);
    let mut listed = None;
    let mut faults_entry = None;
    for e in &entries {
        match e.key {
            "seeds" => section.seeds = seeds(d, e),
            "rate" => section.rate = rate(d, e),
            "faults" => {
                faults_entry = Some(e);
                listed = faults(d, e);
            }
            "steps" => section.steps = Some(step_names(d, e, steps)),
            "expect" => section.expect = expect(d, e),
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    match listed {
        Some(Faults::Listed(kinds)) => {
            let rate = section.rate.take().unwrap_or(crate::chaos::DEFAULT_RATE);
            section.rates = Some(crate::chaos::plan::even_rates(rate, &kinds));
        }
        Some(Faults::Rated(rates)) => {
            if let (Some(_), Some(rate_entry)) =
                (section.rate, entries.iter().find(|e| e.key == "rate"))
            {
                let diag = d
                    .error(
                        rate_entry.key_node.span,
                        "`rate` is ignored when `faults` gives each fault its own rate",
                    )
                    .with_help("remove `rate`, or list the faults without rates");
                d.report(diag);
            }
            let total: f64 = rates.iter().map(|(_, r)| r).sum();
            if total > 1.0 + 1e-9
                && let Some(e) = faults_entry
            {
                let diag = d
                    .error(
                        e.value_span(),
                        format!("the fault rates add up to {total}, more than 1"),
                    )
                    .with_help(
                        "a step gets at most one fault per run: the rates are the chances of \
                         each, so they must sum to at most 1",
                    );
                d.report(diag);
            }
            section.rates = Some(rates);
        }
        None => {}
    }
    section
}

/// The two forms of `faults`.
enum Faults {
    Listed(Vec<FaultKind>),
    Rated(Vec<(FaultKind, f64)>),
}

fn faults(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<Faults> {
    if let Value::Map(pairs) = &e.value.value {
        let entries = d.unique_entries(pairs, &|k| format!("`{k}` is listed twice in `faults`"));
        let mut rates = Vec::new();
        for entry in entries {
            let Some(kind) = kind(d, entry.key, entry.key_node.span) else {
                continue;
            };
            if let Some(r) = rate(d, &entry) {
                rates.push((kind, r));
            }
        }
        return Some(Faults::Rated(rates));
    }
    let mut kinds = Vec::new();
    for (name, node) in d.string_list(e, true) {
        if let Some(kind) = kind(d, &name, node.span)
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
    }
    Some(Faults::Listed(kinds))
}

/// A fault kind's name.
fn kind(d: &mut Decoder<'_>, name: &str, span: super::diagnostic::Span) -> Option<FaultKind> {
    match name.parse::<FaultKind>() {
        Ok(kind) => Some(kind),
        Err(message) => {
            let mut diag = d.error(span, message);
            if let Some(guess) = did_you_mean(name, FaultKind::ALL.iter().map(|k| k.name())) {
                diag = diag.with_help(format!("did you mean `{guess}`?"));
            }
            d.report(diag);
            None
        }
    }
}

/// A chance from 0 to 1.
fn rate(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<f64> {
    let value = match e.value.value {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => {
            d.type_error(e, "a number from 0 to 1");
            return None;
        }
    };
    if (0.0..=1.0).contains(&value) {
        return Some(value);
    }
    let diag = d
        .error(
            e.value.span,
            format!("`{}` must be from 0 to 1, found `{}`", e.key, e.value.raw),
        )
        .with_help("a rate is the chance that a step gets the fault in one run, e.g. `0.3`");
    d.report(diag);
    None
}

fn seeds(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<Vec<u64>> {
    let text = d.string(e, "a seed or a range like `1..200`")?;
    match parse_seeds(&text) {
        Ok(seeds) => Some(seeds),
        Err(message) => {
            let diag = d
                .error(e.value_span(), message.replace("--seeds `", "`seeds: "))
                .with_help("write one seed, e.g. `seeds: 7`, or a range, e.g. `seeds: 1..200`");
            d.report(diag);
            None
        }
    }
}

fn step_names(d: &mut Decoder<'_>, e: &Entry<'_>, steps: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for (name, node) in d.string_list(e, true) {
        if steps.contains(&name.as_str()) {
            names.push(name);
            continue;
        }
        let mut diag = d.error(node.span, format!("`chaos.steps` names no step `{name}`"));
        if let Some(guess) = did_you_mean(&name, steps.iter().copied()) {
            diag = diag.with_help(format!("did you mean `{guess}`?"));
        }
        d.report(diag);
    }
    names
}

fn expect(d: &mut Decoder<'_>, e: &Entry<'_>) -> Expect {
    let mut expect = Expect::default();
    let Some(pairs) = d.map(e) else {
        return expect;
    };
    let keys = Keys {
        place: "in `chaos.expect`".to_owned(),
        allowed: EXPECT_KEYS,
        elsewhere: &|_| None,
    };
    for entry in d.known_entries(pairs, &keys) {
        match entry.key {
            "succeeds" => expect.succeeds = d.boolean(&entry).unwrap_or_default(),
            "max_retries" => {
                expect.max_retries = d
                    .integer(&entry, 0..=MAX_EXPECTED_RETRIES)
                    .map(|n| n as usize);
            }
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    expect
}
