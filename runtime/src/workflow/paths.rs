//! Checks on the strings that become names and paths: step names, `task`, `inputs`,
//! `outputs`, `out_dir` and environment variable names.
//!
//! These only look at the text; whether files exist is for later stages to report.

use std::path::PathBuf;

use super::TaskRef;

/// What is wrong with a value, before it is given a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub help: Option<String>,
}

fn problem(message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        help: Some(help.into()),
    }
}

/// Longest step name accepted, in bytes (it becomes a directory name).
pub(crate) const MAX_STEP_NAME: usize = 100;

const STEP_NAME_RULE: &str =
    "use only letters, digits, `_`, `-` and `.`, starting with a letter, digit or `_`";

/// Step names become directory names: `[A-Za-z0-9_][A-Za-z0-9_.-]*`, at most
/// [`MAX_STEP_NAME`] bytes.
pub(crate) fn check_step_name(name: &str) -> Result<(), Problem> {
    let Some(first) = name.chars().next() else {
        return Err(problem("a step name is empty", STEP_NAME_RULE));
    };
    if name.len() > MAX_STEP_NAME {
        return Err(problem(
            format!("step name `{name}` is too long"),
            format!("step names are at most {MAX_STEP_NAME} characters long"),
        ));
    }
    let reason = if name.contains(['/', '\\']) {
        Some("step names become directory names, so they cannot contain `/` or `\\`".to_owned())
    } else if !(first.is_ascii_alphanumeric() || first == '_') {
        Some(format!("step names cannot start with `{first}`"))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map(|c| match c {
                ' ' => "step names cannot contain spaces".to_owned(),
                c => format!("step names cannot contain `{}`", c.escape_debug()),
            })
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(problem(
            format!("invalid step name `{}`", name.escape_debug()),
            format!("{reason}; {STEP_NAME_RULE}"),
        )),
    }
}

/// Whether `text` looks like an absolute path on any platform (`/x`, `\x`, `C:\x`, `C:/x`).
fn is_absolute(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

fn has_parent_component(text: &str) -> bool {
    text.split(['/', '\\']).any(|c| c == "..")
}

const TASK_HELP: &str = "`task` is either the name of a crate under `tasks/` (lowercase \
                         letters, digits, `-` and `_`, e.g. `rust-build`) or the path of a \
                         `.wasm` file relative to the workflow file (e.g. `tools/lint.wasm`)";

fn is_crate_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `task: NAME` names a crate under `tasks/`; `task: PATH.wasm` a module relative to the
/// workflow file's directory (`..` is allowed, absolute paths are not).
pub(crate) fn parse_task(text: &str) -> Result<TaskRef, Problem> {
    if text.trim().is_empty() {
        return Err(problem("`task` is empty", TASK_HELP));
    }
    if text.contains('\0') {
        return Err(problem("`task` contains a NUL character", TASK_HELP));
    }
    if text.ends_with(".wasm") {
        if is_absolute(text) {
            return Err(problem(
                format!("`task` is an absolute path: `{text}`"),
                "write the path of the `.wasm` file relative to the directory of the workflow \
                 file, e.g. `tools/lint.wasm` or `../shared/lint.wasm`",
            ));
        }
        if text.contains('\\') {
            return Err(problem(
                format!("`task` path `{text}` contains `\\`"),
                format!(
                    "separate directories with `/`: `{}`",
                    text.replace('\\', "/")
                ),
            ));
        }
        if text.rsplit('/').next() == Some(".wasm") {
            return Err(problem(
                format!("`task` path `{text}` has no file name"),
                TASK_HELP,
            ));
        }
        return Ok(TaskRef::Wasm(PathBuf::from(text)));
    }
    if is_crate_name(text) {
        return Ok(TaskRef::Crate(text.to_owned()));
    }
    let message = format!("invalid task `{}`", text.escape_debug());
    if text.ends_with(".wat") {
        return Err(problem(
            message,
            "text-format `.wat` modules are not supported; compile it to a `.wasm` file",
        ));
    }
    if text.contains(['/', '\\']) {
        return Err(problem(
            message,
            "a path to a module must end in `.wasm`; crate names under `tasks/` contain no `/`",
        ));
    }
    let lower = text.to_ascii_lowercase();
    if is_crate_name(&lower) {
        return Err(problem(
            message,
            format!("task crate names are lowercase: `{lower}`"),
        ));
    }
    Err(problem(message, TASK_HELP))
}

const INPUTS_HELP: &str = "`inputs` are globs relative to the directory of the workflow \
                           file, e.g. `src/**/*.rs` or `Cargo.toml`; files outside that \
                           directory cannot be inputs";

/// An input glob, relative to the workflow's directory and staying inside it.
pub(crate) fn check_input(glob: &str) -> Result<(), Problem> {
    if glob.trim().is_empty() {
        return Err(problem("an input pattern is empty", INPUTS_HELP));
    }
    if glob.contains('\0') {
        return Err(problem(
            format!("input `{}` contains a NUL character", glob.escape_debug()),
            INPUTS_HELP,
        ));
    }
    if is_absolute(glob) {
        return Err(problem(
            format!("input `{glob}` is an absolute path"),
            INPUTS_HELP,
        ));
    }
    if has_parent_component(glob) {
        return Err(problem(
            format!("input `{glob}` reaches outside the workflow's directory"),
            INPUTS_HELP,
        ));
    }
    globset::Glob::new(glob).map(|_| ()).map_err(|e| Problem {
        message: format!("invalid glob `{glob}`: {}", e.kind()),
        help: Some(
            "globs use `*`, `**`, `?`, `[abc]` and `{a,b}`; escape special characters \
                 with `\\` or `[...]`"
                .to_owned(),
        ),
    })
}

const OUTPUTS_HELP: &str = "`outputs` are paths inside the step's output directory (`/out` \
                            in the sandbox), e.g. `report.txt`, or `dist/` for a whole \
                            directory";

/// An output path, relative to and inside the step's output directory. A trailing `/`
/// marks a directory.
pub(crate) fn check_output(path: &str) -> Result<(), Problem> {
    if path.trim().is_empty() {
        return Err(problem("an output path is empty", OUTPUTS_HELP));
    }
    if path.contains('\0') {
        return Err(problem(
            format!("output `{}` contains a NUL character", path.escape_debug()),
            OUTPUTS_HELP,
        ));
    }
    if let Some(inside) = path.strip_prefix("/out/").filter(|p| !p.is_empty()) {
        return Err(problem(
            format!("output `{path}` is an absolute path"),
            format!("outputs are relative to `/out`: write `{inside}`"),
        ));
    }
    if is_absolute(path) {
        return Err(problem(
            format!("output `{path}` is an absolute path"),
            OUTPUTS_HELP,
        ));
    }
    if path.contains('\\') {
        return Err(problem(
            format!("output `{path}` contains `\\`"),
            format!(
                "separate directories with `/`: `{}`",
                path.replace('\\', "/")
            ),
        ));
    }
    if has_parent_component(path) {
        return Err(problem(
            format!("output `{path}` reaches outside the step's output directory"),
            OUTPUTS_HELP,
        ));
    }
    if path.contains(['*', '?', '[', ']', '{', '}']) {
        return Err(problem(
            format!("output `{path}` is a glob"),
            "outputs are exact paths, not globs; to collect everything in a directory, \
             declare the directory with a trailing `/`, e.g. `dist/`",
        ));
    }
    if path.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(problem(
            format!("output `{path}` is the whole output directory"),
            "name the files or directories to collect, e.g. `report.txt` or `dist/`",
        ));
    }
    Ok(())
}

