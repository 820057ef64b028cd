//! `junit` — a hermetic task that merges test reports into one JUnit XML report.
//!
//! The task takes no arguments; its step's `params:` (all optional) say what to do:
//!
//! | param | type | meaning |
//! |---|---|---|
//! | `inputs` | list of paths | the reports to merge (default: every `*.xml` file under `/in`, then under `/deps`, sorted) |
//! | `output` | path | where to write the merged report, under `/out` (default `junit.xml`) |
//! | `keep_time` | bool | keep the `time` attributes of suites and test cases (default `false`) |
//! | `name` | string | a `name` for the `<testsuites>` root (default: none) |
//!
//! An input is a sandbox path such as `/in/unit.xml` or `/deps/test/report.xml`; a relative
//! path is taken relative to `/in`. `output` is a relative path under `/out` (`/out/` in front
//! is allowed), without `..`. Having no report to merge is an error.
//!
//! # Inputs
//!
//! A JUnit XML report (UTF-8) has a `<testsuites>` or a `<testsuite>` root. Every `<testsuite>`
//! that holds `<testcase>`s (or holds no suite at all) becomes a suite of the result; suites
//! nested in suites are flattened. Of each suite the task keeps its `name` (a suite without one
//! is named after its file), `<properties>`, `<system-out>` and `<system-err>`; of each test case
//! its `name`, `classname`, `file` and `line` attributes, its `<failure>`, `<error>` and
//! `<skipped>` (with `message`, `type` and text) and its `<system-out>`/`<system-err>`. Everything
//! else is dropped, notably `timestamp`, `hostname` and `id`, and `time` unless `keep_time`.
//!
//! A listed input whose first character (after blanks) is not `<` is read in a simple line
//! format instead, one test per line, as a suite named after the file (`unit.txt` → `unit`):
//!
//! ```text
//! PASS name
//! FAIL name: message
//! SKIP name: reason
//! ```
//!
//! The name ends at the first `: `; the message is optional. Blank lines and lines starting with
//! `#` are ignored; any other line is an error naming its line number.
//!
//! # Output
//!
//! One `<testsuites>` root holding every suite, sorted by name (suites of equal names stay
//! separate, in input order), with `tests`, `failures`, `errors` and `skipped` computed from the
//! test cases themselves (never copied from the inputs). A test case counts once: as an error if
//! it has an `<error>`, else as a failure if it has a `<failure>`, else as skipped if it has a
//! `<skipped>`. Text is XML-escaped and characters that XML 1.0 cannot hold are replaced by
//! U+FFFD. The bytes depend only on the inputs and params. One progress report is made per
//! input.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: report
//!     task: junit
//!     depends_on: [unit-tests, integration-tests]
//!     params: { name: all-tests }
//!     outputs: [junit.xml]
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hermetic_sdk::select::{guest_path, output_param};
use hermetic_sdk::{Error, Mounts, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde::Deserialize;

fn main() {
    hermetic_sdk::main_with_params("junit", |params: Params| {
        run(&Mounts::sandbox(), &params).map(|_| ())
    });
}

/// The step's `params:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    inputs: Option<Vec<String>>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    keep_time: bool,
    #[serde(default)]
    name: Option<String>,
}

/// The default output, relative to `/out`.
const DEFAULT_OUTPUT: &str = "junit.xml";

/// A test suite of the merged report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Suite {
    name: String,
    time: Option<String>,
    properties: Vec<(String, String)>,
    cases: Vec<Case>,
    system_out: Option<String>,
    system_err: Option<String>,
}

/// A test case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Case {
    name: String,
    classname: Option<String>,
    file: Option<String>,
    line: Option<String>,
    time: Option<String>,
    results: Vec<TestResult>,
    system_out: Option<String>,
    system_err: Option<String>,
}

/// A `<failure>`, `<error>` or `<skipped>` of a test case.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestResult {
    kind: Kind,
    message: Option<String>,
    kind_attr: Option<String>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Skipped,
    Failure,
    Error,
}

impl Kind {
    fn element(self) -> &'static str {
        match self {
            Kind::Skipped => "skipped",
            Kind::Failure => "failure",
            Kind::Error => "error",
        }
    }
}

