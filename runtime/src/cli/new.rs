//! `hermetic new task NAME [--dir DIR]`: scaffold a task crate under `tasks/NAME/`, with a
//! native unit test and a test that runs it in the real sandbox.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::EXIT_USAGE;

/// What `hermetic new` creates.
#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A task crate: `tasks/NAME/` with `Cargo.toml`, `src/main.rs` and `tests/sandbox.rs`.
    Task(TaskArgs),
}

/// Arguments of `hermetic new task`.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// The task's name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,

    /// The project directory whose `tasks/` receives the crate.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs `hermetic new`.
pub fn exec(command: &NewCommand) -> anyhow::Result<ExitCode> {
    match command {
        NewCommand::Task(args) => task(args),
    }
}

fn task(args: &TaskArgs) -> anyhow::Result<ExitCode> {
    if let Err(problem) = check_name(&args.name) {
        eprintln!("error: `{}` cannot name a task: {problem}", args.name);
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let dir = args.dir.join("tasks").join(&args.name);
    if dir.exists() {
        eprintln!(
            "error: `{}` already exists\n  = help: choose another name, or remove it first",
            dir.display()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let workspace = Workspace::detect(&args.dir);
    for (rel, contents) in files(&args.name, &workspace) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    eprintln!("   Created task `{}` in `{}`", args.name, dir.display());
    if !workspace.members_tasks {
        eprintln!(
            "      Note add \"tasks/{}\" to `members` in the workspace's Cargo.toml",
            args.name
        );
    }
    eprintln!(
        "      Next `cargo test -p {}`, then use it in hermetic.yaml: `task: {}`",
        args.name, args.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Why `name` cannot name a task, if it cannot.
fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty"),
        Some(c) if !c.is_ascii_lowercase() => return Err("it must start with a lowercase letter"),
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err("use only lowercase letters, digits, `-` and `_`");
    }
    if name.len() > 64 {
        return Err("it is longer than 64 characters");
    }
    Ok(())
}

/// What the project's `Cargo.toml` offers the new crate.
#[derive(Debug, Default)]
struct Workspace {
    /// `[workspace.dependencies]` has `hermetic-sdk` (and the crate can use `workspace = true`).
    sdk: bool,
    /// … and `hermetic-runtime`, for the sandbox test.
    runtime: bool,
    /// `[workspace.lints]` exists.
    lints: bool,
    /// `members` includes `tasks/*`.
    members_tasks: bool,
}

impl Workspace {
    fn detect(dir: &Path) -> Self {
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            return Self::default();
        };
        Self {
            sdk: has_workspace_dep(&text, "hermetic-sdk"),
            runtime: has_workspace_dep(&text, "hermetic-runtime"),
            lints: text.contains("[workspace.lints"),
            members_tasks: text.contains("\"tasks/*\""),
        }
    }
}

/// Whether `[workspace.dependencies]` in `toml` declares `name` (a line-level check, enough
/// for the scaffold's choice between `workspace = true` and a git dependency).
fn has_workspace_dep(toml: &str, name: &str) -> bool {
    let mut in_deps = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[workspace.dependencies]";
        } else if in_deps
            && (line.starts_with(&format!("{name} ")) || line.starts_with(&format!("{name}=")))
        {
            return true;
        }
    }
    false
}

const GIT: &str = "https://github.com/hermetic-build/hermetic";

fn files(name: &str, ws: &Workspace) -> Vec<(&'static str, String)> {
    let sdk = if ws.sdk {
        "hermetic-sdk.workspace = true".to_string()
    } else {
        format!("hermetic-sdk = {{ git = \"{GIT}\" }}")
    };
    let runtime = if ws.runtime {
        "hermetic-runtime.workspace = true".to_string()
    } else {
        format!("hermetic-runtime = {{ git = \"{GIT}\" }}")
    };
    let lints = if ws.lints {
        "\n[lints]\nworkspace = true\n"
    } else {
        ""
    };
    let manifest = format!(
        r#"[package]
name = "{name}"
description = "hermetic task: {name}."
version = "0.1.0"
edition = "2024"
publish = false

[[bin]]
name = "{name}"
path = "src/main.rs"

[dependencies]
{sdk}
serde = {{ version = "1", features = ["derive"] }}

# The harness runs the task in the real sandbox from its tests.
[dev-dependencies]
{runtime}
serde_json = "1"
{lints}"#
    );
    let main = format!(
        r#"//! `{name}`: a hermetic task. It copies every input to `/out`, upper-cased, with the
//! `suffix` parameter appended.
//!
//! ```yaml
//! steps:
//!   shout:
//!     task: {name}
//!     inputs: ["notes/*.txt"]
//!     params: {{ suffix: "!" }}
//!     outputs: [notes]
//! ```

use hermetic_sdk::{{Mounts, Result}};
use serde::Deserialize;

/// The step's `params:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {{
    /// Appended to each output.
    #[serde(default)]
    suffix: String,
}}

fn main() {{
    hermetic_sdk::main(|_args| {{
        let params: Params = hermetic_sdk::params()?;
        run(&Mounts::sandbox(), &params)
    }});
}}

fn run(mounts: &Mounts, params: &Params) -> Result<()> {{
    let inputs = mounts.list_inputs()?;
    for (i, rel) in inputs.iter().enumerate() {{
        let text = String::from_utf8_lossy(&mounts.read_input(rel)?).to_uppercase();
        mounts.write_output(rel, format!("{{text}}{{}}", params.suffix))?;
        hermetic_sdk::progress(i as u64 + 1, Some(inputs.len() as u64));
    }}
    hermetic_sdk::info!("wrote {{}} files", inputs.len());
    Ok(())
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn upper_cases_with_the_suffix() {{
        let root = std::env::temp_dir().join(format!("{name}-unit-{{}}", std::process::id()));
        let mounts = Mounts::rooted(&root);
        std::fs::create_dir_all(root.join("in")).unwrap();
        std::fs::write(root.join("in/a.txt"), "hi").unwrap();
        let params = Params {{ suffix: "!".into() }};
        run(&mounts, &params).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("out/a.txt")).unwrap(),
            "HI!"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }}
}}
"#
    );
    let sandbox_test = format!(
        r#"//! `{name}` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;

#[test]
fn runs_in_the_sandbox() {{
    let run = TaskTest::task("{name}")
        .input("notes/a.txt", "hello")
        .params(serde_json::json!({{ "suffix": "!" }}))
        .run();
    run.assert_success();
    assert_eq!(run.output_str("notes/a.txt"), "HELLO!");
    assert_eq!(run.progress.last(), Some(&(1, Some(1))));
}}
"#
    );
    vec![
        ("Cargo.toml", manifest),
        ("src/main.rs", main),
        ("tests/sandbox.rs", sandbox_test),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("wc-2"), Ok(()));
        assert!(check_name("").is_err());
        assert!(check_name("2x").is_err());
        assert!(check_name("Up").is_err());
        assert!(check_name("a/b").is_err());
    }

    #[test]
    fn workspace_dependencies_are_detected() {
        let toml = "[workspace]\nmembers = [\"tasks/*\"]\n[workspace.dependencies]\nhermetic-sdk = { path = \"sdk\" }\n[dependencies]\nhermetic-runtime = \"1\"\n";
        assert!(has_workspace_dep(toml, "hermetic-sdk"));
        assert!(!has_workspace_dep(toml, "hermetic-runtime"));
    }
}
