//! `hermetic graph [WORKFLOW] [--format dot|mermaid]`: print the dependency graph.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EXIT_USAGE;
use crate::workflow::Workflow;

/// Output formats of `hermetic graph`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`hermetic graph | dot -Tsvg > graph.svg`).
    Dot,
    /// A mermaid flowchart, for Markdown.
    Mermaid,
}

/// Arguments of `hermetic graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The workflow file.
    #[arg(default_value = "hermetic.yaml")]
    pub workflow: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Runs `hermetic graph`.
pub fn exec(args: &GraphArgs) -> anyhow::Result<ExitCode> {
    let workflow = match Workflow::load(&args.workflow) {
        Ok(wf) => wf,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    print!("{}", render(&workflow, args.format));
    Ok(ExitCode::SUCCESS)
}

/// Renders the graph: one node per step (in file order), one edge per dependency, pointing from
/// the dependency to the step that needs it.
pub fn render(wf: &Workflow, format: GraphFormat) -> String {
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph {} {{", quote(&wf.name));
            let _ = writeln!(out, "  rankdir=LR;");
            for s in &wf.steps {
                let _ = writeln!(out, "  {};", quote(&s.name));
            }
            for s in &wf.steps {
                for d in &s.depends_on {
                    let _ = writeln!(out, "  {} -> {};", quote(d), quote(&s.name));
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            let id = |name: &str| -> String {
                let i = wf.steps.iter().position(|s| s.name == name).unwrap_or(0);
                format!("s{i}")
            };
            for s in &wf.steps {
                let _ = writeln!(
                    out,
                    "  {}[\"{}\"]",
                    id(&s.name),
                    s.name.replace('"', "#quot;")
                );
            }
            for s in &wf.steps {
                for d in &s.depends_on {
                    let _ = writeln!(out, "  {} --> {}", id(d), id(&s.name));
                }
            }
        }
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