impl Case {
    /// How the case counts: its worst result, if any.
    fn status(&self) -> Option<Kind> {
        self.results.iter().map(|r| r.kind).max()
    }
}

/// `tests`, `failures`, `errors` and `skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Totals {
    fn of(cases: &[Case]) -> Self {
        let mut totals = Totals {
            tests: cases.len(),
            ..Totals::default()
        };
        for case in cases {
            match case.status() {
                Some(Kind::Error) => totals.errors += 1,
                Some(Kind::Failure) => totals.failures += 1,
                Some(Kind::Skipped) => totals.skipped += 1,
                None => {}
            }
        }
        totals
    }

    fn add(&mut self, other: Totals) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    fn attributes(&self) -> String {
        format!(
            " tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

/// Merges the reports; returns the output written (relative to `/out`) and the totals.
fn run(mounts: &Mounts, params: &Params) -> Result<(PathBuf, Totals)> {
    let output = output_param("output", params.output.as_deref().unwrap_or(DEFAULT_OUTPUT))?;
    let inputs: Vec<String> = match &params.inputs {
        Some(inputs) if inputs.is_empty() => {
            return Err(Error::msg(
                "params: `inputs` is empty; list the reports to merge",
            ));
        }
        Some(inputs) => inputs.clone(),
        None => {
            let xml = |p: &PathBuf| p.extension().is_some_and(|e| e == "xml");
            let mut found: Vec<String> = mounts
                .list_inputs()?
                .iter()
                .filter(|p| xml(p))
                .map(|p| format!("/in/{}", p.display()))
                .collect();
            found.extend(
                mounts
                    .list_deps()?
                    .iter()
                    .filter(|p| xml(p))
                    .map(|p| format!("/deps/{}", p.display())),
            );
            if found.is_empty() {
                return Err(Error::msg(
                    "no test reports: there is no *.xml file under /in or /deps; list them in `inputs`",
                ));
            }
            found
        }
    };
    let total = inputs.len() as u64;
    let mut suites = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let shown = guest_path(input);
        let bytes = mounts.read(input)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::msg(format!("{shown}: the report is not UTF-8")))?;
        let fallback = Path::new(input)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let parsed = if text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('<')
        {
            parse_xml(&text, &fallback, params.keep_time)
        } else {
            parse_lines(&text, &fallback)
        };
        suites.extend(parsed.map_err(|e| Error::msg(format!("{shown}: {e}")))?);
        hermetic_sdk::progress(i as u64 + 1, Some(total));
    }
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    let (xml, totals) = write_report(params.name.as_deref(), &suites);
    mounts.write_output(&output, xml)?;
    Ok((output, totals))
}

// ---- the line format -------------------------------------------------------------------------

/// Parses `PASS name` / `FAIL name: message` / `SKIP name: reason` lines into one suite.
fn parse_lines(text: &str, suite_name: &str) -> Result<Vec<Suite>, String> {
    let mut suite = Suite {
        name: suite_name.to_string(),
        ..Suite::default()
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, rest) = if let Some(rest) = line.strip_prefix("PASS ") {
            (None, rest)
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            (Some(Kind::Failure), rest)
        } else if let Some(rest) = line.strip_prefix("SKIP ") {
            (Some(Kind::Skipped), rest)
        } else {
            return Err(format!(
                "line {}: expected `PASS name`, `FAIL name: message` or `SKIP name: reason`",
                i + 1
            ));
        };
        let (name, message) = match rest.split_once(": ") {
            Some((name, message)) => (name.trim(), Some(message.trim().to_string())),
            None => (rest.trim(), None),
        };
        if name.is_empty() {
            return Err(format!("line {}: the test has no name", i + 1));
        }
        suite.cases.push(Case {
            name: name.to_string(),
            classname: Some(suite_name.to_string()),
            results: kind
                .map(|kind| TestResult {
                    kind,
                    message,
                    kind_attr: None,
                    text: String::new(),
                })
                .into_iter()
                .collect(),
            ..Case::default()
        });
    }
    Ok(vec![suite])
}

// ---- JUnit XML -------------------------------------------------------------------------------

