//! Human output on stderr: a live display on a terminal, cargo-style status lines otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CircuitState, Event, Reporter, RunStatus, StepStatus};
use crate::sandbox::LogLevel;

/// Prints status lines to stderr; on a terminal, also shows a spinner per running step and an
/// overall progress bar.
#[derive(Debug)]
pub struct HumanReporter {
    live: Option<Live>,
    total: usize,
    /// Lines not yet written, when stderr is not a terminal: they are written once per batch
    /// of events ([`Reporter::flush`]) instead of one system call per line, which cost more
    /// than the rest of the pool's work on a no-op step.
    pending: String,
}

#[derive(Debug)]
struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    running: BTreeMap<String, ProgressBar>,
}

impl HumanReporter {
    /// A reporter that draws live progress only if stderr is a terminal.
    pub fn new() -> Self {
        let live = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10.cyan.bold} [{bar:30}] {pos}/{len} steps, {elapsed}, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix("Running");
            Live {
                multi,
                overall,
                running: BTreeMap::new(),
            }
        });
        Self {
            live,
            total: 0,
            pending: String::new(),
        }
    }

    /// A status line: the verb right-aligned in ten columns, as cargo prints them. Without a
    /// live display the padding is written here rather than by `{verb:>10}`: there is a line
    /// for every step, and the formatter's padding took most of the time of writing one.
    fn line(&mut self, verb: &str, rest: impl std::fmt::Display) {
        if self.live.is_some() {
            self.print(format_args!("{verb:>10} {rest}"));
            return;
        }
        let pad = 10_usize.saturating_sub(verb.chars().count());
        self.pending.extend(std::iter::repeat_n(' ', pad));
        self.pending.push_str(verb);
        self.pending.push(' ');
        self.print(rest);
    }

    /// Prints `text` on stderr, above the live display if there is one. Without one it is
    /// formatted straight into the pending text, with no string of its own.
    fn print(&mut self, text: impl std::fmt::Display) {
        match &self.live {
            Some(live) => live.multi.suspend(|| eprintln!("{text}")),
            None => {
                use std::fmt::Write as _;
                let _ = writeln!(self.pending, "{text}");
            }
        }
    }

    fn write_pending(&mut self) {
        if !self.pending.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(self.pending.as_bytes());
            let _ = err.flush();
            self.pending.clear();
        }
    }
}

impl Drop for HumanReporter {
    fn drop(&mut self) {
        self.write_pending();
    }
}

