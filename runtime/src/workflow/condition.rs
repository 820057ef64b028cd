//! `when:` conditions: which outcomes of a step's dependencies let it run.
//!
//! ```text
//! condition := or
//! or        := and ( "||" and )*
//! and       := not ( "&&" not )*
//! not       := "!" not | "(" condition ")" | atom
//! atom      := "always" | "success" | "failure"
//!            | STEP ".succeeded" | STEP ".failed" | STEP ".skipped"
//! ```
//!
//! `success` means every dependency succeeded (the default), `failure` that at least one
//! failed. A `STEP` named in a condition must be one of the step's `depends_on`.

use std::fmt;
use std::str::FromStr;

use super::suggest::did_you_mean;

/// How a dependency of a step ended, as far as `when:` is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DepOutcome {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed (including with `allow_failure`, which only affects the exit code).
    Failed,
    /// It did not run.
    Skipped,
}

impl DepOutcome {
    /// The word used in conditions: `succeeded`, `failed` or `skipped`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for DepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `when:` condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    /// `always`: run whatever happened to the dependencies.
    Always,
    /// `success`: every dependency succeeded (true when there are none). The default.
    #[default]
    Success,
    /// `failure`: at least one dependency failed.
    Failure,
    /// `<step>.succeeded`, `<step>.failed` or `<step>.skipped`.
    Step {
        /// The dependency's name.
        step: String,
        /// The outcome being tested for.
        outcome: DepOutcome,
    },
    /// `!a`
    Not(Box<Condition>),
    /// `a && b`
    And(Box<Condition>, Box<Condition>),
    /// `a || b`
    Or(Box<Condition>, Box<Condition>),
}

/// A syntax error in a condition, located inside the condition text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    /// Offset of the offending token, in characters from the start of the condition.
    pub offset: usize,
    /// Length of the offending token, in characters.
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)?;
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConditionError {}

/// A step named in a condition, and where (in characters) its name is in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StepRef {
    pub name: String,
    pub offset: usize,
    pub len: usize,
}

const GRAMMAR_HELP: &str = "a condition combines `success`, `failure`, `always`, \
                            `<step>.succeeded`, `<step>.failed` and `<step>.skipped` \
                            with `!`, `&&`, `||` and parentheses";

impl Condition {
    /// Parses a condition (see the module documentation for the grammar).
    pub fn parse(text: &str) -> Result<Self, ConditionError> {
        parse_located(text).map(|(condition, _)| condition)
    }

    /// Whether a step with this condition runs, given the outcome of each named
    /// dependency (`outcome_of`) and of all its dependencies (`all_deps`, for `success`
    /// and `failure`).
    pub fn eval(&self, outcome_of: impl Fn(&str) -> DepOutcome, all_deps: &[DepOutcome]) -> bool {
        self.eval_dyn(&outcome_of, all_deps)
    }

    fn eval_dyn(&self, outcome_of: &dyn Fn(&str) -> DepOutcome, all: &[DepOutcome]) -> bool {
        match self {
            Self::Always => true,
            Self::Success => all.iter().all(|o| *o == DepOutcome::Succeeded),
            Self::Failure => all.contains(&DepOutcome::Failed),
            Self::Step { step, outcome } => outcome_of(step) == *outcome,
            Self::Not(c) => !c.eval_dyn(outcome_of, all),
            Self::And(a, b) => a.eval_dyn(outcome_of, all) && b.eval_dyn(outcome_of, all),
            Self::Or(a, b) => a.eval_dyn(outcome_of, all) || b.eval_dyn(outcome_of, all),
        }
    }

    /// The steps named in the condition, in order of appearance (with repeats).
    #[must_use]
    pub fn steps(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_steps(&mut out);
        out
    }

    fn collect_steps<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Self::Always | Self::Success | Self::Failure => {}
            Self::Step { step, .. } => out.push(step),
            Self::Not(c) => c.collect_steps(out),
            Self::And(a, b) | Self::Or(a, b) => {
                a.collect_steps(out);
                b.collect_steps(out);
            }
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Self::Or(..) => 0,
            Self::And(..) => 1,
            Self::Not(_) => 2,
            _ => 3,
        }
    }
}

