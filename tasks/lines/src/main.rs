//! `lines` — a hermetic task that greps, sorts, de-duplicates and counts lines of text.
//!
//! The task takes no arguments; its step's `params:` say what to do:
//!
//! | param | type | meaning |
//! |---|---|---|
//! | `input` | path or list of paths | the files to read, in order (default: every file under `/in`, sorted) |
//! | `output` | path | where to write the result, under `/out` |
//! | `ops` | list | the pipeline, applied in order (default: none, which concatenates the lines) |
//!
//! An input is a sandbox path such as `/in/a.txt` or `/deps/scan/found.txt`; a relative path is
//! taken relative to `/in`. `output` is a relative path under `/out` (`/out/` in front is
//! allowed), without `..`; its directories are created.
//!
//! # Ops
//!
//! | op | effect |
//! |---|---|
//! | `{grep: TEXT}` | keeps the lines that contain `TEXT` |
//! | `{grep_v: TEXT}` | keeps the lines that do not contain `TEXT` |
//! | `sort` | sorts the lines by their bytes (like `LC_ALL=C sort`) |
//! | `{sort: {numeric: BOOL, reverse: BOOL}}` | sorts numerically (like `sort -n`) and/or in reverse |
//! | `uniq` | drops each line equal to the one before it (like `uniq`; `sort` first for all duplicates) |
//! | `count` | replaces the lines by one line holding how many there were |
//! | `{head: N}` / `{tail: N}` | keeps the first / last `N` lines |
//!
//! `grep` matches a plain substring, byte for byte and case-sensitively: there are no regular
//! expressions (so nothing in `TEXT` is special, and no regex engine is in the module).
//!
//! A numeric sort reads the number at the start of each line like `sort -n` in the C locale:
//! after blanks, an optional `-`, digits and an optional `.` with more digits; a line without one
//! counts as 0. It compares the decimal digits exactly (no floating point), and lines with equal
//! numbers by their bytes; `reverse` reverses the whole order. Every sort is total, so the
//! output never depends on anything but the input.
//!
//! # Lines
//!
//! Inputs are read as bytes (they need not be UTF-8) and split at `\n`; a last line without a
//! `\n` is still a line, and a `\r` before a `\n` stays part of its line. The lines of all inputs
//! are concatenated in order before the ops run. Every output line ends with `\n`; no lines give
//! an empty file. One progress report is made per input read.
//!
//! In `hermetic.yaml`:
//!
//! ```yaml
//! steps:
//!   - name: todo-count
//!     task: lines
//!     inputs: ["src/**/*.rs"]
//!     params:
//!       output: todos.txt
//!       ops: [{grep: "TODO"}, {grep_v: "TODO(ok)"}, sort, uniq, count]
//!     outputs: [todos.txt]
//! ```

use std::cmp::Ordering;
use std::path::PathBuf;

use hermetic_sdk::select::output_param;
use hermetic_sdk::{Error, Mounts, Result};
use serde::Deserialize;
use serde_json::Value;

fn main() {
    hermetic_sdk::main_with_params("lines", |params: Params| {
        run(&Mounts::sandbox(), &params).map(|_| ())
    });
}

/// The step's `params:`; `input` and `ops` are checked by [`plan`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    input: Option<Value>,
    output: String,
    #[serde(default)]
    ops: Vec<Value>,
}

/// The options of `{sort: {...}}`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SortOptions {
    #[serde(default)]
    numeric: bool,
    #[serde(default)]
    reverse: bool,
}

/// One step of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Grep(Vec<u8>),
    GrepV(Vec<u8>),
    Sort(SortOptions),
    Uniq,
    Count,
    Head(usize),
    Tail(usize),
}

const OP_NAMES: &str = "grep, grep_v, sort, uniq, count, head or tail";

/// What the params ask for, checked.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// The inputs' sandbox paths; `None` means every file under `/in`.
    inputs: Option<Vec<String>>,
    output: PathBuf,
    ops: Vec<Op>,
}

fn plan(params: &Params) -> Result<Plan> {
    let inputs = match &params.input {
        None => None,
        Some(Value::String(path)) => Some(vec![path.clone()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(path) => Ok(path.clone()),
                    _ => Err(Error::msg(
                        "params: `input` must be a path or a list of paths",
                    )),
                })
                .collect::<Result<_>>()?,
        ),
        Some(_) => {
            return Err(Error::msg(
                "params: `input` must be a path or a list of paths",
            ));
        }
    };
    let ops = params
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| Error::msg(format!("params: ops[{i}]: {e}"))))
        .collect::<Result<_>>()?;
    Ok(Plan {
        inputs,
        output: output_param("output", &params.output)?,
        ops,
    })
}