/// Parses a JUnit XML report into its suites, flattened.
fn parse_xml(text: &str, fallback_name: &str, keep_time: bool) -> Result<Vec<Suite>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        reader: Reader::from_str(text),
        fallback_name,
        keep_time,
        suites: Vec::new(),
    };
    let config = parser.reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    let mut seen_root = false;
    loop {
        match parser.next()? {
            Event::Start(start) if !seen_root => {
                seen_root = true;
                match start.name().as_ref() {
                    "testsuites" => parser.suites_body()?,
                    "testsuite" => parser.suite(&start)?,
                    other => {
                        return Err(format!(
                            "expected <testsuites> or <testsuite> as the root element, found <{other}>"
                        ));
                    }
                }
            }
            Event::Start(start) => {
                return Err(format!(
                    "unexpected <{}> after the root element",
                    start.name().as_ref()
                ));
            }
            Event::Text(t) if t.xml10_content().trim().is_empty() => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                return Err("text outside the root element".to_string());
            }
            Event::Eof if seen_root => return Ok(parser.suites),
            Event::Eof => return Err("no root element".to_string()),
            // Declarations, comments, processing instructions, DTDs, and (reported by the
            // reader as errors) stray end tags.
            _ => {}
        }
    }
}

/// A pull parser over one report, collecting its suites.
struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    fallback_name: &'a str,
    keep_time: bool,
    suites: Vec<Suite>,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<Event<'a>, String> {
        self.reader
            .read_event()
            .map_err(|e| format!("invalid XML at byte {}: {e}", self.reader.error_position()))
    }

    /// The error for an element that is not closed.
    fn unclosed(name: &str) -> String {
        format!("unexpected end of file: <{name}> is not closed")
    }

    /// The children of `<testsuites>`, up to its end tag.
    fn suites_body(&mut self) -> Result<(), String> {
        loop {
            match self.next()? {
                Event::Start(start) if start.name().as_ref() == "testsuite" => {
                    self.suite(&start)?;
                }
                Event::Start(start) => self.skip(start.name().as_ref())?,
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(Self::unclosed("testsuites")),
                _ => {}
            }
        }
    }

    /// A `<testsuite>` whose start tag was just read, up to its end tag. Nested suites are
    /// collected separately; this one is kept if it has test cases or no nested suite.
    fn suite(&mut self, start: &BytesStart<'_>) -> Result<(), String> {
        let mut suite = Suite::default();
        for (key, value) in attributes(start)? {
            match key.as_str() {
                "name" => suite.name = value,
                "time" if self.keep_time => suite.time = Some(value),
                _ => {}
            }
        }
        if suite.name.is_empty() {
            suite.name = self.fallback_name.to_string();
        }
        let mut nested = false;
        loop {
            match self.next()? {
                Event::Start(child) => match child.name().as_ref() {
                    "testcase" => {
                        let case = self.case(&child)?;
                        suite.cases.push(case);
                    }
                    "testsuite" => {
                        nested = true;
                        self.suite(&child)?;
                    }
                    "properties" => self.properties(&mut suite.properties)?,
                    "system-out" => suite.system_out = Some(self.text("system-out")?),
                    "system-err" => suite.system_err = Some(self.text("system-err")?),
                    other => self.skip(other)?,
                },
                Event::End(_) => break,
                Event::Eof => return Err(Self::unclosed("testsuite")),
                _ => {}
            }
        }
        if !suite.cases.is_empty() || !nested {
            self.suites.push(suite);
        }
        Ok(())
    }

    /// A `<testcase>` whose start tag was just read, up to its end tag.
    fn case(&mut self, start: &BytesStart<'_>) -> Result<Case, String> {
        let mut case = Case::default();
        for (key, value) in attributes(start)? {
            match key.as_str() {
                "name" => case.name = value,
                "classname" => case.classname = Some(value),
                "file" => case.file = Some(value),
                "line" => case.line = Some(value),
                "time" if self.keep_time => case.time = Some(value),
                _ => {}
            }
        }
        loop {
            match self.next()? {
                Event::Start(child) => {
                    let name = child.name().as_ref().to_string();
                    let kind = match name.as_str() {
                        "failure" => Kind::Failure,
                        "error" => Kind::Error,
                        "skipped" => Kind::Skipped,
                        "system-out" => {
                            case.system_out = Some(self.text(&name)?);
                            continue;
                        }
                        "system-err" => {
                            case.system_err = Some(self.text(&name)?);
                            continue;
                        }
                        _ => {
                            self.skip(&name)?;
                            continue;
                        }
                    };
                    let mut result = TestResult {
                        kind,
                        message: None,
                        kind_attr: None,
                        text: String::new(),
                    };
                    for (key, value) in attributes(&child)? {
                        match key.as_str() {
                            "message" => result.message = Some(value),
                            "type" => result.kind_attr = Some(value),
                            _ => {}
                        }
                    }
                    result.text = self.text(&name)?;
                    case.results.push(result);
                }
                Event::End(_) => return Ok(case),
                Event::Eof => return Err(Self::unclosed("testcase")),
                _ => {}
            }
        }
    }

    /// The `<property name value>`s of a `<properties>` just opened, up to its end tag.
    fn properties(&mut self, into: &mut Vec<(String, String)>) -> Result<(), String> {
        loop {
            match self.next()? {
                Event::Start(child) if child.name().as_ref() == "property" => {
                    let mut name = String::new();
                    let mut value = String::new();
                    for (key, v) in attributes(&child)? {
                        match key.as_str() {
                            "name" => name = v,
                            "value" => value = v,
                            _ => {}
                        }
                    }
                    // A value may also be the element's text.
                    let text = self.text("property")?;
                    if value.is_empty() {
                        value = text;
                    }
                    into.push((name, value));
                }
                Event::Start(child) => self.skip(child.name().as_ref())?,
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(Self::unclosed("properties")),
                _ => {}
            }
        }
    }

    /// The text of an element just opened, up to its end tag (text of nested elements
    /// included). Whitespace-only text is empty.
    fn text(&mut self, name: &str) -> Result<String, String> {
        let mut text = String::new();
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                            .ok_or_else(|| format!("unknown entity `&{};`", &*r))?
                            .to_string(),
                        Err(e) => {
                            return Err(format!("invalid character reference `&{};`: {e}", &*r));
                        }
                    };
                    text.push_str(&resolved);
                }
                Event::Start(_) => depth += 1,
                Event::End(_) if depth == 0 => break,
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(Self::unclosed(name)),
                _ => {}
            }
        }
        if text.trim().is_empty() {
            text.clear();
        }
        Ok(text)
    }

    /// Skips an element just opened, up to its end tag.
    fn skip(&mut self, name: &str) -> Result<(), String> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Event::Start(_) => depth += 1,
                Event::End(_) if depth == 0 => return Ok(()),
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(Self::unclosed(name)),
                _ => {}
            }
        }
    }
}

