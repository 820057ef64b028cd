//! `json` — a hermetic task that selects, merges and transforms JSON documents.
//!
//! The task takes no arguments; its step's `params:` say what to do. `op` is one of:
//!
//! | `op` | params | result |
//! |---|---|---|
//! | `select` | `input`, `path`, `output` | the value at `path` in `input` |
//! | `merge` | `inputs` (a non-empty list), `output` | the inputs deep-merged, left to right |
//! | `transform` | `input`, `output`, `set` (map of path → value), `delete` (list of paths) | `input` with `set` applied, then `delete` |
//!
//! Input paths are sandbox paths such as `/in/a.json` or `/deps/build/meta.json`; a relative
//! path is taken relative to `/in`. `output` is a relative path under `/out` (`/out/` in front is
//! allowed), without `..`; its directories are created. A parameter that the `op` does not use
//! is an error, as is an unknown one.
//!
//! # Paths
//!
//! A path names a value inside a document: `a.b[0].c` is key `c` of item 0 of the list at key
//! `b` of key `a`. A key is any text without `.`, `[`, `]` or `"`; other keys are written quoted
//! in brackets as JSON strings: `a["x.y"]`, `["with \"quotes\""]`. The empty path (or `.`)
//! is the whole document.
//!
//! # Semantics
//!
//! * `select`: a missing key, an index out of range or a step into a value that is not a map
//!   (or list) is an error that says where.
//! * `merge`: a map merges into a map key by key, recursively; any other value (lists included)
//!   replaces what was there, and `null` too.
//! * `transform`: `set` is applied in sorted order of its paths (so a parent is set before its
//!   children). Missing maps on the way are created (a list, if the next part is an index); a
//!   `null` on the way is replaced by one. An index may name an existing item or the one just
//!   past the end (which appends). Then `delete` removes each path in order; deleting something
//!   that is not there is an error (it is usually a typo), and an item deleted from a list
//!   shifts the later ones down.
//!
//! # Output
//!
//! Always canonical: pretty-printed with two-space indentation, keys sorted (by Unicode code
//! point), and a trailing newline, so equal documents give equal bytes. Numbers keep what
//! `serde_json` keeps: integers of up to 64 bits exactly, others as `f64`. A `merge` reports
//! progress once per input.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: config
//!     task: json
//!     inputs: [base.json]
//!     depends_on: [defaults]
//!     params:
//!       op: merge
//!       inputs: [/deps/defaults/config.json, base.json]
//!       output: config.json
//!     outputs: [config.json]
//!   - name: version
//!     task: json
//!     inputs: [package.json]
//!     params: { op: select, input: package.json, path: version, output: version.json }
//!     outputs: [version.json]
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use hermetic_sdk::select::{guest_path, output_param};
use hermetic_sdk::{Error, Mounts, Result};
use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

fn main() {
    hermetic_sdk::main_with_params("json", |params: Params| {
        run(&Mounts::sandbox(), &params).map(|_| ())
    });
}

/// The step's `params:`, before they are checked against `op`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    op: OpName,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    inputs: Option<Vec<String>>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    set: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    delete: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OpName {
    Select,
    Merge,
    Transform,
}

impl OpName {
    fn as_str(self) -> &'static str {
        match self {
            OpName::Select => "select",
            OpName::Merge => "merge",
            OpName::Transform => "transform",
        }
    }
}

