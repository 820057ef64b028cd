//! Located, rustc-style diagnostics for the workflow file.
//!
//! A [`Diagnostic`] renders as
//!
//! ```text
//! error: unknown key `depend_on` in step `test`
//!   --> examples/ci/hermetic.yaml:12:5
//!    |
//! 12 |     depend_on: [build]
//!    |     ^^^^^^^^^
//!    = help: did you mean `depends_on`?
//! ```
//!
//! and [`Diagnostics`] joins several of them with blank lines, followed by
//! `error: aborting due to N previous errors` when there is more than one error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in the workflow file, as editors show it.
///
/// `line` and `column` are 1-based; columns count characters, not bytes. `len` is the
/// length in characters of the token found there (used for the `^^^` underline; `0` and
/// `1` both render a single caret).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number, in characters.
    pub column: usize,
    /// Length of the token at this position, in characters.
    pub len: usize,
}

impl Span {
    /// A span of a single character at `line:column` (both 1-based).
    #[must_use]
    pub const fn new(line: usize, column: usize) -> Self {
        Self {
            line,
            column,
            len: 1,
        }
    }

    /// The same position with a token length of `len` characters.
    #[must_use]
    pub const fn with_len(self, len: usize) -> Self {
        Self { len, ..self }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The workflow cannot be used.
    Error,
    /// Worth telling the user, but not fatal.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One problem, located in a file, with optional notes and a suggestion.
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as the user named it (never canonicalised).
    pub file: PathBuf,
    /// Where in `file` the problem is, if it has a place.
    pub span: Option<Span>,
    /// One line saying what is wrong.
    pub message: String,
    /// Further facts, each optionally pointing at another place in `file`.
    pub notes: Vec<(Option<Span>, String)>,
    /// What to do about it.
    pub help: Option<String>,
    /// The text of `file`, used to show the offending line. Without it the snippet is
    /// left out and only the `--> file:line:col` line is shown.
    pub source: Option<Arc<str>>,
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("severity", &self.severity)
            .field("file", &self.file)
            .field("span", &self.span)
            .field("message", &self.message)
            .field("notes", &self.notes)
            .field("help", &self.help)
            .field("source", &self.source.as_ref().map(|s| s.len()))
            .finish()
    }
}

impl Diagnostic {
    /// A new error about `file`, at `span` if given.
    #[must_use]
    pub fn error(file: impl Into<PathBuf>, span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.into(),
            span,
            message: message.into(),
            notes: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// A new warning about `file`, at `span` if given.
    #[must_use]
    pub fn warning(
        file: impl Into<PathBuf>,
        span: Option<Span>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, span, message)
        }
    }

    /// Adds a note, optionally pointing at another place in the same file.
    #[must_use]
    pub fn with_note(mut self, span: Option<Span>, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Sets the suggestion.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Attaches the file's text so that the offending lines are shown.
    #[must_use]
    pub fn with_source(mut self, source: Arc<str>) -> Self {
        self.source = Some(source);
        self
    }

    /// Whether this is an error (as opposed to a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn gutter_width(&self) -> usize {
        let mut widest = self.span.map_or(0, |s| s.line);
        for (span, _) in &self.notes {
            if let Some(span) = span {
                widest = widest.max(span.line);
            }
        }
        widest.to_string().len()
    }

    /// Appends the `--> file:line:col` line and, when the source is known, the snippet.
    fn render_location(&self, out: &mut Vec<String>, span: Span, width: usize) {
        let pad = " ".repeat(width);
        out.push(format!(
            "{pad}--> {}:{}:{}",
            self.file.display(),
            span.line,
            span.column
        ));
        let Some(text) = self
            .source
            .as_deref()
            .and_then(|s| source_line(s, span.line))
        else {
            return;
        };
        out.push(format!("{pad} |"));
        out.push(
            format!("{:>width$} | {text}", span.line)
                .trim_end()
                .to_owned(),
        );
        let (indent, carets) = underline(text, span);
        out.push(format!("{pad} | {indent}{carets}"));
    }
}

/// The text of 1-based line `line` of `source`, without its line terminator.
fn source_line(source: &str, line: usize) -> Option<&str> {
    let text = source.split('\n').nth(line.checked_sub(1)?)?;
    Some(text.strip_suffix('\r').unwrap_or(text))
}