/// The attributes of a start tag, names and normalized values, in order.
fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let element = start.name().as_ref().to_string();
    start
        .attributes()
        .map(|attr| {
            let attr = attr.map_err(|e| format!("invalid attribute in <{element}>: {e}"))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("invalid attribute in <{element}>: {e}"))?;
            Ok((attr.key.as_ref().to_string(), value.into_owned()))
        })
        .collect()
}

// ---- writing ---------------------------------------------------------------------------------

/// The merged report and its totals.
fn write_report(name: Option<&str>, suites: &[Suite]) -> (String, Totals) {
    let mut totals = Totals::default();
    let mut body = String::new();
    for suite in suites {
        let suite_totals = Totals::of(&suite.cases);
        totals.add(suite_totals);
        let _ = write!(
            body,
            "  <testsuite name=\"{}\"{}",
            escape_attr(&suite.name),
            suite_totals.attributes()
        );
        if let Some(time) = &suite.time {
            let _ = write!(body, " time=\"{}\"", escape_attr(time));
        }
        let empty = suite.properties.is_empty()
            && suite.cases.is_empty()
            && suite.system_out.is_none()
            && suite.system_err.is_none();
        if empty {
            body.push_str("/>\n");
            continue;
        }
        body.push_str(">\n");
        if !suite.properties.is_empty() {
            body.push_str("    <properties>\n");
            for (key, value) in &suite.properties {
                let _ = writeln!(
                    body,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    escape_attr(key),
                    escape_attr(value)
                );
            }
            body.push_str("    </properties>\n");
        }
        for case in &suite.cases {
            write_case(&mut body, case);
        }
        write_text_element(&mut body, "    ", "system-out", suite.system_out.as_deref());
        write_text_element(&mut body, "    ", "system-err", suite.system_err.as_deref());
        body.push_str("  </testsuite>\n");
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
    if let Some(name) = name {
        let _ = write!(xml, " name=\"{}\"", escape_attr(name));
    }
    xml.push_str(&totals.attributes());
    if suites.is_empty() {
        xml.push_str("/>\n");
    } else {
        xml.push_str(">\n");
        xml.push_str(&body);
        xml.push_str("</testsuites>\n");
    }
    (xml, totals)
}

fn write_case(out: &mut String, case: &Case) {
    let _ = write!(out, "    <testcase name=\"{}\"", escape_attr(&case.name));
    let optional = [
        ("classname", &case.classname),
        ("file", &case.file),
        ("line", &case.line),
        ("time", &case.time),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            let _ = write!(out, " {key}=\"{}\"", escape_attr(value));
        }
    }
    if case.results.is_empty() && case.system_out.is_none() && case.system_err.is_none() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    for result in &case.results {
        let element = result.kind.element();
        let _ = write!(out, "      <{element}");
        if let Some(message) = &result.message {
            let _ = write!(out, " message=\"{}\"", escape_attr(message));
        }
        if let Some(kind) = &result.kind_attr {
            let _ = write!(out, " type=\"{}\"", escape_attr(kind));
        }
        if result.text.is_empty() {
            out.push_str("/>\n");
        } else {
            let _ = writeln!(out, ">{}</{element}>", escape_text(&result.text));
        }
    }
    write_text_element(out, "      ", "system-out", case.system_out.as_deref());
    write_text_element(out, "      ", "system-err", case.system_err.as_deref());
    out.push_str("    </testcase>\n");
}