impl Default for HumanReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for HumanReporter {
    fn flush(&mut self) {
        self.write_pending();
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted { steps, .. } => {
                self.total = *steps;
                if let Some(live) = &self.live {
                    live.overall.set_length(*steps as u64);
                }
            }
            Event::StepStarted { step, attempt } => {
                if let Some(live) = &mut self.live {
                    let pb = live
                        .multi
                        .insert_before(&live.overall, ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template("{spinner:.green} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_message(step.clone());
                    pb.enable_steady_tick(Duration::from_millis(100));
                    live.running.insert(step.clone(), pb);
                } else if *attempt == 1 {
                    self.line("Running", step);
                }
            }
            Event::StepRetrying {
                step,
                attempt,
                message,
                delay_ms,
            } => {
                if let Some(pb) = self.live.as_mut().and_then(|l| l.running.remove(step)) {
                    pb.finish_and_clear();
                }
                self.line(
                    "Retrying",
                    format_args!(
                        "{step} in {} (attempt {attempt} failed: {message})",
                        format_ms(*delay_ms)
                    ),
                );
            }
            Event::StepDispatched { .. } => {}
            Event::StepProgress { step, done, total } => {
                if let Some(pb) = self.live.as_ref().and_then(|l| l.running.get(step)) {
                    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
                    pb.set_message(format!("{step} {done}{of}"));
                }
            }
            Event::StepLog {
                step,
                level,
                message,
            } => match level {
                LogLevel::Error => self.line("Error", format_args!("{step}: {message}")),
                LogLevel::Warn => self.line("Warning", format_args!("{step}: {message}")),
                LogLevel::Info => {
                    if let Some(pb) = self.live.as_ref().and_then(|l| l.running.get(step)) {
                        pb.set_message(format!("{step}: {message}"));
                    }
                }
                LogLevel::Debug => {}
            },
            Event::StepStuck { step, silent_ms } => self.line(
                "Warning",
                format_args!(
                    "{step} has shown no output or heartbeat for {}; it keeps running",
                    format_ms(*silent_ms)
                ),
            ),
            Event::Circuit {
                module,
                state,
                message,
            } => {
                let what = match state {
                    CircuitState::Open => "open",
                    CircuitState::HalfOpen => "half-open",
                    CircuitState::Closed => "closed",
                };
                self.line(
                    "Circuit",
                    format_args!("{module}: the circuit breaker is {what}: {message}"),
                );
            }
            Event::StepFinished {
                step,
                status,
                message,
                duration_ms,
                stderr_tail,
                allowed_failure,
                cached,
                resumed,
                ..
            } => {
                if let Some(live) = &mut self.live {
                    if let Some(pb) = live.running.remove(step) {
                        pb.finish_and_clear();
                        live.multi.remove(&pb);
                    }
                    live.overall.inc(1);
                }
                let took = format_ms(*duration_ms);
                match status {
                    StepStatus::Succeeded if *cached => self.line("Cached", step),
                    StepStatus::Succeeded if *resumed => {
                        self.line(
                            "Kept",
                            format_args!("{step} (it succeeded in the resumed run)"),
                        );
                    }
                    StepStatus::Succeeded => {
                        self.line("Finished", format_args!("{step} in {took}"));
                    }
                    StepStatus::Skipped => self.line(
                        "Skipped",
                        format_args!(
                            "{step} ({})",
                            message.as_deref().unwrap_or("condition not met")
                        ),
                    ),
                    StepStatus::Failed => {
                        let verb = if *allowed_failure {
                            "Failed (allowed)"
                        } else {
                            "Failed"
                        };
                        self.line(
                            verb,
                            format_args!("{step}: {}", message.as_deref().unwrap_or("failed")),
                        );
                        if !stderr_tail.is_empty() {
                            let indented: String = stderr_tail
                                .lines()
                                .map(|l| format!("           | {l}\n"))
                                .collect();
                            self.print(indented.trim_end());
                        }
                    }
                }
            }
            Event::Warning { step, message } => match step {
                Some(step) => self.line("Warning", format_args!("{step}: {message}")),
                None => self.line("Warning", message),
            },
            Event::RunFinished {
                status,
                succeeded,
                failed,
                skipped,
                cached,
                duration_ms,
            } => {
                if let Some(live) = &self.live {
                    live.overall.finish_and_clear();
                }
                let verb = match status {
                    RunStatus::Succeeded => "Done",
                    RunStatus::Failed => "Failed",
                    RunStatus::Interrupted => "Interrupted",
                };
                let cached = if *cached > 0 {
                    format!(" ({cached} cached)")
                } else {
                    String::new()
                };
                self.line(
                    verb,
                    format_args!(
                        "{succeeded} succeeded{cached}, {failed} failed, {skipped} skipped in {}",
                        format_ms(*duration_ms)
                    ),
                );
            }
        }
    }
}

fn format_ms(ms: u64) -> Millis {
    Millis(ms)
}

/// A duration in milliseconds as the status lines print it: `250ms`, `1.50s`.
struct Millis(u64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0;
        if ms < 1000 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{:.2}s", ms as f64 / 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a live display, a status line is exactly what `{verb:>10} {rest}` gives.
    #[test]
    fn status_lines_right_align_the_verb_in_ten_columns() {
        let mut reporter = HumanReporter {
            live: None,
            total: 0,
            pending: String::new(),
        };
        let mut expected = String::new();
        for verb in [
            "Running",
            "Finished",
            "Skipped",
            "Failed (allowed)",
            "Cached",
            "",
            "Ünïcödé",
        ] {
            let rest = format_args!("build in {}", format_ms(1500));
            expected.push_str(&format!("{verb:>10} {rest}\n"));
            reporter.line(verb, rest);
        }
        assert_eq!(reporter.pending, expected);
        reporter.pending.clear();
    }
}