impl FromStr for Condition {
    type Err = ConditionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Condition {
    /// The condition with as few parentheses as keep its structure, e.g.
    /// `!(a.failed || b.failed) && success`. Parsing it gives the same condition back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wrap = |f: &mut fmt::Formatter<'_>, c: &Condition, parens: bool| {
            if parens {
                write!(f, "({c})")
            } else {
                write!(f, "{c}")
            }
        };
        match self {
            Self::Always => f.write_str("always"),
            Self::Success => f.write_str("success"),
            Self::Failure => f.write_str("failure"),
            Self::Step { step, outcome } => write!(f, "{step}.{outcome}"),
            Self::Not(c) => {
                f.write_str("!")?;
                wrap(f, c, c.precedence() < 2)
            }
            Self::And(a, b) | Self::Or(a, b) => {
                let p = self.precedence();
                wrap(f, a, a.precedence() < p)?;
                f.write_str(if p == 0 { " || " } else { " && " })?;
                wrap(f, b, b.precedence() <= p)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Word(String),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    offset: usize,
    len: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn error(offset: usize, len: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        offset,
        len,
        message: message.into(),
        help: None,
    }
}

impl ConditionError {
    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ConditionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let single = |tok| Token {
            tok,
            offset: i,
            len: 1,
        };
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => tokens.push(single(Tok::LParen)),
            ')' => tokens.push(single(Tok::RParen)),
            '!' => tokens.push(single(Tok::Not)),
            '&' | '|' => {
                if chars.get(i + 1) == Some(&c) {
                    let tok = if c == '&' { Tok::And } else { Tok::Or };
                    tokens.push(Token {
                        tok,
                        offset: i,
                        len: 2,
                    });
                    i += 2;
                    continue;
                }
                return Err(
                    error(i, 1, format!("unexpected `{c}`")).help(format!("write `{c}{c}`"))
                );
            }
            c if is_word_char(c) => {
                let start = i;
                while i < chars.len() && is_word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token {
                    tok: Tok::Word(word),
                    offset: start,
                    len: i - start,
                });
                continue;
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                return Err(error(i, 2, "conditions do not compare values with `==`")
                    .help("test a dependency's outcome with `<step>.succeeded`, `<step>.failed` or `<step>.skipped`"));
            }
            c => {
                return Err(
                    error(i, 1, format!("unexpected character `{c}` in condition"))
                        .help(GRAMMAR_HELP),
                );
            }
        }
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Length of the text in characters, for "unexpected end" errors.
    end: usize,
    refs: Vec<StepRef>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.tok == Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.not()?;
        while self.peek().is_some_and(|t| t.tok == Tok::And) {
            self.pos += 1;
            let right = self.not()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            let after = match self.pos.checked_sub(1).map(|p| &self.tokens[p].tok) {
                Some(Tok::And) => "after `&&`",
                Some(Tok::Or) => "after `||`",
                Some(Tok::Not) => "after `!`",
                Some(Tok::LParen) => "after `(`",
                _ => "",
            };
            let message = if after.is_empty() {
                "expected a condition, found the end".to_owned()
            } else {
                format!("expected a condition {after}, found the end")
            };
            return Err(error(self.end, 1, message).help(GRAMMAR_HELP));
        };
        self.pos += 1;
        match token.tok {
            Tok::Not => Ok(Condition::Not(Box::new(self.not()?))),
            Tok::LParen => {
                let inner = self.or()?;
                match self.peek() {
                    Some(t) if t.tok == Tok::RParen => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(t) => Err(unexpected(t)),
                    None => Err(error(token.offset, 1, "unclosed `(`").help("add a matching `)`")),
                }
            }
            Tok::Word(word) => self.atom(&word, token.offset),
            Tok::RParen | Tok::And | Tok::Or => Err(error(
                token.offset,
                token.len,
                format!("expected a condition, found `{}`", tok_text(&token.tok)),
            )
            .help(GRAMMAR_HELP)),
        }
    }

    fn atom(&mut self, word: &str, offset: usize) -> Result<Condition, ConditionError> {
        let len = word.chars().count();
        match word {
            "always" => return Ok(Condition::Always),
            "success" => return Ok(Condition::Success),
            "failure" => return Ok(Condition::Failure),
            _ => {}
        }
        let outcome_words = ["succeeded", "failed", "skipped"];
        if let Some((step, state)) = word.rsplit_once('.') {
            let outcome = match state {
                "succeeded" => Some(DepOutcome::Succeeded),
                "failed" => Some(DepOutcome::Failed),
                "skipped" => Some(DepOutcome::Skipped),
                _ => None,
            };
            if let (Some(outcome), false) = (outcome, step.is_empty()) {
                self.refs.push(StepRef {
                    name: step.to_owned(),
                    offset,
                    len: step.chars().count(),
                });
                return Ok(Condition::Step {
                    step: step.to_owned(),
                    outcome,
                });
            }
            if step.is_empty() {
                return Err(
                    error(offset, len, format!("`{word}` names no step")).help(format!(
                        "write the step's name before the dot: `build{word}`"
                    )),
                );
            }
            let guess = match state {
                "success" | "succeed" | "succeded" | "ok" | "passed" => Some("succeeded"),
                "failure" | "fail" | "failled" | "error" => Some("failed"),
                "skip" | "skiped" => Some("skipped"),
                _ => did_you_mean(state, outcome_words),
            };
            let state_offset = offset + step.chars().count() + 1;
            let e = error(
                state_offset,
                state.chars().count(),
                format!("unknown step outcome `{state}` in `{word}`"),
            );
            return Err(match guess {
                Some(g) => e.help(format!("did you mean `{step}.{g}`?")),
                None => e.help(format!(
                    "a step's outcome is `{step}.succeeded`, `{step}.failed` or `{step}.skipped`"
                )),
            });
        }
        let e = error(offset, len, format!("unknown condition `{word}`"));
        Err(match word {
            "and" => e.help("write `&&` instead of `and`"),
            "or" => e.help("write `||` instead of `or`"),
            "not" => e.help("write `!` instead of `not`"),
            "true" => e.help("did you mean `always`?"),
            "succeeded" | "successful" => e.help("did you mean `success`?"),
            "failed" | "fail" => e.help("did you mean `failure`?"),
            _ => match did_you_mean(word, ["always", "success", "failure"]) {
                Some(g) => e.help(format!("did you mean `{g}`?")),
                None => e.help(format!(
                    "use `success`, `failure` or `always`, or test one dependency with \
                     `{word}.succeeded`, `{word}.failed` or `{word}.skipped`"
                )),
            },
        })
    }
}

