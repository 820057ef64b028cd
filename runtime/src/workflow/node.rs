//! The YAML document as a tree of located nodes.
//!
//! `serde-saphyr` does the YAML parsing (with limits against hostile documents); a
//! hand-written [`Deserialize`] captures every node with its [`Spanned`] location, so that
//! decoding can then report every problem at once instead of stopping at the first one.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, NonFiniteFloatPolicy, Options, Spanned};

use super::diagnostic::Span;

/// Largest workflow file accepted, in bytes.
pub(crate) const MAX_SOURCE_BYTES: usize = 4 << 20;

/// A YAML value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null`, or nothing at all.
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; duplicate keys are kept (and reported by the decoder).
    Map(Vec<(Node, Node)>),
}

/// A YAML value and where it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    /// Where the value is used (for an alias, the `*alias`).
    pub span: Span,
    /// The scalar exactly as written in the file (with quotes, if any); empty for
    /// collections and for a missing value.
    pub raw: String,
}

impl Node {
    /// A scalar as text, spelt as the file wrote it for numbers and booleans
    /// (`1.50` stays `1.50`). `None` for null, lists and maps.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => Some(self.raw.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// Whether the value is missing altogether (`key:` with nothing after it).
    pub fn is_empty_null(&self) -> bool {
        matches!(self.value, Value::Null) && self.raw.is_empty()
    }

    /// "a map", "the string `x`", … for "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null if self.raw.is_empty() => "nothing".to_owned(),
            Value::Null => format!("null (`{}`)", self.raw),
            Value::Bool(_) => format!("the boolean `{}`", self.raw),
            Value::Int(_) => format!("the integer `{}`", self.raw),
            Value::Float(_) => format!("the number `{}`", self.raw),
            Value::Str(s) => format!("the string `{}`", truncate(s)),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a map".to_owned(),
        }
    }

    /// The span of the characters `start..start + len` (in characters) of this string
    /// scalar's value, when they can be found on the line where it is written; otherwise
    /// the span of the whole scalar.
    pub fn sub_span(&self, start: usize, len: usize) -> Span {
        let Value::Str(value) = &self.value else {
            return self.span;
        };
        let first_line = value.split('\n').next().unwrap_or_default();
        let prefix_chars = if self.raw.starts_with(['"', '\'']) {
            1
        } else {
            0
        };
        let inner: String = self.raw.chars().skip(prefix_chars).collect();
        let verbatim = inner.starts_with(first_line)
            && !(self.raw.starts_with('"') && first_line.contains('\\'));
        let available = first_line.chars().count();
        if verbatim && start <= available {
            Span {
                line: self.span.line,
                column: self.span.column + prefix_chars + start,
                len: len.min(available - start).max(1),
            }
        } else {
            self.span
        }
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 40;
    let one_line = s.lines().next().unwrap_or_default();
    if one_line.chars().count() > MAX || one_line.len() < s.trim_end().len() {
        let short: String = one_line.chars().take(MAX).collect();
        format!("{short}…")
    } else {
        s.to_owned()
    }
}

/// A node as serde hands it over, before spans are turned into [`Span`]s.
enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        // Anything this large is out of range for every field anyway.
        Ok(RawValue::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawValue>>()? {
            let value = map.next_value::<Spanned<RawValue>>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

fn convert(raw: Spanned<RawValue>, source: &str) -> Node {
    let at = raw.referenced;
    let defined = raw.defined.span();
    let text = match (defined.byte_offset(), defined.byte_len()) {
        (Some(start), Some(len)) => usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + len).ok())
            .and_then(|(start, end)| source.get(start..end))
            .unwrap_or_default(),
        _ => "",
    };
    let mut span = Span {
        line: at.line() as usize,
        column: at.column() as usize,
        len: at.span().len() as usize,
    };
    let (value, raw_text) = match raw.value {
        RawValue::Null => (Value::Null, text),
        RawValue::Bool(b) => (Value::Bool(b), text),
        RawValue::Int(i) => (Value::Int(i), text),
        RawValue::Float(f) => (Value::Float(f), text),
        RawValue::Str(s) => (Value::Str(s), text),
        RawValue::Seq(items) => {
            span.len = 1;
            let items = items.into_iter().map(|i| convert(i, source)).collect();
            (Value::Seq(items), "")
        }
        RawValue::Map(entries) => {
            span.len = 1;
            let entries = entries
                .into_iter()
                .map(|(k, v)| (convert(k, source), convert(v, source)))
                .collect();
            (Value::Map(entries), "")
        }
    };
    Node {
        value,
        span,
        raw: raw_text.to_owned(),
    }
}

/// A problem with the YAML itself, before any workflow meaning is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
}