/// Parses one op: a name (`sort`) or a map with one key (`{grep: text}`).
fn parse_op(value: &Value) -> Result<Op, String> {
    let (name, arg) = match value {
        Value::String(name) => (name.as_str(), None),
        Value::Object(map) if map.len() == 1 => {
            let (name, arg) = map.iter().next().expect("one entry");
            (name.as_str(), Some(arg))
        }
        _ => {
            return Err(
                "an op is a name like `sort` or a map with one key like `{grep: TEXT}`".to_string(),
            );
        }
    };
    let text = |arg: Option<&Value>| match arg {
        Some(Value::String(text)) => Ok(text.as_bytes().to_vec()),
        _ => Err(format!(
            "`{name}` needs a text to match, like `{{{name}: TEXT}}`"
        )),
    };
    let count = |arg: Option<&Value>| match arg.and_then(Value::as_u64) {
        Some(n) => Ok(n as usize),
        None => Err(format!(
            "`{name}` needs a number of lines, like `{{{name}: 10}}`"
        )),
    };
    match (name, arg) {
        ("grep", arg) => text(arg).map(Op::Grep),
        ("grep_v", arg) => text(arg).map(Op::GrepV),
        ("head", arg) => count(arg).map(Op::Head),
        ("tail", arg) => count(arg).map(Op::Tail),
        ("sort", None) => Ok(Op::Sort(SortOptions::default())),
        ("sort", Some(options)) => SortOptions::deserialize(options)
            .map(Op::Sort)
            .map_err(|e| format!("sort: {e}")),
        ("uniq", None) => Ok(Op::Uniq),
        ("count", None) => Ok(Op::Count),
        ("uniq" | "count", Some(_)) => {
            Err(format!("`{name}` takes no options; write it as `{name}`"))
        }
        _ => Err(format!("unknown op `{name}`; expected {OP_NAMES}")),
    }
}

/// Reads the inputs, runs the pipeline and writes the output; returns the output's bytes.
fn run(mounts: &Mounts, params: &Params) -> Result<Vec<u8>> {
    let plan = plan(params)?;
    let sources: Vec<PathBuf> = match &plan.inputs {
        Some(paths) => paths.iter().map(|p| mounts.resolve(p)).collect(),
        None => mounts
            .list_inputs()?
            .into_iter()
            .map(|rel| mounts.input(rel))
            .collect(),
    };
    let total = sources.len() as u64;
    let mut lines = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let bytes = hermetic_sdk::read(source)?;
        lines.extend(split_lines(&bytes));
        hermetic_sdk::progress(i as u64 + 1, Some(total));
    }
    let out = join_lines(&apply(lines, &plan.ops));
    mounts.write_output(&plan.output, &out)?;
    Ok(out)
}

/// Splits at `\n`; a trailing `\n` does not start another line.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(<[u8]>::to_vec)
}

/// Every line followed by `\n`.
fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// Runs the pipeline.
fn apply(mut lines: Vec<Vec<u8>>, ops: &[Op]) -> Vec<Vec<u8>> {
    for op in ops {
        match op {
            Op::Grep(text) => lines.retain(|line| contains(line, text)),
            Op::GrepV(text) => lines.retain(|line| !contains(line, text)),
            Op::Sort(options) => lines.sort_by(|a, b| {
                let order = if options.numeric {
                    compare_numeric(a, b).then_with(|| a.cmp(b))
                } else {
                    a.cmp(b)
                };
                if options.reverse {
                    order.reverse()
                } else {
                    order
                }
            }),
            Op::Uniq => lines.dedup(),
            Op::Count => lines = vec![lines.len().to_string().into_bytes()],
            Op::Head(n) => lines.truncate(*n),
            Op::Tail(n) => {
                let drop = lines.len().saturating_sub(*n);
                lines.drain(..drop);
            }
        }
    }
    lines
}

/// Whether `needle` occurs in `haystack` (the empty text occurs everywhere).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The number at the start of a line, as `sort -n` reads it: sign, integer digits without
/// leading zeros, fraction digits without trailing zeros.
#[derive(Debug, PartialEq, Eq)]
struct Number<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
}