fn write_text_element(out: &mut String, indent: &str, element: &str, text: Option<&str>) {
    match text {
        None => {}
        Some("") => {
            let _ = writeln!(out, "{indent}<{element}/>");
        }
        Some(text) => {
            let _ = writeln!(out, "{indent}<{element}>{}</{element}>", escape_text(text));
        }
    }
}

/// Whether XML 1.0 can hold `c` at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes element text.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Escapes an attribute value (in double quotes), keeping whitespace characters as they are.
fn escape_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- generated -->
<testsuites name="ignored" tests="99" timestamp="2024-01-01T00:00:00">
  <testsuite name="math" tests="3" hostname="ci-7" timestamp="2024-01-01T00:00:00" time="1.5">
    <properties><property name="seed" value="42"/></properties>
    <testcase name="adds" classname="math.Add" time="0.1"/>
    <testcase name="divides" classname="math.Div" time="0.2" assertions="3">
      <failure message="expected 2 &lt; 1" type="AssertionError">at div.rs:10
&amp; more</failure>
    </testcase>
    <testcase name="skips" classname="math.Skip"><skipped message="later"/></testcase>
    <system-out><![CDATA[log <raw>]]></system-out>
  </testsuite>
  <testsuite name="io">
    <testcase name="reads" classname="io"><error message="boom" type="IoError"/><failure/></testcase>
    <testcase name="ok"><system-err>warn&#x1b;[0m</system-err><rerun/></testcase>
  </testsuite>