/// The span of the first `token` on the line of `at`, or `at` itself if it is not there.
/// (The parser locates a tag's node, not the tag.)
fn locate_on_line(source: &str, at: Span, token: &str) -> Span {
    let Some(line) = source.split('\n').nth(at.line.saturating_sub(1)) else {
        return at;
    };
    match line.find(token) {
        Some(byte) => Span {
            line: at.line,
            column: line[..byte].chars().count() + 1,
            len: token.chars().count(),
        },
        None => at,
    }
}

/// Limits that keep a hostile document (alias bombs, deep nesting, huge inputs) from
/// costing more than a moment. A real workflow is orders of magnitude below them.
fn options() -> Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 400_000,
            max_aliases: 2_000,
            max_anchors: 2_000,
            max_depth: 32,
            max_nodes: 100_000,
            max_total_scalar_bytes: 8 << 20,
            max_merge_keys: 1_000,
            max_recorded_anchor_events: 50_000,
            max_recorded_anchor_bytes: 4 << 20,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        // Duplicates are reported by the decoder, with both locations, alongside every
        // other problem.
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        // `yes`, `no`, `on`, `y` … stay strings (GitHub's `on:` key, `n` as an argument).
        strict_booleans: true,
        // `.inf` and `.nan` stay strings rather than failing the whole parse.
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        // A condition like `!build.failed` must not be silently swallowed as a tag.
        reject_unsupported_tags: true,
        with_snippet: false,
    }
}

/// Parses `source` into a located tree. An empty document is [`Value::Null`].
pub(crate) fn parse(source: &str) -> Result<Node, YamlError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(YamlError {
            span: None,
            message: format!(
                "the workflow file is too large ({} bytes; the limit is {} bytes)",
                source.len(),
                MAX_SOURCE_BYTES
            ),
            help: None,
        });
    }
    serde_saphyr::from_str_with_options::<Spanned<RawValue>>(source, options())
        .map(|raw| convert(raw, source))
        .map_err(|e| yaml_error(&e, source))
}