fn leading_number(line: &[u8]) -> Number<'_> {
    let mut i = 0;
    while i < line.len() && matches!(line[i], b' ' | b'\t') {
        i += 1;
    }
    let negative = line.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits = |from: usize| {
        let len = line[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        &line[from..from + len]
    };
    let mut int = digits(i);
    i += int.len();
    let mut frac: &[u8] = if line.get(i) == Some(&b'.') {
        digits(i + 1)
    } else {
        &[]
    };
    while let [b'0', rest @ ..] = int {
        int = rest;
    }
    while let [rest @ .., b'0'] = frac {
        frac = rest;
    }
    Number {
        // Zero has no sign, and neither has a line without a number.
        negative: negative && !(int.is_empty() && frac.is_empty()),
        int,
        frac,
    }
}

/// Compares the numbers at the start of two lines exactly.
fn compare_numeric(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (leading_number(a), leading_number(b));
    let magnitude = || {
        a.int
            .len()
            .cmp(&b.int.len())
            .then_with(|| a.int.cmp(b.int))
            .then_with(|| a.frac.cmp(b.frac))
    };
    match (a.negative, b.negative) {
        (false, false) => magnitude(),
        (true, true) => magnitude().reverse(),
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;

    fn lines(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn ops(value: Value) -> Vec<Op> {
        let params: Params =
            hermetic_sdk::params_from(&json!({ "output": "o", "ops": value }).to_string()).unwrap();
        plan(&params).unwrap().ops
    }

    fn run_ops(input: &[&str], op_list: Value) -> Vec<String> {
        apply(lines(input), &ops(op_list))
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_and_joins_lines() {
        let split = |b: &[u8]| split_lines(b).collect::<Vec<_>>();
        assert_eq!(split(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split(b"\n"), lines(&[""]));
        assert_eq!(split(b"a\nb"), lines(&["a", "b"]));
        assert_eq!(split(b"a\nb\n"), lines(&["a", "b"]));
        assert_eq!(split(b"a\r\n\nb\n\n"), lines(&["a\r", "", "b", ""]));
        assert_eq!(join_lines(&lines(&["a", "", "b"])), b"a\n\nb\n");
        assert_eq!(join_lines(&[]), b"");
    }

    #[test]
    fn parses_ops() {
        assert_eq!(
            ops(json!([
                { "grep": "x" }, { "grep_v": "" }, "sort",
                { "sort": { "numeric": true, "reverse": true } }, { "sort": {} },
                "uniq", "count", { "head": 2 }, { "tail": 0 },
            ])),
            vec![
                Op::Grep(b"x".to_vec()),
                Op::GrepV(Vec::new()),
                Op::Sort(SortOptions::default()),
                Op::Sort(SortOptions {
                    numeric: true,
                    reverse: true
                }),
                Op::Sort(SortOptions::default()),
                Op::Uniq,
                Op::Count,
                Op::Head(2),
                Op::Tail(0),
            ]
        );
    }

    #[test]
    fn rejects_bad_params() {
        let err = |v: Value| {
            let params: Params = hermetic_sdk::params_from(&v.to_string())?;
            plan(&params).map(|_| ())
        };
        let msg = |v: Value| err(v).unwrap_err().to_string();
        assert_eq!(
            msg(json!({ "output": "o", "ops": ["sortt"] })),
            "params: ops[0]: unknown op `sortt`; expected grep, grep_v, sort, uniq, count, head or tail"
        );
        assert_eq!(
            msg(json!({ "output": "o", "ops": ["uniq", "grep"] })),
            "params: ops[1]: `grep` needs a text to match, like `{grep: TEXT}`"
        );
        assert_eq!(
            msg(json!({ "output": "o", "ops": [{ "head": -1 }] })),
            "params: ops[0]: `head` needs a number of lines, like `{head: 10}`"
        );
        assert_eq!(
            msg(json!({ "output": "o", "ops": [{ "uniq": true }] })),
            "params: ops[0]: `uniq` takes no options; write it as `uniq`"
        );
        assert_eq!(
            msg(json!({ "output": "o", "ops": [{ "grep": "a", "sort": {} }] })),
            "params: ops[0]: an op is a name like `sort` or a map with one key like `{grep: TEXT}`"
        );
        assert!(
            msg(json!({ "output": "o", "ops": [{ "sort": { "numerc": true } }] }))
                .starts_with("params: ops[0]: sort: unknown field `numerc`, expected ")
        );
        assert_eq!(
            msg(json!({ "output": "o", "input": 3 })),
            "params: `input` must be a path or a list of paths"
        );
        assert_eq!(
            msg(json!({ "output": "/x" })),
            "params: output \"/x\" must be a relative path under /out, without `..`"
        );
        assert!(msg(json!({})).starts_with("invalid params: missing field `output`"));
        let params: Params =
            hermetic_sdk::params_from(r#"{"output": "/out/r.txt", "input": ["a", "/deps/x/b"]}"#)
                .unwrap();
        assert_eq!(
            plan(&params).unwrap(),
            Plan {
                inputs: Some(vec!["a".into(), "/deps/x/b".into()]),
                output: "r.txt".into(),
                ops: vec![],
            }
        );
    }

    #[test]
    fn greps_substrings() {
        let input = ["apple pie", "banana", "grape", "a.b", "axb"];
        assert_eq!(
            run_ops(&input, json!([{ "grep": "ap" }])),
            ["apple pie", "grape"]
        );
        assert_eq!(
            run_ops(&input, json!([{ "grep_v": "a" }])),
            Vec::<String>::new()
        );
        // No regex: `.` is a plain dot.
        assert_eq!(run_ops(&input, json!([{ "grep": "a.b" }])), ["a.b"]);
        assert_eq!(run_ops(&input, json!([{ "grep": "" }])).len(), 5);
    }

    #[test]
    fn sorts_bytewise_and_reversed() {
        let input = ["b", "B", "a", "", "ab", "é"];
        assert_eq!(
            run_ops(&input, json!(["sort"])),
            ["", "B", "a", "ab", "b", "é"]
        );
        assert_eq!(
            run_ops(&input, json!([{ "sort": { "reverse": true } }])),
            ["é", "b", "ab", "a", "B", ""]
        );
    }

    #[test]
    fn sorts_numerically_and_exactly() {
        let input = [
            "10 ten",
            "9 nine",
            "-2",
            "x none",
            "  3.50 spaced",
            "3.5",
            "-0",
            "-10.25",
            "007",
            "18446744073709551617",
            "18446744073709551616",
            "0.001",
        ];
        assert_eq!(
            run_ops(&input, json!([{ "sort": { "numeric": true } }])),
            [
                "-10.25",
                "-2",
                "-0",
                "x none",
                "0.001",
                "  3.50 spaced",
                "3.5",
                "007",
                "9 nine",
                "10 ten",
                "18446744073709551616",
                "18446744073709551617",
            ]
        );
        assert_eq!(
            run_ops(
                &["1", "10", "2", "2"],
                json!([{ "sort": { "numeric": true, "reverse": true } }])
            ),
            ["10", "2", "2", "1"]
        );
    }

    #[test]
    fn uniq_count_head_tail() {
        let input = ["a", "a", "b", "a", "a"];
        assert_eq!(run_ops(&input, json!(["uniq"])), ["a", "b", "a"]);
        assert_eq!(run_ops(&input, json!(["sort", "uniq"])), ["a", "b"]);
        assert_eq!(run_ops(&input, json!(["sort", "uniq", "count"])), ["2"]);
        assert_eq!(run_ops(&[], json!(["count"])), ["0"]);
        assert_eq!(run_ops(&input, json!([{ "head": 2 }])), ["a", "a"]);
        assert_eq!(run_ops(&input, json!([{ "tail": 2 }])), ["a", "a"]);
        assert_eq!(run_ops(&input, json!([{ "tail": 9 }])).len(), 5);
        assert_eq!(
            run_ops(&input, json!([{ "head": 0 }])),
            Vec::<String>::new()
        );
    }

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("hermetic-lines-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("in/sub")).unwrap();
            fs::create_dir_all(dir.join("deps/scan")).unwrap();
            fs::write(dir.join("in/b.txt"), "b2\nb1").unwrap();
            fs::write(dir.join("in/sub/a.txt"), "a\n").unwrap();
            fs::write(dir.join("deps/scan/x.txt"), b"x\xff\n").unwrap();
            Self(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_inputs_in_order_and_writes_output() {
        let s = Scratch::new("run");
        let m = Mounts::rooted(&s.0);
        let params = |v: Value| hermetic_sdk::params_from::<Params>(&v.to_string()).unwrap();
        // Default: every input, sorted by path.
        let out = run(&m, &params(json!({ "output": "all.txt" }))).unwrap();
        assert_eq!(out, b"b2\nb1\na\n");
        assert_eq!(fs::read(s.0.join("out/all.txt")).unwrap(), out);
        let out = run(
            &m,
            &params(json!({
                "input": ["/deps/scan/x.txt", "b.txt"],
                "output": "/out/r/sorted.txt",
                "ops": ["sort"],
            })),
        )
        .unwrap();
        assert_eq!(out, b"b1\nb2\nx\xff\n");
        assert_eq!(fs::read(s.0.join("out/r/sorted.txt")).unwrap(), out);
        let err = run(&m, &params(json!({ "input": "nope.txt", "output": "o" }))).unwrap_err();
        assert_eq!(err.path(), Some(s.0.join("in/nope.txt").as_path()));
    }
}