</testsuites>
"#;

    #[test]
    fn parses_suites_cases_and_results() {
        let suites = parse_xml(REPORT, "file", false).unwrap();
        assert_eq!(suites.len(), 2);
        let math = &suites[0];
        assert_eq!(math.name, "math");
        assert_eq!(math.time, None);
        assert_eq!(math.properties, vec![("seed".into(), "42".into())]);
        assert_eq!(math.system_out.as_deref(), Some("log <raw>"));
        assert_eq!(math.cases.len(), 3);
        assert_eq!(math.cases[0].time, None);
        assert_eq!(
            math.cases[1].results,
            vec![TestResult {
                kind: Kind::Failure,
                message: Some("expected 2 < 1".into()),
                kind_attr: Some("AssertionError".into()),
                text: "at div.rs:10\n& more".into(),
            }]
        );
        assert_eq!(
            Totals::of(&math.cases),
            Totals {
                tests: 3,
                failures: 1,
                errors: 0,
                skipped: 1
            }
        );
        let io = &suites[1];
        assert_eq!(io.cases[0].status(), Some(Kind::Error));
        assert_eq!(io.cases[1].system_err.as_deref(), Some("warn\u{1b}[0m"));
        assert_eq!(
            Totals::of(&io.cases),
            Totals {
                tests: 2,
                failures: 0,
                errors: 1,
                skipped: 0
            }
        );

        let timed = parse_xml(REPORT, "file", true).unwrap();
        assert_eq!(timed[0].time.as_deref(), Some("1.5"));
        assert_eq!(timed[0].cases[1].time.as_deref(), Some("0.2"));
    }

    #[test]
    fn single_suite_roots_nested_suites_and_names() {
        let suites = parse_xml(
            "<testsuite><testcase name=\"a\"/></testsuite>",
            "unit",
            false,
        )
        .unwrap();
        assert_eq!(suites[0].name, "unit");
        let nested = parse_xml(
            r#"<testsuites><testsuite name="all"><testsuite name="A"><testcase name="x"/></testsuite><testsuite name="B"/></testsuite></testsuites>"#,
            "f",
            false,
        )
        .unwrap();
        let names: Vec<_> = nested.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn rejects_broken_reports() {
        let err = |t: &str| parse_xml(t, "f", false).unwrap_err();
        assert_eq!(
            err("<html><body/></html>"),
            "expected <testsuites> or <testsuite> as the root element, found <html>"
        );
        assert_eq!(
            err("<testsuite name=\"a\"><testcase name=\"x\">"),
            "unexpected end of file: <testcase> is not closed"
        );
        assert_eq!(err(""), "no root element");
        assert_eq!(
            err("<testsuite/><testsuite/>"),
            "unexpected <testsuite> after the root element"
        );
        assert!(
            err("<testsuite><testcase></testsuite>").starts_with("invalid XML at byte "),
            "{}",
            err("<testsuite><testcase></testsuite>")
        );
        assert_eq!(
            err("<testsuite><testcase><failure>&nope;</failure></testcase></testsuite>"),
            "unknown entity `&nope;`"
        );
    }

    #[test]
    fn parses_the_line_format() {
        let suites = parse_lines(
            "# results\nPASS adds\n\nFAIL divides: expected 2: got 3\nSKIP later\r\n",
            "unit",
        )
        .unwrap();
        let cases = &suites[0].cases;
        assert_eq!(suites[0].name, "unit");
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[1].name, "divides");
        assert_eq!(
            cases[1].results[0].message.as_deref(),
            Some("expected 2: got 3")
        );
        assert_eq!(cases[2].status(), Some(Kind::Skipped));
        assert_eq!(
            parse_lines("PASS a\nok b\n", "u").unwrap_err(),
            "line 2: expected `PASS name`, `FAIL name: message` or `SKIP name: reason`"
        );
        assert_eq!(
            parse_lines("FAIL : x", "u").unwrap_err(),
            "line 1: the test has no name"
        );
    }

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            escape_text("a<b>&c\"'\u{1}\n"),
            "a&lt;b&gt;&amp;c\"'\u{FFFD}\n"
        );
        assert_eq!(
            escape_attr("a\"b\n\tc<&\u{FFFF}"),
            "a&quot;b&#10;&#9;c&lt;&amp;\u{FFFD}"
        );
    }

    #[test]
    fn writes_a_canonical_report() {
        let mut suites = parse_xml(REPORT, "f", false).unwrap();
        suites.extend(parse_lines("PASS z\n", "empty-ish").unwrap());
        suites.push(Suite {
            name: "none".into(),
            ..Suite::default()
        });
        suites.sort_by(|a, b| a.name.cmp(&b.name));
        let (xml, totals) = write_report(Some("all & more"), &suites);
        assert_eq!(
            totals,
            Totals {
                tests: 6,
                failures: 1,
                errors: 1,
                skipped: 1
            }
        );
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="all &amp; more" tests="6" failures="1" errors="1" skipped="1">
  <testsuite name="empty-ish" tests="1" failures="0" errors="0" skipped="0">
    <testcase name="z" classname="empty-ish"/>
  </testsuite>
  <testsuite name="io" tests="2" failures="0" errors="1" skipped="0">
    <testcase name="reads" classname="io">
      <error message="boom" type="IoError"/>
      <failure/>
    </testcase>
    <testcase name="ok">
      <system-err>warn�[0m</system-err>
    </testcase>
  </testsuite>
  <testsuite name="math" tests="3" failures="1" errors="0" skipped="1">
    <properties>
      <property name="seed" value="42"/>
    </properties>
    <testcase name="adds" classname="math.Add"/>
    <testcase name="divides" classname="math.Div">
      <failure message="expected 2 &lt; 1" type="AssertionError">at div.rs:10
&amp; more</failure>
    </testcase>
    <testcase name="skips" classname="math.Skip">
      <skipped message="later"/>
    </testcase>
    <system-out>log &lt;raw&gt;</system-out>
  </testsuite>
  <testsuite name="none" tests="0" failures="0" errors="0" skipped="0"/>
</testsuites>
"#
        );
        // What it writes, it reads back the same.
        let again = parse_xml(&xml, "f", false).unwrap();
        assert_eq!(write_report(Some("all & more"), &again).0, xml);
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("hermetic-junit-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in")).unwrap();
            fs::create_dir_all(dir.join("deps/it")).unwrap();
            Self(dir)
        }
        fn write(&self, rel: &str, text: &str) {
            fs::write(self.0.join(rel), text).unwrap();
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn merges_files_from_inputs_and_deps() {
        let s = Scratch::new("merge");
        s.write(
            "in/b.xml",
            "<testsuite name=\"b\"><testcase name=\"t\"/></testsuite>",
        );
        s.write("in/notes.txt", "not a report");
        s.write(
            "deps/it/a.xml",
            "<testsuite name=\"a\"><testcase name=\"t\"><failure/></testcase></testsuite>",
        );
        let m = Mounts::rooted(&s.0);
        let (out, totals) = run(&m, &Params::default()).unwrap();
        assert_eq!(out, PathBuf::from("junit.xml"));
        assert_eq!(
            totals,
            Totals {
                tests: 2,
                failures: 1,
                errors: 0,
                skipped: 0
            }
        );
        let xml = fs::read_to_string(s.0.join("out/junit.xml")).unwrap();
        assert!(
            xml.find("name=\"a\"").unwrap() < xml.find("name=\"b\"").unwrap(),
            "{xml}"
        );

        s.write("in/unit.txt", "PASS x\nFAIL y: no\n");
        let params = Params {
            inputs: Some(vec!["unit.txt".into(), "/deps/it/a.xml".into()]),
            output: Some("/out/r/all.xml".into()),
            ..Params::default()
        };
        let (out, totals) = run(&m, &params).unwrap();
        assert_eq!(out, PathBuf::from("r/all.xml"));
        assert_eq!(
            totals,
            Totals {
                tests: 3,
                failures: 2,
                errors: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn errors_name_the_file() {
        let s = Scratch::new("errors");
        let m = Mounts::rooted(&s.0);
        assert_eq!(
            run(&m, &Params::default()).unwrap_err().to_string(),
            "no test reports: there is no *.xml file under /in or /deps; list them in `inputs`"
        );
        s.write("in/bad.xml", "<report/>");
        assert_eq!(
            run(&m, &Params::default()).unwrap_err().to_string(),
            "/in/bad.xml: expected <testsuites> or <testsuite> as the root element, found <report>"
        );
        let params = Params {
            inputs: Some(vec![]),
            ..Params::default()
        };
        assert_eq!(
            run(&m, &params).unwrap_err().to_string(),
            "params: `inputs` is empty; list the reports to merge"
        );
        let params = Params {
            output: Some("../x".into()),
            ..Params::default()
        };
        assert_eq!(
            run(&m, &params).unwrap_err().to_string(),
            "params: output \"../x\" must be a relative path under /out, without `..`"
        );
    }
}
