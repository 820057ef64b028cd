//! `--json`: one JSON object per line on stdout.

use std::io::Write;

use super::{Event, Reporter};

/// Writes every event as a JSON line to stdout, flushing after each so CI sees it live.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        let mut out = std::io::stdout().lock();
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
