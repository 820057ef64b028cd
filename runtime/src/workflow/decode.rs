//! Generic, error-collecting decoding of [`Node`]s: strings, lists, maps with known keys,
//! booleans, bounded integers and units. Every problem becomes a [`Diagnostic`] and
//! decoding carries on, so that one run reports everything.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, Span};
use super::node::{Node, Value};
use super::paths::Problem;
use super::suggest::{did_you_mean, list};
use super::units::UnitError;

/// One `key: value` entry of a map whose key is a string.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'n> {
    pub key: &'n str,
    pub key_node: &'n Node,
    pub value: &'n Node,
}

impl Entry<'_> {
    /// Where to point when the value is wrong: at the value, or at the key when the value
    /// is missing altogether.
    pub fn value_span(&self) -> Span {
        if self.value.is_empty_null() {
            self.key_node.span
        } else {
            self.value.span
        }
    }
}

/// The keys a map may have, and how to describe the map in messages.
pub(crate) struct Keys<'a> {
    /// "in step `test`", "in `defaults`", "at the top level".
    pub place: String,
    /// Keys valid here.
    pub allowed: &'a [&'a str],
    /// Explains a key that is not valid here but is valid somewhere else.
    pub elsewhere: &'a dyn Fn(&str) -> Option<String>,
}

/// Collects diagnostics while decoding one file.
pub(crate) struct Decoder<'a> {
    pub file: &'a Path,
    pub source: Arc<str>,
    pub diagnostics: Vec<Diagnostic>,
    /// The keys suggested ("did you mean …?") by the last [`Decoder::known_entries`], so
    /// that a misspelt required key is not also reported as missing.
    pub suggested: Vec<String>,
}

impl<'a> Decoder<'a> {
    pub fn new(file: &'a Path, source: Arc<str>) -> Self {
        Self {
            file,
            source,
            diagnostics: Vec::new(),
            suggested: Vec::new(),
        }
    }