/// What to do, checked.
#[derive(Debug, PartialEq)]
enum Plan {
    Select {
        input: String,
        path: Vec<Seg>,
        path_text: String,
    },
    Merge {
        inputs: Vec<String>,
    },
    Transform {
        input: String,
        set: Vec<(String, Vec<Seg>, Value)>,
        delete: Vec<(String, Vec<Seg>)>,
    },
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Checks the params against their `op`; returns the plan and the output path.
fn plan(params: &Params) -> Result<(Plan, PathBuf)> {
    let op = params.op;
    let unused = |name: &str, given: bool| -> Result<()> {
        if given {
            Err(Error::msg(format!(
                "params: `{name}` is not used by op `{}`",
                op.as_str()
            )))
        } else {
            Ok(())
        }
    };
    let needed = |name: &str, value: &Option<String>| -> Result<String> {
        value
            .clone()
            .ok_or_else(|| Error::msg(format!("params: op `{}` needs `{name}`", op.as_str())))
    };
    let output = output_param("output", &needed("output", &params.output)?)?;
    let plan = match op {
        OpName::Select => {
            unused("inputs", params.inputs.is_some())?;
            unused("set", params.set.is_some())?;
            unused("delete", params.delete.is_some())?;
            let path_text = needed("path", &params.path)?;
            Plan::Select {
                input: needed("input", &params.input)?,
                path: parse_path(&path_text).map_err(Error::msg)?,
                path_text,
            }
        }
        OpName::Merge => {
            unused("input", params.input.is_some())?;
            unused("path", params.path.is_some())?;
            unused("set", params.set.is_some())?;
            unused("delete", params.delete.is_some())?;
            let inputs = params.inputs.clone().unwrap_or_default();
            if inputs.is_empty() {
                return Err(Error::msg(
                    "params: op `merge` needs `inputs`, a non-empty list of JSON files",
                ));
            }
            Plan::Merge { inputs }
        }
        OpName::Transform => {
            unused("inputs", params.inputs.is_some())?;
            unused("path", params.path.is_some())?;
            let mut set = Vec::new();
            for (text, value) in params.set.iter().flatten() {
                set.push((
                    text.clone(),
                    parse_path(text).map_err(Error::msg)?,
                    value.clone(),
                ));
            }
            let mut delete = Vec::new();
            for text in params.delete.iter().flatten() {
                let path = parse_path(text).map_err(Error::msg)?;
                if path.is_empty() {
                    return Err(Error::msg(
                        "params: `delete` cannot delete the whole document",
                    ));
                }
                delete.push((text.clone(), path));
            }
            Plan::Transform {
                input: needed("input", &params.input)?,
                set,
                delete,
            }
        }
    };
    Ok((plan, output))
}

/// Runs the params' op; returns the output written, relative to `/out`.
fn run(mounts: &Mounts, params: &Params) -> Result<PathBuf> {
    let (plan, output) = plan(params)?;
    let result = match plan {
        Plan::Select {
            input,
            path,
            path_text,
        } => {
            let doc = read_json(mounts, &input)?;
            select(&doc, &path).cloned().map_err(|e| {
                Error::msg(format!("{}: select `{path_text}`: {e}", guest_path(&input)))
            })?
        }
        Plan::Merge { inputs } => {
            let total = inputs.len() as u64;
            let mut merged: Option<Value> = None;
            for (i, input) in inputs.iter().enumerate() {
                let doc = read_json(mounts, input)?;
                match &mut merged {
                    None => merged = Some(doc),
                    Some(base) => merge(base, doc),
                }
                hermetic_sdk::progress(i as u64 + 1, Some(total));
            }
            merged.unwrap_or(Value::Null)
        }
        Plan::Transform { input, set, delete } => {
            let mut doc = read_json(mounts, &input)?;
            let shown = guest_path(&input);
            for (text, path, value) in set {
                set_path(&mut doc, &path, value)
                    .map_err(|e| Error::msg(format!("{shown}: set `{text}`: {e}")))?;
            }
            for (text, path) in delete {
                delete_path(&mut doc, &path)
                    .map_err(|e| Error::msg(format!("{shown}: delete `{text}`: {e}")))?;
            }
            doc
        }
    };
    mounts.write_output(&output, canonical(&result))?;
    Ok(output)
}

/// Reads and parses a JSON file given by its sandbox path.
fn read_json(mounts: &Mounts, path: &str) -> Result<Value> {
    let bytes = mounts.read(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::msg(format!("{}: invalid JSON: {e}", guest_path(path))))
}

/// Parses a path such as `a.b[0]["x.y"]` (see the crate docs).
fn parse_path(text: &str) -> Result<Vec<Seg>, String> {
    let bad = |at: usize, what: &str| format!("invalid path `{text}`: {what} at offset {at}");
    let mut segs = Vec::new();
    if text.is_empty() || text == "." {
        return Ok(segs);
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    // Whether a key may (or, after a dot, must) come next.
    let mut key_next = true;
    let mut after_dot = false;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                if after_dot {
                    return Err(bad(i, "expected a key after `.`"));
                }
                i += 1;
                if bytes.get(i) == Some(&b'"') {
                    let start = i;
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= bytes.len() {
                        return Err(bad(start, "unterminated quoted key"));
                    }
                    i += 1;
                    let key: String = serde_json::from_str(&text[start..i])
                        .map_err(|_| bad(start, "invalid quoted key"))?;
                    segs.push(Seg::Key(key));
                } else {
                    let start = i;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    let index = text[start..i]
                        .parse::<usize>()
                        .map_err(|_| bad(start, "expected an index or a quoted key"))?;
                    segs.push(Seg::Index(index));
                }
                if bytes.get(i) != Some(&b']') {
                    return Err(bad(i, "expected `]`"));
                }
                i += 1;
                key_next = false;
                after_dot = false;
            }
            b'.' if !key_next => {
                i += 1;
                key_next = true;
                after_dot = true;
            }
            b'.' | b']' | b'"' => {
                return Err(bad(i, &format!("unexpected `{}`", bytes[i] as char)));
            }
            _ if key_next => {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b']' | b'"') {
                    i += 1;
                }
                segs.push(Seg::Key(text[start..i].to_string()));
                key_next = false;
                after_dot = false;
            }
            _ => return Err(bad(i, "expected `.` or `[`")),
        }
    }
    if after_dot {
        return Err(bad(i, "expected a key after `.`"));
    }
    Ok(segs)
}