/// The whitespace before and the carets under the token at `span` on `text`.
fn underline(text: &str, span: Span) -> (String, String) {
    let before = span.column.saturating_sub(1);
    // Keep tabs so that the carets line up with the source line as a terminal shows it.
    let mut indent: String = text
        .chars()
        .take(before)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let available = text.chars().count().saturating_sub(before);
    if available == 0 {
        // The position is at (or past) the end of the line: point just after it.
        indent.extend(std::iter::repeat_n(' ', before - indent.chars().count()));
    }
    let len = span.len.min(available).max(1);
    (indent, "^".repeat(len))
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.gutter_width();
        let pad = " ".repeat(width);
        let mut out = vec![format!("{}: {}", self.severity, self.message)];
        if let Some(span) = self.span {
            self.render_location(&mut out, span, width);
        }
        for (span, note) in &self.notes {
            if span.is_none() {
                out.push(format!("{pad} = note: {note}"));
            }
        }
        for (span, note) in &self.notes {
            if let Some(span) = span {
                out.push(format!("note: {note}"));
                self.render_location(&mut out, *span, width);
            }
        }
        if let Some(help) = &self.help {
            out.push(format!("{pad} = help: {help}"));
        }
        f.write_str(&out.join("\n"))
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in one go, in the order they appear in the file.
///
/// `Display` renders each diagnostic, separated by blank lines, then
/// `error: aborting due to N previous errors` if there are two or more errors. The text
/// has no trailing newline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one diagnostic at the end.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether there are no diagnostics at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many diagnostics there are (errors and warnings).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// How many of them are errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// Whether any of them is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// The diagnostics, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Sorts by position in the file: file-wide problems first, then by line and column.
    /// Problems at the same position keep the order they were found in.
    pub fn sort(&mut self) {
        self.0
            .sort_by_key(|d| (d.file.clone(), d.span.map(|s| (s.line, s.column))));
    }

    /// The diagnostics as a vector.
    #[must_use]
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// One error with no position in the file, e.g. when it cannot be read.
    #[must_use]
    pub fn file_error(file: &Path, message: impl Into<String>) -> Self {
        Self(vec![Diagnostic::error(file, None, message)])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        let errors = self.error_count();
        if errors > 1 {
            write!(f, "\n\nerror: aborting due to {errors} previous errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        Self(diagnostics)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Arc<str> {
        Arc::from("name: ci\nsteps:\n  test:\n    depend_on: [build]\n")
    }

    #[test]
    fn renders_like_rustc() {
        let d = Diagnostic::error(
            "examples/ci/hermetic.yaml",
            Some(Span::new(4, 5).with_len(9)),
            "unknown key `depend_on` in step `test`",
        )
        .with_help("did you mean `depends_on`?")
        .with_source(source());
        assert_eq!(
            d.to_string(),
            "error: unknown key `depend_on` in step `test`\n\
             \x20--> examples/ci/hermetic.yaml:4:5\n\
             \x20 |\n\
             4 |     depend_on: [build]\n\
             \x20 |     ^^^^^^^^^\n\
             \x20 = help: did you mean `depends_on`?"
        );
    }

    #[test]
    fn gutter_grows_with_line_numbers_and_notes_get_snippets() {
        let mut text = String::new();
        for i in 1..=12 {
            text.push_str(&format!("line{i}\n"));
        }
        let d = Diagnostic::error("f.yaml", Some(Span::new(12, 1).with_len(6)), "bad")
            .with_note(Some(Span::new(3, 2).with_len(2)), "first here")
            .with_note(None, "a fact")
            .with_source(Arc::from(text));
        assert_eq!(
            d.to_string(),
            "error: bad\n\
             \x20 --> f.yaml:12:1\n\
             \x20  |\n\
             12 | line12\n\
             \x20  | ^^^^^^\n\
             \x20  = note: a fact\n\
             note: first here\n\
             \x20 --> f.yaml:3:2\n\
             \x20  |\n\
             \x203 | line3\n\
             \x20  |  ^^"
        );
    }

    #[test]
    fn underline_is_clipped_to_the_line_and_at_least_one_caret() {
        assert_eq!(underline("ab", Span::new(1, 2).with_len(40)).1, "^");
        assert_eq!(underline("abc", Span::new(1, 1).with_len(0)).1, "^");
        // Past the end of the line: the caret goes right after the last character.
        assert_eq!(
            underline("ab", Span::new(1, 3)),
            ("  ".to_owned(), "^".to_owned())
        );
        assert_eq!(underline("\tab", Span::new(1, 2)).0, "\t");
    }

    #[test]
    fn without_source_or_span() {
        let d = Diagnostic::error("w.yaml", Some(Span::new(2, 3)), "oops");
        assert_eq!(d.to_string(), "error: oops\n --> w.yaml:2:3");
        let d = Diagnostic::error("w.yaml", None, "cannot read").with_help("check it");
        assert_eq!(d.to_string(), "error: cannot read\n  = help: check it");
    }

    #[test]
    fn several_end_with_an_abort_line_and_sort_by_position() {
        let mut all = Diagnostics::new();
        all.push(Diagnostic::error("w.yaml", Some(Span::new(3, 1)), "third"));
        all.push(Diagnostic::error("w.yaml", Some(Span::new(1, 9)), "second"));
        all.push(Diagnostic::error("w.yaml", None, "first"));
        all.sort();
        let text = all.to_string();
        assert_eq!(
            text,
            "error: first\n\n\
             error: second\n --> w.yaml:1:9\n\n\
             error: third\n --> w.yaml:3:1\n\n\
             error: aborting due to 3 previous errors"
        );
        let one = Diagnostics::from(Diagnostic::error("w.yaml", None, "only"));
        assert_eq!(one.to_string(), "error: only");
        assert_eq!(one.error_count(), 1);
    }

    #[test]
    fn warnings_are_not_counted_as_errors() {
        let all = Diagnostics(vec![
            Diagnostic::warning("w.yaml", None, "hmm"),
            Diagnostic::error("w.yaml", None, "bad"),
        ]);
        assert_eq!(all.error_count(), 1);
        assert_eq!(all.to_string(), "warning: hmm\n\nerror: bad");
    }
}