    /// A new error at `span`, with the file's text attached.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.file, Some(span), message).with_source(Arc::clone(&self.source))
    }

    /// A new warning at `span`, with the file's text attached.
    pub fn warning(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(self.file, Some(span), message).with_source(Arc::clone(&self.source))
    }

    /// Records a diagnostic.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Records a [`Problem`] found at `span`.
    pub fn problem(&mut self, span: Span, problem: Problem) {
        let mut d = self.error(span, problem.message);
        d.help = problem.help;
        self.report(d);
    }

    /// "expected {expected} for `key`, found {what the value is}".
    pub fn type_error(&mut self, entry: &Entry<'_>, expected: &str) {
        let found = entry.value.describe();
        let mut d = self.error(
            entry.value_span(),
            format!("expected {expected} for `{}`, found {found}", entry.key),
        );
        if let Value::Map(pairs) = &entry.value.value
            && pairs.len() == 1
            && !expected.contains("map")
        {
            d = d.with_help(
                "a `key: value` pair makes a map; if you meant a string containing `: `, put \
                 it in quotes",
            );
        }
        self.report(d);
    }

    /// The entries of a map, with string keys, first occurrence of each key only.
    /// Reports non-string keys and duplicates (using `duplicate` to word the message).
    pub fn unique_entries<'n>(
        &mut self,
        pairs: &'n [(Node, Node)],
        duplicate: &dyn Fn(&str) -> String,
    ) -> Vec<Entry<'n>> {
        let mut out: Vec<Entry<'n>> = Vec::with_capacity(pairs.len());
        let mut seen: HashMap<&'n str, usize> = HashMap::with_capacity(pairs.len());
        for (key_node, value) in pairs {
            let key = match &key_node.value {
                Value::Str(s) => s.as_str(),
                Value::Bool(_) | Value::Int(_) | Value::Float(_) => key_node.raw.as_str(),
                Value::Null | Value::Seq(_) | Value::Map(_) => {
                    let d = self.error(
                        key_node.span,
                        format!("expected a string as key, found {}", key_node.describe()),
                    );
                    self.report(d);
                    continue;
                }
            };
            if let Some(&first) = seen.get(key) {
                let d = self.error(key_node.span, duplicate(key)).with_note(
                    Some(out[first].key_node.span),
                    format!("`{key}` is first defined here"),
                );
                self.report(d);
                continue;
            }
            seen.insert(key, out.len());
            out.push(Entry {
                key,
                key_node,
                value,
            });
        }
        out
    }

    /// The entries of a map whose keys must be among `keys.allowed`. Unknown keys are
    /// reported (with a suggestion) and left out.
    pub fn known_entries<'n>(
        &mut self,
        pairs: &'n [(Node, Node)],
        keys: &Keys<'_>,
    ) -> Vec<Entry<'n>> {
        let place = keys.place.as_str();
        let entries = self.unique_entries(pairs, &|key| format!("duplicate key `{key}` {place}"));
        let mut out = Vec::with_capacity(entries.len());
        self.suggested.clear();
        for entry in entries {
            if keys.allowed.contains(&entry.key) {
                out.push(entry);
                continue;
            }
            let help = (keys.elsewhere)(entry.key)
                .or_else(|| {
                    let guess = did_you_mean(entry.key, keys.allowed.iter().copied())?;
                    self.suggested.push(guess.to_owned());
                    Some(format!("did you mean `{guess}`?"))
                })
                .unwrap_or_else(|| {
                    format!("the keys allowed here are {}", list(keys.allowed, "and"))
                });
            let d = self
                .error(
                    entry.key_node.span,
                    format!("unknown key `{}` {place}", entry.key),
                )
                .with_help(help);
            self.report(d);
        }
        out
    }

    /// A scalar as a string (numbers and booleans spelt as written).
    pub fn string(&mut self, entry: &Entry<'_>, expected: &str) -> Option<String> {
        let text = entry.value.scalar_text();
        if text.is_none() {
            self.type_error(entry, expected);
        }
        text
    }

    /// A list of scalars as strings. A missing value or `~` is an empty list; a single
    /// scalar is accepted as a one-item list when `single_ok`.
    pub fn string_list<'n>(
        &mut self,
        entry: &Entry<'n>,
        single_ok: bool,
    ) -> Vec<(String, &'n Node)> {
        match &entry.value.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item.scalar_text() {
                        Some(text) => out.push((text, item)),
                        None => {
                            let mut d = self.error(
                                item.span,
                                format!(
                                    "expected a string in `{}`, found {}",
                                    entry.key,
                                    item.describe()
                                ),
                            );
                            if matches!(item.value, Value::Map(_)) {
                                d = d.with_help(
                                    "a `key: value` item makes a map; if you meant a string \
                                     containing `: `, put it in quotes",
                                );
                            }
                            self.report(d);
                        }
                    }
                }
                out
            }
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Float(_) if single_ok => {
                vec![(entry.value.scalar_text().unwrap_or_default(), entry.value)]
            }
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let d = self
                    .error(
                        entry.value.span,
                        format!(
                            "expected a list of strings for `{}`, found {}",
                            entry.key,
                            entry.value.describe()
                        ),
                    )
                    .with_help(format!(
                        "write a list: `{}: [{}]`",
                        entry.key, entry.value.raw
                    ));
                self.report(d);
                Vec::new()
            }
            Value::Map(_) => {
                self.type_error(entry, "a list of strings");
                Vec::new()
            }
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, entry: &Entry<'_>) -> Option<bool> {
        if let Value::Bool(b) = entry.value.value {
            return Some(b);
        }
        self.type_error(entry, "`true` or `false`");
        if let Value::Str(s) = &entry.value.value {
            let guess = match s.to_ascii_lowercase().as_str() {
                "yes" | "y" | "on" => Some("true"),
                "no" | "n" | "off" => Some("false"),
                _ => None,
            };
            if let (Some(guess), Some(last)) = (guess, self.diagnostics.last_mut()) {
                last.help = Some(format!("write `{guess}`"));
            }
        }
        None
    }

    /// An integer within `range`.
    pub fn integer(&mut self, entry: &Entry<'_>, range: RangeInclusive<i128>) -> Option<i128> {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        match entry.value.value {
            Value::Int(i) if range.contains(&i) => Some(i),
            Value::Int(_) => {
                let d = self.error(
                    entry.value.span,
                    format!(
                        "`{}` must be from {} to {}, found `{}`",
                        entry.key,
                        range.start(),
                        range.end(),
                        entry.value.raw
                    ),
                );
                self.report(d);
                None
            }
            _ => {
                self.type_error(entry, &expected);
                None
            }
        }
    }

    /// A duration, size or fuel count, parsed with `parse` from a string or an integer.
    pub fn unit<T>(
        &mut self,
        entry: &Entry<'_>,
        expected: &str,
        parse: fn(&str) -> Result<T, UnitError>,
    ) -> Option<T> {
        let text = match &entry.value.value {
            Value::Str(s) => s.clone(),
            Value::Int(_) | Value::Float(_) => entry.value.raw.clone(),
            _ => {
                self.type_error(entry, expected);
                return None;
            }
        };
        match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                let d = self
                    .error(
                        entry.value.span,
                        format!(
                            "invalid {} `{}` for `{}`: {}",
                            e.kind, e.input, entry.key, e.problem
                        ),
                    )
                    .with_help(e.help);
                self.report(d);
                None
            }
        }
    }

    /// Requires the value to be a map, reporting it otherwise.
    pub fn map<'n>(&mut self, entry: &Entry<'n>) -> Option<&'n [(Node, Node)]> {
        match &entry.value.value {
            Value::Map(pairs) => Some(pairs),
            Value::Null => Some(&[]),
            _ => {
                self.type_error(entry, "a map");
                None
            }
        }
    }
}
