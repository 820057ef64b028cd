//! Parsing cargo's Makefile-style dep-info (`<target>/<triple>/release/<name>.d`).
//!
//! Cargo writes one rule per artifact, `OUTPUT: DEP DEP ...`, with spaces inside paths escaped as
//! `\ `. We accept the general Makefile syntax rustc also produces: several rules, line
//! continuations (`\` at end of line), comment lines (`# env-dep:...`) and rules without
//! dependencies.

use std::path::PathBuf;

/// Every dependency path named by any rule, in order of first appearance, without duplicates.
pub(super) fn parse(text: &str) -> Vec<PathBuf> {
    let mut deps: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in logical_lines(text) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let Some(rest) = after_target(&line) else {
            continue;
        };
        for token in tokens(rest) {
            if seen.insert(token.clone()) {
                deps.push(PathBuf::from(token));
            }
        }
    }
    deps
}

/// Joins lines ending in an unescaped `\` with the next one.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            current.push_str(&line[..line.len() - 1]);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The part of a rule after its target: after the first unescaped `:` that is followed by
/// whitespace or ends the line (so `C:\...`-style colons inside a path do not split it).
fn after_target(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b':' if bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()) => {
                return Some(&line[i + 1..]);
            }
            _ => i += 1,
        }
    }
    None
}

/// Splits at unescaped whitespace, undoing `\ `, `\\`, `\#`, `\:` and `$$`.
fn tokens(rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ (' ' | '\\' | '#' | ':')) => {
                    current.push(next);
                    chars.next();
                }
                _ => current.push('\\'),
            },
            '$' if chars.peek() == Some(&'$') => {
                current.push('$');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_dep_info() {
        let text = "/ws/.hermetic/target/wasm32-wasip1/release/concat.wasm: /ws/tasks/concat/src/main.rs /ws/sdk/src/lib.rs\n";
        assert_eq!(
            parse(text),
            vec![
                PathBuf::from("/ws/tasks/concat/src/main.rs"),
                PathBuf::from("/ws/sdk/src/lib.rs")
            ]
        );
    }

    #[test]
    fn handles_escapes_continuations_comments_and_duplicates() {
        let text = "\
out/a.wasm: /w/my\\ dir/src/main.rs \\
    /w/src/lib.rs /w/cost$$.txt
out/a.d: /w/src/lib.rs
# env-dep:FOO=bar
/w/src/lib.rs:

";
        assert_eq!(
            parse(text),
            vec![
                PathBuf::from("/w/my dir/src/main.rs"),
                PathBuf::from("/w/src/lib.rs"),
                PathBuf::from("/w/cost$.txt"),
            ]
        );
    }

    #[test]
    fn empty_or_targetless_text_has_no_deps() {
        assert!(parse("").is_empty());
        assert!(parse("just words\n").is_empty());
        assert!(parse("target:\n").is_empty());
    }
}