/// `defaults.out_dir`: a directory relative to the workflow's directory.
pub(crate) fn check_out_dir(path: &str) -> Result<(), Problem> {
    let help = "`out_dir` is relative to the directory of the workflow file, e.g. \
                `.hermetic/out` (the default)";
    if path.trim().is_empty() {
        return Err(problem("`out_dir` is empty", help));
    }
    if path.contains('\0') {
        return Err(problem("`out_dir` contains a NUL character", help));
    }
    if is_absolute(path) {
        return Err(problem(
            format!("`out_dir` is an absolute path: `{path}`"),
            help,
        ));
    }
    Ok(())
}

/// An environment variable name: non-empty, without `=` or NUL.
pub(crate) fn check_env_name(name: &str) -> Result<(), Problem> {
    let help = "environment variable names must be non-empty and cannot contain `=` or NUL";
    if name.is_empty() {
        return Err(problem("an environment variable name is empty", help));
    }
    if name.contains('=') {
        return Err(problem(
            format!("environment variable name `{name}` contains `=`"),
            format!(
                "write it as a map entry: `{}: {}`",
                name.split_once('=').map_or("", |p| p.0),
                name.split_once('=').map_or("", |p| p.1)
            ),
        ));
    }
    if name.contains('\0') {
        return Err(problem(
            format!(
                "environment variable name `{}` contains a NUL character",
                name.escape_debug()
            ),
            help,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T, Problem>) -> String {
        r.unwrap_err().message
    }

    fn help<T: std::fmt::Debug>(r: Result<T, Problem>) -> String {
        r.unwrap_err().help.unwrap()
    }

    #[test]
    fn step_names() {
        for ok in ["build", "a", "_x", "v1.2", "lint-js", "A_b.c-d", "9"] {
            assert_eq!(check_step_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(msg(check_step_name("")), "a step name is empty");
        assert_eq!(msg(check_step_name("a/b")), "invalid step name `a/b`");
        assert_eq!(
            help(check_step_name("a/b")),
            format!(
                "step names become directory names, so they cannot contain `/` or `\\`; {STEP_NAME_RULE}"
            )
        );
        assert!(help(check_step_name("..")).starts_with("step names cannot start with `.`"));
        assert!(help(check_step_name("-x")).starts_with("step names cannot start with `-`"));
        assert!(help(check_step_name("a b")).starts_with("step names cannot contain spaces"));
        assert!(help(check_step_name("a:b")).starts_with("step names cannot contain `:`"));
        assert!(help(check_step_name("é")).starts_with("step names cannot start with `é`"));
        assert_eq!(msg(check_step_name("a\tb")), "invalid step name `a\\tb`");
        assert_eq!(check_step_name(&"x".repeat(100)), Ok(()));
        assert_eq!(
            msg(check_step_name(&"x".repeat(101))),
            format!("step name `{}` is too long", "x".repeat(101))
        );
    }

    #[test]
    fn tasks() {
        assert_eq!(
            parse_task("rust-build"),
            Ok(TaskRef::Crate("rust-build".into()))
        );
        assert_eq!(
            parse_task("fmt_check2"),
            Ok(TaskRef::Crate("fmt_check2".into()))
        );
        assert_eq!(
            parse_task("lint.wasm"),
            Ok(TaskRef::Wasm("lint.wasm".into()))
        );
        assert_eq!(
            parse_task("../shared/x.wasm"),
            Ok(TaskRef::Wasm("../shared/x.wasm".into()))
        );
        assert_eq!(msg(parse_task("")), "`task` is empty");
        assert_eq!(
            msg(parse_task("/opt/x.wasm")),
            "`task` is an absolute path: `/opt/x.wasm`"
        );
        assert_eq!(
            msg(parse_task("C:/x.wasm")),
            "`task` is an absolute path: `C:/x.wasm`"
        );
        assert_eq!(
            help(parse_task("a\\b.wasm")),
            "separate directories with `/`: `a/b.wasm`"
        );
        assert_eq!(
            msg(parse_task("dir/.wasm")),
            "`task` path `dir/.wasm` has no file name"
        );
        assert_eq!(msg(parse_task("tasks/foo")), "invalid task `tasks/foo`");
        assert_eq!(
            help(parse_task("tasks/foo")),
            "a path to a module must end in `.wasm`; crate names under `tasks/` contain no `/`"
        );
        assert_eq!(
            help(parse_task("Rust-Build")),
            "task crate names are lowercase: `rust-build`"
        );
        assert_eq!(
            help(parse_task("x.wat")),
            "text-format `.wat` modules are not supported; compile it to a `.wasm` file"
        );
        assert_eq!(help(parse_task("my task")), TASK_HELP);
    }

    #[test]
    fn inputs() {
        for ok in ["src/**/*.rs", "Cargo.toml", "./a", "{a,b}/*.txt", "a..b"] {
            assert_eq!(check_input(ok), Ok(()), "{ok}");
        }
        assert_eq!(msg(check_input("")), "an input pattern is empty");
        assert_eq!(
            msg(check_input("/etc/passwd")),
            "input `/etc/passwd` is an absolute path"
        );
        assert_eq!(
            msg(check_input("../x")),
            "input `../x` reaches outside the workflow's directory"
        );
        assert_eq!(
            msg(check_input("a/../../x")),
            "input `a/../../x` reaches outside the workflow's directory"
        );
        assert_eq!(help(check_input("../x")), INPUTS_HELP);
        assert_eq!(
            msg(check_input("src/[a")),
            "invalid glob `src/[a`: unclosed character class; missing ']'"
        );
        assert!(msg(check_input("{a")).starts_with("invalid glob `{a`: unclosed alternate group"));
    }

    #[test]
    fn outputs() {
        for ok in ["report.txt", "dist/", "a/b/c", "./x", "a..b"] {
            assert_eq!(check_output(ok), Ok(()), "{ok}");
        }
        assert_eq!(msg(check_output("")), "an output path is empty");
        assert_eq!(
            msg(check_output("/tmp/x")),
            "output `/tmp/x` is an absolute path"
        );
        assert_eq!(
            help(check_output("/out/report.txt")),
            "outputs are relative to `/out`: write `report.txt`"
        );
        assert_eq!(
            msg(check_output("../x")),
            "output `../x` reaches outside the step's output directory"
        );
        assert_eq!(
            msg(check_output("a/../../x")),
            "output `a/../../x` reaches outside the step's output directory"
        );
        assert_eq!(msg(check_output("*.o")), "output `*.o` is a glob");
        assert_eq!(
            msg(check_output("./")),
            "output `./` is the whole output directory"
        );
        assert_eq!(msg(check_output("a\\b")), "output `a\\b` contains `\\`");
    }

    #[test]
    fn out_dir_and_env_names() {
        assert_eq!(check_out_dir("../build/out"), Ok(()));
        assert_eq!(
            msg(check_out_dir("/var/out")),
            "`out_dir` is an absolute path: `/var/out`"
        );
        assert_eq!(msg(check_out_dir("")), "`out_dir` is empty");
        assert_eq!(check_env_name("RUST_LOG"), Ok(()));
        assert_eq!(
            msg(check_env_name("")),
            "an environment variable name is empty"
        );
        assert_eq!(
            msg(check_env_name("A=B")),
            "environment variable name `A=B` contains `=`"
        );
        assert_eq!(
            help(check_env_name("A=B")),
            "write it as a map entry: `A: B`"
        );
        assert_eq!(
            msg(check_env_name("A\0")),
            "environment variable name `A\\0` contains a NUL character"
        );
    }
}
