//! `template` — a hermetic task that renders text templates with parameters.
//!
//! The task takes no arguments; its step's `params:` say what to render:
//!
//! | param | type | meaning |
//! |---|---|---|
//! | `template` | path | the template to render (with `output`) |
//! | `output` | path | where to write it, under `/out` |
//! | `files` | list of `{template, output}` | more templates to render, in order |
//! | `vars` | map | the values the templates refer to (default `{}`) |
//! | `vars_from` | list of paths | JSON files whose top-level maps are merged into the values first, in order (`vars` wins); e.g. a dependency's `/deps/config/config.json` |
//! | `strict` | bool | an unknown variable is an error (default `true`); if `false`, it renders as nothing |
//!
//! A template path is a sandbox path such as `/in/page.html` or `/deps/gen/x.txt`; a relative
//! path is taken relative to `/in`. An output is a relative path under `/out` (`/out/` in front
//! is allowed), without `..`; its directories are created. At least one template is required,
//! and no output may be named twice.
//!
//! # Syntax
//!
//! * `{{ name }}` is replaced by the value of `vars.name`; the spaces are optional.
//! * `{{ a.b.c }}` looks up nested maps (`vars.a.b.c`); a numeric part indexes a list
//!   (`{{ items.0 }}`). A name part is made of letters, digits, `_` and `-`.
//! * `{{{{` is a literal `{{`. Nothing else is special: `}}`, a lone `{` and any other text are
//!   copied as they are.
//!
//! A string renders as itself, a number as in JSON, a boolean as `true`/`false`, and `null` as
//! nothing. A map or list cannot be rendered (name one of its members). An unknown variable is
//! an error that names it and where it is: `/in/page.html:3:9: unknown variable `user.name``
//! (line and column are 1-based; the column counts characters). Templates must be UTF-8.
//!
//! Rendering is a pure function of the template and `vars`: there are no conditionals, loops,
//! includes, clocks or environment lookups. One progress report is made per rendered file.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: pages
//!     task: template
//!     inputs: [page.html, about.html]
//!     params:
//!       template: page.html
//!       output: site/index.html
//!       files:
//!         - { template: about.html, output: site/about.html }
//!       vars: { title: Home, site: { name: Example, year: 2024 } }
//!     outputs: [site/index.html, site/about.html]
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use hermetic_sdk::select::{guest_path, output_param};
use hermetic_sdk::{Error, Mounts, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

fn main() {
    hermetic_sdk::main_with_params("template", |params: Params| {
        run(&Mounts::sandbox(), &params).map(|_| ())
    });
}

/// The step's `params:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    files: Vec<FileSpec>,
    #[serde(default)]
    vars: Map<String, Value>,
    #[serde(default)]
    vars_from: Vec<String>,
    #[serde(default = "default_strict")]
    strict: bool,
}

fn default_strict() -> bool {
    true
}

/// One template to render, and where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    template: String,
    output: String,
}

/// Renders every template the params name; returns the outputs written, relative to `/out`.
fn run(mounts: &Mounts, params: &Params) -> Result<Vec<PathBuf>> {
    let jobs = jobs(params)?;
    let vars = vars(mounts, params)?;
    let total = jobs.len() as u64;
    let mut written = Vec::with_capacity(jobs.len());
    for (i, (template, output)) in jobs.into_iter().enumerate() {
        let shown = guest_path(&template);
        let bytes = mounts.read(&template)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::msg(format!("{shown}: the template is not UTF-8 text")))?;
        let rendered =
            render(&text, &vars, params.strict).map_err(|e| Error::msg(format!("{shown}:{e}")))?;
        mounts.write_output(&output, rendered)?;
        written.push(output);
        hermetic_sdk::progress(i as u64 + 1, Some(total));
    }
    Ok(written)
}

/// The variables: each `vars_from` JSON file's top-level map, in order, then `vars`; a later
/// name replaces an earlier one.
fn vars(mounts: &Mounts, params: &Params) -> Result<Map<String, Value>> {
    let mut vars = Map::new();
    for path in &params.vars_from {
        let shown = guest_path(path);
        let bytes = mounts.read(path)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => vars.extend(map),
            Ok(_) => {
                return Err(Error::msg(format!(
                    "{shown}: `vars_from` needs a JSON object at the top"
                )));
            }
            Err(e) => return Err(Error::msg(format!("{shown}: invalid JSON: {e}"))),
        }
    }
    vars.extend(params.vars.clone());
    Ok(vars)
}