fn yaml_error(error: &serde_saphyr::Error, source: &str) -> YamlError {
    use serde_saphyr::Error as E;
    use serde_saphyr::MessageFormatter as _;

    let span = error
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| Span::new(l.line() as usize, l.column() as usize));
    let mut inner = error.without_snippet();
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let too_big = |what: String| YamlError {
        span,
        message: format!("the YAML document is too large or too complex: {what}"),
        help: Some(
            "workflow files are limited to 100000 values, 32 levels of nesting and 2000 \
             aliases; aliases that expand exponentially (\"billion laughs\") are rejected"
                .to_owned(),
        ),
    };
    match inner {
        E::Budget { breach, .. } => {
            use serde_saphyr::budget::BudgetBreach as B;
            too_big(match breach {
                B::Nodes { .. } => "more than 100000 values (after expanding aliases)".to_owned(),
                B::Events { .. } => "too many YAML events (after expanding aliases)".to_owned(),
                B::Aliases { .. } => "more than 2000 aliases".to_owned(),
                B::Anchors { .. } => "more than 2000 anchors".to_owned(),
                B::Depth { .. } => "nested more than 32 levels deep".to_owned(),
                B::RecordedAnchorEvents { .. } | B::RecordedAnchorBytes { .. } => {
                    "anchors and aliases copy too many values".to_owned()
                }
                B::ScalarBytes { .. } => "more than 8 MiB of text".to_owned(),
                B::AliasAnchorRatio { aliases, anchors } => {
                    format!("{aliases} aliases for only {anchors} anchors")
                }
                other => format!("{other:?}"),
            })
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            too_big("aliases expand to too many values".to_owned())
        }
        E::MultipleDocuments { .. } => YamlError {
            span,
            message: "a workflow file must hold exactly one YAML document".to_owned(),
            help: Some("remove the `---` separator and everything after it".to_owned()),
        },
        E::UnsupportedTag { tag, .. } => YamlError {
            span: span.map(|s| locate_on_line(source, s, tag)),
            message: format!("unsupported YAML tag `{tag}`"),
            help: Some(format!(
                "a value starting with `!` is read as a YAML tag; if `{tag}` starts a \
                 condition, put the whole value in quotes"
            )),
        },
        other => YamlError {
            span,
            message: format!(
                "invalid YAML: {}",
                serde_saphyr::DefaultMessageFormatter.format_message(other)
            ),
            help: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a map, found {other:?}"),
        }
    }

    fn get<'a>(node: &'a Node, key: &str) -> (&'a Node, &'a Node) {
        map(node)
            .iter()
            .find(|(k, _)| k.value == Value::Str(key.to_owned()))
            .map(|(k, v)| (k, v))
            .unwrap_or_else(|| panic!("no key {key}"))
    }

    fn at(line: usize, column: usize, len: usize) -> Span {
        Span { line, column, len }
    }

    #[test]
    fn nested_keys_and_values_have_editor_positions() {
        let doc = parse(
            "name: demo\n\
             steps:\n\
             \x20 build:\n\
             \x20   task: \"rust-build\"\n\
             \x20   args: [--release, 42, 1.50, true]\n\
             \x20   depends_on:\n\
             \x20     - lint\n",
        )
        .unwrap();
        let (k, v) = get(&doc, "name");
        assert_eq!((k.span, v.span), (at(1, 1, 4), at(1, 7, 4)));
        let (k, steps) = get(&doc, "steps");
        assert_eq!(k.span, at(2, 1, 5));
        let (k, build) = get(steps, "build");
        assert_eq!(k.span, at(3, 3, 5));
        assert_eq!(build.span, at(4, 5, 1));
        let (k, task) = get(build, "task");
        assert_eq!(k.span, at(4, 5, 4));
        assert_eq!(task.span, at(4, 11, 12), "quotes are part of the token");
        assert_eq!(task.value, Value::Str("rust-build".to_owned()));
        assert_eq!(task.raw, "\"rust-build\"");
        let (_, args) = get(build, "args");
        let Value::Seq(items) = &args.value else {
            panic!()
        };
        let spans: Vec<_> = items.iter().map(|i| i.span).collect();
        assert_eq!(
            spans,
            [at(5, 12, 9), at(5, 23, 2), at(5, 27, 4), at(5, 33, 4)]
        );
        let texts: Vec<_> = items.iter().map(|i| i.scalar_text().unwrap()).collect();
        assert_eq!(texts, ["--release", "42", "1.50", "true"]);
        let (_, deps) = get(build, "depends_on");
        let Value::Seq(items) = &deps.value else {
            panic!()
        };
        assert_eq!(items[0].span, at(7, 9, 4));
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_decoder() {
        let doc = parse("a: 1\na: 2\n").unwrap();
        let keys: Vec<_> = map(&doc).iter().map(|(k, _)| k.span.line).collect();
        assert_eq!(keys, [1, 2]);
    }

    #[test]
    fn yaml_1_1_booleans_and_specials_stay_strings() {
        let doc = parse("on: yes\nn: .inf\nt: True\nhex: 0x10\n").unwrap();
        assert_eq!(map(&doc)[0].0.value, Value::Str("on".to_owned()));
        assert_eq!(map(&doc)[0].1.value, Value::Str("yes".to_owned()));
        assert_eq!(map(&doc)[1].1.value, Value::Str(".inf".to_owned()));
        assert_eq!(map(&doc)[2].1.value, Value::Bool(true));
        assert_eq!(map(&doc)[3].1.value, Value::Int(16));
        assert_eq!(map(&doc)[3].1.scalar_text().unwrap(), "0x10");
    }

    #[test]
    fn missing_values_are_empty_nulls() {
        let doc = parse("a:\nb: ~\n").unwrap();
        assert!(map(&doc)[0].1.is_empty_null());
        assert!(!map(&doc)[1].1.is_empty_null());
        assert_eq!(map(&doc)[1].1.describe(), "null (`~`)");
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# just a comment\n").unwrap().value, Value::Null);
    }

    #[test]
    fn sub_spans_point_inside_strings() {
        let doc = parse("a: x && y\nb: \"x && y\"\nc: |\n  x && y\nd: \"\\t x\"\n").unwrap();
        let m = map(&doc);
        assert_eq!(m[0].1.sub_span(5, 1), at(1, 9, 1));
        assert_eq!(m[1].1.sub_span(5, 1), at(2, 10, 1));
        assert_eq!(m[2].1.sub_span(5, 1), at(4, 8, 1));
        // Escapes make columns unreliable: fall back to the whole scalar.
        assert_eq!(m[3].1.sub_span(2, 1), m[3].1.span);
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("name: x\nsteps:\n  a: [1, 2\n  b: 3\n").unwrap_err();
        assert_eq!(e.span, Some(Span::new(4, 4)));
        assert_eq!(
            e.message,
            "invalid YAML: illegal placement of ':' indicator"
        );
        let e = parse("a: \"open\n").unwrap_err();
        assert_eq!(e.message, "invalid YAML: unclosed quote");
        assert_eq!(e.span, Some(Span::new(1, 4)));
    }

    #[test]
    fn several_documents_are_rejected() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(
            e.message,
            "a workflow file must hold exactly one YAML document"
        );
    }

    #[test]
    fn tags_are_not_swallowed() {
        let e = parse("when: !build.failed && x\n").unwrap_err();
        assert_eq!(e.message, "unsupported YAML tag `!build.failed`");
        assert_eq!(e.span, Some(at(1, 7, 13)));
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for pair in names.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            let refs = vec![format!("*{prev}"); 9].join(",");
            doc.push_str(&format!("{next}: &{next} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let e = parse(&doc).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(
            e.message
                .starts_with("the YAML document is too large or too complex: "),
            "{}",
            e.message
        );
        assert!(e.span.is_some());
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let doc = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
        let e = parse(&doc).unwrap_err();
        assert!(
            e.message.contains("too large or too complex"),
            "{}",
            e.message
        );
    }
}