fn tok_text(tok: &Tok) -> &str {
    match tok {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Not => "!",
        Tok::And => "&&",
        Tok::Or => "||",
        Tok::Word(w) => w,
    }
}

fn unexpected(token: &Token) -> ConditionError {
    let e = error(
        token.offset,
        token.len,
        format!(
            "expected `&&`, `||` or the end of the condition, found `{}`",
            tok_text(&token.tok)
        ),
    );
    match &token.tok {
        Tok::Word(w) if w == "and" => e.help("write `&&` instead of `and`"),
        Tok::Word(w) if w == "or" => e.help("write `||` instead of `or`"),
        Tok::RParen => e.help("remove this `)`, or add a matching `(` before it"),
        _ => e.help("join conditions with `&&` or `||`"),
    }
}

/// Parses `text` and also returns each step it names, with its position in the text.
pub(crate) fn parse_located(text: &str) -> Result<(Condition, Vec<StepRef>), ConditionError> {
    let tokens = lex(text)?;
    let end = text.chars().count();
    if tokens.is_empty() {
        return Err(error(0, 1, "the condition is empty").help(
            "use `success` (the default), `failure`, `always` or `<step>.failed`, or remove \
             `when`",
        ));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end,
        refs: Vec::new(),
    };
    let condition = parser.or()?;
    if let Some(token) = parser.peek() {
        return Err(unexpected(token));
    }
    Ok((condition, parser.refs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DepOutcome::{Failed, Skipped, Succeeded};

    fn parse(s: &str) -> Condition {
        Condition::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> ConditionError {
        Condition::parse(s).unwrap_err()
    }

    fn step(name: &str, outcome: DepOutcome) -> Condition {
        Condition::Step {
            step: name.to_owned(),
            outcome,
        }
    }

    #[test]
    fn atoms() {
        assert_eq!(parse("always"), Condition::Always);
        assert_eq!(parse(" success "), Condition::Success);
        assert_eq!(parse("failure"), Condition::Failure);
        assert_eq!(parse("build.succeeded"), step("build", Succeeded));
        assert_eq!(parse("build.failed"), step("build", Failed));
        assert_eq!(parse("lint-1.skipped"), step("lint-1", Skipped));
        // Step names may contain dots: the outcome is after the last one.
        assert_eq!(parse("v1.2.failed"), step("v1.2", Failed));
        assert_eq!(Condition::default(), Condition::Success);
    }

    #[test]
    fn precedence_and_grouping() {
        let c = parse("a.failed || b.failed && !c.skipped");
        assert_eq!(
            c,
            Condition::Or(
                Box::new(step("a", Failed)),
                Box::new(Condition::And(
                    Box::new(step("b", Failed)),
                    Box::new(Condition::Not(Box::new(step("c", Skipped)))),
                )),
            )
        );
        assert_eq!(c.to_string(), "a.failed || b.failed && !c.skipped");
        let c = parse("!(a.failed||b.failed)&&success");
        assert_eq!(c.to_string(), "!(a.failed || b.failed) && success");
        assert_eq!(parse("((always))"), Condition::Always);
        assert_eq!(
            parse("a.failed && (b.failed && c.failed)").to_string(),
            "a.failed && (b.failed && c.failed)"
        );
        assert_eq!(
            parse("!!always"),
            Condition::Not(Box::new(Condition::Not(Box::new(Condition::Always))))
        );
        for text in [
            "a.failed || b.failed && !c.skipped",
            "!(a.failed || b.failed) && success",
            "(a.failed || b.failed) && (c.failed || always)",
        ] {
            assert_eq!(parse(&parse(text).to_string()), parse(text));
        }
        assert_eq!(
            parse("a.failed || b.failed && a.skipped").steps(),
            ["a", "b", "a"]
        );
    }

    #[test]
    fn evaluation() {
        let outcome = |name: &str| match name {
            "ok" => Succeeded,
            "bad" => Failed,
            _ => Skipped,
        };
        let all = [Succeeded, Failed, Skipped];
        let run = |s: &str, deps: &[DepOutcome]| parse(s).eval(outcome, deps);
        assert!(run("always", &all));
        assert!(!run("success", &all));
        assert!(run("success", &[Succeeded, Succeeded]));
        assert!(run("success", &[]));
        assert!(!run("success", &[Succeeded, Skipped]));
        assert!(run("failure", &all));
        assert!(!run("failure", &[]));
        assert!(!run("failure", &[Skipped]));
        assert!(run("ok.succeeded", &all));
        assert!(!run("ok.failed", &all));
        assert!(run("bad.failed && other.skipped", &all));
        assert!(!run("bad.failed && !other.skipped", &all));
        assert!(run("ok.failed || bad.failed", &all));
        assert!(run("!(ok.failed || bad.succeeded)", &all));
    }

    #[test]
    fn step_refs_are_located() {
        let (_, refs) = parse_located("success && (lint.failed || v1.2.skipped)").unwrap();
        assert_eq!(
            refs,
            [
                StepRef {
                    name: "lint".into(),
                    offset: 12,
                    len: 4
                },
                StepRef {
                    name: "v1.2".into(),
                    offset: 27,
                    len: 4
                },
            ]
        );
    }

    #[test]
    fn errors_point_into_the_text() {
        let e = err("sucess");
        assert_eq!((e.offset, e.len), (0, 6));
        assert_eq!(e.message, "unknown condition `sucess`");
        assert_eq!(e.help.as_deref(), Some("did you mean `success`?"));

        let e = err("success && build.success");
        assert_eq!((e.offset, e.len), (17, 7));
        assert_eq!(
            e.message,
            "unknown step outcome `success` in `build.success`"
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `build.succeeded`?"));

        let e = err("build.faild");
        assert_eq!(e.help.as_deref(), Some("did you mean `build.failed`?"));
        let e = err("build.done");
        assert_eq!(
            e.help.as_deref(),
            Some("a step's outcome is `build.succeeded`, `build.failed` or `build.skipped`")
        );

        let e = err("a.failed & b.failed");
        assert_eq!((e.offset, e.message.as_str()), (9, "unexpected `&`"));
        assert_eq!(e.help.as_deref(), Some("write `&&`"));

        let e = err("a.failed and b.failed");
        assert_eq!((e.offset, e.len), (9, 3));
        assert_eq!(
            e.message,
            "expected `&&`, `||` or the end of the condition, found `and`"
        );
        assert_eq!(e.help.as_deref(), Some("write `&&` instead of `and`"));

        let e = err("(a.failed || b.failed");
        assert_eq!((e.offset, e.message.as_str()), (0, "unclosed `(`"));

        let e = err("a.failed)");
        assert_eq!(
            (e.offset, e.message.as_str()),
            (
                8,
                "expected `&&`, `||` or the end of the condition, found `)`"
            )
        );

        let e = err("a.failed &&");
        assert_eq!(
            (e.offset, e.message.as_str()),
            (11, "expected a condition after `&&`, found the end")
        );
        let e = err("!");
        assert_eq!(e.message, "expected a condition after `!`, found the end");
        let e = err("|| a.failed");
        assert_eq!(
            (e.offset, e.message.as_str()),
            (0, "expected a condition, found `||`")
        );

        let e = err("   ");
        assert_eq!(e.message, "the condition is empty");

        let e = err("build");
        assert_eq!(
            e.help.as_deref(),
            Some(
                "use `success`, `failure` or `always`, or test one dependency with `build.succeeded`, `build.failed` or `build.skipped`"
            )
        );
        assert_eq!(err(".failed").message, "`.failed` names no step");
        assert_eq!(
            err("not a.failed").help.as_deref(),
            Some("write `!` instead of `not`")
        );
        assert_eq!(
            err("build.result == 'x'").message,
            "conditions do not compare values with `==`"
        );
        let e = err("a.failed; rm");
        assert_eq!(
            (e.offset, e.message.as_str()),
            (8, "unexpected character `;` in condition")
        );
        assert_eq!(
            e.to_string(),
            format!("unexpected character `;` in condition (at character 9); {GRAMMAR_HELP}")
        );
    }
}