/// Writes a path back in the syntax [`parse_path`] reads.
fn show_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(key) if !key.is_empty() && !key.contains(['.', '[', ']', '"']) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Key(key) => {
                let _ = write!(out, "[{}]", Value::String(key.clone()));
            }
            Seg::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

/// "the root" or "`a.b`", for messages.
fn at(prefix: &[Seg]) -> String {
    if prefix.is_empty() {
        "the root".to_string()
    } else {
        format!("`{}`", show_path(prefix))
    }
}

/// What kind of value `value` is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The error for stepping with `seg` into `value`, which has the wrong kind.
fn wrong_kind(prefix: &[Seg], seg: &Seg, value: &Value) -> String {
    let wanted = match seg {
        Seg::Key(_) => "a map",
        Seg::Index(_) => "a list",
    };
    format!("{} is {}, not {wanted}", at(prefix), kind(value))
}

fn missing(prefix: &[Seg], seg: &Seg, value: &Value) -> String {
    match (seg, value) {
        (Seg::Key(key), _) => format!(
            "no key {} in the map at {}",
            Value::String(key.clone()),
            at(prefix)
        ),
        (Seg::Index(index), Value::Array(items)) => format!(
            "index {index} is out of range for the list of {} at {}",
            items.len(),
            at(prefix)
        ),
        (Seg::Index(index), _) => format!("no index {index} at {}", at(prefix)),
    }
}

/// The value at `path` in `doc`.
fn select<'v>(doc: &'v Value, path: &[Seg]) -> Result<&'v Value, String> {
    let mut value = doc;
    for (i, seg) in path.iter().enumerate() {
        let next = match (seg, value) {
            (Seg::Key(key), Value::Object(map)) => map.get(key),
            (Seg::Index(index), Value::Array(items)) => items.get(*index),
            _ => return Err(wrong_kind(&path[..i], seg, value)),
        };
        value = next.ok_or_else(|| missing(&path[..i], seg, value))?;
    }
    Ok(value)
}