/// The `(template, output)` pairs to render, in order, validated.
fn jobs(params: &Params) -> Result<Vec<(String, PathBuf)>> {
    let mut jobs = Vec::new();
    match (&params.template, &params.output) {
        (Some(template), Some(output)) => {
            jobs.push((template.clone(), output_param("output", output)?));
        }
        (Some(_), None) => {
            return Err(Error::msg(
                "params: `template` needs `output`, the path to write under /out",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::msg(
                "params: `output` needs `template`, the template to render",
            ));
        }
        (None, None) => {}
    }
    for (i, file) in params.files.iter().enumerate() {
        let field = format!("files[{i}].output");
        jobs.push((file.template.clone(), output_param(&field, &file.output)?));
    }
    if jobs.is_empty() {
        return Err(Error::msg(
            "params: nothing to render; give `template` and `output`, or `files: [{template, output}]`",
        ));
    }
    let mut seen = BTreeSet::new();
    for (_, output) in &jobs {
        if !seen.insert(output.clone()) {
            return Err(Error::msg(format!(
                "params: output {} is rendered more than once",
                output.display()
            )));
        }
    }
    Ok(jobs)
}

/// A rendering error, at a 1-based line and column (in characters) of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RenderError {
    line: usize,
    column: usize,
    message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Renders `text`, replacing each `{{ name }}` by its value in `vars` (see the crate docs).
fn render(text: &str, vars: &Map<String, Value>, strict: bool) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = text[rest..].find("{{") {
        let start = rest + found;
        out.push_str(&text[rest..start]);
        if text[start..].starts_with("{{{{") {
            out.push_str("{{");
            rest = start + 4;
            continue;
        }
        let error = |message: String| {
            let (line, column) = line_column(text, start);
            RenderError {
                line,
                column,
                message,
            }
        };
        let Some(len) = text[start + 2..].find("}}") else {
            return Err(error(
                "`{{` is not closed by `}}` (write `{{{{` for a literal `{{`)".to_string(),
            ));
        };
        let name = text[start + 2..start + 2 + len].trim();
        rest = start + 2 + len + 2;
        if !valid_name(name) {
            return Err(error(format!(
                "invalid variable name `{name}`: expected `{{{{ name }}}}` or `{{{{ a.b }}}}` with \
                 letters, digits, `_` and `-` (write `{{{{{{{{` for a literal `{{{{`)"
            )));
        }
        match lookup(vars, name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(Value::Null) => {}
            Some(Value::Object(_)) => {
                return Err(error(format!(
                    "variable `{name}` is a map; name one of its members, like `{name}.key`"
                )));
            }
            Some(Value::Array(_)) => {
                return Err(error(format!(
                    "variable `{name}` is a list; name one of its items, like `{name}.0`"
                )));
            }
            None if strict => return Err(error(format!("unknown variable `{name}`"))),
            None => {}
        }
    }
    out.push_str(&text[rest..]);
    Ok(out)
}

/// Whether `name` is dot-separated parts of letters, digits, `_` and `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