/// Deep-merges `over` into `base`: maps key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// An empty container that `seg` can step into.
fn container_for(seg: &Seg) -> Value {
    match seg {
        Seg::Key(_) => Value::Object(Map::new()),
        Seg::Index(_) => Value::Array(Vec::new()),
    }
}

/// Sets the value at `path`, creating missing containers on the way.
fn set_path(doc: &mut Value, path: &[Seg], new: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        *doc = new;
        return Ok(());
    };
    let mut value = doc;
    for (i, seg) in parents.iter().enumerate() {
        let next = &path[i + 1];
        value = step_or_create(value, &path[..i], seg, || container_for(next))?;
        if value.is_null() {
            *value = container_for(next);
        }
    }
    let slot = step_or_create(value, parents, last, || Value::Null)?;
    *slot = new;
    Ok(())
}

/// Steps with `seg` into `value`, adding `fresh()` if the key is missing or the index is just
/// past the end of the list.
fn step_or_create<'v>(
    value: &'v mut Value,
    prefix: &[Seg],
    seg: &Seg,
    fresh: impl FnOnce() -> Value,
) -> Result<&'v mut Value, String> {
    match (seg, value) {
        (Seg::Key(key), Value::Object(map)) => Ok(map.entry(key.clone()).or_insert_with(fresh)),
        (Seg::Index(index), Value::Array(items)) => {
            if *index == items.len() {
                items.push(fresh());
            }
            let len = items.len();
            items.get_mut(*index).ok_or_else(|| {
                format!(
                    "index {index} is out of range for the list of {len} at {} (it may name an item or append one)",
                    at(prefix)
                )
            })
        }
        (seg, value) => Err(wrong_kind(prefix, seg, value)),
    }
}

/// Removes the value at `path`, which must exist and not be the root.
fn delete_path(doc: &mut Value, path: &[Seg]) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("cannot delete the whole document".to_string());
    };
    let mut value = doc;
    for (i, seg) in parents.iter().enumerate() {
        let next = match (seg, &mut *value) {
            (Seg::Key(key), Value::Object(map)) => map.get_mut(key).is_some(),
            (Seg::Index(index), Value::Array(items)) => *index < items.len(),
            (seg, value) => return Err(wrong_kind(&path[..i], seg, value)),
        };
        if !next {
            return Err(missing(&path[..i], seg, value));
        }
        value = match (seg, value) {
            (Seg::Key(key), Value::Object(map)) => map.get_mut(key).expect("checked above"),
            (Seg::Index(index), Value::Array(items)) => &mut items[*index],
            _ => unreachable!("checked above"),
        };
    }
    let removed = match (last, &mut *value) {
        (Seg::Key(key), Value::Object(map)) => map.remove(key).is_some(),
        (Seg::Index(index), Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        (Seg::Index(_), Value::Array(_)) => false,
        (seg, value) => return Err(wrong_kind(parents, seg, value)),
    };
    if removed {
        Ok(())
    } else {
        Err(missing(parents, last, value))
    }
}

/// The canonical text of `value`: pretty, keys sorted, with a trailing newline.
fn canonical(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Sorted(value)).expect("JSON values serialize");
    text.push('\n');
    text
}

/// Serializes a value with its maps' keys sorted, whatever map type `serde_json` was built with.
struct Sorted<'v>(&'v Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Sorted(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_string())
    }

    fn path(text: &str) -> Vec<Seg> {
        parse_path(text).unwrap()
    }

    fn params(value: Value) -> Params {
        hermetic_sdk::params_from(&value.to_string()).unwrap()
    }

    #[test]
    fn parses_paths() {
        assert_eq!(path(""), vec![]);
        assert_eq!(path("."), vec![]);
        assert_eq!(path("a"), vec![key("a")]);
        assert_eq!(
            path("a.b[0].c"),
            vec![key("a"), key("b"), Seg::Index(0), key("c")]
        );
        assert_eq!(path("[2][10]"), vec![Seg::Index(2), Seg::Index(10)]);
        assert_eq!(
            path(r#"a["x.y"]["q\"t"].z-1"#),
            vec![key("a"), key("x.y"), key("q\"t"), key("z-1")]
        );
        assert_eq!(path("ünï.ç"), vec![key("ünï"), key("ç")]);
    }

    #[test]
    fn rejects_bad_paths() {
        let err = |t: &str| parse_path(t).unwrap_err();
        assert_eq!(
            err("a..b"),
            "invalid path `a..b`: unexpected `.` at offset 2"
        );
        assert_eq!(
            err("a."),
            "invalid path `a.`: expected a key after `.` at offset 2"
        );
        assert_eq!(err(".a"), "invalid path `.a`: unexpected `.` at offset 0");
        assert_eq!(
            err("a[x]"),
            "invalid path `a[x]`: expected an index or a quoted key at offset 2"
        );
        assert_eq!(err("a[1"), "invalid path `a[1`: expected `]` at offset 3");
        assert_eq!(
            err("a[0]b"),
            "invalid path `a[0]b`: expected `.` or `[` at offset 4"
        );
        assert_eq!(
            err("a.[0]"),
            "invalid path `a.[0]`: expected a key after `.` at offset 2"
        );
        assert_eq!(
            err(r#"a["x]"#),
            "invalid path `a[\"x]`: unterminated quoted key at offset 2"
        );
        assert_eq!(err("a]"), "invalid path `a]`: unexpected `]` at offset 1");
    }

    #[test]
    fn shows_paths_round_trip() {
        for text in [
            "a.b[0].c",
            r#"a["x.y"][3]"#,
            r#"["a b"].c"#,
            r#"[""]"#,
            "[1].x",
        ] {
            let segs = path(text);
            assert_eq!(parse_path(&show_path(&segs)).unwrap(), segs, "{text}");
        }
        assert_eq!(show_path(&path(r#"a["b"]"#)), "a.b");
    }

    #[test]
    fn selects_values_and_explains_misses() {
        let doc = json!({ "a": { "b": [ { "c": 1 }, "two" ] }, "s": "text" });
        assert_eq!(select(&doc, &path("a.b[0].c")).unwrap(), &json!(1));
        assert_eq!(select(&doc, &path("a.b[1]")).unwrap(), &json!("two"));
        assert_eq!(select(&doc, &path("")).unwrap(), &doc);
        let err = |p: &str| select(&doc, &path(p)).unwrap_err();
        assert_eq!(err("x"), "no key \"x\" in the map at the root");
        assert_eq!(err("a.b[0].d"), "no key \"d\" in the map at `a.b[0]`");
        assert_eq!(
            err("a.b[2]"),
            "index 2 is out of range for the list of 2 at `a.b`"
        );
        assert_eq!(err("s.x"), "`s` is a string, not a map");
        assert_eq!(err("a[0]"), "`a` is a map, not a list");
        assert_eq!(err("[0]"), "the root is a map, not a list");
    }

    #[test]
    fn merges_deeply_left_to_right() {
        let mut base = json!({ "a": { "x": 1, "y": [1, 2] }, "b": "keep", "n": 1 });
        merge(
            &mut base,
            json!({ "a": { "y": [3], "z": { "deep": true } }, "n": null }),
        );
        merge(&mut base, json!({ "a": { "x": 2 } }));
        assert_eq!(
            base,
            json!({ "a": { "x": 2, "y": [3], "z": { "deep": true } }, "b": "keep", "n": null })
        );
        let mut scalar = json!([1]);
        merge(&mut scalar, json!({ "k": 1 }));
        assert_eq!(scalar, json!({ "k": 1 }));
    }

    #[test]
    fn sets_paths_creating_containers() {
        let mut doc = json!({ "a": { "list": [1] }, "n": null });
        set_path(&mut doc, &path("a.list[0]"), json!(9)).unwrap();
        set_path(&mut doc, &path("a.list[1]"), json!(10)).unwrap();
        set_path(&mut doc, &path("new.deep.key"), json!("v")).unwrap();
        set_path(&mut doc, &path("made[0].x"), json!(true)).unwrap();
        set_path(&mut doc, &path("n.inner"), json!(1)).unwrap();
        assert_eq!(
            doc,
            json!({
                "a": { "list": [9, 10] },
                "new": { "deep": { "key": "v" } },
                "made": [ { "x": true } ],
                "n": { "inner": 1 },
            })
        );
        let err = |p: &str| set_path(&mut doc.clone(), &path(p), json!(0)).unwrap_err();
        assert_eq!(
            err("a.list[5]"),
            "index 5 is out of range for the list of 2 at `a.list` (it may name an item or append one)"
        );
        assert_eq!(err("a.list.x"), "`a.list` is a list, not a map");
        assert_eq!(
            err("new.deep.key.more"),
            "`new.deep.key` is a string, not a map"
        );
        let mut whole = json!(1);
        set_path(&mut whole, &[], json!({ "all": "new" })).unwrap();
        assert_eq!(whole, json!({ "all": "new" }));
    }

    #[test]
    fn deletes_existing_paths_only() {
        let mut doc = json!({ "a": { "b": 1, "c": 2 }, "l": [0, 1, 2] });
        delete_path(&mut doc, &path("a.b")).unwrap();
        delete_path(&mut doc, &path("l[0]")).unwrap();
        assert_eq!(doc, json!({ "a": { "c": 2 }, "l": [1, 2] }));
        let err = |p: &str| delete_path(&mut doc.clone(), &path(p)).unwrap_err();
        assert_eq!(err("a.b"), "no key \"b\" in the map at `a`");
        assert_eq!(err("x.y"), "no key \"x\" in the map at the root");
        assert_eq!(
            err("l[2]"),
            "index 2 is out of range for the list of 2 at `l`"
        );
        assert_eq!(err("a.c.d"), "`a.c` is a number, not a map");
        assert_eq!(err(""), "cannot delete the whole document");
    }

    #[test]
    fn output_is_canonical() {
        let value: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[],"y":{},"x":[1,{"q":null,"p":1.5}]}}"#)
                .unwrap();
        assert_eq!(
            canonical(&value),
            "{\n  \"a\": {\n    \"x\": [\n      1,\n      {\n        \"p\": 1.5,\n        \"q\": null\n      }\n    ],\n    \"y\": {},\n    \"z\": []\n  },\n  \"b\": 1\n}\n"
        );
        assert_eq!(canonical(&json!("s")), "\"s\"\n");
    }

    #[test]
    fn params_are_checked_against_the_op() {
        let err = |v: Value| plan(&params(v)).unwrap_err().to_string();
        assert_eq!(
            err(json!({ "op": "select", "input": "a", "output": "o" })),
            "params: op `select` needs `path`"
        );
        assert_eq!(
            err(json!({ "op": "select", "input": "a", "path": "x" })),
            "params: op `select` needs `output`"
        );
        assert_eq!(
            err(json!({ "op": "select", "input": "a", "path": "x", "output": "o", "set": {} })),
            "params: `set` is not used by op `select`"
        );
        assert_eq!(
            err(json!({ "op": "merge", "inputs": [], "output": "o" })),
            "params: op `merge` needs `inputs`, a non-empty list of JSON files"
        );
        assert_eq!(
            err(json!({ "op": "merge", "input": "a", "inputs": ["a"], "output": "o" })),
            "params: `input` is not used by op `merge`"
        );
        assert_eq!(
            err(json!({ "op": "transform", "input": "a", "output": "o", "delete": ["."] })),
            "params: `delete` cannot delete the whole document"
        );
        assert_eq!(
            err(json!({ "op": "transform", "input": "a", "output": "../o" })),
            "params: output \"../o\" must be a relative path under /out, without `..`"
        );
        let bad = hermetic_sdk::params_from::<Params>(r#"{"op": "pick"}"#).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "invalid params: unknown variant `pick`, expected one of `select`, `merge`, `transform` at line 1 column 13"
        );
        let (plan, output) = plan(&params(json!({
            "op": "transform", "input": "a.json", "output": "/out/x/o.json",
            "set": { "b": 2, "a": 1 }, "delete": ["c"],
        })))
        .unwrap();
        assert_eq!(output, PathBuf::from("x/o.json"));
        assert_eq!(
            plan,
            Plan::Transform {
                input: "a.json".into(),
                set: vec![
                    ("a".into(), vec![key("a")], json!(1)),
                    ("b".into(), vec![key("b")], json!(2)),
                ],
                delete: vec![("c".into(), vec![key("c")])],
            }
        );
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("hermetic-json-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in")).unwrap();
            fs::create_dir_all(dir.join("deps/base")).unwrap();
            fs::write(
                dir.join("in/a.json"),
                r#"{"name":"x","v":{"major":1,"minor":2}}"#,
            )
            .unwrap();
            fs::write(
                dir.join("deps/base/d.json"),
                r#"{"v":{"major":0,"patch":9},"z":[1]}"#,
            )
            .unwrap();
            fs::write(dir.join("in/bad.json"), "{\"a\": }").unwrap();
            Self(dir)
        }
        fn out(&self, rel: &str) -> String {
            fs::read_to_string(self.0.join("out").join(rel)).unwrap()
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn runs_each_op_on_files() {
        let s = Scratch::new("ops");
        let m = Mounts::rooted(&s.0);
        run(
            &m,
            &params(json!({ "op": "select", "input": "a.json", "path": "v", "output": "v.json" })),
        )
        .unwrap();
        assert_eq!(s.out("v.json"), "{\n  \"major\": 1,\n  \"minor\": 2\n}\n");
        run(
            &m,
            &params(json!({ "op": "merge", "inputs": ["/deps/base/d.json", "/in/a.json"], "output": "m.json" })),
        )
        .unwrap();
        assert_eq!(
            s.out("m.json"),
            "{\n  \"name\": \"x\",\n  \"v\": {\n    \"major\": 1,\n    \"minor\": 2,\n    \"patch\": 9\n  },\n  \"z\": [\n    1\n  ]\n}\n"
        );
        run(
            &m,
            &params(json!({
                "op": "transform", "input": "a.json", "output": "t.json",
                "set": { "v.patch": 3, "tags[0]": "new" }, "delete": ["v.minor", "name"],
            })),
        )
        .unwrap();
        assert_eq!(
            s.out("t.json"),
            "{\n  \"tags\": [\n    \"new\"\n  ],\n  \"v\": {\n    \"major\": 1,\n    \"patch\": 3\n  }\n}\n"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let s = Scratch::new("errors");
        let m = Mounts::rooted(&s.0);
        let err = |v: Value| run(&m, &params(v)).unwrap_err().to_string();
        assert_eq!(
            err(json!({ "op": "select", "input": "bad.json", "path": "a", "output": "o" })),
            "/in/bad.json: invalid JSON: expected value at line 1 column 7"
        );
        assert_eq!(
            err(json!({ "op": "select", "input": "a.json", "path": "v.patch", "output": "o" })),
            "/in/a.json: select `v.patch`: no key \"patch\" in the map at `v`"
        );
        assert_eq!(
            err(json!({ "op": "transform", "input": "a.json", "delete": ["v.x"], "output": "o" })),
            "/in/a.json: delete `v.x`: no key \"x\" in the map at `v`"
        );
        assert!(
            err(json!({ "op": "merge", "inputs": ["/deps/none/x.json"], "output": "o" }))
                .starts_with("cannot read ")
        );
    }
}