/// The value at dotted `name` in `vars`; a numeric part indexes a list.
fn lookup<'v>(vars: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    let mut parts = name.split('.');
    let mut value = vars.get(parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;

    fn vars(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("vars must be an object"),
        }
    }

    fn params(value: Value) -> Params {
        hermetic_sdk::params_from(&value.to_string()).unwrap()
    }

    #[test]
    fn renders_variables() {
        let v = vars(json!({
            "title": "Home",
            "n": 3,
            "pi": 1.5,
            "yes": true,
            "none": null,
            "site": { "name": "Ex", "tags": ["a", "b"] },
        }));
        let got = render(
            "<h1>{{ title }}</h1>{{n}} {{pi}} {{  yes  }} [{{ none }}] {{ site.name }} {{site.tags.1}}",
            &v,
            true,
        )
        .unwrap();
        assert_eq!(got, "<h1>Home</h1>3 1.5 true [] Ex b");
    }

    #[test]
    fn text_without_tags_is_unchanged() {
        let v = Map::new();
        for text in ["", "plain", "a } b }} c { d", "ünïcödé {", "x {y} z"] {
            assert_eq!(render(text, &v, true).unwrap(), text);
        }
    }

    #[test]
    fn quadruple_braces_escape() {
        let v = vars(json!({ "x": "X" }));
        assert_eq!(
            render("{{{{ x }} is {{ x }}", &v, true).unwrap(),
            "{{ x }} is X"
        );
        assert_eq!(render("{{{{{{{{", &v, true).unwrap(), "{{{{");
    }

    #[test]
    fn unknown_variable_names_it_and_its_position() {
        let v = vars(json!({ "user": { "id": 1 } }));
        let err = render("line one\n  ça {{ user.name }}", &v, true).unwrap_err();
        assert_eq!(err.to_string(), "2:6: unknown variable `user.name`");
        let err = render("{{ a.b }}", &vars(json!({ "a": "text" })), true).unwrap_err();
        assert_eq!(err.to_string(), "1:1: unknown variable `a.b`");
        let err = render("{{ list.9 }}", &vars(json!({ "list": [1] })), true).unwrap_err();
        assert_eq!(err.to_string(), "1:1: unknown variable `list.9`");
    }

    #[test]
    fn lenient_mode_renders_unknown_as_nothing() {
        let v = vars(json!({ "a": 1 }));
        assert_eq!(
            render("[{{ b }}][{{ a }}][{{ a.b }}]", &v, false).unwrap(),
            "[][1][]"
        );
    }

    #[test]
    fn malformed_tags_are_errors() {
        let v = vars(json!({ "m": {}, "l": [] }));
        let err = |t: &str| render(t, &v, true).unwrap_err().to_string();
        assert_eq!(
            err("ok\nx {{ open"),
            "2:3: `{{` is not closed by `}}` (write `{{{{` for a literal `{{`)"
        );
        assert!(err("{{ }}").starts_with("1:1: invalid variable name ``"));
        assert!(err("{{ a b }}").starts_with("1:1: invalid variable name `a b`"));
        assert!(err("{{ a..b }}").starts_with("1:1: invalid variable name `a..b`"));
        assert!(err("{{{ a }}").starts_with("1:1: invalid variable name `{ a`"));
        assert_eq!(
            err("{{ m }}"),
            "1:1: variable `m` is a map; name one of its members, like `m.key`"
        );
        assert_eq!(
            err("{{ l }}"),
            "1:1: variable `l` is a list; name one of its items, like `l.0`"
        );
    }

    #[test]
    fn params_are_checked() {
        let err = |v: Value| jobs(&params(v)).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            err(json!({})),
            "params: nothing to render; give `template` and `output`, or `files: [{template, output}]`"
        );
        assert_eq!(
            err(json!({ "template": "a" })),
            "params: `template` needs `output`, the path to write under /out"
        );
        assert_eq!(
            err(json!({ "output": "a" })),
            "params: `output` needs `template`, the template to render"
        );
        assert_eq!(
            err(json!({ "template": "a", "output": "../x" })),
            "params: output \"../x\" must be a relative path under /out, without `..`"
        );
        assert_eq!(
            err(json!({ "files": [{ "template": "a", "output": "/etc/x" }] })),
            "params: files[0].output \"/etc/x\" must be a relative path under /out, without `..`"
        );
        assert_eq!(
            err(
                json!({ "template": "a", "output": "x", "files": [{ "template": "b", "output": "/out/x" }] })
            ),
            "params: output x is rendered more than once"
        );
        let bad = hermetic_sdk::params_from::<Params>(r#"{"templates": "a"}"#).unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("invalid params: unknown field `templates`"),
            "{bad}"
        );
        let jobs = jobs(&params(json!({
            "template": "/deps/gen/a.txt",
            "output": "/out/a.txt",
            "files": [{ "template": "b.txt", "output": "sub/b.txt" }],
        })))
        .unwrap();
        assert_eq!(
            jobs,
            vec![
                ("/deps/gen/a.txt".to_string(), PathBuf::from("a.txt")),
                ("b.txt".to_string(), PathBuf::from("sub/b.txt")),
            ]
        );
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "hermetic-template-test-{}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in")).unwrap();
            fs::create_dir_all(dir.join("deps/gen")).unwrap();
            fs::write(dir.join("in/page.html"), "<title>{{ title }}</title>\n").unwrap();
            fs::write(dir.join("deps/gen/v.txt"), "v{{ v.major }}\n").unwrap();
            fs::write(dir.join("in/bad.txt"), b"\xff{{ x }}").unwrap();
            Self(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn renders_files_from_inputs_and_deps() {
        let s = Scratch::new("files");
        let m = Mounts::rooted(&s.0);
        let written = run(
            &m,
            &params(json!({
                "template": "page.html",
                "output": "site/index.html",
                "files": [{ "template": "/deps/gen/v.txt", "output": "version.txt" }],
                "vars": { "title": "Home", "v": { "major": 2 } },
            })),
        )
        .unwrap();
        assert_eq!(
            written,
            vec![
                PathBuf::from("site/index.html"),
                PathBuf::from("version.txt")
            ]
        );
        assert_eq!(
            fs::read_to_string(s.0.join("out/site/index.html")).unwrap(),
            "<title>Home</title>\n"
        );
        assert_eq!(
            fs::read_to_string(s.0.join("out/version.txt")).unwrap(),
            "v2\n"
        );
    }

    #[test]
    fn file_errors_name_the_template() {
        let s = Scratch::new("errors");
        let m = Mounts::rooted(&s.0);
        let err = |v: Value| run(&m, &params(v)).unwrap_err().to_string();
        assert_eq!(
            err(json!({ "template": "page.html", "output": "x" })),
            "/in/page.html:1:8: unknown variable `title`"
        );
        assert_eq!(
            err(json!({ "template": "bad.txt", "output": "x" })),
            "/in/bad.txt: the template is not UTF-8 text"
        );
        assert!(err(json!({ "template": "nope.txt", "output": "x" })).starts_with("cannot read "),);
    }
}
